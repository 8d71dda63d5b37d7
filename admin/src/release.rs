//! `release`: frees the guard places an incident people have taken over still holds. A
//! repair that failed, or a ladder that ended held for people, keeps its place in its
//! cluster's or small group's scope until its incident closes (the alarm back to OK), so
//! that automation stays off the rest of the scope while people decide; when the OK never
//! comes (the instance stopped, its alarm `INSUFFICIENT_DATA`), the scope stays blocked until
//! the item expires. Only an incident autoheal no longer works on is released
//! (`guard::may_release`), each removal is a write conditional on the scope's version, and
//! the release is kept in the audit trail.

use autoheal::error::Error;
use autoheal::ledger::Ledger;
use autoheal::rules::guard;
use autoheal::rules::history::Record;
use aws_sdk_dynamodb::types::AttributeValue;

/// The instance id of an incident id as reports name it: `i-0abc…-20261123T031245Z`.
pub fn instance_of_incident(incident: &str) -> Result<&str, String> {
    let stamp = |s: &str| {
        let b = s.as_bytes();
        s.len() == 16
            && b[8] == b'T'
            && b[15] == b'Z'
            && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    };
    match incident.rsplit_once('-') {
        Some((id, time)) if id.starts_with("i-") && id.len() > 2 && stamp(time) => Ok(id),
        _ => Err(format!(
            "--incident {incident:?}: not an incident id (i-<instance>-<YYYYMMDDTHHMMSSZ>, as the report names it)"
        )),
    }
}

/// The scopes (`cluster:db@eu-west-1`, `group:web@us-east-1`, `account`) with an item in the
/// ledger: every page of a scan for their keys. An operator's command, run rarely: it reads
/// the whole table once.
pub async fn scopes(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<String>, Error> {
    let mut out = vec![];
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :scope) AND sk = :head")
            .expression_attribute_values(":scope", AttributeValue::S("scope#".into()))
            .expression_attribute_values(":head", AttributeValue::S("head".into()))
            .projection_expression("pk")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:Scan", e))?;
        out.extend(page.items().iter().filter_map(|item| {
            let pk = item.get("pk")?.as_s().ok()?;
            Some(pk.strip_prefix("scope#")?.to_string())
        }));
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => {
                out.sort();
                return Ok(out);
            }
        }
    }
}

/// What a release did.
#[derive(Debug, Default)]
pub struct Released {
    /// The instance's ledger key (`region/id`), when a scope listed the incident.
    pub member: Option<String>,
    /// The scopes it was taken out of.
    pub scopes: Vec<String>,
    /// Why autoheal no longer needs them (`guard::may_release`).
    pub why: String,
}

/// Frees every guard place `incident` holds, if autoheal no longer works on it; Err: why
/// not (it is still in progress), or what AWS said.
pub async fn release(
    client: &aws_sdk_dynamodb::Client,
    ledger: &Ledger,
    table: &str,
    incident: &str,
) -> Result<Released, String> {
    let instance = instance_of_incident(incident)?;
    let aws = |e: Error| format!("table {table}: {}", crate::explain(&e));
    // The scopes listing the incident, and the instance's key (its region) as they list it.
    let mut held: Vec<(String, String)> = vec![];
    for scope in scopes(client, table).await.map_err(aws)? {
        let (members, _) = ledger.read_scope(&scope).await.map_err(aws)?;
        held.extend(
            members
                .into_iter()
                .filter(|(key, inc)| {
                    inc == incident && autoheal::model::keys::instance_of(key) == instance
                })
                .map(|(key, _)| (scope.clone(), key)),
        );
    }
    let Some(member) = held.first().map(|(_, key)| key.clone()) else {
        return Ok(Released::default());
    };
    let head = ledger.read(&member).await.map_err(aws)?;
    let why = guard::may_release(head.as_ref(), incident)?;
    let mut released = Released {
        member: Some(member.clone()),
        scopes: vec![],
        why,
    };
    for (scope, key) in &held {
        if ledger
            .release_member(scope, (key, incident))
            .await
            .map_err(aws)?
        {
            released.scopes.push(scope.clone());
        }
    }
    Ok(released)
}

/// The audit trail's record of a release by an operator at `now_ms`; None when nothing
/// was released.
pub fn record(released: &Released, incident: &str, now_ms: i64) -> Option<Record> {
    let member = released.member.as_deref()?;
    if released.scopes.is_empty() {
        return None;
    }
    Some(Record {
        at: chrono::DateTime::from_timestamp_millis(now_ms)?
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        instance_id: autoheal::model::keys::instance_of(member).to_string(),
        action: "release".into(),
        result: "done".into(),
        reason: format!(
            "guard places released by an operator (autoheal-admin release): {}; {}",
            released.scopes.join(", "),
            released.why
        ),
        incident: Some(incident.to_string()),
        group: None,
        inputs: None,
        notification: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_id_names_its_instance() {
        assert_eq!(
            instance_of_incident("i-0123456789abcdef0-20261123T031245Z"),
            Ok("i-0123456789abcdef0")
        );
        for bad in [
            "",
            "i-0123456789abcdef0",
            "i--20261123T031245Z",
            "x-1-20261123T031245Z",
            "i-1-20261123T0312Z",
            "i-1-2026112３T031245Z",
            "i-1-20261123X031245Z",
            "i-1-20261123T031245Zé",
        ] {
            let e = instance_of_incident(bad).unwrap_err();
            assert!(e.starts_with("--incident"), "{bad:?}: {e}");
        }
    }
}

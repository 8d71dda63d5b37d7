//! A retirement's safety net: the instance imaged without reboot before its stop/start
//! (degraded hardware may not come back from a stop), under an unguessable name recorded
//! before the call, like a relaunch's image; the stop follows once the image is available
//! (`notice_steps::follow`). The image is kept: its id is in the notice's record and report.

use super::notice_steps::{failed, outcome, write};
use crate::app::Run;
use crate::error::Error;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::notice::act::{self, IMAGING};
use crate::rules::notice::record::{Acting, Recorded};
use crate::rules::relaunch::spec;

/// Begins step `i` of `r` with its image: named and recorded first, then `CreateImage`.
pub(super) async fn begin(run: &Run<'_>, r: &Recorded, i: usize) -> Outcome {
    let now = run.now_ms();
    // Named and tagged like an incident's image, as the notice's: `notice-<instance>-<time>`.
    let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    let label = crate::rules::incident::incident_id(&format!("notice-{}", r.instance_id), at);
    let name = spec::image_name(&label, &crate::app::secret::token());
    let begun = act::imaged(&act::begun(r, i, IMAGING, now), &name, None);
    if let Err(e) = write(run, r, &begun).await {
        let why = format!("scheduled notice {}: {e}", r.key);
        return outcome(r, Action::None, Verdict::Duplicate, why);
    }
    let tags = spec::bookkeeping_tags(&r.instance_id, &label);
    match run
        .fleet
        .create_image(&r.region, &r.instance_id, &name, &tags)
        .await
    {
        Ok(id) => {
            if let Err(e) = write(run, &begun, &act::imaged(&begun, &name, Some(&id))).await {
                // Found again by its name.
                tracing::warn!(notice = %r.key, "the image's id not recorded: {e}");
            }
            let why = format!(
                "{}: imaging without reboot as {id} before its stop ahead of EC2 (the hardware is degraded)",
                act::named(r)
            );
            outcome(r, Action::CreateImage, Verdict::InProgress, why)
        }
        Err(e) => failed(run, &begun, format!("its image was refused ({e})")).await,
    }
}

/// The image of the step under way, by its recorded id or else its recorded name: (id,
/// state), None when EC2 has none.
pub(super) async fn look(
    run: &Run<'_>,
    r: &Recorded,
    a: &Acting,
) -> Result<Option<(String, String)>, Error> {
    match (&a.image_id, &a.image_name) {
        (Some(id), _) => run.fleet.image_state(&r.region, id).await,
        (None, Some(name)) => run.fleet.image_named(&r.region, name).await,
        (None, None) => Ok(None),
    }
}

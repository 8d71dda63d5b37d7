//! autoheal-admin: the operator's CLI. Wiring only; the work is in the library (`autoheal_admin`).
//! Exit status: 0 done, 1 `audit` found something at or above `--fail-on`, 2 error.

use autoheal::aws::{autoscaling, backup};
use autoheal::ledger::Ledger;
use autoheal::rules::history;
use autoheal_admin::{self as admin, alarms, audit, fleet, release, webhook};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "autoheal-admin",
    version,
    about = "Operate autoheal: encrypt the Slack webhook, provision status-check alarms, audit the fleet",
    after_help = "Credentials and region come from the usual AWS sources (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws, AWS_REGION). Exit status: 0 done, 1 audit findings at or above --fail-on, 2 error."
)]
struct Cli {
    /// AWS region [default: AWS_REGION or the profile's region]
    #[arg(long, global = true, value_parser = admin::parse_region)]
    region: Option<String>,
    /// No progress lines on stderr
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt the Slack webhook URL for the SlackWebhookEncrypted parameter. The URL is
    /// read from stdin (never from the command line, which shell history and ps keep);
    /// prints the base64 ciphertext.
    EncryptWebhook {
        /// KMS key id, ARN or alias (alias/...)
        #[arg(long)]
        key: String,
        /// The function's name: the encryption context it decrypts with
        #[arg(long, default_value = "autoheal")]
        function_name: String,
    },
    /// Status-check alarms
    Alarms {
        #[command(subcommand)]
        command: AlarmsCommand,
    },
    /// Find the instances that will hurt when they fail, or that autoheal cannot help:
    /// no status-check alarm, reboot risk (paravirtual, kernel aki-44992845), EC2 recovery
    /// blocked by ephemeral mappings, instance-store roots, stale backups, opted out,
    /// scheduled events
    Audit {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Exit 1 when a finding is at least this severe: info, warning, critical, never
        #[arg(long, default_value = "critical")]
        fail_on: audit::FailOn,
    },
    /// The audit trail: every decision the function made about an instance (repairs,
    /// holds, ignores, duplicates, dry runs) with its reason and inputs, oldest first
    History {
        /// The ledger table (the stack's LedgerTable output)
        #[arg(long, env = "AUTOHEAL_TABLE")]
        table: String,
        /// Only this instance
        #[arg(long)]
        instance: Option<String>,
        /// From this long ago (90m, 24h, 7d) or this time (RFC 3339)
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// EC2's scheduled notices autoheal recorded that still stand (retirements, stops,
    /// reboots, maintenance announced ahead): instance, what EC2 will do and from when,
    /// autoheal's plan and the maintenance window, oldest date first
    Upcoming {
        /// The ledger table (the stack's LedgerTable output)
        #[arg(long, env = "AUTOHEAL_TABLE")]
        table: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Free the guard places (one repair at a time in a cluster or a small group, a larger
    /// group's budget) still held by an incident people have taken over: its repair failed
    /// or its ladder ended, and it keeps automation off the rest of its scope until its
    /// alarm returns to OK. Refused while autoheal still works on the incident. Recorded in
    /// the audit trail
    Release {
        /// The ledger table (the stack's LedgerTable output)
        #[arg(long, env = "AUTOHEAL_TABLE")]
        table: String,
        /// The incident, as the report names it (i-<instance>-<YYYYMMDDTHHMMSSZ>)
        #[arg(long)]
        incident: String,
    },
}

#[derive(Subcommand)]
enum AlarmsCommand {
    /// Create or correct one StatusCheckFailed alarm (60 s, 2 of 2, missing data as-is)
    /// per selected running instance, sending ALARM and OK to the topic; delete those of
    /// terminated instances. Idempotent; prints the diff.
    Sync {
        /// The autoheal SNS topic (the stack's TopicArn output)
        #[arg(long)]
        topic_arn: String,
        /// Only instances with this tag (KEY=VALUE); repeat to require several
        #[arg(long = "tag", value_parser = alarms::parse_selector)]
        tags: Vec<(String, String)>,
        /// Print the diff, change nothing
        #[arg(long)]
        dry_run: bool,
        /// The stack's AlarmNamePrefix: alarms are named <prefix>StatusCheckFailed-<id>,
        /// and only those are managed
        #[arg(long, default_value = alarms::DEFAULT_NAME_PREFIX)]
        name_prefix: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("autoheal-admin: {message}");
            ExitCode::from(2)
        }
    }
}

async fn sdk(region: Option<String>) -> Result<SdkConfig, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r));
    }
    let sdk = loader.load().await;
    let Some(region) = sdk.region() else {
        return Err("no AWS region: pass --region or set AWS_REGION".into());
    };
    admin::parse_region(region.as_ref())
        .map_err(|e| format!("AWS region (AWS_REGION or the profile): {e}"))?;
    let provider = sdk
        .credentials_provider()
        .ok_or("no AWS credentials provider configured")?;
    provider.provide_credentials().await.map_err(|e| {
        format!("no AWS credentials ({e}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    })?;
    Ok(sdk)
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let quiet = cli.quiet;
    let progress = move |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let region = cli.region;
    match cli.command {
        Command::EncryptWebhook { key, function_name } => {
            encrypt_webhook(region, &key, &function_name).await
        }
        Command::Alarms {
            command:
                AlarmsCommand::Sync {
                    topic_arn,
                    tags,
                    dry_run,
                    name_prefix,
                },
        } => {
            let managed = alarms::managed_prefix(&name_prefix);
            let selection = (topic_arn.as_str(), &tags[..], managed.as_str());
            alarms_sync(region, selection, dry_run, &progress).await
        }
        Command::Audit { format, fail_on } => run_audit(region, format, fail_on, &progress).await,
        Command::History {
            table,
            instance,
            since,
            format,
        } => run_history(region, &table, instance, &since, format).await,
        Command::Upcoming { table, format } => run_upcoming(region, &table, format).await,
        Command::Release { table, incident } => run_release(region, &table, &incident).await,
    }
}

/// `release`: the incident's guard places freed, and the release kept in the audit trail.
async fn run_release(
    region: Option<String>,
    table: &str,
    incident: &str,
) -> Result<ExitCode, String> {
    release::instance_of_incident(incident)?;
    let sdk = sdk(region).await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let ledger = Ledger::new(client.clone(), table);
    let released = release::release(&client, &ledger, table, incident).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let Some(record) = release::record(&released, incident, now) else {
        println!("incident {incident} holds no guard place: nothing to release");
        return Ok(ExitCode::SUCCESS);
    };
    ledger.record(&record, now / 1000).await.map_err(|e| {
        format!(
            "released, but not recorded in the audit trail: {}",
            admin::explain(&e)
        )
    })?;
    println!("{}", record.reason);
    Ok(ExitCode::SUCCESS)
}

/// `encrypt-webhook`: the URL from stdin, encrypted for the function's context.
async fn encrypt_webhook(
    region: Option<String>,
    key: &str,
    function_name: &str,
) -> Result<ExitCode, String> {
    if std::io::stdin().is_terminal() {
        eprintln!("Paste the Slack webhook URL, then Enter and Ctrl-D:");
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let url = webhook::read_url(&input)?;
    let sdk = sdk(region).await?;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let ciphertext = webhook::encrypt(&kms, key, function_name, &url)
        .await
        .map_err(|e| admin::explain(&e))?;
    println!("{ciphertext}");
    Ok(ExitCode::SUCCESS)
}

/// `alarms sync`: one status-check alarm per instance, made to match.
/// `selection`: the topic, the instances' tags, the managed alarms' name prefix.
async fn alarms_sync(
    region: Option<String>,
    (topic_arn, tags, managed): (&str, &[(String, String)], &str),
    dry_run: bool,
    progress: fleet::Progress<'_>,
) -> Result<ExitCode, String> {
    let sdk = sdk(region).await?;
    let (ec2, cw) = (
        aws_sdk_ec2::Client::new(&sdk),
        aws_sdk_cloudwatch::Client::new(&sdk),
    );
    let fail = |e: autoheal::error::Error| admin::explain(&e);
    fleet::check_topic(&aws_sdk_sns::Client::new(&sdk), topic_arn)
        .await
        .map_err(|e| format!("topic {topic_arn}: {}", admin::explain(&e)))?;
    let (instances, existing) = tokio::try_join!(
        fleet::instances(&ec2, progress),
        fleet::alarms(&cw, Some(managed), progress),
    )
    .map_err(fail)?;
    let existing: BTreeMap<_, _> = existing
        .iter()
        .filter_map(|a| Some((a.alarm_name()?.to_string(), fleet::shape_of(a))))
        .collect();
    let plan = alarms::plan(&instances, &existing, topic_arn, tags, managed);
    if !dry_run {
        let (mut puts, mut deletes) = (vec![], vec![]);
        for change in &plan.changes {
            match change {
                alarms::Change::Create(s) | alarms::Change::Update(s, _) => puts.push(s),
                alarms::Change::Delete { name, .. } => deletes.push(name.clone()),
            }
        }
        let partial = |e| {
            format!(
                "{} (stopped part-way; running the command again finishes the job)",
                fail(e)
            )
        };
        fleet::put_alarms(&cw, &puts, progress)
            .await
            .map_err(partial)?;
        fleet::delete_alarms(&cw, &deletes).await.map_err(partial)?;
    }
    print!("{}", alarms::render(&plan, dry_run));
    Ok(ExitCode::SUCCESS)
}

/// `audit`: what would keep autoheal from healing each instance.
async fn run_audit(
    region: Option<String>,
    format: Format,
    fail_on: audit::FailOn,
    progress: fleet::Progress<'_>,
) -> Result<ExitCode, String> {
    let sdk = sdk(region).await?;
    let (ec2, cw, asg) = (
        aws_sdk_ec2::Client::new(&sdk),
        aws_sdk_cloudwatch::Client::new(&sdk),
        aws_sdk_autoscaling::Client::new(&sdk),
    );
    let fail = |e: autoheal::error::Error| admin::explain(&e);
    let (instances, all_alarms, backups, events, group_modes) = tokio::try_join!(
        fleet::instances(&ec2, progress),
        fleet::alarms(&cw, None, progress),
        backup::backups(&ec2),
        fleet::scheduled_events(&ec2),
        autoscaling::mode_tags(&asg),
    )
    .map_err(fail)?;
    let distinct = |f: fn(&audit::Instance) -> &str| {
        let mut v: Vec<String> = instances
            .iter()
            .map(|i| f(i).to_string())
            .filter(|s| !s.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (images, types) = (distinct(|i| &i.image_id), distinct(|i| &i.instance_type));
    let (image_ephemeral, type_has_instance_store) = tokio::try_join!(
        fleet::ephemeral_mappings(&ec2, &images),
        fleet::instance_storage(&ec2, &types),
    )
    .map_err(fail)?;
    let inventory = audit::Inventory {
        watched: fleet::watched_instances(&all_alarms),
        instances,
        image_ephemeral,
        type_has_instance_store,
        backups,
        events,
        group_modes,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let findings = audit::findings(&inventory);
    let scanned = audit::audited(&inventory).count();
    match format {
        Format::Table => print!("{}", audit::render_table(&findings, scanned)),
        Format::Json => println!("{}", audit::render_json(&findings, scanned)),
    }
    Ok(if fail_on.fails(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `history`: the audit trail, newest first.
async fn run_history(
    region: Option<String>,
    table: &str,
    instance: Option<String>,
    since: &str,
    format: Format,
) -> Result<ExitCode, String> {
    let now = chrono::Utc::now().timestamp_millis();
    let since = history::parse_since(since, now)?;
    let sdk = sdk(region).await?;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let records = ledger
        .history(since, now, instance.as_deref())
        .await
        .map_err(|e| format!("table {table}: {}", admin::explain(&e)))?;
    match format {
        Format::Table => print!("{}", history::render_table(&records)),
        Format::Json => println!(
            "{}",
            serde_json::to_string(&records).map_err(|e| e.to_string())?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `upcoming`: the recorded notices that still stand, oldest date first.
async fn run_upcoming(
    region: Option<String>,
    table: &str,
    format: Format,
) -> Result<ExitCode, String> {
    use autoheal::rules::notice::record;
    let sdk = sdk(region).await?;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let recorded = ledger
        .notices()
        .await
        .map_err(|e| format!("table {table}: {}", admin::explain(&e)))?;
    let standing = record::upcoming(recorded, chrono::Utc::now().timestamp_millis());
    match format {
        Format::Table => print!("{}", record::render_table(&standing)),
        Format::Json => println!(
            "{}",
            serde_json::to_string(&standing).map_err(|e| e.to_string())?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

//! Real parts for the integration tests: the moto server (started by `make test`, reached
//! through a recording fault proxy), a Slack receiver, and a world builder.
#![allow(dead_code)] // each test binary uses a different part of this module

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag as AsgTag};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub const PLACEHOLDER: &str = "i-0123456789abcdef0";
pub const PLACEHOLDER_2: &str = "i-0fedcba9876543210";
pub const FIXTURE_TIME: &str = "2026-11-23T03:12:45.123+0000";
pub const FUNCTION_NAME: &str = "autoheal";

/// The repository's root (the function's crate), from the tests of any workspace member.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("template.yaml").exists())
        .expect("template.yaml above the crate")
        .to_path_buf()
}

pub fn moto_endpoint() -> String {
    std::env::var("AUTOHEAL_TEST_MOTO")
        .expect("AUTOHEAL_TEST_MOTO is not set: run the integration tests with `make test`, which starts the moto server")
}

/// A fresh 12-digit moto account id.
pub fn new_account() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mixed = (nanos as u64)
        ^ ((std::process::id() as u64) << 20)
        ^ (N.fetch_add(1, Ordering::SeqCst) as u64 * 7_919);
    format!("{:012}", mixed % 1_000_000_000_000)
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

// ---------------------------------------------------------------- HTTP servers

pub type Reply = Response<Full<Bytes>>;

pub fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

/// The runtime the test servers (fault proxy, Slack receiver, Runtime API) run on: threads
/// of their own, so that a test loading its own runtime (hundreds of invocations at once)
/// never delays their answers past a client's timeout.
fn servers() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-servers")
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Serves `handler` on a fresh loopback port for the rest of the test binary's run.
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    servers().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- fault proxy

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    Throttle,
    ServerError,
    /// Answer success without doing it (an impaired instance that never stops), with this body.
    Swallow(&'static str),
}

struct Rule {
    action: String,
    remaining: usize,
    fault: Fault,
    /// Only once this action has been seen.
    after: Option<String>,
    /// Not for requests whose body names one of these (e.g. instance ids).
    except: Vec<String>,
}

/// Sits between the code and moto: records every AWS action and answers chosen actions
/// with throttling or 5xx, as AWS would, so the SDK's retries and our error handling are real.
#[derive(Clone, Default)]
pub struct Proxy {
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
    /// moto account the requests go to (`x-moto-account-id`): each world has its own, so
    /// tests running at once never see each other's instances, images or tables.
    account: Arc<Mutex<Option<String>>>,
    pub endpoint: String,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let upstream = moto_endpoint();
        let mut proxy = Proxy::default();
        let me = proxy.clone();
        let http = reqwest::Client::new();
        let addr = serve(move |req: Request<Incoming>| {
            let me = me.clone();
            let http = http.clone();
            let upstream = upstream.clone();
            async move { me.forward(req, &http, &upstream).await }
        })
        .await;
        proxy.endpoint = format!("http://{addr}");
        proxy
    }

    /// A proxy that sends everything to `account`.
    pub async fn for_account(account: &str) -> Proxy {
        let proxy = Proxy::start().await;
        proxy.bind(account);
        proxy
    }

    pub fn bind(&self, account: &str) {
        *self.account.lock().unwrap() = Some(account.to_string());
    }

    /// Fail the next `times` calls of `action` (usize::MAX: all of them).
    pub fn fail(&self, action: &str, times: usize, fault: Fault) {
        self.rules.lock().unwrap().push(Rule {
            action: action.into(),
            remaining: times,
            fault,
            after: None,
            except: vec![],
        });
    }

    /// Like `fail`, but not for requests naming any of `except` (the instances whose
    /// reads should still work).
    pub fn fail_except(&self, action: &str, times: usize, fault: Fault, except: &[String]) {
        self.rules.lock().unwrap().push(Rule {
            action: action.into(),
            remaining: times,
            fault,
            after: None,
            except: except.to_vec(),
        });
    }

    /// Like `fail`, but only for calls made after `earlier` was seen.
    pub fn fail_after(&self, earlier: &str, action: &str, times: usize, fault: Fault) {
        self.rules.lock().unwrap().push(Rule {
            action: action.into(),
            remaining: times,
            fault,
            after: Some(earlier.into()),
            except: vec![],
        });
    }

    /// The request bodies of every call of `action`, as sent.
    pub fn bodies(&self, action: &str) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn heal_all(&self) {
        self.rules.lock().unwrap().clear();
    }

    pub fn calls(&self, action: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == action)
            .count()
    }

    pub fn all_calls(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        http: &reqwest::Client,
        upstream: &str,
    ) -> Reply {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok());
        let json_protocol = target.is_some();
        // Smithy RPC v2 CBOR (CloudWatch) names the operation in the path.
        let operation = parts.uri.path().split_once("/operation/").map(|(_, op)| op);
        let action = match (target, operation) {
            (Some(t), _) => t.rsplit('.').next().unwrap_or(t).to_string(),
            (None, Some(op)) => op.to_string(),
            (None, None) => String::from_utf8_lossy(&body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("?")
                .to_string(),
        };
        let seen_before = self.seen.lock().unwrap().clone();
        self.seen.lock().unwrap().push(action.clone());
        self.bodies
            .lock()
            .unwrap()
            .push((action.clone(), String::from_utf8_lossy(&body).into_owned()));
        let fault = {
            let mut rules = self.rules.lock().unwrap();
            let text = String::from_utf8_lossy(&body);
            let armed = |r: &Rule| {
                r.after.as_ref().is_none_or(|a| seen_before.contains(a))
                    && !r.except.iter().any(|e| text.contains(e.as_str()))
            };
            rules
                .iter_mut()
                .find(|r| r.action == action && r.remaining > 0 && armed(r))
                .map(|r| {
                    r.remaining = r.remaining.saturating_sub(1);
                    r.fault
                })
        };
        if let Some(fault) = fault {
            let (status, code) = match fault {
                Fault::Swallow(body) => return reply(200, body),
                Fault::Throttle => (
                    400,
                    if json_protocol {
                        "ThrottlingException"
                    } else {
                        "Throttling"
                    },
                ),
                Fault::ServerError => (
                    500,
                    if json_protocol {
                        "InternalServerError"
                    } else {
                        "InternalFailure"
                    },
                ),
            };
            // EC2 (query version 2016-11-15) has its own error shape and throttling code.
            let ec2 = String::from_utf8_lossy(&body).contains("Version=2016-11-15");
            let body = if json_protocol {
                format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#)
            } else if ec2 {
                let code = if code == "Throttling" {
                    "RequestLimitExceeded"
                } else {
                    code
                };
                format!("<Response><Errors><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error></Errors><RequestID>test</RequestID></Response>")
            } else {
                format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>test</RequestId></ErrorResponse>")
            };
            return reply(status, body);
        }
        let mut upstream_req =
            http.request(parts.method.clone(), format!("{upstream}{}", parts.uri));
        for (k, v) in parts.headers.iter() {
            if k != "host" && k != "content-length" {
                upstream_req = upstream_req.header(k, v);
            }
        }
        if let Some(account) = self.account.lock().unwrap().clone() {
            upstream_req = upstream_req.header("x-moto-account-id", account);
        }
        match upstream_req.body(body).send().await {
            Ok(resp) => {
                let mut out = Response::builder().status(resp.status().as_u16());
                for (k, v) in resp.headers().iter() {
                    if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                        out = out.header(k, v);
                    }
                }
                out.body(Full::new(resp.bytes().await.unwrap_or_default()))
                    .unwrap()
            }
            Err(e) => reply(502, format!("proxy: {e}")),
        }
    }
}

// ---------------------------------------------------------------- Slack receiver

/// A status to answer, with an optional Retry-After.
type Scripted = (u16, Option<&'static str>);

/// A local Slack webhook: records every POST body, answers from a script of statuses
/// (then 200), each optionally with a Retry-After.
#[derive(Clone, Default)]
pub struct Slack {
    pub received: Arc<Mutex<Vec<serde_json::Value>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    always: Arc<Mutex<Option<u16>>>,
    /// Each post moves this clock on by this much before it is answered.
    takes: Arc<Mutex<Option<(autoheal::app::clock::Clock, i64)>>>,
    pub url: String,
}

impl Slack {
    pub async fn start() -> Slack {
        let mut slack = Slack::default();
        let me = slack.clone();
        let addr = serve(move |req: Request<Incoming>| {
            let me = me.clone();
            async move {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                me.received
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                if let Some((clock, ms)) = &*me.takes.lock().unwrap() {
                    clock.advance(*ms);
                }
                let next = me.script.lock().unwrap().pop_front();
                let always = *me.always.lock().unwrap();
                match (next, always) {
                    (Some((status, retry_after)), _) => {
                        let mut r = Response::builder().status(status);
                        if let Some(ra) = retry_after {
                            r = r.header("retry-after", ra);
                        }
                        r.body(Full::new(Bytes::from_static(b"scripted"))).unwrap()
                    }
                    (None, Some(status)) => reply(status, "always"),
                    (None, None) => reply(200, "ok"),
                }
            }
        })
        .await;
        slack.url = format!("http://{addr}/services/T000/B000/XXXXSECRETXXXX");
        slack
    }

    pub fn then(&self, status: u16, retry_after: Option<&'static str>) {
        self.script.lock().unwrap().push_back((status, retry_after));
    }

    pub fn always(&self, status: u16) {
        *self.always.lock().unwrap() = Some(status);
    }

    /// Each post from now on takes `ms` of the function's `clock` (a slow Slack, without
    /// waiting).
    pub fn takes(&self, clock: &autoheal::app::clock::Clock, ms: i64) {
        *self.takes.lock().unwrap() = Some((clock.clone(), ms));
    }

    /// Back to answering 200.
    pub fn fine(&self) {
        *self.always.lock().unwrap() = None;
    }

    pub fn texts(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

// ---------------------------------------------------------------- AWS world

/// The function's region in the tests.
pub const HOME_REGION: &str = "us-east-1";

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_in(endpoint, HOME_REGION).await
}

pub async fn sdk_config_in(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

pub struct World {
    /// The moto account this world lives in, alone.
    pub account: String,
    /// Where its instances and group are (`ec2`, `asg`); the ledger and the webhook key
    /// are in the function's region, `HOME_REGION`.
    pub region: String,
    /// Instances it launches are impaired (see `WorldSpec::impaired`).
    pub impaired: bool,
    /// Setup and assertions go through this (unrecorded) proxy into the account.
    pub setup_proxy: Proxy,
    pub sdk: aws_config::SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub table: String,
    pub group: String,
    pub members: Vec<String>,
    pub standalone: Vec<String>,
    /// base64 KMS ciphertext of the Slack URL, under the function's encryption context.
    pub webhook_ciphertext: String,
    /// The KMS key it is encrypted with.
    pub webhook_key: String,
}

pub struct WorldSpec {
    pub group_size: usize,
    pub standalone: usize,
    /// EC2 reports the instances built (and `World::launch`ed) with both status checks
    /// impaired, so an alarm about them is confirmed; false: moto's default, both ok.
    pub impaired: bool,
    pub group_tags: Vec<(&'static str, &'static str)>,
    /// Encryption context function name used to encrypt the webhook.
    pub encrypt_for: &'static str,
    /// The region of its instances and group.
    pub region: &'static str,
}

impl WorldSpec {
    /// A group of `group_size` members and `standalone` instances, defaults otherwise.
    pub fn sized(group_size: usize, standalone: usize) -> WorldSpec {
        WorldSpec {
            group_size,
            standalone,
            ..Default::default()
        }
    }

    /// The same, EC2 reporting every instance healthy (moto's default): a test impairs
    /// what it needs.
    pub fn healthy(group_size: usize, standalone: usize) -> WorldSpec {
        WorldSpec {
            impaired: false,
            ..WorldSpec::sized(group_size, standalone)
        }
    }

    /// No group, no instance: the test adds what it needs.
    pub fn empty() -> WorldSpec {
        WorldSpec {
            group_size: 0,
            standalone: 0,
            ..Default::default()
        }
    }
}

/// An Auto Scaling group `name` of `size` t3.micro members from an image moto ships, in
/// zone a of `region`, with `tags` on the group: (the image, the members).
pub async fn make_group(
    ec2: &aws_sdk_ec2::Client,
    asg: &aws_sdk_autoscaling::Client,
    region: &str,
    name: &str,
    size: i32,
    tags: &[(&str, &str)],
) -> (String, Vec<String>) {
    make_group_in(ec2, asg, (region, &["a"]), name, size, tags).await
}

/// The same, spread over the zones `zones` of `region` (`["a", "b", "c"]`); the emulator
/// places each member in one of them at random.
pub async fn make_group_in(
    ec2: &aws_sdk_ec2::Client,
    asg: &aws_sdk_autoscaling::Client,
    (region, zones): (&str, &[&str]),
    name: &str,
    size: i32,
    tags: &[(&str, &str)],
) -> (String, Vec<String>) {
    let image = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap()
        .images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let template = unique("lt");
    ec2.create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id(&image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut create = asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(&template)
                .version("$Latest")
                .build(),
        )
        .min_size(0)
        .max_size(size.max(1))
        .desired_capacity(size)
        .health_check_grace_period(0)
        .set_availability_zones(Some(zones.iter().map(|z| format!("{region}{z}")).collect()));
    for (k, v) in tags {
        create = create.tags(
            AsgTag::builder()
                .key(*k)
                .value(*v)
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(false)
                .build(),
        );
    }
    create.send().await.unwrap();
    let members = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap()
        .auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    (image, members)
}

/// A world, a recording proxy for the function's calls, and a Slack receiver.
pub async fn setup(spec: WorldSpec) -> (World, Proxy, Slack) {
    let slack = Slack::start().await;
    let proxy = Proxy::start().await;
    let world = World::build(spec, &slack.url).await;
    (world, proxy, slack)
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec {
            group_size: 2,
            standalone: 1,
            impaired: true,
            group_tags: vec![],
            encrypt_for: FUNCTION_NAME,
            region: HOME_REGION,
        }
    }
}

impl World {
    /// Builds directly against moto (not through the proxy), so setup calls are not counted.
    pub async fn build(spec: WorldSpec, slack_url: &str) -> World {
        let account = new_account();
        let setup_proxy = Proxy::for_account(&account).await;
        let home = sdk_config(&setup_proxy.endpoint).await;
        let sdk = sdk_config_in(&setup_proxy.endpoint, spec.region).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let asg = aws_sdk_autoscaling::Client::new(&sdk);
        let ddb = aws_sdk_dynamodb::Client::new(&home);
        let kms = aws_sdk_kms::Client::new(&home);

        let table = unique("ledger");
        ddb.create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        let group = unique("web");
        let (image, members) = make_group(
            &ec2,
            &asg,
            spec.region,
            &group,
            spec.group_size as i32,
            &spec.group_tags,
        )
        .await;
        assert_eq!(members.len(), spec.group_size);

        let mut standalone = vec![];
        if spec.standalone > 0 {
            let out = ec2
                .run_instances()
                .image_id(&image)
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .min_count(spec.standalone as i32)
                .max_count(spec.standalone as i32)
                .send()
                .await
                .unwrap();
            standalone = out
                .instances()
                .iter()
                .map(|i| i.instance_id().unwrap().to_string())
                .collect();
        }

        let key = kms
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();
        let blob = kms
            .encrypt()
            .key_id(&key)
            .plaintext(aws_sdk_kms::primitives::Blob::new(slack_url.as_bytes()))
            .encryption_context("LambdaFunctionName", spec.encrypt_for)
            .send()
            .await
            .unwrap();
        let webhook_ciphertext = base64::engine::general_purpose::STANDARD
            .encode(blob.ciphertext_blob().unwrap().as_ref());

        let world = World {
            account,
            region: spec.region.to_string(),
            impaired: spec.impaired,
            setup_proxy,
            sdk,
            ec2,
            asg,
            ddb,
            kms,
            table,
            group,
            members,
            standalone,
            webhook_ciphertext,
            webhook_key: key,
        };
        if spec.impaired {
            for id in world.members.iter().chain(&world.standalone) {
                world.checks(id, Some("impaired"), Some("impaired")).await;
            }
        }
        world
    }

    /// What EC2 reports of the instance's system and instance status checks from now on
    /// (`None`: moto's own answer, ok). Through the emulator's control API.
    pub async fn checks(&self, instance_id: &str, system: Option<&str>, instance: Option<&str>) {
        control(
            "status",
            serde_json::json!({"instance_id": instance_id, "system": system, "instance": instance}),
        )
        .await;
    }

    /// While `stuck`, StopInstances (forced too) leaves the instance `stopping`.
    pub async fn stuck_stop(&self, instance_id: &str, stuck: bool) {
        control(
            "stuck-stop",
            serde_json::json!({"instance_id": instance_id, "stuck": stuck}),
        )
        .await;
    }

    /// While set, images of the instance stay `pending` until `release_images`.
    pub async fn pending_images(&self, instance_id: &str, pending: bool) {
        control(
            "pending-images",
            serde_json::json!({"instance_id": instance_id, "pending": pending}),
        )
        .await;
    }

    /// What EC2 reports the instance is from now on (`DescribeInstances`), as `facts` gives
    /// of `kernel_id` (`"aki-.."` or null), `root_device_type` (`ebs`, `instance-store`) and
    /// `virtualization_type` (`hvm`, `paravirtual`). Through the emulator's control API.
    pub async fn instance_facts(&self, instance_id: &str, facts: serde_json::Value) {
        let mut body = facts;
        body["instance_id"] = instance_id.into();
        control("instance-facts", body).await;
    }

    /// An operator's status-check alarm for `instance_id`, named as `alarms sync` names it,
    /// with settings no default has (a 5-minute period, a second topic), so that a copy of
    /// it is told from a fresh one.
    pub async fn operator_alarm(&self, instance_id: &str) -> String {
        let cw = aws_sdk_cloudwatch::Client::new(&self.sdk);
        let managed = autoheal::rules::alarms::managed_prefix("autoheal-");
        let mut spec = autoheal::rules::alarms::standard(
            instance_id,
            None,
            &format!("arn:aws:sns:{}:{}:autoheal", self.region, self.account),
            &managed,
            "made by a test",
        );
        spec.shape.period = 300;
        spec.shape.alarm_actions.push(format!(
            "arn:aws:sns:{}:{}:pager",
            self.region, self.account
        ));
        autoheal::aws::alarms::put(&cw, &spec, &[]).await.unwrap();
        spec.name
    }

    /// The alarms named with the default prefix, by name: (instance dimension, period,
    /// alarm actions).
    pub async fn managed_alarms(
        &self,
    ) -> std::collections::BTreeMap<String, (String, i32, Vec<String>)> {
        let cw = aws_sdk_cloudwatch::Client::new(&self.sdk);
        let managed = autoheal::rules::alarms::managed_prefix("autoheal-");
        autoheal::aws::alarms::managed(&cw, &managed)
            .await
            .unwrap()
            .into_iter()
            .map(|a| {
                let id = a.shape.instance_id().unwrap_or_default().to_string();
                (a.name, (id, a.shape.period, a.shape.alarm_actions))
            })
            .collect()
    }

    /// Auto Scaling replaces this world's members marked Unhealthy `delay` seconds after
    /// the mark (None: it does not, moto's default). Through the emulator's control API.
    pub async fn replace_unhealthy(&self, delay: Option<f64>) {
        let body = match delay {
            Some(d) => serde_json::json!({"group": self.group, "delay_seconds": d}),
            None => serde_json::json!({"group": self.group, "off": true}),
        };
        control("asg-replace", body).await;
    }

    /// The replacements the emulator made in this world's group, as it lists them (the
    /// emulator outlives the test binaries: other groups' are not this test's).
    pub async fn replacements(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/_autoheal/asg-replacements", moto_endpoint());
        let body: serde_json::Value = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::json!({"group": self.group}).to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        body["replaced"].as_array().cloned().unwrap_or_default()
    }

    pub async fn release_images(&self, instance_id: &str) {
        control(
            "release-image",
            serde_json::json!({"instance_id": instance_id}),
        )
        .await;
    }

    /// An image moto ships, to launch instances from.
    pub async fn base_image(&self) -> String {
        self.ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap()
            .images()[0]
            .image_id()
            .unwrap()
            .to_string()
    }

    /// Launches `count` standalone t3.micro instances with these tags.
    pub async fn launch(&self, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
        let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
        }
        let ids = self
            .ec2
            .run_instances()
            .image_id(self.base_image().await)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(count)
            .max_count(count)
            .set_tag_specifications((!tags.is_empty()).then(|| vec![spec.build()]))
            .send()
            .await
            .unwrap()
            .instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_string())
            .collect::<Vec<_>>();
        if self.impaired {
            for id in &ids {
                self.checks(id, Some("impaired"), Some("impaired")).await;
            }
        }
        ids
    }

    /// The environment the function would run with (contract variables).
    pub fn env(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("AUTOHEAL_TABLE", self.table.as_str()),
            ("AWS_REGION", HOME_REGION),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME),
            ("SLACK_WEBHOOK_ENCRYPTED", self.webhook_ciphertext.as_str()),
            // A standalone instance is relaunched at once (its ladder's first rung); the
            // ladder tests set the ladders they climb.
            ("AUTOHEAL_SYSTEM_LADDER", "relaunch"),
            ("AUTOHEAL_INSTANCE_LADDER", "relaunch"),
            // Repairs start at once; the grace tests set their grace (or "" for the default).
            ("AUTOHEAL_GRACE_SECONDS", "off"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert(k.to_string(), v.to_string());
            }
        }
        env
    }

    /// The function's dependencies, with AWS reached through `proxy`, on a manual clock
    /// standing at the real time now: the test steps it forward.
    pub async fn deps(&self, proxy: &Proxy, extra_env: &[(&str, &str)]) -> autoheal::app::Deps {
        let clock = autoheal::app::clock::Clock::manual(chrono::Utc::now().timestamp_millis());
        self.deps_on(proxy, extra_env, &clock).await
    }

    /// The same, on a clock the test already holds (several configurations, one time).
    pub async fn deps_on(
        &self,
        proxy: &Proxy,
        extra_env: &[(&str, &str)],
        clock: &autoheal::app::clock::Clock,
    ) -> autoheal::app::Deps {
        proxy.bind(&self.account);
        let env = self.env(extra_env);
        let config = autoheal::app::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
        let sdk = sdk_config(&proxy.endpoint).await;
        autoheal::app::Deps::new(autoheal::aws::Clients::new(&sdk), config, clock.clone())
    }

    pub async fn health(&self, instance_id: &str) -> String {
        self.asg
            .describe_auto_scaling_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .unwrap()
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.health_status())
            .unwrap_or("none")
            // AWS documents HEALTHY/UNHEALTHY; moto answers Healthy/Unhealthy.
            .to_ascii_uppercase()
    }

    /// The ledger head of an instance, as stored.
    pub async fn head(&self, instance_id: &str) -> Option<HashMap<String, String>> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!(
                    "instance#{}/{instance_id}",
                    self.region
                )),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("head".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item().map(|item| {
            item.iter()
                .map(|(k, v)| {
                    let text = v
                        .as_s()
                        .cloned()
                        .or_else(|_| v.as_n().cloned())
                        .unwrap_or_else(|_| format!("{v:?}"));
                    (k.clone(), text)
                })
                .collect()
        })
    }

    /// What anyone allowed to image and tag can do: an image of another instance (`from`),
    /// named and tagged as autoheal names and tags a backup of `victim`. Its id.
    pub async fn plant_backup(&self, victim: &str, from: &str) -> String {
        let name = format!("autoheal-backup-{victim}-29991231T2359Z");
        self.plant_image(from, &name, ("autoheal:backup-of", victim))
            .await
    }

    /// An image of `from` made by someone else, named `name` and carrying `tag`. Its id.
    pub async fn plant_image(&self, from: &str, name: &str, tag: (&str, &str)) -> String {
        let tag = aws_sdk_ec2::types::Tag::builder()
            .key(tag.0)
            .value(tag.1)
            .build();
        self.ec2
            .create_image()
            .instance_id(from)
            .name(name)
            .no_reboot(true)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Image)
                    .tags(tag)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .image_id()
            .unwrap()
            .to_string()
    }

    /// The instance's state as EC2 reports it (`running`, `stopping`, ...).
    pub async fn state(&self, instance_id: &str) -> String {
        self.ec2
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .unwrap()
            .reservations()[0]
            .instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default()
    }

    /// The images and the copies autoheal made of `source` (tagged
    /// `autoheal:source-instance`), as EC2 lists them: (image ids, copy ids).
    pub async fn made_of(&self, source: &str) -> (Vec<String>, Vec<String>) {
        let by_source = || {
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:autoheal:source-instance")
                .values(source)
                .build()
        };
        let images = self
            .ec2
            .describe_images()
            .owners("self")
            .filters(by_source())
            .send()
            .await
            .unwrap()
            .images()
            .iter()
            .filter_map(|i| i.image_id().map(str::to_string))
            .collect();
        let copies = self
            .ec2
            .describe_instances()
            .filters(by_source())
            .send()
            .await
            .unwrap()
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        (images, copies)
    }

    pub async fn tag_instance(&self, instance_id: &str, key: &str, value: &str) {
        self.ec2
            .create_tags()
            .resources(instance_id)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------- events

/// A fixture from `events/`, with the placeholder instance ids replaced.
pub fn event(name: &str, ids: &[&str]) -> Vec<u8> {
    let mut text = std::fs::read_to_string(repo_root().join("events").join(name)).unwrap();
    if let Some(id) = ids.first() {
        text = text.replace(PLACEHOLDER, id);
    }
    if let Some(id) = ids.get(1) {
        text = text.replace(PLACEHOLDER_2, id);
    }
    text.into_bytes()
}

/// The same fixture as a new alarm transition at `time` (same format as the fixture's).
pub fn at_time(bytes: Vec<u8>, time: &str) -> Vec<u8> {
    String::from_utf8(bytes)
        .unwrap()
        .replace(FIXTURE_TIME, time)
        .into_bytes()
}

/// The emulator's control API (tools/moto_server.py): makes the world fail as AWS does.
pub async fn control(what: &str, body: serde_json::Value) {
    let url = format!("{}/_autoheal/{what}", moto_endpoint());
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(
        resp.status().is_success(),
        "{url} {body}: {}",
        resp.status()
    );
}

/// The emulator's account: the function the tests run is deployed in it.
pub const ACCOUNT: &str = "123456789012";

/// An invocation of the function in the emulator's account, ending at `deadline_ms`.
pub fn invocation(deadline_ms: i64) -> autoheal::app::Invocation {
    autoheal::app::Invocation::new(
        deadline_ms,
        &format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:autoheal"),
    )
}

/// An invocation's deadline on the function's clock: 30 s, as the template gives it.
pub fn deadline(deps: &autoheal::app::Deps) -> i64 {
    deps.now_ms() + 30_000
}

/// Runs an event (raw bytes, as Lambda would deliver them) through the handler.
pub async fn invoke(
    deps: &autoheal::app::Deps,
    bytes: &[u8],
) -> Result<autoheal::model::outcome::Response, autoheal::error::Error> {
    let payload = match autoheal::intake::unparseable_reason(bytes) {
        Some(reason) => {
            serde_json::from_slice(&autoheal::intake::unparseable_stand_in(&reason)).unwrap()
        }
        None => serde_json::from_slice(bytes).unwrap(),
    };
    autoheal::pipeline::handle(deps, &payload, &invocation(deadline(deps))).await
}

pub fn summary(r: &autoheal::model::outcome::Response) -> Vec<String> {
    r.outcomes
        .iter()
        .map(|o| format!("{} {}: {}", o.action.as_str(), o.result.as_str(), o.reason))
        .collect()
}

/// The alarm fixture, as if it changed state `ago_ms` before now.
pub fn fresh(name: &str, id: &str, ago_ms: i64) -> Vec<u8> {
    // The OK fixture's own time, for the fixture that has one of its own.
    const OK_TIME: &str = "2026-11-23T03:25:02.000+0000";
    let t = chrono::Utc::now() - chrono::Duration::milliseconds(ago_ms);
    let now = t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let text = String::from_utf8(at_time(event(name, &[id]), &now)).unwrap();
    text.replace(OK_TIME, &now).into_bytes()
}

/// The alarm fixture, as if it changed state `ago_ms` before the function's clock says now.
pub fn alarm_at(deps: &autoheal::app::Deps, name: &str, id: &str, ago_ms: i64) -> Vec<u8> {
    const OK_TIME: &str = "2026-11-23T03:25:02.000+0000";
    let t = chrono::DateTime::from_timestamp_millis(deps.now_ms() - ago_ms).unwrap();
    let now = t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let text = String::from_utf8(at_time(event(name, &[id]), &now)).unwrap();
    text.replace(OK_TIME, &now).into_bytes()
}

pub async fn open_index(world: &World) -> Vec<String> {
    let out = world
        .ddb
        .query()
        .table_name(&world.table)
        .key_condition_expression("pk = :open")
        .expression_attribute_values(
            ":open",
            aws_sdk_dynamodb::types::AttributeValue::S("open".into()),
        )
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| i["sk"].as_s().unwrap().clone())
        .collect()
}

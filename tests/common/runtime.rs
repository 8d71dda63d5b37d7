//! A Lambda Runtime API server, and the function's built binary run against it the way AWS
//! runs it. Included by the function crate's tests beside `common` (`#[path]`): only they
//! have the binary.

use crate::common::{event, reply, serve, unique, Reply};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// (request id, event body) waiting to be handed out.
pub type Queued = (String, Vec<u8>);
/// (`response` or `error`, the body the binary posted).
pub type Answer = (String, serde_json::Value);

/// A minimal Runtime API: `next` long-polls a queue; `response`/`error` complete the
/// invocation that was handed out.
#[derive(Clone)]
pub struct RuntimeApi {
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
    sender: mpsc::Sender<Queued>,
    pub addr: String,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (sender, receiver) = mpsc::channel(16);
        let mut api = RuntimeApi {
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            waiting: Arc::default(),
            sender,
            addr: String::new(),
        };
        let me = api.clone();
        let addr = serve(move |req: Request<Incoming>| {
            let me = me.clone();
            async move { me.route(req).await }
        })
        .await;
        api.addr = addr.to_string();
        api
    }

    async fn route(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_string();
        if path == "/2018-06-01/runtime/invocation/next" {
            let Some((id, body)) = self.queue.lock().await.recv().await else {
                return reply(500, "closed");
            };
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            return hyper::Response::builder()
                .status(200)
                .header("lambda-runtime-aws-request-id", &id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:autoheal",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap();
        }
        let parts: Vec<&str> = path
            .trim_start_matches("/2018-06-01/runtime/invocation/")
            .split('/')
            .collect();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        if let [id, kind @ ("response" | "error")] = parts[..] {
            if let Some(tx) = self.waiting.lock().unwrap().remove(id) {
                let _ = tx.send((
                    kind.to_string(),
                    serde_json::from_slice(&body).unwrap_or_default(),
                ));
            }
            return reply(202, "");
        }
        reply(404, "unknown path")
    }

    pub async fn invoke(&self, body: Vec<u8>) -> Answer {
        let id = unique("req");
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id.clone(), tx);
        self.sender.send((id, body)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the binary answers within 60 s")
            .unwrap()
    }
}

/// The function's built binary with exactly `env` (and what the Lambda runtime sets), its
/// output piped.
pub fn binary(env: &HashMap<String, String>, runtime_api: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_autoheal"));
    cmd.env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Hands the binary `sns-alarm.json` for member `id`, asserts it marked it Unhealthy, and
/// returns that outcome.
pub async fn alarm_marks_member(api: &RuntimeApi, id: &str) -> serde_json::Value {
    let (kind, body) = api.invoke(event("sns-alarm.json", &[id])).await;
    assert_eq!(kind, "response", "{body}");
    let o = &body["outcomes"][0];
    assert_eq!(
        (o["action"].as_str(), o["result"].as_str()),
        (Some("mark_unhealthy"), Some("done")),
        "{body}"
    );
    assert_eq!(o["instance_id"], id);
    o.clone()
}

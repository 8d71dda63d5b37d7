//! Wiring only: logging, configuration, clients, the runtime loop.

use autoheal::app::clock::Clock;
use autoheal::app::config::Config;
use autoheal::app::{Deps, Invocation};
use autoheal::aws::Clients;
use autoheal::lambda::PayloadGuard;
use autoheal::notify::Sink;
use autoheal::pipeline;
use lambda_runtime::{service_fn, LambdaEvent, Runtime};
use serde_json::Value;
use std::sync::Arc;

// One thread: the work is waiting on the network, and a single-threaded runtime starts
// faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(variable = e.variable, error = %e, "bad configuration; not starting");
            std::process::exit(2);
        }
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(config.region.clone()))
        .load()
        .await;
    let deps = Arc::new(Deps::new(Clients::new(&sdk), config, Clock::system()));
    if deps.teller.sink() == Sink::Log {
        tracing::warn!("SLACK_WEBHOOK_ENCRYPTED is not set: reports go to the log only");
    }
    Arc::clone(&deps.teller).prefetch();
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let deps = Arc::clone(&deps);
        async move {
            let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
            let inv = Invocation::new(deadline_ms, &event.context.invoked_function_arn);
            pipeline::handle(&deps, &event.payload, &inv).await
        }
    });
    Runtime::new(handler).layer(PayloadGuard).run().await
}

//! The Lambda edge: a layer that lets any payload through to the handler. `lambda_runtime`
//! fails an invocation whose body is not JSON before our handler runs, and Lambda then
//! retries it; such input can never succeed, so it is swapped for a JSON stand-in that
//! intake turns into an `ignored` outcome.

use crate::intake;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;
use std::task::{Context, Poll};

#[derive(Clone, Copy, Debug, Default)]
pub struct PayloadGuard;

impl<S> Layer<S> for PayloadGuard {
    type Service = PayloadGuardService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PayloadGuardService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct PayloadGuardService<S> {
    inner: S,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for PayloadGuardService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        if let Some(reason) = intake::unparseable_reason(&req.body) {
            req.body = intake::unparseable_stand_in(&reason).into();
        }
        self.inner.call(req)
    }
}

//! Errors that end an invocation. Only what a retry of the whole invocation can fix is
//! `Transient`; everything else becomes a `failed` outcome and the invocation succeeds.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Retryable: {op} failed transiently: {detail}")]
    Transient { op: &'static str, detail: String },
    #[error("{op} failed: {detail}")]
    Permanent {
        op: &'static str,
        code: Option<String>,
        detail: String,
    },
}

/// Error codes AWS uses for throttling and for its own faults.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "KMSInternalException",
    "TransactionInProgressException",
];

impl Error {
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// The operation that failed (`ec2:RebootInstances`, `dynamodb:PutItem`, ...).
    pub fn op(&self) -> &'static str {
        match self {
            Error::Transient { op, .. } | Error::Permanent { op, .. } => op,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Permanent { code, .. } => code.as_deref(),
            Error::Transient { .. } => None,
        }
    }

    /// Classify an SDK error left after the SDK's own retries.
    pub fn from_sdk<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        let detail = DisplayErrorContext(&err).to_string();
        let transient = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            _ => {
                status.is_some_and(|s| s >= 500)
                    || code
                        .as_deref()
                        .is_some_and(|c| TRANSIENT_CODES.contains(&c))
            }
        };
        if transient {
            Error::Transient { op, detail }
        } else {
            Error::Permanent { op, code, detail }
        }
    }
}

//! The Slack webhook URL, decrypted with KMS under the function's encryption context.

use crate::error::Error;
use aws_sdk_kms::primitives::Blob;

/// A URL that must never be logged: Debug and Display hide it.
#[derive(Clone)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(redacted)")
    }
}

pub async fn decrypt_webhook(
    kms: &aws_sdk_kms::Client,
    ciphertext: &[u8],
    function_name: &str,
) -> Result<SecretUrl, Error> {
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(ciphertext))
        .encryption_context("LambdaFunctionName", function_name)
        .send()
        .await
        .map_err(|e| Error::from_sdk("kms:Decrypt", e))?;
    let plaintext = out.plaintext().map(|b| b.as_ref()).unwrap_or_default();
    let url = std::str::from_utf8(plaintext).map(str::trim).unwrap_or("");
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(Error::Permanent {
            op: "kms:Decrypt",
            code: None,
            detail: "SLACK_WEBHOOK_ENCRYPTED does not decrypt to an http(s) URL".into(),
        });
    }
    Ok(SecretUrl(url.to_string()))
}

//! `encrypt-webhook`: the Slack URL, encrypted with KMS under the encryption context the
//! function decrypts with (`LambdaFunctionName`), as base64 for `SLACK_WEBHOOK_ENCRYPTED`.

use autoheal::error::Error;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;

/// The URL as read from stdin: one line, `https://`, nothing else.
pub fn read_url(input: &str) -> Result<String, String> {
    let url = input.trim();
    if url.is_empty() {
        return Err("no URL on stdin: pipe or paste the Slack webhook URL".into());
    }
    if url.lines().count() > 1 || url.contains(char::is_whitespace) {
        return Err("stdin must hold exactly one URL".into());
    }
    if !url.starts_with("https://") {
        return Err("the webhook URL must start with https://".into());
    }
    Ok(url.to_string())
}

pub async fn encrypt(
    kms: &aws_sdk_kms::Client,
    key: &str,
    function_name: &str,
    url: &str,
) -> Result<String, Error> {
    let out = kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(url.as_bytes()))
        .encryption_context("LambdaFunctionName", function_name)
        .send()
        .await
        .map_err(|e| Error::from_sdk("kms:Encrypt", e))?;
    let blob = out
        .ciphertext_blob()
        .map(|b| b.as_ref())
        .unwrap_or_default();
    Ok(base64::engine::general_purpose::STANDARD.encode(blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_https_url() {
        let ok = "https://hooks.slack.com/services/T0/B0/xyz";
        assert_eq!(read_url(&format!("{ok}\n")), Ok(ok.to_string()));
        assert_eq!(read_url(&format!("  {ok}\r\n")), Ok(ok.to_string()));
        for (input, why) in [
            ("", "no URL"),
            ("\n", "no URL"),
            ("http://hooks.slack.com/x", "https://"),
            ("hooks.slack.com/x", "https://"),
            ("https://a\nhttps://b", "exactly one"),
            ("https://a b", "exactly one"),
        ] {
            let err = read_url(input).unwrap_err();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }
}

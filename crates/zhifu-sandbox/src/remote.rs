//! Talking to a sandbox that runs in another process (the `zhifu sandbox`
//! CLI's `trigger` and `resend`), through the control API.

use serde_json::Value;

use crate::control::TriggerRequest;
use crate::error::SandboxError;

/// A failure talking to a remote sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The sandbox could not be reached.
    #[error("could not reach the sandbox at {url}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The sandbox answered with an error.
    #[error("the sandbox answered HTTP {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The control API's error message.
        message: String,
    },
}

impl From<RemoteError> for SandboxError {
    fn from(e: RemoteError) -> Self {
        SandboxError::InvalidInput(e.to_string())
    }
}

async fn post(base: &str, path: &str, body: &Value) -> Result<Value, RemoteError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let resp = client
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|source| RemoteError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let status = resp.status().as_u16();
    let v: Value = resp
        .json()
        .await
        .map_err(|source| RemoteError::Unreachable { url, source })?;
    if status >= 400 {
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned();
        return Err(RemoteError::Refused { status, message });
    }
    Ok(v)
}

/// `POST /sandbox/api/trigger` on the sandbox at `base` (e.g. `http://127.0.0.1:9090`).
///
/// # Errors
/// [`RemoteError`].
pub async fn trigger(base: &str, req: &TriggerRequest) -> Result<Value, RemoteError> {
    let body = serde_json::to_value(req).unwrap_or(Value::Null);
    post(base, "/sandbox/api/trigger", &body).await
}

/// `POST /sandbox/api/notifications/{id}/resend`.
///
/// # Errors
/// [`RemoteError`].
pub async fn resend(base: &str, id: u64) -> Result<Value, RemoteError> {
    post(
        base,
        &format!("/sandbox/api/notifications/{id}/resend"),
        &Value::Object(Default::default()),
    )
    .await
}

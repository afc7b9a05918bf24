//! Talking to a sandbox that runs in another process (the `zhifu sandbox`
//! CLI's `trigger` and `resend`), through the control API.

use serde_json::Value;

use crate::error::SandboxError;
use crate::trigger::TriggerRequest;

async fn post(base: &str, path: &str, body: &Value) -> Result<Value, SandboxError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let resp = client
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|source| SandboxError::RemoteUnreachable {
            url: url.clone(),
            source,
        })?;
    let status = resp.status().as_u16();
    let v: Value = resp
        .json()
        .await
        .map_err(|source| SandboxError::RemoteUnreachable { url, source })?;
    if status >= 400 {
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned();
        return Err(SandboxError::RemoteRefused { status, message });
    }
    Ok(v)
}

/// `POST /sandbox/api/trigger` on the sandbox at `base` (e.g. `http://127.0.0.1:9090`).
///
/// # Errors
/// [`SandboxError::RemoteUnreachable`], [`SandboxError::RemoteRefused`].
pub async fn trigger(base: &str, req: &TriggerRequest) -> Result<Value, SandboxError> {
    let body = serde_json::to_value(req).unwrap_or(Value::Null);
    post(base, "/sandbox/api/trigger", &body).await
}

/// `POST /sandbox/api/notifications/{id}/resend`.
///
/// # Errors
/// [`SandboxError::RemoteUnreachable`], [`SandboxError::RemoteRefused`].
pub async fn resend(base: &str, id: u64) -> Result<Value, SandboxError> {
    post(
        base,
        &format!("/sandbox/api/notifications/{id}/resend"),
        &Value::Object(Default::default()),
    )
    .await
}

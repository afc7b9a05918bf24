//! Certificate mode of a running sandbox (docs/protocol.md §7 and the
//! sandbox section): issuing app certificates, rotating the Alipay
//! certificate, `alipay.open.app.alipaycert.download`, and their control
//! routes; keeping the book in the state directory. The authority and the
//! book of certificates are in `certs`.

use std::sync::Arc;

use alipay::testing::AlipaySigner;
use alipay::{AlipayPublicKey, AppPrivateKey};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::certs::{
    AppCertRequest, CertBook, CertBookRecord, CertFiles, IssuedAppCert, untrusted_cert,
};
use crate::error::SandboxError;
use crate::sandbox::{Sandbox, Signing};
use crate::store::Store;
use crate::wire::{BizError, Reply};

/// The meta key under which a state directory keeps the certificate book.
const CERT_BOOK_META: &str = "cert_book";

async fn save_book(store: &Store, book: &CertBook) -> Result<(), SandboxError> {
    let json =
        serde_json::to_string(&book.to_record()).map_err(|source| SandboxError::CorruptState {
            what: "certificate book",
            source,
        })?;
    store.put_meta(CERT_BOOK_META, &json).await
}

/// Certificate mode at start: the book the state directory kept (same
/// root, Alipay certificates and app certificates as before the restart),
/// else a new authority. Returns the key to sign as "Alipay" with: the
/// current Alipay certificate's. A key given in the configuration
/// (`key_given`) that differs from it gets a new Alipay certificate from
/// the same root.
pub(crate) async fn open_book(
    store: &Store,
    key: AppPrivateKey,
    key_given: bool,
) -> Result<(CertBook, AppPrivateKey), SandboxError> {
    let Some(json) = store.get_meta(CERT_BOOK_META).await? else {
        let book = CertBook::new(&key)?;
        save_book(store, &book).await?;
        return Ok((book, key));
    };
    let record: CertBookRecord =
        serde_json::from_str(&json).map_err(|source| SandboxError::CorruptState {
            what: "certificate book",
            source,
        })?;
    let (book, current) = CertBook::from_record(record)?;
    if !key_given || current.public_key() == key.public_key() {
        return Ok((book, current));
    }
    let pem = book.ca().issue_alipay_cert(&key)?;
    let sn = alipay::cert::cert_sn(pem.as_bytes())?;
    book.add_alipay_cert(sn, pem, &key)?;
    save_book(store, &book).await?;
    Ok((book, key))
}

impl Sandbox {
    /// Writes the certificate book to the state directory (a no-op in
    /// memory).
    async fn save_cert_book(&self) -> Result<(), SandboxError> {
        save_book(&self.inner.store, self.cert_book()?).await
    }

    fn cert_book(&self) -> Result<&CertBook, SandboxError> {
        self.inner.certs.as_ref().ok_or_else(|| {
            SandboxError::InvalidInput("the sandbox is not in certificate mode (cert_mode)".into())
        })
    }

    /// Certificate mode: the root bundle and the current Alipay certificate.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] when not in certificate mode.
    pub fn cert_files(&self) -> Result<CertFiles, SandboxError> {
        Ok(self.cert_book()?.files())
    }

    /// Certificate mode: issues an app certificate for `app_id` (or the only
    /// app), as the console does when a public key or CSR is uploaded. The
    /// gateway then accepts its `app_cert_sn` for that app and checks
    /// signatures with the certified key.
    ///
    /// # Errors
    /// Not in certificate mode, an unknown app, a key or CSR that does not
    /// parse ([`SandboxError::Certificate`]).
    pub async fn issue_app_cert(
        &self,
        app_id: Option<&str>,
        request: AppCertRequest,
    ) -> Result<IssuedAppCert, SandboxError> {
        let book = self.cert_book()?;
        let (app_id, registered) = {
            let st = self.lock().await;
            let id = st.resolve_app(app_id)?;
            let key = st.apps.get(&id).map(|a| a.app_public_key.clone());
            (id, key.unwrap_or_default())
        };
        let pem = match request {
            AppCertRequest::RegisteredKey => {
                let key = AlipayPublicKey::parse(&registered)?;
                book.ca().issue_for_public_key(key.spki_der(), &app_id)?
            }
            AppCertRequest::PublicKey(text) => {
                let key = AlipayPublicKey::parse(&text)?;
                book.ca().issue_for_public_key(key.spki_der(), &app_id)?
            }
            AppCertRequest::Csr(csr) => book.ca().issue_for_csr(&csr)?,
        };
        let sn = alipay::cert::cert_sn(pem.as_bytes())?;
        let key = alipay::cert::cert_public_key(pem.as_bytes())?;
        book.add_app_cert(sn.clone(), app_id.clone(), key);
        self.save_cert_book().await?;
        Ok(IssuedAppCert {
            app_id,
            app_cert_sn: sn,
            app_cert: pem,
        })
    }

    /// Certificate mode: Alipay rotates its certificate. A new "Alipay" key
    /// and certificate sign every answer and notification from now on; the
    /// old certificates stay downloadable. With `untrusted`, the new
    /// certificate is issued by a throwaway authority outside the root
    /// bundle (to test that clients refuse it).
    ///
    /// With a state directory the rotation is written there in the
    /// background; `POST /sandbox/api/certs/rotate` answers only once it
    /// is written.
    ///
    /// # Errors
    /// Not in certificate mode; key or certificate generation failed.
    pub fn rotate_alipay_cert(&self, untrusted: bool) -> Result<CertFiles, SandboxError> {
        let files = self.rotate_in_memory(untrusted)?;
        // Kept synchronous for callers without a runtime at hand; the
        // book written is the one current when the write runs, so
        // overlapping writes still leave the latest.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let sb = self.clone();
            rt.spawn(async move {
                if let Err(e) = sb.save_cert_book().await {
                    tracing::error!(error = %e, "cannot store the rotated Alipay certificate");
                }
            });
        }
        Ok(files)
    }

    fn rotate_in_memory(&self, untrusted: bool) -> Result<CertFiles, SandboxError> {
        let book = self.cert_book()?;
        let key = AppPrivateKey::generate()?;
        let pem = if untrusted {
            untrusted_cert(&key)?
        } else {
            book.ca().issue_alipay_cert(&key)?
        };
        let sn = alipay::cert::cert_sn(pem.as_bytes())?;
        book.add_alipay_cert(sn.clone(), pem, &key)?;
        let signing = Signing {
            signer: Arc::new(AlipaySigner::new(key)),
            cert_sn: Some(sn.clone()),
        };
        match self.inner.signing.write() {
            Ok(mut s) => *s = signing,
            Err(poisoned) => *poisoned.into_inner() = signing,
        }
        tracing::info!(alipay_cert_sn = %sn, untrusted, "sandbox rotated its Alipay certificate");
        Ok(book.files())
    }
}

/// `alipay.open.app.alipaycert.download`: `alipay_cert_content` is the
/// base64 of the PEM certificate (as the official SDKs decode it).
pub(crate) fn download(sb: &Sandbox, biz: Option<&str>) -> Result<Reply, BizError> {
    let book = sb.inner.certs.as_ref().ok_or_else(|| BizError {
        code: "40004",
        msg: "Business Failed",
        sub_code: "isv.app-not-cert-mode",
        sub_msg: "应用未开启公钥证书模式".into(),
        extra: Vec::new(),
    })?;
    let sn = biz
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|v| {
            v.get("alipay_cert_sn")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| BizError::invalid("alipay_cert_sn"))?;
    let pem = book.alipay_cert(&sn).ok_or_else(|| BizError {
        // Unconfirmed (docs/protocol.md, sandbox section): the real
        // gateway's code for an unknown SN.
        code: "40004",
        msg: "Business Failed",
        sub_code: "isv.alipay-cert-not-exist",
        sub_msg: "支付宝公钥证书不存在".into(),
        extra: Vec::new(),
    })?;
    let mut fields = Map::new();
    fields.insert(
        "alipay_cert_content".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(pem)),
    );
    Ok(Reply::success(fields))
}

/// The control routes of certificate mode:
/// - `GET /sandbox/api/certs`: [`CertFiles`];
/// - `POST /sandbox/api/certs/app` `{"app_id"?, "public_key"?, "csr"?}`:
///   an [`IssuedAppCert`] (for the registered key when neither is given);
/// - `POST /sandbox/api/certs/rotate` `{"untrusted"?: bool}`: rotates the
///   Alipay certificate, answers the new [`CertFiles`].
pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/sandbox/api/certs", get(get_files))
        .route("/sandbox/api/certs/app", post(post_app))
        .route("/sandbox/api/certs/rotate", post(post_rotate))
}

fn error(e: &SandboxError) -> Response {
    let (status, code) = match e {
        SandboxError::UnknownApp(_) => (StatusCode::NOT_FOUND, "unknown_app"),
        SandboxError::AmbiguousApp(_) => (StatusCode::BAD_REQUEST, "app_id_required"),
        SandboxError::InvalidInput(_) => (StatusCode::CONFLICT, "not_cert_mode"),
        SandboxError::Certificate(_) | SandboxError::Alipay(_) => {
            (StatusCode::BAD_REQUEST, "invalid_certificate_request")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let mut message = e.to_string();
    if let Some(src) = std::error::Error::source(e) {
        message.push_str(": ");
        message.push_str(&src.to_string());
    }
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn get_files(State(sb): State<Sandbox>) -> Response {
    match sb.cert_files() {
        Ok(f) => Json(f).into_response(),
        Err(e) => error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppCertBody {
    app_id: Option<String>,
    public_key: Option<String>,
    csr: Option<String>,
}

async fn post_app(State(sb): State<Sandbox>, body: Option<Json<AppCertBody>>) -> Response {
    let Json(b) = body.unwrap_or(Json(AppCertBody {
        app_id: None,
        public_key: None,
        csr: None,
    }));
    let request = match (b.public_key, b.csr) {
        (Some(_), Some(_)) => {
            return error(&SandboxError::Certificate(
                "give either public_key or csr, not both".into(),
            ));
        }
        (Some(k), None) => AppCertRequest::PublicKey(k),
        (None, Some(c)) => AppCertRequest::Csr(c),
        (None, None) => AppCertRequest::RegisteredKey,
    };
    match sb.issue_app_cert(b.app_id.as_deref(), request).await {
        Ok(c) => Json(c).into_response(),
        Err(e) => error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    untrusted: bool,
}

async fn post_rotate(State(sb): State<Sandbox>, body: Option<Json<RotateBody>>) -> Response {
    let untrusted = body.map(|Json(b)| b.untrusted).unwrap_or_default();
    let rotated = match sb.rotate_in_memory(untrusted) {
        Ok(f) => f,
        Err(e) => return error(&e),
    };
    match sb.save_cert_book().await {
        Ok(()) => Json(rotated).into_response(),
        Err(e) => error(&e),
    }
}

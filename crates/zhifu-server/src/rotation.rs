//! Certificate mode: learning Alipay's new certificate after it rotated.
//!
//! An answer naming an `alipay_cert_sn` the client does not hold fails with
//! [`alipay::Error::UnknownAlipayCert`]. [`CertRotation::learn`] then takes
//! the certificate from the database (another instance may have learnt it),
//! or downloads it with `alipay.open.app.alipaycert.download`, at most once
//! per `ALIPAY_CERT_DOWNLOAD_INTERVAL_SECS` per instance, and accepts it
//! only if it chains to `ALIPAY_ROOT_CERT` and is within its validity
//! ([`alipay::cert::accept_download`]). Accepted and refused certificates
//! are recorded in the database; an accepted one joins the store the
//! client and the notification verifier share, so answers and notifications
//! signed with it verify from then on without a restart. Only transport
//! failures leave no record (the next unknown answer tries again).
//!
//! Notifications name no certificate: one that no known certificate
//! verifies makes the instance query its order once (rate-limited like the
//! downloads), which names Alipay's current certificate and so learns it;
//! the notification is then verified again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alipay::cert::{DOWNLOAD_METHOD, accept_download, verify_chain};
use alipay::{Alipay, AlipayCertStore, GenericRequest, RequestOptions};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use zhifu_store::{AlipayCertRecord, Store};

use crate::error::chain;

/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15);

/// The rotation state of one instance in certificate mode.
#[derive(Debug)]
pub struct CertRotation {
    certs: Arc<AlipayCertStore>,
    root_pem: String,
    min_interval: Duration,
    /// When this instance last downloaded; the lock also keeps two
    /// downloads from running at once.
    last_download: Mutex<Option<Instant>>,
    /// When a notification that no known certificate verifies last made
    /// this instance ask Alipay (to learn its current certificate).
    last_probe: std::sync::Mutex<Option<Instant>>,
}

/// What [`CertRotation::learn`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learnt {
    /// The certificate is known now (it was, or it was accepted).
    Known,
    /// It was downloaded and refused (recorded with the reason).
    Refused(String),
    /// Nothing was tried: refused before, or a download ran too recently.
    Skipped,
    /// The download failed in transport or the database failed.
    Failed,
}

impl CertRotation {
    /// Rotation over `certs` (the store the client verifies with), trusting
    /// `root_pem`, downloading at most once per `min_interval`.
    pub fn new(certs: Arc<AlipayCertStore>, root_pem: String, min_interval: Duration) -> Self {
        CertRotation {
            certs,
            root_pem,
            min_interval,
            last_download: Mutex::new(None),
            last_probe: std::sync::Mutex::new(None),
        }
    }

    /// Whether a notification no known certificate verifies may make this
    /// instance ask Alipay now (at most once per interval: a forged
    /// notification must not turn into a stream of gateway calls).
    pub fn may_probe(&self) -> bool {
        let mut last = self
            .last_probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Adds the accepted certificates of the database (learnt by any
    /// instance), each checked again against the root bundle and its
    /// validity. Returns how many were added.
    pub async fn load(&self, store: &dyn Store) -> usize {
        let records = match store.accepted_alipay_certs().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot read learnt Alipay certificates");
                return 0;
            }
        };
        records
            .iter()
            .filter(|r| self.add_checked(r).is_some())
            .count()
    }

    fn add_checked(&self, r: &AlipayCertRecord) -> Option<String> {
        let pem = r.pem.as_deref()?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = verify_chain(pem.as_bytes(), self.root_pem.as_bytes(), Some(now)) {
            tracing::warn!(alipay_cert_sn = %r.sn, error = %e, "stored Alipay certificate no longer accepted");
            return None;
        }
        self.certs.insert(pem.as_bytes()).ok()
    }

    /// Makes the certificate `sn` known if it can be trusted.
    pub async fn learn(&self, sn: &str, core: &Alipay, store: &dyn Store) -> Learnt {
        if self.certs.contains(sn) {
            return Learnt::Known;
        }
        match store.get_alipay_cert(sn).await {
            Ok(Some(r)) if r.accepted => {
                if self.add_checked(&r).is_some() {
                    tracing::info!(alipay_cert_sn = %sn, "Alipay certificate taken from the database");
                    return Learnt::Known;
                }
            }
            Ok(Some(_)) => return Learnt::Skipped,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %chain(&e), "cannot read learnt Alipay certificates");
                return Learnt::Failed;
            }
        }
        let mut last = self.last_download.lock().await;
        if self.certs.contains(sn) {
            return Learnt::Known;
        }
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            tracing::debug!(alipay_cert_sn = %sn, "Alipay certificate download rate-limited");
            return Learnt::Skipped;
        }
        *last = Some(Instant::now());
        let body = match download(core, sn).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(alipay_cert_sn = %sn, error = %e, "Alipay certificate download failed");
                return Learnt::Failed;
            }
        };
        let now = OffsetDateTime::now_utc();
        let at = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let (record, outcome) =
            match accept_download(&body, sn, self.root_pem.as_bytes(), now.unix_timestamp()) {
                Ok(cert) => match self.certs.insert(cert.pem.as_bytes()) {
                    Ok(_) => (
                        AlipayCertRecord {
                            sn: sn.to_owned(),
                            pem: Some(cert.pem),
                            accepted: true,
                            reason: None,
                            recorded_at: at,
                        },
                        Learnt::Known,
                    ),
                    Err(e) => refused(sn, e.to_string(), at),
                },
                Err(e) => refused(sn, e.to_string(), at),
            };
        match &outcome {
            Learnt::Known => {
                tracing::info!(alipay_cert_sn = %sn, "Alipay rotated its certificate: downloaded and accepted");
            }
            Learnt::Refused(reason) => {
                tracing::warn!(alipay_cert_sn = %sn, %reason, "downloaded Alipay certificate refused");
            }
            _ => {}
        }
        if let Err(e) = store.record_alipay_cert(&record).await {
            tracing::warn!(error = %chain(&e), "cannot record the Alipay certificate");
        }
        outcome
    }
}

fn refused(sn: &str, reason: String, at: i64) -> (AlipayCertRecord, Learnt) {
    (
        AlipayCertRecord {
            sn: sn.to_owned(),
            pem: None,
            accepted: false,
            reason: Some(reason.clone()),
            recorded_at: at,
        },
        Learnt::Refused(reason),
    )
}

/// Calls `alipay.open.app.alipaycert.download` and returns the raw answer:
/// it is signed with the certificate being asked for, so the client's own
/// verification cannot be used; [`accept_download`] checks it instead.
async fn download(core: &Alipay, sn: &str) -> Result<String, String> {
    let req = GenericRequest::new(DOWNLOAD_METHOD, serde_json::json!({ "alipay_cert_sn": sn }))
        .mark_retry_safe();
    let signed = core
        .sign_request(&req, &RequestOptions::default(), OffsetDateTime::now_utc())
        .map_err(|e| e.to_string())?;
    // Every parameter in the query, as the SDKs send the system ones; the
    // gateway reads `charset` from there.
    let url = reqwest::Url::parse_with_params(core.gateway(), signed.params())
        .map_err(|e| format!("bad gateway URL: {e}"))?;
    let http = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = http
        .post(url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    resp.text().await.map_err(|e| e.to_string())
}

//! Alipay certificates learnt in certificate mode (schema 4): one row per
//! `alipay_cert_sn`, accepted (with its PEM) or refused (with the reason),
//! so every instance trusts the same certificates and a refused one is on
//! record.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, SqlStore};
use crate::Result;

/// One certificate the backend downloaded after an unknown `alipay_cert_sn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayCertRecord {
    /// Its SN (`alipay_cert_sn`).
    pub sn: String,
    /// The certificate, PEM (public), when one was received.
    pub pem: Option<String>,
    /// Whether it chained to the configured root bundle and was valid.
    pub accepted: bool,
    /// Why it was refused.
    pub reason: Option<String>,
    /// When it was recorded, epoch milliseconds.
    pub recorded_at: i64,
}

fn from_row(r: &AnyRow) -> Result<AlipayCertRecord> {
    let accepted: i64 = r.try_get("accepted")?;
    Ok(AlipayCertRecord {
        sn: r.try_get("sn")?,
        pem: r.try_get("pem")?,
        accepted: accepted != 0,
        reason: r.try_get("reason")?,
        recorded_at: r.try_get("recorded_at")?,
    })
}

/// Inserts or replaces the record of an SN. An accepted certificate is
/// never replaced by a refusal (another instance may have accepted it).
pub(super) async fn record(s: &SqlStore, rec: &AlipayCertRecord) -> Result<()> {
    sqlx::query(if s.backend() == Backend::MySql {
        // No `ON CONFLICT … WHERE` in MySQL: each assignment carries the
        // condition, and `accepted`, which the condition reads, comes last
        // (MySQL assigns left to right, each seeing the ones before).
        // `VALUES(col)` is the row that was refused; MySQL 8.0.20+ warns
        // that it is deprecated, MariaDB has no replacement for it.
        "INSERT INTO alipay_certs (sn, pem, accepted, reason, recorded_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON DUPLICATE KEY UPDATE \
         pem = IF(accepted = 0 OR VALUES(accepted) = 1, VALUES(pem), pem), \
         reason = IF(accepted = 0 OR VALUES(accepted) = 1, VALUES(reason), reason), \
         recorded_at = IF(accepted = 0 OR VALUES(accepted) = 1, VALUES(recorded_at), recorded_at), \
         accepted = IF(accepted = 0 OR VALUES(accepted) = 1, VALUES(accepted), accepted)"
    } else {
        "INSERT INTO alipay_certs (sn, pem, accepted, reason, recorded_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sn) DO UPDATE SET pem = excluded.pem, accepted = excluded.accepted, \
         reason = excluded.reason, recorded_at = excluded.recorded_at \
         WHERE alipay_certs.accepted = 0 OR excluded.accepted = 1"
    })
    .bind(&rec.sn)
    .bind(rec.pem.as_deref())
    .bind(i64::from(rec.accepted))
    .bind(rec.reason.as_deref())
    .bind(rec.recorded_at)
    .execute(s.pool())
    .await?;
    Ok(())
}

pub(super) async fn get(s: &SqlStore, sn: &str) -> Result<Option<AlipayCertRecord>> {
    let row = sqlx::query(
        "SELECT sn, pem, accepted, reason, recorded_at FROM alipay_certs WHERE sn = $1",
    )
    .bind(sn)
    .fetch_optional(s.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn accepted(s: &SqlStore) -> Result<Vec<AlipayCertRecord>> {
    let rows = sqlx::query("SELECT sn, pem, accepted, reason, recorded_at FROM alipay_certs WHERE accepted = 1 ORDER BY recorded_at, sn")
    .fetch_all(s.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

//! Which key verifies what Alipay signed: one public key (public-key mode) or
//! a set of Alipay certificates by serial number (certificate mode, docs/protocol.md §7).

use std::sync::Arc;

use crate::cert::AlipayCertStore;
use crate::error::{Error, Result};
use crate::keys::{AlipayPublicKey, SignType};

/// Alipay's verification key material.
#[derive(Debug, Clone)]
pub enum AlipayKeys {
    /// Public-key mode: the key downloaded from the console.
    PublicKey(Arc<AlipayPublicKey>),
    /// Certificate mode: Alipay public-key certificates by SN.
    Certificates(Arc<AlipayCertStore>),
}

impl From<AlipayPublicKey> for AlipayKeys {
    fn from(k: AlipayPublicKey) -> Self {
        AlipayKeys::PublicKey(Arc::new(k))
    }
}

impl From<AlipayCertStore> for AlipayKeys {
    fn from(s: AlipayCertStore) -> Self {
        AlipayKeys::Certificates(Arc::new(s))
    }
}

impl AlipayKeys {
    /// Verifies a message that does not name its key (notifications, returns):
    /// the public key, or in certificate mode each known Alipay certificate.
    pub(crate) fn verify_unnamed(&self, st: SignType, msg: &[u8], sig: &str) -> Result<()> {
        match self {
            AlipayKeys::PublicKey(k) => k.verify(st, msg, sig),
            AlipayKeys::Certificates(store) => {
                if store.keys().iter().any(|k| k.verify(st, msg, sig).is_ok()) {
                    Ok(())
                } else {
                    Err(Error::BadSignature)
                }
            }
        }
    }

    /// Verifies a response that may name its key by `alipay_cert_sn`.
    pub(crate) fn verify_named(
        &self,
        st: SignType,
        msg: &[u8],
        sig: &str,
        cert_sn: Option<&str>,
    ) -> Result<()> {
        match (self, cert_sn) {
            (AlipayKeys::Certificates(store), Some(sn)) => store
                .get(sn)
                .as_ref()
                .ok_or_else(|| Error::UnknownAlipayCert(sn.chars().take(64).collect()))?
                .verify(st, msg, sig),
            _ => self.verify_unnamed(st, msg, sig),
        }
    }
}

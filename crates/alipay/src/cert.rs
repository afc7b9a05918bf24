//! Public-key-certificate mode (公钥证书模式, docs/protocol.md §7): certificate serial numbers
//! (`app_cert_sn`, `alipay_cert_sn`, `alipay_root_cert_sn`) and the store of
//! Alipay certificates that verifies responses.

use md5::{Digest, Md5};
use x509_parser::prelude::*;

use crate::error::{Error, KeyRole, Result};
use crate::keys::AlipayPublicKey;

const RSA_SIG_OID_PREFIX: &str = "1.2.840.113549.1.1";

fn parse_all(text: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut ders = Vec::new();
    for pem in Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| Error::Certificate(format!("bad PEM: {e}")))?;
        if pem.label == "CERTIFICATE" {
            ders.push(pem.contents);
        }
    }
    if ders.is_empty() {
        // A single DER certificate.
        if X509Certificate::from_der(text).is_ok() {
            ders.push(text.to_vec());
        } else {
            return Err(Error::Certificate(
                "no certificate found (expected PEM)".into(),
            ));
        }
    }
    Ok(ders)
}

fn with_cert<T>(der: &[u8], f: impl FnOnce(&X509Certificate<'_>) -> Result<T>) -> Result<T> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| Error::Certificate(format!("bad certificate: {e}")))?;
    f(&cert)
}

/// Issuer DN in RFC 2253 form as Java's `X500Principal.getName()` writes it:
/// RDNs in reverse DER order, `TYPE=value`, `,` without spaces.
fn issuer_rfc2253(cert: &X509Certificate<'_>) -> Result<String> {
    let mut rdns = Vec::new();
    for rdn in cert.issuer().iter_rdn() {
        let mut attrs = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type().to_id_string();
            let short = match oid.as_str() {
                "2.5.4.3" => "CN".to_string(),
                "2.5.4.11" => "OU".to_string(),
                "2.5.4.10" => "O".to_string(),
                "2.5.4.7" => "L".to_string(),
                "2.5.4.8" => "ST".to_string(),
                "2.5.4.6" => "C".to_string(),
                "2.5.4.9" => "STREET".to_string(),
                "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                other => other.to_string(),
            };
            let value = attr
                .as_str()
                .map_err(|_| Error::Certificate("issuer attribute is not a string".into()))?;
            attrs.push(format!("{short}={}", escape_rfc2253(value)));
        }
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn escape_rfc2253(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == v.chars().count() - 1 && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn sn_of(cert: &X509Certificate<'_>) -> Result<String> {
    let issuer = issuer_rfc2253(cert)?;
    let serial = cert.tbs_certificate.serial.to_str_radix(10);
    let digest = Md5::digest(format!("{issuer}{serial}").as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The SN of the first certificate in `pem` (`app_cert_sn` of the app
/// certificate, `alipay_cert_sn` of Alipay's).
///
/// # Errors
/// [`Error::Certificate`].
pub fn cert_sn(pem: &[u8]) -> Result<String> {
    let ders = parse_all(pem)?;
    with_cert(&ders[0], sn_of)
}

/// `alipay_root_cert_sn`: the SNs of the RSA-signed certificates of the
/// root bundle, in file order, joined with `_` (docs/protocol.md §7.3).
///
/// # Errors
/// [`Error::Certificate`], also when the bundle has no RSA certificate.
pub fn root_cert_sn(bundle_pem: &[u8]) -> Result<String> {
    let mut sns = Vec::new();
    for der in parse_all(bundle_pem)? {
        with_cert(&der, |c| {
            if c.signature_algorithm
                .algorithm
                .to_id_string()
                .starts_with(RSA_SIG_OID_PREFIX)
            {
                sns.push(sn_of(c)?);
            }
            Ok(())
        })?;
    }
    if sns.is_empty() {
        return Err(Error::Certificate(
            "the root bundle holds no RSA certificate".into(),
        ));
    }
    Ok(sns.join("_"))
}

/// The public key inside the first certificate of `pem`.
///
/// # Errors
/// [`Error::Certificate`], [`Error::Key`].
pub fn cert_public_key(pem: &[u8]) -> Result<AlipayPublicKey> {
    let ders = parse_all(pem)?;
    with_cert(&ders[0], |c| {
        AlipayPublicKey::from_spki(c.public_key().raw.to_vec(), KeyRole::AlipayPublicKey)
    })
}

/// Alipay public-key certificates by SN.
#[derive(Debug, Clone, Default)]
pub struct AlipayCertStore {
    certs: Vec<(String, AlipayPublicKey)>,
}

impl AlipayCertStore {
    /// A store seeded with `alipayCertPublicKey_RSA2.crt`.
    ///
    /// # Errors
    /// [`Error::Certificate`], [`Error::Key`].
    pub fn new(alipay_cert_pem: &[u8]) -> Result<Self> {
        let mut s = AlipayCertStore::default();
        s.add(alipay_cert_pem)?;
        Ok(s)
    }

    /// Adds a certificate (e.g. one downloaded after Alipay rotated its key)
    /// and returns its SN.
    ///
    /// # Errors
    /// [`Error::Certificate`], [`Error::Key`].
    pub fn add(&mut self, pem: &[u8]) -> Result<String> {
        let sn = cert_sn(pem)?;
        let key = cert_public_key(pem)?;
        self.certs.retain(|(s, _)| *s != sn);
        self.certs.push((sn.clone(), key));
        Ok(sn)
    }

    /// The key of the certificate with this SN.
    pub fn get(&self, sn: &str) -> Option<&AlipayPublicKey> {
        self.certs.iter().find(|(s, _)| s == sn).map(|(_, k)| k)
    }

    /// All keys, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = &AlipayPublicKey> {
        self.certs.iter().map(|(_, k)| k)
    }

    /// The SN of the most recently added certificate.
    pub fn current_sn(&self) -> Option<&str> {
        self.certs.last().map(|(s, _)| s.as_str())
    }
}

//! Public-key-certificate mode (公钥证书模式, docs/protocol.md §7): certificate serial numbers
//! (`app_cert_sn`, `alipay_cert_sn`, `alipay_root_cert_sn`) and the store of
//! Alipay certificates that verifies responses.

use std::sync::{PoisonError, RwLock};

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

fn parse_one(der: &[u8]) -> Result<X509Certificate<'_>> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| Error::Certificate(format!("bad certificate: {e}")))
}

/// Longest chain [`verify_chain`] follows (leaf, intermediates, root).
const MAX_CHAIN: usize = 6;

/// Checks that the first certificate of `pem` chains to a certificate of
/// `root_bundle_pem` (`alipayRootCert.crt`), through the further
/// certificates of `pem` as intermediates (a real
/// `alipayCertPublicKey_RSA2.crt` holds Alipay's certificate and the
/// intermediate that issued it), as the official Java SDK does before it
/// trusts a downloaded certificate. With `now_unix`, every certificate on
/// the way must also be within its validity at that instant.
///
/// # Errors
/// [`Error::Certificate`] saying what fails: an unparseable file, an
/// expired or not yet valid certificate, or no path to a root.
pub fn verify_chain(pem: &[u8], root_bundle_pem: &[u8], now_unix: Option<i64>) -> Result<()> {
    let chain = parse_all(pem)?;
    let roots = parse_all(root_bundle_pem)?;
    let chain: Vec<X509Certificate<'_>> =
        chain.iter().map(|d| parse_one(d)).collect::<Result<_>>()?;
    let roots: Vec<X509Certificate<'_>> =
        roots.iter().map(|d| parse_one(d)).collect::<Result<_>>()?;
    let in_validity = |c: &X509Certificate<'_>| -> Result<()> {
        if let Some(now) = now_unix {
            let v = c.validity();
            if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
                return Err(Error::Certificate(format!(
                    "certificate {} is outside its validity ({} to {})",
                    c.subject(),
                    v.not_before,
                    v.not_after
                )));
            }
        }
        Ok(())
    };
    let signs = |issuer: &X509Certificate<'_>, c: &X509Certificate<'_>| {
        issuer.subject().as_raw() == c.issuer().as_raw()
            && c.verify_signature(Some(issuer.public_key())).is_ok()
    };
    let mut current = &chain[0];
    for _ in 0..MAX_CHAIN {
        in_validity(current)?;
        if let Some(root) = roots.iter().find(|r| signs(r, current)) {
            in_validity(root)?;
            return Ok(());
        }
        match chain
            .iter()
            .find(|i| !std::ptr::eq(*i, current) && signs(i, current))
        {
            Some(next) => current = next,
            None => break,
        }
    }
    Err(Error::Certificate(format!(
        "certificate {} does not chain to the root bundle",
        chain[0].subject()
    )))
}

/// Alipay public-key certificates by SN. Shared (`Arc`) between a client
/// and its notification verifier, it can learn a certificate through
/// [`AlipayCertStore::insert`] while both use it (rotation).
#[derive(Debug, Default)]
pub struct AlipayCertStore {
    certs: RwLock<Vec<(String, AlipayPublicKey)>>,
}

impl Clone for AlipayCertStore {
    fn clone(&self) -> Self {
        AlipayCertStore {
            certs: RwLock::new(self.read().clone()),
        }
    }
}

impl AlipayCertStore {
    /// A store seeded with `alipayCertPublicKey_RSA2.crt`.
    ///
    /// # Errors
    /// [`Error::Certificate`], [`Error::Key`].
    pub fn new(alipay_cert_pem: &[u8]) -> Result<Self> {
        let s = AlipayCertStore::default();
        s.insert(alipay_cert_pem)?;
        Ok(s)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(String, AlipayPublicKey)>> {
        self.certs.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a certificate (e.g. one downloaded after Alipay rotated its key)
    /// and returns its SN.
    ///
    /// # Errors
    /// [`Error::Certificate`], [`Error::Key`].
    pub fn add(&mut self, pem: &[u8]) -> Result<String> {
        self.insert(pem)
    }

    /// As [`AlipayCertStore::add`] through a shared reference: the clients
    /// and verifiers holding this store see the certificate at once. Check
    /// a downloaded certificate first ([`verify_chain`], [`accept_download`]).
    ///
    /// # Errors
    /// [`Error::Certificate`], [`Error::Key`].
    pub fn insert(&self, pem: &[u8]) -> Result<String> {
        let sn = cert_sn(pem)?;
        let key = cert_public_key(pem)?;
        let mut certs = self.certs.write().unwrap_or_else(PoisonError::into_inner);
        certs.retain(|(s, _)| *s != sn);
        certs.push((sn.clone(), key));
        Ok(sn)
    }

    /// The key of the certificate with this SN.
    pub fn get(&self, sn: &str) -> Option<AlipayPublicKey> {
        self.read()
            .iter()
            .find(|(s, _)| s == sn)
            .map(|(_, k)| k.clone())
    }

    /// Whether a certificate with this SN is known.
    pub fn contains(&self, sn: &str) -> bool {
        self.read().iter().any(|(s, _)| s == sn)
    }

    /// All keys, oldest first.
    pub fn keys(&self) -> Vec<AlipayPublicKey> {
        self.read().iter().map(|(_, k)| k.clone()).collect()
    }

    /// The SN of the most recently added certificate.
    pub fn current_sn(&self) -> Option<String> {
        self.read().last().map(|(s, _)| s.clone())
    }
}

/// The method that hands out Alipay certificates by SN.
pub const DOWNLOAD_METHOD: &str = "alipay.open.app.alipaycert.download";

/// A certificate taken from an `alipay.open.app.alipaycert.download` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedCert {
    /// Its SN.
    pub sn: String,
    /// The certificate, PEM.
    pub pem: String,
}

/// Checks an `alipay.open.app.alipaycert.download` answer (the raw body)
/// the way the official Java SDK does, and more: `code` 10000, the
/// certificate in `alipay_cert_content` (base64 of the PEM) chains to
/// `root_bundle_pem` and is within its validity at `now_unix`, its SN is
/// the `expected_sn` asked for, and, when the answer names that certificate
/// as its signer (`alipay_cert_sn`), its signature verifies with the
/// certificate's own key (the client does not know that certificate yet).
///
/// # Errors
/// [`Error::Certificate`] saying which check failed; [`Error::Gateway`]-free:
/// a refusal is reported as [`Error::Certificate`] with its codes.
pub fn accept_download(
    body: &str,
    expected_sn: &str,
    root_bundle_pem: &[u8],
    now_unix: i64,
) -> Result<DownloadedCert> {
    use base64::Engine as _;
    let node = crate::response::extract_signed_node(body, DOWNLOAD_METHOD)?;
    let fields: serde_json::Value = serde_json::from_str(node.text)
        .map_err(|_| Error::Certificate("the download answer is not JSON".into()))?;
    let field = |k: &str| fields.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if field("code") != "10000" {
        return Err(Error::Certificate(format!(
            "the download was refused: {} {}",
            field("code"),
            field("sub_code")
        )));
    }
    let pem = base64::engine::general_purpose::STANDARD
        .decode(field("alipay_cert_content").trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Error::Certificate("alipay_cert_content is not base64 of a PEM".into()))?;
    let sn = cert_sn(pem.as_bytes())?;
    if sn != expected_sn {
        return Err(Error::Certificate(format!(
            "the download answered certificate {sn}, not {}",
            expected_sn.chars().take(64).collect::<String>()
        )));
    }
    verify_chain(pem.as_bytes(), root_bundle_pem, Some(now_unix))?;
    // Trust comes from the chain; an answer signed with the certificate it
    // carries must also verify with it (one signed with yet another
    // certificate, after a second rotation, is judged by the chain alone).
    if node.alipay_cert_sn.as_deref() == Some(sn.as_str()) {
        let sign = node
            .sign
            .ok_or_else(|| Error::Certificate("the download answer is not signed".into()))?;
        cert_public_key(pem.as_bytes())?
            .verify(crate::keys::SignType::Rsa2, node.text.as_bytes(), &sign)
            .map_err(|_| {
                Error::Certificate(
                    "the download answer's signature does not verify with the certificate it carries"
                        .into(),
                )
            })?;
    }
    Ok(DownloadedCert { sn, pem })
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    const UPSTREAM: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/upstream/nodejs-sdk/certs/"
    );

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{UPSTREAM}{name}")).unwrap()
    }

    #[test]
    fn no_upstream_fixture_holds_a_complete_chain() {
        // Every upstream Alipay certificate file here comes from Alipay's
        // sandbox: issued by "…Class 2 R1 test", whose issuer ("…R1 test")
        // is in none of the bundles next to it (they hold the production
        // roots, or test roots without that intermediate). A strict chain
        // check, like the Java SDK's, refuses them all; what a production
        // download carries is unconfirmed (docs/protocol.md §14).
        let up = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/upstream/");
        let file = |p: &str| std::fs::read(format!("{up}{p}")).unwrap();
        for (cert, root) in [
            (
                "gopay/certs/alipayPublicCert.crt",
                "gopay/certs/alipayRootCert.crt",
            ),
            (
                "yansongda-pay/certs/alipayPublicCert.crt",
                "yansongda-pay/certs/alipayRootCert.crt",
            ),
            (
                "fzlee-alipay/certs/dc_alipay_public_key_cert.crt",
                "fzlee-alipay/certs/dc_alipay_root_cert.crt",
            ),
        ] {
            let e = verify_chain(&file(cert), &file(root), None).unwrap_err();
            assert!(e.to_string().contains("does not chain"), "{cert}: {e}");
        }
    }

    #[test]
    fn a_leaf_without_its_intermediate_does_not_chain() {
        // The upstream fixture holds Alipay's certificate alone; its issuer
        // ("Ant Financial Certification Authority Class 2 R1") is an
        // intermediate that is not in the root bundle.
        let root = read("alipayRootCert.crt");
        let e = verify_chain(&read("alipayCertPublicKey_RSA2.crt"), &root, None).unwrap_err();
        assert!(e.to_string().contains("does not chain"), "{e}");
        let app = read("appCertPublicKey_2021001161683774.crt");
        assert!(verify_chain(&app, &root, None).is_err());
        // Long after every certificate expired: the validity is checked first.
        let e = verify_chain(&app, &root, Some(32_503_680_000)).unwrap_err();
        assert!(e.to_string().contains("validity"), "{e}");
    }
}

//! Public-key-certificate mode (公钥证书模式, docs/protocol.md §7) for the
//! sandbox: its own root certificate authority, which issues the "Alipay"
//! public-key certificate (`alipayCertPublicKey_RSA2.crt`) and app
//! certificates (`appCertPublicKey_<appid>.crt`) from an app public key or
//! a CSR, as the open platform's console does.
//!
//! Only the certificates' shape matters to clients: an RSA root signed with
//! SHA256withRSA (its serial numbers make `alipay_root_cert_sn`), an ECDSA
//! root next to it in the bundle (real `alipayRootCert.crt` files hold
//! non-RSA roots that `alipay_root_cert_sn` skips), and leaf certificates
//! with random serial numbers, so every issued certificate has its own SN.
//! Certificates are issued with aws-lc-rs through `rcgen`; nothing here
//! reads the process environment or the disk: a state directory keeps the
//! whole book as one `CertBookRecord` (written and read by `cert_mode`),
//! so a restarted sandbox has the same root, Alipay certificate and app
//! certificates, and the files a merchant configured keep working.
//!
//! With [`crate::SandboxConfig::cert_mode`] the running sandbox keeps a
//! `CertBook`: the gateway (`intake`) requires every request's
//! `app_cert_sn` to name a certificate issued for the app and its
//! `alipay_root_cert_sn` to be the bundle's; answers carry `alipay_cert_sn`.
//! The sandbox's operations on it (issuing, rotating, the download API and
//! the control routes) are in `cert_mode`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use alipay::{AlipayPublicKey, AppPrivateKey};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
    SerialNumber, SubjectPublicKeyInfo,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::SandboxError;

/// The organisation every sandbox certificate names.
const ORG: &str = "Zhifu Sandbox";
/// How long leaf certificates are valid (from an hour ago).
const LEAF_VALIDITY: Duration = Duration::days(5 * 365);

fn cert_err(what: &str, e: rcgen::Error) -> SandboxError {
    SandboxError::Certificate(format!("{what}: {e}"))
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // aws-lc-rs's system random source; it fails only without one, and
    // then the clock still gives distinct serial numbers.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_be_bytes();
    }
    // Positive and of full length as a DER integer.
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    SerialNumber::from_slice(&bytes)
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "CN");
    dn.push(DnType::OrganizationName, ORG);
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.serial_number = Some(random_serial());
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(20 * 365);
    p
}

fn leaf_params(cn: &str, now: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(random_serial());
    p.not_before = now - Duration::hours(1);
    p.not_after = now + LEAF_VALIDITY;
    p
}

/// An RSA key as an `rcgen` signing key.
fn rsa_key_pair(key: &AppPrivateKey) -> Result<KeyPair, SandboxError> {
    let pem = key.to_pkcs8_pem()?;
    KeyPair::from_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).map_err(|e| cert_err("RSA key", e))
}

/// The sandbox's root certificate authority: an RSA root that signs every
/// certificate, and the root bundle (`alipayRootCert.crt`) clients trust.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    bundle_pem: String,
    root_pem: String,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

/// A certificate and the key it certifies (the sandbox's "Alipay" side).
#[derive(Debug)]
pub struct IssuedKey {
    /// The private key (signs responses and notifications).
    pub key: AppPrivateKey,
    /// Its certificate, PEM.
    pub cert_pem: String,
}

impl CertAuthority {
    /// A fresh authority: a new RSA root key and certificate, and a bundle
    /// holding the RSA root after an ECDSA root (so `alipay_root_cert_sn`
    /// must skip a certificate, as with the real bundle).
    ///
    /// # Errors
    /// [`SandboxError::Certificate`] if a key or certificate cannot be made.
    pub fn generate() -> Result<Self, SandboxError> {
        Self::generate_at(OffsetDateTime::now_utc())
    }

    fn generate_at(now: OffsetDateTime) -> Result<Self, SandboxError> {
        let root_key = rsa_key_pair(&AppPrivateKey::generate()?)?;
        let root_params = ca_params("Zhifu Sandbox Root CA R1", now);
        let root = root_params
            .self_signed(&root_key)
            .map_err(|e| cert_err("root certificate", e))?;
        let ec_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| cert_err("ECDSA root key", e))?;
        let ec_root = ca_params("Zhifu Sandbox Root CA E1", now)
            .self_signed(&ec_key)
            .map_err(|e| cert_err("ECDSA root certificate", e))?;
        let root_pem = root.pem();
        Ok(CertAuthority {
            bundle_pem: format!("{}{}", ec_root.pem(), root_pem),
            root_pem,
            issuer: Issuer::new(root_params, root_key),
        })
    }

    /// The authority a state directory kept: the RSA root's key (PKCS#8
    /// PEM) and certificate, and the bundle.
    fn from_parts(
        root_key_pem: &str,
        root_pem: &str,
        bundle_pem: &str,
    ) -> Result<Self, SandboxError> {
        let key = KeyPair::from_pem_and_sign_algo(root_key_pem, &PKCS_RSA_SHA256)
            .map_err(|e| cert_err("stored root key", e))?;
        let issuer = Issuer::from_ca_cert_pem(root_pem, key)
            .map_err(|e| cert_err("stored root certificate", e))?;
        Ok(CertAuthority {
            issuer,
            bundle_pem: bundle_pem.to_owned(),
            root_pem: root_pem.to_owned(),
        })
    }

    /// The root bundle (`alipayRootCert.crt`).
    pub fn root_bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The RSA root certificate alone.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Issues a certificate for an app public key (SubjectPublicKeyInfo,
    /// DER), named after `app_id` (`appCertPublicKey_<app_id>.crt`).
    ///
    /// # Errors
    /// [`SandboxError::Certificate`] for a key that is not a public key.
    pub fn issue_for_public_key(
        &self,
        spki_der: &[u8],
        app_id: &str,
    ) -> Result<String, SandboxError> {
        let spki = SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| cert_err("not a public key", e))?;
        let cert = leaf_params(app_id, OffsetDateTime::now_utc())
            .signed_by(&spki, &self.issuer)
            .map_err(|e| cert_err("app certificate", e))?;
        Ok(cert.pem())
    }

    /// Issues a certificate for a PEM certificate signing request (its
    /// signature is checked; its subject is kept).
    ///
    /// # Errors
    /// [`SandboxError::Certificate`] for a CSR that does not parse or whose
    /// signature does not verify.
    pub fn issue_for_csr(&self, csr_pem: &str) -> Result<String, SandboxError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| cert_err("not a valid CSR", e))?;
        let now = OffsetDateTime::now_utc();
        let subject = csr.params.distinguished_name.clone();
        csr.params = leaf_params("app", now);
        csr.params.distinguished_name = subject;
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| cert_err("app certificate", e))?;
        Ok(cert.pem())
    }

    /// Issues the sandbox's "Alipay" certificate for `key`
    /// (`alipayCertPublicKey_RSA2.crt`).
    ///
    /// # Errors
    /// [`SandboxError::Certificate`].
    pub fn issue_alipay_cert(&self, key: &AppPrivateKey) -> Result<String, SandboxError> {
        self.issue_for_public_key(key.public_key().spki_der(), "Zhifu Sandbox Alipay RSA2")
    }

    /// A new "Alipay" key and its certificate (rotation).
    ///
    /// # Errors
    /// [`SandboxError::Certificate`], [`SandboxError::Alipay`].
    pub fn new_alipay_key(&self) -> Result<IssuedKey, SandboxError> {
        let key = AppPrivateKey::generate()?;
        let cert_pem = self.issue_alipay_cert(&key)?;
        Ok(IssuedKey { key, cert_pem })
    }
}

/// A certificate signed by a root no one trusts (for tests of refusal):
/// a throwaway authority issues it for `key`.
///
/// # Errors
/// As [`CertAuthority::generate`].
pub fn untrusted_cert(key: &AppPrivateKey) -> Result<String, SandboxError> {
    CertAuthority::generate()?.issue_alipay_cert(key)
}

/// The method that hands out Alipay certificates by SN.
pub const DOWNLOAD_METHOD: &str = "alipay.open.app.alipaycert.download";

/// What a sandbox in certificate mode gives a merchant to configure.
#[derive(Debug, Clone, Serialize)]
pub struct CertFiles {
    /// `alipayRootCert.crt`.
    pub root_cert: String,
    /// `alipayCertPublicKey_RSA2.crt`: the current Alipay certificate.
    pub alipay_cert: String,
    /// Its SN (`alipay_cert_sn` of the answers).
    pub alipay_cert_sn: String,
    /// `alipay_root_cert_sn` requests must carry.
    pub alipay_root_cert_sn: String,
}

/// An app certificate the sandbox issued.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedAppCert {
    /// The app it belongs to.
    pub app_id: String,
    /// `app_cert_sn` requests must carry.
    pub app_cert_sn: String,
    /// `appCertPublicKey_<app_id>.crt`, PEM.
    pub app_cert: String,
}

/// What an app certificate is issued for.
#[derive(Debug, Clone)]
pub enum AppCertRequest {
    /// The app's registered public key.
    RegisteredKey,
    /// A public key (PEM, or base64 of the SubjectPublicKeyInfo).
    PublicKey(String),
    /// A PEM certificate signing request.
    Csr(String),
}

struct Book {
    /// Every Alipay certificate issued, by SN, the current one last.
    alipay: Vec<(String, String)>,
    /// The key of the current Alipay certificate (PKCS#8, base64): what a
    /// restarted sandbox signs with.
    alipay_key: String,
    /// App certificates: SN → (app id, the certified key).
    apps: HashMap<String, (String, AlipayPublicKey)>,
}

/// Certificate mode as a state directory keeps it (JSON). Holds private
/// keys: the sandbox's own, never a merchant's.
#[derive(Serialize, Deserialize)]
pub(crate) struct CertBookRecord {
    /// The RSA root's key, PKCS#8 PEM.
    root_key: String,
    root_cert: String,
    bundle: String,
    /// (SN, PEM) of every Alipay certificate, the current one last.
    alipay: Vec<(String, String)>,
    /// The current Alipay certificate's key, PKCS#8 base64.
    alipay_key: String,
    /// (SN, app id, certified key as base64 SubjectPublicKeyInfo).
    apps: Vec<(String, String, String)>,
}

/// The certificate-mode state of a running sandbox: the authority, the
/// Alipay certificates (for `alipay.open.app.alipaycert.download`) and the
/// app certificates the gateway accepts. In memory only.
pub(crate) struct CertBook {
    ca: CertAuthority,
    root_sn: String,
    book: Mutex<Book>,
}

impl CertBook {
    /// A new authority and an Alipay certificate for `alipay_key`.
    pub(crate) fn new(alipay_key: &AppPrivateKey) -> Result<Self, SandboxError> {
        let ca = CertAuthority::generate()?;
        let root_sn = alipay::cert::root_cert_sn(ca.root_bundle_pem().as_bytes())?;
        let pem = ca.issue_alipay_cert(alipay_key)?;
        let sn = alipay::cert::cert_sn(pem.as_bytes())?;
        Ok(CertBook {
            ca,
            root_sn,
            book: Mutex::new(Book {
                alipay: vec![(sn, pem)],
                alipay_key: alipay_key.to_pkcs8_base64()?,
                apps: HashMap::new(),
            }),
        })
    }

    /// The book as a state directory keeps it.
    pub(crate) fn to_record(&self) -> CertBookRecord {
        let book = self.book();
        CertBookRecord {
            root_key: self.ca.issuer.key().serialize_pem(),
            root_cert: self.ca.root_pem.clone(),
            bundle: self.ca.bundle_pem.clone(),
            alipay: book.alipay.clone(),
            alipay_key: book.alipay_key.clone(),
            apps: book
                .apps
                .iter()
                .map(|(sn, (app, key))| (sn.clone(), app.clone(), key.to_base64()))
                .collect(),
        }
    }

    /// The book a state directory kept, and the key of its current Alipay
    /// certificate.
    ///
    /// # Errors
    /// [`SandboxError::Certificate`] or [`SandboxError::Alipay`] for a
    /// record whose keys or certificates do not parse.
    pub(crate) fn from_record(r: CertBookRecord) -> Result<(Self, AppPrivateKey), SandboxError> {
        let ca = CertAuthority::from_parts(&r.root_key, &r.root_cert, &r.bundle)?;
        let root_sn = alipay::cert::root_cert_sn(r.bundle.as_bytes())?;
        let key = AppPrivateKey::parse(&r.alipay_key)?;
        if r.alipay.is_empty() {
            return Err(SandboxError::Certificate(
                "the stored certificate book has no Alipay certificate".into(),
            ));
        }
        let mut apps = HashMap::new();
        for (sn, app_id, spki) in r.apps {
            apps.insert(sn, (app_id, AlipayPublicKey::parse(&spki)?));
        }
        let book = Book {
            alipay: r.alipay,
            alipay_key: r.alipay_key,
            apps,
        };
        Ok((
            CertBook {
                ca,
                root_sn,
                book: Mutex::new(book),
            },
            key,
        ))
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The SN of the current Alipay certificate.
    pub(crate) fn current_sn(&self) -> String {
        self.book()
            .alipay
            .last()
            .map(|(sn, _)| sn.clone())
            .unwrap_or_default()
    }

    /// `alipay_root_cert_sn`.
    pub(crate) fn root_sn(&self) -> &str {
        &self.root_sn
    }

    /// The key of the app certificate `sn`, if it was issued for `app_id`.
    pub(crate) fn app_key(&self, app_id: &str, sn: &str) -> Option<AlipayPublicKey> {
        self.book()
            .apps
            .get(sn)
            .filter(|(id, _)| id == app_id)
            .map(|(_, spki)| spki.clone())
    }

    /// An Alipay certificate by SN (PEM).
    pub(crate) fn alipay_cert(&self, sn: &str) -> Option<String> {
        self.book()
            .alipay
            .iter()
            .find(|(s, _)| s == sn)
            .map(|(_, pem)| pem.clone())
    }

    /// The authority.
    pub(crate) fn ca(&self) -> &CertAuthority {
        &self.ca
    }

    /// Records an app certificate the gateway accepts for `app_id`.
    pub(crate) fn add_app_cert(&self, sn: String, app_id: String, key: AlipayPublicKey) {
        self.book().apps.insert(sn, (app_id, key));
    }

    /// Records a new current Alipay certificate and its key.
    ///
    /// # Errors
    /// [`SandboxError::Alipay`] if the key cannot be encoded.
    pub(crate) fn add_alipay_cert(
        &self,
        sn: String,
        pem: String,
        key: &AppPrivateKey,
    ) -> Result<(), SandboxError> {
        let key = key.to_pkcs8_base64()?;
        let mut book = self.book();
        book.alipay.push((sn, pem));
        book.alipay_key = key;
        Ok(())
    }

    /// The files a merchant configures, with the current Alipay certificate.
    pub(crate) fn files(&self) -> CertFiles {
        let (sn, pem) = self.book().alipay.last().cloned().unwrap_or_default();
        CertFiles {
            root_cert: self.ca.root_bundle_pem().to_owned(),
            alipay_cert: pem,
            alipay_cert_sn: sn,
            alipay_root_cert_sn: self.root_sn.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_have_their_own_sns_and_keys() {
        let ca = CertAuthority::generate().unwrap();
        let app = AppPrivateKey::generate().unwrap();
        let a = ca
            .issue_for_public_key(app.public_key().spki_der(), "2021000000000001")
            .unwrap();
        let b = ca
            .issue_for_public_key(app.public_key().spki_der(), "2021000000000001")
            .unwrap();
        let sn_a = alipay::cert::cert_sn(a.as_bytes()).unwrap();
        assert_eq!(sn_a.len(), 32);
        assert_ne!(sn_a, alipay::cert::cert_sn(b.as_bytes()).unwrap());
        let key = alipay::cert::cert_public_key(a.as_bytes()).unwrap();
        assert_eq!(key.spki_der(), app.public_key().spki_der());
        // Only the RSA root counts in alipay_root_cert_sn.
        let root_sn = alipay::cert::root_cert_sn(ca.root_bundle_pem().as_bytes()).unwrap();
        assert_eq!(
            root_sn,
            alipay::cert::cert_sn(ca.root_pem().as_bytes()).unwrap()
        );
    }

    #[test]
    fn a_csr_is_checked_and_certified() {
        let ca = CertAuthority::generate().unwrap();
        let app = AppPrivateKey::generate().unwrap();
        let kp = rsa_key_pair(&app).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = name("my app");
        let csr = p.serialize_request(&kp).unwrap().pem().unwrap();
        let cert = ca.issue_for_csr(&csr).unwrap();
        let key = alipay::cert::cert_public_key(cert.as_bytes()).unwrap();
        assert_eq!(key.spki_der(), app.public_key().spki_der());
        assert!(
            ca.issue_for_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            )
            .is_err()
        );
        assert!(ca.issue_for_public_key(b"not a key", "x").is_err());
    }

    #[test]
    fn a_stored_book_keeps_its_root_and_certificates() {
        let alipay_key = AppPrivateKey::generate().unwrap();
        let book = CertBook::new(&alipay_key).unwrap();
        let app = AppPrivateKey::generate().unwrap();
        let app_pem = book
            .ca()
            .issue_for_public_key(app.public_key().spki_der(), "2021000000000001")
            .unwrap();
        let app_sn = alipay::cert::cert_sn(app_pem.as_bytes()).unwrap();
        book.add_app_cert(app_sn.clone(), "2021000000000001".into(), app.public_key());
        let rotated = AppPrivateKey::generate().unwrap();
        let pem = book.ca().issue_alipay_cert(&rotated).unwrap();
        let sn = alipay::cert::cert_sn(pem.as_bytes()).unwrap();
        book.add_alipay_cert(sn.clone(), pem, &rotated).unwrap();

        let json = serde_json::to_string(&book.to_record()).unwrap();
        let (again, key) = CertBook::from_record(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(again.root_sn(), book.root_sn());
        assert_eq!(again.current_sn(), sn);
        assert_eq!(again.files().root_cert, book.files().root_cert);
        assert_eq!(
            key.public_key(),
            rotated.public_key(),
            "the rotated key signs"
        );
        assert_eq!(
            again.app_key("2021000000000001", &app_sn),
            Some(app.public_key())
        );
        // The reloaded authority issues certificates that chain to the
        // bundle merchants already hold.
        let later = again.ca().issue_alipay_cert(&key).unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        alipay::cert::verify_chain(
            later.as_bytes(),
            book.ca().root_bundle_pem().as_bytes(),
            Some(now),
        )
        .unwrap();
    }

    #[test]
    fn certificates_chain_to_their_own_root_only() {
        let ca = CertAuthority::generate().unwrap();
        let key = AppPrivateKey::generate().unwrap();
        let ours = ca.issue_alipay_cert(&key).unwrap();
        let bundle = ca.root_bundle_pem().as_bytes();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        alipay::cert::verify_chain(ours.as_bytes(), bundle, Some(now)).unwrap();
        let theirs = untrusted_cert(&key).unwrap();
        assert!(alipay::cert::verify_chain(theirs.as_bytes(), bundle, Some(now)).is_err());
        // Outside the leaf's validity.
        let later = now + LEAF_VALIDITY.whole_seconds() + 86_400;
        let e = alipay::cert::verify_chain(ours.as_bytes(), bundle, Some(later)).unwrap_err();
        assert!(e.to_string().contains("validity"), "{e}");
    }
}

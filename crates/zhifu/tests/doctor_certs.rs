//! `zhifu doctor`'s certificate checks, run as the built binary on files
//! a merchant could have downloaded: which file is which (told by content),
//! whether the app certificate certifies the private key, validity (not yet
//! valid, expired, expiring within 30 days), the SNs, and the chain of
//! Alipay's certificate to the root bundle (a warning only).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alipay::AppPrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PKCS_RSA_SHA256, SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};
use zhifu_sandbox::certs::{CertAuthority, untrusted_cert};

const APP_ID: &str = "2021000000000077";

fn zhifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    c.env_clear().stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A merchant's files: the app key, and certificates from one authority.
struct Files {
    dir: tempfile::TempDir,
    app_key: AppPrivateKey,
    key: PathBuf,
    app_cert: PathBuf,
    alipay_cert: PathBuf,
    root: PathBuf,
}

impl Files {
    fn new() -> Self {
        let ca = CertAuthority::generate().unwrap();
        let app_key = AppPrivateKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, content: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, content).unwrap();
            p
        };
        let key = write("app_private_key.pem", &app_key.to_pkcs8_pem().unwrap());
        let app_cert = write(
            "appCertPublicKey.crt",
            &ca.issue_for_public_key(app_key.public_key().spki_der(), APP_ID)
                .unwrap(),
        );
        let alipay = ca.new_alipay_key().unwrap();
        let alipay_cert = write("alipayCertPublicKey_RSA2.crt", &alipay.cert_pem);
        let root = write("alipayRootCert.crt", ca.root_bundle_pem());
        Files {
            dir,
            app_key,
            key,
            app_cert,
            alipay_cert,
            root,
        }
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// `zhifu doctor` (offline) with these three certificate files.
    fn doctor(&self, app_cert: &Path, alipay_cert: &Path, root: &Path) -> (Option<i32>, String) {
        let o = zhifu()
            .args(["doctor", "--app-id", APP_ID, "--private-key"])
            .arg(&self.key)
            .arg("--app-cert")
            .arg(app_cert)
            .arg("--alipay-public-cert")
            .arg(alipay_cert)
            .arg("--alipay-root-cert")
            .arg(root)
            .output()
            .unwrap();
        (o.status.code(), text(&o))
    }
}

fn sn(path: &Path) -> String {
    alipay::cert::cert_sn(&std::fs::read(path).unwrap()).unwrap()
}

/// An app certificate for `key` valid from `not_before` to `not_after`,
/// from a root of its own (chains are not checked for app certificates).
fn app_cert_valid(
    key: &AppPrivateKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> String {
    let root_key = KeyPair::from_pem_and_sign_algo(
        &AppPrivateKey::generate().unwrap().to_pkcs8_pem().unwrap(),
        &PKCS_RSA_SHA256,
    )
    .unwrap();
    let mut root = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Test Root");
    root.distinguished_name = dn;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(root, root_key);
    let mut leaf = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, APP_ID);
    leaf.distinguished_name = dn;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let spki = SubjectPublicKeyInfo::from_der(key.public_key().spki_der()).unwrap();
    leaf.signed_by(&spki, &issuer).unwrap().pem()
}

#[test]
fn doctor_names_each_file_and_its_serial_numbers() {
    let f = Files::new();
    let (code, out) = f.doctor(&f.app_cert, &f.alipay_cert, &f.root);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("signing mode: public-key certificates"),
        "{out}"
    );
    assert!(out.contains("the app certificate"), "{out}");
    assert!(out.contains("it certifies the app private key"), "{out}");
    assert!(out.contains("Alipay's certificate"), "{out}");
    assert!(
        out.contains("the root bundle: 2 self-signed root certificate(s)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("app_cert_sn {}", sn(&f.app_cert))),
        "{out}"
    );
    assert!(
        out.contains(&format!("alipay_cert_sn {}", sn(&f.alipay_cert))),
        "{out}"
    );
    let root_sn = alipay::cert::root_cert_sn(&std::fs::read(&f.root).unwrap()).unwrap();
    assert!(
        out.contains(&format!("alipay_root_cert_sn {root_sn}")),
        "{out}"
    );
    assert!(out.contains("chains to a root of the bundle"), "{out}");
    assert!(out.contains("valid from"), "{out}");
    assert!(out.contains("no problems found"), "{out}");
    assert!(!out.contains("  ! "), "no warnings: {out}");
}

#[test]
fn doctor_tells_which_file_was_given_in_the_wrong_place() {
    let f = Files::new();
    // The root bundle given as the app certificate.
    let (code, out) = f.doctor(&f.root, &f.alipay_cert, &f.root);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "this is Alipay's root certificate bundle (alipayRootCert.crt), not the app certificate"
        ),
        "{out}"
    );
    // App and Alipay certificates swapped.
    let (code, out) = f.doctor(&f.alipay_cert, &f.app_cert, &f.root);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("look swapped"), "{out}");
    assert!(
        out.contains("this is your app certificate, not Alipay's"),
        "{out}"
    );
    // Alipay's certificate given as the root bundle.
    let (code, out) = f.doctor(&f.app_cert, &f.alipay_cert, &f.alipay_cert);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("this is Alipay's public-key certificate (alipayCertPublicKey_RSA2.crt), not Alipay's root certificate bundle"),
        "{out}"
    );
    // A key where a certificate belongs.
    let key_file = f.write("app_public_key.pem", &f.app_key.public_key().to_pem());
    let (code, out) = f.doctor(&key_file, &f.alipay_cert, &f.root);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("holds no certificate"), "{out}");
    // The certificate of another key.
    let other = Files::new();
    let (code, out) = f.doctor(&other.app_cert, &f.alipay_cert, &f.root);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("certifies another key than the app private key"),
        "{out}"
    );
}

#[test]
fn doctor_checks_validity_and_warns_before_expiry() {
    let f = Files::new();
    let now = OffsetDateTime::now_utc();
    let cases = [
        (
            "expired.crt",
            now - Duration::days(400),
            now - Duration::days(2),
            Some(1),
            "expired on",
        ),
        (
            "future.crt",
            now + Duration::days(3),
            now + Duration::days(400),
            Some(1),
            "not valid before",
        ),
        (
            "soon.crt",
            now - Duration::days(300),
            now + Duration::days(10),
            Some(0),
            "day(s): renew it",
        ),
    ];
    for (name, from, until, code, says) in cases {
        let cert = f.write(name, &app_cert_valid(&f.app_key, from, until));
        let (got, out) = f.doctor(&cert, &f.alipay_cert, &f.root);
        assert_eq!(got, code, "{name}: {out}");
        assert!(out.contains(says), "{name}: {out}");
    }
    let soon = f.write(
        "soon.crt",
        &app_cert_valid(
            &f.app_key,
            now - Duration::days(300),
            now + Duration::days(10),
        ),
    );
    let (_, out) = f.doctor(&soon, &f.alipay_cert, &f.root);
    assert!(out.contains("  ! "), "{out}");
    assert!(out.contains("no problems found, 1 warning(s)"), "{out}");
}

#[test]
fn doctor_warns_when_alipays_certificate_does_not_chain() {
    let f = Files::new();
    let alipay_key = AppPrivateKey::generate().unwrap();
    let stranger = f.write("stranger.crt", &untrusted_cert(&alipay_key).unwrap());
    let (code, out) = f.doctor(&f.app_cert, &stranger, &f.root);
    assert_eq!(code, Some(0), "a warning, not a problem: {out}");
    assert!(out.contains("does not chain to the root bundle"), "{out}");
    assert!(out.contains("1 warning(s)"), "{out}");

    // The official SDK's fixtures (Alipay's sandbox certificates, long
    // expired) do not chain to the bundle next to them either; their SNs
    // are still given.
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../alipay/tests/vectors/upstream/nodejs-sdk/certs");
    let (alipay, root) = (
        upstream.join("alipayCertPublicKey_RSA2.crt"),
        upstream.join("alipayRootCert.crt"),
    );
    let (code, out) = f.doctor(&f.app_cert, &alipay, &root);
    let root_sn = alipay::cert::root_cert_sn(&std::fs::read(&root).unwrap()).unwrap();
    assert!(
        root_sn.contains('_'),
        "the real bundle has two RSA roots: {root_sn}"
    );
    assert!(
        out.contains(&format!("alipay_root_cert_sn {root_sn}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("alipay_cert_sn {}", sn(&alipay))),
        "{out}"
    );
    assert!(
        out.contains("the root bundle: 4 self-signed root certificate(s)"),
        "{out}"
    );
    assert!(out.contains("does not chain"), "{out}");
    assert!(out.contains("expired on 2022-05-14"), "{out}");
    assert_eq!(code, Some(1), "{out}");
}

#[test]
fn doctor_env_says_which_certificate_variable_holds_what() {
    let f = Files::new();
    let run = |app_cert: &Path| {
        let o = zhifu()
            .args(["doctor", "--env"])
            .env("ALIPAY_APP_ID", APP_ID)
            .env("ALIPAY_APP_PRIVATE_KEY_FILE", &f.key)
            .env("ALIPAY_APP_CERT_FILE", app_cert)
            .env("ALIPAY_PUBLIC_CERT_FILE", &f.alipay_cert)
            .env("ALIPAY_ROOT_CERT_FILE", &f.root)
            .env("ALIPAY_GATEWAY", "sandbox")
            .env("ZHIFU_PUBLIC_URL", "https://pay.example.com")
            .env("ZHIFU_API_KEY", "doctor-test-key-0123456789")
            .env(
                "ZHIFU_DATABASE_URL",
                format!("sqlite:{}", f.dir.path().join("zhifu.db").display()),
            )
            .output()
            .unwrap();
        (o.status.code(), text(&o))
    };
    let (code, out) = run(&f.app_cert);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("app certificate (ALIPAY_APP_CERT)"), "{out}");
    assert!(
        out.contains(&format!("app_cert_sn {}", sn(&f.app_cert))),
        "{out}"
    );

    // `zhifu serve` refuses the root bundle as ALIPAY_APP_CERT; the doctor
    // says so, and then what that file is.
    let (code, out) = run(&f.root);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ALIPAY_APP_CERT"), "{out}");
    assert!(out.contains("`zhifu serve` stops at start-up"), "{out}");
    assert!(
        out.contains(
            "this is Alipay's root certificate bundle (alipayRootCert.crt), not the app certificate"
        ),
        "{out}"
    );
}

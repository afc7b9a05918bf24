//! `zhifu keygen --csr` run as the built binary: the certificate signing
//! request parses, is signed by the key written next to it and carries its
//! public key and the subject asked for; the sandbox in certificate mode
//! issues an app certificate from it over its control API; and with that
//! certificate `zhifu doctor --online` in certificate mode finds the
//! configuration working end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use alipay::AppPrivateKey;
use serde_json::{Value, json};
use x509_parser::prelude::*;
use zhifu_sandbox::{SandboxConfig, testing};

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

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// The CSR's subject (RFC 4514 text) and public key (SubjectPublicKeyInfo
/// DER), after checking its signature with that key.
fn read_csr(path: &Path) -> (String, Vec<u8>) {
    let pem_text = std::fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem_text).unwrap();
    assert_eq!(pem.label, "CERTIFICATE REQUEST");
    let (rest, csr) = X509CertificationRequest::from_der(&pem.contents).unwrap();
    assert!(rest.is_empty());
    csr.verify_signature()
        .expect("the CSR is signed by the key it carries");
    let info = &csr.certification_request_info;
    (info.subject.to_string(), info.subject_pki.raw.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_csr_is_issued_by_the_sandbox_and_passes_the_doctor() {
    let sb = testing::spawn_with(SandboxConfig {
        cert_mode: true,
        ..testing::auto_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = zhifu();
    c.args(["keygen", "--csr", "--org", "Zhifu Test Co", "--app-id"])
        .arg(&sb.app_id)
        .arg("--out")
        .arg(dir.path());
    let o = run(c).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("app_cert_request.csr"), "{}", text(&o));

    let key_pem = std::fs::read_to_string(dir.path().join("app_private_key.pem")).unwrap();
    let key = AppPrivateKey::parse(&key_pem).unwrap();
    let csr_path = dir.path().join("app_cert_request.csr");
    let (subject, spki) = read_csr(&csr_path);
    assert_eq!(
        spki,
        key.public_key().spki_der(),
        "the CSR carries the written key"
    );
    assert!(subject.contains(&format!("CN={}", sb.app_id)), "{subject}");
    assert!(subject.contains("O=Zhifu Test Co"), "{subject}");
    assert!(subject.contains("C=CN"), "{subject}");

    // The console's step: upload the CSR, download the app certificate.
    let http = reqwest::Client::new();
    let csr = std::fs::read_to_string(&csr_path).unwrap();
    let issued: Value = http
        .post(format!("{}/sandbox/api/certs/app", sb.base))
        .json(&json!({"app_id": sb.app_id, "csr": csr}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_cert = issued["app_cert"]
        .as_str()
        .expect("a certificate")
        .to_owned();
    let certified = alipay::cert::cert_public_key(app_cert.as_bytes()).unwrap();
    assert_eq!(certified.spki_der(), key.public_key().spki_der());
    assert_eq!(
        issued["app_cert_sn"].as_str().unwrap(),
        alipay::cert::cert_sn(app_cert.as_bytes()).unwrap()
    );

    // The three files as a merchant downloads them, checked online.
    let files = sb.sandbox.cert_files().unwrap();
    let write = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let app_crt = write(&format!("appCertPublicKey_{}.crt", sb.app_id), &app_cert);
    let alipay_crt = write("alipayCertPublicKey_RSA2.crt", &files.alipay_cert);
    let root_crt = write("alipayRootCert.crt", &files.root_cert);
    let mut c = zhifu();
    c.args([
        "doctor",
        "--online",
        "--app-id",
        &sb.app_id,
        "--gateway",
        &sb.gateway,
    ])
    .arg("--private-key")
    .arg(dir.path().join("app_private_key.pem"))
    .arg("--app-cert")
    .arg(&app_crt)
    .arg("--alipay-public-key")
    .arg(&alipay_crt)
    .arg("--alipay-root-cert")
    .arg(&root_crt);
    let o = run(c).await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "app_cert_sn {}",
            issued["app_cert_sn"].as_str().unwrap()
        )),
        "{out}"
    );
    assert!(out.contains("ACQ.TRADE_NOT_EXIST"), "{out}");
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn keygen_csr_for_an_existing_key_and_never_over_one() {
    let keys = tempfile::tempdir().unwrap();
    let o = zhifu()
        .args(["keygen", "--out"])
        .arg(keys.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !keys.path().join("app_cert_request.csr").exists(),
        "no CSR unless asked"
    );
    let key_path = keys.path().join("app_private_key.pem");
    let key = AppPrivateKey::parse(&std::fs::read_to_string(&key_path).unwrap()).unwrap();

    // --key: only the CSR, for the key already uploaded (key mode → certificate mode).
    let out = tempfile::tempdir().unwrap();
    let csr = |extra: &[&str]| {
        zhifu()
            .args(["keygen", "--csr", "--key"])
            .arg(&key_path)
            .arg("--out")
            .arg(out.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let o = csr(&["--org", "Shop", "--org-unit", "Payments"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!out.path().join("app_private_key.pem").exists());
    let (subject, spki) = read_csr(&out.path().join("app_cert_request.csr"));
    assert_eq!(spki, key.public_key().spki_der());
    // Without an app id the organisation names the app.
    assert!(subject.contains("CN=Shop"), "{subject}");
    assert!(subject.contains("OU=Payments"), "{subject}");

    // A second run refuses to replace the CSR; --force does.
    let first = std::fs::read(out.path().join("app_cert_request.csr")).unwrap();
    let again = csr(&[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("app_cert_request.csr"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read(out.path().join("app_cert_request.csr")).unwrap(),
        first
    );
    let forced = csr(&["--force", "--common-name", "shop.example.com"]);
    assert!(forced.status.success(), "{}", text(&forced));
    let (subject, _) = read_csr(&out.path().join("app_cert_request.csr"));
    assert!(subject.contains("CN=shop.example.com"), "{subject}");

    // A bad subject field is refused before anything is written.
    let bad = tempfile::tempdir().unwrap();
    let o = zhifu()
        .args(["keygen", "--csr", "--country", "China", "--out"])
        .arg(bad.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--country"), "{}", text(&o));
    assert!(!bad.path().join("app_private_key.pem").exists());
}

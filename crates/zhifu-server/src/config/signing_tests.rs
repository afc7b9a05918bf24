//! Tests of certificate mode's variables: every bad combination stops
//! start-up naming the variable; a good set gives the serial numbers and
//! builds a client that sends them.

use std::collections::HashMap;

use alipay::AppPrivateKey;
use alipay::cert::{cert_sn, root_cert_sn};
use zhifu_sandbox::certs::{CertAuthority, untrusted_cert};

use super::*;
use crate::config::Config;

struct Certs {
    app_key: AppPrivateKey,
    app_cert: String,
    alipay_cert: String,
    root: String,
}

fn certs() -> Certs {
    let ca = CertAuthority::generate().unwrap();
    let app_key = AppPrivateKey::generate().unwrap();
    let app_cert = ca
        .issue_for_public_key(app_key.public_key().spki_der(), "2021000122671080")
        .unwrap();
    let alipay_cert = ca
        .issue_alipay_cert(&AppPrivateKey::generate().unwrap())
        .unwrap();
    Certs {
        app_key,
        app_cert,
        alipay_cert,
        root: ca.root_bundle_pem().to_owned(),
    }
}

fn base(c: &Certs) -> HashMap<String, String> {
    [
        ("ALIPAY_APP_ID", "2021000122671080".to_owned()),
        ("ALIPAY_APP_PRIVATE_KEY", c.app_key.to_pkcs8_pem().unwrap()),
        ("ZHIFU_PUBLIC_URL", "https://shop.example.com".to_owned()),
        ("ZHIFU_API_KEY", "0123456789abcdef0123".to_owned()),
        ("ZHIFU_DATABASE_URL", "sqlite::memory:".to_owned()),
        (APP_CERT, c.app_cert.clone()),
        (PUBLIC_CERT, c.alipay_cert.clone()),
        (ROOT_CERT, c.root.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn config(env: HashMap<String, String>) -> Result<Config, ConfigError> {
    Config::from_source(&Source::from_map(env)?)
}

fn err(env: HashMap<String, String>) -> ConfigError {
    let e = config(env).unwrap_err();
    // Certificates are public, but no message repeats a file's content.
    assert!(!e.to_string().contains("BEGIN"), "{e}");
    assert!(!e.to_string().contains("-----"), "{e}");
    e
}

#[test]
fn certificate_mode_gives_the_serial_numbers() {
    let c = certs();
    let cfg = config(base(&c)).unwrap();
    let SigningMode::Certificates(s) = &cfg.signing else {
        panic!("expected certificate mode, got {:?}", cfg.signing);
    };
    assert_eq!(cfg.signing.name(), "certificates");
    assert_eq!(s.app_cert_sn, cert_sn(c.app_cert.as_bytes()).unwrap());
    assert_eq!(s.alipay_cert_sn, cert_sn(c.alipay_cert.as_bytes()).unwrap());
    assert_eq!(
        s.alipay_root_cert_sn,
        root_cert_sn(c.root.as_bytes()).unwrap()
    );
    assert!(s.alipay_certs.get(&s.alipay_cert_sn).is_some());
    // Settings' Alipay key is the one in Alipay's certificate.
    assert_eq!(
        cfg.settings.alipay_public_key.spki_der(),
        alipay::cert::cert_public_key(c.alipay_cert.as_bytes())
            .unwrap()
            .spki_der()
    );
    // The Debug shows serial numbers, not certificates.
    assert!(!format!("{cfg:?}").contains("BEGIN CERTIFICATE"));
}

#[test]
fn the_file_variants_are_read() {
    let c = certs();
    let dir = std::env::temp_dir().join(format!("zhifu-certs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut env = base(&c);
    for (var, file) in [
        (APP_CERT, "appCertPublicKey_2021000122671080.crt"),
        (PUBLIC_CERT, "alipayCertPublicKey_RSA2.crt"),
        (ROOT_CERT, "alipayRootCert.crt"),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, env.remove(var).unwrap()).unwrap();
        env.insert(format!("{var}_FILE"), path.display().to_string());
    }
    let cfg = config(env.clone()).unwrap();
    assert_eq!(cfg.signing.name(), "certificates");
    // A file that is not there is named by its variable.
    env.insert(
        format!("{ROOT_CERT}_FILE"),
        dir.join("missing.crt").display().to_string(),
    );
    assert_eq!(err(env).var, "ALIPAY_ROOT_CERT_FILE");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_certificate_is_required_once_one_is_set() {
    let c = certs();
    for missing in [APP_CERT, PUBLIC_CERT, ROOT_CERT] {
        let mut env = base(&c);
        env.remove(missing);
        let e = err(env);
        assert_eq!(e.var, missing);
        assert!(e.problem.contains("certificate mode"), "{e}");
    }
    // An app certificate alone: the first missing one is named, and why.
    let mut env = base(&c);
    env.remove(PUBLIC_CERT);
    env.remove(ROOT_CERT);
    env.insert(
        "ALIPAY_PUBLIC_KEY".into(),
        c.app_key.public_key().to_base64(),
    );
    let e = err(env);
    assert_eq!(e.var, "ALIPAY_PUBLIC_KEY");
    let mut env = base(&c);
    env.remove(PUBLIC_CERT);
    env.remove(ROOT_CERT);
    let e = err(env);
    assert_eq!(e.var, PUBLIC_CERT);
    assert!(e.problem.contains("ALIPAY_APP_CERT is set"), "{e}");
}

#[test]
fn a_public_key_and_a_public_certificate_conflict() {
    let c = certs();
    let alipay = AppPrivateKey::generate().unwrap();
    let mut env = base(&c);
    env.insert("ALIPAY_PUBLIC_KEY".into(), alipay.public_key().to_base64());
    let e = err(env);
    assert_eq!(e.var, "ALIPAY_PUBLIC_KEY");
    assert!(e.problem.contains("not both"), "{e}");
    // Also as a file.
    let mut env = base(&c);
    env.insert("ALIPAY_PUBLIC_KEY_FILE".into(), "/nonexistent".into());
    assert_eq!(err(env).var, "ALIPAY_PUBLIC_KEY");
}

#[test]
fn the_app_certificate_must_certify_the_app_key() {
    let c = certs();
    let mut env = base(&c);
    let other = AppPrivateKey::generate().unwrap();
    env.insert(
        "ALIPAY_APP_PRIVATE_KEY".into(),
        other.to_pkcs8_pem().unwrap(),
    );
    let e = err(env);
    assert_eq!(e.var, APP_CERT);
    assert!(e.problem.contains("ALIPAY_APP_PRIVATE_KEY"), "{e}");
    // Swapped files are recognised.
    let mut env = base(&c);
    env.insert(APP_CERT.into(), c.alipay_cert.clone());
    env.insert(PUBLIC_CERT.into(), c.app_cert.clone());
    let e = err(env);
    assert_eq!(e.var, APP_CERT);
    assert!(e.problem.contains("swapped"), "{e}");
    // The app's certificate given as Alipay's.
    let mut env = base(&c);
    env.insert(PUBLIC_CERT.into(), c.app_cert.clone());
    let e = err(env);
    assert_eq!(e.var, PUBLIC_CERT);
}

#[test]
fn a_leaf_is_not_a_root_bundle_and_garbage_is_named() {
    let c = certs();
    let mut env = base(&c);
    env.insert(ROOT_CERT.into(), c.alipay_cert.clone());
    let e = err(env);
    assert_eq!(e.var, ROOT_CERT);
    assert!(e.problem.contains("alipayRootCert.crt"), "{e}");
    for var in [APP_CERT, PUBLIC_CERT, ROOT_CERT] {
        let mut env = base(&c);
        env.insert(
            var.into(),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        );
        assert_eq!(err(env).var, var);
        let mut env = base(&c);
        // A private key where a certificate belongs.
        env.insert(var.into(), c.app_key.to_pkcs8_pem().unwrap());
        assert_eq!(err(env).var, var);
    }
}

#[test]
fn key_mode_is_unchanged() {
    let c = certs();
    let mut env = base(&c);
    for var in [APP_CERT, PUBLIC_CERT, ROOT_CERT] {
        env.remove(var);
    }
    let e = err(env.clone());
    assert_eq!(e.var, "ALIPAY_PUBLIC_KEY");
    let alipay = AppPrivateKey::generate().unwrap();
    env.insert("ALIPAY_PUBLIC_KEY".into(), alipay.public_key().to_base64());
    let cfg = config(env).unwrap();
    assert!(matches!(cfg.signing, SigningMode::PublicKey));
    assert_eq!(cfg.signing.name(), "key");
}

#[tokio::test]
async fn the_state_sends_the_serial_numbers_in_certificate_mode() {
    let c = certs();
    let cfg = config(base(&c)).unwrap();
    let SigningMode::Certificates(s) = cfg.signing.clone() else {
        panic!("certificate mode");
    };
    let state = crate::AppState::open(cfg, true).await.unwrap();
    let core = state.alipay().core();
    let sns = core.cert_sns().expect("certificate mode");
    assert_eq!(sns.app_cert_sn, s.app_cert_sn);
    assert_eq!(sns.alipay_root_cert_sn, s.alipay_root_cert_sn);
    assert!(matches!(
        core.alipay_keys(),
        alipay::AlipayKeys::Certificates(_)
    ));
    // And key mode sends none.
    let mut env = base(&c);
    for var in [APP_CERT, PUBLIC_CERT, ROOT_CERT] {
        env.remove(var);
    }
    env.insert(
        "ALIPAY_PUBLIC_KEY".into(),
        AppPrivateKey::generate().unwrap().public_key().to_base64(),
    );
    let state = crate::AppState::open(config(env).unwrap(), true)
        .await
        .unwrap();
    assert!(state.alipay().core().cert_sns().is_none());
}

#[test]
fn an_untrusted_alipay_certificate_still_starts() {
    // Start-up does not check the chain (a real alipayCertPublicKey_RSA2.crt
    // may lack its intermediate); downloaded certificates are checked.
    let c = certs();
    let mut env = base(&c);
    env.insert(
        PUBLIC_CERT.into(),
        untrusted_cert(&AppPrivateKey::generate().unwrap()).unwrap(),
    );
    assert!(config(env).is_ok());
}

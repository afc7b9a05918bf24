//! The protocol commands, run as the built binary the way scripts use them:
//! exact stdin/stdout formats and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const V: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../alipay/tests/vectors/upstream"
);

fn vector(p: &str) -> PathBuf {
    PathBuf::from(format!("{V}/{p}"))
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json(p: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(vector(p)).unwrap()).unwrap()
}

fn form(fields: &serde_json::Value) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields.as_object().unwrap() {
        s.append_pair(k, v.as_str().unwrap());
    }
    s.finish()
}

#[test]
fn sign_prints_the_signature_or_the_content() {
    let v = json("derived/request_sign_rsa2_rsa.json");
    let body = form(&v["params"]);
    let key = vector("nodejs-sdk/keys/app-private-key-pkcs8-no-wrapper.pem");
    let out = run(&["sign", "--private-key", key.to_str().unwrap()], &body);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", v["expected_sign_RSA2"].as_str().unwrap())
    );
    let out = run(
        &["sign", "--private-key", key.to_str().unwrap(), "--content"],
        &body,
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", v["expected_sign_content"].as_str().unwrap())
    );
    let out = run(
        &[
            "sign",
            "--private-key",
            key.to_str().unwrap(),
            "--sign-type",
            "RSA",
        ],
        &body.replace("sign_type=RSA2", "sign_type=RSA"),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        v["rsa_sha1_variant"]["expected_sign_RSA"].as_str().unwrap()
    );
    // A public key where the private key belongs: exit 2 with the reason.
    let out = run(
        &[
            "sign",
            "--private-key",
            vector("nodejs-sdk/keys/app-public-key.pem")
                .to_str()
                .unwrap(),
        ],
        &body,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("looks like a public key"));
}

#[test]
fn verify_notify_exit_codes_and_output() {
    let v = json("derived/notify_sign_emulator.json");
    let body = v["http"]["body"].as_str().unwrap();
    let key = vector("fzlee-alipay/keys/ali_public_key.pem");
    let out = run(
        &[
            "verify-notify",
            "--alipay-public-key",
            key.to_str().unwrap(),
        ],
        body,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["passback_params"], "merchant%3Dyes%26x%3D1");
    assert_eq!(printed["sign_type"], "RSA2");
    assert!(printed["sign"].as_str().unwrap().starts_with("YGeAs9"));

    let tampered = body.replace("total_amount=88.88", "total_amount=0.01");
    let out = run(
        &[
            "verify-notify",
            "--alipay-public-key",
            key.to_str().unwrap(),
        ],
        &tampered,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    assert!(out.stdout.is_empty());

    let out = run(
        &[
            "verify-notify",
            "--alipay-public-key",
            key.to_str().unwrap(),
        ],
        "a=1&a=2",
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "duplicate keys are unusable input"
    );
    let out = run(
        &["verify-notify", "--alipay-public-key", "/nonexistent"],
        body,
    );
    assert_eq!(out.status.code(), Some(2));
    // A certificate works as the key option too.
    let v = json("yansongda-pay/cases/notify_with_plus_in_subject.json");
    let cert = vector("yansongda-pay/certs/alipayPublicCert.crt");
    let out = run(
        &[
            "verify-notify",
            "--alipay-public-key",
            cert.to_str().unwrap(),
        ],
        &form(&v["params_after_form_decoding"]),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn verify_response_exit_codes_and_output() {
    let v = json("derived/response_sign_emulator.json");
    let key = vector("fzlee-alipay/keys/ali_public_key.pem");
    let args = [
        "verify-response",
        "--alipay-public-key",
        key.to_str().unwrap(),
        "--method",
        "alipay.trade.query",
    ];
    let out = run(&args, v["raw_body_public_key_mode"].as_str().unwrap());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        v["signed_substring"].as_str().unwrap()
    );
    // A signed business error verifies: exit 0 with the node.
    let out = run(
        &args,
        v["business_error_example"]["raw_body"].as_str().unwrap(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ACQ.TRADE_NOT_EXIST"));
    // Tampered: 1. Unsigned success: 1. Not JSON: 2.
    let tampered = v["raw_body_public_key_mode"]
        .as_str()
        .unwrap()
        .replace("88.88", "8.88");
    assert_eq!(run(&args, &tampered).status.code(), Some(1));
    let unsigned = v["raw_body_public_key_mode"]
        .as_str()
        .unwrap()
        .replace(v["sign"].as_str().unwrap(), "");
    assert_eq!(run(&args, &unsigned).status.code(), Some(1));
    assert_eq!(run(&args, "<html>502</html>").status.code(), Some(2));
}

#[test]
fn keygen_writes_four_files_that_doctor_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["keygen", "--out", dir.path().to_str().unwrap()], "");
    assert!(out.status.success());
    for f in [
        "app_private_key.pem",
        "app_public_key.pem",
        "app_private_key.txt",
        "app_public_key.txt",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let pem = std::fs::read_to_string(dir.path().join("app_private_key.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let public = std::fs::read_to_string(dir.path().join("app_public_key.txt")).unwrap();
    assert!(public.starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("app_private_key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is not readable by others");
    }
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let ali = vector("fzlee-alipay/keys/ali_public_key.pem");
    let ok = run(
        &[
            "doctor",
            "--app-id",
            "2021000122671080",
            "--private-key",
            &p("app_private_key.txt"),
            "--alipay-public-key",
            ali.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // The classic mistake: the app's own public key given as Alipay's.
    let bad = run(
        &[
            "doctor",
            "--app-id",
            "2021000122671080",
            "--private-key",
            &p("app_private_key.pem"),
            "--alipay-public-key",
            &p("app_public_key.pem"),
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("your own app public key"));
    // Nothing secret is printed.
    let body = std::fs::read_to_string(dir.path().join("app_private_key.txt")).unwrap();
    assert!(!String::from_utf8_lossy(&ok.stdout).contains(&body.trim()[40..80]));
}

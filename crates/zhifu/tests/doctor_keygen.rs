//! `zhifu keygen` never replaces keys silently, and `zhifu doctor` —
//! offline over `zhifu serve`'s environment, online against a gateway —
//! tells each mistake apart. The gateway here is the sandbox, started in
//! process on 127.0.0.1:0; its answers are the real gateway's
//! (`isv.invalid-signature`, `isv.invalid-app-id`, `ACQ.TRADE_NOT_EXIST`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alipay::AppPrivateKey;
use zhifu_sandbox::testing;

fn zhifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    // Only what each test gives: nothing from the developer's environment.
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

/// Runs a command without blocking the runtime the sandbox is served on.
async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let first = zhifu().args(["keygen", "--out", out]).output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let key = std::fs::read_to_string(dir.path().join("app_private_key.pem")).unwrap();

    let again = zhifu().args(["keygen", "--out", out]).output().unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    assert!(text(&again).contains("app_private_key.pem"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app_private_key.pem")).unwrap(),
        key,
        "the existing key is untouched"
    );

    // One leftover file is enough to refuse.
    let partial = tempfile::tempdir().unwrap();
    std::fs::write(partial.path().join("app_public_key.txt"), "old").unwrap();
    let p = zhifu()
        .args(["keygen", "--out", partial.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(p.status.code(), Some(2));
    assert!(!partial.path().join("app_private_key.pem").exists());

    let forced = zhifu()
        .args(["keygen", "--force", "--out", out])
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", text(&forced));
    let new_key = std::fs::read_to_string(dir.path().join("app_private_key.pem")).unwrap();
    assert_ne!(new_key, key, "--force writes a new key");
    AppPrivateKey::parse(&new_key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("app_private_key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the replaced private key is not readable by others"
        );
    }
}

/// Key files for one app, and the sandbox serving as its gateway.
struct Setup {
    sandbox: testing::TestSandbox,
    dir: tempfile::TempDir,
    app_key: PathBuf,
    alipay_key: PathBuf,
}

async fn setup() -> Setup {
    let sandbox = testing::spawn_auto().await;
    let dir = tempfile::tempdir().unwrap();
    let app_key = write(
        dir.path(),
        "app_private_key.pem",
        &sandbox.app_key().to_pkcs8_pem().unwrap(),
    );
    let alipay_key = write(
        dir.path(),
        "alipay_public_key.txt",
        &sandbox.alipay_public_key.to_base64(),
    );
    Setup {
        sandbox,
        dir,
        app_key,
        alipay_key,
    }
}

impl Setup {
    fn doctor(&self, app_id: &str, key: &Path, alipay_key: &Path) -> Command {
        let mut c = zhifu();
        c.args(["doctor", "--online", "--app-id", app_id, "--private-key"])
            .arg(key)
            .arg("--alipay-public-key")
            .arg(alipay_key)
            .args(["--gateway", &self.sandbox.gateway]);
        c
    }

    /// What `zhifu serve` reads, for this app against the sandbox.
    fn serve_env(&self, c: &mut Command) {
        c.env("ALIPAY_APP_ID", &self.sandbox.app_id)
            .env("ALIPAY_APP_PRIVATE_KEY_FILE", &self.app_key)
            .env("ALIPAY_PUBLIC_KEY_FILE", &self.alipay_key)
            .env("ALIPAY_GATEWAY", &self.sandbox.gateway)
            .env("ZHIFU_PUBLIC_URL", "https://pay.example.com")
            .env("ZHIFU_API_KEY", "doctor-test-key-0123456789")
            .env(
                "ZHIFU_DATABASE_URL",
                format!("sqlite:{}", self.dir.path().join("zhifu.db").display()),
            );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_online_tells_each_mistake_apart() {
    let s = setup().await;
    let app_id = s.sandbox.app_id.clone();

    // Everything right: the probe order does not exist, and that answer is
    // signed by the gateway and verifies.
    let ok = run(s.doctor(&app_id, &s.app_key, &s.alipay_key)).await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("ACQ.TRADE_NOT_EXIST"), "{}", text(&ok));
    assert!(text(&ok).contains("keys, app id and gateway all match"));
    let probes = s.sandbox.requests(Some("alipay.trade.query"), None);
    assert_eq!(probes.len(), 1, "exactly one gateway call");

    // A private key that is not the one whose public half was uploaded.
    let other = write(
        s.dir.path(),
        "other_private_key.pem",
        &AppPrivateKey::generate().unwrap().to_pkcs8_pem().unwrap(),
    );
    let wrong_key = run(s.doctor(&app_id, &other, &s.alipay_key)).await;
    assert_eq!(wrong_key.status.code(), Some(1), "{}", text(&wrong_key));
    assert!(text(&wrong_key).contains("isv.invalid-signature"));
    assert!(text(&wrong_key).contains("does not match the app public key uploaded"));

    // An app id the gateway does not know.
    let wrong_id = run(s.doctor("2021000000000042", &s.app_key, &s.alipay_key)).await;
    assert_eq!(wrong_id.status.code(), Some(1), "{}", text(&wrong_id));
    assert!(text(&wrong_id).contains("isv.invalid-app-id"));
    assert!(!text(&wrong_id).contains("isv.invalid-signature"));

    // A random key given as Alipay's: offline it looks fine, online the
    // gateway's answer does not verify.
    let random = write(
        s.dir.path(),
        "random_public_key.txt",
        &AppPrivateKey::generate().unwrap().public_key().to_base64(),
    );
    let wrong_alipay = run(s.doctor(&app_id, &s.app_key, &random)).await;
    assert_eq!(
        wrong_alipay.status.code(),
        Some(1),
        "{}",
        text(&wrong_alipay)
    );
    assert!(
        text(&wrong_alipay).contains("does not verify with the configured Alipay public key"),
        "{}",
        text(&wrong_alipay)
    );
    assert!(!text(&wrong_alipay).contains("all match"));

    // No gateway at all.
    let mut unreachable = zhifu();
    unreachable
        .args(["doctor", "--online", "--app-id", &app_id, "--private-key"])
        .arg(&s.app_key)
        .arg("--alipay-public-key")
        .arg(&s.alipay_key)
        .args(["--gateway", "http://127.0.0.1:9/gateway.do"]);
    let down = run(unreachable).await;
    assert_eq!(down.status.code(), Some(1));
    assert!(
        text(&down).contains("could not reach the gateway"),
        "{}",
        text(&down)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_env_reads_what_serve_reads() {
    let s = setup().await;
    let secret = std::fs::read_to_string(&s.app_key).unwrap();
    let secret_line = secret.lines().nth(3).unwrap().to_owned();

    let mut c = zhifu();
    c.args(["doctor", "--env", "--online"]);
    s.serve_env(&mut c);
    let ok = run(c).await;
    let out = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{out}");
    for expected in [
        s.sandbox.app_id.as_str(),
        s.sandbox.gateway.as_str(),
        "public key (公钥)",
        "https://pay.example.com/alipay/notify",
        "SQLite file",
        "ACQ.TRADE_NOT_EXIST",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    assert!(!out.contains(&secret_line), "no private key in the output");
    assert!(!out.contains("doctor-test-key-0123456789"), "no API key");

    // The same variables as serve, with the same message serve stops with.
    let mut missing = zhifu();
    missing.args(["doctor", "--env"]);
    s.serve_env(&mut missing);
    missing.env_remove("ZHIFU_API_KEY");
    let m = run(missing).await;
    assert_eq!(m.status.code(), Some(1));
    assert!(
        text(&m).contains("ZHIFU_API_KEY: must be set"),
        "{}",
        text(&m)
    );

    // The app's own public key as Alipay's: serve refuses it, so does doctor.
    let own = write(
        s.dir.path(),
        "own_public_key.txt",
        &s.sandbox.app_key().public_key().to_base64(),
    );
    let mut swapped = zhifu();
    swapped.args(["doctor", "--env"]);
    s.serve_env(&mut swapped);
    swapped.env("ALIPAY_PUBLIC_KEY_FILE", &own);
    let w = run(swapped).await;
    assert_eq!(w.status.code(), Some(1));
    assert!(text(&w).contains("ALIPAY_PUBLIC_KEY"), "{}", text(&w));

    // A production gateway with a local public URL: Alipay could not reach it.
    let mut local = zhifu();
    local.args(["doctor", "--env"]);
    s.serve_env(&mut local);
    local
        .env("ALIPAY_GATEWAY", "production")
        .env("ZHIFU_PUBLIC_URL", "http://127.0.0.1:8080");
    let l = run(local).await;
    assert_eq!(l.status.code(), Some(1));
    assert!(
        text(&l).contains("Alipay cannot reach a local address"),
        "{}",
        text(&l)
    );
}

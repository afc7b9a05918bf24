//! The protocol commands: thin shells over the `alipay` crate whose input
//! and output formats other tools script against (see the README).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alipay::keys::describe_key_text;
use alipay::response::{ResponseCheck, verify_response as check_response};
use alipay::{
    AlipayKeys, AlipayPublicKey, AppPrivateKey, Charset, Error, FormParams, NotifyVerifier,
    SignType,
};
use anyhow::{Context, anyhow};
use clap::Args;

/// `zhifu keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory to write the four key files into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Replace key files that already exist. Without it `keygen` refuses:
    /// the old private key may already be uploaded to Alipay.
    #[arg(long)]
    force: bool,
}

/// The files `zhifu keygen` writes.
const KEY_FILES: [&str; 4] = [
    "app_private_key.pem",
    "app_private_key.txt",
    "app_public_key.pem",
    "app_public_key.txt",
];

/// `zhifu sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The app private key (PEM or bare base64, PKCS#1 or PKCS#8).
    #[arg(long)]
    private_key: PathBuf,
    /// Algorithm; defaults to the `sign_type` in the parameters, else RSA2.
    #[arg(long, value_parser = ["RSA2", "RSA"])]
    sign_type: Option<String>,
    /// Print the exact string that is signed instead of the signature.
    #[arg(long)]
    content: bool,
}

/// `zhifu verify-notify`.
#[derive(Debug, Args)]
pub struct VerifyNotifyArgs {
    /// Alipay's public key (PEM or bare base64), or its public-key certificate.
    #[arg(long)]
    alipay_public_key: PathBuf,
}

/// `zhifu verify-response`.
#[derive(Debug, Args)]
pub struct VerifyResponseArgs {
    /// Alipay's public key (PEM or bare base64), or its public-key certificate.
    #[arg(long)]
    alipay_public_key: PathBuf,
    /// The API method called, e.g. `alipay.trade.query`.
    #[arg(long)]
    method: String,
    /// The request's sign type.
    #[arg(long, default_value = "RSA2", value_parser = ["RSA2", "RSA"])]
    sign_type: String,
}

/// `zhifu doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check exactly what `zhifu serve` would run with: its environment
    /// (and the `ZHIFU_CONFIG` file), instead of the key options.
    #[arg(long, conflicts_with_all = ["app_id", "private_key", "alipay_public_key", "gateway"])]
    env: bool,
    /// Also call the gateway once (`alipay.trade.query` for an order
    /// number that does not exist) and explain its answer.
    #[arg(long)]
    online: bool,
    /// The app id from the Alipay console.
    #[arg(long, required_unless_present = "env")]
    app_id: Option<String>,
    /// The app private key file.
    #[arg(long, required_unless_present = "env")]
    private_key: Option<PathBuf>,
    /// The Alipay public key file (or Alipay public-key certificate).
    #[arg(long, required_unless_present = "env")]
    alipay_public_key: Option<PathBuf>,
    /// With `--online`: `production` (default), `sandbox` or the gateway URL.
    #[arg(long)]
    gateway: Option<String>,
}

/// Exit code 2 with a message: the input or key is unusable.
fn unusable(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn read_key_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_private_key(path: &Path) -> anyhow::Result<AppPrivateKey> {
    let text = read_key_file(path)?;
    AppPrivateKey::parse(&text).with_context(|| format!("{}", path.display()))
}

/// Alipay's public key from a key file, or from a certificate file.
fn load_alipay_key(path: &Path) -> anyhow::Result<AlipayPublicKey> {
    let text = read_key_file(path)?;
    match AlipayPublicKey::parse(&text) {
        Ok(k) => Ok(k),
        Err(Error::Key {
            problem: alipay::error::KeyProblem::CertificateGiven,
            ..
        }) => alipay::cert::cert_public_key(text.as_bytes())
            .with_context(|| format!("{}", path.display())),
        Err(e) => Err(anyhow!(e).context(format!("{}", path.display()))),
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("cannot read stdin")?;
    Ok(buf)
}

fn write_secret(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::fs::OpenOptions;
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

/// `zhifu keygen --out DIR`.
pub fn keygen(a: KeygenArgs) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let existing: Vec<&str> = KEY_FILES
            .iter()
            .copied()
            .filter(|f| a.out.join(f).exists())
            .collect();
        if !existing.is_empty() && !a.force {
            return Err(anyhow!(
                "{} already holds {}; the old key may already be uploaded to Alipay. \
                 Choose another --out directory, or pass --force to replace them",
                a.out.display(),
                existing.join(", ")
            ));
        }
        for f in &existing {
            // Written afresh, so the private key gets its 0600 mode again.
            std::fs::remove_file(a.out.join(f))
                .with_context(|| format!("cannot replace {}", a.out.join(f).display()))?;
        }
        std::fs::create_dir_all(&a.out)
            .with_context(|| format!("cannot create {}", a.out.display()))?;
        let key = AppPrivateKey::generate()?;
        let public = key.public_key();
        write_secret(&a.out.join("app_private_key.pem"), &key.to_pkcs8_pem()?)?;
        write_secret(
            &a.out.join("app_private_key.txt"),
            &format!("{}\n", key.to_pkcs8_base64()?),
        )?;
        std::fs::write(a.out.join("app_public_key.pem"), public.to_pem())?;
        std::fs::write(
            a.out.join("app_public_key.txt"),
            format!("{}\n", public.to_base64()),
        )?;
        println!(
            "wrote app_private_key.pem, app_private_key.txt, app_public_key.pem, app_public_key.txt to {}",
            a.out.display()
        );
        println!(
            "upload the content of app_public_key.txt in the Alipay console; keep the private key secret"
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => unusable(format!("{e:#}")),
    }
}

/// `zhifu sign`.
pub fn sign(a: SignArgs) -> ExitCode {
    let key = match load_private_key(&a.private_key) {
        Ok(k) => k,
        Err(e) => return unusable(format!("{e:#}")),
    };
    let input = match read_stdin() {
        Ok(b) => b,
        Err(e) => return unusable(format!("{e:#}")),
    };
    let trimmed = trim_ascii_end(&input);
    let params = match FormParams::parse(trimmed) {
        Ok(p) => p,
        Err(e) => return unusable(e),
    };
    let sign_type = match a.sign_type.as_deref().or(params.get("sign_type")) {
        Some(s) => match SignType::parse(s) {
            Ok(t) => t,
            Err(e) => return unusable(e),
        },
        None => SignType::Rsa2,
    };
    let content = alipay::sign::request_sign_content(params.iter());
    if a.content {
        println!("{content}");
        return ExitCode::SUCCESS;
    }
    let bytes = params.charset().encode(&content);
    match key.sign(sign_type, &bytes) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => unusable(e),
    }
}

fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    &b[..end]
}

/// `zhifu verify-notify`.
pub fn verify_notify(a: VerifyNotifyArgs) -> ExitCode {
    let key = match load_alipay_key(&a.alipay_public_key) {
        Ok(k) => k,
        Err(e) => return unusable(format!("{e:#}")),
    };
    let input = match read_stdin() {
        Ok(b) => b,
        Err(e) => return unusable(format!("{e:#}")),
    };
    let params = match FormParams::parse(trim_ascii_end(&input)) {
        Ok(p) => p,
        Err(e) => return unusable(e),
    };
    match NotifyVerifier::new(key).verify(params) {
        Ok(v) => {
            println!("{}", v.get().to_json());
            ExitCode::SUCCESS
        }
        Err(e @ (Error::BadSignature | Error::MissingSignature)) => {
            eprintln!("invalid: {e}");
            ExitCode::from(1)
        }
        Err(e) => unusable(e),
    }
}

/// `zhifu verify-response`.
pub fn verify_response(a: VerifyResponseArgs) -> ExitCode {
    let key = match load_alipay_key(&a.alipay_public_key) {
        Ok(k) => k,
        Err(e) => return unusable(format!("{e:#}")),
    };
    let sign_type = match SignType::parse(&a.sign_type) {
        Ok(t) => t,
        Err(e) => return unusable(e),
    };
    let input = match read_stdin() {
        Ok(b) => b,
        Err(e) => return unusable(format!("{e:#}")),
    };
    let keys = AlipayKeys::from(key);
    let check = ResponseCheck {
        method: &a.method,
        keys: &keys,
        sign_type,
        charset: Charset::Utf8,
        aes: None,
    };
    match check_response::<serde_json::Value>(trim_ascii_end(&input), &check) {
        Ok(v) => {
            println!("{}", v.node_json);
            ExitCode::SUCCESS
        }
        // A failure answer whose signature verified is a valid response.
        Err(Error::Gateway(g)) if g.verified => {
            println!("{}", g.node);
            ExitCode::SUCCESS
        }
        Err(Error::Gateway(g)) => {
            eprintln!("invalid: unsigned failure response ({g})");
            ExitCode::from(1)
        }
        Err(e @ (Error::BadSignature | Error::MissingSignature | Error::UnknownAlipayCert(_))) => {
            eprintln!("invalid: {e}");
            ExitCode::from(1)
        }
        Err(e) => unusable(e),
    }
}

/// What `zhifu doctor` found, printed as it goes.
#[derive(Debug, Default)]
struct Report {
    problems: u32,
}

impl Report {
    fn bad(&mut self, msg: impl std::fmt::Display) {
        self.problems += 1;
        println!("  ✗ {msg}");
    }

    fn ok(&self, msg: impl std::fmt::Display) {
        println!("  ✓ {msg}");
    }

    fn note(&self, msg: impl std::fmt::Display) {
        println!("  • {msg}");
    }

    fn finish(self) -> ExitCode {
        if self.problems == 0 {
            println!("no problems found");
            ExitCode::SUCCESS
        } else {
            println!("{} problem(s) found", self.problems);
            ExitCode::from(1)
        }
    }
}

/// What the online check signs with and where it calls.
struct Setup {
    app_id: String,
    key: AppPrivateKey,
    alipay_key: AlipayPublicKey,
    gateway: String,
    /// Certificate mode (`zhifu doctor --env` only): what `zhifu serve`
    /// signs and verifies with.
    signing: zhifu_server::config::SigningMode,
}

/// What kind of database a `ZHIFU_DATABASE_URL` names, without its
/// credentials (a PostgreSQL URL may hold a password).
pub(crate) fn database_kind(url: &str) -> String {
    if url == "sqlite::memory:" || url.starts_with("sqlite::memory:") {
        "SQLite in memory".to_owned()
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        format!("SQLite file {path}")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "PostgreSQL".to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// What `ALIPAY_GATEWAY` resolved to, in words.
pub(crate) fn gateway_kind(gateway: &str) -> &'static str {
    if gateway == alipay::PRODUCTION_GATEWAY {
        "Alipay production"
    } else if gateway == alipay::SANDBOX_GATEWAY {
        "Alipay's sandbox (沙箱环境)"
    } else {
        "a custom gateway (e.g. the local `zhifu sandbox`)"
    }
}

fn looks_like_sandbox_app_id(app_id: &str) -> bool {
    app_id.starts_with("90210") || app_id.starts_with("20210001")
}

fn check_app_id(r: &mut Report, app_id: &str, gateway: Option<&str>) {
    println!("app id {app_id}");
    if app_id.len() != 16 || !app_id.bytes().all(|b| b.is_ascii_digit()) {
        r.bad(format!(
            "app id {app_id:?} should be 16 digits, as the console shows it"
        ));
    } else if looks_like_sandbox_app_id(app_id) {
        match gateway {
            Some(g) if g == alipay::PRODUCTION_GATEWAY => r.note(
                "looks like a sandbox app id, but the gateway is production: \
                 sandbox apps only exist at ALIPAY_GATEWAY=sandbox",
            ),
            Some(_) => {}
            None => r.note(format!(
                "looks like a sandbox app id: use {}",
                alipay::SANDBOX_GATEWAY
            )),
        }
    }
}

fn check_private_key(r: &mut Report, key: &AppPrivateKey) {
    r.ok(format!("parses, {} bits", key.bits()));
    if key.bits() < 2048 {
        r.bad(format!(
            "{} bits: RSA2 needs a 2048-bit key; generate one with `zhifu keygen`",
            key.bits()
        ));
    }
    r.note("its public key (compare with the app public key in the console):");
    println!("    {}", key.public_key().to_base64());
}

fn check_alipay_key(r: &mut Report, private: Option<&AppPrivateKey>, k: &AlipayPublicKey) {
    r.ok(format!(
        "parses, {} bits, fingerprint {}",
        k.bits(),
        k.fingerprint()
    ));
    if k.bits() < 2048 {
        r.bad(format!(
            "{} bits: only legacy `RSA` apps have keys this small",
            k.bits()
        ));
    }
    let Some(p) = private else { return };
    if p.public_key() == *k {
        r.bad(
            "the \"Alipay public key\" is your own app public key. Download Alipay's public key \
             from the console (应用信息 → 支付宝公钥); your app key only signs requests",
        );
    } else {
        r.ok("differs from your app public key");
    }
    match p.sign(SignType::Rsa2, b"zhifu doctor") {
        Ok(sig)
            if p.public_key()
                .verify(SignType::Rsa2, b"zhifu doctor", &sig)
                .is_ok() =>
        {
            r.ok("the private key signs (RSA2) and its public half verifies");
        }
        _ => r.bad("the private key could not produce a verifiable signature"),
    }
}

/// `zhifu doctor`.
pub fn doctor(a: DoctorArgs) -> ExitCode {
    let mut r = Report::default();
    let setup = if a.env {
        doctor_env(&mut r)
    } else {
        doctor_files(&a, &mut r)
    };
    if a.online {
        match setup {
            Some(s) => online(s, &mut r),
            None => println!("online check skipped: the configuration above is not usable"),
        }
    }
    r.finish()
}

/// The offline checks of the key options.
fn doctor_files(a: &DoctorArgs, r: &mut Report) -> Option<Setup> {
    let (Some(app_id), Some(private_path), Some(alipay_path)) =
        (&a.app_id, &a.private_key, &a.alipay_public_key)
    else {
        r.bad("give --env, or --app-id, --private-key and --alipay-public-key");
        return None;
    };
    let gateway = match zhifu_server::config::resolve_gateway(a.gateway.as_deref()) {
        Ok(g) => Some(g),
        Err(e) => {
            r.bad(format!("--gateway: {}", e.problem));
            None
        }
    };
    check_app_id(r, app_id, a.gateway.as_ref().and(gateway.as_deref()));

    println!("app private key {}", private_path.display());
    let private = match read_key_file(private_path) {
        Err(e) => {
            r.bad(format!("{e:#}"));
            None
        }
        Ok(text) => {
            if let Ok(d) = describe_key_text(&text) {
                r.note(format!("found: {d}"));
            }
            match AppPrivateKey::parse(&text) {
                Ok(k) => {
                    check_private_key(r, &k);
                    Some(k)
                }
                Err(e) => {
                    r.bad(e);
                    None
                }
            }
        }
    };

    println!("Alipay public key {}", alipay_path.display());
    let alipay = match load_alipay_key(alipay_path) {
        Ok(k) => {
            check_alipay_key(r, private.as_ref(), &k);
            Some(k)
        }
        Err(e) => {
            r.bad(format!("{e:#}"));
            None
        }
    };
    Some(Setup {
        app_id: app_id.clone(),
        key: private?,
        alipay_key: alipay?,
        gateway: gateway?,
        signing: zhifu_server::config::SigningMode::PublicKey,
    })
}

/// The offline checks of what `zhifu serve` reads: the same
/// [`zhifu_server::config::Config`] from the same environment.
fn doctor_env(r: &mut Report) -> Option<Setup> {
    use zhifu_server::config::{Config, Source};
    let from_file = std::env::var("ZHIFU_CONFIG").ok().filter(|v| !v.is_empty());
    match &from_file {
        Some(f) => println!("configuration of `zhifu serve`: the environment, then {f}"),
        None => println!("configuration of `zhifu serve`: the environment"),
    }
    let config = match Source::from_env().and_then(|src| Config::from_source(&src)) {
        Ok(c) => c,
        Err(e) => {
            // ConfigError names the variable, never a secret value.
            r.bad(format!("{e}"));
            r.note("`zhifu serve` stops at start-up with this message");
            return None;
        }
    };
    let s = &config.settings;
    check_app_id(r, &s.app_id, Some(&s.gateway));
    println!("gateway {}", s.gateway);
    r.note(gateway_kind(&s.gateway));
    println!("app private key (ALIPAY_APP_PRIVATE_KEY)");
    check_private_key(r, &s.app_private_key);
    match &config.signing {
        zhifu_server::config::SigningMode::PublicKey => {
            println!("signing mode: public key (公钥)");
            println!("Alipay public key (ALIPAY_PUBLIC_KEY)");
        }
        zhifu_server::config::SigningMode::Certificates(c) => {
            println!("signing mode: public-key certificates (公钥证书)");
            r.ok(format!("app_cert_sn {} (ALIPAY_APP_CERT)", c.app_cert_sn));
            r.ok(format!(
                "alipay_root_cert_sn {} (ALIPAY_ROOT_CERT)",
                c.alipay_root_cert_sn
            ));
            r.ok(format!(
                "alipay_cert_sn {} (ALIPAY_PUBLIC_CERT)",
                c.alipay_cert_sn
            ));
            println!("Alipay public key (from ALIPAY_PUBLIC_CERT)");
        }
    }
    check_alipay_key(r, Some(&s.app_private_key), &s.alipay_public_key);

    println!("seller id (ALIPAY_SELLER_ID)");
    match &s.seller_id {
        Some(id) => r.ok(format!(
            "{id}: notifications for another seller are refused"
        )),
        None => r.note(
            "not set: notifications' seller_id is not checked; set it to your PID (2088…, \
             shown in the console's account centre)",
        ),
    }

    println!("public URL (ZHIFU_PUBLIC_URL) {}", s.public_url);
    r.note(format!("notify_url {}", s.notify_url()));
    r.note(format!("return_url {}", s.return_url()));
    let local = ["://localhost", "://127.", "://0.0.0.0", "://[::1]"]
        .iter()
        .any(|p| s.public_url.contains(p));
    if local && s.gateway == alipay::PRODUCTION_GATEWAY {
        r.bad(
            "Alipay cannot reach a local address: ZHIFU_PUBLIC_URL must be the public \
             (custom) domain buyers and Alipay's notifications reach",
        );
    } else if s.gateway == alipay::PRODUCTION_GATEWAY && !s.public_url.starts_with("https://") {
        r.note("not https: buyers' browsers are sent here; use https in production");
    }

    println!("database (ZHIFU_DATABASE_URL)");
    let kind = database_kind(&config.database_url);
    if kind == "SQLite in memory" {
        r.bad("SQLite in memory loses every order when the process ends");
    } else if kind.starts_with("SQLite") {
        r.ok(format!(
            "{kind} (one instance only; use PostgreSQL for functions)"
        ));
    } else {
        r.ok(kind);
    }
    println!("merchant API key (ZHIFU_API_KEY)");
    r.ok(format!("set, {} characters", s.api_key.expose().len()));
    println!("webhooks (ZHIFU_WEBHOOK_URL)");
    match &config.webhook {
        Some(w) => r.ok(format!("{} (signed with ZHIFU_WEBHOOK_SECRET)", w.url)),
        None => r.note("off"),
    }
    println!("checkout (ZHIFU_CATALOG)");
    match zhifu_checkout::CheckoutConfig::from_env(&s.public_url, |k| std::env::var(k).ok()) {
        Ok(Some(c)) => r.ok(format!(
            "storefront on, {} product(s), shop name {:?}",
            c.catalog.products().len(),
            c.branding.display_name()
        )),
        Ok(None) => r.note("off (no storefront; the merchant API only)"),
        Err(e) => r.bad(e),
    }

    let Config {
        settings, signing, ..
    } = config;
    Some(Setup {
        app_id: settings.app_id,
        key: settings.app_private_key,
        alipay_key: settings.alipay_public_key,
        gateway: settings.gateway,
        signing,
    })
}

/// An order number no one has used: the query must answer "no such trade".
fn probe_out_trade_no() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("zhifu_doctor_{nanos}_{}", std::process::id())
}

/// `--online`: one `alipay.trade.query`, and what its answer means.
fn online(s: Setup, r: &mut Report) {
    let out_trade_no = probe_out_trade_no();
    println!(
        "online check: alipay.trade.query for {out_trade_no} at {}",
        s.gateway
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            r.bad(format!("cannot start the async runtime: {e}"));
            return;
        }
    };
    // The same client `zhifu serve` builds (zhifu_server::state).
    let core = match s.signing {
        zhifu_server::config::SigningMode::PublicKey => {
            alipay::Alipay::builder(s.app_id, s.key, s.alipay_key)
        }
        zhifu_server::config::SigningMode::Certificates(c) => {
            alipay::Alipay::builder(s.app_id, s.key, c.alipay_certs.clone()).cert_sns(c.cert_sns())
        }
    }
    .gateway(s.gateway)
    .build();
    let client = alipay::AlipayClient::new(core).with_config(alipay::ClientConfig {
        max_attempts: 1,
        ..Default::default()
    });
    let query = alipay::TradeQuery::by_out_trade_no(out_trade_no);
    let answer = runtime.block_on(client.execute_once(&query, &alipay::RequestOptions::default()));
    explain(answer.map(|_| ()), r);
}

/// Turns the gateway's answer into a diagnosis.
fn explain(answer: alipay::Result<()>, r: &mut Report) {
    let g = match answer {
        Ok(()) => {
            r.ok("the gateway answered 10000 with a signature that verifies: keys, app id and gateway match");
            return;
        }
        Err(Error::Gateway(g)) => g,
        Err(Error::BadSignature) => {
            r.bad(
                "the gateway answered, but its signature does not verify with the configured \
                 Alipay public key: ALIPAY_PUBLIC_KEY is not this app's Alipay public key \
                 (console: 应用信息 → 支付宝公钥; the sandbox and production keys differ). \
                 A random key or your own app public key here fails the same way",
            );
            return;
        }
        Err(Error::MissingSignature) => {
            r.bad("the gateway's answer carries no signature: is ALIPAY_GATEWAY really Alipay?");
            return;
        }
        Err(Error::UnknownAlipayCert(sn)) => {
            r.bad(format!(
                "the answer is signed with Alipay certificate {sn}, which this configuration \
                 does not know: the app is in certificate mode (公钥证书)"
            ));
            return;
        }
        Err(e @ (Error::Http(_) | Error::HttpStatus(_))) => {
            r.bad(format!(
                "could not reach the gateway ({e}): check ALIPAY_GATEWAY and outbound network"
            ));
            return;
        }
        Err(e) => {
            r.bad(format!("unexpected answer: {e}"));
            return;
        }
    };
    let sub = g.sub_code.as_deref().unwrap_or("");
    println!(
        "  • answer: code {} {}{}{}",
        g.code,
        g.msg,
        if sub.is_empty() { "" } else { ", sub_code " },
        sub
    );
    match sub {
        "ACQ.TRADE_NOT_EXIST" if g.verified => r.ok(
            "ACQ.TRADE_NOT_EXIST, signed by Alipay and verified: the gateway knows the app id, \
             accepted your signature, and its answer verifies with your Alipay public key — \
             keys, app id and gateway all match",
        ),
        "isv.invalid-signature" => r.bad(
            "isv.invalid-signature: the gateway could not verify your request's signature. \
             The app private key does not match the app public key uploaded for this app id \
             (console: 开发设置 → 接口加签方式). Upload the public key printed above, or use \
             the private key that belongs to the uploaded one; a key uploaded to the sandbox \
             app does not count for the production app (and the other way round)",
        ),
        "isv.invalid-app-id" => r.bad(
            "isv.invalid-app-id: this gateway does not know the app id. Check ALIPAY_APP_ID \
             for typos; a sandbox app id only works with ALIPAY_GATEWAY=sandbox and a \
             production one only in production, and a production app must be online \
             (已上线) before its id is accepted",
        ),
        s if s.starts_with("isv.") && s.contains("cert") => r.bad(format!(
            "{s}: a certificate-mode problem (app_cert_sn / alipay_root_cert_sn): the app is \
             set up with public-key certificates (公钥证书); configure the certificate files"
        )),
        "isv.insufficient-isv-permissions"
        | "isv.insufficient-user-permissions"
        | "ACQ.ACCESS_FORBIDDEN" => r.bad(format!(
            "{sub}: the app may not call alipay.trade.query: the product (e.g. 电脑网站支付) \
             is not signed or not bound to this app yet"
        )),
        _ => {
            if let Some(m) = &g.sub_msg {
                r.note(format!("sub_msg: {m}"));
            }
            if g.verified {
                r.bad(format!(
                    "unexpected answer {}; the signature verified, so the Alipay public key is right",
                    g.reason()
                ));
            } else {
                r.bad(format!(
                    "unexpected unsigned answer {}: Alipay could not tell which app asked",
                    g.reason()
                ));
            }
        }
    }
}

//! `zhifu doctor`: checks an Alipay configuration — the key files given as
//! options, or exactly what `zhifu serve` reads (`--env`) — and explains
//! what is wrong in the console's words; with certificates, which file is
//! which, their validity, their SNs and the chain; `--online` asks the
//! gateway once and turns its answer into a diagnosis.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alipay::keys::describe_key_text;
use alipay::{AlipayPublicKey, AppPrivateKey, Error, SignType};
use clap::Args;
use zhifu_server::config::{CertificateSettings, SigningMode, Source};

use crate::cert_check::{CertFile, CertTexts, check_certificates};
use crate::protocol_cmds::{database_kind, gateway_kind, load_alipay_key, read_key_file};

/// `zhifu doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check exactly what `zhifu serve` would run with: its environment
    /// (and the `ZHIFU_CONFIG` file), instead of the key options.
    #[arg(
        long,
        conflicts_with_all = ["app_id", "private_key", "alipay_public_key", "gateway", "app_cert", "alipay_root_cert"]
    )]
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
    /// The Alipay public key file, or in certificate mode Alipay's
    /// public-key certificate (`alipayCertPublicKey_RSA2.crt`).
    #[arg(long, alias = "alipay-public-cert", required_unless_present = "env")]
    alipay_public_key: Option<PathBuf>,
    /// Certificate mode (公钥证书): the app certificate
    /// (`appCertPublicKey_<app id>.crt`).
    #[arg(long, requires = "alipay_root_cert")]
    app_cert: Option<PathBuf>,
    /// Certificate mode: Alipay's root certificate bundle (`alipayRootCert.crt`).
    #[arg(long, requires = "app_cert")]
    alipay_root_cert: Option<PathBuf>,
    /// With `--online`: `production` (default), `sandbox` or the gateway URL.
    #[arg(long)]
    gateway: Option<String>,
}

/// What `zhifu doctor` found, printed as it goes.
#[derive(Debug, Default)]
pub(crate) struct Report {
    problems: u32,
    warnings: u32,
}

impl Report {
    pub(crate) fn bad(&mut self, msg: impl std::fmt::Display) {
        self.problems += 1;
        println!("  ✗ {msg}");
    }

    /// Worth acting on soon, but `zhifu serve` runs with it.
    pub(crate) fn warn(&mut self, msg: impl std::fmt::Display) {
        self.warnings += 1;
        println!("  ! {msg}");
    }

    pub(crate) fn ok(&self, msg: impl std::fmt::Display) {
        println!("  ✓ {msg}");
    }

    pub(crate) fn note(&self, msg: impl std::fmt::Display) {
        println!("  • {msg}");
    }

    pub(crate) fn problems(&self) -> u32 {
        self.problems
    }

    fn finish(self) -> ExitCode {
        let warnings = match self.warnings {
            0 => String::new(),
            n => format!(", {n} warning(s)"),
        };
        if self.problems == 0 {
            println!("no problems found{warnings}");
            ExitCode::SUCCESS
        } else {
            println!("{} problem(s) found{warnings}", self.problems);
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
    /// What `zhifu serve` would sign and verify with (certificate mode
    /// adds the SNs and Alipay's certificates).
    signing: SigningMode,
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
    let signing = match (&a.app_cert, &a.alipay_root_cert) {
        (Some(app_cert), Some(root_cert)) => {
            let read = |label: &str, path: &Path| CertFile {
                label: format!("{label} {}", path.display()),
                text: read_key_file(path).ok(),
            };
            let texts = CertTexts {
                app: read("app certificate", app_cert),
                alipay: read("Alipay public-key certificate", alipay_path),
                root: read("Alipay root certificate", root_cert),
            };
            for f in [&texts.app, &texts.root] {
                if f.text.is_none() {
                    r.bad(format!("cannot read {}", f.label));
                }
            }
            Some(certificate_mode(r, private.as_ref(), texts)?)
        }
        _ => Some(SigningMode::PublicKey),
    };
    Some(Setup {
        app_id: app_id.clone(),
        key: private?,
        alipay_key: alipay?,
        gateway: gateway?,
        signing: signing?,
    })
}

/// The certificate checks, then what `zhifu serve` would make of the same
/// three files (for `--online`).
fn certificate_mode(
    r: &mut Report,
    key: Option<&AppPrivateKey>,
    texts: CertTexts,
) -> Option<SigningMode> {
    println!("signing mode: public-key certificates (公钥证书)");
    let before = r.problems();
    check_certificates(r, key, &texts, now_unix());
    let (Some(key), Some(app), Some(alipay), Some(root)) =
        (key, texts.app.text, texts.alipay.text, texts.root.text)
    else {
        return None;
    };
    // The download interval only matters to a running server.
    let interval = std::time::Duration::from_secs(60);
    match CertificateSettings::from_pems(key, app, alipay, root, interval) {
        Ok((_, c)) => Some(SigningMode::Certificates(Box::new(c))),
        Err(e) => {
            // Already explained above, file by file, unless only the
            // server's own check finds it.
            if r.problems() == before {
                r.bad(format!("`zhifu serve` would refuse these files: {e}"));
            }
            None
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `VAR`, or the file `VAR_FILE` names, as `zhifu serve` reads it
/// (`zhifu_server::config::Source`): `Err` names what cannot be read.
fn env_text(src: &Source, var: &str) -> Result<Option<String>, String> {
    if let Some(v) = src.get(var) {
        return Ok(Some(v));
    }
    let file_var = format!("{var}_FILE");
    match src.get(&file_var) {
        None => Ok(None),
        Some(path) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| format!("{file_var}: cannot read {path}: {e}")),
    }
}

/// `--env` in certificate mode: the three files as `zhifu serve` reads
/// them, checked even when the configuration as a whole is refused (the
/// checks say which file is wrong).
fn env_certificates(r: &mut Report, src: &Source, key: Option<&AppPrivateKey>) {
    let mut file = |var: &str, what: &str| {
        let text = match env_text(src, var) {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                r.bad(format!(
                    "{var} is not set (nor {var}_FILE): certificate mode needs all three files"
                ));
                None
            }
            Err(e) => {
                r.bad(e);
                None
            }
        };
        CertFile {
            label: format!("{what} ({var})"),
            text,
        }
    };
    let texts = CertTexts {
        app: file("ALIPAY_APP_CERT", "app certificate"),
        alipay: file("ALIPAY_PUBLIC_CERT", "Alipay public-key certificate"),
        root: file("ALIPAY_ROOT_CERT", "Alipay root certificate"),
    };
    check_certificates(r, key, &texts, now_unix());
}

/// The offline checks of what `zhifu serve` reads: the same
/// [`zhifu_server::config::Config`] from the same environment.
fn doctor_env(r: &mut Report) -> Option<Setup> {
    use zhifu_server::config::Config;
    let from_file = std::env::var("ZHIFU_CONFIG").ok().filter(|v| !v.is_empty());
    match &from_file {
        Some(f) => println!("configuration of `zhifu serve`: the environment, then {f}"),
        None => println!("configuration of `zhifu serve`: the environment"),
    }
    let config = match Source::from_env().map(|src| (Config::from_source(&src), src)) {
        Ok((Ok(c), src)) => (c, src),
        Ok((Err(e), src)) => {
            // ConfigError names the variable, never a secret value.
            r.bad(format!("{e}"));
            r.note("`zhifu serve` stops at start-up with this message");
            let cert_mode = ["ALIPAY_APP_CERT", "ALIPAY_PUBLIC_CERT", "ALIPAY_ROOT_CERT"]
                .iter()
                .any(|v| src.get(v).is_some() || src.get(&format!("{v}_FILE")).is_some());
            if cert_mode {
                let key = env_text(&src, "ALIPAY_APP_PRIVATE_KEY")
                    .ok()
                    .flatten()
                    .and_then(|t| AppPrivateKey::parse(&t).ok());
                println!("signing mode: public-key certificates (公钥证书)");
                env_certificates(r, &src, key.as_ref());
            }
            return None;
        }
        Err(e) => {
            r.bad(format!("{e}"));
            r.note("`zhifu serve` stops at start-up with this message");
            return None;
        }
    };
    let (config, src) = config;
    let s = &config.settings;
    check_app_id(r, &s.app_id, Some(&s.gateway));
    println!("gateway {}", s.gateway);
    r.note(gateway_kind(&s.gateway));
    println!("app private key (ALIPAY_APP_PRIVATE_KEY)");
    check_private_key(r, &s.app_private_key);
    match &config.signing {
        SigningMode::PublicKey => {
            println!("signing mode: public key (公钥)");
            println!("Alipay public key (ALIPAY_PUBLIC_KEY)");
        }
        SigningMode::Certificates(_) => {
            println!("signing mode: public-key certificates (公钥证书)");
            env_certificates(r, &src, Some(&s.app_private_key));
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
        SigningMode::PublicKey => alipay::Alipay::builder(s.app_id, s.key, s.alipay_key),
        SigningMode::Certificates(c) => {
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

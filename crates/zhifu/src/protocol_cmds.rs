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
}

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
    /// The app id from the Alipay console.
    #[arg(long)]
    app_id: String,
    /// The app private key file.
    #[arg(long)]
    private_key: PathBuf,
    /// The Alipay public key file (or Alipay public-key certificate).
    #[arg(long)]
    alipay_public_key: PathBuf,
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

/// `zhifu doctor`.
pub fn doctor(a: DoctorArgs) -> ExitCode {
    let mut problems = 0u32;
    let mut bad = |msg: String| {
        problems += 1;
        println!("  ✗ {msg}");
    };
    println!("app id {}", a.app_id);
    if a.app_id.len() != 16 || !a.app_id.bytes().all(|b| b.is_ascii_digit()) {
        bad(format!(
            "app id {:?} should be 16 digits, as the console shows it",
            a.app_id
        ));
    } else if a.app_id.starts_with("90210") || a.app_id.starts_with("20210001") {
        println!(
            "  • looks like a sandbox app id: use {}",
            alipay::SANDBOX_GATEWAY
        );
    }

    println!("app private key {}", a.private_key.display());
    let private = match read_key_file(&a.private_key) {
        Err(e) => {
            bad(format!("{e:#}"));
            None
        }
        Ok(text) => {
            if let Ok(d) = describe_key_text(&text) {
                println!("  • found: {d}");
            }
            match AppPrivateKey::parse(&text) {
                Ok(k) => {
                    println!("  ✓ parses, {} bits", k.bits());
                    if k.bits() < 2048 {
                        bad(format!(
                            "{} bits: RSA2 needs a 2048-bit key; generate one with `zhifu keygen`",
                            k.bits()
                        ));
                    }
                    println!(
                        "  • its public key (compare with the app public key in the console):"
                    );
                    println!("    {}", k.public_key().to_base64());
                    Some(k)
                }
                Err(e) => {
                    bad(e.to_string());
                    None
                }
            }
        }
    };

    println!("Alipay public key {}", a.alipay_public_key.display());
    let alipay = match load_alipay_key(&a.alipay_public_key) {
        Ok(k) => {
            println!(
                "  ✓ parses, {} bits, fingerprint {}",
                k.bits(),
                k.fingerprint()
            );
            if k.bits() < 2048 {
                bad(format!(
                    "{} bits: only legacy `RSA` apps have keys this small",
                    k.bits()
                ));
            }
            Some(k)
        }
        Err(e) => {
            bad(format!("{e:#}"));
            None
        }
    };

    if let (Some(p), Some(k)) = (&private, &alipay) {
        if p.public_key() == *k {
            bad("the \"Alipay public key\" is your own app public key. Download Alipay's public key \
                 from the console (应用信息 → 支付宝公钥); your app key only signs requests"
                .into());
        } else {
            println!("  ✓ differs from your app public key");
        }
        match p.sign(SignType::Rsa2, b"zhifu doctor") {
            Ok(sig)
                if p.public_key()
                    .verify(SignType::Rsa2, b"zhifu doctor", &sig)
                    .is_ok() =>
            {
                println!("  ✓ the private key signs (RSA2) and its public half verifies");
            }
            _ => bad("the private key could not produce a verifiable signature".into()),
        }
    }

    if problems == 0 {
        println!("no problems found");
        ExitCode::SUCCESS
    } else {
        println!("{problems} problem(s) found");
        ExitCode::from(1)
    }
}

//! The protocol commands: thin shells over the `alipay` crate whose input
//! and output formats other tools script against (see the README).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Also write a certificate signing request for certificate mode
    /// (公钥证书): `app_cert_request.csr`, PKCS#10 signed with the app key,
    /// to upload in the console instead of the public key.
    #[arg(long)]
    csr: bool,
    /// With `--csr`: make the CSR for this existing app private key instead
    /// of a new key pair; only the CSR is written.
    #[arg(long, requires = "csr")]
    key: Option<PathBuf>,
    /// CSR subject: the app id, also the common name unless
    /// `--common-name` is given.
    #[arg(long, requires = "csr")]
    app_id: Option<String>,
    /// CSR subject: the organisation (O), e.g. the company name the Alipay
    /// account is registered to.
    #[arg(long, requires = "csr")]
    org: Option<String>,
    /// CSR subject: the organisational unit (OU).
    #[arg(long, requires = "csr")]
    org_unit: Option<String>,
    /// CSR subject: the common name (CN); default the app id, else the
    /// organisation, else "Zhifu app".
    #[arg(long, requires = "csr")]
    common_name: Option<String>,
    /// CSR subject: the two-letter country (C).
    #[arg(long, default_value = "CN")]
    country: String,
}

/// The certificate signing request `zhifu keygen --csr` writes.
const CSR_FILE: &str = "app_cert_request.csr";

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

/// Exit code 2 with a message: the input or key is unusable.
fn unusable(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

pub(crate) fn read_key_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_private_key(path: &Path) -> anyhow::Result<AppPrivateKey> {
    let text = read_key_file(path)?;
    AppPrivateKey::parse(&text).with_context(|| format!("{}", path.display()))
}

/// Alipay's public key from a key file, or from a certificate file.
pub(crate) fn load_alipay_key(path: &Path) -> anyhow::Result<AlipayPublicKey> {
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

/// The subject of the CSR: the country, organisation and unit given, and
/// a common name that names the app.
fn csr_subject(a: &KeygenArgs) -> anyhow::Result<rcgen::DistinguishedName> {
    use rcgen::DnType;
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(anyhow!(
            "--country {:?} should be two capital letters, e.g. CN",
            a.country
        ));
    }
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::CountryName, a.country.as_str());
    if let Some(o) = &a.org {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if let Some(ou) = &a.org_unit {
        dn.push(DnType::OrganizationalUnitName, ou.as_str());
    }
    let cn = a
        .common_name
        .as_deref()
        .or(a.app_id.as_deref())
        .or(a.org.as_deref())
        .unwrap_or("Zhifu app");
    dn.push(DnType::CommonName, cn);
    Ok(dn)
}

/// A PEM PKCS#10 request for `key`'s public key, signed with it
/// (SHA256withRSA), as the open platform's key tool makes one.
fn csr_pem(key: &AppPrivateKey, subject: rcgen::DistinguishedName) -> anyhow::Result<String> {
    let pkcs8 = key.to_pkcs8_pem()?;
    let signer = rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .context("the app key cannot sign a CSR")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject;
    let csr = params
        .serialize_request(&signer)
        .context("cannot make the CSR")?;
    csr.pem().context("cannot encode the CSR")
}

/// `zhifu keygen --out DIR`.
pub fn keygen(a: KeygenArgs) -> ExitCode {
    let run = || -> anyhow::Result<()> {
        let subject = if a.csr { Some(csr_subject(&a)?) } else { None };
        // With --key only the CSR is written; otherwise the key files too.
        let ours: Vec<&str> = match (&a.key, a.csr) {
            (Some(_), _) => vec![CSR_FILE],
            (None, true) => KEY_FILES.iter().copied().chain([CSR_FILE]).collect(),
            (None, false) => KEY_FILES.to_vec(),
        };
        let existing: Vec<&str> = ours
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
        let given = match &a.key {
            Some(path) => Some(load_private_key(path)?),
            None => None,
        };
        for f in &existing {
            // Written afresh, so the private key gets its 0600 mode again.
            std::fs::remove_file(a.out.join(f))
                .with_context(|| format!("cannot replace {}", a.out.join(f).display()))?;
        }
        std::fs::create_dir_all(&a.out)
            .with_context(|| format!("cannot create {}", a.out.display()))?;
        let key = match given {
            Some(k) => k,
            None => {
                let key = AppPrivateKey::generate()?;
                write_key_files(&a.out, &key)?;
                key
            }
        };
        if let Some(subject) = subject {
            if key.bits() < 2048 {
                return Err(anyhow!(
                    "the key has {} bits; certificate mode needs RSA2048",
                    key.bits()
                ));
            }
            std::fs::write(a.out.join(CSR_FILE), csr_pem(&key, subject)?)
                .with_context(|| format!("cannot write {}", a.out.join(CSR_FILE).display()))?;
            println!("wrote {CSR_FILE} to {}", a.out.display());
            println!(
                "certificate mode (公钥证书): upload {CSR_FILE} in the console, then download \
                 appCertPublicKey_<app id>.crt, alipayCertPublicKey_RSA2.crt and alipayRootCert.crt"
            );
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => unusable(format!("{e:#}")),
    }
}

fn write_key_files(out: &Path, key: &AppPrivateKey) -> anyhow::Result<()> {
    let public = key.public_key();
    write_secret(&out.join("app_private_key.pem"), &key.to_pkcs8_pem()?)?;
    write_secret(
        &out.join("app_private_key.txt"),
        &format!("{}\n", key.to_pkcs8_base64()?),
    )?;
    std::fs::write(out.join("app_public_key.pem"), public.to_pem())?;
    std::fs::write(
        out.join("app_public_key.txt"),
        format!("{}\n", public.to_base64()),
    )?;
    println!(
        "wrote app_private_key.pem, app_private_key.txt, app_public_key.pem, app_public_key.txt to {}",
        out.display()
    );
    println!(
        "upload the content of app_public_key.txt in the Alipay console; keep the private key secret"
    );
    Ok(())
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

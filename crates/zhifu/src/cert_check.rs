//! The certificate checks of `zhifu doctor` (公钥证书模式, docs/protocol.md
//! §7): which of the three files each one is, told by its content rather
//! than its name; whether the app certificate certifies the app private
//! key; each certificate's validity; the SNs requests would carry; and
//! whether Alipay's certificate chains to the root bundle.
//!
//! A chain that cannot be completed is a warning, not a problem: the
//! certificates of Alipay's own sandbox (沙箱) do not chain to the bundle
//! handed out with them (docs/protocol.md §7), yet the gateway accepts
//! their SNs.

use alipay::AppPrivateKey;
use alipay::keys::describe_key_text;
use x509_parser::prelude::*;

use crate::doctor::Report;

/// Certificates that end within this many days are reported, so they are
/// renewed (in the console, 证书更新) before Alipay refuses them.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// One of the three certificate files of certificate mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    App,
    Alipay,
    Root,
}

impl Role {
    fn file(self) -> &'static str {
        match self {
            Role::App => "the app certificate (appCertPublicKey_<app id>.crt)",
            Role::Alipay => "Alipay's public-key certificate (alipayCertPublicKey_RSA2.crt)",
            Role::Root => "Alipay's root certificate bundle (alipayRootCert.crt)",
        }
    }
}

/// A certificate file given to `zhifu doctor`: where it came from (for the
/// report) and its text (`None` when it could not be read, which the
/// caller has already reported).
#[derive(Debug)]
pub(crate) struct CertFile {
    pub label: String,
    pub text: Option<String>,
}

/// The three files of certificate mode.
#[derive(Debug)]
pub(crate) struct CertTexts {
    pub app: CertFile,
    pub alipay: CertFile,
    pub root: CertFile,
}

/// What the checks need of one certificate.
struct Cert {
    subject: String,
    self_signed: bool,
    spki: Vec<u8>,
    not_before: i64,
    not_after: i64,
    not_before_date: String,
    not_after_date: String,
}

fn date(t: &ASN1Time) -> String {
    t.to_datetime().date().to_string()
}

/// Every certificate of a PEM file, in file order.
fn parse(text: &str) -> Result<Vec<Cert>, String> {
    let mut certs = Vec::new();
    for pem in Pem::iter_from_buffer(text.as_bytes()) {
        let pem = pem.map_err(|e| format!("not a PEM file: {e}"))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        let (_, c) = X509Certificate::from_der(&pem.contents)
            .map_err(|e| format!("a certificate in it does not parse: {e}"))?;
        let v = c.validity();
        certs.push(Cert {
            subject: c.subject().to_string(),
            self_signed: c.subject().as_raw() == c.issuer().as_raw(),
            spki: c.public_key().raw.to_vec(),
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
            not_before_date: date(&v.not_before),
            not_after_date: date(&v.not_after),
        });
    }
    Ok(certs)
}

/// A parsed file and the role its content shows.
struct Parsed<'a> {
    text: &'a str,
    certs: Vec<Cert>,
    found: Role,
}

/// Which file this is by content: only self-signed roots make the root
/// bundle; a leaf that certifies the app key is the app certificate; any
/// other leaf is taken for Alipay's.
fn classify<'a>(text: &'a str, certs: Vec<Cert>, app_spki: Option<&[u8]>) -> Parsed<'a> {
    let found = match certs.first() {
        _ if certs.iter().all(|c| c.self_signed) => Role::Root,
        Some(first) if Some(first.spki.as_slice()) == app_spki => Role::App,
        _ => Role::Alipay,
    };
    Parsed { text, certs, found }
}

/// Runs every certificate check and prints them under each file's label.
pub(crate) fn check_certificates(
    r: &mut Report,
    app_key: Option<&AppPrivateKey>,
    files: &CertTexts,
    now_unix: i64,
) {
    let app_public = app_key.map(AppPrivateKey::public_key);
    let app_spki = app_public.as_ref().map(|k| k.spki_der());
    let mut parsed = Vec::new();
    for (role, file) in [
        (Role::App, &files.app),
        (Role::Alipay, &files.alipay),
        (Role::Root, &files.root),
    ] {
        let Some(text) = file.text.as_deref() else {
            parsed.push(None);
            continue;
        };
        let p = match parse(text) {
            Ok(certs) if certs.is_empty() => {
                let what = describe_key_text(text)
                    .map(|d| format!(" (it holds {d})"))
                    .unwrap_or_default();
                Err(format!(
                    "holds no certificate{what}: expected {}",
                    role.file()
                ))
            }
            Ok(certs) => Ok(classify(text, certs, app_spki)),
            Err(e) => Err(e),
        };
        parsed.push(Some((role, file, p)));
    }
    let alipay_leaf_spki: Option<Vec<u8>> = match parsed.get(1) {
        Some(Some((_, _, Ok(p)))) if p.found != Role::Root => {
            p.certs.first().map(|c| c.spki.clone())
        }
        _ => None,
    };
    for (role, file, p) in parsed.iter().flatten() {
        println!("{}", file.label);
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                r.bad(e);
                continue;
            }
        };
        which_file(r, *role, p, app_spki, alipay_leaf_spki.as_deref());
        validity(r, p.found, p, now_unix);
        serial_numbers(r, *role, p);
    }
    if let (Some(Some((_, _, Ok(alipay)))), Some(Some((_, _, Ok(root))))) =
        (parsed.get(1), parsed.get(2))
        && alipay.found == Role::Alipay
        && root.found == Role::Root
    {
        chain(r, alipay, root);
    }
}

fn which_file(
    r: &mut Report,
    role: Role,
    p: &Parsed<'_>,
    app_spki: Option<&[u8]>,
    alipay_spki: Option<&[u8]>,
) {
    let subject = p.certs.first().map(|c| c.subject.as_str()).unwrap_or("");
    match (role, p.found) {
        (Role::Root, Role::Root) => r.ok(format!(
            "the root bundle: {} self-signed root certificate(s)",
            p.certs.len()
        )),
        (Role::App, Role::App) => r.ok(format!(
            "the app certificate ({subject}); it certifies the app private key's public key"
        )),
        (Role::App, Role::Alipay) if app_spki.is_none() => r.note(format!(
            "a certificate ({subject}); without a usable app private key it cannot be matched"
        )),
        (Role::App, Role::Alipay) if alipay_spki.is_some() && alipay_spki == app_spki => r.bad(
            "this is Alipay's certificate, and the file given as Alipay's is the app \
             certificate: the two look swapped",
        ),
        (Role::App, Role::Alipay) => r.bad(format!(
            "this certificate ({subject}) certifies another key than the app private key: it \
             is not {} for this key. Use the private key it was issued for, or upload this \
             key's public key or CSR (`zhifu keygen --csr`) in the console and download the \
             new certificate",
            Role::App.file()
        )),
        (Role::Alipay, Role::Alipay) => r.ok(format!(
            "Alipay's certificate ({subject}); it is not the app's own"
        )),
        (Role::Alipay, Role::App) => r.bad(format!(
            "this is your app certificate, not {}",
            Role::Alipay.file()
        )),
        (_, found) => r.bad(format!("this is {}, not {}", found.file(), role.file())),
    }
}

fn validity(r: &mut Report, role: Role, p: &Parsed<'_>, now: i64) {
    let soon = now + EXPIRY_WARNING_DAYS * 86_400;
    let mut usable = 0;
    for c in &p.certs {
        let who = if p.certs.len() > 1 {
            format!("{}: ", c.subject)
        } else {
            String::new()
        };
        if now < c.not_before {
            let msg = format!("{who}not valid before {} (UTC)", c.not_before_date);
            // An old or future root in the bundle is harmless while
            // another one is valid; a leaf outside its validity is refused.
            if role == Role::Root {
                r.warn(msg)
            } else {
                r.bad(msg)
            }
        } else if now > c.not_after {
            let msg = format!("{who}expired on {} (UTC)", c.not_after_date);
            if role == Role::Root {
                r.warn(msg)
            } else {
                r.bad(msg)
            }
        } else if c.not_after < soon {
            usable += 1;
            r.warn(format!(
                "{who}expires on {} (UTC), in {} day(s): renew it in the console \
                 (开发设置 → 接口加签方式 → 证书更新) and deploy the new files",
                c.not_after_date,
                (c.not_after - now) / 86_400
            ));
        } else {
            usable += 1;
            if p.certs.len() == 1 {
                r.ok(format!(
                    "valid from {} until {} (UTC)",
                    c.not_before_date, c.not_after_date
                ));
            }
        }
    }
    if role == Role::Root && p.certs.len() > 1 {
        if usable == 0 {
            r.bad("no certificate of the bundle is within its validity");
        } else {
            r.ok(format!(
                "{usable} of {} within their validity",
                p.certs.len()
            ));
        }
    }
}

fn serial_numbers(r: &mut Report, role: Role, p: &Parsed<'_>) {
    if role != p.found {
        return;
    }
    let (name, sn) = match role {
        Role::App => ("app_cert_sn", alipay::cert::cert_sn(p.text.as_bytes())),
        Role::Alipay => ("alipay_cert_sn", alipay::cert::cert_sn(p.text.as_bytes())),
        Role::Root => (
            "alipay_root_cert_sn",
            alipay::cert::root_cert_sn(p.text.as_bytes()),
        ),
    };
    match sn {
        Ok(sn) => r.ok(format!("{name} {sn}")),
        Err(e) => r.bad(format!("{name} cannot be computed: {e}")),
    }
}

fn chain(r: &mut Report, alipay: &Parsed<'_>, root: &Parsed<'_>) {
    println!("chain of Alipay's certificate to the root bundle");
    // Validity was reported per certificate above; this is the path only.
    match alipay::cert::verify_chain(alipay.text.as_bytes(), root.text.as_bytes(), None) {
        Ok(()) => r.ok("Alipay's certificate chains to a root of the bundle"),
        Err(e) => r.warn(format!(
            "{e}. `zhifu serve` still runs with it, but refuses a rotated Alipay \
             certificate that does not chain to ALIPAY_ROOT_CERT. Certificates of Alipay's \
             sandbox (沙箱) do not chain to the bundle given with them; with production \
             files, check that alipayCertPublicKey_RSA2.crt and alipayRootCert.crt were \
             downloaded for the same app (docs/going-live.md)"
        )),
    }
}

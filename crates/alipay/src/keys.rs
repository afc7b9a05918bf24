//! RSA keys in every form Alipay's tools and merchants' environments produce.
//!
//! The app private key arrives as PEM (`RSA PRIVATE KEY` = PKCS#1, `PRIVATE
//! KEY` = PKCS#8) or as the bare base64 the Alipay key tool writes (of either
//! DER), often from an environment variable that carries literal `\n`
//! sequences. Public keys arrive as SPKI, PEM or bare. The form is detected
//! from the DER structure itself, never from the caller's say-so, so every
//! failure can name what it actually found.
//!
//! Signing and verification use aws-lc-rs (constant-time private-key
//! operations). Keys are parsed once; nothing here is on a per-request hot
//! path except [`AppPrivateKey::sign`] and [`AlipayPublicKey::verify`].

use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{Error, KeyProblem, KeyRole, Result};
use crate::legacy_sha1::LegacySha1Signer;

/// The signature algorithm of a request or message (`sign_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignType {
    /// `RSA2`: RSASSA-PKCS1-v1_5 with SHA-256. The default and the only one
    /// new apps can choose.
    #[default]
    Rsa2,
    /// `RSA`: RSASSA-PKCS1-v1_5 with SHA-1, for legacy apps only.
    Rsa,
}

impl SignType {
    /// The wire name (`RSA2` / `RSA`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Rsa2 => "RSA2",
            SignType::Rsa => "RSA",
        }
    }

    /// Parses the wire name. Alipay writes them in upper case; we also accept
    /// lower case, as the Java SDK does.
    ///
    /// # Errors
    /// [`Error::UnsupportedSignType`].
    pub fn parse(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("RSA2") {
            Ok(SignType::Rsa2)
        } else if s.eq_ignore_ascii_case("RSA") {
            Ok(SignType::Rsa)
        } else {
            Err(Error::UnsupportedSignType(s.chars().take(16).collect()))
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The merchant's application private key. Its `Debug` never shows key material.
pub struct AppPrivateKey {
    pair: RsaKeyPair,
    // SHA-1 signing is outside aws-lc-rs's safe API; built on first use only.
    legacy: OnceLock<std::result::Result<LegacySha1Signer, ()>>,
}

impl fmt::Debug for AppPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppPrivateKey")
            .field("bits", &(self.pair.public_modulus_len() * 8))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AppPrivateKey {
    /// Parses a private key from PEM or bare base64, PKCS#1 or PKCS#8.
    ///
    /// # Errors
    /// [`Error::Key`] naming what was found instead.
    pub fn parse(text: &str) -> Result<Self> {
        let role = KeyRole::AppPrivateKey;
        let decoded = decode_text(text, role)?;
        let kind = classify(&decoded.der);
        check_label(decoded.label.as_deref(), kind, role)?;
        let pair = match kind {
            DerKind::Pkcs8Private => RsaKeyPair::from_pkcs8(&decoded.der),
            DerKind::Pkcs1Private => RsaKeyPair::from_der(&decoded.der),
            DerKind::Spki | DerKind::Pkcs1Public => {
                return Err(Error::key(role, KeyProblem::PublicWherePrivateExpected));
            }
            DerKind::Certificate => return Err(Error::key(role, KeyProblem::CertificateGiven)),
            DerKind::Unknown => return Err(Error::key(role, KeyProblem::NotRsa)),
        }
        .map_err(|e| Error::key(role, KeyProblem::Rejected(e.description_())))?;
        Ok(AppPrivateKey {
            pair,
            legacy: OnceLock::new(),
        })
    }

    /// Generates a fresh RSA-2048 key (what `zhifu keygen` writes).
    ///
    /// # Errors
    /// [`Error::Crypto`] if the system RNG fails.
    pub fn generate() -> Result<Self> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| Error::Crypto)?;
        Ok(AppPrivateKey {
            pair,
            legacy: OnceLock::new(),
        })
    }

    /// Signs `message` and returns the standard base64 signature.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the primitive fails (it does not for a valid key).
    pub fn sign(&self, sign_type: SignType, message: &[u8]) -> Result<String> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        match sign_type {
            SignType::Rsa2 => self
                .pair
                .sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| Error::Crypto)?,
            SignType::Rsa => {
                let signer = self
                    .legacy
                    .get_or_init(|| {
                        let der = self.pair.as_der().map_err(|_| ())?;
                        LegacySha1Signer::from_pkcs8(der.as_ref())
                    })
                    .as_ref()
                    .map_err(|()| Error::Crypto)?;
                sig = signer.sign(message)?;
            }
        }
        Ok(B64.encode(sig))
    }

    /// The public half, to compare with what was uploaded to the console.
    pub fn public_key(&self) -> AlipayPublicKey {
        let spki = self
            .pair
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            // The key pair was validated on parse; its public key always encodes.
            .expect("a parsed RSA key pair has an SPKI encoding");
        AlipayPublicKey::from_spki(spki, KeyRole::PublicKey)
            .expect("the SPKI of a parsed key pair parses")
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    /// [`Error::Crypto`] if the key cannot be encoded.
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        Ok(pem("PRIVATE KEY", self.pkcs8_der()?.as_slice()))
    }

    /// Bare base64 of the PKCS#8 DER, the form the Alipay console tools use.
    ///
    /// # Errors
    /// [`Error::Crypto`] if the key cannot be encoded.
    pub fn to_pkcs8_base64(&self) -> Result<String> {
        Ok(B64.encode(self.pkcs8_der()?))
    }

    fn pkcs8_der(&self) -> Result<Vec<u8>> {
        self.pair
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| Error::Crypto)
    }
}

/// An RSA public key: Alipay's (verifies its responses and notifications),
/// or an app's (the sandbox verifies requests with it).
#[derive(Clone)]
pub struct AlipayPublicKey {
    spki: Vec<u8>,
    sha256: ParsedPublicKey,
    sha1: ParsedPublicKey,
    bits: usize,
}

impl fmt::Debug for AlipayPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayPublicKey")
            .field("bits", &self.bits)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl PartialEq for AlipayPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}
impl Eq for AlipayPublicKey {}

impl AlipayPublicKey {
    /// Parses an SPKI public key from PEM (`PUBLIC KEY`, or `RSA PUBLIC KEY`)
    /// or the bare base64 the Alipay console shows.
    ///
    /// # Errors
    /// [`Error::Key`] naming what was found instead.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_as(text, KeyRole::AlipayPublicKey)
    }

    /// Like [`AlipayPublicKey::parse`], but errors name the key as `role`.
    ///
    /// # Errors
    /// [`Error::Key`].
    pub fn parse_as(text: &str, role: KeyRole) -> Result<Self> {
        let decoded = decode_text(text, role)?;
        let kind = classify(&decoded.der);
        check_label(decoded.label.as_deref(), kind, role)?;
        match kind {
            DerKind::Spki => Self::from_spki(decoded.der, role),
            DerKind::Pkcs1Public => Self::from_spki(wrap_pkcs1_public(&decoded.der), role),
            DerKind::Pkcs1Private | DerKind::Pkcs8Private => {
                Err(Error::key(role, KeyProblem::PrivateWherePublicExpected))
            }
            DerKind::Certificate => Err(Error::key(role, KeyProblem::CertificateGiven)),
            DerKind::Unknown => Err(Error::key(role, KeyProblem::NotRsa)),
        }
    }

    pub(crate) fn from_spki(spki: Vec<u8>, role: KeyRole) -> Result<Self> {
        let reject = |e: aws_lc_rs::error::KeyRejected| {
            Error::key(role, KeyProblem::Rejected(e.description_()))
        };
        // 1024-bit keys are accepted for verification only: legacy `RSA` apps
        // were issued them (docs/protocol.md §3.3). `zhifu doctor` warns about them.
        let sha256 = ParsedPublicKey::new(
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            &spki,
        )
        .map_err(reject)?;
        let sha1 = ParsedPublicKey::new(
            &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            &spki,
        )
        .map_err(reject)?;
        let bits = rsa_modulus_bits(&spki).unwrap_or(0);
        Ok(AlipayPublicKey {
            spki,
            sha256,
            sha1,
            bits,
        })
    }

    /// Verifies a standard-base64 signature over `message`.
    ///
    /// # Errors
    /// [`Error::BadSignature`] when it does not verify or is not base64.
    pub fn verify(&self, sign_type: SignType, message: &[u8], signature_b64: &str) -> Result<()> {
        let sig = B64
            .decode(signature_b64.as_bytes())
            .map_err(|_| Error::BadSignature)?;
        let key = match sign_type {
            SignType::Rsa2 => &self.sha256,
            SignType::Rsa => &self.sha1,
        };
        key.verify_sig(message, &sig)
            .map_err(|_| Error::BadSignature)
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Bare base64 of the SPKI: what the Alipay console shows and expects.
    pub fn to_base64(&self) -> String {
        B64.encode(&self.spki)
    }

    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki)
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// A short, stable fingerprint (first 8 bytes of SHA-256 of the SPKI, hex).
    pub fn fingerprint(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.spki);
        d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What a piece of key text is, in words ("PEM `PRIVATE KEY`, PKCS#8 RSA
/// private key"), for diagnostics. Never includes key material.
///
/// # Errors
/// [`Error::Key`] when the text is not PEM or base64 at all.
pub fn describe_key_text(text: &str) -> Result<String> {
    let decoded = decode_text(text, KeyRole::PublicKey)?;
    let body = match classify(&decoded.der) {
        DerKind::Pkcs1Private => "PKCS#1 RSA private key",
        DerKind::Pkcs8Private => "PKCS#8 RSA private key",
        DerKind::Spki => "SPKI RSA public key",
        DerKind::Pkcs1Public => "PKCS#1 RSA public key",
        DerKind::Certificate => "X.509 certificate",
        DerKind::Unknown => "unrecognised DER",
    };
    Ok(match decoded.label {
        Some(l) => format!("PEM `{l}`, {body}"),
        None => format!("bare base64, {body}"),
    })
}

/// Wraps base64 in PEM armour with 64-column lines.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

struct DecodedText {
    label: Option<String>,
    der: Vec<u8>,
}

/// Undoes the ways keys get mangled on their way into a program: literal
/// `\n` from environment variables, CRLF, surrounding quotes and blanks.
fn normalise(text: &str) -> String {
    let t = text.trim().trim_matches('"').trim_matches('\'');
    t.replace("\\r\\n", "\n")
        .replace("\\n", "\n")
        .replace('\r', "")
}

fn decode_text(text: &str, role: KeyRole) -> Result<DecodedText> {
    let t = normalise(text);
    if t.trim().is_empty() {
        return Err(Error::key(role, KeyProblem::Empty));
    }
    if let Some(start) = t.find("-----BEGIN ") {
        let rest = &t[start + "-----BEGIN ".len()..];
        let label_end = rest
            .find("-----")
            .ok_or(Error::key(role, KeyProblem::BrokenPem))?;
        let label = rest[..label_end].to_string();
        let body_and_end = &rest[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_and_end
            .find(&end_marker)
            .ok_or(Error::key(role, KeyProblem::BrokenPem))?;
        let body: String = body_and_end[..end]
            .lines()
            // RFC 1421 headers (`Proc-Type:`) belong to encrypted keys, which we do not read.
            .filter(|l| !l.contains(':'))
            .collect::<Vec<_>>()
            .join("");
        let der = decode_b64(&body).ok_or(Error::key(role, KeyProblem::NotPemOrBase64))?;
        match label.as_str() {
            "RSA PRIVATE KEY" | "PRIVATE KEY" | "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::key(
                    role,
                    KeyProblem::UnexpectedPemLabel(
                        "ENCRYPTED PRIVATE KEY (decrypt it first)".into(),
                    ),
                ));
            }
            other => {
                return Err(Error::key(
                    role,
                    KeyProblem::UnexpectedPemLabel(other.chars().take(40).collect()),
                ));
            }
        }
        return Ok(DecodedText {
            label: Some(label),
            der,
        });
    }
    let der = decode_b64(&t).ok_or(Error::key(role, KeyProblem::NotPemOrBase64))?;
    Ok(DecodedText { label: None, der })
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    B64.decode(compact.as_bytes()).ok().or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(compact.as_bytes())
            .ok()
    })
}

fn check_label(label: Option<&str>, kind: DerKind, role: KeyRole) -> Result<()> {
    let describe = |k: DerKind| match k {
        DerKind::Pkcs1Private => "PKCS#1",
        DerKind::Pkcs8Private => "PKCS#8",
        DerKind::Spki => "SPKI",
        DerKind::Pkcs1Public => "PKCS#1 public",
        DerKind::Certificate => "a certificate",
        DerKind::Unknown => "unrecognised DER",
    };
    let (promised, ok) = match label {
        None => return Ok(()),
        Some("RSA PRIVATE KEY") => ("PKCS#1", matches!(kind, DerKind::Pkcs1Private)),
        Some("PRIVATE KEY") => ("PKCS#8", matches!(kind, DerKind::Pkcs8Private)),
        Some("PUBLIC KEY") => ("SPKI", matches!(kind, DerKind::Spki)),
        Some("RSA PUBLIC KEY") => ("PKCS#1 public", matches!(kind, DerKind::Pkcs1Public)),
        Some(_) => return Ok(()),
    };
    if ok || kind == DerKind::Unknown {
        return Ok(());
    }
    Err(Error::key(
        role,
        KeyProblem::LabelMismatch {
            label: promised,
            body: describe(kind),
        },
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DerKind {
    Pkcs1Private,
    Pkcs8Private,
    Spki,
    Pkcs1Public,
    Certificate,
    Unknown,
}

const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Reads one DER TLV: returns (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn classify(der: &[u8]) -> DerKind {
    let Some((0x30, body, _)) = tlv(der) else {
        return DerKind::Unknown;
    };
    let Some((t1, c1, rest1)) = tlv(body) else {
        return DerKind::Unknown;
    };
    match t1 {
        0x02 => {
            // INTEGER first: PKCS#1 private (version 0, then n, e, ...),
            // PKCS#8 (version 0, then AlgorithmIdentifier), or PKCS#1 public (n, e).
            let Some((t2, c2, rest2)) = tlv(rest1) else {
                return DerKind::Unknown;
            };
            match t2 {
                0x30 if c1 == [0] || c1 == [1] => {
                    if tlv(c2).is_some_and(|(t, oid, _)| t == 0x06 && oid == RSA_ENCRYPTION_OID) {
                        DerKind::Pkcs8Private
                    } else {
                        DerKind::Unknown
                    }
                }
                0x02 if c1 == [0] && !rest2.is_empty() => DerKind::Pkcs1Private,
                0x02 if rest2.is_empty() => DerKind::Pkcs1Public,
                _ => DerKind::Unknown,
            }
        }
        0x30 => {
            // SEQUENCE first: SPKI (AlgorithmIdentifier, BIT STRING) or a
            // certificate (TBSCertificate, AlgorithmIdentifier, BIT STRING).
            let first_inner = tlv(c1);
            match first_inner {
                Some((0x06, oid, _)) => {
                    if oid == RSA_ENCRYPTION_OID && tlv(rest1).is_some_and(|(t, _, _)| t == 0x03) {
                        DerKind::Spki
                    } else {
                        DerKind::Unknown
                    }
                }
                Some((0xa0 | 0x02, _, _)) => DerKind::Certificate,
                _ => DerKind::Unknown,
            }
        }
        _ => DerKind::Unknown,
    }
}

/// SPKI { AlgorithmIdentifier { rsaEncryption, NULL }, BIT STRING { 0, pkcs1 } }.
fn wrap_pkcs1_public(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = vec![0x06, RSA_ENCRYPTION_OID.len() as u8];
    alg.extend_from_slice(RSA_ENCRYPTION_OID);
    alg.extend_from_slice(&[0x05, 0x00]);
    let alg = der_wrap(0x30, &alg);
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let bits = der_wrap(0x03, &bits);
    let mut both = alg;
    both.extend_from_slice(&bits);
    der_wrap(0x30, &both)
}

fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Bit length of the modulus inside an SPKI.
fn rsa_modulus_bits(spki: &[u8]) -> Option<usize> {
    let (_, body, _) = tlv(spki)?;
    let (_, _alg, rest) = tlv(body)?;
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    let (_, rsa, _) = tlv(bits.get(1..)?)?;
    let (0x02, n, _) = tlv(rsa)? else { return None };
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return Some(0),
    };
    Some(n.len() * 8 - n[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/upstream");

    fn read(p: &str) -> String {
        std::fs::read_to_string(format!("{V}/{p}")).unwrap()
    }

    #[test]
    fn four_encodings_of_one_private_key_agree() {
        let forms = [
            "nodejs-sdk/keys/app-private-key.pem",
            "nodejs-sdk/keys/app-private-key-pkcs8.pem",
            "nodejs-sdk/keys/app-private-key-no-wrapper.pem",
            "nodejs-sdk/keys/app-private-key-pkcs8-no-wrapper.pem",
        ];
        let expected = AlipayPublicKey::parse_as(
            &read("nodejs-sdk/keys/app-public-key.pem"),
            KeyRole::PublicKey,
        )
        .unwrap();
        let bare = AlipayPublicKey::parse_as(
            &read("nodejs-sdk/keys/app-public-key-no-wrapper.pem"),
            KeyRole::PublicKey,
        )
        .unwrap();
        assert_eq!(expected, bare);
        for f in forms {
            let k = AppPrivateKey::parse(&read(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(k.public_key(), expected, "{f}");
            assert_eq!(k.bits(), 2048);
        }
    }

    #[test]
    fn env_var_forms_are_tolerated() {
        let pem = read("nodejs-sdk/keys/app-private-key-pkcs8.pem");
        let escaped = format!("\"{}\"\n\n", pem.trim().replace('\n', "\\n"));
        AppPrivateKey::parse(&escaped).unwrap();
        let crlf = pem.replace('\n', "\r\n");
        AppPrivateKey::parse(&crlf).unwrap();
        let bare = read("nodejs-sdk/keys/app-private-key-no-wrapper.pem");
        AppPrivateKey::parse(&format!("  {}  \n", bare.trim())).unwrap();
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let public = read("nodejs-sdk/keys/app-public-key.pem");
        let e = AppPrivateKey::parse(&public).unwrap_err().to_string();
        assert!(
            e.contains("looks like a public key, expected the app private key"),
            "{e}"
        );

        let pkcs1_body = read("nodejs-sdk/keys/app-private-key-no-wrapper.pem");
        let lying = pem_from_b64("PRIVATE KEY", &pkcs1_body);
        let e = AppPrivateKey::parse(&lying).unwrap_err().to_string();
        assert!(e.contains("PKCS#8 header but the body is PKCS#1"), "{e}");

        let private = read("nodejs-sdk/keys/app-private-key.pem");
        let e = AlipayPublicKey::parse(&private).unwrap_err().to_string();
        assert!(e.contains("looks like a private key"), "{e}");

        let cert = read("nodejs-sdk/certs/alipayCertPublicKey_RSA2.crt");
        let e = AlipayPublicKey::parse(&cert).unwrap_err().to_string();
        assert!(e.contains("certificate"), "{e}");

        assert!(
            AppPrivateKey::parse("")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            AppPrivateKey::parse("not a key!")
                .unwrap_err()
                .to_string()
                .contains("neither PEM")
        );
        let truncated = &private[..private.len() / 2];
        assert!(AppPrivateKey::parse(truncated).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let k = AppPrivateKey::parse(&read("nodejs-sdk/keys/app-private-key.pem")).unwrap();
        let d = format!("{k:?}");
        assert!(d.contains("redacted"));
        assert!(!d.contains("MII"));
    }

    #[test]
    fn pkcs1_public_pem_is_accepted() {
        let spki = AlipayPublicKey::parse(&read("nodejs-sdk/keys/alipay-public-key.pem")).unwrap();
        // Strip the SPKI wrapper to get the PKCS#1 RSAPublicKey.
        let (_, body, _) = tlv(spki.spki_der()).unwrap();
        let (_, _, rest) = tlv(body).unwrap();
        let (_, bits, _) = tlv(rest).unwrap();
        let p1 = pem("RSA PUBLIC KEY", &bits[1..]);
        assert_eq!(AlipayPublicKey::parse(&p1).unwrap(), spki);
        assert_eq!(spki.bits(), 2048);
    }

    #[test]
    fn generated_keys_roundtrip_through_every_form() {
        let k = AppPrivateKey::generate().unwrap();
        let again = AppPrivateKey::parse(&k.to_pkcs8_pem().unwrap()).unwrap();
        let bare = AppPrivateKey::parse(&k.to_pkcs8_base64().unwrap()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        assert_eq!(bare.public_key(), k.public_key());
        let pubk = AlipayPublicKey::parse(&k.public_key().to_base64()).unwrap();
        let sig = k.sign(SignType::Rsa2, b"hello").unwrap();
        pubk.verify(SignType::Rsa2, b"hello", &sig).unwrap();
        assert!(pubk.verify(SignType::Rsa2, b"hellO", &sig).is_err());
        let sig1 = k.sign(SignType::Rsa, b"hello").unwrap();
        pubk.verify(SignType::Rsa, b"hello", &sig1).unwrap();
        assert!(pubk.verify(SignType::Rsa2, b"hello", &sig1).is_err());
    }

    fn pem_from_b64(label: &str, b64: &str) -> String {
        let der = B64
            .decode(b64.split_whitespace().collect::<String>())
            .unwrap();
        pem(label, &der)
    }
}

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

mod parse;
#[cfg(test)]
mod tests;

use parse::{DerKind, check_label, classify, decode_text, rsa_modulus_bits, wrap_pkcs1_public};

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

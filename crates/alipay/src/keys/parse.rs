//! PEM/base64 decoding and DER structure detection for the key types in `keys`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{Error, KeyProblem, KeyRole, Result};

pub(super) struct DecodedText {
    pub(super) label: Option<String>,
    pub(super) der: Vec<u8>,
}

/// Undoes the ways keys get mangled on their way into a program: literal
/// `\n` from environment variables, CRLF, surrounding quotes and blanks.
pub(super) fn normalise(text: &str) -> String {
    let t = text.trim().trim_matches('"').trim_matches('\'');
    t.replace("\\r\\n", "\n")
        .replace("\\n", "\n")
        .replace('\r', "")
}

pub(super) fn decode_text(text: &str, role: KeyRole) -> Result<DecodedText> {
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

pub(super) fn decode_b64(s: &str) -> Option<Vec<u8>> {
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

pub(super) fn check_label(label: Option<&str>, kind: DerKind, role: KeyRole) -> Result<()> {
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
pub(super) enum DerKind {
    Pkcs1Private,
    Pkcs8Private,
    Spki,
    Pkcs1Public,
    Certificate,
    Unknown,
}

const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Reads one DER TLV: returns (tag, content, rest).
pub(super) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
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

pub(super) fn classify(der: &[u8]) -> DerKind {
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
pub(super) fn wrap_pkcs1_public(pkcs1: &[u8]) -> Vec<u8> {
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

pub(super) fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
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
pub(super) fn rsa_modulus_bits(spki: &[u8]) -> Option<usize> {
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

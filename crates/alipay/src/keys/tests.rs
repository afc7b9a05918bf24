//! Unit tests for key parsing, encoding and signing.

use super::parse::tlv;
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

//! Content encryption (接口内容加密, docs/protocol.md §8): AES-CBC with a zero IV and PKCS#7
//! padding, base64 on the wire — byte-identical to the official SDKs.

use std::fmt;

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{Error, Result};

/// The AES key shown in the Alipay console (base64 of 16 bytes; 24 and 32
/// are accepted too). Its `Debug` is redacted.
#[derive(Clone)]
pub struct AesKey(Vec<u8>);

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesKey(<{} bits, redacted>)", self.0.len() * 8)
    }
}

const ZERO_IV: [u8; 16] = [0; 16];

impl AesKey {
    /// Parses the console's base64 key.
    ///
    /// # Errors
    /// [`Error::Aes`] when not base64 of 16, 24 or 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self> {
        let k = B64
            .decode(s.trim())
            .map_err(|_| Error::Aes("the key is not base64"))?;
        if ![16, 24, 32].contains(&k.len()) {
            return Err(Error::Aes("the key must be 16, 24 or 32 bytes"));
        }
        Ok(AesKey(k))
    }

    /// Encrypts UTF-8 text, returns base64.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let pt = plaintext.as_bytes();
        let ct = match self.0.len() {
            16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&self.0, &ZERO_IV)
                .expect("length checked in from_base64")
                .encrypt_padded_vec::<Pkcs7>(pt),
            24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(&self.0, &ZERO_IV)
                .expect("length checked in from_base64")
                .encrypt_padded_vec::<Pkcs7>(pt),
            _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(&self.0, &ZERO_IV)
                .expect("length checked in from_base64")
                .encrypt_padded_vec::<Pkcs7>(pt),
        };
        B64.encode(ct)
    }

    /// Decrypts base64 ciphertext to UTF-8 text.
    ///
    /// # Errors
    /// [`Error::Aes`] on bad base64, bad padding (usually: wrong key) or non-UTF-8.
    pub fn decrypt(&self, ciphertext_b64: &str) -> Result<String> {
        let ct = B64
            .decode(ciphertext_b64.trim())
            .map_err(|_| Error::Aes("the ciphertext is not base64"))?;
        let pt = match self.0.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.0, &ZERO_IV)
                .expect("length checked in from_base64")
                .decrypt_padded_vec::<Pkcs7>(&ct),
            24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&self.0, &ZERO_IV)
                .expect("length checked in from_base64")
                .decrypt_padded_vec::<Pkcs7>(&ct),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.0, &ZERO_IV)
                .expect("length checked in from_base64")
                .decrypt_padded_vec::<Pkcs7>(&ct),
        }
        .map_err(|_| Error::Aes("decryption failed (wrong key?)"))?;
        String::from_utf8(pt).map_err(|_| Error::Aes("the plaintext is not UTF-8"))
    }
}

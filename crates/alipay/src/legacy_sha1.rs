//! SHA1withRSA signing for legacy `sign_type=RSA` apps.
//!
//! aws-lc-rs deliberately exposes no SHA-1 *signing* (verification it has),
//! so this one operation goes through aws-lc's EVP interface directly. It is
//! the same constant-time RSA code aws-lc-rs uses; only the digest differs.
//! The unsafe surface is four FFI calls with owned, freed-on-drop handles.
#![allow(unsafe_code)]

use aws_lc_sys as ffi;

use crate::error::{Error, Result};

/// An aws-lc `EVP_PKEY` holding an RSA private key, freed on drop.
pub(crate) struct LegacySha1Signer {
    pkey: *mut ffi::EVP_PKEY,
}

// SAFETY: aws-lc documents EVP_PKEY as safe for concurrent use by
// non-mutating functions; signing through a fresh EVP_MD_CTX per call does
// not mutate the key (aws-lc-rs relies on the same for its own key types).
unsafe impl Send for LegacySha1Signer {}
unsafe impl Sync for LegacySha1Signer {}

impl LegacySha1Signer {
    pub(crate) fn from_pkcs8(der: &[u8]) -> std::result::Result<Self, ()> {
        let mut cbs = ffi::CBS {
            data: der.as_ptr(),
            len: der.len(),
        };
        // SAFETY: `cbs` points into `der`, which outlives the call; aws-lc
        // copies what it needs into the returned EVP_PKEY.
        let pkey = unsafe { ffi::EVP_parse_private_key(&mut cbs) };
        if pkey.is_null() {
            return Err(());
        }
        Ok(LegacySha1Signer { pkey })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        // SAFETY: every pointer is either owned here (ctx, freed below on all
        // paths) or borrowed for the duration of the call (pkey, message, out).
        unsafe {
            let ctx = ffi::EVP_MD_CTX_new();
            if ctx.is_null() {
                return Err(Error::Crypto);
            }
            let result = (|| {
                if ffi::EVP_DigestSignInit(
                    ctx,
                    std::ptr::null_mut(),
                    ffi::EVP_sha1(),
                    std::ptr::null_mut(),
                    self.pkey,
                ) != 1
                {
                    return Err(Error::Crypto);
                }
                let mut len = 0usize;
                if ffi::EVP_DigestSign(
                    ctx,
                    std::ptr::null_mut(),
                    &mut len,
                    message.as_ptr(),
                    message.len(),
                ) != 1
                {
                    return Err(Error::Crypto);
                }
                let mut out = vec![0u8; len];
                if ffi::EVP_DigestSign(
                    ctx,
                    out.as_mut_ptr(),
                    &mut len,
                    message.as_ptr(),
                    message.len(),
                ) != 1
                {
                    return Err(Error::Crypto);
                }
                out.truncate(len);
                Ok(out)
            })();
            ffi::EVP_MD_CTX_free(ctx);
            result
        }
    }
}

impl Drop for LegacySha1Signer {
    fn drop(&mut self) {
        // SAFETY: `pkey` was returned non-null by EVP_parse_private_key and is
        // freed exactly once.
        unsafe { ffi::EVP_PKEY_free(self.pkey) }
    }
}

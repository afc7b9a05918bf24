//! Checkout ids: the handle a browser polls with.
//!
//! A checkout id names a backend order without any server-side table (so
//! any number of stateless instances can answer for it) and cannot be
//! forged: it is `co_` + base64url(order id) + `.` + base64url(the first
//! 16 bytes of HMAC-SHA256(secret, order id)). The public status endpoint
//! therefore answers only for orders the checkout itself created, never
//! for orders made through the merchant API.

use std::fmt;

use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

const PREFIX: &str = "co_";
const TAG_LEN: usize = 16;
const MAX_ORDER_ID: usize = 128;
/// Domain separation for deriving the secret from the API key.
const DERIVE_LABEL: &[u8] = b"zhifu-checkout-id/v1";

/// The key that seals checkout ids. Every instance serving the same
/// backend must use the same one. `Debug` never shows it.
#[derive(Clone)]
pub struct CheckoutSecret(hmac::Key);

impl fmt::Debug for CheckoutSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckoutSecret(<redacted>)")
    }
}

impl CheckoutSecret {
    /// Derives the secret from the merchant API key, so instances that
    /// share the key agree without another setting. A leaked checkout id
    /// reveals nothing about the key (HMAC is one-way).
    pub fn derive_from(api_key: &str) -> Self {
        let outer = hmac::Key::new(hmac::HMAC_SHA256, api_key.as_bytes());
        let tag = hmac::sign(&outer, DERIVE_LABEL);
        CheckoutSecret(hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref()))
    }

    /// A fresh random secret (ids stop verifying when the process ends).
    ///
    /// # Panics
    /// If the system random generator fails, which aws-lc treats as fatal too.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes).expect("invariant: the system RNG is available");
        CheckoutSecret(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// The checkout id for an order id.
    pub fn seal(&self, order_id: &str) -> String {
        let tag = hmac::sign(&self.0, order_id.as_bytes());
        format!(
            "{PREFIX}{}.{}",
            B64.encode(order_id),
            B64.encode(&tag.as_ref()[..TAG_LEN])
        )
    }

    /// The order id inside a checkout id, if the id is genuine.
    pub fn open(&self, checkout_id: &str) -> Option<String> {
        let rest = checkout_id.strip_prefix(PREFIX)?;
        let (id_b64, tag_b64) = rest.split_once('.')?;
        if id_b64.len() > MAX_ORDER_ID * 4 / 3 + 4 || tag_b64.len() > 32 {
            return None;
        }
        let id = B64.decode(id_b64).ok()?;
        let tag = B64.decode(tag_b64).ok()?;
        let want = hmac::sign(&self.0, &id);
        if tag.len() != TAG_LEN
            || constant_time::verify_slices_are_equal(&want.as_ref()[..TAG_LEN], &tag).is_err()
        {
            return None;
        }
        String::from_utf8(id).ok()
    }

    /// The checkout id for a subscription id: like [`CheckoutSecret::seal`]
    /// with prefix `cs_`, the tag computed over a domain label and the id,
    /// so an order's checkout id never opens as a subscription's (nor the
    /// other way round).
    pub fn seal_subscription(&self, subscription_id: &str) -> String {
        let tag = self.subscription_tag(subscription_id.as_bytes());
        format!(
            "{SUBSCRIPTION_PREFIX}{}.{}",
            B64.encode(subscription_id),
            B64.encode(&tag.as_ref()[..TAG_LEN])
        )
    }

    /// The subscription id inside a `cs_` checkout id, if it is genuine.
    pub fn open_subscription(&self, checkout_id: &str) -> Option<String> {
        let rest = checkout_id.strip_prefix(SUBSCRIPTION_PREFIX)?;
        let (id_b64, tag_b64) = rest.split_once('.')?;
        if id_b64.len() > MAX_ORDER_ID * 4 / 3 + 4 || tag_b64.len() > 32 {
            return None;
        }
        let id = B64.decode(id_b64).ok()?;
        let tag = B64.decode(tag_b64).ok()?;
        let want = self.subscription_tag(&id);
        if tag.len() != TAG_LEN
            || constant_time::verify_slices_are_equal(&want.as_ref()[..TAG_LEN], &tag).is_err()
        {
            return None;
        }
        String::from_utf8(id).ok()
    }

    fn subscription_tag(&self, id: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(SUBSCRIPTION_LABEL);
        ctx.update(id);
        ctx.sign()
    }
}

impl CheckoutSecret {
    /// HMAC-SHA256 under this secret of `label` (a domain label ending in
    /// `\0`, so that no two labels' messages collide) then `data`: what
    /// the authorization state and buyer cookie ([`crate::authorize`]) are
    /// sealed with.
    pub(crate) fn tag(&self, label: &[u8], data: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(label);
        ctx.update(data);
        ctx.sign()
    }
}

const SUBSCRIPTION_PREFIX: &str = "cs_";
/// Domain separation of subscription ids from order ids under one key.
const SUBSCRIPTION_LABEL: &[u8] = b"zhifu-checkout-subscription/v1\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let s = CheckoutSecret::derive_from("zk_test_key_0123456789");
        let id = s.seal("ord_01J9ZQ");
        assert!(id.starts_with("co_"));
        assert!(!id.contains("zk_"));
        assert_eq!(s.open(&id).as_deref(), Some("ord_01J9ZQ"));
        // Same key, same id: instances agree.
        assert_eq!(
            CheckoutSecret::derive_from("zk_test_key_0123456789").seal("ord_01J9ZQ"),
            id
        );
    }

    #[test]
    fn forged_or_foreign_ids_do_not_open() {
        let s = CheckoutSecret::derive_from("key-one-key-one-key-one");
        let other = CheckoutSecret::derive_from("key-two-key-two-key-two");
        let id = s.seal("ord_1");
        assert_eq!(other.open(&id), None);
        // Swap in another order id but keep the tag.
        let (_, tag) = id.split_once('.').unwrap();
        let forged = format!("co_{}.{tag}", B64.encode("ord_2"));
        assert_eq!(s.open(&forged), None);
        // Truncated tag, flipped character, garbage.
        assert_eq!(s.open(&id[..id.len() - 2]), None);
        let mut flipped = id.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.open(&String::from_utf8(flipped).unwrap()), None);
        for junk in [
            "",
            "co_",
            "co_.",
            "ord_1",
            "co_!!!.???",
            &format!("co_{}", "A".repeat(5000)),
        ] {
            assert_eq!(s.open(junk), None, "{junk}");
        }
    }

    #[test]
    fn subscription_ids_are_sealed_apart_from_order_ids() {
        let s = CheckoutSecret::derive_from("zk_test_key_0123456789");
        let id = s.seal_subscription("sub_01J9ZQ");
        assert!(id.starts_with("cs_"), "{id}");
        assert_eq!(s.open_subscription(&id).as_deref(), Some("sub_01J9ZQ"));
        // Neither kind opens as the other, even with the prefix swapped.
        assert_eq!(s.open(&id), None);
        assert_eq!(s.open(&id.replacen("cs_", "co_", 1)), None);
        let order = s.seal("sub_01J9ZQ");
        assert_eq!(s.open_subscription(&order), None);
        assert_eq!(s.open_subscription(&order.replacen("co_", "cs_", 1)), None);
        let other = CheckoutSecret::derive_from("key-two-key-two-key-two");
        assert_eq!(other.open_subscription(&id), None);
        assert_eq!(s.open_subscription(&id[..id.len() - 2]), None);
    }

    #[test]
    fn random_secrets_differ_and_debug_is_redacted() {
        let a = CheckoutSecret::random();
        let b = CheckoutSecret::random();
        assert_ne!(a.seal("x"), b.seal("x"));
        assert_eq!(format!("{a:?}"), "CheckoutSecret(<redacted>)");
    }
}

//! The buyer's Alipay id for in-app (jsapi) payments, from Alipay user
//! authorization and never from the page.
//!
//! Inside the Alipay app a jsapi trade needs its buyer (`buyer_open_id` or
//! `buyer_id`). The checkout gets it in one of two ways, both ending in the
//! backend's `POST /v1/oauth/token` (which verifies Alipay's signed answer):
//!
//! - web-view authorization: `GET /checkout/authorize?return=/path` → 303 to
//!   Alipay's authorize page (`auth_base`, silent in the app) → Alipay sends
//!   the buyer to `GET /checkout/authorize/callback?auth_code=…&state=…`;
//! - the app bridge: the page calls `AlipayJSBridge` `getAuthCode` and posts
//!   the code to `POST /checkout/authorize/code`.
//!
//! Either way the answer sets the **buyer cookie**: HttpOnly, SameSite=Lax,
//! path `/checkout`, [`BUYER_TTL`] long, holding the id sealed with the
//! checkout secret (HMAC-SHA256 under a label of its own, with its expiry
//! inside the seal). `POST /checkout` with `channel: "jsapi"` takes the
//! buyer from that cookie only; a `buyer_id` / `buyer_open_id` in the body
//! is refused.
//!
//! The authorize `state` is sealed the same way under another label,
//! binding the return path for [`STATE_TTL`]: the callback redirects only
//! to a path on this site that the checkout itself sealed, so neither an
//! open redirect nor a forged callback can be made of it. No server-side
//! table is needed: any instance sharing the key answers.

use std::time::Duration;

use alipay::BuyerId;
use aws_lc_rs::constant_time;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::HeaderMap;

use crate::id::CheckoutSecret;

/// The cookie holding the sealed buyer id.
pub const BUYER_COOKIE: &str = "zhifu_buyer";
/// How long an authorization counts for the checkout: long enough for a
/// few purchases in one visit, short enough that a shared device forgets.
pub const BUYER_TTL: Duration = Duration::from_secs(30 * 60);
/// How long the buyer may take on Alipay's authorize page.
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Longest return path kept in a state.
pub const MAX_RETURN_PATH: usize = 256;
/// Longest id a buyer cookie may carry (Alipay's are 16–64 characters).
const MAX_BUYER_ID: usize = 64;
const TAG_LEN: usize = 16;
/// Longest sealed token read back (a cookie or a `state`).
const MAX_TOKEN: usize = 1024;

const STATE_LABEL: &[u8] = b"zhifu-checkout-authorize-state/v1\0";
const BUYER_LABEL: &[u8] = b"zhifu-checkout-buyer/v1\0";

/// `payload` sealed until `expires_ms`: base64url(`{expires_ms}.{payload}`)
/// `.` base64url(the first 16 bytes of its HMAC under `label`).
fn seal(secret: &CheckoutSecret, label: &[u8], payload: &str, expires_ms: i64) -> String {
    let body = format!("{expires_ms}.{payload}");
    let tag = secret.tag(label, body.as_bytes());
    format!(
        "{}.{}",
        B64.encode(&body),
        B64.encode(&tag.as_ref()[..TAG_LEN])
    )
}

/// The payload of a genuine token sealed under `label` and not expired.
fn open(secret: &CheckoutSecret, label: &[u8], token: &str, now_ms: i64) -> Option<String> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let (body_b64, tag_b64) = token.split_once('.')?;
    let body = B64.decode(body_b64).ok()?;
    let tag = B64.decode(tag_b64).ok()?;
    let want = secret.tag(label, &body);
    if tag.len() != TAG_LEN
        || constant_time::verify_slices_are_equal(&want.as_ref()[..TAG_LEN], &tag).is_err()
    {
        return None;
    }
    let body = String::from_utf8(body).ok()?;
    let (expires, payload) = body.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    (now_ms < expires).then(|| payload.to_owned())
}

fn ttl_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A path on this site to send the buyer back to: `/` and then no second
/// `/` or `\` (which browsers read as another host), no control characters
/// or spaces, bounded.
pub fn return_path(p: &str) -> Option<&str> {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= MAX_RETURN_PATH
        && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    ok.then_some(p)
}

/// The authorize `state` for a return path.
pub fn seal_state(secret: &CheckoutSecret, return_path: &str, now_ms: i64) -> String {
    seal(
        secret,
        STATE_LABEL,
        return_path,
        now_ms.saturating_add(ttl_ms(STATE_TTL)),
    )
}

/// The return path inside a genuine, unexpired `state`.
pub fn open_state(secret: &CheckoutSecret, state: &str, now_ms: i64) -> Option<String> {
    open(secret, STATE_LABEL, state, now_ms).filter(|p| return_path(p).is_some())
}

/// The `Set-Cookie` value that remembers `buyer` for [`BUYER_TTL`].
pub fn buyer_cookie(secret: &CheckoutSecret, buyer: &BuyerId, now_ms: i64, secure: bool) -> String {
    let payload = match buyer {
        BuyerId::OpenId(id) => format!("o:{id}"),
        BuyerId::UserId(id) => format!("u:{id}"),
        // Only the kinds above are ever sealed; anything else is not kept.
        _ => String::new(),
    };
    let token = seal(
        secret,
        BUYER_LABEL,
        &payload,
        now_ms.saturating_add(ttl_ms(BUYER_TTL)),
    );
    format!(
        "{BUYER_COOKIE}={token}; Path=/checkout; Max-Age={}; HttpOnly; SameSite=Lax{}",
        BUYER_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The buyer in a genuine, unexpired buyer cookie of the request.
pub fn buyer_from_cookies(
    secret: &CheckoutSecret,
    headers: &HeaderMap,
    now_ms: i64,
) -> Option<BuyerId> {
    let token = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(BUYER_COOKIE)?.strip_prefix('='))
        .find_map(|t| open(secret, BUYER_LABEL, t, now_ms))?;
    let (kind, id) = token.split_once(':')?;
    let plain = !id.is_empty()
        && id.len() <= MAX_BUYER_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match kind {
        "o" if plain => Some(BuyerId::OpenId(id.to_owned())),
        "u" if plain => Some(BuyerId::UserId(id.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn secret() -> CheckoutSecret {
        CheckoutSecret::derive_from("zk_test_0123456789abcdef")
    }

    fn cookie_header(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}; x=y")).unwrap(),
        );
        h
    }

    #[test]
    fn buyer_cookie_round_trips_and_expires() {
        let s = secret();
        let buyer = BuyerId::OpenId("074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5".into());
        let set = buyer_cookie(&s, &buyer, NOW, true);
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/checkout",
            "Max-Age=1800",
            "Secure",
        ] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!buyer_cookie(&s, &buyer, NOW, false).contains("Secure"));
        let h = cookie_header(&set);
        assert_eq!(buyer_from_cookies(&s, &h, NOW + 1000), Some(buyer));
        let expired = NOW + ttl_ms(BUYER_TTL);
        assert_eq!(buyer_from_cookies(&s, &h, expired), None);
        let user = BuyerId::UserId("2088102177846880".into());
        let h = cookie_header(&buyer_cookie(&s, &user, NOW, false));
        assert_eq!(buyer_from_cookies(&s, &h, NOW), Some(user));
    }

    #[test]
    fn forged_or_foreign_cookies_carry_no_buyer() {
        let s = secret();
        let set = buyer_cookie(&s, &BuyerId::UserId("2088000000000001".into()), NOW, false);
        let other = CheckoutSecret::derive_from("key-two-key-two-key-two");
        assert_eq!(buyer_from_cookies(&other, &cookie_header(&set), NOW), None);
        // A state never opens as a buyer (nor the other way round).
        let state = seal_state(&s, "/", NOW);
        let as_cookie = format!("{BUYER_COOKIE}={state}");
        assert_eq!(
            buyer_from_cookies(&s, &cookie_header(&as_cookie), NOW),
            None
        );
        let token = set.split(';').next().unwrap().split_once('=').unwrap().1;
        assert_eq!(open_state(&s, token, NOW), None);
        // Another id with the old tag.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!(
            "{BUYER_COOKIE}={}.{tag}",
            B64.encode(format!("{}.u:2088000000000002", NOW + 60_000))
        );
        assert_eq!(buyer_from_cookies(&s, &cookie_header(&forged), NOW), None);
        for junk in [
            "zhifu_buyer=",
            "zhifu_buyer=a.b",
            "zhifu_buyer=...",
            "zhifu_buyerx=1",
        ] {
            assert_eq!(
                buyer_from_cookies(&s, &cookie_header(junk), NOW),
                None,
                "{junk}"
            );
        }
        assert_eq!(buyer_from_cookies(&s, &HeaderMap::new(), NOW), None);
    }

    #[test]
    fn states_bind_a_local_return_path_for_a_while() {
        let s = secret();
        let st = seal_state(&s, "/?buy=mug&quantity=2", NOW);
        assert_eq!(
            open_state(&s, &st, NOW + 1).as_deref(),
            Some("/?buy=mug&quantity=2")
        );
        assert_eq!(open_state(&s, &st, NOW + ttl_ms(STATE_TTL)), None);
        let mut flipped = st.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open_state(&s, &String::from_utf8(flipped).unwrap(), NOW),
            None
        );
    }

    #[test]
    fn return_paths_stay_on_this_site() {
        for good in ["/", "/?buy=mug&quantity=1", "/checkout/result?x=1"] {
            assert_eq!(return_path(good), Some(good));
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/a\\b",
            "/a b",
            "/\t",
            "evil",
            &format!("/{}", "a".repeat(MAX_RETURN_PATH)),
        ] {
            assert_eq!(return_path(bad), None, "{bad:?}");
        }
    }
}

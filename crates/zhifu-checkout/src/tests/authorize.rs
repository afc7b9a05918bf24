//! The jsapi buyer from Alipay user authorization: authorize redirect,
//! callback, the bridge's code, and `POST /checkout` reading only the
//! sealed cookie.

use super::*;

fn location(h: &http::HeaderMap) -> String {
    h[header::LOCATION].to_str().unwrap().to_owned()
}

fn query_param(url: &str, k: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

/// The `name=value` of the buyer cookie an answer sets.
fn buyer_cookie(h: &http::HeaderMap) -> Option<String> {
    h.get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("zhifu_buyer="))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

impl Harness {
    async fn post_with_cookie(&self, body: Value, cookie: &str) -> (StatusCode, Value) {
        let req = Request::post("/checkout")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, cookie)
            .body(Body::from(body.to_string()))
            .unwrap();
        let (s, _, b) = self.send(req).await;
        (s, serde_json::from_slice(&b).unwrap())
    }

    /// Authorize → (Alipay) → callback with `code`; the callback's answer.
    async fn authorize_with(
        &self,
        back: &str,
        code: &str,
    ) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        let start = format!(
            "/checkout/authorize?return={}",
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        );
        let (s, h, _) = self.get(&start).await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        let to_alipay = location(&h);
        let state = query_param(&to_alipay, "state").unwrap();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("app_id", "2021000000000001")
            .append_pair("source", "alipay_wallet")
            .append_pair("auth_code", code)
            .append_pair("state", &state)
            .finish();
        self.get(&format!("/checkout/authorize/callback?{q}")).await
    }
}

#[tokio::test]
async fn authorize_sends_the_buyer_to_alipay_with_a_sealed_state() {
    let h = harness(|_| {});
    let (s, headers, _) = h.get("/checkout/authorize?return=%2F%3Fbuy%3Dmug").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let to = location(&headers);
    assert!(to.starts_with("https://auth.test/authorize?"), "{to}");
    assert_eq!(
        query_param(&to, "redirect_uri").as_deref(),
        Some("http://shop.test/checkout/authorize/callback")
    );
    let state = query_param(&to, "state").unwrap();
    assert!(
        !state.contains("buy=mug"),
        "the return path is sealed: {state}"
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    for bad in [
        "https%3A%2F%2Fevil.test%2F",
        "%2F%2Fevil.test",
        "%2F%5Cevil.test",
        "evil",
    ] {
        let (s, _, b) = h.get(&format!("/checkout/authorize?return={bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], "invalid_return_path", "{bad}");
    }
}

#[tokio::test]
async fn the_callback_sets_the_cookie_jsapi_pays_with() {
    let h = harness(|_| {});
    let (s, headers, _) = h
        .authorize_with("/?buy=mug&quantity=2", "open-buyer42")
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/?buy=mug&quantity=2");
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/checkout", "Max-Age=1800"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "http public URL: {set}");
    assert!(
        !set.contains("buyer42"),
        "the id is sealed, not readable: {set}"
    );
    let cookie = buyer_cookie(&headers).unwrap();

    let (s, v) = h
        .post_with_cookie(
            json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}),
            &cookie,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["trade_no"], "2024010122001400000000000001");
    let pays = h.backend.pays.lock().unwrap().clone();
    assert_eq!(pays[0].2.buyer_open_id.as_deref(), Some("buyer42"));
    assert_eq!(pays[0].2.buyer_id, None);

    // The cookie does not let the page name another buyer.
    let (s, v) = h
        .post_with_cookie(
            json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_open_id": "someone_else"}),
            &cookie,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("buyer_not_accepted"))
    );
    // A cookie sealed by another checkout (another key) is no authorization.
    let foreign = CheckoutSecret::derive_from("another-key-another-key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let set = crate::authorize::buyer_cookie(
        &foreign,
        &alipay::BuyerId::OpenId("buyer42".into()),
        now,
        false,
    );
    for forged in [
        set.split(';').next().unwrap().to_owned(),
        format!("{cookie}x"),
    ] {
        let (s, v) = h
            .post_with_cookie(
                json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}),
                &forged,
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("authorization_required")),
            "{forged}"
        );
    }
}

#[tokio::test]
async fn forged_states_and_refused_codes_set_nothing() {
    let h = harness(|_| {});
    // A code used twice: Alipay refuses the second.
    let (s, _, _) = h.authorize_with("/", "open-once").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    for code in ["open-once", "not-a-code", "bad code", ""] {
        let (s, headers, b) = h.authorize_with("/", code).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{code:?}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], "authorization_failed", "{code:?}");
        assert!(buyer_cookie(&headers).is_none());
    }
    // A state the checkout did not seal, or none.
    let other = CheckoutSecret::derive_from("another-key-another-key");
    let forged = crate::authorize::seal_state(&other, "/", 4_000_000_000_000);
    for q in [
        format!("auth_code=open-x1&state={forged}"),
        "auth_code=open-x2".to_owned(),
        "auth_code=open-x3&state=abc.def".to_owned(),
    ] {
        let (s, headers, b) = h.get(&format!("/checkout/authorize/callback?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], "authorization_failed", "{q}");
        assert!(buyer_cookie(&headers).is_none());
    }
    // None of those codes reached the backend.
    assert_eq!(h.backend.codes_used.lock().unwrap().clone(), ["open-once"]);
}

#[tokio::test]
async fn a_bridge_code_sets_the_same_cookie() {
    let h = harness(|_| {});
    let post = |body: String, ct: &'static str| {
        Request::post("/checkout/authorize/code")
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap()
    };
    let (s, headers, b) = h
        .send(post(
            json!({"auth_code": "open-bridge7"}).to_string(),
            "application/json",
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let cookie = buyer_cookie(&headers).unwrap();
    let (s, _) = h
        .post_with_cookie(
            json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}),
            &cookie,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        h.backend.pays.lock().unwrap()[0].2.buyer_open_id.as_deref(),
        Some("bridge7")
    );
    for (body, ct, code) in [
        (
            json!({"auth_code": "open-bridge7"}).to_string(),
            "application/json",
            "authorization_failed",
        ),
        (
            json!({"auth_code": "open-z", "buyer_id": "2088"}).to_string(),
            "application/json",
            "invalid_request",
        ),
        (
            json!({"auth_code": 7}).to_string(),
            "application/json",
            "invalid_request",
        ),
        (
            "auth_code=open-y".to_owned(),
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
    ] {
        let (s, headers, b) = h.send(post(body.clone(), ct)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], code, "{body}");
        assert!(buyer_cookie(&headers).is_none());
    }
}

//! Catalog endpoint, served pages and their policy, the stand-in bridge, CORS and body limits.

use super::*;

#[tokio::test]
async fn catalog_endpoint_lists_products_and_channels() {
    let h = harness(|c| c.channels = vec![Channel::Page, Channel::Qr]);
    let (s, v) = h.get_json("/checkout/catalog").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["currency"], "CNY");
    assert_eq!(v["channels"], json!(["page", "qr"]));
    // The checkout authorizes the jsapi buyer itself.
    assert_eq!(v["jsapi_needs_buyer_id"], false);
    let dev = harness(|c| c.dev_buyer_id = Some(DEV_BUYER_ID.into()));
    assert_eq!(
        dev.get_json("/checkout/catalog").await.1["jsapi_needs_buyer_id"],
        false
    );
    let mug = v["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == "mug")
        .unwrap();
    assert_eq!(mug["price"], "88.88");
    assert_eq!(mug["name"]["en"], "Zhifu mug");
    assert_eq!(mug["max_quantity"], 20);
}

#[tokio::test]
async fn pages_are_served_with_a_strict_policy() {
    let h = harness(|_| {});
    for (uri, ct) in [
        ("/", "text/html"),
        ("/checkout/result?zhifu_checkout=x&sign=forged", "text/html"),
        ("/admin", "text/html"),
        ("/zhifu.js", "text/javascript"),
        ("/zhifu.d.ts", "application/typescript"),
        ("/checkout/assets/app.css", "text/css"),
        ("/checkout/assets/storefront.js", "text/javascript"),
        ("/checkout/assets/icon.svg", "image/svg+xml"),
    ] {
        let (s, headers, body) = h.get(uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ct),
            "{uri}"
        );
        assert!(!body.is_empty());
        if ct == "text/html" {
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{uri}"
            );
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        }
    }
    assert_eq!(
        h.get("/checkout/assets/../Cargo.toml").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/checkout/assets/nope.js").await.0,
        StatusCode::NOT_FOUND
    );
}

async fn storefront_as(h: &Harness, ua: &str) -> String {
    let (_, _, body) = h
        .send(
            Request::get("/")
                .header(header::USER_AGENT, ua)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn stand_in_bridge_only_in_development_and_only_for_the_app() {
    const APP: &str = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 AlipayClient/10.6.8";
    const PHONE: &str = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36";
    let prod = harness(|_| {});
    assert!(!storefront_as(&prod, APP).await.contains("jsbridge.js"));
    assert_eq!(
        prod.get("/sandbox/jsbridge.js").await.0,
        StatusCode::NOT_FOUND
    );

    let dev = harness(|c| c.dev_bridge = true);
    assert!(
        storefront_as(&dev, APP)
            .await
            .contains("<script src=\"/sandbox/jsbridge.js\"></script>")
    );
    assert!(!storefront_as(&dev, PHONE).await.contains("jsbridge.js"));
    let (s, _, body) = dev.get("/sandbox/jsbridge.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("AlipayJSBridge"));
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let h = harness(|c| c.cors_origins = vec!["https://shop.example.com".into()]);
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/checkout")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let (_, headers, _) = h.send(preflight("https://shop.example.com")).await;
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.com"
    );
    let (_, headers, _) = h.send(preflight("https://evil.test")).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let same_origin_only = harness(|_| {});
    let (_, headers, _) = same_origin_only
        .send(preflight("https://shop.example.com"))
        .await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_the_backend() {
    let h = harness(|_| {});
    let big = json!({"sku": "mug", "quantity": 1, "channel": "page", "return_url": format!("http://shop.test/{}", "x".repeat(20_000))});
    let (s, _) = {
        let req = Request::post("/checkout")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big.to_string()))
            .unwrap();
        let (s, _, b) = h.send(req).await;
        (s, b)
    };
    assert!(
        s == StatusCode::PAYLOAD_TOO_LARGE || s == StatusCode::BAD_REQUEST,
        "{s}"
    );
    assert_eq!(h.backend_calls(), 0);
}

#[tokio::test]
async fn production_pages_carry_the_shops_branding_and_no_sandbox_wording() {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    // zhifu serve with a catalog and the branding variables.
    let env = |k: &str| match k {
        "ZHIFU_SHOP_NAME" => Some("Tea & Co 茶馆".to_owned()),
        "ZHIFU_SHOP_TAGLINE" => Some("好茶，好心情".to_owned()),
        "ZHIFU_SHOP_LOGO_URL" => Some("https://cdn.example.com/logo.png".to_owned()),
        _ => None,
    };
    let mut branded = CheckoutConfig::new("http://shop.test", Catalog::demo());
    branded.branding.apply_env(&env).unwrap();
    let h = harness(|c| c.branding = branded.branding.clone());
    for uri in ["/", "/checkout/result", "/admin"] {
        let (s, headers, body) = h.get(uri).await;
        assert_eq!(s, StatusCode::OK);
        let html = text(body);
        assert!(html.contains("Tea &amp; Co 茶馆"), "{uri}: {html}");
        assert!(!html.contains("演示") && !html.contains("沙箱"), "{uri}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("img-src 'self' data: https://cdn.example.com;"));
    }
    let index = text(h.get("/").await.2);
    assert!(index.contains("<title>Tea &amp; Co 茶馆</title>"));
    assert!(index.contains("好茶，好心情"));
    assert!(index.contains("src=\"https://cdn.example.com/logo.png\""));

    // Without branding: a neutral name, still no sandbox wording.
    let plain = harness(|_| {});
    let index = text(plain.get("/").await.2);
    assert!(!index.contains("演示") && !index.contains("沙箱"));
    assert!(index.contains("data-i18n=\"shop.name\""));

    // zhifu dev keeps its demo shop.
    let dev = CheckoutConfig::development("http://127.0.0.1:8080", |_| None).unwrap();
    let h = harness(|c| c.branding = dev.branding.clone());
    let index = text(h.get("/").await.2);
    assert!(index.contains("Zhifu 演示商店") && index.contains("本地沙箱"));
}

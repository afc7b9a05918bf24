//! The pages and scripts, embedded in the binary: nothing is fetched from
//! a CDN, and a deployed function serves its own storefront.
//!
//! Every HTML page gets a strict Content-Security-Policy (scripts and
//! styles only from this origin, no inline script), `no-referrer` (the
//! result page's URL carries Alipay's return parameters; they must not
//! leak to other sites) and `frame-ancestors 'none'`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::CheckoutState;
use crate::branding::{Branding, escape};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const RESULT_HTML: &str = include_str!("../assets/result.html");
const ADMIN_HTML: &str = include_str!("../assets/admin.html");
/// `zhifu.js`, the embeddable checkout script.
pub const ZHIFU_JS: &str = include_str!("../assets/zhifu.js");
/// Its TypeScript declarations.
pub const ZHIFU_D_TS: &str = include_str!("../assets/zhifu.d.ts");
/// The development stand-in for the Alipay app's `AlipayJSBridge`.
pub const JSBRIDGE_JS: &str = include_str!("../assets/jsbridge.js");

/// Where the Alipay app's bridge would be; replaced by a `<script>` tag
/// for the stand-in in development.
const BRIDGE_SLOT: &str = "<!--zhifu:bridge-->";

const JS: &str = "text/javascript; charset=utf-8";

// The demo shop's branding in the page templates, replaced by
// [`render`] outside `zhifu dev`.
const TITLE_META: &str = "<meta name=\"zhifu-title\" content=\"shop.title\">";
const TITLE_TAG: &str = "<title>Zhifu 演示商店</title>";
const BRAND_SPAN: &str = "<span data-i18n=\"shop.title\">Zhifu 演示商店</span>";
const ADMIN_BRAND: &str = "<a href=\"/\" data-i18n=\"shop.title\">Zhifu 演示商店</a>";
const TAGLINE: &str =
    "<p class=\"tagline\" data-i18n=\"shop.tagline\">用支付宝付款 — 本地沙箱，不涉及真实资金。</p>";
const LOGO: &str = "<img src=\"/checkout/assets/icon.svg\" alt=\"\" width=\"28\" height=\"28\">";

/// A page template with the shop's branding in place of the demo's.
fn render(page: &str, b: &Branding) -> String {
    let mut out = page.to_owned();
    if let Some(name) = &b.shop_name {
        let name = escape(name);
        // The merchant's own name is not translated.
        out = out
            .replace(TITLE_META, "")
            .replace(TITLE_TAG, &format!("<title>{name}</title>"))
            .replace(BRAND_SPAN, &format!("<span>{name}</span>"))
            .replace(ADMIN_BRAND, &format!("<a href=\"/\">{name}</a>"));
    } else if !b.demo {
        out = out
            .replace(
                TITLE_META,
                "<meta name=\"zhifu-title\" content=\"shop.name\">",
            )
            .replace(TITLE_TAG, "<title>商店</title>")
            .replace(BRAND_SPAN, "<span data-i18n=\"shop.name\">商店</span>")
            .replace(
                ADMIN_BRAND,
                "<a href=\"/\" data-i18n=\"shop.name\">商店</a>",
            );
    }
    if let Some(t) = &b.tagline {
        out = out.replace(TAGLINE, &format!("<p class=\"tagline\">{}</p>", escape(t)));
    } else if !b.demo {
        out = out.replace(
            TAGLINE,
            "<p class=\"tagline\" data-i18n=\"shop.taglineLive\">使用支付宝付款。</p>",
        );
    }
    if let Some(logo) = &b.logo_url {
        out = out.replace(
            LOGO,
            &format!(
                "<img src=\"{}\" alt=\"\" width=\"28\" height=\"28\">",
                escape(logo)
            ),
        );
    }
    out
}

/// The pages' CSP, allowing the logo's origin when it is elsewhere.
fn csp(b: &Branding) -> HeaderValue {
    match b.logo_foreign_origin() {
        Some(origin) => HeaderValue::from_str(&CSP.replace(
            "img-src 'self' data:",
            &format!("img-src 'self' data: {origin}"),
        ))
        .unwrap_or(HeaderValue::from_static(CSP)),
        None => HeaderValue::from_static(CSP),
    }
}

/// `/checkout/assets/{name}`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    ("i18n.js", JS, include_str!("../assets/i18n.js")),
    ("storefront.js", JS, include_str!("../assets/storefront.js")),
    ("result.js", JS, include_str!("../assets/result.js")),
    ("admin.js", JS, include_str!("../assets/admin.js")),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../assets/icon.svg"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

fn html(body: String, b: &Branding) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp(b));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn script(content_type: &'static str, body: &'static str, cross_origin: bool) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Short: a redeploy reaches browsers within minutes.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if cross_origin {
        // Merchants load zhifu.js from their own pages (optionally with SRI).
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    r
}

/// The Alipay app announces itself with `AlipayClient` in its user agent.
pub(crate) fn is_alipay_app(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("AlipayClient"))
}

/// `GET /`: the storefront.
pub(crate) async fn index(State(st): State<CheckoutState>, headers: HeaderMap) -> Response {
    let bridge = if st.config().dev_bridge && is_alipay_app(&headers) {
        // Stands in for the bridge the real Alipay app injects.
        "<script src=\"/sandbox/jsbridge.js\"></script>"
    } else {
        ""
    };
    let b = &st.config().branding;
    html(render(INDEX_HTML, b).replace(BRIDGE_SLOT, bridge), b)
}

/// `GET /checkout/result`: where Alipay sends the buyer back.
pub(crate) async fn result(State(st): State<CheckoutState>) -> Response {
    let b = &st.config().branding;
    html(render(RESULT_HTML, b), b)
}

/// `GET /admin`: the merchant's orders view.
pub(crate) async fn admin(State(st): State<CheckoutState>) -> Response {
    let b = &st.config().branding;
    html(render(ADMIN_HTML, b), b)
}

/// `GET /zhifu.js`.
pub(crate) async fn zhifu_js() -> Response {
    script(JS, ZHIFU_JS, true)
}

/// `GET /zhifu.d.ts`.
pub(crate) async fn zhifu_d_ts() -> Response {
    script("application/typescript; charset=utf-8", ZHIFU_D_TS, true)
}

/// `GET /sandbox/jsbridge.js` (development only).
pub(crate) async fn jsbridge_js() -> Response {
    script(JS, JSBRIDGE_JS, false)
}

/// `GET /checkout/assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => script(ct, body, false),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_reference_only_embedded_assets() {
        for page in [INDEX_HTML, RESULT_HTML, ADMIN_HTML] {
            for attr in ["src=\"", "href=\""] {
                for part in page.split(attr).skip(1) {
                    let url = &part[..part.find('"').unwrap()];
                    let known = url == "/zhifu.js"
                        || url == "/"
                        || url == "/admin"
                        || url.starts_with('#')
                        || url
                            .strip_prefix("/checkout/assets/")
                            .is_some_and(|n| ASSETS.iter().any(|(a, _, _)| *a == n));
                    assert!(
                        known,
                        "page references {url:?}, which the binary does not serve"
                    );
                }
            }
            assert!(
                !page.contains("http://") && !page.contains("https://"),
                "no external URLs"
            );
            assert!(!page.contains("<script>"), "no inline scripts (CSP)");
            assert!(!page.contains(" style=\""), "no inline styles (CSP)");
        }
        assert!(INDEX_HTML.contains(BRIDGE_SLOT));
    }

    #[test]
    fn the_demo_wording_stays_in_zhifu_dev() {
        for page in [INDEX_HTML, RESULT_HTML, ADMIN_HTML] {
            assert!(page.contains("Zhifu 演示商店"));
            assert_eq!(render(page, &Branding::demo()), page);
        }
        // Every placeholder render() replaces is in the templates.
        for (page, parts) in [
            (
                INDEX_HTML,
                &[TITLE_META, TITLE_TAG, BRAND_SPAN, TAGLINE, LOGO][..],
            ),
            (RESULT_HTML, &[BRAND_SPAN, LOGO][..]),
            (ADMIN_HTML, &[ADMIN_BRAND][..]),
        ] {
            for p in parts {
                assert!(page.contains(p), "{p}");
            }
        }
        let plain = Branding::default();
        let named = Branding {
            shop_name: Some("Tea <House> & Co".into()),
            tagline: Some("好茶 \"每天\"".into()),
            logo_url: Some("https://cdn.example.com/logo.png".into()),
            demo: false,
        };
        for page in [INDEX_HTML, RESULT_HTML, ADMIN_HTML] {
            for b in [&plain, &named] {
                let out = render(page, b);
                for demo in ["演示", "沙箱", "demo", "sandbox"] {
                    assert!(!out.contains(demo), "{demo} in a production page");
                }
            }
        }
        let index = render(INDEX_HTML, &named);
        assert!(index.contains("<title>Tea &lt;House&gt; &amp; Co</title>"));
        assert!(index.contains("<span>Tea &lt;House&gt; &amp; Co</span>"));
        assert!(index.contains("<p class=\"tagline\">好茶 &quot;每天&quot;</p>"));
        assert!(index.contains("<img src=\"https://cdn.example.com/logo.png\""));
        assert!(!index.contains("zhifu-title"), "the name is not translated");
        let index = render(INDEX_HTML, &plain);
        assert!(index.contains("data-i18n=\"shop.name\">商店<"));
        assert!(index.contains("data-i18n=\"shop.taglineLive\""));
        assert!(
            csp(&named)
                .to_str()
                .unwrap()
                .contains("img-src 'self' data: https://cdn.example.com;")
        );
        assert_eq!(csp(&plain), HeaderValue::from_static(CSP));
    }

    #[test]
    fn alipay_app_detection() {
        let mut h = HeaderMap::new();
        assert!(!is_alipay_app(&h));
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static(
                "Mozilla/5.0 (Linux; Android 14) Chrome/126 Mobile Safari/537.36",
            ),
        );
        assert!(!is_alipay_app(&h));
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 AlipayClient/10.6.8.6000 Language/zh-Hans"),
        );
        assert!(is_alipay_app(&h));
    }
}

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

fn html(body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
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
    html(INDEX_HTML.replace(BRIDGE_SLOT, bridge))
}

/// `GET /checkout/result`: where Alipay sends the buyer back.
pub(crate) async fn result() -> Response {
    html(RESULT_HTML.to_owned())
}

/// `GET /admin`: the merchant's orders view.
pub(crate) async fn admin() -> Response {
    html(ADMIN_HTML.to_owned())
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

//! # zhifu-checkout — the buyer's side of a Zhifu shop
//!
//! This crate owns everything a browser touches on the way from "Buy" to
//! "Paid", served next to the payment backend by `zhifu dev` / `zhifu serve`:
//!
//! - the **catalog** ([`Catalog`], TOML; prices as `"88.88"` → integer fen),
//!   the only source of prices — browsers never send one;
//! - the public **checkout API** ([`router`]): `POST /checkout` (sku,
//!   quantity, channel → what the browser needs plus an opaque, unforgeable
//!   checkout id), `GET /checkout/{id}` (status only), `GET
//!   /checkout/catalog`, rate-limited per client ([`RateLimiter`]);
//!   and for subscription products ([`Plan`]) `POST
//!   /checkout/subscriptions` / `GET /checkout/subscriptions/{id}`
//!   (a recurring agreement to sign; its status);
//! - the **pages**, embedded in the binary: the storefront at `/`, the
//!   result page at `/checkout/result` (the `return_url` target; it asks the
//!   backend for the verified status and ignores the redirect's
//!   parameters), the QR view with countdown, the merchant's orders view at
//!   `/admin`, and `zhifu.js` + `zhifu.d.ts` for merchants' own pages;
//! - in development only, the stand-in `AlipayJSBridge` at
//!   `/sandbox/jsbridge.js`;
//! - **user authorization** for in-app (jsapi) payments
//!   (`/checkout/authorize…`, `src/authorize.rs`): the buyer's Alipay id comes
//!   from a verified `alipay.system.oauth.token` and lives in a sealed,
//!   HttpOnly cookie, never in what the page sends.
//!
//! It talks to the payment backend only through [`PaymentBackend`]
//! (create an order, get payment parameters, read it back);
//! [`RouterBackend`] implements that over the backend's merchant API
//! in-process.
//!
//! ## Invariants
//!
//! - An order's amount is the catalog price × quantity, computed in fen;
//!   the request body cannot carry a price (unknown fields are refused).
//! - What the buyer is told comes from the backend's order status (with a
//!   verified `alipay.trade.query` behind `?refresh=true`), never from
//!   `return_url` parameters.
//! - `GET /checkout/{id}` answers only for ids this checkout sealed, and
//!   only with what the buyer already saw (status, subject, amount,
//!   deadline).
//! - The checkout holds no state of its own: ids are sealed with an HMAC
//!   key ([`CheckoutSecret`]) that every instance derives alike.

#![deny(missing_docs)]

pub mod api;
mod authorize;
mod backend;
pub mod branding;
mod catalog;
mod config;
mod error;
mod id;
mod pages;
pub mod qr;
mod ratelimit;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use crate::backend::{
    Channel, OrderInfo, OrderRequest, OrderStatus, PayParams, PayRequest, PaymentBackend,
    RouterBackend,
};
pub use crate::backend::{
    CreatedSubscription, SignChannel, SignParams, SubscriptionInfo, SubscriptionRequest,
    SubscriptionStatus,
};
pub use crate::branding::Branding;
pub use crate::catalog::{CURRENCY, Catalog, DEMO_TOML, Product, Text};
pub use crate::catalog::{PeriodUnit, Plan};
pub use crate::config::{CheckoutConfig, DEV_BUYER_ID};
pub use crate::error::CheckoutError;
pub use crate::id::CheckoutSecret;
pub use crate::pages::{JSBRIDGE_JS, ZHIFU_D_TS, ZHIFU_JS};
pub use crate::ratelimit::{RateLimit, RateLimiter, client_ip};

/// A checkout request body is a few hundred bytes.
const MAX_BODY: usize = 8 * 1024;

/// Everything the handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CheckoutState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CheckoutConfig,
    backend: Arc<dyn PaymentBackend>,
    secret: CheckoutSecret,
    create_limiter: RateLimiter,
    status_limiter: RateLimiter,
}

impl CheckoutState {
    /// Checks the configuration and builds the state.
    ///
    /// `secret` must be the same on every instance behind one backend
    /// ([`CheckoutSecret::derive_from`] the merchant API key does that).
    ///
    /// # Errors
    /// [`CheckoutError::Config`] from [`CheckoutConfig::validate`].
    pub fn new(
        config: CheckoutConfig,
        backend: Arc<dyn PaymentBackend>,
        secret: CheckoutSecret,
    ) -> Result<Self, CheckoutError> {
        config.validate()?;
        Ok(CheckoutState {
            inner: Arc::new(Inner {
                create_limiter: RateLimiter::new(config.create_limit, config.max_clients),
                status_limiter: RateLimiter::new(config.status_limit, config.max_clients),
                config,
                backend,
                secret,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CheckoutConfig {
        &self.inner.config
    }
}

/// The checkout's routes, to merge with the backend's router:
///
/// | route | what |
/// |---|---|
/// | `GET /` | storefront |
/// | `GET /checkout/result` | result page (`return_url` target) |
/// | `GET /admin` | merchant's orders view (calls `/v1/orders…` with the key typed in) |
/// | `GET /zhifu.js`, `GET /zhifu.d.ts` | the embeddable script and its types |
/// | `GET /checkout/assets/{name}` | CSS and page scripts |
/// | `GET /checkout/catalog` | products and channels (JSON) |
/// | `POST /checkout` | create a checkout (JSON) |
/// | `GET /checkout/{id}` | its status (JSON; `?refresh=true` asks Alipay) |
/// | `POST /checkout/subscriptions` | subscribe to a catalog subscription product (JSON) |
/// | `GET /checkout/subscriptions/{id}` | its status (JSON; `?refresh=true` asks Alipay) |
/// | `GET /checkout/authorize`, `GET /checkout/authorize/callback`, `POST /checkout/authorize/code` | the jsapi buyer from Alipay user authorization (sealed cookie) |
/// | `GET /sandbox/jsbridge.js` | stand-in `AlipayJSBridge`, only with [`CheckoutConfig::dev_bridge`] |
///
/// Per-client rate limiting keys on the socket peer, which axum provides
/// when the server is run with
/// `into_make_service_with_connect_info::<SocketAddr>()`; without it (and
/// without a trusted `X-Forwarded-For`) all clients share one bucket.
pub fn router(state: CheckoutState) -> Router {
    // Declared with their OpenAPI operations (`api::openapi`).
    let api = Router::from(api::routes()).layer(DefaultBodyLimit::max(MAX_BODY));
    let api = match cors(state.config()) {
        Some(layer) => api.layer(layer),
        None => api,
    };
    let mut pages = Router::new()
        .route("/", get(pages::index))
        .route("/checkout/result", get(pages::result))
        .route("/admin", get(pages::admin))
        .route("/zhifu.js", get(pages::zhifu_js))
        .route("/zhifu.d.ts", get(pages::zhifu_d_ts))
        .route("/checkout/assets/{name}", get(pages::asset));
    if state.config().dev_bridge {
        pages = pages.route("/sandbox/jsbridge.js", get(pages::jsbridge_js));
    }
    api.merge(pages).with_state(state)
}

/// The checkout in front of a payment backend's router: what `zhifu dev`
/// and `zhifu serve` merge next to that router (and the sandbox's).
///
/// Orders are made through `backend`'s merchant API in-process with
/// `api_key` ([`RouterBackend`]); checkout ids are sealed with a secret
/// derived from the same key, so every instance sharing the key agrees.
///
/// ```no_run
/// # fn wire(backend: axum::Router, sandbox: axum::Router, api_key: &str) -> Result<(), zhifu_checkout::CheckoutError> {
/// let config = zhifu_checkout::CheckoutConfig::development("http://127.0.0.1:8080", |k| std::env::var(k).ok())?;
/// let app = zhifu_checkout::router_over_backend(config, backend.clone(), api_key)?
///     .merge(sandbox)
///     .merge(backend);
/// // serve with app.into_make_service_with_connect_info::<std::net::SocketAddr>()
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`CheckoutError::Config`] from [`CheckoutConfig::validate`].
pub fn router_over_backend(
    config: CheckoutConfig,
    backend: Router,
    api_key: &str,
) -> Result<Router, CheckoutError> {
    let state = CheckoutState::new(
        config,
        Arc::new(RouterBackend::new(backend, api_key)),
        CheckoutSecret::derive_from(api_key),
    )?;
    Ok(router(state))
}

fn cors(config: &CheckoutConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

//! How a checkout is set up: the catalog, where buyers may be sent back
//! to, which channels are offered, rate limits, and whether the
//! development stand-ins are served.

use std::path::Path;

use url::Url;

use crate::backend::Channel;
use crate::branding::Branding;
use crate::catalog::Catalog;
use crate::error::CheckoutError;
use crate::ratelimit::RateLimit;

/// The buyer `zhifu dev` puts on jsapi checkouts that name none: a
/// sandbox user id (`2088` + 12 digits). Never used outside development.
pub const DEV_BUYER_ID: &str = "2088102177846880";

/// The checkout's settings. [`CheckoutConfig::new`] gives sensible
/// defaults; [`CheckoutConfig::from_env`] reads the environment.
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// Base URL the buyer's browser reaches this server at, without a
    /// trailing slash (`ZHIFU_PUBLIC_URL`): the default `return_url` is
    /// `{public_url}/checkout/result`.
    pub public_url: String,
    /// Prices.
    pub catalog: Catalog,
    /// Channels `POST /checkout` accepts.
    pub channels: Vec<Channel>,
    /// Origins (`https://shop.example.com`) a caller-given `return_url` may
    /// point to, besides `public_url`'s own. Anything else is refused, so
    /// the checkout cannot be used as an open redirect.
    pub return_origins: Vec<String>,
    /// Origins whose pages may call `POST /checkout` and `GET
    /// /checkout/{id}` from the browser (CORS), for `zhifu.js` on a
    /// merchant's own site. Empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Order creations per client.
    pub create_limit: RateLimit,
    /// Status polls per client.
    pub status_limit: RateLimit,
    /// Clients remembered per limiter.
    pub max_clients: usize,
    /// How many proxies in front of us append to `X-Forwarded-For`
    /// (0: use the socket peer).
    pub trusted_proxy_hops: usize,
    /// Payment deadline of checkout orders.
    pub order_expiry_minutes: u32,
    /// Development mode (`zhifu dev`): serves the stand-in
    /// `AlipayJSBridge` at `/sandbox/jsbridge.js` and injects it into the
    /// storefront for user agents that claim to be the Alipay app.
    pub dev_bridge: bool,
    /// The buyer a `jsapi` checkout uses when the request carries no
    /// authorization cookie.
    ///
    /// Alipay needs the buyer's `buyer_id`/`buyer_open_id` for a jsapi
    /// trade; the checkout gets it through Alipay user authorization
    /// (`/checkout/authorize`, a verified `alipay.system.oauth.token`) and
    /// never from the page. This stand-in is for tests that skip
    /// authorization ([`CheckoutConfig::development`] sets it; `zhifu dev`
    /// clears it and authorizes on the sandbox's page); leave it `None` in
    /// production.
    pub dev_buyer_id: Option<String>,
    /// The shop's name, tagline and logo (`ZHIFU_SHOP_NAME`,
    /// `ZHIFU_SHOP_TAGLINE`, `ZHIFU_SHOP_LOGO_URL`; see [`Branding`]).
    /// Only `zhifu dev` shows the demo wording.
    pub branding: Branding,
}

impl CheckoutConfig {
    /// Defaults: every channel, same-origin only, 20 checkouts per client
    /// per minute (burst 20), 120 polls per minute (burst 60), 15-minute
    /// payment deadline, no proxy trusted, no development stand-ins.
    pub fn new(public_url: impl Into<String>, catalog: Catalog) -> Self {
        CheckoutConfig {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            catalog,
            channels: Channel::ALL.to_vec(),
            return_origins: Vec::new(),
            cors_origins: Vec::new(),
            create_limit: RateLimit {
                burst: 20,
                per_minute: 20,
            },
            status_limit: RateLimit {
                burst: 60,
                per_minute: 120,
            },
            max_clients: 10_000,
            trusted_proxy_hops: 0,
            order_expiry_minutes: 15,
            dev_bridge: false,
            dev_buyer_id: None,
            branding: Branding::default(),
        }
    }

    /// The settings for `zhifu serve`, or `None` when `ZHIFU_CATALOG` is
    /// unset (no storefront in production unless asked for). Variables:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `ZHIFU_CATALOG` | path of the catalog TOML | – (checkout off) |
    /// | `ZHIFU_CHECKOUT_CHANNELS` | comma list of `page,wap,qr,app,jsapi` | all |
    /// | `ZHIFU_CHECKOUT_RETURN_ORIGINS` | comma list of extra `return_url` origins | none |
    /// | `ZHIFU_CHECKOUT_CORS_ORIGINS` | comma list of origins allowed to call the checkout API | none |
    /// | `ZHIFU_CHECKOUT_RATE_PER_MINUTE` | order creations per client per minute (also the burst) | 20 |
    /// | `ZHIFU_CHECKOUT_EXPIRY_MINUTES` | payment deadline | 15 |
    /// | `ZHIFU_TRUSTED_PROXY_HOPS` | proxies appending `X-Forwarded-For` | 0 |
    /// | `ZHIFU_SHOP_NAME`, `ZHIFU_SHOP_TAGLINE`, `ZHIFU_SHOP_LOGO_URL` | the pages' branding ([`Branding`]) | a neutral "商店 / Shop" |
    ///
    /// # Errors
    /// [`CheckoutError`] naming the variable (or the catalog problem).
    pub fn from_env(
        public_url: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, CheckoutError> {
        let Some(path) = var("ZHIFU_CATALOG").filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let catalog = Catalog::load(Path::new(path.trim()))?;
        let mut c = CheckoutConfig::new(public_url, catalog);
        c.apply_env(&var)?;
        c.validate()?;
        Ok(Some(c))
    }

    /// The settings for `zhifu dev`: the demo catalog (or `ZHIFU_CATALOG`),
    /// the same variables as [`CheckoutConfig::from_env`], generous rate
    /// limits (60 checkouts a minute), and the development stand-ins: the
    /// `AlipayJSBridge` stand-in and [`DEV_BUYER_ID`] for jsapi checkouts.
    ///
    /// # Errors
    /// As [`CheckoutConfig::from_env`].
    pub fn development(
        public_url: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CheckoutError> {
        let catalog = match var("ZHIFU_CATALOG").filter(|s| !s.trim().is_empty()) {
            Some(path) => Catalog::load(Path::new(path.trim()))?,
            None => Catalog::demo(),
        };
        let mut c = CheckoutConfig::new(public_url, catalog);
        c.create_limit = RateLimit {
            burst: 60,
            per_minute: 60,
        };
        c.dev_bridge = true;
        c.dev_buyer_id = Some(DEV_BUYER_ID.to_owned());
        c.branding = Branding::demo();
        c.apply_env(&var)?;
        c.validate()?;
        Ok(c)
    }

    fn apply_env(&mut self, var: &impl Fn(&str) -> Option<String>) -> Result<(), CheckoutError> {
        let c = self;
        c.branding.apply_env(var)?;
        if let Some(v) = var("ZHIFU_CHECKOUT_CHANNELS") {
            c.channels = list(&v)
                .map(|s| {
                    Channel::parse(s).ok_or_else(|| {
                        CheckoutError::config(
                            "ZHIFU_CHECKOUT_CHANNELS",
                            format!("unknown channel {s:?} (page, wap, qr, app, jsapi)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            if c.channels.is_empty() {
                return Err(CheckoutError::config(
                    "ZHIFU_CHECKOUT_CHANNELS",
                    "names no channel",
                ));
            }
        }
        if let Some(v) = var("ZHIFU_CHECKOUT_RETURN_ORIGINS") {
            c.return_origins = origins("ZHIFU_CHECKOUT_RETURN_ORIGINS", &v)?;
        }
        if let Some(v) = var("ZHIFU_CHECKOUT_CORS_ORIGINS") {
            c.cors_origins = origins("ZHIFU_CHECKOUT_CORS_ORIGINS", &v)?;
        }
        if let Some(v) = var("ZHIFU_CHECKOUT_RATE_PER_MINUTE") {
            let n = number("ZHIFU_CHECKOUT_RATE_PER_MINUTE", &v, 1, 100_000)?;
            c.create_limit = RateLimit {
                burst: n,
                per_minute: n,
            };
        }
        if let Some(v) = var("ZHIFU_CHECKOUT_EXPIRY_MINUTES") {
            c.order_expiry_minutes = number("ZHIFU_CHECKOUT_EXPIRY_MINUTES", &v, 1, 15 * 24 * 60)?;
        }
        if let Some(v) = var("ZHIFU_TRUSTED_PROXY_HOPS") {
            c.trusted_proxy_hops = number("ZHIFU_TRUSTED_PROXY_HOPS", &v, 0, 16)? as usize;
        }
        Ok(())
    }

    /// Checks the settings that cannot be checked field by field.
    ///
    /// # Errors
    /// [`CheckoutError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), CheckoutError> {
        origin_of(&self.public_url).ok_or_else(|| {
            CheckoutError::config("ZHIFU_PUBLIC_URL", "must be an absolute http(s) URL")
        })?;
        for o in self.return_origins.iter().chain(&self.cors_origins) {
            if origin_of(o).as_deref() != Some(o.as_str()) {
                return Err(CheckoutError::config(
                    "checkout origins",
                    format!("{o:?} is not an origin like https://shop.example.com"),
                ));
            }
        }
        if self.channels.is_empty() {
            return Err(CheckoutError::config(
                "channels",
                "at least one channel is needed",
            ));
        }
        if self.order_expiry_minutes == 0 {
            return Err(CheckoutError::config(
                "order_expiry_minutes",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Whether a caller-given `return_url` may be used.
    pub(crate) fn return_url_allowed(&self, u: &Url) -> bool {
        let o = u.origin().ascii_serialization();
        origin_of(&self.public_url).as_deref() == Some(o.as_str())
            || self.return_origins.contains(&o)
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL.
pub(crate) fn origin_of(s: &str) -> Option<String> {
    let u = Url::parse(s).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return None;
    }
    Some(u.origin().ascii_serialization())
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn origins(var: &str, v: &str) -> Result<Vec<String>, CheckoutError> {
    list(v)
        .map(|o| {
            let o = o.trim_end_matches('/');
            match origin_of(o) {
                Some(norm) if norm == o => Ok(norm),
                _ => Err(CheckoutError::config(
                    var,
                    format!("{o:?} is not an origin like https://shop.example.com"),
                )),
            }
        })
        .collect()
}

fn number(var: &str, v: &str, min: u32, max: u32) -> Result<u32, CheckoutError> {
    match v.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(CheckoutError::config(
            var,
            format!("must be a whole number between {min} and {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn catalog_file() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), crate::catalog::DEMO_TOML).unwrap();
        f
    }

    #[test]
    fn development_defaults_and_overrides() {
        let c = CheckoutConfig::development("http://127.0.0.1:8080", env(&[])).unwrap();
        assert!(c.dev_bridge);
        assert_eq!(c.dev_buyer_id.as_deref(), Some(DEV_BUYER_ID));
        assert_eq!(c.catalog, Catalog::demo());
        assert!(c.cors_origins.is_empty());
        let c = CheckoutConfig::development(
            "http://127.0.0.1:8080",
            env(&[("ZHIFU_CHECKOUT_CORS_ORIGINS", "http://shop.example.test")]),
        )
        .unwrap();
        assert_eq!(c.cors_origins, vec!["http://shop.example.test"]);
        let e = CheckoutConfig::development(
            "http://127.0.0.1:8080",
            env(&[("ZHIFU_CHECKOUT_CHANNELS", "x")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("ZHIFU_CHECKOUT_CHANNELS"), "{e}");
    }

    #[test]
    fn off_without_catalog() {
        assert!(
            CheckoutConfig::from_env("http://x", env(&[]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reads_every_variable() {
        let f = catalog_file();
        let c = CheckoutConfig::from_env(
            "https://pay.example.com/",
            env(&[
                ("ZHIFU_CATALOG", f.path().to_str().unwrap()),
                ("ZHIFU_CHECKOUT_CHANNELS", "page, qr"),
                ("ZHIFU_CHECKOUT_RETURN_ORIGINS", "https://shop.example.com/"),
                (
                    "ZHIFU_CHECKOUT_CORS_ORIGINS",
                    "https://shop.example.com,http://localhost:3000",
                ),
                ("ZHIFU_CHECKOUT_RATE_PER_MINUTE", "5"),
                ("ZHIFU_CHECKOUT_EXPIRY_MINUTES", "30"),
                ("ZHIFU_TRUSTED_PROXY_HOPS", "1"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.public_url, "https://pay.example.com");
        assert_eq!(c.channels, vec![Channel::Page, Channel::Qr]);
        assert_eq!(c.return_origins, vec!["https://shop.example.com"]);
        assert_eq!(c.cors_origins.len(), 2);
        assert_eq!(
            c.create_limit,
            RateLimit {
                burst: 5,
                per_minute: 5
            }
        );
        assert_eq!(c.order_expiry_minutes, 30);
        assert_eq!(c.trusted_proxy_hops, 1);
        assert!(!c.dev_bridge);
        let ok = Url::parse("https://shop.example.com/thanks?x=1").unwrap();
        let own = Url::parse("https://pay.example.com/checkout/result").unwrap();
        let evil = Url::parse("https://shop.example.com.evil.test/").unwrap();
        assert!(c.return_url_allowed(&ok) && c.return_url_allowed(&own));
        assert!(!c.return_url_allowed(&evil));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let f = catalog_file();
        for (var, val) in [
            ("ZHIFU_CHECKOUT_CHANNELS", "page,cash"),
            ("ZHIFU_CHECKOUT_CHANNELS", " , "),
            (
                "ZHIFU_CHECKOUT_RETURN_ORIGINS",
                "https://shop.example.com/path",
            ),
            ("ZHIFU_CHECKOUT_CORS_ORIGINS", "ftp://x"),
            ("ZHIFU_CHECKOUT_RATE_PER_MINUTE", "0"),
            ("ZHIFU_CHECKOUT_EXPIRY_MINUTES", "many"),
            ("ZHIFU_TRUSTED_PROXY_HOPS", "-1"),
        ] {
            let e = CheckoutConfig::from_env(
                "http://127.0.0.1:1",
                env(&[("ZHIFU_CATALOG", f.path().to_str().unwrap()), (var, val)]),
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with(var), "{var}={val}: {e}");
        }
        let e = CheckoutConfig::from_env(
            "http://x",
            env(&[("ZHIFU_CATALOG", "/nonexistent/catalog.toml")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/nonexistent/catalog.toml"), "{e}");
        let e = CheckoutConfig::from_env(
            "not a url",
            env(&[("ZHIFU_CATALOG", f.path().to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("ZHIFU_PUBLIC_URL"), "{e}");
    }
}

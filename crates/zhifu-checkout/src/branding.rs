//! The shop's name, tagline and logo on the storefront, result and admin
//! pages.
//!
//! `zhifu serve` and `zhifu dev` read them from the environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `ZHIFU_SHOP_NAME` | the name in the header and the page title | "商店" / "Shop" (follows the page language) |
//! | `ZHIFU_SHOP_TAGLINE` | the line under the header on the storefront | "使用支付宝付款。" / "Pay with Alipay." |
//! | `ZHIFU_SHOP_LOGO_URL` | the header logo: a path on this server (`/logo.png`) or an `https://` URL (allowed by the pages' CSP) | the Zhifu icon |
//!
//! The sandbox wording ("Zhifu 演示商店 … 本地沙箱，不涉及真实资金") appears
//! only with [`Branding::demo`], which only `zhifu dev` uses.

use url::Url;

use crate::error::CheckoutError;

/// Longest accepted shop name, in characters.
pub const MAX_NAME_CHARS: usize = 60;
/// Longest accepted tagline, in characters.
pub const MAX_TAGLINE_CHARS: usize = 200;

/// What the pages show as the shop's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// `ZHIFU_SHOP_NAME`.
    pub shop_name: Option<String>,
    /// `ZHIFU_SHOP_TAGLINE`.
    pub tagline: Option<String>,
    /// `ZHIFU_SHOP_LOGO_URL`: a same-origin path or an absolute http(s) URL.
    pub logo_url: Option<String>,
    /// The `zhifu dev` demo shop: its name and the "local sandbox, no real
    /// money" tagline where no name or tagline is set.
    pub demo: bool,
}

impl Branding {
    /// The demo shop of `zhifu dev`.
    pub fn demo() -> Self {
        Branding {
            demo: true,
            ..Branding::default()
        }
    }

    /// The name shown (before the page's language is applied).
    pub fn display_name(&self) -> &str {
        match &self.shop_name {
            Some(n) => n,
            None if self.demo => "Zhifu 演示商店",
            None => "商店",
        }
    }

    /// Overrides what the variables set.
    ///
    /// # Errors
    /// [`CheckoutError::Config`] naming the variable.
    pub(crate) fn apply_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), CheckoutError> {
        if let Some(v) = var("ZHIFU_SHOP_NAME").filter(|v| !v.trim().is_empty()) {
            self.shop_name = Some(text("ZHIFU_SHOP_NAME", &v, MAX_NAME_CHARS)?);
        }
        if let Some(v) = var("ZHIFU_SHOP_TAGLINE").filter(|v| !v.trim().is_empty()) {
            self.tagline = Some(text("ZHIFU_SHOP_TAGLINE", &v, MAX_TAGLINE_CHARS)?);
        }
        if let Some(v) = var("ZHIFU_SHOP_LOGO_URL").filter(|v| !v.trim().is_empty()) {
            let v = v.trim();
            logo_origin(v).ok_or_else(|| {
                CheckoutError::config(
                    "ZHIFU_SHOP_LOGO_URL",
                    "expected a path on this server (/logo.png) or an http(s) URL",
                )
            })?;
            self.logo_url = Some(v.to_owned());
        }
        Ok(())
    }

    /// The origin the logo is loaded from, when it is not this server.
    pub(crate) fn logo_foreign_origin(&self) -> Option<String> {
        self.logo_url
            .as_deref()
            .and_then(logo_origin)
            .and_then(|o| o)
    }
}

/// `Some(None)` for a same-origin path, `Some(Some(origin))` for an
/// absolute http(s) URL, `None` for anything else.
fn logo_origin(v: &str) -> Option<Option<String>> {
    if v.starts_with('/') && !v.starts_with("//") {
        let ok = v
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\'));
        return ok.then_some(None);
    }
    let u = Url::parse(v).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return None;
    }
    Some(Some(u.origin().ascii_serialization()))
}

fn text(var: &str, v: &str, max: usize) -> Result<String, CheckoutError> {
    let v = v.trim();
    if v.chars().any(char::is_control) {
        return Err(CheckoutError::config(
            var,
            "must not contain control characters",
        ));
    }
    if v.chars().count() > max {
        return Err(CheckoutError::config(
            var,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(v.to_owned())
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn reads_and_checks_the_variables() {
        let mut b = Branding::default();
        b.apply_env(&env(&[
            ("ZHIFU_SHOP_NAME", "  茶馆 Tea House "),
            ("ZHIFU_SHOP_TAGLINE", "好茶，好心情"),
            ("ZHIFU_SHOP_LOGO_URL", "https://cdn.example.com/logo.png"),
        ]))
        .unwrap();
        assert_eq!(b.display_name(), "茶馆 Tea House");
        assert_eq!(b.tagline.as_deref(), Some("好茶，好心情"));
        assert_eq!(
            b.logo_foreign_origin().as_deref(),
            Some("https://cdn.example.com")
        );

        let mut same = Branding::default();
        same.apply_env(&env(&[("ZHIFU_SHOP_LOGO_URL", "/static/logo.svg")]))
            .unwrap();
        assert_eq!(same.logo_foreign_origin(), None);
        assert_eq!(same.display_name(), "商店");
        assert_eq!(Branding::demo().display_name(), "Zhifu 演示商店");

        for (var, bad) in [
            ("ZHIFU_SHOP_NAME", "a\nb"),
            ("ZHIFU_SHOP_NAME", &"x".repeat(61)),
            ("ZHIFU_SHOP_TAGLINE", &"y".repeat(201)),
            ("ZHIFU_SHOP_LOGO_URL", "javascript:alert(1)"),
            ("ZHIFU_SHOP_LOGO_URL", "//evil.example.com/x.png"),
            ("ZHIFU_SHOP_LOGO_URL", "/x\"onerror=\"alert(1)"),
        ] {
            let err = Branding::default()
                .apply_env(&env(&[(var, bad)]))
                .unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b>\"Tom & Jerry's\"</b>"),
            "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;"
        );
    }
}

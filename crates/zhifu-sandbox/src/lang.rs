//! The language of the sandbox's human pages: Chinese by default, as on the
//! real cashier, English on request. A page is in one language at a time;
//! `?lang=en` / `?lang=zh` switches and is remembered in a cookie, so the
//! forms and redirects that follow keep it.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde::Deserialize;

/// The cookie that remembers the choice (scoped to `/sandbox`).
const COOKIE_NAME: &str = "zhifu_sandbox_lang";

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    /// Simplified Chinese.
    #[default]
    Zh,
    /// English.
    En,
}

/// The `lang` query parameter every human page accepts.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LangQuery {
    #[serde(default)]
    pub lang: Option<String>,
}

impl Lang {
    fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "zh-cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language a request asked for: the query first, then the cookie.
    /// The second value is `true` when the query chose it (so the answer
    /// should set the cookie).
    pub(crate) fn of(headers: &HeaderMap, query: Option<&str>) -> (Lang, bool) {
        if let Some(l) = query.and_then(Lang::parse) {
            return (l, true);
        }
        let from_cookie = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE_NAME)
            .and_then(|(_, v)| Lang::parse(v));
        (from_cookie.unwrap_or_default(), false)
    }

    /// Chinese or English text, whichever this language is.
    pub(crate) fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The `lang` attribute of the page.
    pub(crate) fn html_code(self) -> &'static str {
        self.pick("zh-CN", "en")
    }

    /// The query value that selects this language.
    pub(crate) fn query_value(self) -> &'static str {
        self.pick("zh", "en")
    }

    /// The language the switch offers.
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// Adds the cookie that keeps this language when `chosen` (see [`Lang::of`]).
    pub(crate) fn remember(self, mut r: Response, chosen: bool) -> Response {
        if chosen {
            let cookie = format!(
                "{COOKIE_NAME}={}; Path=/sandbox; Max-Age=31536000; SameSite=Lax",
                self.query_value()
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().append(SET_COOKIE, v);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_beats_cookie_and_chinese_is_the_default() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h, None), (Lang::Zh, false));
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=b; zhifu_sandbox_lang=en"),
        );
        assert_eq!(Lang::of(&h, None), (Lang::En, false));
        assert_eq!(Lang::of(&h, Some("zh")), (Lang::Zh, true));
        assert_eq!(Lang::of(&h, Some("fr")), (Lang::En, false));
    }
}

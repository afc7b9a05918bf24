//! The v2 sign-content rule (docs/protocol.md §3.1) and its notification variant (docs/protocol.md §6.4).

use std::collections::BTreeMap;

/// Builds the string that is signed for a **request** (docs/protocol.md §3.1): drop `sign`,
/// drop empty and whitespace-only values (as the Java SDK does), sort keys by
/// byte order, join raw `key=value` pairs with `&`. `sign_type` stays in.
pub fn request_sign_content<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let sorted: BTreeMap<&str, &str> = params
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.trim().is_empty())
        .collect();
    join(sorted.into_iter())
}

/// Which keys a notification's sign content leaves out (docs/protocol.md §6.4 step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifySignRule {
    /// `rsaCheckV1`: drop `sign` and `sign_type` — trade notifications and
    /// `return_url` parameters.
    ExcludeSignType,
    /// `rsaCheckV2`: drop only `sign` — application-gateway messages.
    KeepSignType,
}

/// Builds the sign content of a received notification or return.
///
/// Empty values are kept when `keep_empty` (Java `rsaCheckV1` does; whether
/// Alipay ever sends them is unconfirmed, so verification tries both).
pub fn notify_sign_content<'a, I>(params: I, rule: NotifySignRule, keep_empty: bool) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    // Keys are unique (FormParams refuses duplicates), so a plain sort is
    // the same order as the request rule's map, without the tree.
    let mut sorted: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| {
            *k != "sign"
                && !(rule == NotifySignRule::ExcludeSignType && *k == "sign_type")
                && (keep_empty || !v.is_empty())
        })
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    join(sorted.into_iter())
}

fn join<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_sign_and_empties_and_sorts() {
        let p = [
            ("sign", "xx"),
            ("b", "2"),
            ("a", "1"),
            ("empty", ""),
            ("blank", "  "),
            ("sign_type", "RSA2"),
            ("A", "upper"),
        ];
        assert_eq!(request_sign_content(p), "A=upper&a=1&b=2&sign_type=RSA2");
        assert_eq!(
            notify_sign_content(p, NotifySignRule::ExcludeSignType, true),
            "A=upper&a=1&b=2&blank=  &empty="
        );
        assert_eq!(
            notify_sign_content(p, NotifySignRule::KeepSignType, false),
            "A=upper&a=1&b=2&blank=  &sign_type=RSA2"
        );
    }
}

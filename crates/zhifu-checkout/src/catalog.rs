//! The catalog: the only source of prices the checkout accepts.
//!
//! A TOML file of products, each with a `sku`, a Chinese and an English
//! name, and a price written as a yuan string (`"88.88"`) that becomes
//! integer fen on load:
//!
//! ```toml
//! currency = "CNY"          # optional; CNY is the only currency Alipay settles here
//! max_quantity = 99         # optional default for every product
//!
//! [[product]]
//! sku = "mug"
//! price = "88.88"
//! name = { zh = "支付马克杯", en = "Zhifu mug" }
//! description = { zh = "…", en = "…" }   # optional
//! max_quantity = 5                        # optional
//!
//! [[product]]
//! sku = "pro-monthly"
//! price = "30.00"                         # charged each period
//! name = { zh = "专业版会员（月付）", en = "Pro plan, monthly" }
//! subscription = { unit = "month", every = 1, max_periods = 12 }   # max_periods optional
//! ```
//!
//! A product with `subscription` is sold only through `POST
//! /checkout/subscriptions` (an Alipay recurring agreement), never as a
//! one-off, and has no quantity; a product without it only as a one-off.

use std::collections::HashSet;
use std::path::Path;

use alipay::Amount;
use serde::{Deserialize, Serialize};

use crate::error::CheckoutError;

/// The only currency: Alipay's domestic trade APIs settle in CNY.
pub const CURRENCY: &str = "CNY";

/// The embedded catalog `zhifu dev` serves.
pub const DEMO_TOML: &str = include_str!("../assets/demo-catalog.toml");

/// Upper bound on `max_quantity`, so a catalog typo cannot make a huge order.
const QUANTITY_CEILING: u32 = 10_000;
/// Alipay's `subject` is at most 256 characters; the name plus the quantity
/// suffix must fit.
const NAME_MAX_CHARS: usize = 128;
const DESCRIPTION_MAX_CHARS: usize = 400;
/// Our own bounds on a plan's period (Alipay's, beyond `period >= 1`, are
/// not confirmed; see docs/agreements.md): a year either way.
const MAX_EVERY_MONTHS: u32 = 12;
const MAX_EVERY_DAYS: u32 = 365;
/// A plan longer than this many periods is a typo, not a product.
const MAX_PERIODS_CEILING: u32 = 1_000;

/// A name or text in both languages the pages speak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// The unit of a subscription's period (Alipay's `period_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodUnit {
    /// `DAY`.
    Day,
    /// `MONTH`.
    Month,
}

impl PeriodUnit {
    /// The wire name (`day`, `month`).
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodUnit::Day => "day",
            PeriodUnit::Month => "month",
        }
    }
}

/// A subscription product's plan: the product's price is charged every
/// `every` `unit`s, at most `max_periods` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Day or month.
    pub unit: PeriodUnit,
    /// How many units one period lasts.
    pub every: u32,
    /// How many periods are charged at most; `None`: until cancelled.
    #[serde(default)]
    pub max_periods: Option<u32>,
}

impl Plan {
    fn check(&self) -> Result<(), String> {
        let ceiling = match self.unit {
            PeriodUnit::Month => MAX_EVERY_MONTHS,
            PeriodUnit::Day => MAX_EVERY_DAYS,
        };
        if !(1..=ceiling).contains(&self.every) {
            return Err(format!(
                "every must be between 1 and {ceiling} for unit {:?}",
                self.unit.as_str()
            ));
        }
        if let Some(n) = self.max_periods
            && !(1..=MAX_PERIODS_CEILING).contains(&n)
        {
            return Err(format!(
                "max_periods must be between 1 and {MAX_PERIODS_CEILING}"
            ));
        }
        Ok(())
    }
}

/// One product, its price already checked and in fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Stable identifier the browser sends.
    pub sku: String,
    /// Display name.
    pub name: Text,
    /// Optional description.
    pub description: Option<Text>,
    /// Unit price.
    pub price: Amount,
    /// Largest quantity one checkout may buy (1 for a subscription).
    pub max_quantity: u32,
    /// Set for a subscription product: `price` is charged each period.
    pub subscription: Option<Plan>,
}

impl Product {
    /// The order's `subject` at Alipay, shown on the cashier: the Chinese
    /// name (the buyer's Alipay app is Chinese), with the quantity when > 1.
    pub fn subject(&self, quantity: u32) -> String {
        if quantity == 1 {
            self.name.zh.clone()
        } else {
            format!("{} × {quantity}", self.name.zh)
        }
    }

    /// `price × quantity`, or `None` past [`Amount::MAX`].
    pub fn total(&self, quantity: u32) -> Option<Amount> {
        self.price
            .fen()
            .checked_mul(u64::from(quantity))
            .and_then(|fen| Amount::from_fen(fen).ok())
    }
}

/// The checked catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    products: Vec<Product>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    currency: Option<String>,
    max_quantity: Option<u32>,
    #[serde(default)]
    product: Vec<RawProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    sku: String,
    name: Text,
    price: toml::Value,
    description: Option<Text>,
    max_quantity: Option<u32>,
    subscription: Option<toml::Value>,
}

impl Catalog {
    /// The demo catalog `zhifu dev` ships.
    pub fn demo() -> Self {
        Self::from_toml_str(DEMO_TOML).expect("invariant: the embedded demo catalog is valid")
    }

    /// Reads and checks a catalog file.
    ///
    /// # Errors
    /// [`CheckoutError::CatalogRead`] when the file cannot be read, otherwise as
    /// [`Catalog::from_toml_str`].
    pub fn load(path: &Path) -> Result<Self, CheckoutError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckoutError::CatalogRead {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and checks a catalog.
    ///
    /// # Errors
    /// [`CheckoutError`] naming the product and field at fault: bad TOML,
    /// a currency other than CNY, an empty catalog, a malformed or
    /// duplicate sku, an empty or overlong name, a price that is not a
    /// `"88.88"` string or is not payable, a bad `max_quantity`.
    pub fn from_toml_str(text: &str) -> Result<Self, CheckoutError> {
        let raw: RawCatalog =
            toml::from_str(text).map_err(|e| CheckoutError::CatalogSyntax(e.to_string()))?;
        if let Some(c) = &raw.currency
            && c != CURRENCY
        {
            return Err(CheckoutError::CatalogCurrency(c.clone()));
        }
        let default_max = raw.max_quantity.unwrap_or(99);
        check_max_quantity("(catalog)", default_max)?;
        if raw.product.is_empty() {
            return Err(CheckoutError::CatalogEmpty);
        }
        let mut seen = HashSet::new();
        let mut products = Vec::with_capacity(raw.product.len());
        for p in raw.product {
            if !valid_sku(&p.sku) {
                return Err(CheckoutError::CatalogSku(p.sku));
            }
            if !seen.insert(p.sku.clone()) {
                return Err(CheckoutError::CatalogDuplicateSku(p.sku));
            }
            let bad = |field: &'static str, problem: String| CheckoutError::CatalogProduct {
                sku: p.sku.clone(),
                field,
                problem,
            };
            check_text(&p.name, NAME_MAX_CHARS).map_err(|m| bad("name", m))?;
            if let Some(d) = &p.description {
                check_text(d, DESCRIPTION_MAX_CHARS).map_err(|m| bad("description", m))?;
            }
            // A TOML float would already have lost the fen; demand the string.
            let price = match &p.price {
                toml::Value::String(s) => {
                    Amount::payable(s).map_err(|e| bad("price", e.to_string()))?
                }
                other => {
                    return Err(bad(
                        "price",
                        format!(
                            "must be a string like \"88.88\", not a {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            // Read by hand rather than by serde so a mistake names the
            // product (serde's message would only say "line 12").
            let subscription = match p.subscription {
                None => None,
                Some(v) => {
                    let plan: Plan = v.try_into().map_err(|e: toml::de::Error| {
                        bad("subscription", e.message().to_owned())
                    })?;
                    plan.check().map_err(|m| bad("subscription", m))?;
                    if p.max_quantity.is_some() {
                        return Err(bad(
                            "max_quantity",
                            "a subscription is bought one at a time; remove max_quantity".into(),
                        ));
                    }
                    Some(plan)
                }
            };
            let max_quantity = if subscription.is_some() {
                1
            } else {
                p.max_quantity.unwrap_or(default_max)
            };
            check_max_quantity(&p.sku, max_quantity)?;
            let product = Product {
                sku: p.sku.clone(),
                name: p.name,
                description: p.description,
                price,
                max_quantity,
                subscription,
            };
            if product.total(max_quantity).is_none() {
                return Err(bad(
                    "max_quantity",
                    "price × max_quantity exceeds Alipay's largest amount".into(),
                ));
            }
            products.push(product);
        }
        Ok(Catalog { products })
    }

    /// The product with this sku.
    pub fn get(&self, sku: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.sku == sku)
    }

    /// Every product, in file order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }
}

fn check_max_quantity(what: &str, n: u32) -> Result<(), CheckoutError> {
    if n == 0 || n > QUANTITY_CEILING {
        return Err(CheckoutError::CatalogMaxQuantity {
            what: what.to_owned(),
            value: n,
            ceiling: QUANTITY_CEILING,
        });
    }
    Ok(())
}

fn check_text(t: &Text, max: usize) -> Result<(), String> {
    for (lang, s) in [("zh", &t.zh), ("en", &t.en)] {
        if s.trim().is_empty() {
            return Err(format!("{lang} must not be empty"));
        }
        if s.chars().count() > max {
            return Err(format!("{lang} is longer than {max} characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(format!("{lang} contains control characters"));
        }
    }
    Ok(())
}

/// Skus go into URLs, logs and order metadata: keep them plain.
pub(crate) fn valid_sku(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
        [[product]]
        sku = "mug"
        price = "88.88"
        name = { zh = "马克杯", en = "Mug" }
    "#;

    #[test]
    fn parses_price_to_fen() {
        let c = Catalog::from_toml_str(ONE).unwrap();
        let p = c.get("mug").unwrap();
        assert_eq!(p.price.fen(), 8888);
        assert_eq!(p.max_quantity, 99);
        assert_eq!(p.total(3).unwrap().to_string(), "266.64");
        assert_eq!(p.subject(1), "马克杯");
        assert_eq!(p.subject(3), "马克杯 × 3");
        assert!(c.get("cup").is_none());
    }

    #[test]
    fn demo_catalog_is_valid() {
        let c = Catalog::demo();
        assert!(c.products().len() >= 2);
        for p in c.products() {
            assert!(p.price.fen() > 0);
        }
    }

    #[test]
    fn rejects_float_prices() {
        let t = ONE.replace("\"88.88\"", "88.88");
        let e = Catalog::from_toml_str(&t).unwrap_err().to_string();
        assert!(
            e.contains("mug") && e.contains("price") && e.contains("string"),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_catalogs() {
        let cases = [
            (ONE.replace("88.88", "0.00"), "price"),
            (ONE.replace("88.88", "88.888"), "price"),
            (ONE.replace("88.88", "-1"), "price"),
            (ONE.replace("\"mug\"", "\"a mug\""), "sku"),
            (ONE.replace("\"马克杯\"", "\"  \""), "name"),
            (format!("currency = \"USD\"\n{ONE}"), "USD"),
            (format!("{ONE}\n{ONE}"), "duplicate"),
            (
                ONE.replace("sku = \"mug\"", "sku = \"mug\"\nmax_quantity = 0"),
                "max_quantity",
            ),
            (
                ONE.replace("sku = \"mug\"", "sku = \"mug\"\ncolour = 1"),
                "colour",
            ),
            (String::new(), "no products"),
            ("[[product]".to_owned(), "TOML"),
        ];
        for (text, needle) in cases {
            let e = Catalog::from_toml_str(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
    }

    #[test]
    fn rejects_totals_beyond_alipay_maximum() {
        let t = ONE
            .replace("88.88", "99999999.00")
            .replace("sku = \"mug\"", "sku = \"mug\"\nmax_quantity = 2");
        let e = Catalog::from_toml_str(&t).unwrap_err().to_string();
        assert!(e.contains("largest amount"), "{e}");
    }

    const PLAN: &str = r#"
        [[product]]
        sku = "pro"
        price = "30.00"
        name = { zh = "专业版", en = "Pro" }
        subscription = { unit = "month", every = 1, max_periods = 12 }
    "#;

    #[test]
    fn parses_subscription_plans() {
        let c = Catalog::from_toml_str(&format!("{ONE}\n{PLAN}")).unwrap();
        let pro = c.get("pro").unwrap();
        assert_eq!(
            pro.subscription,
            Some(Plan {
                unit: PeriodUnit::Month,
                every: 1,
                max_periods: Some(12)
            })
        );
        assert_eq!(pro.price.fen(), 3000);
        assert_eq!(pro.max_quantity, 1);
        assert_eq!(c.get("mug").unwrap().subscription, None);
        let open_ended = PLAN
            .replace(", max_periods = 12", "")
            .replace("month", "day");
        let p = Catalog::from_toml_str(&open_ended).unwrap();
        assert_eq!(p.products()[0].subscription.unwrap().max_periods, None);
        assert_eq!(p.products()[0].subscription.unwrap().unit, PeriodUnit::Day);
    }

    #[test]
    fn rejects_bad_plans() {
        let cases = [
            (PLAN.replace("\"month\"", "\"week\""), "week"),
            (PLAN.replace("every = 1", "every = 0"), "every"),
            (PLAN.replace("every = 1", "every = 13"), "between 1 and 12"),
            (
                PLAN.replace("every = 1", "every = 366")
                    .replace("month", "day"),
                "between 1 and 365",
            ),
            (PLAN.replace("every = 1", "every = -1"), "subscription"),
            (
                PLAN.replace("max_periods = 12", "max_periods = 0"),
                "max_periods",
            ),
            (
                PLAN.replace("max_periods = 12", "max_periods = 1001"),
                "max_periods",
            ),
            (PLAN.replace(", max_periods = 12", ", trial = 7"), "trial"),
            (PLAN.replace("unit = \"month\", ", ""), "unit"),
            (PLAN.replace("{ unit", "\"monthly\" #"), "subscription"),
            (
                PLAN.replace("sku = \"pro\"", "sku = \"pro\"\nmax_quantity = 2"),
                "one at a time",
            ),
            (PLAN.replace("30.00", "0.00"), "price"),
        ];
        for (text, needle) in cases {
            let e = Catalog::from_toml_str(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
            assert!(e.contains("pro") || needle == "subscription", "{e}");
        }
    }

    #[test]
    fn demo_catalog_has_a_subscription_after_the_one_offs() {
        let c = Catalog::demo();
        let subs: Vec<_> = c
            .products()
            .iter()
            .filter(|p| p.subscription.is_some())
            .collect();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].price.to_string(), "30.00");
        // The first product stays a one-off: the OpenAPI test buys products[0].
        assert!(c.products()[0].subscription.is_none());
    }

    #[test]
    fn sku_rule() {
        assert!(valid_sku("tea-100g_v2.1"));
        assert!(!valid_sku(""));
        assert!(!valid_sku("a/b"));
        assert!(!valid_sku(&"x".repeat(65)));
    }
}

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
//! ```

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

/// A name or text in both languages the pages speak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
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
    /// Largest quantity one checkout may buy.
    pub max_quantity: u32,
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
            let max_quantity = p.max_quantity.unwrap_or(default_max);
            check_max_quantity(&p.sku, max_quantity)?;
            let product = Product {
                sku: p.sku.clone(),
                name: p.name,
                description: p.description,
                price,
                max_quantity,
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

    #[test]
    fn sku_rule() {
        assert!(valid_sku("tea-100g_v2.1"));
        assert!(!valid_sku(""));
        assert!(!valid_sku("a/b"));
        assert!(!valid_sku(&"x".repeat(65)));
    }
}

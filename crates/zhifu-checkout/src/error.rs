//! The crate's one error type. Messages name what is wrong and never carry
//! a secret (the API key, the checkout secret) or a backend's raw answer.

/// Everything that can go wrong in the checkout outside of a single HTTP
/// answer (those are [`crate::api`]'s business).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckoutError {
    /// The catalog file could not be read.
    #[error("catalog {path}: {source}")]
    CatalogRead {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The catalog is not valid TOML of the expected shape.
    #[error("catalog: not a valid TOML catalog: {0}")]
    CatalogSyntax(String),
    /// A currency other than CNY.
    #[error("catalog: currency {0:?} is not supported (only CNY)")]
    CatalogCurrency(String),
    /// No `[[product]]`.
    #[error("catalog: no products (add at least one [[product]])")]
    CatalogEmpty,
    /// A sku that is empty, too long or has characters other than letters,
    /// digits, `-`, `_` and `.`.
    #[error("catalog: sku {0:?} must be 1–64 letters, digits, '-', '_' or '.'")]
    CatalogSku(String),
    /// Two products with the same sku.
    #[error("catalog: duplicate sku {0:?}")]
    CatalogDuplicateSku(String),
    /// One field of one product is wrong.
    #[error("catalog: product {sku:?}: {field}: {problem}")]
    CatalogProduct {
        /// The product.
        sku: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// `max_quantity` out of range.
    #[error("catalog: {what}: max_quantity {value} must be between 1 and {ceiling}")]
    CatalogMaxQuantity {
        /// The product, or `(catalog)` for the default.
        what: String,
        /// The value given.
        value: u32,
        /// The largest allowed.
        ceiling: u32,
    },
    /// A configuration value is unusable; names the variable.
    #[error("{var}: {problem}")]
    Config {
        /// The variable or setting.
        var: String,
        /// What is wrong (never the value of a secret).
        problem: String,
    },
    /// The payment backend refused the request (a 4xx with its stable code).
    #[error("payment backend refused the request: {status} {code}: {message}")]
    BackendRejected {
        /// HTTP status.
        status: u16,
        /// The backend's stable error code.
        code: String,
        /// The backend's message.
        message: String,
    },
    /// The order does not exist at the backend.
    #[error("payment backend: no such order")]
    OrderNotFound,
    /// The backend failed or answered something unreadable; retrying may help.
    #[error("payment backend unavailable: {0}")]
    BackendUnavailable(String),
}

impl CheckoutError {
    pub(crate) fn config(var: &str, problem: impl Into<String>) -> Self {
        CheckoutError::Config {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

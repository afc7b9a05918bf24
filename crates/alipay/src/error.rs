//! The crate's single error type.
//!
//! Variants say *what* failed in terms a merchant can act on. None of them
//! carries key material, and none of them embeds its source's text: whoever
//! logs an [`Error`] walks the `source()` chain.

use std::fmt;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key could not be used. `expected` says which key the caller gave.
    #[error("the {expected} is unusable: {problem}")]
    Key {
        /// The key the caller meant to give.
        expected: KeyRole,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// A certificate (public-key-certificate mode) could not be used.
    #[error("certificate unusable: {0}")]
    Certificate(String),
    /// An amount string is not a valid Alipay amount.
    #[error("invalid amount {input:?}: {problem}")]
    Amount {
        /// The offending text (amounts are not secret).
        input: String,
        /// Why it was refused.
        problem: AmountProblem,
    },
    /// A request field breaks one of Alipay's constraints (docs/protocol.md §5.1); nothing was signed.
    #[error("field `{field}` is invalid: {problem}")]
    Field {
        /// Name of the field as Alipay spells it.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The JSON of a request or response could not be (de)serialised.
    #[error("JSON of `{context}` could not be processed")]
    Json {
        /// What was being processed.
        context: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A gateway response could not be taken apart (docs/protocol.md §4.2).
    #[error("malformed gateway response: {0}")]
    MalformedResponse(ResponseProblem),
    /// A form body (notification or return) could not be taken apart.
    #[error("malformed form body: {0}")]
    MalformedForm(String),
    /// A message that must be signed carries no signature.
    #[error("the message carries no signature")]
    MissingSignature,
    /// A signature does not verify against the configured Alipay key.
    #[error("the signature does not verify")]
    BadSignature,
    /// The message names a signature algorithm this crate does not accept.
    #[error("unsupported sign_type {0:?} (expected RSA2 or RSA)")]
    UnsupportedSignType(String),
    /// The message names a charset this crate cannot decode.
    #[error("unsupported charset {0:?} (expected utf-8, gbk or gb2312)")]
    UnsupportedCharset(String),
    /// A cert-mode response names an Alipay certificate this client does not hold.
    #[error("response signed by unknown Alipay certificate {0}")]
    UnknownAlipayCert(String),
    /// The gateway answered with a non-success `code` (verified when it was signed).
    #[error("{0}")]
    Gateway(Box<GatewayError>),
    /// A verified notification does not match the merchant's order.
    #[error("notification does not match the order: {}", join_mismatches(.0))]
    NotifyMismatch(Vec<Mismatch>),
    /// A required field is missing from a notification, return or response.
    #[error("field `{0}` is missing")]
    MissingField(&'static str),
    /// A timestamp could not be parsed.
    #[error("field `{field}` is not a `yyyy-MM-dd HH:mm:ss` timestamp: {value:?}")]
    Timestamp {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// AES content encryption or decryption failed.
    #[error("AES content encryption: {0}")]
    Aes(&'static str),
    /// A random-number or signing primitive failed (should not happen with a valid key).
    #[error("cryptographic operation failed")]
    Crypto,
    /// The HTTP transport failed (client feature).
    #[cfg(feature = "client")]
    #[error("HTTP request to the gateway failed")]
    Http(#[source] reqwest::Error),
    /// The gateway answered with an unexpected HTTP status (client feature).
    #[cfg(feature = "client")]
    #[error("gateway answered HTTP {0}")]
    HttpStatus(u16),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the outcome of the call is not known: the same request may
    /// be retried, or the trade queried (`20000`, `ACQ.SYSTEM_ERROR`, a
    /// transport failure after the request may have been received).
    pub fn is_unknown_outcome(&self) -> bool {
        match self {
            Error::Gateway(g) => g.outcome() == Outcome::Unknown,
            // The call reached Alipay; its answer names a certificate we
            // do not hold yet, so what it says cannot be trusted.
            Error::UnknownAlipayCert(_) => true,
            #[cfg(feature = "client")]
            Error::Http(_) => true,
            #[cfg(feature = "client")]
            Error::HttpStatus(s) => *s >= 500,
            _ => false,
        }
    }

    pub(crate) fn key(expected: KeyRole, problem: KeyProblem) -> Self {
        Error::Key { expected, problem }
    }

    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> Self {
        Error::Field {
            field,
            problem: problem.into(),
        }
    }
}

fn join_mismatches(m: &[Mismatch]) -> String {
    m.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which key a caller gave, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRole {
    /// The merchant's application private key (signs requests).
    AppPrivateKey,
    /// Alipay's public key (verifies responses and notifications).
    AlipayPublicKey,
    /// Any RSA public key (e.g. an app public key registered in the sandbox).
    PublicKey,
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::AppPrivateKey => "app private key",
            KeyRole::AlipayPublicKey => "Alipay public key",
            KeyRole::PublicKey => "public key",
        })
    }
}

/// What is wrong with a key. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The text is empty.
    Empty,
    /// The text is neither PEM nor base64.
    NotPemOrBase64,
    /// A PEM block with a label we do not accept.
    UnexpectedPemLabel(String),
    /// PEM armour without its END line, or with an inconsistent one.
    BrokenPem,
    /// The DER is a public key where a private key was expected.
    PublicWherePrivateExpected,
    /// The DER is a private key where a public key was expected.
    PrivateWherePublicExpected,
    /// The PEM label says PKCS#8 but the body is PKCS#1 (or the reverse).
    LabelMismatch {
        /// What the label promised.
        label: &'static str,
        /// What the body is.
        body: &'static str,
    },
    /// The DER is a certificate; public-key mode needs the bare key.
    CertificateGiven,
    /// Not RSA, or not a structure we recognise.
    NotRsa,
    /// The key is rejected by the crypto library (size, malformed numbers).
    Rejected(&'static str),
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Empty => f.write_str("it is empty"),
            KeyProblem::NotPemOrBase64 => {
                f.write_str("it is neither PEM nor the bare base64 the Alipay console shows")
            }
            KeyProblem::UnexpectedPemLabel(l) => write!(f, "unexpected PEM block `{l}`"),
            KeyProblem::BrokenPem => {
                f.write_str("the PEM armour is broken (BEGIN without matching END)")
            }
            KeyProblem::PublicWherePrivateExpected => {
                f.write_str("this looks like a public key, expected the app private key")
            }
            KeyProblem::PrivateWherePublicExpected => f.write_str(
                "this looks like a private key, expected a public key (never share a private key)",
            ),
            KeyProblem::LabelMismatch { label, body } => {
                write!(f, "{label} header but the body is {body}")
            }
            KeyProblem::CertificateGiven => f.write_str(
                "this is a certificate; give the bare public key, or use certificate mode",
            ),
            KeyProblem::NotRsa => {
                f.write_str("it is not an RSA key in PKCS#1, PKCS#8 or SPKI form")
            }
            KeyProblem::Rejected(why) => write!(f, "rejected by the crypto library ({why})"),
        }
    }
}

/// Why an amount string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmountProblem {
    /// Not of the form `digits[.d[d]]`.
    Syntax,
    /// More than two decimals.
    TooManyDecimals,
    /// Below 0.01 (where a payable amount is required) or above 100000000.00.
    OutOfRange,
}

impl fmt::Display for AmountProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountProblem::Syntax => "expected yuan as digits with an optional `.` and up to two decimals, like \"88.88\"",
            AmountProblem::TooManyDecimals => "more than two decimals",
            AmountProblem::OutOfRange => "outside 0.01 ..= 100000000.00",
        })
    }
}

/// Why a gateway response body could not be taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// Neither `<method>_response` nor `error_response` appears.
    NodeMissing(String),
    /// The response node appears twice (a duplicated-node attack).
    DuplicateNode(String),
    /// The node is neither an object nor a string, or is unterminated.
    BadNode(String),
    /// The body is not UTF-8 JSON.
    NotJson,
}

impl fmt::Display for ResponseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseProblem::NodeMissing(n) => {
                write!(f, "neither `{n}` nor `error_response` found")
            }
            ResponseProblem::DuplicateNode(n) => write!(f, "node `{n}` appears more than once"),
            ResponseProblem::BadNode(n) => {
                write!(f, "node `{n}` is not a complete object or string")
            }
            ResponseProblem::NotJson => f.write_str("body is not UTF-8 JSON"),
        }
    }
}

/// How sure we are about the result of a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The gateway may or may not have acted: retry the identical request, or query.
    Unknown,
    /// `10003`: the trade exists and waits for the buyer (barcode pay); poll query.
    WaitingForBuyer,
    /// The call failed and nothing happened; retrying unchanged fails again.
    Final,
}

/// A non-success answer of the gateway (`code` ≠ `10000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// `code`, e.g. `40004`.
    pub code: String,
    /// `msg`, e.g. `Business Failed`.
    pub msg: String,
    /// `sub_code`, e.g. `ACQ.TRADE_NOT_EXIST`.
    pub sub_code: Option<String>,
    /// `sub_msg`, e.g. `交易不存在`.
    pub sub_msg: Option<String>,
    /// Whether the failure node carried a signature that verified. Failures
    /// for unidentifiable apps come unsigned (docs/protocol.md §4.1).
    pub verified: bool,
    /// The response node as received (business fields of failures, e.g. refund amounts).
    pub node: String,
}

impl GatewayError {
    /// Whether the result is unknown, pending or final.
    pub fn outcome(&self) -> Outcome {
        match (self.code.as_str(), self.sub_code.as_deref()) {
            ("10003", _) => Outcome::WaitingForBuyer,
            ("20000", _) => Outcome::Unknown,
            (_, Some("ACQ.SYSTEM_ERROR" | "isp.unknow-error" | "aop.unknow-error")) => {
                Outcome::Unknown
            }
            _ => Outcome::Final,
        }
    }

    /// The `sub_code`, or `code` when there is none.
    pub fn reason(&self) -> &str {
        self.sub_code.as_deref().unwrap_or(&self.code)
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gateway answered {} {}", self.code, self.msg)?;
        if let Some(sc) = &self.sub_code {
            write!(f, " ({sc}")?;
            if let Some(sm) = &self.sub_msg {
                write!(f, ": {sm}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// One way a verified notification differs from the merchant's order (docs/protocol.md §6.4 step 4)
/// or agreement (docs/agreements.md).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// `out_trade_no` is not the order's.
    OutTradeNo {
        /// The order's.
        expected: String,
        /// The notification's.
        got: String,
    },
    /// `total_amount` differs from the order's amount.
    TotalAmount {
        /// The order's, in fen.
        expected_fen: u64,
        /// The notification's, in fen.
        got_fen: u64,
    },
    /// `app_id` is not the merchant's app.
    AppId {
        /// The merchant's.
        expected: String,
        /// The notification's.
        got: String,
    },
    /// `seller_id` is not the expected payee.
    SellerId {
        /// The expected payee.
        expected: String,
        /// The notification's (empty when absent).
        got: String,
    },
    /// `external_agreement_no` is not the agreement the merchant asked for.
    ExternalAgreementNo {
        /// The merchant's.
        expected: String,
        /// The notification's (empty when absent).
        got: String,
    },
    /// `personal_product_code` is not the product the merchant signs.
    PersonalProductCode {
        /// The merchant's.
        expected: String,
        /// The notification's (empty when absent).
        got: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::OutTradeNo { expected, got } => {
                write!(f, "out_trade_no is {got:?}, expected {expected:?}")
            }
            Mismatch::TotalAmount {
                expected_fen,
                got_fen,
            } => write!(
                f,
                "total_amount is {got_fen} fen, expected {expected_fen} fen"
            ),
            Mismatch::AppId { expected, got } => {
                write!(f, "app_id is {got:?}, expected {expected:?}")
            }
            Mismatch::SellerId { expected, got } => {
                write!(f, "seller_id is {got:?}, expected {expected:?}")
            }
            Mismatch::ExternalAgreementNo { expected, got } => {
                write!(f, "external_agreement_no is {got:?}, expected {expected:?}")
            }
            Mismatch::PersonalProductCode { expected, got } => {
                write!(f, "personal_product_code is {got:?}, expected {expected:?}")
            }
        }
    }
}

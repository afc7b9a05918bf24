//! The gateway's business vocabulary, shared by the trade APIs and the
//! response renderer: what a request's `biz_content` says ([`Biz`]), the
//! system parameters an order keeps ([`Sys`]), and the two kinds of answer,
//! [`Reply`] (`10000`, `10003`) and [`BizError`] (`40004` and friends).

use serde_json::{Map, Value};

/// A business answer: `code`/`msg` plus the API's fields.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub code: &'static str,
    pub msg: &'static str,
    pub fields: Map<String, Value>,
}

impl Reply {
    pub(crate) fn success(fields: Map<String, Value>) -> Self {
        Reply {
            code: "10000",
            msg: "Success",
            fields,
        }
    }
}

/// A business failure, answered inside the method's node.
#[derive(Debug, Clone)]
pub(crate) struct BizError {
    pub code: &'static str,
    pub msg: &'static str,
    pub sub_code: &'static str,
    pub sub_msg: String,
    /// Business fields failures still carry (e.g. `refund_fee`).
    pub extra: Vec<(&'static str, String)>,
}

impl BizError {
    /// `40004 Business Failed` with an `ACQ.*` sub-code (docs/protocol.md §4.4).
    pub(crate) fn acq(sub_code: &'static str, sub_msg: impl Into<String>) -> Self {
        BizError {
            code: "40004",
            msg: "Business Failed",
            sub_code,
            sub_msg: sub_msg.into(),
            extra: Vec::new(),
        }
    }

    /// `ACQ.INVALID_PARAMETER` naming what is wrong.
    pub(crate) fn invalid(detail: impl AsRef<str>) -> Self {
        BizError::acq(
            "ACQ.INVALID_PARAMETER",
            format!("参数无效：{}", detail.as_ref()),
        )
    }

    /// `ACQ.TRADE_NOT_EXIST`.
    pub(crate) fn trade_not_exist() -> Self {
        BizError::acq("ACQ.TRADE_NOT_EXIST", "交易不存在")
    }

    /// `ACQ.SYSTEM_ERROR`: the sandbox failed inside (e.g. persisting).
    pub(crate) fn system_error() -> Self {
        BizError::acq("ACQ.SYSTEM_ERROR", "系统错误")
    }

    /// Adds a business field the failure carries.
    pub(crate) fn with(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.extra.push((k, v.into()));
        self
    }
}

/// `biz_content` as the gateway reads it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Biz(pub Map<String, Value>);

impl Biz {
    /// A text field; JSON numbers are read as their text (the gateway
    /// accepts `"total_amount":88.88`); empty strings count as absent.
    pub(crate) fn str(&self, k: &str) -> Option<String> {
        match self.0.get(k)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub(crate) fn req(&self, k: &str) -> Result<String, BizError> {
        self.str(k)
            .ok_or_else(|| BizError::invalid(format!("缺少必选参数 {k}")))
    }

    pub(crate) fn amount(&self, k: &str) -> Result<u64, BizError> {
        let s = self.req(k)?;
        let a =
            alipay::Amount::parse(&s).map_err(|_| BizError::invalid(format!("{k} 格式错误")))?;
        if a.fen() == 0 {
            return Err(BizError::invalid(format!("{k} 必须大于 0")));
        }
        Ok(a.fen())
    }

    /// Whether a list option (`query_options`) names `option`.
    pub(crate) fn has_option(&self, k: &str, option: &str) -> bool {
        match self.0.get(k) {
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(option)),
            Some(Value::String(s)) => s.split(',').any(|x| x.trim() == option),
            _ => false,
        }
    }
}

/// System parameters an order carries into its trade.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sys {
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub charset: String,
    pub sign_type: String,
}

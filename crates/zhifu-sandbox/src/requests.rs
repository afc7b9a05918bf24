//! The gateway's request log: one [`RequestRecord`] per call `/gateway.do`
//! answered (refusals included), newest `capacity` kept, read through
//! [`RequestFilter`]. Lets a test count and inspect the calls a client made
//! (`GET /sandbox/api/requests`, `Sandbox::requests`). Kept in memory only:
//! it starts empty at every start, even with a state directory.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One gateway call, as logged after it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Position in the log: 1, 2, 3, … in the order calls were answered;
    /// never reused, also not after the oldest entries were dropped.
    pub seq: u64,
    /// The `method` parameter (e.g. `alipay.trade.refund`), as claimed by
    /// the request — also when the call was refused; `None` when absent or
    /// when the parameters could not even be decoded.
    pub method: Option<String>,
    /// The `app_id` parameter, when present (known or not).
    pub app_id: Option<String>,
    /// `out_trade_no` from `biz_content`, when present.
    pub out_trade_no: Option<String>,
    /// `trade_no` from `biz_content`, when present.
    pub trade_no: Option<String>,
    /// `out_request_no` from `biz_content`, when present.
    pub out_request_no: Option<String>,
    /// `biz_content` parsed as JSON (decrypted first for an AES request
    /// that got that far); `null` when absent or not JSON.
    pub biz_content: Value,
    /// The answer's `code`: `10000`, `10003`, `20000`, `40001`, `40002`,
    /// `40004`. A page/wap/app order that sent the buyer to the cashier
    /// counts as `10000`.
    pub code: String,
    /// The answer's `sub_code`, when it had one.
    pub sub_code: Option<String>,
    /// When the gateway received the call, on the sandbox clock (epoch ms;
    /// stands still in explicit mode).
    pub at_ms: i64,
    /// When the gateway received the call, on the real clock (epoch ms), to
    /// measure real spacing between calls in any mode.
    pub wall_ms: i64,
}

/// Which records to list; every field that is set must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestFilter {
    /// Only calls of this `method`.
    pub method: Option<String>,
    /// Only calls whose `biz_content` names this `out_trade_no`.
    pub out_trade_no: Option<String>,
}

impl RequestFilter {
    /// A filter from optional parts (`None` matches everything).
    pub fn new(method: Option<&str>, out_trade_no: Option<&str>) -> Self {
        RequestFilter {
            method: method.map(str::to_owned),
            out_trade_no: out_trade_no.map(str::to_owned),
        }
    }

    /// Whether `r` passes the filter.
    pub fn matches(&self, r: &RequestRecord) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.method, &r.method) && eq(&self.out_trade_no, &r.out_trade_no)
    }
}

/// What the gateway knew about a call once it had answered it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Call {
    pub method: Option<String>,
    pub app_id: Option<String>,
    /// `biz_content` as text (decrypted when the request was decrypted).
    pub biz: Option<String>,
    pub code: &'static str,
    pub sub_code: Option<&'static str>,
    pub at_ms: i64,
    pub wall_ms: i64,
}

impl Call {
    /// Sets the answer's code and sub-code.
    pub(crate) fn answered(&mut self, code: &'static str, sub_code: Option<&'static str>) {
        self.code = code;
        self.sub_code = sub_code;
    }
}

/// A text field of a `biz_content` object, read as the gateway reads it
/// (JSON numbers as their text; empty strings as absent).
fn field(biz: &Value, k: &str) -> Option<String> {
    match biz.get(k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The newest `capacity` records, oldest first.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: VecDeque<RequestRecord>,
    capacity: usize,
    next_seq: u64,
}

impl RequestLog {
    /// An empty log keeping at most `capacity` records (0 keeps none).
    pub(crate) fn new(capacity: usize) -> Self {
        RequestLog {
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            next_seq: 1,
        }
    }

    /// Appends a call, dropping the oldest records beyond the capacity.
    pub(crate) fn push(&mut self, call: Call) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.capacity == 0 {
            return;
        }
        let biz = call
            .biz
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null);
        let record = RequestRecord {
            seq,
            method: call.method,
            app_id: call.app_id,
            out_trade_no: field(&biz, "out_trade_no"),
            trade_no: field(&biz, "trade_no"),
            out_request_no: field(&biz, "out_request_no"),
            biz_content: biz,
            code: call.code.to_owned(),
            sub_code: call.sub_code.map(str::to_owned),
            at_ms: call.at_ms,
            wall_ms: call.wall_ms,
        };
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(record);
    }

    /// The records passing `filter`, oldest first.
    pub(crate) fn list(&self, filter: &RequestFilter) -> Vec<RequestRecord> {
        self.entries
            .iter()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, biz: Option<&str>, code: &'static str) -> Call {
        Call {
            method: Some(method.to_owned()),
            app_id: Some("2021".to_owned()),
            biz: biz.map(str::to_owned),
            code,
            sub_code: None,
            at_ms: 1,
            wall_ms: 2,
        }
    }

    #[test]
    fn records_read_biz_content_and_filter_exactly() {
        let mut log = RequestLog::new(10);
        log.push(call(
            "alipay.trade.refund",
            Some(r#"{"out_trade_no":"A1","trade_no":"","out_request_no":7}"#),
            "10000",
        ));
        log.push(call("alipay.trade.query", Some("not json"), "40004"));
        log.push(call(
            "alipay.trade.query",
            Some(r#"{"out_trade_no":"A1"}"#),
            "10000",
        ));
        let all = log.list(&RequestFilter::default());
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(all[0].out_trade_no.as_deref(), Some("A1"));
        assert_eq!(all[0].trade_no, None, "empty strings count as absent");
        assert_eq!(all[0].out_request_no.as_deref(), Some("7"));
        assert_eq!(all[0].biz_content["out_request_no"], 7);
        assert_eq!(all[1].biz_content, Value::Null);
        assert_eq!(all[1].out_trade_no, None);
        let f = RequestFilter::new(Some("alipay.trade.query"), None);
        assert_eq!(log.list(&f).len(), 2);
        let f = RequestFilter::new(Some("alipay.trade.query"), Some("A1"));
        assert_eq!(log.list(&f).iter().map(|r| r.seq).collect::<Vec<_>>(), [3]);
        let f = RequestFilter::new(Some("alipay.trade"), None);
        assert!(log.list(&f).is_empty(), "exact match only");
    }

    #[test]
    fn the_oldest_records_are_dropped_and_seq_goes_on() {
        let mut log = RequestLog::new(3);
        for _ in 0..5 {
            log.push(call("alipay.trade.query", None, "10000"));
        }
        let seqs: Vec<u64> = log
            .list(&RequestFilter::default())
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, [3, 4, 5]);
        let mut off = RequestLog::new(0);
        off.push(call("alipay.trade.query", None, "10000"));
        assert!(off.list(&RequestFilter::default()).is_empty());
    }
}

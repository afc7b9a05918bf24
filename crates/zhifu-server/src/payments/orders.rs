//! Orders: creating one (with Alipay's field rules checked before anything
//! is stored, and idempotency keys honoured) and producing the payment
//! parameters of a channel. Neither changes an order's payment state.

use alipay::{
    Amount, BizContent, OutTradeNo, RequestOptions, TradeAppPay, TradeCreate, TradePagePay,
    TradePrecreate, TradeWapPay,
};
use zhifu_store::{CreateOrderOutcome, NewOrder, Order, OrderStatus, StoreError, new_id};

use super::error::PaymentError;
use crate::domain::{Channel, MAX_EXPIRY_MINUTES, amount, fen, from_epoch_ms, request_hash};
use crate::state::AppState;

/// Largest `metadata` object, serialised.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest `return_url` we sign into payment parameters.
pub const MAX_RETURN_URL_LEN: usize = 256;

/// What a merchant asks for when creating an order.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    /// Shown to the buyer.
    pub subject: String,
    /// The amount to pay.
    pub total: Amount,
    /// Longer description.
    pub body: Option<String>,
    /// The merchant's own order number; generated when absent.
    pub out_trade_no: Option<String>,
    /// Payment deadline; the configured default when absent.
    pub expires_in_minutes: Option<i64>,
    /// Merchant data, as canonical JSON text (keys sorted).
    pub metadata: Option<String>,
    /// The `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
}

/// The result of a create call that honours idempotency keys.
#[derive(Debug, Clone)]
pub struct Created<T> {
    /// The record.
    pub value: T,
    /// Whether this is the answer to an earlier request with the same key.
    pub replayed: bool,
}

/// Alipay's field-rule errors as the API's `invalid_field` / `invalid_amount`.
pub(super) fn alipay_field_error(e: alipay::Error) -> PaymentError {
    match e {
        alipay::Error::Field { field, problem } => {
            PaymentError::InvalidField(format!("`{field}` {problem}"))
        }
        alipay::Error::Amount { problem, .. } => PaymentError::InvalidAmount(problem.to_string()),
        other => PaymentError::Alipay(other),
    }
}

/// Creates a pending order.
///
/// # Errors
/// Rule violations ([`PaymentError::InvalidField`],
/// [`PaymentError::InvalidAmount`]), a reused key with another request,
/// a taken `out_trade_no`, store failures.
pub async fn create_order(
    st: &AppState,
    req: OrderRequest,
) -> Result<Created<Order>, PaymentError> {
    let expires = req
        .expires_in_minutes
        .unwrap_or(st.default_expiry_minutes());
    if !(1..=MAX_EXPIRY_MINUTES).contains(&expires) {
        return Err(PaymentError::InvalidField(format!(
            "`expires_in_minutes` must be between 1 and {MAX_EXPIRY_MINUTES}"
        )));
    }
    if req
        .metadata
        .as_ref()
        .is_some_and(|t| t.len() > MAX_METADATA_BYTES)
    {
        return Err(PaymentError::InvalidField(format!(
            "`metadata` is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    let out_trade_no = match &req.out_trade_no {
        Some(no) => OutTradeNo::new(no.clone()).map_err(alipay_field_error)?,
        None => OutTradeNo::new(format!("ZF{}", uuid::Uuid::now_v7().simple()))
            .map_err(PaymentError::Alipay)?,
    };
    // Alipay's own field rules (subject characters and length, body length,
    // amount range), checked before anything is stored.
    let mut probe = TradePagePay::new(out_trade_no.clone(), req.total, req.subject.clone());
    probe.body = req.body.clone();
    probe.validate().map_err(alipay_field_error)?;

    let hash = request_hash(&[
        "order",
        &req.subject,
        &req.total.fen().to_string(),
        req.body.as_deref().unwrap_or("\u{1}"),
        req.out_trade_no.as_deref().unwrap_or("\u{1}"),
        &expires.to_string(),
        req.metadata.as_deref().unwrap_or("\u{1}"),
    ]);
    let now = st.now_ms();
    let new = NewOrder {
        id: new_id("ord"),
        out_trade_no: out_trade_no.as_str().to_owned(),
        subject: req.subject,
        body: req.body,
        total_fen: fen(req.total),
        metadata: req.metadata,
        request_hash: req.idempotency_key.as_ref().map(|_| hash.clone()),
        idempotency_key: req.idempotency_key,
        created_at: now,
        expires_at: now + expires * 60_000,
    };
    match st.store().create_order(new).await {
        Ok(CreateOrderOutcome::Created(o)) => Ok(Created {
            value: o,
            replayed: false,
        }),
        Ok(CreateOrderOutcome::Existing(o)) => {
            if o.request_hash.as_deref() == Some(hash.as_str()) {
                Ok(Created {
                    value: o,
                    replayed: true,
                })
            } else {
                Err(PaymentError::IdempotencyKeyReused)
            }
        }
        Err(StoreError::Conflict("out_trade_no")) => Err(PaymentError::OutTradeNoTaken),
        Err(e) => Err(e.into()),
    }
}

/// The order with this id.
///
/// # Errors
/// [`PaymentError::OrderNotFound`], store failures.
pub async fn load(st: &AppState, id: &str) -> Result<Order, PaymentError> {
    if id.len() > 64 {
        return Err(PaymentError::OrderNotFound);
    }
    st.store()
        .get_order(id)
        .await?
        .ok_or(PaymentError::OrderNotFound)
}

/// What a merchant asks for when paying an order.
#[derive(Debug, Clone)]
pub struct PayRequest {
    /// How the buyer pays.
    pub channel: Channel,
    /// Where the buyer's browser lands (page and wap only).
    pub return_url: Option<String>,
    /// The buyer's `user_id` (jsapi only).
    pub buyer_id: Option<String>,
    /// The buyer's `open_id` (jsapi only).
    pub buyer_open_id: Option<String>,
}

/// What the buyer's device needs to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayParams {
    /// page, wap: send the browser to `url` (GET) or submit `form_html` (POST).
    Redirect {
        /// The signed gateway URL.
        url: String,
        /// An auto-submitting form with the same parameters.
        form_html: String,
    },
    /// qr: render `qr_code` as a QR code for the buyer to scan.
    QrCode(String),
    /// app: hand the order string to the Alipay app SDK.
    OrderString(String),
    /// jsapi: hand the trade number to `tradePay`.
    TradeNo(String),
}

impl PayRequest {
    /// Checks the fields that depend on the channel.
    fn validate(&self) -> Result<(), PaymentError> {
        if let Some(u) = &self.return_url {
            let ok = url::Url::parse(u)
                .ok()
                .is_some_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
            if !ok || u.len() > MAX_RETURN_URL_LEN {
                return Err(PaymentError::InvalidField(format!(
                    "`return_url` must be an absolute http(s) URL of at most {MAX_RETURN_URL_LEN} characters"
                )));
            }
            if !self.channel.has_return_url() {
                return Err(PaymentError::InvalidField(
                    "`return_url` applies to the page and wap channels only".into(),
                ));
            }
        }
        let has_buyer = self.buyer_id.is_some() || self.buyer_open_id.is_some();
        match self.channel {
            Channel::Jsapi if !has_buyer => Err(PaymentError::InvalidField(
                "channel jsapi needs `buyer_id` or `buyer_open_id`".into(),
            )),
            Channel::Jsapi => Ok(()),
            _ if has_buyer => Err(PaymentError::InvalidField(
                "`buyer_id` and `buyer_open_id` apply to the jsapi channel only".into(),
            )),
            _ => Ok(()),
        }
    }
}

fn pay_failure(e: alipay::Error) -> PaymentError {
    match &e {
        alipay::Error::Gateway(g)
            if matches!(g.reason(), "ACQ.TRADE_HAS_SUCCESS" | "ACQ.TRADE_HAS_CLOSE") =>
        {
            PaymentError::TradeNotPayable(g.reason().to_owned())
        }
        _ => PaymentError::Alipay(e),
    }
}

/// The payment parameters of a pending order for one channel: signed
/// locally (page, wap, app) or from Alipay (qr, jsapi). Records which
/// channel was offered; the payment state does not change.
///
/// # Errors
/// Channel rule violations, an order that is not pending or past its
/// deadline, Alipay or store failures.
pub async fn pay(st: &AppState, id: &str, req: PayRequest) -> Result<PayParams, PaymentError> {
    req.validate()?;
    let order = load(st, id).await?;
    if order.status != OrderStatus::Pending {
        return Err(PaymentError::NotPayable(order.status));
    }
    if st.now_ms() >= order.expires_at {
        return Err(PaymentError::Expired);
    }
    let no = OutTradeNo::new(order.out_trade_no.clone()).map_err(PaymentError::Alipay)?;
    let total = amount(order.total_fen, "total_fen")?;
    let deadline = from_epoch_ms(order.expires_at).ok_or(StoreError::Corrupt {
        column: "expires_at",
    })?;
    let time_expire = Some(alipay::time::format_beijing(deadline));
    let mut opts = RequestOptions::new().notify_url(st.notify_url());
    let core = st.alipay().core();
    let gateway = core.gateway();
    // The signed `timestamp` uses the real clock, as the AlipayClient does
    // (see `AppState::build`): the gateway checks it; the injected clock only
    // moves deadlines.
    let now = time::OffsetDateTime::now_utc();
    let return_url = req
        .return_url
        .clone()
        .unwrap_or_else(|| st.return_url().to_owned());
    let mut trade_no = None;
    let params = match req.channel {
        Channel::Page => {
            let mut r = TradePagePay::new(no, total, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            opts.return_url = Some(return_url);
            let signed = core
                .sign_request(&r, &opts, now)
                .map_err(PaymentError::Alipay)?;
            PayParams::Redirect {
                url: signed.to_get_url(gateway),
                form_html: signed.to_post_form(gateway),
            }
        }
        Channel::Wap => {
            let mut r = TradeWapPay::new(no, total, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            r.quit_url = Some(return_url.clone());
            opts.return_url = Some(return_url);
            let signed = core
                .sign_request(&r, &opts, now)
                .map_err(PaymentError::Alipay)?;
            PayParams::Redirect {
                url: signed.to_get_url(gateway),
                form_html: signed.to_post_form(gateway),
            }
        }
        Channel::App => {
            let mut r = TradeAppPay::new(no, total, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            let signed = core
                .sign_request(&r, &opts, now)
                .map_err(PaymentError::Alipay)?;
            PayParams::OrderString(signed.to_order_string())
        }
        Channel::Qr => {
            let mut r = TradePrecreate::new(no, total, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            let resp = st.call(&r, &opts).await.map_err(pay_failure)?;
            PayParams::QrCode(resp.qr_code)
        }
        Channel::Jsapi => {
            let mut r = TradeCreate::new(no, total, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            r.product_code = Some("JSAPI_PAY".into());
            r.buyer_id = req.buyer_id;
            r.buyer_open_id = req.buyer_open_id;
            r.validate().map_err(alipay_field_error)?;
            let resp = st.call(&r, &opts).await.map_err(pay_failure)?;
            trade_no = Some(resp.trade_no.clone());
            PayParams::TradeNo(resp.trade_no)
        }
    };
    // Parameters are handed out only while the order is still pending: a
    // close that got in between wins, and these are never shown.
    let recorded = st
        .store()
        .record_payment_attempt(
            &order.id,
            req.channel.as_str(),
            trade_no.as_deref(),
            st.now_ms(),
        )
        .await?;
    if !recorded {
        let now = load(st, &order.id).await?;
        return Err(PaymentError::NotPayable(now.status));
    }
    Ok(params)
}

//! What the Rust API and the control API hand out: a registered app, trades,
//! refunds and notification deliveries as views over the records, and the
//! report of a clock advance.

use alipay::AlipayPublicKey;
use serde::Serialize;

use crate::model::{Agreement, Attempt, Delivery, DeliveryState, Product, Trade, beijing, yuan};

/// An app as registered: what the merchant needs to talk to the sandbox.
#[derive(Debug, Clone)]
pub struct RegisteredApp {
    /// The app id to sign requests with.
    pub app_id: String,
    /// The merchant's payee id (`2088` + 12 digits), as in notifications.
    pub seller_id: String,
    /// The sandbox's "Alipay" public key: verifies responses and notifications.
    pub alipay_public_key: AlipayPublicKey,
}

/// What an explicit clock advance did.
#[derive(Debug, Clone, Serialize)]
pub struct AdvanceReport {
    /// The sandbox time after the advance (Beijing).
    pub now: String,
    /// Notification attempts made while draining.
    pub attempts: usize,
}

/// A trade as the control API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TradeView {
    /// App.
    pub app_id: String,
    /// Alipay trade number.
    pub trade_no: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// `page`, `wap`, `app`, `precreate`, `create`, `barcode`, `withholding`.
    pub product: Product,
    /// State (docs/protocol.md §5.3).
    pub trade_status: String,
    /// `"88.88"`.
    pub total_amount: String,
    /// Cumulative refunds, `"0.00"` when none.
    pub refund_fee: String,
    /// Subject.
    pub subject: String,
    /// Buyer id.
    pub buyer_id: String,
    /// Masked buyer login.
    pub buyer_logon_id: String,
    /// Seller id.
    pub seller_id: String,
    /// Creation time (Beijing).
    pub gmt_create: String,
    /// Payment time.
    pub gmt_payment: Option<String>,
    /// Close time.
    pub gmt_close: Option<String>,
    /// When an unpaid trade closes.
    pub time_expire: Option<String>,
    /// The order's notify_url.
    pub notify_url: Option<String>,
    /// Refunds.
    pub refunds: Vec<RefundView>,
}

/// One refund in a [`TradeView`].
#[derive(Debug, Clone, Serialize)]
pub struct RefundView {
    /// Refund request number.
    pub out_request_no: String,
    /// Amount.
    pub refund_amount: String,
    /// Time (Beijing).
    pub gmt_refund: String,
    /// `refund` or `cancel`.
    pub via: String,
}

/// A notification delivery as the control API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    /// Delivery id (for resend).
    pub id: u64,
    /// App.
    pub app_id: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// Alipay trade number.
    pub trade_no: String,
    /// Constant across attempts.
    pub notify_id: String,
    /// Target.
    pub notify_url: String,
    /// `trade_status` carried.
    pub trade_status: String,
    /// Why it was sent.
    pub event: String,
    /// The exact form body sent.
    pub body: String,
    /// `pending`, `delivered`, `gave_up`, `one_shot`.
    pub state: DeliveryState,
    /// Next scheduled attempt (Beijing), if any.
    pub next_attempt_at: Option<String>,
    /// Attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

pub(crate) fn trade_view(t: &Trade) -> TradeView {
    TradeView {
        app_id: t.app_id.clone(),
        trade_no: t.trade_no.clone(),
        out_trade_no: t.out_trade_no.clone(),
        product: t.terms.product,
        trade_status: t.status.as_str().to_owned(),
        total_amount: yuan(t.terms.total_fen),
        refund_fee: yuan(t.refunded_fen()),
        subject: t.terms.subject.clone(),
        buyer_id: t.buyer_id.clone(),
        buyer_logon_id: t.buyer_logon_id.clone(),
        seller_id: t.seller_id.clone(),
        gmt_create: beijing(t.gmt_create),
        gmt_payment: t.gmt_payment.map(beijing),
        gmt_close: t.gmt_close.map(beijing),
        time_expire: t.expires_at.map(beijing),
        notify_url: t.terms.notify_url.clone(),
        refunds: t
            .refunds
            .iter()
            .map(|r| RefundView {
                out_request_no: r.out_request_no.clone(),
                refund_amount: yuan(r.amount_fen),
                gmt_refund: beijing(r.at),
                via: r.via.clone(),
            })
            .collect(),
    }
}

pub(crate) fn delivery_view(d: &Delivery) -> NotificationView {
    NotificationView {
        id: d.id,
        app_id: d.app_id.clone(),
        out_trade_no: d.out_trade_no.clone(),
        trade_no: d.trade_no.clone(),
        notify_id: d.notify_id.clone(),
        notify_url: d.notify_url.clone(),
        trade_status: d.trade_status.clone(),
        event: d.event.clone(),
        body: d.body.clone(),
        state: d.state,
        next_attempt_at: d.next_attempt_at.map(beijing),
        attempts: d.attempts.clone(),
    }
}

/// An agreement as the control API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementView {
    /// App.
    pub app_id: String,
    /// Alipay's agreement number.
    pub agreement_no: String,
    /// The merchant's agreement number.
    pub external_agreement_no: Option<String>,
    /// `TEMP`, `NORMAL`, `STOP`, `UNSIGN`, or `DECLINED` (the buyer said no;
    /// unknown to the gateway APIs).
    pub status: String,
    /// Personal product code.
    pub personal_product_code: String,
    /// Signing scene.
    pub sign_scene: String,
    /// The signing page, while the buyer has not decided.
    pub sign_url: Option<String>,
    /// When signed (Beijing).
    pub sign_time: Option<String>,
    /// Successful deductions so far.
    pub deductions: u64,
    /// Their sum, `"88.88"`.
    pub deducted_amount: String,
}

pub(crate) fn agreement_view(a: &Agreement, public_url: &str) -> AgreementView {
    let open = a.status == crate::model::AgreementState::Temp && !a.declined;
    AgreementView {
        app_id: a.app_id.clone(),
        agreement_no: a.agreement_no.clone(),
        external_agreement_no: a.external_agreement_no.clone(),
        status: if a.declined {
            "DECLINED".to_owned()
        } else {
            a.status.as_str().to_owned()
        },
        personal_product_code: a.personal_product_code.clone(),
        sign_scene: a.sign_scene.clone(),
        sign_url: open.then(|| format!("{public_url}/sandbox/sign/{}", a.token)),
        sign_time: a.sign_time.map(beijing),
        deductions: a.deductions,
        deducted_amount: yuan(a.deducted_fen),
    }
}

//! The sandbox console for the developer, one language at a time: the
//! overview with every order and trade (`GET /sandbox/`), one trade with its
//! refunds, notifications and action buttons
//! (`GET /sandbox/trades/{app_id}/{out_trade_no}`), and the notification log
//! with resend buttons (`GET /sandbox/notifications`); the agreement list is
//! `console_agreements`. Tables stack into
//! label/value lines on a phone. The buttons post to `console_actions`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use alipay::TradeStatus;
use alipay::protocol::html_escape as esc;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::config::SandboxMode;
use crate::html::{
    attempt_kind_label, delivery_state_code, delivery_state_label, event_label, frame, mode_label,
    product_label, trade_status_label,
};
use crate::ids;
use crate::lang::Lang;
use crate::model::{Delivery, Product, Refund, beijing, yuan};
use crate::sandbox::Sandbox;
use crate::state::State;

/// Rows the overview and the notification log show at most.
pub(crate) const LIST_LIMIT: usize = 200;

/// The per-process form token: a page rendered by this process can act;
/// a forged form (or a page from before a restart) cannot.
pub(crate) fn form_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| ids::token(16))
}

fn token_field() -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        form_token()
    )
}

/// An order or trade as the console shows it: a trade once the buyer
/// opened the cashier, else the order the merchant signed.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    app_id: String,
    out_trade_no: String,
    trade_no: Option<String>,
    product: Product,
    /// A `trade_status`, or `NOT_OPENED` / `VOIDED` for an order without trade.
    pub state: String,
    total_fen: u64,
    pub refunded_fen: u64,
    subject: String,
    created_ms: i64,
    paid_ms: Option<i64>,
    closed_ms: Option<i64>,
    expires_ms: Option<i64>,
    buyer: Option<String>,
    cashier_token: Option<String>,
    notify_url: Option<String>,
    return_url: Option<String>,
    refunds: Vec<Refund>,
}

impl Row {
    fn detail_path(&self) -> String {
        trade_path(&self.app_id, &self.out_trade_no)
    }

    fn payable(&self) -> bool {
        self.state == "NOT_OPENED" || self.state == TradeStatus::WaitBuyerPay.as_str()
    }

    fn refundable_fen(&self) -> u64 {
        if self.state == TradeStatus::TradeSuccess.as_str() {
            self.total_fen.saturating_sub(self.refunded_fen)
        } else {
            0
        }
    }
}

pub(crate) fn trade_path(app_id: &str, out_trade_no: &str) -> String {
    format!(
        "/sandbox/trades/{}/{}",
        utf8_percent_encode(app_id, NON_ALPHANUMERIC),
        utf8_percent_encode(out_trade_no, NON_ALPHANUMERIC)
    )
}

fn rows(st: &State) -> Vec<Row> {
    let mut v: Vec<Row> = st
        .trades
        .values()
        .map(|t| Row {
            app_id: t.app_id.clone(),
            out_trade_no: t.out_trade_no.clone(),
            trade_no: Some(t.trade_no.clone()),
            product: t.terms.product,
            state: t.status.as_str().to_owned(),
            total_fen: t.terms.total_fen,
            refunded_fen: t.refunded_fen(),
            subject: t.terms.subject.clone(),
            created_ms: t.gmt_create,
            paid_ms: t.gmt_payment,
            closed_ms: t.gmt_close,
            expires_ms: t.expires_at,
            buyer: Some(t.buyer_logon_id.clone()),
            cashier_token: t.token.clone(),
            notify_url: t.terms.notify_url.clone(),
            return_url: t.terms.return_url.clone(),
            refunds: t.refunds.clone(),
        })
        .collect();
    v.extend(
        st.orders
            .values()
            .filter(|o| o.trade_no.is_none())
            .map(|o| Row {
                app_id: o.app_id.clone(),
                out_trade_no: o.out_trade_no.clone(),
                trade_no: None,
                product: o.terms.product,
                state: if o.voided { "VOIDED" } else { "NOT_OPENED" }.to_owned(),
                total_fen: o.terms.total_fen,
                refunded_fen: 0,
                subject: o.terms.subject.clone(),
                created_ms: o.created_at,
                paid_ms: None,
                closed_ms: None,
                expires_ms: o.expires_at,
                buyer: None,
                cashier_token: Some(o.token.clone()),
                notify_url: o.terms.notify_url.clone(),
                return_url: o.terms.return_url.clone(),
                refunds: Vec::new(),
            }),
    );
    v.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| b.out_trade_no.cmp(&a.out_trade_no))
    });
    v
}

pub(crate) fn find(st: &State, app_id: &str, out_trade_no: &str) -> Option<Row> {
    rows(st)
        .into_iter()
        .find(|r| r.app_id == app_id && r.out_trade_no == out_trade_no)
}

fn badge(lang: Lang, state: &str, id: Option<&str>) -> String {
    let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
    format!(
        "<span class=\"badge st-{}\"{id} data-status=\"{}\">{}</span>",
        esc(state),
        esc(state),
        trade_status_label(lang, state)
    )
}

fn delivery_badge(lang: Lang, d: &Delivery) -> String {
    let code = delivery_state_code(d.state);
    format!(
        "<span class=\"badge st-{code}\" data-state=\"{code}\">{}</span>",
        delivery_state_label(lang, d.state)
    )
}

/// `?done=` after an action, and the page's language choice.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    out_trade_no: Option<String>,
}

fn notice(lang: Lang, done: Option<&str>) -> String {
    let text = match done {
        Some("paid") => lang.pick(
            "买家已付款，支付宝正在通知商户。",
            "The buyer paid; Alipay is notifying the merchant.",
        ),
        Some("closed") => lang.pick("交易已关闭。", "The trade is closed."),
        Some("refunded") => lang.pick(
            "已退款，支付宝正在通知商户。",
            "Refunded; Alipay is notifying the merchant.",
        ),
        Some("silent") => lang.pick(
            "已完成。按这个产品的通知规则，支付宝不发送通知。",
            "Done. Alipay sends no notification for this on this product.",
        ),
        Some("resent") => lang.pick("通知已重发。", "The notification was sent again."),
        Some("advanced") => lang.pick(
            "时钟已推进，到期的事情已处理。",
            "The clock moved on; whatever became due has run.",
        ),
        _ => return String::new(),
    };
    format!("<p id=\"notice\" class=\"notice\" role=\"status\">{text}</p>")
}

pub(crate) fn respond(lang: Lang, chosen: bool, title: &str, body: &str) -> Response {
    lang.remember(frame(lang, title, body, true, true), chosen)
}

fn clock_section(sb: &Sandbox, lang: Lang, back: &str) -> String {
    let cfg = sb.config();
    let mut b = format!(
        "<dl><dt>{}</dt><dd><code id=\"gateway-url\">{}/gateway.do</code></dd>\
         <dt>{}</dt><dd id=\"mode\" data-mode=\"{}\">{}</dd>\
         <dt>{}</dt><dd id=\"clock\">{}</dd></dl>",
        lang.pick("网关", "Gateway"),
        esc(&cfg.public_url),
        lang.pick("模式", "Mode"),
        match cfg.mode {
            SandboxMode::Auto => "auto",
            SandboxMode::Explicit => "explicit",
        },
        mode_label(lang, cfg.mode),
        lang.pick("沙箱时间（北京）", "Sandbox time (Beijing)"),
        esc(&alipay::time::format_beijing(sb.now())),
    );
    if cfg.mode == SandboxMode::Explicit {
        let _ = write!(
            b,
            "<form class=\"actions\" method=\"post\" action=\"/sandbox/clock/advance\">{}\
             <input type=\"hidden\" name=\"back\" value=\"{}\">\
             <label for=\"advance-seconds\">{}<input id=\"advance-seconds\" name=\"seconds\" \
             type=\"number\" min=\"0\" max=\"31536000\" value=\"60\" inputmode=\"numeric\"></label>\
             <button id=\"action-advance\" type=\"submit\">{}</button></form>",
            token_field(),
            esc(back),
            lang.pick("推进秒数", "Seconds to advance"),
            lang.pick("推进时钟", "Advance the clock"),
        );
    }
    b
}

/// `GET /sandbox/`: the overview: gateway, clock, every order and trade.
pub(crate) async fn index(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let (all, apps) = {
        let st = sb.lock().await;
        let apps: Vec<(String, String)> = st
            .apps
            .values()
            .map(|a| (a.app_id.clone(), a.seller_id.clone()))
            .collect();
        (rows(&st), apps)
    };
    let mut b = format!(
        "<h1>{}</h1>{}{}",
        lang.pick("Zhifu 支付宝沙箱", "Zhifu Alipay sandbox"),
        notice(lang, q.done.as_deref()),
        clock_section(&sb, lang, "/sandbox/")
    );
    let _ = write!(
        b,
        "<h2 id=\"trades-heading\">{}</h2>",
        lang.pick("交易", "Trades")
    );
    if all.is_empty() {
        let _ = write!(
            b,
            "<p id=\"no-trades\">{}</p>",
            lang.pick("还没有订单。", "No orders yet.")
        );
    } else {
        let _ = write!(
            b,
            "<div class=\"table-wrap\"><table id=\"trades\" class=\"stack\" aria-labelledby=\"trades-heading\"><thead><tr>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            lang.pick("订单号", "Order no."),
            lang.pick("商品", "Item"),
            lang.pick("金额", "Amount"),
            lang.pick("状态", "State"),
            lang.pick("产品", "Product"),
            lang.pick("创建时间", "Created"),
        );
        for r in all.iter().take(LIST_LIMIT) {
            let _ = write!(
                b,
                "<tr data-out-trade-no=\"{}\"><td data-label=\"{}\"><a href=\"{}\">{}</a></td>\
                 <td data-label=\"{}\">{}</td><td data-label=\"{}\" class=\"num amount\">¥{}</td>\
                 <td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td></tr>",
                esc(&r.out_trade_no),
                lang.pick("订单号", "Order no."),
                esc(&r.detail_path()),
                esc(&r.out_trade_no),
                lang.pick("商品", "Item"),
                esc(&r.subject),
                lang.pick("金额", "Amount"),
                yuan(r.total_fen),
                lang.pick("状态", "State"),
                badge(lang, &r.state, None),
                lang.pick("产品", "Product"),
                product_label(lang, r.product),
                lang.pick("创建时间", "Created"),
                beijing(r.created_ms),
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let _ = write!(
        b,
        "<h2 id=\"apps-heading\">{}</h2><div class=\"table-wrap\"><table class=\"stack\" aria-labelledby=\"apps-heading\">\
         <thead><tr><th scope=\"col\">app_id</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("应用", "Apps"),
        lang.pick("商户号（seller_id）", "Merchant id (seller_id)"),
    );
    for (a, s) in &apps {
        let _ = write!(
            b,
            "<tr><td data-label=\"app_id\">{}</td><td data-label=\"seller_id\">{}</td></tr>",
            esc(a),
            esc(s)
        );
    }
    let _ = write!(
        b,
        "</tbody></table></div><h2>{}</h2><p><label for=\"alipay-public-key\">{}</label></p>\
         <textarea id=\"alipay-public-key\" readonly rows=\"4\">{}</textarea>",
        lang.pick("支付宝公钥", "Alipay public key"),
        lang.pick(
            "商户用它验证沙箱的应答和通知：",
            "Merchants verify the sandbox's answers and notifications with it:"
        ),
        sb.alipay_public_key().to_base64()
    );
    respond(lang, chosen, lang.pick("支付宝沙箱", "Alipay sandbox"), &b)
}

fn fact(b: &mut String, label: &str, value: &str, id: &str) {
    let id = if id.is_empty() {
        String::new()
    } else {
        format!(" id=\"{id}\"")
    };
    let _ = write!(b, "<dt>{label}</dt><dd{id}>{value}</dd>");
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".to_owned(), beijing)
}

/// `GET /sandbox/trades/{app_id}/{out_trade_no}`: one trade, its actions,
/// refunds and notifications.
pub(crate) async fn trade(
    AxumState(sb): AxumState<Sandbox>,
    Path((app_id, out_trade_no)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let (row, deliveries) = {
        let st = sb.lock().await;
        let row = find(&st, &app_id, &out_trade_no);
        let deliveries: Vec<Delivery> = st
            .deliveries
            .values()
            .rev()
            .filter(|d| d.app_id == app_id && d.out_trade_no == out_trade_no)
            .cloned()
            .collect();
        (row, deliveries)
    };
    let Some(r) = row else {
        let mut resp = respond(
            lang,
            chosen,
            lang.pick("未找到", "Not found"),
            &format!(
                "<h1>{}</h1><p>{}</p><p><a href=\"/sandbox/\">{}</a></p>",
                lang.pick("未找到", "Not found"),
                lang.pick("沙箱里没有这个订单。", "The sandbox holds no such order."),
                lang.pick("返回交易列表", "Back to the trades"),
            ),
        );
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return resp;
    };
    let path = r.detail_path();
    let mut b = format!(
        "<p><a href=\"/sandbox/\">{}</a></p><h1>{} <span id=\"out-trade-no\">{}</span></h1>{}",
        lang.pick("← 全部交易", "← All trades"),
        lang.pick("订单", "Order"),
        esc(&r.out_trade_no),
        notice(lang, q.done.as_deref()),
    );
    b.push_str("<dl>");
    fact(
        &mut b,
        lang.pick("状态", "State"),
        &badge(lang, &r.state, Some("trade-status")),
        "",
    );
    fact(
        &mut b,
        lang.pick("金额", "Amount"),
        &format!("¥{}", yuan(r.total_fen)),
        "trade-amount",
    );
    fact(
        &mut b,
        lang.pick("已退款", "Refunded"),
        &format!("¥{}", yuan(r.refunded_fen)),
        "trade-refunded",
    );
    fact(&mut b, lang.pick("商品", "Item"), &esc(&r.subject), "");
    fact(
        &mut b,
        lang.pick("产品", "Product"),
        product_label(lang, r.product),
        "",
    );
    fact(
        &mut b,
        lang.pick("支付宝交易号", "Alipay trade no."),
        &r.trade_no.as_deref().map_or_else(
            || {
                lang.pick(
                    "（买家打开收银台后生成）",
                    "(created when the buyer opens the checkout)",
                )
                .to_owned()
            },
            esc,
        ),
        "trade-no",
    );
    fact(&mut b, "app_id", &esc(&r.app_id), "");
    fact(
        &mut b,
        lang.pick("买家", "Buyer"),
        &r.buyer.as_deref().map_or_else(|| "—".to_owned(), esc),
        "",
    );
    fact(
        &mut b,
        lang.pick("创建时间", "Created"),
        &beijing(r.created_ms),
        "",
    );
    fact(
        &mut b,
        lang.pick("付款时间", "Paid at"),
        &when(r.paid_ms),
        "",
    );
    fact(
        &mut b,
        lang.pick("关闭时间", "Closed at"),
        &when(r.closed_ms),
        "",
    );
    fact(
        &mut b,
        lang.pick("过期时间", "Expires at"),
        &when(r.expires_ms),
        "",
    );
    let url = |u: &Option<String>| {
        u.as_deref()
            .map_or_else(|| "—".to_owned(), |u| format!("<code>{}</code>", esc(u)))
    };
    fact(
        &mut b,
        lang.pick("通知地址", "Notify URL"),
        &url(&r.notify_url),
        "",
    );
    fact(
        &mut b,
        lang.pick("返回地址", "Return URL"),
        &url(&r.return_url),
        "",
    );
    b.push_str("</dl>");

    // The actions this state allows, each the buyer's or Alipay's.
    let mut actions = String::new();
    if r.payable() {
        let _ = write!(
            actions,
            "<form method=\"post\" action=\"{p}/pay\">{t}<button id=\"action-pay\" class=\"primary\" type=\"submit\">{}</button></form>\
             <form method=\"post\" action=\"{p}/close\">{t}<button id=\"action-close\" class=\"danger\" type=\"submit\">{}</button></form>",
            lang.pick("以买家身份付款", "Pay as the buyer"),
            lang.pick("关闭交易（未付款）", "Close (unpaid)"),
            p = esc(&path),
            t = token_field(),
        );
        if let Some(tok) = &r.cashier_token {
            let _ = write!(
                actions,
                "<a id=\"open-cashier\" href=\"/sandbox/cashier/{}\">{}</a>",
                esc(tok),
                lang.pick("打开收银台", "Open the checkout page")
            );
        }
    }
    let left = r.refundable_fen();
    if left > 0 {
        let _ = write!(
            actions,
            "<form method=\"post\" action=\"{}/refund\">{}\
             <label for=\"refund-amount\">{}<input id=\"refund-amount\" name=\"amount\" type=\"text\" \
             inputmode=\"decimal\" autocomplete=\"off\" pattern=\"[0-9]+(\\.[0-9]{{1,2}})?\" aria-describedby=\"refund-help\"></label>\
             <button id=\"action-refund\" type=\"submit\">{}</button></form>\
             <p id=\"refund-help\" class=\"help\">{}</p>",
            esc(&path),
            token_field(),
            lang.pick("退款金额（元）", "Refund amount (yuan)"),
            lang.pick("退款", "Refund"),
            esc(&match lang {
                Lang::Zh => format!("可退 ¥{}；留空即全额退款。", yuan(left)),
                Lang::En => format!("Up to ¥{}; leave empty to refund all of it.", yuan(left)),
            }),
        );
    }
    if !actions.is_empty() {
        let _ = write!(
            b,
            "<h2>{}</h2><div class=\"actions\">{actions}</div>",
            lang.pick("操作", "Actions")
        );
    }
    if sb.config().mode == SandboxMode::Explicit {
        b.push_str(&clock_section(&sb, lang, &path));
    }

    if !r.refunds.is_empty() {
        let _ = write!(
            b,
            "<h2 id=\"refunds-heading\">{}</h2><div class=\"table-wrap\"><table class=\"stack\" aria-labelledby=\"refunds-heading\">\
             <thead><tr><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            lang.pick("退款记录", "Refunds"),
            lang.pick("退款请求号", "Refund request no."),
            lang.pick("金额", "Amount"),
            lang.pick("时间", "Time"),
        );
        for f in &r.refunds {
            let _ = write!(
                b,
                "<tr><td data-label=\"{}\">{}</td><td data-label=\"{}\" class=\"num\">¥{}</td><td data-label=\"{}\">{}</td></tr>",
                lang.pick("退款请求号", "Refund request no."),
                esc(&f.out_request_no),
                lang.pick("金额", "Amount"),
                yuan(f.amount_fen),
                lang.pick("时间", "Time"),
                beijing(f.at),
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let _ = write!(
        b,
        "<h2 id=\"notifications-heading\">{}</h2>",
        lang.pick("通知", "Notifications")
    );
    b.push_str(&deliveries_table(lang, &deliveries, &path));
    respond(
        lang,
        chosen,
        &format!("{} {}", lang.pick("订单", "Order"), r.out_trade_no),
        &b,
    )
}

/// The page a notification is about: an agreement notification's
/// `out_trade_no` is the merchant's agreement number, so it leads to the
/// agreement, not to a trade.
fn delivery_link(d: &Delivery) -> String {
    if d.event.starts_with("dut_user_") {
        format!(
            "/sandbox/agreements/{}",
            utf8_percent_encode(&d.trade_no, NON_ALPHANUMERIC)
        )
    } else {
        trade_path(&d.app_id, &d.out_trade_no)
    }
}

/// The notifications in `ds` with their resend buttons; `back` is the page
/// the buttons return to.
fn deliveries_table(lang: Lang, ds: &[Delivery], back: &str) -> String {
    if ds.is_empty() {
        return format!(
            "<p class=\"help\">{}</p>",
            lang.pick("还没有通知。", "No notifications yet.")
        );
    }
    let cols = [
        lang.pick("编号", "No."),
        lang.pick("订单号", "Order no."),
        lang.pick("事件", "Event"),
        lang.pick("交易状态", "Trade state"),
        lang.pick("投递", "Delivery"),
        lang.pick("最近应答", "Last answer"),
        lang.pick("操作", "Action"),
    ];
    let mut b = String::from(
        "<div class=\"table-wrap\"><table id=\"notifications\" class=\"stack\" aria-labelledby=\"notifications-heading\"><thead><tr>",
    );
    for c in cols {
        let _ = write!(b, "<th scope=\"col\">{c}</th>");
    }
    b.push_str("</tr></thead><tbody>");
    for d in ds.iter().take(LIST_LIMIT) {
        let last = d.attempts.last().map_or_else(
            || lang.pick("尚未发送", "Not sent yet").to_owned(),
            |a| {
                let answer = match (&a.http_status, &a.error) {
                    (Some(s), _) if a.success => format!("HTTP {s} success"),
                    (Some(s), _) => format!("HTTP {s}"),
                    (None, Some(_)) => lang.pick("连接失败", "Could not connect").to_owned(),
                    (None, None) => lang.pick("未发送", "Not sent").to_owned(),
                };
                format!(
                    "{} · {} · {}",
                    esc(&a.time),
                    attempt_kind_label(lang, &a.kind),
                    esc(&answer)
                )
            },
        );
        let _ = write!(
            b,
            "<tr data-delivery-id=\"{id}\"><td data-label=\"{}\">{id}</td>\
             <td data-label=\"{}\"><a href=\"{}\">{}</a></td><td data-label=\"{}\">{}</td>\
             <td data-label=\"{}\">{}</td><td data-label=\"{}\"><span>{} ({})</span></td><td data-label=\"{}\">{last}</td>\
             <td data-label=\"{}\"><form method=\"post\" action=\"/sandbox/notifications/{id}/resend\">{}\
             <input type=\"hidden\" name=\"back\" value=\"{}\">\
             <button type=\"submit\" class=\"resend\" aria-label=\"{} {id}\">{}</button></form></td></tr>",
            cols[0],
            cols[1],
            esc(&delivery_link(d)),
            esc(&d.out_trade_no),
            cols[2],
            event_label(lang, &d.event),
            cols[3],
            trade_status_label(lang, &d.trade_status),
            cols[4],
            delivery_badge(lang, d),
            match lang {
                Lang::Zh => format!("{} 次", d.attempts.len()),
                Lang::En => format!("{} attempts", d.attempts.len()),
            },
            cols[5],
            cols[6],
            token_field(),
            esc(back),
            lang.pick("重发通知", "Resend notification"),
            lang.pick("重发", "Resend"),
            id = d.id,
        );
    }
    b.push_str("</tbody></table></div>");
    b
}

/// `GET /sandbox/notifications`: every notification, newest first
/// (`?out_trade_no=` narrows it).
pub(crate) async fn notifications(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let ds: Vec<Delivery> = {
        let st = sb.lock().await;
        st.deliveries
            .values()
            .rev()
            .filter(|d| q.out_trade_no.as_ref().is_none_or(|o| &d.out_trade_no == o))
            .cloned()
            .collect()
    };
    let mut b = format!(
        "<h1 id=\"notifications-heading\">{}</h1>{}<p class=\"help\">{}</p>",
        lang.pick("支付宝通知", "Alipay notifications"),
        notice(lang, q.done.as_deref()),
        lang.pick(
            "沙箱发给商户 notify_url 的异步通知；商户应答 success 才算送达，否则按支付宝的间隔重试。",
            "What the sandbox POSTs to each merchant notify_url; only the answer success counts as delivered, anything else is retried on Alipay's schedule."
        ),
    );
    // The Resend buttons come back to this page with its filter.
    let back = match &q.out_trade_no {
        Some(o) => format!(
            "/sandbox/notifications?out_trade_no={}",
            utf8_percent_encode(o, NON_ALPHANUMERIC)
        ),
        None => "/sandbox/notifications".to_owned(),
    };
    b.push_str(&deliveries_table(lang, &ds, &back));
    respond(
        lang,
        chosen,
        lang.pick("支付宝通知", "Alipay notifications"),
        &b,
    )
}

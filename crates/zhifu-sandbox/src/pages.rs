//! What the buyer sees: the cashier (page/wap/app/QR), the app-pay stand-in
//! for the Alipay app, the scan page behind `qr_code`, the return redirect
//! with signed parameters (docs/protocol.md §6.7), bill downloads, and the
//! way back to the merchant after Cancel. Every page is in one language
//! (`lang`: Chinese unless the buyer switched).

use alipay::protocol::html_escape as esc;
use alipay::testing::form_body;
use alipay::{Charset, SignType, TradeStatus};
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::bill;
use crate::error::SandboxError;
use crate::gateway;
use crate::html::{error_page, frame, not_found, page, product_label, trade_status_label};
use crate::intake;
use crate::lang::{Lang, LangQuery};
use crate::model::{Product, Trade, millis, yuan};
use crate::sandbox::Sandbox;

/// A redirect to `to`, or `None` when it cannot be a `Location` header
/// (a merchant URL with raw non-ASCII or control characters).
fn redirect(to: &str) -> Option<Response> {
    HeaderValue::from_str(to)
        .ok()
        .map(|_| Redirect::to(to).into_response())
}

/// Where "back to the merchant" goes when the cashier could not redirect
/// there: the merchant's page (`quit_url`, else `return_url`), else the shop
/// page the buyer came from. Only http(s) URLs are linked.
fn merchant_link(return_url: Option<&str>, referrer: Option<&str>) -> Option<String> {
    let web = |u: &&str| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2048;
    return_url
        .filter(web)
        .or(referrer.filter(web))
        .map(str::to_owned)
}

/// The page that sent the buyer to the cashier, unless it is the sandbox
/// itself (a reload, or the console's link).
fn shop_referrer(headers: &HeaderMap) -> Option<String> {
    let r = headers.get(header::REFERER)?.to_str().ok()?;
    let after_scheme = r.split_once("://")?.1;
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    (!path.starts_with("/sandbox")).then(|| r.to_owned())
}

/// The cashier; `switch` offers the language switch (the GET page only: a
/// POST answer cannot be reloaded in another language).
fn cashier_html(
    lang: Lang,
    t: &Trade,
    token: &str,
    referrer: Option<&str>,
    switch: bool,
) -> Response {
    let status = t.status.as_str();
    let label = trade_status_label(lang, status);
    let actions = if t.status == TradeStatus::WaitBuyerPay {
        let back = referrer
            .map(|r| format!("<input type=\"hidden\" name=\"back\" value=\"{}\">", esc(r)))
            .unwrap_or_default();
        format!(
            "<div class=\"actions\"><form method=\"post\" action=\"/sandbox/cashier/{token}/pay\">\
             <button id=\"pay\" type=\"submit\">{}</button></form>\
             <form method=\"post\" action=\"/sandbox/cashier/{token}/cancel\">{back}\
             <button id=\"cancel\" type=\"submit\">{}</button></form></div>",
            lang.pick("确认付款", "Pay now"),
            lang.pick("取消", "Cancel"),
        )
    } else {
        format!(
            "<p id=\"done\">{}{label}</p>",
            lang.pick("交易状态：", "Trade state: ")
        )
    };
    let body = format!(
        "<h1>{} · {}</h1>\
         <div class=\"amount\">¥<span id=\"amount\">{}</span></div>\
         <dl><dt>{}</dt><dd id=\"subject\">{}</dd>\
         <dt>{}</dt><dd id=\"merchant\">{} {} ({})</dd>\
         <dt>{}</dt><dd id=\"out_trade_no\">{}</dd>\
         <dt>{}</dt><dd id=\"trade_no\">{}</dd>\
         <dt>{}</dt><dd>{}</dd>\
         <dt>{}</dt><dd id=\"status\" data-status=\"{status}\">{label}</dd></dl>{actions}",
        lang.pick("支付宝收银台", "Alipay checkout"),
        esc(product_label(lang, t.terms.product)),
        yuan(t.terms.total_fen),
        lang.pick("商品", "Item"),
        esc(&t.terms.subject),
        lang.pick("收款方", "Payee"),
        lang.pick("沙箱商户", "Sandbox merchant"),
        esc(&t.app_id),
        esc(&t.seller_id),
        lang.pick("订单号", "Order no."),
        esc(&t.out_trade_no),
        lang.pick("交易号", "Trade no."),
        esc(&t.trade_no),
        lang.pick("付款账户", "Paying account"),
        esc(&t.buyer_logon_id),
        lang.pick("状态", "State"),
    );
    frame(
        lang,
        lang.pick("支付宝收银台", "Alipay checkout"),
        &body,
        false,
        switch,
    )
}

fn gone(lang: Lang) -> Response {
    not_found(
        lang,
        lang.pick("这个收银台链接不存在", "This checkout link does not exist"),
    )
}

/// `GET /sandbox/cashier/{token}` and `GET /sandbox/scan/{token}`: the
/// buyer opens the cashier (or scans the QR code), so the trade exists now.
pub(crate) async fn cashier(
    State(sb): State<Sandbox>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let mut st = sb.lock().await;
    if !st.orders.contains_key(&token) {
        return gone(lang);
    }
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let trade_no = match st.open_order(&token, &ctx) {
        Ok(t) => t,
        Err(e) => {
            return error_page(
                "40004",
                "ACQ.TRADE_HAS_CLOSE",
                &format!("交易已经关闭（{e}）"),
            );
        }
    };
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
    }
    let referrer = shop_referrer(&headers);
    let r = cashier_html(
        lang,
        &st.trades[&trade_no],
        &token,
        referrer.as_deref(),
        true,
    );
    lang.remember(r, chosen)
}

/// `POST /sandbox/cashier/{token}/pay`: the buyer pays.
pub(crate) async fn cashier_pay(
    State(sb): State<Sandbox>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (lang, _) = Lang::of(&headers, None);
    let mut st = sb.lock().await;
    if !st.orders.contains_key(&token) {
        return gone(lang);
    }
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let trade_no = match st.open_order(&token, &ctx) {
        Ok(t) => t,
        Err(e) => {
            return error_page(
                "40004",
                "ACQ.TRADE_HAS_CLOSE",
                &format!("交易已经关闭（{e}）"),
            );
        }
    };
    if st.trades[&trade_no].status == TradeStatus::WaitBuyerPay
        && let Err(e) = st.pay_trade(&trade_no, &ctx)
    {
        return error_page("40004", "ACQ.TRADE_STATUS_ERROR", &e.to_string());
    }
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
    }
    let t = st.trades[&trade_no].clone();
    drop(st);
    if !t.status.is_paid() && t.refunds.is_empty() {
        return cashier_html(lang, &t, &token, None, false);
    }
    match (t.terms.product, t.terms.return_url.as_deref()) {
        (Product::Page | Product::Wap, Some(url)) => match return_url(&sb, &t, url) {
            Ok(to) => redirect(&to).unwrap_or_else(|| {
                error_page(
                    "40004",
                    "isv.invalid-return-url",
                    "return_url 不是有效的网址",
                )
            }),
            Err(e) => error_page("20000", "isp.unknow-error", &e.to_string()),
        },
        (Product::App, _) => app_result(&sb, lang, &t),
        _ => page(
            lang,
            lang.pick("支付成功", "Paid"),
            &format!(
                "<h1>{}</h1><div class=\"amount\">¥<span id=\"amount\">{}</span></div>\
                 <dl><dt>{}</dt><dd id=\"subject\">{}</dd><dt>{}</dt><dd id=\"trade_no\">{}</dd></dl>",
                lang.pick("支付成功", "Paid"),
                yuan(t.terms.total_fen),
                lang.pick("商品", "Item"),
                esc(&t.terms.subject),
                lang.pick("交易号", "Trade no."),
                esc(&t.trade_no)
            ),
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CancelForm {
    #[serde(default)]
    back: Option<String>,
}

/// `POST /sandbox/cashier/{token}/cancel`: the buyer walks away. The trade
/// stays `WAIT_BUYER_PAY` until it times out, as on the real cashier. The
/// buyer goes to the order's `quit_url`, or gets a link back to the
/// merchant (`return_url`, else the shop page they came from).
pub(crate) async fn cashier_cancel(
    State(sb): State<Sandbox>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<Form<CancelForm>, FormRejection>,
) -> Response {
    let (lang, _) = Lang::of(&headers, None);
    let st = sb.lock().await;
    let Some(o) = st.orders.get(&token) else {
        return gone(lang);
    };
    if let Some(r) = o.terms.quit_url.as_deref().and_then(redirect) {
        return r;
    }
    // A cancel without a form body (a script) simply has no referrer.
    let back = form.ok().and_then(|Form(f)| f.back);
    let merchant = o
        .terms
        .quit_url
        .as_deref()
        .or(o.terms.return_url.as_deref());
    let link = merchant_link(merchant, back.as_deref())
        .map(|u| {
            format!(
                "<p><a id=\"back-to-merchant\" href=\"{}\">{}</a></p>",
                esc(&u),
                lang.pick("返回商家", "Back to the merchant")
            )
        })
        .unwrap_or_default();
    page(
        lang,
        lang.pick("已取消", "Cancelled"),
        &format!(
            "<h1>{}</h1><p id=\"cancelled\">{}</p>{link}",
            lang.pick("您已取消付款", "You cancelled the payment"),
            lang.pick(
                "订单仍可在有效期内重新支付。",
                "The order can still be paid until it expires."
            ),
        ),
    )
}

/// The synchronous return of docs/protocol.md §6.7: `return_url` plus signed parameters.
fn return_url(sb: &Sandbox, t: &Trade, url: &str) -> Result<String, SandboxError> {
    let charset = Charset::parse(&t.terms.charset).unwrap_or(Charset::Utf8);
    let sign_type = SignType::parse(&t.terms.sign_type).unwrap_or(SignType::Rsa2);
    let p: Vec<(String, String)> = vec![
        ("charset".into(), charset.as_str().into()),
        ("out_trade_no".into(), t.out_trade_no.clone()),
        (
            "method".into(),
            t.terms.product.return_method().unwrap_or_default().into(),
        ),
        ("total_amount".into(), yuan(t.terms.total_fen)),
        ("trade_no".into(), t.trade_no.clone()),
        ("auth_app_id".into(), t.app_id.clone()),
        ("version".into(), "1.0".into()),
        ("app_id".into(), t.app_id.clone()),
        ("seller_id".into(), t.seller_id.clone()),
        ("timestamp".into(), alipay::time::format_beijing(sb.now())),
    ];
    let p = sb.signer().sign_notification(p, sign_type, charset)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}{}", form_body(&p, charset)))
}

/// What the Alipay app SDK hands back after app pay (docs/protocol.md §5.2): `resultStatus`
/// 9000 and a signed `result` JSON.
fn app_result(sb: &Sandbox, lang: Lang, t: &Trade) -> Response {
    let sign_type = SignType::parse(&t.terms.sign_type).unwrap_or(SignType::Rsa2);
    let mut node = Map::new();
    node.insert("code".into(), "10000".into());
    node.insert("msg".into(), "Success".into());
    node.insert("app_id".into(), t.app_id.clone().into());
    node.insert("auth_app_id".into(), t.app_id.clone().into());
    node.insert("charset".into(), t.terms.charset.clone().into());
    node.insert(
        "timestamp".into(),
        alipay::time::format_beijing(sb.now()).into(),
    );
    node.insert("out_trade_no".into(), t.out_trade_no.clone().into());
    node.insert("total_amount".into(), yuan(t.terms.total_fen).into());
    node.insert("trade_no".into(), t.trade_no.clone().into());
    node.insert("seller_id".into(), t.seller_id.clone().into());
    let text = Value::Object(node).to_string();
    let sign = sb
        .signer()
        .sign(sign_type, text.as_bytes())
        .unwrap_or_default();
    let result = format!(
        "{{\"alipay_trade_app_pay_response\":{text},\"sign\":\"{sign}\",\"sign_type\":\"{}\"}}",
        sign_type.as_str()
    );
    page(
        lang,
        lang.pick("支付结果", "Payment result"),
        &format!(
            "<h1>{}</h1><dl><dt>resultStatus</dt><dd id=\"resultStatus\">9000</dd>\
             <dt>memo</dt><dd>{}</dd></dl><p>result:</p><pre id=\"result\">{}</pre>",
            lang.pick("支付成功", "Paid"),
            lang.pick("处理成功", "Processed"),
            esc(&result)
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct OrderString {
    #[serde(default)]
    order_string: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

/// `GET /sandbox/app-pay`: paste an app-pay order string (what the Alipay
/// app receives); `?order_string=` opens it directly.
pub(crate) async fn app_pay_form(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<OrderString>,
) -> Response {
    if let Some(s) = q.order_string.filter(|s| !s.is_empty()) {
        return open_order_string(&sb, &s).await;
    }
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let title = lang.pick("支付宝 App（沙箱）", "Alipay app (sandbox)");
    let body = format!(
        "<h1>{title}</h1><form method=\"post\" action=\"/sandbox/app-pay\">\
         <p><label for=\"order_string\">{}</label></p>\
         <textarea name=\"order_string\" id=\"order_string\" rows=\"8\"></textarea>\
         <p><button id=\"open\" type=\"submit\">{}</button></p></form>",
        lang.pick(
            "粘贴 alipay.trade.app.pay 的订单串（orderStr）：",
            "Paste the order string (orderStr) of alipay.trade.app.pay:"
        ),
        lang.pick("打开订单", "Open the order"),
    );
    lang.remember(frame(lang, title, &body, false, true), chosen)
}

/// `POST /sandbox/app-pay`: the app verifies the order string like the
/// gateway would and shows the cashier.
pub(crate) async fn app_pay_submit(
    State(sb): State<Sandbox>,
    Form(f): Form<OrderString>,
) -> Response {
    match f.order_string {
        Some(s) if !s.is_empty() => open_order_string(&sb, &s).await,
        _ => error_page("40001", "isv.missing-parameter", "缺少订单串"),
    }
}

async fn open_order_string(sb: &Sandbox, s: &str) -> Response {
    let cfg = sb.config();
    let params = match intake::intake(
        s.trim().as_bytes(),
        b"",
        Charset::Utf8,
        cfg.duplicate_params,
    ) {
        Ok(p) => p,
        Err(r) => return error_page(r.code, r.sub_code, &r.sub_msg),
    };
    let checked = match intake::check(sb, &params).await {
        Ok(c) => c,
        Err(r) => return error_page(r.code, r.sub_code, &r.sub_msg),
    };
    if checked.method != "alipay.trade.app.pay" {
        return error_page(
            "40002",
            "isv.invalid-method",
            "订单串的 method 必须是 alipay.trade.app.pay",
        );
    }
    match gateway::place(sb, &checked, Product::App).await {
        Ok(token) => Redirect::to(&format!("/sandbox/cashier/{token}")).into_response(),
        Err(e) => error_page(e.code, e.sub_code, &e.sub_msg),
    }
}

/// `GET /sandbox/bills/{token}`: the bill, while the link is valid.
pub(crate) async fn bill(State(sb): State<Sandbox>, Path(token): Path<String>) -> Response {
    let st = sb.lock().await;
    let now = sb.now();
    match st.bills.get(&token) {
        Some(b) if b.expires_at > millis(now) => {
            let csv = bill::render(&st, b, now);
            let name = format!("{}_{}_{}.csv", b.app_id, b.bill_type, b.bill_date);
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                csv,
            )
                .into_response()
        }
        _ => not_found(Lang::Zh, "账单链接不存在或已过期"),
    }
}

//! What the buyer sees: the cashier (page/wap/app/QR), the app-pay stand-in
//! for the Alipay app, the scan page behind `qr_code`, the return redirect
//! with signed parameters (docs/protocol.md §6.7), bill downloads, and the overview page.

use alipay::protocol::html_escape as esc;
use alipay::testing::form_body;
use alipay::{Charset, SignType, TradeStatus};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::bill;
use crate::error::SandboxError;
use crate::gateway;
use crate::html::{error_page, not_found, page};
use crate::intake;
use crate::model::{Product, Trade, millis, yuan};
use crate::sandbox::Sandbox;

fn cashier_html(t: &Trade, token: &str) -> Response {
    let status = t.status.as_str();
    let actions = if t.status == TradeStatus::WaitBuyerPay {
        format!(
            "<form method=\"post\" action=\"/sandbox/cashier/{token}/pay\" style=\"display:inline\">\
             <button id=\"pay\" type=\"submit\">Pay 确认付款</button></form>\
             <form method=\"post\" action=\"/sandbox/cashier/{token}/cancel\" style=\"display:inline\">\
             <button id=\"cancel\" type=\"submit\">Cancel 取消</button></form>"
        )
    } else {
        format!("<p id=\"done\">交易状态：{status}</p>")
    };
    let body = format!(
        "<h1>支付宝收银台 · {}</h1>\
         <div class=\"amount\">¥<span id=\"amount\">{}</span></div>\
         <dl><dt>商品</dt><dd id=\"subject\">{}</dd>\
         <dt>收款方</dt><dd id=\"merchant\">沙箱商户 {} ({})</dd>\
         <dt>订单号</dt><dd id=\"out_trade_no\">{}</dd>\
         <dt>交易号</dt><dd id=\"trade_no\">{}</dd>\
         <dt>付款账户</dt><dd>{}</dd>\
         <dt>状态</dt><dd id=\"status\">{status}</dd></dl>{actions}",
        esc(t.terms.product.label()),
        yuan(t.terms.total_fen),
        esc(&t.terms.subject),
        esc(&t.app_id),
        esc(&t.seller_id),
        esc(&t.out_trade_no),
        esc(&t.trade_no),
        esc(&t.buyer_logon_id),
    );
    page("支付宝收银台", &body)
}

/// `GET /sandbox/cashier/{token}` and `GET /sandbox/scan/{token}`: the
/// buyer opens the cashier (or scans the QR code), so the trade exists now.
pub(crate) async fn cashier(State(sb): State<Sandbox>, Path(token): Path<String>) -> Response {
    let mut st = sb.lock().await;
    if !st.orders.contains_key(&token) {
        return not_found("这个收银台链接不存在");
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
    cashier_html(&st.trades[&trade_no], &token)
}

/// `POST /sandbox/cashier/{token}/pay`: the buyer pays.
pub(crate) async fn cashier_pay(State(sb): State<Sandbox>, Path(token): Path<String>) -> Response {
    let mut st = sb.lock().await;
    if !st.orders.contains_key(&token) {
        return not_found("这个收银台链接不存在");
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
        return cashier_html(&t, &token);
    }
    match (t.terms.product, t.terms.return_url.as_deref()) {
        (Product::Page | Product::Wap, Some(url)) => match return_url(&sb, &t, url) {
            Ok(to) => Redirect::to(&to).into_response(),
            Err(e) => error_page("20000", "isp.unknow-error", &e.to_string()),
        },
        (Product::App, _) => app_result(&sb, &t),
        _ => page(
            "支付成功",
            &format!(
                "<h1>支付成功</h1><div class=\"amount\">¥<span id=\"amount\">{}</span></div>\
                 <dl><dt>商品</dt><dd id=\"subject\">{}</dd><dt>交易号</dt><dd id=\"trade_no\">{}</dd></dl>",
                yuan(t.terms.total_fen),
                esc(&t.terms.subject),
                esc(&t.trade_no)
            ),
        ),
    }
}

/// `POST /sandbox/cashier/{token}/cancel`: the buyer walks away. The trade
/// stays `WAIT_BUYER_PAY` until it times out, as on the real cashier.
pub(crate) async fn cashier_cancel(
    State(sb): State<Sandbox>,
    Path(token): Path<String>,
) -> Response {
    let st = sb.lock().await;
    let Some(o) = st.orders.get(&token) else {
        return not_found("这个收银台链接不存在");
    };
    if let Some(q) = o.terms.quit_url.clone() {
        return Redirect::to(&q).into_response();
    }
    page(
        "已取消",
        "<h1>您已取消付款</h1><p id=\"cancelled\">订单仍可在有效期内重新支付。</p>",
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
fn app_result(sb: &Sandbox, t: &Trade) -> Response {
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
        "支付结果",
        &format!(
            "<h1>支付成功</h1><dl><dt>resultStatus</dt><dd id=\"resultStatus\">9000</dd>\
             <dt>memo</dt><dd>处理成功</dd></dl><p>result:</p><pre id=\"result\" style=\"white-space:pre-wrap;word-break:break-all\">{}</pre>",
            esc(&result)
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct OrderString {
    #[serde(default)]
    order_string: Option<String>,
}

/// `GET /sandbox/app-pay`: paste an app-pay order string (what the Alipay
/// app receives); `?order_string=` opens it directly.
pub(crate) async fn app_pay_form(
    State(sb): State<Sandbox>,
    Query(q): Query<OrderString>,
) -> Response {
    if let Some(s) = q.order_string.filter(|s| !s.is_empty()) {
        return open_order_string(&sb, &s).await;
    }
    page(
        "支付宝 App（沙箱）",
        "<h1>支付宝 App（沙箱）</h1><p>粘贴 <code>alipay.trade.app.pay</code> 的订单串（orderStr）：</p>\
         <form method=\"post\" action=\"/sandbox/app-pay\"><textarea name=\"order_string\" id=\"order_string\" rows=\"8\" style=\"width:100%\"></textarea>\
         <p><button id=\"open\" type=\"submit\">打开订单</button></p></form>",
    )
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
        _ => not_found("账单链接不存在或已过期"),
    }
}

/// `GET /sandbox/`: an overview for humans.
pub(crate) async fn index(State(sb): State<Sandbox>) -> Response {
    let apps = sb.apps().await;
    let trades = sb.trades().await;
    let notes = sb.notifications().await;
    let mut b = String::from("<h1>Zhifu 支付宝沙箱</h1>");
    b.push_str(&format!(
        "<p>网关：<code>{}/gateway.do</code><br>模式：{:?}，time_scale={}</p>",
        esc(&sb.config().public_url),
        sb.config().mode,
        sb.config().time_scale
    ));
    b.push_str(&format!(
        "<p>支付宝公钥：</p><textarea readonly rows=\"4\" style=\"width:100%\">{}</textarea>",
        sb.alipay_public_key().to_base64()
    ));
    b.push_str("<h2>Apps</h2><table><tr><th>app_id</th><th>seller_id</th></tr>");
    for (a, s) in apps {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&a),
            esc(&s)
        ));
    }
    b.push_str("</table><h2>Trades</h2><table><tr><th>out_trade_no</th><th>状态</th><th>金额</th><th>退款</th></tr>");
    for t in trades.iter().take(50) {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.out_trade_no),
            esc(&t.trade_status),
            esc(&t.total_amount),
            esc(&t.refund_fee)
        ));
    }
    b.push_str("</table><h2>Notifications</h2><table><tr><th>id</th><th>out_trade_no</th><th>status</th><th>state</th><th>attempts</th></tr>");
    for n in notes.iter().take(50) {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td></tr>",
            n.id,
            esc(&n.out_trade_no),
            esc(&n.trade_status),
            n.state,
            n.attempts.len()
        ));
    }
    b.push_str("</table>");
    page("Zhifu sandbox", &b)
}

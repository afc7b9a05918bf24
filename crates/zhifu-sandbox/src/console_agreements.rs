//! The console's agreement list (`GET /sandbox/agreements`): every
//! recurring agreement (周期扣款), newest first, with its state, deductions
//! and the amount taken so far. Pausing, resuming and unsigning are the
//! buyer's to do, so each row links to the buyer's agreement page
//! (`agreement_pages`) rather than carrying buttons of its own; an
//! agreement still waiting for the buyer links to its signing page.

use std::fmt::Write as _;

use alipay::protocol::html_escape as esc;
use axum::extract::{Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::agreement_pages::status_label;
use crate::console::{LIST_LIMIT, respond};
use crate::lang::{Lang, LangQuery};
use crate::model::{Agreement, AgreementState, beijing, yuan};
use crate::sandbox::Sandbox;

/// The state code a row shows: the gateway's, or `DECLINED` for an
/// agreement the buyer refused (unknown to the gateway APIs).
fn state_code(a: &Agreement) -> &'static str {
    if a.declined {
        "DECLINED"
    } else {
        a.status.as_str()
    }
}

fn period_text(lang: Lang, a: &Agreement) -> String {
    match (&a.period_type, a.period) {
        (Some(t), Some(n)) => match (lang, t.as_str()) {
            (Lang::Zh, "DAY") => format!("每 {n} 天"),
            (Lang::Zh, _) => format!("每 {n} 个月"),
            (Lang::En, "DAY") => format!("every {n} day(s)"),
            (Lang::En, _) => format!("every {n} month(s)"),
        },
        _ => "—".to_owned(),
    }
}

/// Where a row sends the developer: the signing page while the buyer has
/// not decided, the buyer's agreement page once signed, nowhere once
/// declined (the buyer's page does not exist for it).
fn open_link(lang: Lang, a: &Agreement) -> String {
    if a.declined {
        return "—".to_owned();
    }
    let (href, label) = match a.status {
        AgreementState::Temp => (
            format!("/sandbox/sign/{}", a.token),
            lang.pick("打开签约页", "Open the signing page"),
        ),
        AgreementState::Normal | AgreementState::Stop => (
            format!("/sandbox/agreements/{}", a.agreement_no),
            lang.pick("暂停、恢复或解约", "Pause, resume or end"),
        ),
        AgreementState::Unsign => (
            format!("/sandbox/agreements/{}", a.agreement_no),
            lang.pick("查看", "View"),
        ),
    };
    format!(
        "<a class=\"open-agreement\" href=\"{}\">{label}</a>",
        esc(&href)
    )
}

/// `GET /sandbox/agreements`: the agreement list.
pub(crate) async fn agreements(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let mut all: Vec<Agreement> = {
        let st = sb.lock().await;
        st.agreements.values().cloned().collect()
    };
    all.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.agreement_no.cmp(&a.agreement_no))
    });
    let title = lang.pick("周期扣款协议", "Recurring agreements");
    let mut b = format!(
        "<h1 id=\"agreements-heading\">{title}</h1><p class=\"help\">{}</p>",
        lang.pick(
            "商户用 alipay.user.agreement.page.sign 发起签约，买家在签约页同意后协议生效；扣款用 alipay.trade.pay（GENERAL_WITHHOLDING）。暂停、恢复和解约在买家的协议页上。",
            "Merchants start signing with alipay.user.agreement.page.sign; the agreement is in force once the buyer agrees on the signing page; deductions are alipay.trade.pay with GENERAL_WITHHOLDING. Pausing, resuming and ending are on the buyer's agreement page."
        ),
    );
    if all.is_empty() {
        let _ = write!(
            b,
            "<p id=\"no-agreements\">{}</p>",
            lang.pick("还没有协议。", "No agreements yet.")
        );
        return respond(lang, chosen, title, &b);
    }
    let cols = [
        lang.pick("协议号", "Agreement no."),
        lang.pick("商户协议号", "Merchant's agreement no."),
        lang.pick("状态", "State"),
        lang.pick("扣款周期", "Period"),
        lang.pick("扣款次数", "Deductions"),
        lang.pick("已扣金额", "Deducted"),
        lang.pick("签约时间", "Signed"),
        lang.pick("买家操作", "Buyer's page"),
    ];
    b.push_str(
        "<div class=\"table-wrap\"><table id=\"agreements\" class=\"stack\" aria-labelledby=\"agreements-heading\"><thead><tr>",
    );
    for (i, c) in cols.iter().enumerate() {
        let class = if i == 4 || i == 5 {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(b, "<th scope=\"col\"{class}>{c}</th>");
    }
    b.push_str("</tr></thead><tbody>");
    for a in all.iter().take(LIST_LIMIT) {
        let code = state_code(a);
        let _ = write!(
            b,
            "<tr data-agreement-no=\"{no}\"><td data-label=\"{}\"><code>{no}</code></td>\
             <td data-label=\"{}\">{}</td>\
             <td data-label=\"{}\"><span class=\"badge st-{code}\" data-status=\"{code}\">{}</span></td>\
             <td data-label=\"{}\">{}</td>\
             <td data-label=\"{}\" class=\"num deductions\">{}</td>\
             <td data-label=\"{}\" class=\"num deducted\">¥{}</td>\
             <td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td></tr>",
            cols[0],
            cols[1],
            esc(a.external_agreement_no.as_deref().unwrap_or("—")),
            cols[2],
            status_label(lang, a),
            cols[3],
            esc(&period_text(lang, a)),
            cols[4],
            a.deductions,
            cols[5],
            yuan(a.deducted_fen),
            cols[6],
            a.sign_time.map_or_else(|| "—".to_owned(), beijing),
            cols[7],
            open_link(lang, a),
            no = esc(&a.agreement_no),
        );
    }
    b.push_str("</tbody></table></div>");
    respond(lang, chosen, title, &b)
}

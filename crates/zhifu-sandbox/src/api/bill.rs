//! `alipay.data.dataservice.bill.downloadurl.query` and the bill behind its
//! link: a CSV in the layout of Alipay's 业务明细 (acquiring) bill, built
//! from the sandbox's own trades and refunds.

use serde_json::Map;
use time::{Date, Month, OffsetDateTime};

use crate::ids;
use crate::model::{beijing, beijing_date_digits, millis, yuan};
use crate::state::{Bill, Ctx, State};
use crate::wire::{Biz, BizError, Reply};

/// Hands out a short-lived download link for a past day or month.
pub(crate) fn bill_url(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let bill_type = biz.req("bill_type")?;
    let bill_date = biz.req("bill_date")?;
    if !matches!(bill_type.as_str(), "trade" | "signcustomer") {
        return Err(BizError::invalid("bill_type 只能是 trade 或 signcustomer"));
    }
    let today = beijing_date_digits(ctx.now);
    let date_digits: String = bill_date.chars().filter(char::is_ascii_digit).collect();
    let shape_ok = date_range(&bill_date).is_some();
    if !shape_ok {
        return Err(BizError::invalid("bill_date 格式错误"));
    }
    // Bills exist for past periods only.
    if date_digits.as_str() >= &today[..date_digits.len()] {
        return Err(BizError {
            code: "40004",
            msg: "Business Failed",
            sub_code: "isp.bill_not_exist",
            sub_msg: "账单不存在".into(),
            extra: Vec::new(),
        });
    }
    let token = ids::token(16);
    let ttl = ctx.cfg.bill_url_ttl.as_millis().min(i64::MAX as u128) as i64;
    st.bills.insert(
        token.clone(),
        Bill {
            app_id: app_id.to_owned(),
            bill_type,
            bill_date,
            expires_at: ctx.now_ms() + ttl,
        },
    );
    let mut f = Map::new();
    f.insert(
        "bill_download_url".into(),
        format!("{}/sandbox/bills/{token}", ctx.cfg.public_url).into(),
    );
    Ok(Reply::success(f))
}

/// `yyyy-MM-dd` or `yyyy-MM` → `[start, end)` in epoch ms (Beijing days).
pub(crate) fn date_range(bill_date: &str) -> Option<(i64, i64)> {
    let parts: Vec<&str> = bill_date.split('-').collect();
    let num = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i32>().ok())
            .flatten()
    };
    let year = num(parts.first()?, 4)?;
    let month = Month::try_from(u8::try_from(num(parts.get(1)?, 2)?).ok()?).ok()?;
    let at = |d: Date| millis(d.midnight().assume_offset(alipay::time::BEIJING));
    match parts.len() {
        2 => {
            let start = Date::from_calendar_date(year, month, 1).ok()?;
            let (ny, nm) = if month == Month::December {
                (year + 1, Month::January)
            } else {
                (year, month.next())
            };
            let end = Date::from_calendar_date(ny, nm, 1).ok()?;
            Some((at(start), at(end)))
        }
        3 => {
            let day = u8::try_from(num(parts[2], 2)?).ok()?;
            let start = Date::from_calendar_date(year, month, day).ok()?;
            Some((at(start), at(start.next_day()?)))
        }
        _ => None,
    }
}

fn cn_time(ms: i64) -> String {
    let s = beijing(ms);
    // `2024-01-02 03:04:05` → `2024年01月02日 03:04:05`
    format!("{}年{}月{}日{}", &s[0..4], &s[5..7], &s[8..10], &s[10..])
}

/// Renders the bill.
pub(crate) fn render(st: &State, bill: &Bill, now: OffsetDateTime) -> String {
    let (start, end) = date_range(&bill.bill_date).unwrap_or((0, 0));
    let seller = st
        .apps
        .get(&bill.app_id)
        .map(|a| a.seller_id.clone())
        .unwrap_or_default();
    let mut out = String::new();
    let title = if bill.bill_type == "signcustomer" {
        "账务明细"
    } else {
        "业务明细"
    };
    out.push_str(&format!("#支付宝{title}查询\n#账号：[{seller}0156]\n"));
    out.push_str(&format!(
        "#起始日期：[{}]   终止日期：[{}]\n",
        cn_time(start),
        cn_time(end)
    ));
    out.push_str(&format!("#-----------------------------------------{title}列表----------------------------------------\n"));
    out.push_str("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n");
    let (mut n_pay, mut sum_pay, mut n_ref, mut sum_ref) = (0u64, 0u64, 0u64, 0u64);
    let mut trades: Vec<_> = st
        .trades
        .values()
        .filter(|t| t.app_id == bill.app_id)
        .collect();
    trades.sort_by_key(|t| t.gmt_create);
    let clean = |s: &str| s.replace([',', '\n', '\r'], " ");
    for t in trades {
        if let Some(paid) = t.gmt_payment
            && (start..end).contains(&paid)
        {
            n_pay += 1;
            sum_pay += t.terms.total_fen;
            let amt = yuan(t.terms.total_fen);
            out.push_str(&format!(
                "{},{},交易,{},{},{},,,,,{},{amt},{amt},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,\n",
                t.trade_no, t.out_trade_no, clean(&t.terms.subject), beijing(t.gmt_create), beijing(paid), t.buyer_logon_id
            ));
        }
        for r in t.refunds.iter().filter(|r| (start..end).contains(&r.at)) {
            n_ref += 1;
            sum_ref += r.amount_fen;
            let amt = format!("-{}", yuan(r.amount_fen));
            out.push_str(&format!(
                "{},{},退款,{},{},{},,,,,{},{amt},{amt},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{},0.00,0.00,\n",
                t.trade_no, t.out_trade_no, clean(&t.terms.subject), beijing(t.gmt_create), beijing(r.at), t.buyer_logon_id, clean(&r.out_request_no)
            ));
        }
    }
    out.push_str(&format!("#-----------------------------------------{title}列表结束------------------------------------\n"));
    out.push_str(&format!(
        "#交易合计：{n_pay}笔，商家实收共{}元，商家优惠共0.00元\n",
        yuan(sum_pay)
    ));
    out.push_str(&format!(
        "#退款合计：{n_ref}笔，商家实收退款共-{}元，商家优惠退款共0.00元\n",
        yuan(sum_ref)
    ));
    out.push_str(&format!("#导出时间：[{}]\n", cn_time(millis(now))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bill_dates_are_beijing_days_and_months() {
        let (s, e) = date_range("2024-01-02").unwrap();
        assert_eq!(beijing(s), "2024-01-02 00:00:00");
        assert_eq!(beijing(e), "2024-01-03 00:00:00");
        let (s, e) = date_range("2024-12").unwrap();
        assert_eq!(beijing(s), "2024-12-01 00:00:00");
        assert_eq!(beijing(e), "2025-01-01 00:00:00");
        for bad in ["2024-1-02", "2024/01/02", "2024-13", "2024-02-30", "x", ""] {
            assert!(date_range(bad).is_none(), "{bad}");
        }
    }
}

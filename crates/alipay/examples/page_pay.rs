//! Signs a page-pay (电脑网站支付) request offline and prints the URL to
//! send the buyer to. Run: `cargo run -p alipay --example page_pay`.
//!
//! In a real shop the two keys come from `ALIPAY_APP_PRIVATE_KEY` (yours)
//! and `ALIPAY_PUBLIC_KEY` (Alipay's, from the open-platform console);
//! here both are generated so that the example runs anywhere.

use alipay::{Alipay, Amount, AppPrivateKey, OutTradeNo, RequestOptions, TradePagePay};

fn main() -> Result<(), alipay::Error> {
    let app_key = AppPrivateKey::generate()?;
    let alipay_key = AppPrivateKey::generate()?.public_key();
    let alipay = Alipay::builder("2021000122671080", app_key, alipay_key)
        .gateway(alipay::SANDBOX_GATEWAY)
        .build();

    let order = TradePagePay::new(
        OutTradeNo::new("ORDER_0001")?,
        Amount::parse("88.88")?,
        "A mug",
    );
    let opts = RequestOptions::new()
        .notify_url("https://shop.example.com/alipay/notify")
        .return_url("https://shop.example.com/alipay/return");
    let signed = alipay.sign_request(&order, &opts, time::OffsetDateTime::now_utc())?;
    println!(
        "redirect the buyer to:\n{}",
        signed.to_get_url(alipay.gateway())
    );
    Ok(())
}

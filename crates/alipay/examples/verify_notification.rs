//! What a notification endpoint must do, offline: verify the raw body's
//! signature, type it, compare it with *your* order, and only then change
//! state (and answer `success` once that is committed).
//! Run: `cargo run -p alipay --example verify_notification`.
//!
//! A generated key stands in for Alipay's, and signs the notification the
//! way Alipay does: RSA2 over the `k=v` pairs sorted by key, joined with
//! `&`, without `sign` and `sign_type`.

use alipay::{Amount, AppPrivateKey, ExpectedOrder, NotifyVerifier, SignType, TradeNotification};

fn main() -> Result<(), alipay::Error> {
    let alipay_side = AppPrivateKey::generate()?;
    let verifier = NotifyVerifier::new(alipay_side.public_key());

    let mut fields = vec![
        ("app_id", "2021000122671080"),
        ("charset", "utf-8"),
        ("notify_id", "2026120700222100000000000000000001"),
        ("notify_time", "2026-12-07 10:00:00"),
        ("notify_type", "trade_status_sync"),
        ("out_trade_no", "ORDER_0001"),
        ("seller_id", "2088721003899159"),
        ("total_amount", "88.88"),
        ("trade_no", "2026120722001400000000000001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("version", "1.0"),
    ];
    fields.sort();
    let content = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sign = alipay_side.sign(SignType::Rsa2, content.as_bytes())?;
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(fields.iter().copied());
    form.append_pair("sign_type", "RSA2");
    form.append_pair("sign", &sign);
    let body = form.finish();

    // The endpoint: raw bytes in.
    let verified = verifier.verify_body(body.as_bytes())?;
    let n = TradeNotification::from_verified(&verified)?;
    // Your order, looked up by n.out_trade_no in your database.
    let expected = ExpectedOrder {
        out_trade_no: "ORDER_0001",
        total_amount: Amount::parse("88.88")?,
        app_id: "2021000122671080",
        seller_id: Some("2088721003899159"),
    };
    match n.check_against(&expected) {
        Ok(()) => println!(
            "verified: {} is {:?}; commit, then answer `success`",
            n.out_trade_no, n.trade_status
        ),
        Err(mismatches) => println!("refuse (answer `failure`): {mismatches:?}"),
    }

    // One changed byte in a signed field and the signature no longer holds.
    let tampered = body.replacen("total_amount=88.88", "total_amount=8.88", 1);
    match verifier.verify_body(tampered.as_bytes()) {
        Ok(_) => println!("a tampered notification verified: this must never happen"),
        Err(e) => println!("tampered notification refused: {e}"),
    }
    Ok(())
}

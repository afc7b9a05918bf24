//! The subscription half of what the checkout needs from the backend: create
//! a subscription (an Alipay recurring agreement the buyer signs) from a
//! catalog plan, and read its status back. [`RouterBackend`] speaks the
//! merchant API's `POST /v1/subscriptions` and `GET /v1/subscriptions/{id}`.

use alipay::Amount;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{RouterBackend, path_segment, timestamp_ms};
use crate::catalog::{PeriodUnit, Plan};
use crate::error::CheckoutError;

/// How the buyer signs the agreement; the backend's subscription `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignChannel {
    /// PC web: the signing page (`alipay.user.agreement.page.sign`).
    Page,
    /// Phone browser: the same page, mobile layout.
    Wap,
    /// A native app: an `alipays://` link that opens the Alipay app.
    App,
}

impl SignChannel {
    /// Every channel.
    pub const ALL: [SignChannel; 3] = [SignChannel::Page, SignChannel::Wap, SignChannel::App];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignChannel::Page => "page",
            SignChannel::Wap => "wap",
            SignChannel::App => "app",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A subscription's state, as the backend reports it (from verified
/// agreement notifications or `alipay.user.agreement.query` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Created; the buyer has not signed yet.
    PendingSignature,
    /// Signed; periods are charged when due.
    Active,
    /// A charge failed and its retries ran out.
    PastDue,
    /// Ended by the buyer, the merchant or Alipay.
    Canceled,
    /// Every period was charged.
    Completed,
}

impl SubscriptionStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::PendingSignature => "pending_signature",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Completed => "completed",
        }
    }
}

/// The subscription the checkout asks for; amount and plan come from the
/// catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRequest {
    /// Shown on the signing page and on each charge.
    pub subject: String,
    /// Charged each period.
    pub amount: Amount,
    /// Period and number of periods.
    pub plan: Plan,
    /// How the buyer signs.
    pub channel: SignChannel,
    /// Where Alipay sends the buyer after signing.
    pub return_url: Option<String>,
    /// Stored with the subscription for the merchant (sku, channel).
    pub metadata: Value,
}

/// What the checkout reads back about a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// Backend subscription id.
    pub id: String,
    /// State.
    pub status: SubscriptionStatus,
    /// Subject.
    pub subject: String,
    /// Charged each period.
    pub amount: Amount,
    /// Period and number of periods.
    pub plan: Plan,
    /// First charge, `yyyy-MM-dd` (Beijing date).
    pub first_charge_date: Option<String>,
    /// Periods charged so far.
    pub periods_charged: u32,
    /// Next charge, `yyyy-MM-dd`, while one is due.
    pub next_charge_date: Option<String>,
    /// When the buyer's signature was confirmed, epoch milliseconds.
    pub activated_at_ms: Option<i64>,
    /// When it was cancelled, epoch milliseconds.
    pub canceled_at_ms: Option<i64>,
}

/// What the browser needs to get the buyer to sign.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SignParams {
    /// page/wap: the signing URL (GET).
    #[serde(default)]
    pub url: Option<String>,
    /// page/wap: an auto-submitting form, the alternative to `url`.
    #[serde(default)]
    pub form_html: Option<String>,
    /// app: the `alipays://` link.
    #[serde(default)]
    pub app_link: Option<String>,
}

/// A new subscription and how to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSubscription {
    /// The subscription, `pending_signature`.
    pub subscription: SubscriptionInfo,
    /// The signing parameters for its channel.
    pub sign: SignParams,
}

impl RouterBackend {
    pub(super) async fn create_subscription_over_api(
        &self,
        r: &SubscriptionRequest,
    ) -> Result<CreatedSubscription, CheckoutError> {
        let mut body = json!({
            "subject": r.subject,
            "amount": r.amount.to_string(),
            "period": {"unit": r.plan.unit.as_str(), "every": r.plan.every},
            "channel": r.channel.as_str(),
            "metadata": r.metadata,
        });
        if let Some(n) = r.plan.max_periods {
            body["max_periods"] = json!(n);
        }
        if let Some(u) = &r.return_url {
            body["return_url"] = json!(u);
        }
        let v = match self
            .call(Method::POST, "/v1/subscriptions", Some(body))
            .await
        {
            // A backend without subscriptions answers 404 for the path.
            Err(CheckoutError::OrderNotFound) => {
                return Err(CheckoutError::BackendUnavailable(
                    "POST /v1/subscriptions: not found (a backend without subscriptions?)".into(),
                ));
            }
            other => other?,
        };
        let subscription = subscription_info(&v)?;
        let sign: SignParams = serde_json::from_value(v["sign"].clone())
            .map_err(|e| CheckoutError::BackendUnavailable(format!("subscription sign: {e}")))?;
        Ok(CreatedSubscription { subscription, sign })
    }

    pub(super) async fn subscription_over_api(
        &self,
        id: &str,
        refresh: bool,
    ) -> Result<SubscriptionInfo, CheckoutError> {
        let mut uri = format!("/v1/subscriptions/{}", path_segment(id)?);
        if refresh {
            uri.push_str("?refresh=true");
        }
        let v = self.call(Method::GET, &uri, None).await?;
        subscription_info(&v)
    }
}

/// Reads the merchant API's subscription JSON.
pub(crate) fn subscription_info(v: &Value) -> Result<SubscriptionInfo, CheckoutError> {
    let bad =
        |what: &str| CheckoutError::BackendUnavailable(format!("subscription answer: {what}"));
    let s = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| bad(k));
    let date = |k: &str| -> Result<Option<String>, CheckoutError> {
        match &v[k] {
            Value::Null => Ok(None),
            Value::String(d) if is_date(d) => Ok(Some(d.clone())),
            _ => Err(bad(k)),
        }
    };
    let amount = Amount::parse(&s("amount")?).map_err(|_| bad("amount"))?;
    let status: SubscriptionStatus =
        serde_json::from_value(v["status"].clone()).map_err(|_| bad("status"))?;
    let unit: PeriodUnit =
        serde_json::from_value(v["period"]["unit"].clone()).map_err(|_| bad("period.unit"))?;
    let small = |x: &Value| x.as_u64().and_then(|n| u32::try_from(n).ok());
    let every = small(&v["period"]["every"])
        .filter(|n| *n >= 1)
        .ok_or_else(|| bad("period.every"))?;
    let max_periods = match &v["max_periods"] {
        Value::Null => None,
        x => Some(small(x).ok_or_else(|| bad("max_periods"))?),
    };
    let periods_charged = match &v["periods_charged"] {
        Value::Null => 0,
        x => small(x).ok_or_else(|| bad("periods_charged"))?,
    };
    Ok(SubscriptionInfo {
        id: s("id")?,
        status,
        subject: s("subject")?,
        amount,
        plan: Plan {
            unit,
            every,
            max_periods,
        },
        first_charge_date: date("first_charge_date")?,
        periods_charged,
        next_charge_date: date("next_charge_date")?,
        activated_at_ms: timestamp_ms(&v["activated_at"]),
        canceled_at_ms: timestamp_ms(&v["canceled_at"]),
    })
}

/// `yyyy-MM-dd`, as the contract writes dates.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::PaymentBackend;
    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::routing::{get, post};
    use http::{HeaderMap, StatusCode, header};

    fn sub_json(status: &str) -> Value {
        json!({
            "id": "sub_1", "object": "subscription", "status": status, "subject": "专业版",
            "amount": "30.00", "currency": "CNY", "period": {"unit": "month", "every": 1},
            "first_charge_date": "2026-12-20", "max_periods": 12, "periods_charged": 0,
            "next_charge_date": "2026-12-20", "failed_attempts": 0,
            "external_agreement_no": "ZFA1", "agreement_no": null, "channel": "page",
            "metadata": {"sku": "pro"}, "created_at": "2026-12-07T05:00:00Z",
            "updated_at": "2026-12-07T05:00:00Z", "activated_at": null, "canceled_at": null
        })
    }

    #[test]
    fn reads_the_contract_subscription() {
        let s = subscription_info(&sub_json("pending_signature")).unwrap();
        assert_eq!(s.status, SubscriptionStatus::PendingSignature);
        assert_eq!(s.amount.fen(), 3000);
        assert_eq!(
            s.plan,
            Plan {
                unit: PeriodUnit::Month,
                every: 1,
                max_periods: Some(12)
            }
        );
        assert_eq!(s.next_charge_date.as_deref(), Some("2026-12-20"));
        let mut active = sub_json("active");
        active["activated_at"] = json!("2026-12-07T05:01:00Z");
        active["max_periods"] = json!(null);
        active["next_charge_date"] = json!(null);
        let a = subscription_info(&active).unwrap();
        assert_eq!(a.activated_at_ms, Some(1_796_619_660_000));
        assert_eq!((a.plan.max_periods, a.next_charge_date), (None, None));
    }

    #[test]
    fn rejects_unreadable_subscriptions() {
        for (k, v) in [
            ("amount", json!(30.0)),
            ("status", json!("signed")),
            ("period", json!({"unit": "week", "every": 1})),
            ("period", json!({"unit": "month", "every": 0})),
            ("next_charge_date", json!("20/12/2026")),
            ("max_periods", json!(-1)),
            ("id", json!(null)),
        ] {
            let mut s = sub_json("active");
            s[k] = v;
            assert!(
                matches!(
                    subscription_info(&s),
                    Err(CheckoutError::BackendUnavailable(_))
                ),
                "{k}"
            );
        }
    }

    /// A stand-in for the merchant API's subscription routes.
    fn merchant_api() -> Router {
        Router::new()
            .route(
                "/v1/subscriptions",
                post(|h: HeaderMap, axum::Json(b): axum::Json<Value>| async move {
                    assert_eq!(
                        h.get(header::AUTHORIZATION).unwrap(),
                        "Bearer zk_sub_key_1234567890"
                    );
                    assert_eq!(b["amount"], "30.00");
                    assert_eq!(b["period"], json!({"unit": "month", "every": 1}));
                    assert_eq!(b["max_periods"], 12);
                    assert_eq!(b["return_url"], "http://shop.test/checkout/result");
                    assert!(b.get("first_charge_date").is_none());
                    let mut s = sub_json("pending_signature");
                    s["channel"] = b["channel"].clone();
                    s["sign"] = if b["channel"] == "app" {
                        json!({"channel": "app", "app_link": "alipays://platformapi/startapp?appId=60000157"})
                    } else {
                        json!({"channel": b["channel"], "url": "http://gw.test/gateway.do?x=1", "form_html": "<form></form>"})
                    };
                    (StatusCode::CREATED, axum::Json(s))
                }),
            )
            .route(
                "/v1/subscriptions/{id}",
                get(|Path(id): Path<String>, RawQuery(q): RawQuery| async move {
                    if id != "sub_1" {
                        return (
                            StatusCode::NOT_FOUND,
                            axum::Json(json!({"error": {"code": "subscription_not_found", "message": "no"}})),
                        );
                    }
                    let st = if q.as_deref() == Some("refresh=true") {
                        "active"
                    } else {
                        "pending_signature"
                    };
                    (StatusCode::OK, axum::Json(sub_json(st)))
                }),
            )
    }

    fn request(channel: SignChannel) -> SubscriptionRequest {
        SubscriptionRequest {
            subject: "专业版".into(),
            amount: Amount::parse("30.00").unwrap(),
            plan: Plan {
                unit: PeriodUnit::Month,
                every: 1,
                max_periods: Some(12),
            },
            channel,
            return_url: Some("http://shop.test/checkout/result".into()),
            metadata: json!({"sku": "pro"}),
        }
    }

    #[tokio::test]
    async fn router_backend_speaks_the_subscription_contract() {
        let b = RouterBackend::new(merchant_api(), "zk_sub_key_1234567890");
        let page = b
            .create_subscription(&request(SignChannel::Page))
            .await
            .unwrap();
        assert_eq!(page.subscription.id, "sub_1");
        assert_eq!(
            page.sign.url.as_deref(),
            Some("http://gw.test/gateway.do?x=1")
        );
        let app = b
            .create_subscription(&request(SignChannel::App))
            .await
            .unwrap();
        assert!(app.sign.app_link.unwrap().starts_with("alipays://"));
        assert_eq!(app.sign.url, None);
        assert_eq!(
            b.subscription("sub_1", false).await.unwrap().status,
            SubscriptionStatus::PendingSignature
        );
        assert_eq!(
            b.subscription("sub_1", true).await.unwrap().status,
            SubscriptionStatus::Active
        );
        assert!(matches!(
            b.subscription("sub_2", false).await,
            Err(CheckoutError::OrderNotFound)
        ));
        assert!(matches!(
            b.subscription("../orders", false).await,
            Err(CheckoutError::OrderNotFound)
        ));
        // A backend without the subscription routes is unavailable, not "not found".
        let old = RouterBackend::new(Router::new(), "zk_sub_key_1234567890");
        let e = old.create_subscription(&request(SignChannel::Page)).await;
        assert!(
            matches!(e, Err(CheckoutError::BackendUnavailable(_))),
            "{e:?}"
        );
    }
}

//! Prometheus text exposition. Counters are per process (Prometheus sums
//! instances); order counts come from the database at scrape time, so every
//! instance reports the same, true figure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use zhifu_store::{OrderStatus, SubscriptionStatus, WebhookState};

/// The `tracing` target of the one-line-per-thing activity log: each
/// Alipay gateway call, each notification received, each webhook attempt
/// and each answered request (`zhifu dev --log-requests` prints these; a
/// log pipeline can keep them with `RUST_LOG=zhifu::activity=info`). Kept
/// stable because it is a filter users write.
pub const ACTIVITY_TARGET: &str = "zhifu::activity";

/// Upper bounds (seconds) of the Alipay latency histogram.
const BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_micros: u64,
}

/// In-process counters.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    notifications: BTreeMap<(&'static str, &'static str), u64>,
    alipay_calls: BTreeMap<(String, String), u64>,
    webhook_attempts: BTreeMap<String, u64>,
    paid_after_close: u64,
    subscription_charges: BTreeMap<&'static str, u64>,
    alipay_latency: BTreeMap<String, Histogram>,
    /// Route template → status → latency.
    http: BTreeMap<String, BTreeMap<u16, Histogram>>,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (slot, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *slot += 1;
            }
        }
        self.count += 1;
        self.sum_micros += u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, n) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic while holding the lock leaves plain counters behind; they
        // are still usable.
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g)
    }

    /// Counts a processed notification (`outcome`: applied, duplicate,
    /// anomaly; `reason` for anomalies).
    pub fn notification(&self, outcome: &'static str, reason: Option<&'static str>) {
        self.with(|i| {
            *i.notifications
                .entry((outcome, reason.unwrap_or("")))
                .or_default() += 1;
        });
    }

    /// Counts an Alipay call and records its latency.
    pub fn alipay_call(&self, method: &str, outcome: &str, elapsed: Duration) {
        self.with(|i| {
            *i.alipay_calls
                .entry((method.to_owned(), outcome.to_owned()))
                .or_default() += 1;
            i.alipay_latency
                .entry(method.to_owned())
                .or_default()
                .observe(elapsed);
        });
    }

    /// Records one answered HTTP request: its route template (`/v1/orders/{id}`,
    /// never the raw path, so the label set stays bounded), status and time.
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.with(|i| {
            // Only the first request of a route allocates its key.
            let by_status = match i.http.get_mut(route) {
                Some(m) => m,
                None => i.http.entry(route.to_owned()).or_default(),
            };
            by_status.entry(status).or_default().observe(elapsed);
        });
    }

    /// Counts a payment taken for an order we had closed.
    pub fn paid_after_close(&self) {
        self.with(|i| i.paid_after_close += 1);
    }

    /// Counts a subscription period's charge attempt by its result
    /// (`charged`, `refused`, `unknown`).
    pub fn subscription_charge(&self, result: &'static str) {
        self.with(|i| *i.subscription_charges.entry(result).or_default() += 1);
    }

    /// Counts a webhook delivery attempt by its result (`delivered`,
    /// `pending` for a failure that will be retried, `failed` when the budget
    /// ran out).
    pub fn webhook_attempt(&self, outcome: &str) {
        self.with(|i| {
            *i.webhook_attempts.entry(outcome.to_owned()).or_default() += 1;
        });
    }

    /// The exposition text, with the order counts given.
    pub fn render(&self, orders: &[(OrderStatus, i64)]) -> String {
        self.render_with(orders, &[])
    }

    /// The exposition text, with the order and outbox counts given (both
    /// read from the database, so every instance reports the true figure).
    pub fn render_with(
        &self,
        orders: &[(OrderStatus, i64)],
        events: &[(WebhookState, i64)],
    ) -> String {
        self.render_all(orders, events, &[])
    }

    /// [`Metrics::render_with`], plus subscriptions by status (read from
    /// the database too).
    pub fn render_all(
        &self,
        orders: &[(OrderStatus, i64)],
        events: &[(WebhookState, i64)],
        subscriptions: &[(SubscriptionStatus, i64)],
    ) -> String {
        let mut out = String::new();
        if !subscriptions.is_empty() {
            out.push_str("# HELP zhifu_subscriptions Subscriptions in the database by status.\n");
            out.push_str("# TYPE zhifu_subscriptions gauge\n");
            for (status, n) in subscriptions {
                let _ = writeln!(out, "zhifu_subscriptions{{status=\"{status}\"}} {n}");
            }
        }
        out.push_str("# HELP zhifu_orders Orders in the database by status.\n");
        out.push_str("# TYPE zhifu_orders gauge\n");
        for (status, n) in orders {
            let _ = writeln!(out, "zhifu_orders{{status=\"{status}\"}} {n}");
        }
        if !events.is_empty() {
            out.push_str(
                "# HELP zhifu_webhook_events Order events in the outbox by delivery state.\n",
            );
            out.push_str("# TYPE zhifu_webhook_events gauge\n");
            for (state, n) in events {
                let _ = writeln!(
                    out,
                    "zhifu_webhook_events{{state=\"{}\"}} {n}",
                    state.as_str()
                );
            }
        }
        self.with(|i| {
            out.push_str(
                "# HELP zhifu_webhook_attempts_total Webhook delivery attempts by this instance, by result.\n",
            );
            out.push_str("# TYPE zhifu_webhook_attempts_total counter\n");
            for (outcome, n) in &i.webhook_attempts {
                let _ = writeln!(out, "zhifu_webhook_attempts_total{{result=\"{outcome}\"}} {n}");
            }
            out.push_str(
                "# HELP zhifu_subscription_charges_total Subscription charge attempts by this instance, by result.\n",
            );
            out.push_str("# TYPE zhifu_subscription_charges_total counter\n");
            for (result, n) in &i.subscription_charges {
                let _ = writeln!(out, "zhifu_subscription_charges_total{{result=\"{result}\"}} {n}");
            }
            out.push_str(
                "# HELP zhifu_paid_after_close_total Payments taken for orders already closed, seen by this instance.\n",
            );
            out.push_str("# TYPE zhifu_paid_after_close_total counter\n");
            let _ = writeln!(out, "zhifu_paid_after_close_total {}", i.paid_after_close);
            out.push_str(
                "# HELP zhifu_notifications_total Notifications processed by this instance, by outcome.\n",
            );
            out.push_str("# TYPE zhifu_notifications_total counter\n");
            for ((outcome, reason), n) in &i.notifications {
                let _ = writeln!(
                    out,
                    "zhifu_notifications_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {n}"
                );
            }
            out.push_str("# HELP zhifu_alipay_calls_total Calls to the Alipay gateway by method and outcome.\n");
            out.push_str("# TYPE zhifu_alipay_calls_total counter\n");
            for ((method, outcome), n) in &i.alipay_calls {
                let _ = writeln!(
                    out,
                    "zhifu_alipay_calls_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
                );
            }
            out.push_str("# HELP zhifu_alipay_call_duration_seconds Latency of calls to the Alipay gateway.\n");
            out.push_str("# TYPE zhifu_alipay_call_duration_seconds histogram\n");
            for (method, h) in &i.alipay_latency {
                h.render(
                    &mut out,
                    "zhifu_alipay_call_duration_seconds",
                    &format!("method=\"{method}\""),
                );
            }
            out.push_str("# HELP zhifu_http_request_duration_seconds HTTP requests answered by this instance, by route and status.\n");
            out.push_str("# TYPE zhifu_http_request_duration_seconds histogram\n");
            for (route, by_status) in &i.http {
                for (status, h) in by_status {
                    h.render(
                        &mut out,
                        "zhifu_http_request_duration_seconds",
                        &format!("route=\"{route}\",status=\"{status}\""),
                    );
                }
            }
        });
        out.push_str("# HELP zhifu_build_info The running build.\n");
        out.push_str("# TYPE zhifu_build_info gauge\n");
        let _ = writeln!(
            out,
            "zhifu_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.notification("applied", None);
        m.notification("anomaly", Some("bad_signature"));
        m.notification("anomaly", Some("bad_signature"));
        m.alipay_call("alipay.trade.query", "success", Duration::from_millis(30));
        m.webhook_attempt("pending");
        m.webhook_attempt("delivered");
        let text = m.render_with(&[(OrderStatus::Paid, 3)], &[(WebhookState::Failed, 2)]);
        assert!(text.contains("zhifu_webhook_events{state=\"failed\"} 2\n"));
        assert!(text.contains("zhifu_webhook_attempts_total{result=\"delivered\"} 1\n"));
        assert!(text.contains("zhifu_orders{status=\"paid\"} 3\n"));
        assert!(text.contains(
            "zhifu_notifications_total{outcome=\"anomaly\",reason=\"bad_signature\"} 2\n"
        ));
        assert!(text.contains(
            "zhifu_alipay_calls_total{method=\"alipay.trade.query\",outcome=\"success\"} 1\n"
        ));
        assert!(text.contains(
            "zhifu_alipay_call_duration_seconds_bucket{method=\"alipay.trade.query\",le=\"0.025\"} 0\n"
        ));
        assert!(text.contains(
            "zhifu_alipay_call_duration_seconds_bucket{method=\"alipay.trade.query\",le=\"0.05\"} 1\n"
        ));
    }
}

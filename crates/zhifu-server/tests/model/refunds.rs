//! The merchant's refunds in a sequence: with and without
//! `Idempotency-Key`, retries and misuses of a key, two at once; each
//! answer checked against what the order allowed before the request.

use serde_json::json;

use super::plan::{Amount, Key};
use super::run::{Check, KeyRec, Runner, allowed, brief, code, fen_of, yuan};
use crate::common::{Resp, s};

impl Runner<'_> {
    /// The sequence's key number `i` (a fresh one when there is none yet).
    fn key_for(&mut self, o: usize, i: Option<usize>, amount_fen: i64) -> (usize, usize) {
        if let Some(i) = i.filter(|i| *i < self.keys.len()) {
            return (i, self.keys[i].o);
        }
        self.keys.push(KeyRec {
            o,
            key: format!("model-{}-{}", self.plan.seed, self.keys.len()),
            amount_fen,
            refund_id: None,
        });
        (self.keys.len() - 1, o)
    }

    async fn amount_fen(&self, o: usize, a: Amount) -> i64 {
        match a {
            Amount::Fen(f) => f,
            Amount::Rest => {
                let z = self.order(o).await;
                (self.orders[o].total_fen
                    - fen_of(&z["refunded_amount"])
                    - fen_of(&z["refund_pending_amount"]))
                .max(1)
            }
        }
    }

    /// What may still be refunded, two ways: the server's own rule (total −
    /// refunded − pending, which refuses anything above it) and by the
    /// refunds it holds (total − every refund not failed), which no
    /// accepted refund may exceed.
    async fn remaining(&self, o: usize) -> (String, i64, i64) {
        let z = self.order(o).await;
        let total = self.orders[o].total_fen;
        let rule = total - fen_of(&z["refunded_amount"]) - fen_of(&z["refund_pending_amount"]);
        let held: i64 = self
            .refunds(o)
            .await
            .iter()
            .filter(|r| r["status"] != "failed")
            .map(|r| fen_of(&r["amount"]))
            .sum();
        (s(&z, "status").to_owned(), rule, total - held)
    }

    async fn post_refund(&self, o: usize, amount_fen: i64, key: Option<&str>) -> Resp {
        let path = format!("/v1/orders/{}/refunds", self.orders[o].id);
        let body = Some(json!({ "amount": yuan(amount_fen) }));
        match key {
            Some(k) => {
                self.app
                    .api_with("POST", &path, body, &[("Idempotency-Key", k)])
                    .await
            }
            None => self.app.api("POST", &path, body).await,
        }
    }

    pub async fn refund(&mut self, o: usize, amount: Amount, key: Key) -> Check {
        let mut amount_fen = self.amount_fen(o, amount).await;
        let (o, key_idx, kind) = match key {
            Key::None => (o, None, "no key"),
            Key::New => {
                let (i, o) = self.key_for(o, None, amount_fen);
                (o, Some(i), "new key")
            }
            Key::Retry(i) | Key::Misuse(i) => {
                let (i, o) = self.key_for(o, Some(i), amount_fen);
                let misuse = matches!(key, Key::Misuse(_));
                amount_fen = self.keys[i].amount_fen + i64::from(misuse);
                (
                    o,
                    Some(i),
                    if misuse { "key misused" } else { "key retried" },
                )
            }
        };
        let existing = key_idx.and_then(|i| self.keys[i].refund_id.clone());
        let (status, rule, held) = self.remaining(o).await;
        let calls_before = self.refund_calls(o);
        let k = key_idx.map(|i| self.keys[i].key.clone());
        let r = self.post_refund(o, amount_fen, k.as_deref()).await;
        self.log.push(format!(
            "refund #{o} {} ({kind}{}; order {status}, remaining {}): {}",
            yuan(amount_fen),
            k.as_deref().map(|k| format!(" {k}")).unwrap_or_default(),
            yuan(rule),
            brief(&r)
        ));
        self.acceptable("refund", &r)?;
        if let Some(id) = existing {
            // The key made a refund already: a retry reads it, a misuse is
            // refused; neither sends anything.
            let calls = self.refund_calls(o);
            ensure!(
                calls == calls_before,
                "a repeated Idempotency-Key sent {} refund call(s)",
                calls - calls_before
            );
            if self.keys[key_idx.unwrap()].amount_fen == amount_fen {
                ensure!(
                    r.status == 201 && r.body["id"] == id.as_str(),
                    "retry with the same key: {} {:?}, expected refund {id}",
                    r.status,
                    r.body
                );
                ensure!(
                    r.headers
                        .get("idempotent-replayed")
                        .is_some_and(|v| v == "true"),
                    "a retry's answer is not marked idempotent-replayed"
                );
            } else {
                ensure!(
                    r.status == 409 && code(&r) == "idempotency_key_reused",
                    "a key reused with another amount: {}",
                    brief(&r)
                );
            }
            return Ok(());
        }
        self.check_new_refund(o, amount_fen, &status, rule, held, &r)?;
        if r.status == 201
            && let Some(i) = key_idx
        {
            self.keys[i].refund_id = Some(s(&r.body, "id").to_owned());
            self.keys[i].amount_fen = amount_fen;
        }
        Ok(())
    }

    /// The answer to a request that could create a refund.
    fn check_new_refund(
        &self,
        o: usize,
        amount_fen: i64,
        status: &str,
        rule: i64,
        held: i64,
        r: &Resp,
    ) -> Check {
        if status != "paid" {
            ensure!(
                r.status == 409 && code(r) == "order_not_refundable",
                "refund of a {status} order: {}",
                brief(r)
            );
            return Ok(());
        }
        if amount_fen > rule {
            ensure!(
                r.status != 201,
                "refund of {} accepted with {} remaining",
                yuan(amount_fen),
                yuan(rule)
            );
            return Ok(());
        }
        ensure!(
            r.status == 201,
            "refund of {} (remaining {}) of #{o}: {}",
            yuan(amount_fen),
            yuan(rule),
            brief(r)
        );
        ensure!(
            amount_fen <= held,
            "refund of {} accepted while other refunds hold all but {}",
            yuan(amount_fen),
            yuan(held)
        );
        let st = s(&r.body, "status");
        if self.faulted() {
            ensure!(st == "pending", "refund during 20000s answered {st}");
        } else if self.plan.variant.spacing_ms == 0 {
            ensure!(st == "succeeded", "refund with a healthy gateway: {st}");
        } else {
            ensure!(st != "failed", "refund with a healthy gateway: {st}");
        }
        Ok(())
    }

    pub async fn refund_twice(&mut self, o: usize, amount: Amount, same_key: bool) -> Check {
        let amount_fen = self.amount_fen(o, amount).await;
        let (status, rule, held) = self.remaining(o).await;
        let key = same_key.then(|| {
            let (i, _) = self.key_for(o, None, amount_fen);
            i
        });
        let k = key.map(|i| self.keys[i].key.clone());
        let (a, b) = tokio::join!(
            self.post_refund(o, amount_fen, k.as_deref()),
            self.post_refund(o, amount_fen, k.as_deref())
        );
        self.log.push(format!(
            "two refunds of #{o} {} at once ({}; order {status}, remaining {}): {} / {}",
            yuan(amount_fen),
            k.as_deref().unwrap_or("no key"),
            yuan(rule),
            brief(&a),
            brief(&b)
        ));
        self.acceptable("refund", &a)?;
        self.acceptable("refund", &b)?;
        if same_key {
            // Known bug (PostgreSQL): the loser of the race is told
            // `refund_exceeds_remaining` (or, once the winner made the
            // order `refunded`, `order_not_refundable`) instead of reading
            // the refund its key made.
            if a.status != b.status
                && allowed("same-key-race")
                && [&a, &b]
                    .iter()
                    .any(|r| matches!(code(r), "refund_exceeds_remaining" | "order_not_refundable"))
            {
                self.count("allowed: same-key-race");
                if let (Some(i), Some(won)) = (key, [&a, &b].iter().find(|r| r.status == 201)) {
                    self.keys[i].refund_id = Some(s(&won.body, "id").to_owned());
                }
                return Ok(());
            }
            ensure!(
                a.status == b.status,
                "one key twice at once: {} / {}",
                brief(&a),
                brief(&b)
            );
            if a.status == 201 {
                ensure!(
                    a.body["id"] == b.body["id"],
                    "one key, two refunds: {} / {}",
                    a.body["id"],
                    b.body["id"]
                );
                let replayed = |r: &Resp| {
                    r.headers
                        .get("idempotent-replayed")
                        .is_some_and(|v| v == "true")
                };
                ensure!(
                    replayed(&a) != replayed(&b),
                    "exactly one of two same-key requests creates the refund"
                );
                let i = key.unwrap();
                self.keys[i].refund_id = Some(s(&a.body, "id").to_owned());
            }
            // The creating one is checked like any refund (the other may
            // have read it before it was sent: pending is fine there).
            let first = if a.headers.get("idempotent-replayed").is_none() {
                &a
            } else {
                &b
            };
            return self.check_new_refund(o, amount_fen, &status, rule, held, first);
        }
        let accepted = [&a, &b].iter().filter(|r| r.status == 201).count() as i64;
        ensure!(
            accepted * amount_fen <= held.max(0) || status != "paid",
            "{accepted} concurrent refunds of {} accepted with {} left",
            yuan(amount_fen),
            yuan(held)
        );
        if status == "paid" && 2 * amount_fen <= rule && !self.faulted() {
            ensure!(
                accepted == 2,
                "two refunds that fit were not both accepted: {} / {}",
                brief(&a),
                brief(&b)
            );
        }
        Ok(())
    }
}

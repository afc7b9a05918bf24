//! Everything that happens later: the worker loop (timers and due
//! notification attempts), explicit clock advances that run and await what
//! became due, one delivery attempt with its faults and its retry schedule,
//! and resends.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::error::SandboxError;
use crate::model::{Attempt, Delivery, DeliveryState, millis};
use crate::notify::{self, Outcome};
use crate::sandbox::Sandbox;
use crate::views::{AdvanceReport, NotificationView, delivery_view};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptKind {
    Scheduled,
    Resend,
}

/// The worker of an auto-mode sandbox: fires timers and starts delivery
/// attempts when they become due, until the sandbox stops.
pub(crate) async fn run(sb: Sandbox) {
    let mut stop = sb.inner.stop.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let next = match sb.run_due().await {
            Ok((_, next)) => next,
            Err(e) => {
                tracing::warn!(error = %e, "sandbox worker step failed");
                Some(millis(sb.inner.clock.now()) + 1000)
            }
        };
        let wait = match next {
            Some(t) => {
                let ms = (t - millis(sb.inner.clock.now())).max(0);
                Duration::from_millis(ms as u64)
            }
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = sb.inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

impl Sandbox {
    /// Moves the sandbox clock forward, then runs everything that became due
    /// (timeouts, the refund window, notification attempts) and waits for it.
    ///
    /// # Errors
    /// Store errors.
    pub async fn advance(&self, by: Duration) -> Result<AdvanceReport, SandboxError> {
        let ms = i64::try_from(by.as_millis())
            .map_err(|_| SandboxError::InvalidInput("advance is too large".into()))?;
        let total = self.inner.clock.advance(ms);
        self.inner
            .store
            .put_meta("clock_offset_ms", &total.to_string())
            .await?;
        let attempts = self.drain().await?;
        self.inner.wake.notify_one();
        Ok(AdvanceReport {
            now: alipay::time::format_beijing(self.inner.clock.now()),
            attempts,
        })
    }

    /// Runs everything due until nothing is; returns attempts made.
    async fn drain(&self) -> Result<usize, SandboxError> {
        let mut attempts = 0;
        loop {
            let (handles, _) = self.run_due().await?;
            if handles.is_empty() {
                return Ok(attempts);
            }
            attempts += handles.len();
            for h in handles {
                let _ = h.await;
            }
        }
    }

    /// Fires due timers and starts due delivery attempts. Returns the
    /// attempt tasks and the next instant something is due.
    async fn run_due(&self) -> Result<(Vec<JoinHandle<()>>, Option<i64>), SandboxError> {
        let mut st = self.lock().await;
        let signer = self.signer();
        let ctx = self.ctx(&signer);
        let now = ctx.now_ms();
        let next_timer = st.run_timers(&ctx)?;
        let due: Vec<u64> = st
            .deliveries
            .values()
            .filter(|d| {
                d.state == DeliveryState::Pending
                    && !d.in_flight
                    && d.next_attempt_at.is_some_and(|t| t <= now)
            })
            .map(|d| d.id)
            .collect();
        for id in &due {
            if let Some(d) = st.deliveries.get_mut(id) {
                d.in_flight = true;
                d.next_attempt_at = None;
            }
        }
        let next = [next_timer, st.next_delivery_due()]
            .into_iter()
            .flatten()
            .min();
        st.bills.retain(|_, b| b.expires_at > now);
        self.flush(&mut st).await?;
        drop(st);
        let handles = due
            .into_iter()
            .map(|id| {
                let sb = self.clone();
                tokio::spawn(async move { sb.attempt(id, AttemptKind::Scheduled).await })
            })
            .collect();
        Ok((handles, next))
    }

    /// One delivery attempt, with faults applied.
    async fn attempt(&self, id: u64, kind: AttemptKind) {
        let decided = {
            let mut st = self.lock().await;
            let Some(d) = st.deliveries.get(&id) else {
                return;
            };
            let (url, body, charset) = (d.notify_url.clone(), d.body.clone(), d.charset.clone());
            let reordered = d.held && d.attempts.is_empty();
            let f = st.faults.clone();
            let drop = st.rng.chance(f.drop_rate);
            let delay = st.rng.chance(f.delay_rate);
            let dup = st.rng.chance(f.duplicate_rate);
            (
                url,
                body,
                charset,
                drop,
                delay.then_some(f.delay_ms),
                dup,
                reordered,
            )
        };
        let (url, body, charset, dropped, delay, dup, reordered) = decided;
        if let Some(ms) = delay {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let started = self.inner.clock.now();
        let real = OffsetDateTime::now_utc();
        let outcome = if dropped {
            None
        } else {
            Some(notify::post(&self.inner.http, &url, &body, &charset).await)
        };
        let fault = if dropped {
            Some("dropped")
        } else if delay.is_some() {
            Some("delayed")
        } else if reordered {
            Some("reordered")
        } else {
            None
        };
        let success = outcome.as_ref().is_some_and(Outcome::is_success);
        let record = |kind: &str,
                      outcome: Option<&Outcome>,
                      at: OffsetDateTime,
                      real: OffsetDateTime,
                      fault: Option<&str>| {
            let (http_status, response_body, error) = match outcome {
                Some(Outcome::Answered { status, body }) => {
                    (Some(*status), Some(body.clone()), None)
                }
                Some(Outcome::Failed(e)) => (None, None, Some(e.clone())),
                None => (None, None, None),
            };
            Attempt {
                time: alipay::time::format_beijing(at),
                at_ms: millis(at),
                real_ms: millis(real),
                http_status,
                response_body,
                error,
                fault: fault.map(str::to_owned),
                kind: kind.to_owned(),
                success: outcome.is_some_and(Outcome::is_success),
            }
        };
        let mut st = self.lock().await;
        if let Some(d) = st.deliveries.get_mut(&id) {
            let kind_name = match kind {
                AttemptKind::Scheduled => "scheduled",
                AttemptKind::Resend => "resend",
            };
            d.attempts
                .push(record(kind_name, outcome.as_ref(), started, real, fault));
            match kind {
                AttemptKind::Scheduled => {
                    d.in_flight = false;
                    d.held = false;
                    d.scheduled_done += 1;
                    if success {
                        d.state = DeliveryState::Delivered;
                        d.next_attempt_at = None;
                    } else {
                        match self.inner.cfg.retry_after(d.scheduled_done) {
                            Some(iv) => d.next_attempt_at = Some(millis(started + iv)),
                            None => {
                                d.state = DeliveryState::GaveUp;
                                d.next_attempt_at = None;
                            }
                        }
                    }
                }
                AttemptKind::Resend => {
                    if success && matches!(d.state, DeliveryState::Pending | DeliveryState::GaveUp)
                    {
                        d.state = DeliveryState::Delivered;
                        d.next_attempt_at = None;
                    }
                }
            }
            st.dirty.deliveries.insert(id);
        }
        // A held (reordered) notification to the same URL goes right after this one.
        let now = millis(self.inner.clock.now());
        let held: Vec<u64> = st
            .deliveries
            .values()
            .filter(|d| {
                d.id != id
                    && d.held
                    && d.notify_url == url
                    && d.state == DeliveryState::Pending
                    && !d.in_flight
            })
            .map(|d| d.id)
            .collect();
        for h in held {
            if let Some(d) = st.deliveries.get_mut(&h) {
                d.next_attempt_at = Some(now);
                st.dirty.deliveries.insert(h);
            }
        }
        if let Err(e) = self.flush(&mut st).await {
            tracing::warn!(error = %e, "could not persist a delivery attempt");
        }
        drop(st);
        if success && dup && kind == AttemptKind::Scheduled {
            let at = self.inner.clock.now();
            let real = OffsetDateTime::now_utc();
            let again = notify::post(&self.inner.http, &url, &body, &charset).await;
            let mut st = self.lock().await;
            if let Some(d) = st.deliveries.get_mut(&id) {
                d.attempts.push(record(
                    "duplicate",
                    Some(&again),
                    at,
                    real,
                    Some("duplicated"),
                ));
                st.dirty.deliveries.insert(id);
            }
            if let Err(e) = self.flush(&mut st).await {
                tracing::warn!(error = %e, "could not persist a duplicate attempt");
            }
        }
    }

    /// Sends delivery `id` once more now (same body, same `notify_id`) and
    /// returns it with the new attempt.
    ///
    /// # Errors
    /// [`SandboxError::DeliveryNotFound`].
    pub async fn resend(&self, id: u64) -> Result<NotificationView, SandboxError> {
        if !self.lock().await.deliveries.contains_key(&id) {
            return Err(SandboxError::DeliveryNotFound(id));
        }
        self.attempt(id, AttemptKind::Resend).await;
        let st = self.lock().await;
        st.deliveries
            .get(&id)
            .map(delivery_view)
            .ok_or(SandboxError::DeliveryNotFound(id))
    }

    /// Records a one-shot delivery made outside the schedule (trigger).
    pub(crate) async fn record_one_shot(&self, mut d: Delivery) -> Result<u64, SandboxError> {
        let mut st = self.lock().await;
        let id = st.next_delivery_id;
        d.id = id;
        st.insert_delivery(d);
        self.flush(&mut st).await?;
        Ok(id)
    }

    pub(crate) async fn append_attempt(&self, id: u64, a: Attempt) -> Result<(), SandboxError> {
        let mut st = self.lock().await;
        if let Some(d) = st.deliveries.get_mut(&id) {
            d.attempts.push(a);
            st.dirty.deliveries.insert(id);
        }
        self.flush(&mut st).await
    }
}

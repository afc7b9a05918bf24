//! Notification scheduling: whether a trade event notifies at all (the
//! per-product notification matrix and the order's `notify_url`), the delivery
//! record with its signed body, the reorder fault's hold, and when the next
//! attempt is due. Sending and retrying is the worker's job.

use crate::config::scale;
use crate::error::SandboxError;
use crate::ids;
use crate::model::{Delivery, DeliveryState, Product};
use crate::notify::{self, Event};
use crate::state::{Ctx, State};

/// A signed notification about to be scheduled. Agreement notifications
/// use the trade's slots for their own numbers: `out_trade_no` carries the
/// external agreement number, `trade_no` the agreement number, `status`
/// the agreement status.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub app_id: String,
    pub out_trade_no: String,
    pub trade_no: String,
    pub notify_id: String,
    pub notify_url: String,
    pub status: String,
    pub event: String,
    pub body: String,
    pub charset: String,
}

impl State {
    /// Queues the notification of `event` when the trade has a `notify_url`
    /// and the docs/protocol.md §6.5 matrix says this product notifies it.
    pub(crate) fn queue_notification(
        &mut self,
        trade_no: &str,
        event: Event,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        let Some(t) = self.trades.get(trade_no) else {
            return Ok(());
        };
        let Some(url) = t.terms.notify_url.clone() else {
            return Ok(());
        };
        let m = &ctx.cfg.notify_matrix;
        let row = match t.terms.product {
            Product::Page => m.page,
            Product::Wap => m.wap,
            Product::App => m.app,
            _ => m.face_to_face,
        };
        let wanted = match event {
            Event::Paid => row.trade_success,
            Event::PartialRefund => row.partial_refund,
            Event::FullRefund | Event::Closed => row.trade_closed,
            Event::Finished => row.trade_finished,
        };
        if !wanted {
            return Ok(());
        }
        let Some(app) = self.apps.get(&t.app_id) else {
            return Ok(());
        };
        let notify_id = ids::notify_id(ctx.now);
        let built = notify::build(t, app, event, &notify_id, ctx.now, ctx.signer)?;
        let outgoing = Outgoing {
            app_id: t.app_id.clone(),
            out_trade_no: t.out_trade_no.clone(),
            trade_no: t.trade_no.clone(),
            notify_id,
            notify_url: url,
            status: built.trade_status,
            event: event.as_str().to_owned(),
            body: built.body,
            charset: t.terms.charset.clone(),
        };
        self.schedule_delivery(outgoing, ctx);
        Ok(())
    }

    /// Records a signed notification as a pending delivery, due now (or held
    /// back by the reorder fault): the worker sends it and retries it on
    /// the configured schedule, whatever kind of notification it is.
    pub(crate) fn schedule_delivery(&mut self, o: Outgoing, ctx: &Ctx<'_>) {
        let now = ctx.now_ms();
        let reorder = self.rng.chance(self.faults.reorder_rate);
        let hold = if self.faults.reorder_hold_ms > 0 {
            self.faults.reorder_hold_ms as i64
        } else {
            scale(std::time::Duration::from_secs(60), ctx.cfg.time_scale)
                .whole_milliseconds()
                .max(50) as i64
        };
        let id = self.next_delivery_id;
        self.insert_delivery(Delivery {
            id,
            app_id: o.app_id,
            out_trade_no: o.out_trade_no,
            trade_no: o.trade_no,
            notify_id: o.notify_id,
            notify_url: o.notify_url,
            trade_status: o.status,
            event: o.event,
            body: o.body,
            charset: o.charset,
            created_at: now,
            attempts: Vec::new(),
            state: DeliveryState::Pending,
            scheduled_done: 0,
            next_attempt_at: Some(if reorder { now + hold } else { now }),
            held: reorder,
            in_flight: false,
        });
    }

    /// When the next scheduled notification attempt is due.
    pub(crate) fn next_delivery_due(&self) -> Option<i64> {
        self.deliveries
            .values()
            .filter(|d| d.state == DeliveryState::Pending && !d.in_flight)
            .filter_map(|d| d.next_attempt_at)
            .min()
    }
}

//! The [`Store`] trait on [`SqlStore`]: one place that says which module
//! serves which call, so the trait and its implementation can be read side
//! by side. No SQL here beyond the ping.

use async_trait::async_trait;

use super::{SqlStore, alipay_certs, apply, leases, notifications, orders, outbox, refunds};
use crate::model::*;
use crate::{AlipayCertRecord, Result, Store};

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_order(&self, o: NewOrder) -> Result<CreateOrderOutcome> {
        orders::create_order(self, o).await
    }

    async fn get_order(&self, id: &str) -> Result<Option<Order>> {
        orders::get_order(self, id).await
    }

    async fn get_order_by_out_trade_no(&self, out_trade_no: &str) -> Result<Option<Order>> {
        orders::get_order_by_out_trade_no(self, out_trade_no).await
    }

    async fn list_orders(&self, q: &OrderQuery) -> Result<Vec<Order>> {
        orders::list_orders(self, q).await
    }

    async fn record_payment_attempt(
        &self,
        order_id: &str,
        channel: &str,
        trade_no: Option<&str>,
        at: i64,
    ) -> Result<bool> {
        orders::record_payment_attempt(self, order_id, channel, trade_no, at).await
    }

    async fn apply_trade_update(
        &self,
        update: &TradeUpdate,
        record: &NewNotification,
    ) -> Result<ApplyResult> {
        apply::apply_trade_update(self, update, record).await
    }

    async fn record_notification(&self, record: &NewNotification) -> Result<()> {
        notifications::record_notification(self, record).await
    }

    async fn refusal_seen(&self, notify_id: &str, reasons: &str) -> Result<bool> {
        notifications::refusal_seen(self, notify_id, reasons).await
    }

    async fn prune_refused(&self, before: i64, keep: i64) -> Result<u64> {
        notifications::prune_refused(self, before, keep).await
    }

    async fn list_notifications(&self, order_id: &str) -> Result<Vec<NotificationRecord>> {
        notifications::list_notifications(self, order_id).await
    }

    async fn list_orphan_notifications(&self, limit: i64) -> Result<Vec<NotificationRecord>> {
        notifications::list_orphan_notifications(self, limit).await
    }

    async fn list_events(&self, order_id: &str) -> Result<Vec<OrderEvent>> {
        outbox::list_events(self, order_id).await
    }

    async fn create_refund(&self, r: NewRefund) -> Result<CreateRefundOutcome> {
        refunds::create_refund(self, r).await
    }

    async fn take_refund_slot(
        &self,
        refund_id: &str,
        now: i64,
        spacing_ms: i64,
    ) -> Result<RefundSlot> {
        refunds::take_refund_slot(self, refund_id, now, spacing_ms).await
    }

    async fn begin_closing(&self, order_id: &str, at: i64) -> Result<Order> {
        orders::begin_closing(self, order_id, at).await
    }

    async fn get_refund(&self, id: &str) -> Result<Option<Refund>> {
        refunds::get_refund(self, id).await
    }

    async fn list_refunds(&self, order_id: &str) -> Result<Vec<Refund>> {
        refunds::list_refunds(self, order_id).await
    }

    async fn finish_refund(&self, refund_id: &str, result: &RefundResult) -> Result<Refund> {
        refunds::finish_refund(self, refund_id, result).await
    }

    async fn count_orders_by_status(&self) -> Result<Vec<(OrderStatus, i64)>> {
        orders::count_orders_by_status(self).await
    }

    async fn claim_reconcile_orders(&self, c: &ReconcileClaim) -> Result<Vec<Order>> {
        leases::claim_reconcile_orders(self, c).await
    }

    async fn claim_reconcile_refunds(&self, c: &ReconcileClaim) -> Result<Vec<Refund>> {
        leases::claim_reconcile_refunds(self, c).await
    }

    async fn claim_due_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OrderEvent>> {
        leases::claim_due_events(self, now, lease_until, limit).await
    }

    async fn claim_event(
        &self,
        event_id: &str,
        now: i64,
        lease_until: i64,
        force: bool,
    ) -> Result<Option<OrderEvent>> {
        leases::claim_event(self, event_id, now, lease_until, force).await
    }

    async fn finish_delivery(
        &self,
        event_id: &str,
        a: &NewDeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<OrderEvent> {
        outbox::finish_delivery(self, event_id, a, next).await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<OrderEvent>> {
        outbox::get_event(self, event_id).await
    }

    async fn query_events(&self, q: &EventQuery) -> Result<Vec<OrderEvent>> {
        outbox::query_events(self, q).await
    }

    async fn count_events_by_state(&self) -> Result<Vec<(WebhookState, i64)>> {
        outbox::count_events_by_state(self).await
    }

    async fn list_delivery_attempts(&self, event_id: &str) -> Result<Vec<DeliveryAttempt>> {
        outbox::list_delivery_attempts(self, event_id).await
    }

    async fn record_alipay_cert(&self, rec: &AlipayCertRecord) -> Result<()> {
        alipay_certs::record(self, rec).await
    }

    async fn get_alipay_cert(&self, sn: &str) -> Result<Option<AlipayCertRecord>> {
        alipay_certs::get(self, sn).await
    }

    async fn accepted_alipay_certs(&self) -> Result<Vec<AlipayCertRecord>> {
        alipay_certs::accepted(self).await
    }
}

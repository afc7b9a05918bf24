//! The [`Store`] trait on [`SqlStore`]: one place that says which module
//! serves which call, so the trait and its implementation can be read side
//! by side. No SQL here beyond the ping.

use async_trait::async_trait;

use super::{
    SqlStore, alipay_certs, apply, leases, notifications, orders, outbox, refunds,
    subscription_events, subscriptions,
};
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

    async fn create_subscription(&self, n: NewSubscription) -> Result<CreateSubscriptionOutcome> {
        subscriptions::create(self, n).await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>> {
        subscriptions::get(self, id).await
    }

    async fn get_subscription_by_external_no(&self, no: &str) -> Result<Option<Subscription>> {
        subscriptions::get_by_external_no(self, no).await
    }

    async fn list_subscriptions(&self, q: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        subscriptions::list(self, q).await
    }

    async fn activate_subscription(
        &self,
        id: &str,
        agreement_no: &str,
        buyer_id: Option<&str>,
        at: i64,
    ) -> Result<Option<Subscription>> {
        subscriptions::activate(self, id, agreement_no, buyer_id, at).await
    }

    async fn cancel_subscription(&self, id: &str, at: i64) -> Result<Option<Subscription>> {
        subscriptions::cancel(self, id, at).await
    }

    async fn claim_due_subscriptions(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Subscription>> {
        subscriptions::claim_due(self, now, lease_until, limit).await
    }

    async fn charge_order(
        &self,
        subscription_id: &str,
        period: i64,
        order: NewOrder,
    ) -> Result<Order> {
        subscriptions::charge_order(self, subscription_id, period, order).await
    }

    async fn record_charge(
        &self,
        subscription_id: &str,
        period: i64,
        result: &ChargeResult,
        at: i64,
    ) -> Result<Option<Subscription>> {
        subscriptions::record_charge(self, subscription_id, period, result, at).await
    }

    async fn release_subscription(&self, id: &str, retry_at: i64) -> Result<()> {
        subscriptions::release(self, id, retry_at).await
    }

    async fn list_subscription_charges(&self, id: &str) -> Result<Vec<(i64, Order)>> {
        subscriptions::charges(self, id).await
    }

    async fn subscription_of_order(&self, order_id: &str) -> Result<Option<(String, i64)>> {
        subscriptions::subscription_of_order(self, order_id).await
    }

    async fn list_subscription_events(&self, id: &str) -> Result<Vec<SubscriptionEvent>> {
        subscription_events::events(self, id).await
    }

    async fn count_subscriptions_by_status(&self) -> Result<Vec<(SubscriptionStatus, i64)>> {
        subscriptions::count_by_status(self).await
    }

    async fn recent_subscription_events(&self, limit: i64) -> Result<Vec<SubscriptionEvent>> {
        subscription_events::recent_events(self, limit).await
    }

    async fn claim_due_subscription_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        subscription_id: Option<&str>,
    ) -> Result<Vec<SubscriptionEvent>> {
        subscription_events::claim_due_events(self, now, lease_until, limit, subscription_id).await
    }

    async fn claim_subscription_event_for_resend(
        &self,
        event_id: &str,
        lease_until: i64,
    ) -> Result<Option<SubscriptionEvent>> {
        subscription_events::claim_event_for_resend(self, event_id, lease_until).await
    }

    async fn finish_subscription_event_delivery(
        &self,
        event_id: &str,
        at: i64,
        error: Option<&str>,
        next: DeliveryNext,
    ) -> Result<()> {
        subscription_events::finish_event_delivery(self, event_id, at, error, next).await
    }
}

-- Schema 3 (see the PostgreSQL migration): the `closing` status, late
-- payments, refund origin and gateway calls, the per-order refund slot.
-- MySQL 8.0.19+ and MariaDB both know `DROP CONSTRAINT`.

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'closing', 'paid', 'closed', 'refunded'));
ALTER TABLE orders ADD COLUMN paid_after_close BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN refund_slot_at BIGINT;

ALTER TABLE refunds ADD COLUMN origin VARCHAR(32) NOT NULL DEFAULT 'merchant';
ALTER TABLE refunds ADD CONSTRAINT refunds_origin_check
    CHECK (origin IN ('merchant', 'paid_after_close'));
ALTER TABLE refunds ADD COLUMN gateway_calls BIGINT NOT NULL DEFAULT 0;

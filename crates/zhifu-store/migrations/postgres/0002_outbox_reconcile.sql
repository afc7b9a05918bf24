-- Schema 2: the webhook outbox and reconcile leases. Kept textually
-- identical for SQLite and PostgreSQL.

-- Reconcile: a pass claims a row by moving `reconcile_after` into the
-- future (a lease). A pass that dies leaves the lease to expire, and the next
-- pass picks the row up again: nothing is lost, nothing runs twice at once.
ALTER TABLE orders ADD COLUMN reconcile_after BIGINT;
ALTER TABLE refunds ADD COLUMN reconcile_after BIGINT;

-- order_events becomes the outbox: every event is written in the same
-- transaction as the state change it describes, and is `pending` until the
-- merchant's endpoint answered 2xx (`delivered`) or the retry budget ran out
-- (`failed`). `next_attempt_at` is both the retry schedule and the lease of
-- an attempt in flight.
ALTER TABLE order_events ADD COLUMN webhook_state TEXT NOT NULL DEFAULT 'pending'
    CHECK (webhook_state IN ('pending', 'delivered', 'failed'));
ALTER TABLE order_events ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_events ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE order_events ADD COLUMN delivered_at BIGINT;
ALTER TABLE order_events ADD COLUMN last_error TEXT;
UPDATE order_events SET next_attempt_at = created_at;
CREATE INDEX order_events_due ON order_events (webhook_state, next_attempt_at);

-- One row per delivery attempt, for `zhifu webhooks list` and the admin view.
CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES order_events (id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    http_status BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, at);

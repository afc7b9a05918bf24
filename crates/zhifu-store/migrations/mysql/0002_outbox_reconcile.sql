-- Schema 2: the webhook outbox and reconcile leases (see the PostgreSQL
-- migration for what each column means).

ALTER TABLE orders ADD COLUMN reconcile_after BIGINT;
ALTER TABLE refunds ADD COLUMN reconcile_after BIGINT;

ALTER TABLE order_events ADD COLUMN webhook_state VARCHAR(16) NOT NULL DEFAULT 'pending';
ALTER TABLE order_events ADD CONSTRAINT order_events_webhook_state_check
    CHECK (webhook_state IN ('pending', 'delivered', 'failed'));
ALTER TABLE order_events ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_events ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE order_events ADD COLUMN delivered_at BIGINT;
ALTER TABLE order_events ADD COLUMN last_error TEXT;
UPDATE order_events SET next_attempt_at = created_at;
CREATE INDEX order_events_due ON order_events (webhook_state, next_attempt_at);

CREATE TABLE webhook_attempts (
    id          VARCHAR(64) NOT NULL PRIMARY KEY,
    event_id    VARCHAR(64) NOT NULL,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    http_status BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    CONSTRAINT webhook_attempts_event_fk FOREIGN KEY (event_id) REFERENCES order_events (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, at);

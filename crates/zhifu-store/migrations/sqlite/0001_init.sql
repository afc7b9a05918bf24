-- Zhifu payment backend, schema 1 (SQLite). Kept textually identical to the
-- PostgreSQL migration where the dialects allow: TEXT ids, BIGINT fen and
-- epoch milliseconds (BIGINT has INTEGER affinity in SQLite).

CREATE TABLE orders (
    id                 TEXT PRIMARY KEY,
    out_trade_no       TEXT NOT NULL UNIQUE,
    subject            TEXT NOT NULL,
    body               TEXT,
    total_fen          BIGINT NOT NULL CHECK (total_fen > 0),
    refunded_fen       BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= total_fen),
    -- Sum of refunds sent to Alipay whose outcome is not known yet.
    refund_pending_fen BIGINT NOT NULL DEFAULT 0 CHECK (refund_pending_fen >= 0),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'closed', 'refunded')),
    trade_no           TEXT,
    buyer_logon_id     TEXT,
    buyer_id           TEXT,
    channel            TEXT,
    metadata           TEXT,
    idempotency_key    TEXT UNIQUE,
    request_hash       TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    paid_at            BIGINT,
    closed_at          BIGINT
);
CREATE INDEX orders_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created ON orders (status, created_at DESC, id DESC);

-- One row per recorded state change: the audit trail and the seed of the
-- webhook outbox (written in the same transaction as the change).
CREATE TABLE order_events (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES orders (id),
    type         TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    refunded_fen BIGINT NOT NULL,
    source       TEXT NOT NULL,
    notify_id    TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX order_events_order ON order_events (order_id, created_at);

-- Every message that reached the verified state-change path (notifications,
-- query answers, …) and every rejected notification, with its outcome.
CREATE TABLE notifications (
    id           TEXT PRIMARY KEY,
    order_id     TEXT REFERENCES orders (id),
    out_trade_no TEXT,
    notify_id    TEXT,
    source       TEXT NOT NULL,
    trade_status TEXT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'anomaly')),
    reason       TEXT,
    payload      TEXT,
    received_at  BIGINT NOT NULL
);
CREATE INDEX notifications_order ON notifications (order_id, received_at);
CREATE INDEX notifications_notify_id ON notifications (notify_id);

CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    out_request_no  TEXT NOT NULL,
    amount_fen      BIGINT NOT NULL CHECK (amount_fen > 0),
    reason          TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_code    TEXT,
    idempotency_key TEXT,
    request_hash    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (order_id, out_request_no),
    UNIQUE (order_id, idempotency_key)
);
CREATE INDEX refunds_status ON refunds (status, created_at);

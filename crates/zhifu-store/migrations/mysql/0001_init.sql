-- Zhifu payment backend, schema 1 (MySQL 8 / MariaDB ≥ 10.6). The same
-- tables as the SQLite and PostgreSQL migrations with MySQL's types: keys
-- and indexed columns are VARCHAR (MySQL cannot index TEXT without a prefix
-- length), every table is InnoDB in utf8mb4 with the binary collation, so
-- that ids, `out_trade_no` and idempotency keys compare byte for byte as
-- they do on the other backends (the default collations ignore case), and
-- foreign keys are table constraints (MySQL ignores `REFERENCES` written on
-- a column).

CREATE TABLE orders (
    id                 VARCHAR(64) NOT NULL PRIMARY KEY,
    out_trade_no       VARCHAR(255) NOT NULL UNIQUE,
    subject            TEXT NOT NULL,
    body               TEXT,
    total_fen          BIGINT NOT NULL CHECK (total_fen > 0),
    refunded_fen       BIGINT NOT NULL DEFAULT 0,
    -- Sum of refunds sent to Alipay whose outcome is not known yet.
    refund_pending_fen BIGINT NOT NULL DEFAULT 0 CHECK (refund_pending_fen >= 0),
    status             VARCHAR(16) NOT NULL,
    trade_no           TEXT,
    buyer_logon_id     TEXT,
    buyer_id           TEXT,
    channel            TEXT,
    metadata           MEDIUMTEXT,
    idempotency_key    VARCHAR(255) UNIQUE,
    request_hash       TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    paid_at            BIGINT,
    closed_at          BIGINT,
    CONSTRAINT orders_refunded_check CHECK (refunded_fen >= 0 AND refunded_fen <= total_fen),
    CONSTRAINT orders_status_check CHECK (status IN ('pending', 'paid', 'closed', 'refunded'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX orders_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created ON orders (status, created_at DESC, id DESC);

-- One row per recorded state change: the audit trail and the seed of the
-- webhook outbox (written in the same transaction as the change).
CREATE TABLE order_events (
    id           VARCHAR(64) NOT NULL PRIMARY KEY,
    order_id     VARCHAR(64) NOT NULL,
    type         VARCHAR(32) NOT NULL,
    from_status  VARCHAR(16) NOT NULL,
    to_status    VARCHAR(16) NOT NULL,
    refunded_fen BIGINT NOT NULL,
    source       VARCHAR(32) NOT NULL,
    notify_id    TEXT,
    created_at   BIGINT NOT NULL,
    CONSTRAINT order_events_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX order_events_order ON order_events (order_id, created_at);

-- Every message that reached the verified state-change path (notifications,
-- query answers, …) and every rejected notification, with its outcome.
CREATE TABLE notifications (
    id           VARCHAR(64) NOT NULL PRIMARY KEY,
    order_id     VARCHAR(64),
    out_trade_no TEXT,
    notify_id    TEXT,
    source       VARCHAR(32) NOT NULL,
    trade_status TEXT,
    outcome      VARCHAR(16) NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'anomaly')),
    reason       TEXT,
    payload      MEDIUMTEXT,
    received_at  BIGINT NOT NULL,
    CONSTRAINT notifications_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX notifications_order ON notifications (order_id, received_at);
-- A prefix index: `notify_id` comes from outside and has no set length.
CREATE INDEX notifications_notify_id ON notifications (notify_id(191));

CREATE TABLE refunds (
    id              VARCHAR(64) NOT NULL PRIMARY KEY,
    order_id        VARCHAR(64) NOT NULL,
    out_request_no  VARCHAR(255) NOT NULL,
    amount_fen      BIGINT NOT NULL CHECK (amount_fen > 0),
    reason          TEXT,
    status          VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_code    TEXT,
    idempotency_key VARCHAR(255),
    request_hash    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (order_id, out_request_no),
    UNIQUE (order_id, idempotency_key),
    CONSTRAINT refunds_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX refunds_status ON refunds (status, created_at);

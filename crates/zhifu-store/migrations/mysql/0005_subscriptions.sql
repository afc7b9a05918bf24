-- Schema 5 (see the PostgreSQL migration): subscriptions, the order of
-- each charged period, and the subscriptions' webhook outbox.

CREATE TABLE subscriptions (
    id                    VARCHAR(64) NOT NULL PRIMARY KEY,
    external_agreement_no VARCHAR(64) NOT NULL UNIQUE,
    agreement_no          VARCHAR(128),
    status                VARCHAR(32) NOT NULL,
    subject               TEXT NOT NULL,
    amount_fen            BIGINT NOT NULL,
    period_unit           VARCHAR(16) NOT NULL,
    period_every          BIGINT NOT NULL,
    first_charge_date     VARCHAR(16) NOT NULL,
    max_periods           BIGINT,
    channel               VARCHAR(16) NOT NULL,
    return_url            TEXT,
    metadata              TEXT,
    buyer_id              VARCHAR(128),
    periods_charged       BIGINT NOT NULL DEFAULT 0,
    next_period           BIGINT NOT NULL DEFAULT 1,
    next_charge_at        BIGINT,
    failed_attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until           BIGINT,
    idempotency_key       VARCHAR(255) UNIQUE,
    request_hash          VARCHAR(128),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    activated_at          BIGINT,
    canceled_at           BIGINT,
    CONSTRAINT subscriptions_status_check CHECK (status IN ('pending_signature', 'active', 'past_due', 'canceled', 'completed')),
    CONSTRAINT subscriptions_amount_fen_check CHECK (amount_fen > 0),
    CONSTRAINT subscriptions_period_unit_check CHECK (period_unit IN ('day', 'month')),
    CONSTRAINT subscriptions_period_every_check CHECK (period_every > 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX subscriptions_created ON subscriptions (created_at, id);
CREATE INDEX subscriptions_due ON subscriptions (status, next_charge_at);

CREATE TABLE subscription_charges (
    subscription_id VARCHAR(64) NOT NULL,
    period          BIGINT NOT NULL,
    order_id        VARCHAR(64) NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, period),
    CONSTRAINT subscription_charges_sub_fk FOREIGN KEY (subscription_id) REFERENCES subscriptions (id),
    CONSTRAINT subscription_charges_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE subscription_events (
    id              VARCHAR(64) NOT NULL PRIMARY KEY,
    subscription_id VARCHAR(64) NOT NULL,
    type            VARCHAR(64) NOT NULL,
    order_id        VARCHAR(64),
    period          BIGINT,
    created_at      BIGINT NOT NULL,
    webhook_state   VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    delivered_at    BIGINT,
    last_error      TEXT,
    CONSTRAINT subscription_events_webhook_state_check CHECK (webhook_state IN ('pending', 'delivered', 'failed')),
    CONSTRAINT subscription_events_sub_fk FOREIGN KEY (subscription_id) REFERENCES subscriptions (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX subscription_events_sub ON subscription_events (subscription_id, created_at);
CREATE INDEX subscription_events_due ON subscription_events (webhook_state, next_attempt_at);

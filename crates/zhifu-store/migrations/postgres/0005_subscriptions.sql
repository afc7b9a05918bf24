-- Schema 5: subscriptions (Alipay recurring agreements, 周期扣款). Kept
-- textually identical for SQLite and PostgreSQL.
--
-- A subscription is the merchant's side of one agreement: it is
-- `pending_signature` until a verified `dut_user_sign` notification (or a
-- signed `alipay.user.agreement.query` answer) says NORMAL, then `active`.
-- Each period is charged by one order whose `out_trade_no` is derived from
-- the subscription and the period number (`subscription_charges` links
-- them, one row per period), so a rerun or a concurrent pass can only ever
-- find the same order again. `lease_until` is a charging pass's claim.
CREATE TABLE subscriptions (
    id                    TEXT PRIMARY KEY,
    external_agreement_no TEXT NOT NULL UNIQUE,
    agreement_no          TEXT,
    status                TEXT NOT NULL CHECK (status IN ('pending_signature', 'active', 'past_due', 'canceled', 'completed')),
    subject               TEXT NOT NULL,
    amount_fen            BIGINT NOT NULL CHECK (amount_fen > 0),
    period_unit           TEXT NOT NULL CHECK (period_unit IN ('day', 'month')),
    period_every          BIGINT NOT NULL CHECK (period_every > 0),
    first_charge_date     TEXT NOT NULL,
    max_periods           BIGINT,
    channel               TEXT NOT NULL,
    return_url            TEXT,
    metadata              TEXT,
    buyer_id              TEXT,
    periods_charged       BIGINT NOT NULL DEFAULT 0,
    next_period           BIGINT NOT NULL DEFAULT 1,
    next_charge_at        BIGINT,
    failed_attempts       BIGINT NOT NULL DEFAULT 0,
    lease_until           BIGINT,
    idempotency_key       TEXT UNIQUE,
    request_hash          TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    activated_at          BIGINT,
    canceled_at           BIGINT
);
CREATE INDEX subscriptions_created ON subscriptions (created_at, id);
CREATE INDEX subscriptions_due ON subscriptions (status, next_charge_at);

CREATE TABLE subscription_charges (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    period          BIGINT NOT NULL,
    order_id        TEXT NOT NULL UNIQUE REFERENCES orders (id),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, period)
);

-- The subscriptions' webhook outbox, delivered like `order_events`.
CREATE TABLE subscription_events (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    type            TEXT NOT NULL,
    order_id        TEXT,
    period          BIGINT,
    created_at      BIGINT NOT NULL,
    webhook_state   TEXT NOT NULL DEFAULT 'pending' CHECK (webhook_state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    delivered_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX subscription_events_sub ON subscription_events (subscription_id, created_at);
CREATE INDEX subscription_events_due ON subscription_events (webhook_state, next_attempt_at);

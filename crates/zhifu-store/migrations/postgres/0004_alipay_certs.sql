-- Schema 4: Alipay certificates learnt in certificate mode after Alipay
-- rotated its certificate (`alipay.open.app.alipaycert.download`), shared by
-- every instance: the accepted ones (they chained to the configured root
-- bundle and were within their validity) and the refused ones with why, so
-- a refusal is on record and not downloaded again and again.

CREATE TABLE alipay_certs (
    sn          TEXT PRIMARY KEY,
    pem         TEXT,
    accepted    BIGINT NOT NULL,
    reason      TEXT,
    recorded_at BIGINT NOT NULL
);

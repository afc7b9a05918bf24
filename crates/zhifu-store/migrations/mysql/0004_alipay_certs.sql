-- Schema 4 (see the PostgreSQL migration): Alipay certificates learnt in
-- certificate mode, shared by every instance.

CREATE TABLE alipay_certs (
    sn          VARCHAR(128) NOT NULL PRIMARY KEY,
    pem         TEXT,
    accepted    BIGINT NOT NULL,
    reason      TEXT,
    recorded_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

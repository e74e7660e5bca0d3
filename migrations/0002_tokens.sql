-- Access tokens (only their SHA-256) with their context, and used grant jtis (replay store).
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    custodian TEXT NOT NULL,
    purpose TEXT NOT NULL,
    credential_ids TEXT NOT NULL,
    bsn TEXT NOT NULL,
    user_identity TEXT,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE TABLE used_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

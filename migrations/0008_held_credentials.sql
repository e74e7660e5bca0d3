-- Credentials we hold: issued to us by custodians (the requesting / GP side, `poortwachter
-- egress`), kept apart from the credentials we issued. egress picks one by (issuer, purpose, bsn).
CREATE TABLE held_credentials (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bsn TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT,
    imported_at BIGINT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX held_credentials_lookup ON held_credentials (issuer, purpose, bsn)

-- Issued authorization credentials and their revocations (kept forever).
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject_did TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bsn TEXT NOT NULL,
    consent_type TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT,
    document TEXT NOT NULL
);
CREATE INDEX credentials_subject_did ON credentials (subject_did);
CREATE INDEX credentials_bsn ON credentials (bsn);
CREATE TABLE revocations (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id),
    reason TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);

-- MedMij "Delen" (the DVA side): browser sessions of the authorization flow, authorization codes
-- and access tokens. Codes, tokens and sessions are stored only as the SHA-256 of their value.
-- Numbered 0007 on its branch (0005 and 0006 are taken elsewhere). The order is the list in
-- src/store/migrations.rs.
CREATE TABLE medmij_sessions (
    hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX medmij_sessions_expires_at ON medmij_sessions (expires_at);
CREATE TABLE medmij_codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    aanbieder TEXT NOT NULL,
    gegevensdienst TEXT NOT NULL,
    code_challenge TEXT,
    bsn TEXT NOT NULL,
    correlation_id TEXT,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    token_hash TEXT
);
CREATE INDEX medmij_codes_expires_at ON medmij_codes (expires_at);
CREATE TABLE medmij_tokens (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    aanbieder TEXT NOT NULL,
    gegevensdienst TEXT NOT NULL,
    bsn TEXT NOT NULL,
    correlation_id TEXT,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX medmij_tokens_expires_at ON medmij_tokens (expires_at)

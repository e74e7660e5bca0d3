-- The admin console (/ui/ on the internal listener). Numbered 0008 to leave room for the
-- migrations of the other wave-2 branches (its place in store::migrations::MIGRATIONS decides
-- its version). No semicolons in these comments: the runner splits on them.
-- One row per running `serve` instance, refreshed every few seconds (the health page's replicas).
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    version TEXT NOT NULL,
    internal_addr TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    revocations BIGINT NOT NULL,
    ended_tokens BIGINT NOT NULL
);
-- Access tokens ended from the console before their expiry (their credential stays valid). Like
-- revocations, never deleted: replicas follow them by their count.
CREATE TABLE ended_tokens (
    hash TEXT PRIMARY KEY,
    ended_at BIGINT NOT NULL,
    ended_by TEXT NOT NULL
);
-- Console accounts: argon2id hashes set with `poortwachter admin set-password`.
CREATE TABLE console_users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tokens_requester ON tokens (requester);

-- NEN 7513 audit log: append-only, hash-chained (hash = SHA-256 of prev_hash, newline, record).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    time_unix BIGINT NOT NULL,
    requester TEXT NOT NULL,
    bsn TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time_unix);
CREATE INDEX audit_log_bsn ON audit_log (bsn);
-- Patient ids a token may access, learned from its patient search.
CREATE TABLE token_patients (
    hash TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (hash, patient_id)
);

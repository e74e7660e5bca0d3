#!/usr/bin/env bash
# Benchmark (not a test): `audit verify` and `audit export` on a large audit log.
#
# Builds a throw-away data dir, writes N chained audit records (default 600,000, realistic proxy
# records of about 600 bytes) straight into its SQLite database, then times `audit verify`,
# `audit verify --anchor` and `audit export` with /usr/bin/time: seconds, records/s and peak RSS.
# Both commands stream the log, so their RSS must stay flat whatever N; the reference is a plain
# scan of the same rows by Python's sqlite3 (time), and the database's size (memory).
# Usage: bash bench/audit.sh [records]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-600000}"
cargo build --release --quiet --bin poortwachter
BIN="$PWD/target/release/poortwachter"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$BIN" --data-dir "$W/data" init >/dev/null 2>&1
"$BIN" --data-dir "$W/data" audit verify >/dev/null   # creates and migrates the database
HEAD=$(python3 - "$W/data/poortwachter.db" "$N" <<'PY'
import hashlib, json, sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
prev = "0" * 64
def rows():
    global prev
    for i in range(1, n + 1):
        rec = json.dumps({"time": "2026-12-01T00:00:00.000Z", "request_id": f"r{i}", "kind": "proxy",
            "requester": "did:web:huisarts.example.nl", "user": None,
            "purpose": "zorginzage-thuiszorgdossier-door-huisarts", "bsn": "999999990", "method": "GET",
            "path": "/Observation?patient=pat-1&_profile=http%3A%2F%2Fnictiz.nl%2Ffhir%2FStructureDefinition%2Fzib-BodyWeight&_sort=-date&_count=5",
            "decision": "permit", "rule": "observation-search", "status": 200, "upstream_status": 200},
            separators=(",", ":"))
        h = hashlib.sha256((prev + "\n" + rec).encode()).hexdigest()
        yield (i, 1764547200, "did:web:huisarts.example.nl", "999999990", rec, prev, h)
        prev = h
c.executemany("INSERT INTO audit_log (seq, time_unix, requester, bsn, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(prev)
PY
)
DB_MB=$(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1]) / 1e6:.0f}')" "$W/data/poortwachter.db")
echo "$N records, database $DB_MB MB"
REF=$(python3 - "$W/data/poortwachter.db" <<'PY'
import sqlite3, sys, time
t = time.perf_counter()
n = sum(1 for _ in sqlite3.connect(sys.argv[1]).execute("SELECT seq, time_unix, requester, bsn, record, prev_hash, hash FROM audit_log ORDER BY seq"))
print(f"{time.perf_counter() - t:.2f}")
PY
)
echo "reference: Python sqlite3 scan of the same rows  $REF s"
measure() { # label, command... -> one line
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/time" "$@" > "$W/out" || true
  read -r secs kib < "$W/time"
  python3 -c "import sys; l, s, k, n, r, db = sys.argv[1:7]; s, k, n, r, db = float(s), int(k), int(n), float(r), float(db); print(f'{l:22} {s:6.2f} s  {n / s:9.0f} records/s  {s / r:5.2f}x the scan   peak RSS {k / 1024:6.1f} MB ({k / 1024 / db:.3f}x the database)')" \
    "$label" "$secs" "$kib" "$N" "$REF" "$DB_MB"
}
measure "audit verify" "$BIN" --data-dir "$W/data" audit verify
grep -q "audit log intact: $N records, head $HEAD" "$W/out" || { echo "verify said: $(cat "$W/out")"; exit 1; }
measure "audit verify --anchor" "$BIN" --data-dir "$W/data" audit verify --anchor "$N:$HEAD"
grep -q "audit log intact: $N records" "$W/out" || { echo "verify --anchor said: $(cat "$W/out")"; exit 1; }
measure "audit export" "$BIN" --data-dir "$W/data" audit export
[ "$(wc -l < "$W/out")" = "$N" ] || { echo "export wrote $(wc -l < "$W/out") lines, not $N"; exit 1; }

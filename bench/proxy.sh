#!/usr/bin/env bash
# Proxy benchmark (not a test): poortwachter against nginx, in one run on 127.0.0.1.
#
#   direct     wrk → nginx upstream (a ~2 KB FHIR searchset Bundle)
#   nginx      wrk → nginx reverse proxy → upstream
#   auth       wrk → nginx with auth_request → poortwachter's verify endpoint; → upstream
#   bare       wrk → examples/bare_proxy.rs → upstream: poortwachter's own HTTP stack (accept
#              loop, worker threads, pooled hyper client) forwarding as is, without token,
#              policy, response check or audit: the ceiling of the stack, so the gap to nginx
#              splits into what the stack costs and what the checks cost
#   pw         wrk → poortwachter (token, policy, patient check, audit) → upstream
#
#   pg2        (with PW_PG set) two poortwachter replicas on one PostgreSQL database, each
#              driven by its own wrk with half the connections at the same time; their sum
#
# Same connections, threads, duration and path for each. Prints requests/s, p50 and p99, how busy
# the machine's CPUs were (below 100%: the setup waits rather than computes), the ratios, the
# p99 that each proxy adds over the direct upstream (nginx's own and the bare stack's are the
# yardstick for poortwachter's), poortwachter's peak RSS, and the CPU per request of each thread
# of the bare stack and of poortwachter. Then the same path over one connection (wrk -c1): the
# latency each proxy adds when nothing queues. Before the runs, the file system of the data dir
# and its flush latency (4 KiB write + fdatasync, 2,000 times): every poortwachter answer waits
# for at least one such flush (the audit record is durable before the answer leaves).
# Needs nginx and wrk (installed with apt-get if missing).
# Usage: bash bench/proxy.sh [duration-seconds] [connections]
#        PW_PERF=/tmp/pw.perf bash bench/proxy.sh   # also a perf profile of poortwachter
#        PW_WAL_MIB=1024 bash bench/proxy.sh   # sqlite_wal_max_mib (default 64)
#        PW_SYNCS=1 bash bench/proxy.sh   # also count commits (fdatasync) and context switches
#        PW_PG=postgres://postgres@127.0.0.1:5432/test bash bench/proxy.sh   # also the replicas
#        TMPDIR=/dev/shm bash bench/proxy.sh   # data dir on tmpfs: what the durable audit costs
#        PW_SEPARATE_UPSTREAM=1 bash bench/proxy.sh   # the upstream in an nginx of its own
#        PW_SKIP_TLS=1 bash bench/proxy.sh   # without bench/tls.sh (mutual TLS against nginx)
#                                            # after the plain runs (PW_TLS_ROUNDS=3 rounds)
# The "steal" column: the share of CPU time the hypervisor gave to other guests while this one's
# CPUs wanted to run (on a virtual machine; 0 on bare metal). Compare runs only at a similar steal.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-32}"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && (apt-get install -y -qq nginx-light wrk || apt-get install -y -qq nginx wrk) >/dev/null
fi
# PW_NO_BUILD=1: use the binaries already built (an A/B run against copies made earlier).
[ -n "${PW_NO_BUILD:-}" ] || cargo build --release --quiet --bin poortwachter --example bare_proxy
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="${PW_BIN:-$TARGET/release/poortwachter}"   # PW_BIN: another build (e.g. with frame pointers, for PW_PERF)
W=$(mktemp -d)
chmod 755 "$W"   # nginx workers read the upstream body from here
cleanup() {
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [ -f "$W/upstream.pid" ] && kill "$(cat "$W/upstream.pid")" 2>/dev/null || true
  [ -n "${PW_PID:-}" ] && kill "$PW_PID" 2>/dev/null || true
  [ -n "${BARE_PID:-}" ] && kill "$BARE_PID" 2>/dev/null || true
  [ -n "${R1_PID:-}" ] && kill "$R1_PID" "$R2_PID" 2>/dev/null || true
  [ -n "${PG_DB:-}" ] && { sleep 0.5; psql "$PW_PG" -qc "drop database if exists $PG_DB with (force)" >/dev/null 2>&1 || true; }
  rm -rf "$W"
}
trap cleanup EXIT
. bench/lib.sh   # free_port, write_upstream_bodies (the cd above put us at the repo root)
UP=$(free_port); NGX=$(free_port); AUTH=$(free_port); PUB=$(free_port); INT=$(free_port); BARE=$(free_port)

# The upstream body: a searchset Bundle with Observations of pat-1 (about 2 KB).
write_upstream_bodies "$W"
echo "upstream body: $(wc -c < "$W/obs.json") bytes"

UPSTREAM_SERVER="  server {
    listen 127.0.0.1:$UP;
    location = /fhir/Observation { default_type application/fhir+json; alias $W/obs.json; }
    location = /fhir/Patient/_search { default_type application/fhir+json; return 200 '$(cat "$W/patient.json")'; }
  }"
# One nginx instance (one worker process) named $1, its http block's contents on stdin.
nginx_instance() {
  { printf 'worker_processes 1;\npid %s/%s.pid;\nerror_log %s/%s-error.log warn;\n' "$W" "$1" "$W" "$1"
    printf 'events { worker_connections 4096; }\nhttp {\n  access_log off;\n'; cat; printf '}\n'; } > "$W/$1.conf"
  nginx -c "$W/$1.conf" -p "$W"
}
# PW_SEPARATE_UPSTREAM=1: the upstream is an nginx instance of its own (another process, as a
# source system is), rather than a server block in the proxies' nginx worker. In one worker, the
# nginx proxies reach their upstream without a wake-up of another process; poortwachter and the
# bare stack never can.
UPSTREAM_HERE="$UPSTREAM_SERVER"
if [ -n "${PW_SEPARATE_UPSTREAM:-}" ]; then
  UPSTREAM_HERE=""
  nginx_instance upstream <<<"$UPSTREAM_SERVER"
fi
nginx_instance nginx <<NGINX
  upstream fhir { server 127.0.0.1:$UP; keepalive 64; }
  upstream pw_internal { server 127.0.0.1:$INT; keepalive 64; }
$UPSTREAM_HERE
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://fhir/fhir/; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$AUTH;
    location / {
      auth_request /_verify;
      proxy_pass http://fhir/fhir/; proxy_http_version 1.1; proxy_set_header Connection "";
    }
    location = /_verify {
      internal;
      proxy_pass http://pw_internal/internal/auth/v1/accesstoken/verify;
      proxy_method HEAD; proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
NGINX

# poortwachter: custodian with a credential for a requester, and a token. Like for like: one
# HTTP worker thread, as nginx above runs one worker process (PW_WORKERS=N to change; 0 = one
# per core). On this 2-core machine, shared with wrk and the nginx upstream, one worker was also
# the faster setting (bare stack 33k against 20k req/s with two).
WORKERS=${PW_WORKERS:-1}
cat > "$W/config.toml" <<TOML
data_dir = "$W/custodian"
policies_dir = "$PWD/policies"
public_addr = "127.0.0.1:$PUB"
internal_addr = "127.0.0.1:$INT"
public_url = "http://127.0.0.1:$PUB"
upstream = "http://127.0.0.1:$UP/fhir"
log_format = "json"
http_workers = $WORKERS
sqlite_wal_max_mib = ${PW_WAL_MIB:-64}
TOML
CUSTODIAN=$("$BIN" --config "$W/config.toml" init 2>/dev/null)
REQUESTER=$("$BIN" --config "$W/config.toml" --data-dir "$W/huisarts" init 2>/dev/null)
"$BIN" --config "$W/config.toml" credential issue --subject-did "$REQUESTER" --bsn 999999990 \
  --purpose zorginzage-thuiszorgdossier-door-huisarts --consent explicit > "$W/cred.json" 2>/dev/null
RUST_LOG=warn "$BIN" --config "$W/config.toml" serve 2>"$W/pw.log" &
PW_PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$INT/health" >/dev/null && break; sleep 0.1; done
BARE_WORKERS=$WORKERS; [ "$BARE_WORKERS" = 0 ] && BARE_WORKERS=$(nproc)
"$TARGET/release/examples/bare_proxy" "127.0.0.1:$BARE" "http://127.0.0.1:$UP/fhir" "$BARE_WORKERS" &
BARE_PID=$!
TOKEN=$("$BIN" --config "$W/config.toml" --data-dir "$W/huisarts" token request --json \
  --endpoint "http://127.0.0.1:$PUB/n2n/auth/v1/accesstoken" --custodian "$CUSTODIAN" \
  --purpose zorginzage-thuiszorgdossier-door-huisarts --credential "$W/cred.json" \
  --uzi 900012345 --name "Dr. A. Huisarts" --role 01.015 | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# The patient search binds pat-1 to the token.
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-www-form-urlencoded' \
  --data 'identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990' "http://127.0.0.1:$PUB/Patient/_search"

Q='/Observation?patient=pat-1&_profile=http%3A%2F%2Fnictiz.nl%2Ffhir%2FStructureDefinition%2Fzib-BodyWeight&_sort=-date&_count=5'
check() { local code; code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$1"); [ "$code" = 200 ] || { echo "$1 answered $code"; exit 1; }; }
for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$BARE$Q" && break; sleep 0.1; done
check "http://127.0.0.1:$UP/fhir$Q"; check "http://127.0.0.1:$NGX$Q"; check "http://127.0.0.1:$BARE$Q"; check "http://127.0.0.1:$AUTH$Q"; check "http://127.0.0.1:$PUB$Q"

# poortwachter's (or the bare proxy's) CPU per thread: "name ticks", one line per thread.
thread_ticks() { for t in /proc/"$1"/task/*; do awk '{ sub(/^[^(]*\(/, ""); n = $0; sub(/\).*$/, "", n); sub(/^[^)]*\) /, ""); print n, $12 + $13 }' "$t/stat"; done; }
cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat; }   # busy idle steal (iowait counts as idle)
run() { # name url [connections threads seconds] -> "rps p50ms p99ms non2xx cpu-busy% steal%"
  local before after
  before=$(cpu_ticks)
  wrk -t"${4:-2}" -c"${3:-$CONNS}" -d"${5:-$DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$2" > "$W/$1.wrk"
  after=$(cpu_ticks)
  python3 - "$W/$1.wrk" $before $after <<'PY'
import re, sys
t = open(sys.argv[1]).read()
b0, i0, s0, b1, i1, s1 = (int(x) for x in sys.argv[2:8])
busy = 100 * (b1 - b0) / max(1, (b1 - b0) + (i1 - i0))
# Steal: time our virtual CPUs wanted to run while the hypervisor ran someone else's.
steal = 100 * (s1 - s0) / max(1, (b1 - b0) + (i1 - i0) + (s1 - s0))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
def ms(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print(f"{rps:.0f} {ms(50):.3f} {ms(99):.3f} {non2xx.group(1) if non2xx else 0} {busy:.0f} {steal:.1f}")
PY
}
# The data dir's file system and its flush latency, measured here before the load.
python3 - "$W" <<'PY'
import os, subprocess, sys, time
w = sys.argv[1]
fs = subprocess.run(["stat", "-f", "-c", "%T", w], capture_output=True, text=True).stdout.strip()
fd = os.open(f"{w}/flush-probe", os.O_WRONLY | os.O_CREAT, 0o600)
block = b"x" * 4096
os.pwrite(fd, block * 64, 0)
os.fsync(fd)
lat = []
for i in range(2000):
    os.pwrite(fd, block, (i % 64) * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    lat.append((time.perf_counter() - t) * 1e3)
os.close(fd)
os.unlink(f"{w}/flush-probe")
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))]
print(f"data dir on {fs}: 4 KiB write + fdatasync p50 {p(0.5):.3f} ms  p99 {p(0.99):.3f} ms  max {lat[-1]:.3f} ms")
PY
printf '%-10s %10s %9s %9s %8s %9s %6s\n' setup 'req/s' 'p50 ms' 'p99 ms' 'non-2xx' 'cpu busy' 'steal'
declare -A R
for s in direct nginx auth bare pw; do
  case $s in direct) u="http://127.0.0.1:$UP/fhir$Q";; nginx) u="http://127.0.0.1:$NGX$Q";; auth) u="http://127.0.0.1:$AUTH$Q";; bare) u="http://127.0.0.1:$BARE$Q";; pw) u="http://127.0.0.1:$PUB$Q";; esac
  # PW_PERF=FILE: also record a CPU profile of poortwachter while it is driven.
  # PW_STRACE=FILE: count poortwachter's system calls while it is driven.
  if [ "$s" = pw ] && [ -n "${PW_STRACE:-}" ]; then
    timeout "$DURATION" strace -c -f -p "$PW_PID" -o "$PW_STRACE" 2>/dev/null &
  fi
  # PW_SYNCS=1: count poortwachter's commits (fdatasync), WAL writes and context switches.
  if [ "$s" = pw ] && [ -n "${PW_SYNCS:-}" ]; then
    perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,context-switches -p "$PW_PID" -o "$W/syncs.txt" -- sleep "$DURATION" 2>/dev/null &
  fi
  if [ "$s" = pw ] && [ -n "${PW_PERF:-}" ]; then
    perf record -q -F 499 -g -p "$PW_PID" -o "$PW_PERF" -- sleep "$DURATION" 2>/dev/null &
  fi
  case $s in pw) P=$PW_PID;; bare) P=$BARE_PID;; *) P=;; esac
  [ -n "$P" ] && thread_ticks "$P" > "$W/$s.threads.before"
  R[$s]=$(run "$s" "$u")
  [ -n "$P" ] && thread_ticks "$P" > "$W/$s.threads.after"
  read -r rps p50 p99 bad busy steal <<<"${R[$s]}"
  printf '%-10s %10s %9s %9s %8s %8s%% %5s%%\n' "$s" "$rps" "$p50" "$p99" "$bad" "$busy" "$steal"
done
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$PW_PID/status")
python3 - "${R[direct]}" "${R[nginx]}" "${R[auth]}" "${R[pw]}" "${R[bare]}" "$RSS" <<'PY'
import sys
d, n, a, p, b = ([float(x) for x in s.split()] for s in sys.argv[1:6])
rss = int(sys.argv[6]) / 1024
print()
print(f"poortwachter / nginx+auth_request throughput  {p[0]/a[0]:.2f}x   (target >= 1.0)")
print(f"poortwachter / plain nginx proxy throughput   {p[0]/n[0]:.2f}x   (target >= 0.8)")
print(f"poortwachter added p99 over direct upstream  {p[2]-d[2]:.3f} ms (target <= 1 ms; plain nginx adds {n[2]-d[2]:.3f} ms, nginx+auth_request {a[2]-d[2]:.3f} ms, the bare stack {b[2]-d[2]:.3f} ms)")
print(f"bare stack / plain nginx proxy throughput     {b[0]/n[0]:.2f}x   (the stack's own ceiling)")
print(f"poortwachter / bare stack throughput          {p[0]/b[0]:.2f}x   (what the checks and the audit cost)")
print(f"poortwachter peak RSS                         {rss:.1f} MB (target <= 50 MB)")
PY
# Where the CPU went, per thread (name), in microseconds per request.
for s in bare pw; do
python3 - "$W/$s.threads.before" "$W/$s.threads.after" "${R[$s]}" "$DURATION" "$(getconf CLK_TCK)" "$s" <<'PY'
import collections, sys
def load(f):
    d = collections.Counter()
    for line in open(f):
        name, ticks = line.rsplit(" ", 1)
        d[name] += int(ticks)
    return d
before, after = load(sys.argv[1]), load(sys.argv[2])
requests = float(sys.argv[3].split()[0]) * float(sys.argv[4])
hz = int(sys.argv[5])
used = {n: (after[n] - before.get(n, 0)) / hz * 1e6 / requests for n in after}
print(f"{sys.argv[6]:5} CPU per request, by thread:   " + ", ".join(f"{n} {us:.1f} us" for n, us in sorted(used.items(), key=lambda x: -x[1]) if us >= 0.05)
      + f"; total {sum(used.values()):.1f} us")
PY
done
[ -n "${PW_SYNCS:-}" ] && grep -E "fdatasync|pwrite|context" "$W/syncs.txt"
# One connection, nothing queues: the latency each proxy adds by itself.
echo
echo "one connection (wrk -t1 -c1, $DURATION s each): p50 / p99 and what each adds over direct"
declare -A L
for s in direct nginx auth bare pw; do
  case $s in direct) u="http://127.0.0.1:$UP/fhir$Q";; nginx) u="http://127.0.0.1:$NGX$Q";; auth) u="http://127.0.0.1:$AUTH$Q";; bare) u="http://127.0.0.1:$BARE$Q";; pw) u="http://127.0.0.1:$PUB$Q";; esac
  L[$s]=$(run "$s-c1" "$u" 1 1 "$DURATION")
  read -r rps p50 p99 bad _ <<<"${L[$s]}"
  read -r _ d50 d99 _ _ <<<"${L[direct]}"
  python3 -c "import sys; n, r, a, b, c, d = sys.argv[1:7]; print(f'{n:10} {float(r):8.0f} req/s  p50 {float(a):.3f} ms  p99 {float(b):.3f} ms  added p50 {float(a)-float(c):+.3f} ms  p99 {float(b)-float(d):+.3f} ms')" "$s" "$rps" "$p50" "$p99" "$d50" "$d99"
  [ "$bad" = 0 ] || echo "  $bad answers were not 2xx"
done
AUDITED=$("$BIN" --config "$W/config.toml" audit verify)
echo "$AUDITED"

# TLS: poortwachter with mutual TLS against nginx with ssl_verify_client + auth_request, kept-alive
# and a full handshake per request, interleaved with the plain-HTTP pair (PW_SKIP_TLS=1: not).
if [ -z "${PW_SKIP_TLS:-}" ]; then
  echo
  bash bench/tls.sh "$DURATION" "$CONNS" "${PW_TLS_ROUNDS:-3}"
fi

[ -z "${PW_PG:-}" ] && exit 0
# Two replicas on one PostgreSQL database: one identity (the same data dir), one store.
PG_DB="pw_bench_$$"
psql "$PW_PG" -qc "create database $PG_DB"
P1=$(free_port); I1=$(free_port); P2=$(free_port); I2=$(free_port)
for n in 1 2; do
  pub=$([ $n = 1 ] && echo "$P1" || echo "$P2"); int=$([ $n = 1 ] && echo "$I1" || echo "$I2")
  cat > "$W/replica$n.toml" <<TOML
data_dir = "$W/custodian"
policies_dir = "$PWD/policies"
database_url = "${PW_PG%/*}/$PG_DB"
public_addr = "127.0.0.1:$pub"
internal_addr = "127.0.0.1:$int"
public_url = "http://127.0.0.1:$P1"
upstream = "http://127.0.0.1:$UP/fhir"
log_format = "json"
http_workers = $WORKERS
TOML
done
"$BIN" --config "$W/replica1.toml" credential issue --subject-did "$REQUESTER" --bsn 999999990 \
  --purpose zorginzage-thuiszorgdossier-door-huisarts --consent explicit > "$W/cred-pg.json" 2>/dev/null
RUST_LOG=warn "$BIN" --config "$W/replica1.toml" serve 2>"$W/r1.log" & R1_PID=$!
RUST_LOG=warn "$BIN" --config "$W/replica2.toml" serve 2>"$W/r2.log" & R2_PID=$!
for i in $I1 $I2; do for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$i/health" >/dev/null && break; sleep 0.1; done; done
TOKEN=$("$BIN" --config "$W/replica1.toml" --data-dir "$W/huisarts" token request --json \
  --endpoint "http://127.0.0.1:$P1/n2n/auth/v1/accesstoken" --custodian "$CUSTODIAN" \
  --purpose zorginzage-thuiszorgdossier-door-huisarts --credential "$W/cred-pg.json" \
  --uzi 900012345 --name "Dr. A. Huisarts" --role 01.015 | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-www-form-urlencoded' \
  --data 'identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990' "http://127.0.0.1:$P1/Patient/_search"
check "http://127.0.0.1:$P1$Q"; check "http://127.0.0.1:$P2$Q"
HALF=$((CONNS / 2))
wrk -t1 -c"$HALF" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P1$Q" > "$W/pg1.wrk" &
WRK1=$!
wrk -t1 -c"$HALF" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$P2$Q" > "$W/pg2.wrk"
wait $WRK1
python3 - "$W/pg1.wrk" "$W/pg2.wrk" "${R[pw]}" <<'PY'
import re, sys
rps = [float(re.search(r"Requests/sec:\s+([\d.]+)", open(f).read()).group(1)) for f in sys.argv[1:3]]
single = float(sys.argv[3].split()[0])
print()
print(f"two replicas on PostgreSQL (sum)             {sum(rps):.0f} req/s ({rps[0]:.0f} + {rps[1]:.0f})")
print(f"two PostgreSQL replicas / one SQLite         {sum(rps)/single:.2f}x   (same machine: the replicas share its 2 cores)")
PY
"$BIN" --config "$W/replica1.toml" audit verify

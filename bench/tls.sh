#!/usr/bin/env bash
# TLS benchmark (not a test), called by bench/proxy.sh and runnable alone: poortwachter with
# mutual TLS against nginx with `ssl_verify_client on` + `auth_request`, in one run on 127.0.0.1,
# with the same load generator for both (examples/tls_load.rs: wrk cannot present a client
# certificate), the same client certificate, connections, duration and request.
#
#   plain-auth  wrk → nginx (HTTP) + auth_request → poortwachter's verify endpoint; → upstream
#   plain-pw    wrk → poortwachter (HTTP) → upstream              (today's plain-HTTP ratio)
#   ka-nginx    tls_load, kept-alive connections → nginx (mutual TLS, ssl_verify_client on)
#               + auth_request (the client's certificate passed on as X-Client-Cert: the token
#               is bound to it) → upstream
#   ka-pw       tls_load, kept-alive connections → poortwachter (mutual TLS, client_auth =
#               required, the token bound to the certificate) → upstream
#   hs-nginx    the same with a new connection, and so a full handshake, per request
#   hs-pw       (session resumption off in the client: every handshake is a full one)
#
# The machine is shared and noisy, so the setups are interleaved: ROUNDS rounds, each running
# every setup once, and the ratios are printed per round (poortwachter / nginx). Targets: the
# kept-alive TLS ratio ≥ the plain-HTTP ratio of the same round; handshakes ≥ 0.8.
# The certificates are made by `poortwachter tls dev-ca` (P-256, TLS 1.3 with X25519).
# Usage: bash bench/tls.sh [duration-seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-32}"
ROUNDS="${3:-3}"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && (apt-get install -y -qq nginx-light wrk || apt-get install -y -qq nginx wrk) >/dev/null
fi
# PW_NO_BUILD=1: use the binaries already built (an A/B run against copies made earlier).
[ -n "${PW_NO_BUILD:-}" ] || cargo build --release --quiet --bin poortwachter --example tls_load
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="${PW_BIN:-$TARGET/release/poortwachter}"
LOAD="$TARGET/release/examples/tls_load"
W=$(mktemp -d)
chmod 755 "$W"   # nginx workers read the upstream body and the certificates from here
cleanup() {
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  [ -n "${PLAIN_PID:-}" ] && kill "$PLAIN_PID" 2>/dev/null || true
  [ -n "${TLS_PID:-}" ] && kill "$TLS_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
. bench/lib.sh   # free_port, write_upstream_bodies (the cd above put us at the repo root)
UP=$(free_port); AUTH=$(free_port); NGX_TLS=$(free_port)
P_PUB=$(free_port); P_INT=$(free_port); T_PUB=$(free_port); T_INT=$(free_port)

write_upstream_bodies "$W"

# Certificates: a development CA, a server certificate for localhost, a client certificate.
# (nginx's master process reads them as root before its worker starts.)
"$BIN" tls dev-ca --out "$W/certs" --client huisarts >/dev/null
C="$W/certs"

# One nginx (one worker): the upstream, the plain auth_request proxy, and the mutual-TLS one.
cat > "$W/nginx.conf" <<NGINX
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream fhir { server 127.0.0.1:$UP; keepalive 64; }
  upstream pw_plain { server 127.0.0.1:$P_INT; keepalive 64; }
  upstream pw_tls { server 127.0.0.1:$T_INT; keepalive 64; }
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP;
    location = /fhir/Observation { default_type application/fhir+json; alias $W/obs.json; }
    location = /fhir/Patient/_search { default_type application/fhir+json; return 200 '$(cat "$W/patient.json")'; }
  }
  server {
    listen 127.0.0.1:$AUTH;
    location / {
      auth_request /_verify;
      proxy_pass http://fhir/fhir/; proxy_http_version 1.1; proxy_set_header Connection "";
    }
    location = /_verify {
      internal;
      proxy_pass http://pw_plain/internal/auth/v1/accesstoken/verify;
      proxy_method HEAD; proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:$NGX_TLS ssl;
    ssl_certificate $C/server.pem;
    ssl_certificate_key $C/server-key.pem;
    ssl_client_certificate $C/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      auth_request /_verify;
      proxy_pass http://fhir/fhir/; proxy_http_version 1.1; proxy_set_header Connection "";
    }
    location = /_verify {
      internal;
      proxy_pass http://pw_tls/internal/auth/v1/accesstoken/verify;
      proxy_method HEAD; proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
      proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
}
NGINX
nginx -c "$W/nginx.conf" -p "$W"

# Two custodians (one HTTP worker each, as nginx has one worker process): plain HTTP, and
# mutual TLS on the public listener (client_auth = required).
WORKERS=${PW_WORKERS:-1}
for kind in plain tls; do
  pub=$([ $kind = plain ] && echo "$P_PUB" || echo "$T_PUB"); int=$([ $kind = plain ] && echo "$P_INT" || echo "$T_INT")
  host=$([ $kind = plain ] && echo "http://127.0.0.1" || echo "https://localhost")
  cat > "$W/$kind.toml" <<TOML
data_dir = "$W/$kind"
policies_dir = "$PWD/policies"
public_addr = "127.0.0.1:$pub"
internal_addr = "127.0.0.1:$int"
public_url = "$host:$pub"
upstream = "http://127.0.0.1:$UP/fhir"
log_format = "json"
http_workers = $WORKERS
TOML
  if [ $kind = tls ]; then
    cat >> "$W/tls.toml" <<TOML
[tls]
cert = "$C/server.pem"
key = "$C/server-key.pem"
client_ca = ["$C/ca.pem"]
client_auth = "required"
TOML
  fi
done
REQUESTER=$("$BIN" --config "$W/plain.toml" --data-dir "$W/huisarts" init 2>/dev/null)
declare -A TOKEN
for kind in plain tls; do
  CUSTODIAN=$("$BIN" --config "$W/$kind.toml" init 2>/dev/null)
  "$BIN" --config "$W/$kind.toml" credential issue --subject-did "$REQUESTER" --bsn 999999990 \
    --purpose zorginzage-thuiszorgdossier-door-huisarts --consent explicit > "$W/$kind-cred.json" 2>/dev/null
  RUST_LOG=warn "$BIN" --config "$W/$kind.toml" serve 2>"$W/$kind.log" &
  if [ $kind = plain ]; then PLAIN_PID=$!; pub=$P_PUB; int=$P_INT; else TLS_PID=$!; pub=$T_PUB; int=$T_INT; fi
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$int/health" >/dev/null && break; sleep 0.1; done
  if [ $kind = plain ]; then
    TLSARGS=(); CURLTLS=(); BASE="http://127.0.0.1:$pub"
  else
    TLSARGS=(--cacert "$C/ca.pem" --cert "$C/huisarts.pem" --key "$C/huisarts-key.pem")
    CURLTLS=(--cacert "$C/ca.pem" --cert "$C/huisarts.pem" --key "$C/huisarts-key.pem" --resolve "localhost:$pub:127.0.0.1")
    BASE="https://localhost:$pub"
  fi
  # Over mutual TLS the token is bound to huisarts's certificate (RFC 8705).
  TOKEN[$kind]=$("$BIN" --config "$W/$kind.toml" --data-dir "$W/huisarts" token request --json \
    --endpoint "$BASE/n2n/auth/v1/accesstoken" --custodian "$CUSTODIAN" \
    --purpose zorginzage-thuiszorgdossier-door-huisarts --credential "$W/$kind-cred.json" \
    --uzi 900012345 --name "Dr. A. Huisarts" --role 01.015 "${TLSARGS[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -sf -o /dev/null "${CURLTLS[@]}" -H "Authorization: Bearer ${TOKEN[$kind]}" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data 'identifier=http%3A%2F%2Ffhir.nl%2Ffhir%2FNamingSystem%2Fbsn%7C999999990' "$BASE/Patient/_search"
done
if curl -s "http://127.0.0.1:$T_INT/internal/auth/v1/accesstoken/introspect" -d "token=${TOKEN[tls]}" | grep -q '"cnf"'; then
  echo "the TLS token is bound to the client certificate (cnf x5t#S256)"
else
  echo "the TLS token is not bound"; exit 1
fi

Q='/Observation?patient=pat-1&_profile=http%3A%2F%2Fnictiz.nl%2Ffhir%2FStructureDefinition%2Fzib-BodyWeight&_sort=-date&_count=5'
CLIENT=(--cacert "$C/ca.pem" --cert "$C/huisarts.pem" --key "$C/huisarts-key.pem" --path "$Q" \
  --header "Authorization: Bearer ${TOKEN[tls]}")
LOADARGS=("${CLIENT[@]}" --connections "$CONNS" --duration "$DURATION")
# Each setup answers 200 before it is measured.
for port in $NGX_TLS $T_PUB; do
  out=$("$LOAD" --addr "127.0.0.1:$port" "${CLIENT[@]}" --duration 1 --connections 1)
  case "$out" in *"failed=0 non2xx=0"*) ;; *) echo "127.0.0.1:$port: $out"; exit 1;; esac
done

cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat; }
# The servers' CPU (utime + stime ticks): nginx's worker (the proxies and the upstream) and both
# poortwachters; the rest of the busy time is the load generator's.
NGINX_WORKER=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
server_ticks() { cat "/proc/$NGINX_WORKER/stat" "/proc/$PLAIN_PID/stat" "/proc/$TLS_PID/stat" | awk '{ sub(/^[^)]*\) /, ""); t += $12 + $13 } END { print t }'; }
# setup → "rps p50 p99 bad busy% steal% server-cpu-us-per-request"
measure() {
  local before after line s0 s1
  s0=$(server_ticks)
  before=$(cpu_ticks)
  case $1 in
    plain-auth) line=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer ${TOKEN[plain]}" "http://127.0.0.1:$AUTH$Q");;
    plain-pw)   line=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer ${TOKEN[plain]}" "http://127.0.0.1:$P_PUB$Q");;
    ka-nginx)   line=$("$LOAD" --addr "127.0.0.1:$NGX_TLS" "${LOADARGS[@]}");;
    ka-pw)      line=$("$LOAD" --addr "127.0.0.1:$T_PUB" "${LOADARGS[@]}");;
    hs-nginx)   line=$("$LOAD" --addr "127.0.0.1:$NGX_TLS" "${LOADARGS[@]}" --handshake);;
    hs-pw)      line=$("$LOAD" --addr "127.0.0.1:$T_PUB" "${LOADARGS[@]}" --handshake);;
  esac
  after=$(cpu_ticks)
  s1=$(server_ticks)
  python3 - "$line" $before $after "$s0" "$s1" "$(getconf CLK_TCK)" "$DURATION" <<'PY'
import re, sys
t = sys.argv[1]
b0, i0, s0, b1, i1, s1 = (int(x) for x in sys.argv[2:8])
busy = 100 * (b1 - b0) / max(1, (b1 - b0) + (i1 - i0))
steal = 100 * (s1 - s0) / max(1, (b1 - b0) + (i1 - i0) + (s1 - s0))
if "Requests/sec" in t:   # wrk
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    def ms(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    bad = int(bad.group(1)) if bad else 0
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    bad += sum(int(x) for x in errs.groups()) if errs else 0
    p50, p99 = ms(50), ms(99)
else:                     # tls_load
    kv = dict(x.split("=") for x in t.split())
    rps, p50, p99 = float(kv["rps"]), float(kv["p50_ms"]), float(kv["p99_ms"])
    bad = int(kv["failed"]) + int(kv["non2xx"])
s0, s1, hz, seconds = int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10]), float(sys.argv[11])
server_us = (s1 - s0) / hz * 1e6 / max(1.0, rps * seconds)   # per request, all servers together
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {bad} {busy:.0f} {steal:.1f} {server_us:.0f}")
PY
}
echo "$CONNS connections, $DURATION s per setup, $ROUNDS rounds, one worker each (nproc: $(nproc))"
printf '%-6s %-11s %9s %9s %9s %6s %9s %6s %14s\n' round setup 'req/s' 'p50 ms' 'p99 ms' 'bad' 'cpu busy' 'steal' 'server us/req'
SETUPS="plain-auth plain-pw ka-nginx ka-pw hs-nginx hs-pw"
declare -A R
for round in $(seq 1 "$ROUNDS"); do
  # Interleaved: every setup once per round, each pair back to back; in even rounds
  # poortwachter goes first in each pair.
  order=$SETUPS
  [ $((round % 2)) = 0 ] && order="plain-pw plain-auth ka-pw ka-nginx hs-pw hs-nginx"
  for s in $order; do
    R[$round,$s]=$(measure "$s")
    read -r rps p50 p99 bad busy steal sus <<<"${R[$round,$s]}"
    printf '%-6s %-11s %9s %9s %9s %6s %8s%% %5s%% %14s\n' "$round" "$s" "$rps" "$p50" "$p99" "$bad" "$busy" "$steal" "$sus"
  done
done
echo
echo "poortwachter / nginx per round (plain: vs nginx + auth_request over HTTP; TLS: vs nginx ssl_verify_client + auth_request):"
for round in $(seq 1 "$ROUNDS"); do
  python3 - "$round" "${R[$round,plain-auth]}" "${R[$round,plain-pw]}" "${R[$round,ka-nginx]}" "${R[$round,ka-pw]}" "${R[$round,hs-nginx]}" "${R[$round,hs-pw]}" <<'PY'
import sys
r = sys.argv[1]
pa, pp, kn, kp, hn, hp = (float(s.split()[0]) for s in sys.argv[2:8])
ka, plain, hs = kp / kn, pp / pa, hp / hn
print(f"round {r}: plain HTTP {plain:.2f}x   mutual TLS kept-alive {ka:.2f}x ({'>=' if ka >= plain else '<'} plain)   full handshakes {hs:.2f}x ({'>=' if hs >= 0.8 else '<'} 0.8)")
PY
done
"$BIN" --config "$W/tls.toml" audit verify

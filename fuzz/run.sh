#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, one after another, on one core, and
# copies any crash, timeout or out-of-memory input into fuzz/regressions/<target>/ (which
# `cargo test` then runs on every build: tests/it/fuzz_regressions.rs).
#
#   bash fuzz/run.sh            # 60 s per target
#   bash fuzz/run.sh 300 grant  # 300 s, one target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain, or RUSTC_BOOTSTRAP=1 on
# stable (set here). SANITIZER=none skips AddressSanitizer where it does not work.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(grant policy_request fhir_response credential_proof policy_compile identifiers hub_xml client_cert json_body medmij_lists medmij_authorize medmij_token)
fi
export RUSTC_BOOTSTRAP=1
# The fuzz crate's own target dir (git-ignored), never the main one.
export CARGO_TARGET_DIR="$here/target"
sanitizer="${SANITIZER:-address}"
logs="$here/target/run-logs"
mkdir -p "$logs"
cd "$here"
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$logs/$t.log"
    echo "== $t: ${seconds} s (log: $log)"
    # One process (libFuzzer's default): one core. The seeds are read, new inputs go to corpus/.
    if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        >"$log" 2>&1; then
        status=1
    fi
    grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec" "$log" || true
    for f in artifacts/"$t"/crash-* artifacts/"$t"/timeout-* artifacts/"$t"/oom-* artifacts/"$t"/leak-*; do
        [ -e "$f" ] || continue
        mkdir -p "regressions/$t"
        cp "$f" "regressions/$t/"
        echo "   finding: regressions/$t/$(basename "$f")"
        status=1
    done
done
exit "$status"

#!/usr/bin/env bash
# Runs every fuzz target at depth and prints a table of what each did.
# Not part of CI: it needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`), and takes a while.
#
#   fuzz/run.sh                 # 10,000,000 executions of every target
#   RUNS=100000 fuzz/run.sh     # fewer
#   fuzz/run.sh envelope_decode access_log   # some targets only
#
# Built with debug assertions (integer overflow is a crash) and without
# AddressSanitizer: the decoders are safe Rust, where it finds nothing
# that the assertions do not, at a third of the speed.
#
# Each target keeps its corpus in fuzz/corpus/<target>/ and any crash in
# fuzz/artifacts/<target>/; a target that crashes makes the script fail.
set -uo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
FLAGS=(--release --debug-assertions --sanitizer none)
cargo +nightly fuzz build "${FLAGS[@]}" >&2 || exit 1
failed=0
printf '%-18s %14s %10s %12s %s\n' target executions seconds "exec/s" result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log=$(mktemp)
    start=$(date +%s)
    cargo +nightly fuzz run "${FLAGS[@]}" "$t" "corpus/$t" -- \
        -runs="$RUNS" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    status=$?
    secs=$(( $(date +%s) - start ))
    runs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1)
    runs=${runs:-0}
    result=ok
    if [ $status -ne 0 ]; then
        result="FAILED (see fuzz/artifacts/$t, log $log)"
        failed=1
    else
        rm -f "$log"
    fi
    printf '%-18s %14s %10s %12s %s\n' "$t" "$runs" "$secs" "$(( runs / (secs > 0 ? secs : 1) ))" "$result"
done
exit $failed

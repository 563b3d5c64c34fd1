#!/usr/bin/env bash
# Audit-log benchmark (issue 5), release build:
#  (a) durable appends: WRITERS concurrent writers (default 64) append RECORDS realistic ~510-byte
#      records through the real AuditLog (group commit: one write + fdatasync per batch, stored
#      hashes, a signed checkpoint per second); prints records/s and the p50/p99 acknowledgement
#      latency, for RUNS fresh logs. Targets: >= 20,000 records/s, p99 <= 25 ms.
#  (b) verification of VERIFY_RECORDS (default 1,000,000) records: re-hash every record, check
#      seq/time, recompute roots, check every checkpoint. Timed through the library driver and
#      through `rampart audit verify` (when the rampart binary builds). Target: <= 2 s.
# Driver: crates/rampart-audit/examples/audit_bench.rs (builds from rampart-audit alone). The log
# lives in WORKDIR (default /tmp; a real disk, not tmpfs, or (a) measures nothing). Not run in CI.
#
# usage: bench/audit.sh      env: WRITERS=64 RECORDS=100000 VERIFY_RECORDS=1000000 RUNS=3
#                                 WORKDIR=/tmp KEEP=1 (keep the logs)
set -euo pipefail
cd "$(dirname "$0")/.."
WRITERS="${WRITERS:-64}"
RECORDS="${RECORDS:-100000}"
VERIFY_RECORDS="${VERIFY_RECORDS:-1000000}"
RUNS="${RUNS:-3}"
cargo build --release --locked -p rampart-audit --example audit_bench >&2
driver="$PWD/target/release/examples/audit_bench"
rampart=""
if cargo build --release --locked --bin rampart >&2; then
    rampart="$PWD/target/release/rampart"
else
    echo "note: the rampart binary did not build; timing verify through the library driver only" >&2
fi
work="$(mktemp -d "${WORKDIR:-/tmp}/rampart-audit-bench.XXXXXX")"
[[ -n "${KEEP:-}" ]] || trap 'rm -rf "$work"' EXIT
df -T "$work" | tail -n 1 | awk '{print "filesystem: " $2 " on " $1}'

echo "== (a) durable appends: $WRITERS writers, $RECORDS records, $RUNS runs (fresh log each)"
for _ in $(seq 1 "$RUNS"); do
    rm -rf "$work/a"
    sync
    "$driver" append "$work/a" "$WRITERS" "$RECORDS"
done

echo "== (b) verify $VERIFY_RECORDS records"
# The log is built through the same append path (256 writers, to go faster).
"$driver" append "$work/b" 256 "$VERIFY_RECORDS"
du -sh "$work/b" | awk '{print "log size: " $1}'
sync
for _ in $(seq 1 "$RUNS"); do
    "$driver" verify "$work/b"
done
if [[ -n "$rampart" ]]; then
    # `rampart audit verify` wants DATA with the log in DATA/audit.
    mkdir -p "$work/data"
    ln -sfn "$work/b" "$work/data/audit"
    vkey="$(cat "$work/b/verifier-key")"
    for _ in $(seq 1 "$RUNS"); do
        start=$(date +%s.%N)
        "$rampart" audit verify --data "$work/data" --key "$vkey"
        end=$(date +%s.%N)
        echo "rampart audit verify wall: $(echo "$end - $start" | bc) s"
    done
fi

#!/usr/bin/env bash
# Sandbox benchmark (issue 6): per-request overhead of scanning a small model file in a sandboxed
# worker (every layer on, one long-lived worker, spin-poll before blocking) against the same scan
# in-process, p50 and p99 over N requests; and spawn-to-ready time of a fresh worker (re-exec,
# namespaces, rlimits, Landlock, seccomp, cgroup, first message). Targets: overhead <= 15 % at p50,
# spawn-to-ready <= 50 ms. Not run in CI.
#
# Needs the release binary: cargo build --release --locked -p rampart-cli (RAMPART=/path overrides).
# Usage: bench/sandbox.sh [REQUESTS] [SPIN_US]   (defaults 3000 and 200; each file is run with no
# spin and with SPIN_US; run as root and as a user:
#   setpriv --reuid=65534 --regid=65534 --clear-groups bench/sandbox.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RAMPART="${RAMPART:-target/release/rampart}"
requests="${1:-3000}"
spin="${2:-200}"
[ -x "$RAMPART" ] || { echo "build it first: cargo build --release --locked -p rampart-cli" >&2; exit 1; }
# Requests: a PyTorch zip checkpoint (zip + pickle, ~1 KB) and a GGUF header with a chat template
# (scans of ~7-25 us, where the process boundary's fixed cost dominates), and a generated benign
# 30 KB pickle (~150 us, the size of a small inference request in ../shared/notes/runtime.md).
# FILES="a b" overrides.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
chmod 755 "$scratch"
python3 -c "import pickle; pickle.dump({'weights': [float(i) for i in range(3000)],
  'names': ['layer%d' % i for i in range(300)]}, open('$scratch/mid.pkl', 'wb'), protocol=4)"
chmod 644 "$scratch/mid.pkl"
FILES="${FILES:-testdata/scan-corpus/files/torch/benign_checkpoint.ckpt testdata/scan-corpus/files/gguf/benign_template_llama3.gguf $scratch/mid.pkl}"
echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), uid $(id -u), kernel $(uname -r)"
for file in $FILES; do
  for s in 0 "$spin"; do
    "$RAMPART" sandbox bench "$file" --requests "$requests" --spin-us "$s" --spawns 30
  done
done

#!/usr/bin/env bash
# Sign and verify a 2 GiB model (4 files of 512 MiB) with Rampart and with the reference `model_signing`
# CLI in one run, plus `openssl dgst -sha256` over the same files as the hashing yardstick.
# Prints wall times (best of N runs, page cache warm) and the ratios the targets are stated in:
#   Rampart >= 2x faster than model_signing for sign and for verify;
#   Rampart hashing throughput >= 0.9 x (openssl single-core throughput x cores used).
# Needs: model_signing (pip install model-signing pyopenssl), openssl, python3. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
FILE_MIB="${FILE_MIB:-512}"
FILES=4

cargo build --release --locked --bin rampart >&2
rampart="$PWD/target/release/rampart"
keys="$PWD/../shared/fixtures/oms/keys"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
model="$work/model"
mkdir -p "$model"
for i in $(seq 1 $FILES); do
  head -c "$((FILE_MIB * 1024 * 1024))" /dev/urandom >"$model/weights-$i.bin"
done
cat "$model"/* >/dev/null # warm the page cache
total_mib=$((FILE_MIB * FILES))

best() { # best wall time in seconds of RUNS runs of "$@"
  local best="" t0 t1 dt
  for _ in $(seq 1 "$RUNS"); do
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
    t1=$(date +%s.%N)
    dt=$(python3 -c "print($t1 - $t0)")
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $dt < $best else 1)"; then best=$dt; fi
  done
  echo "$best"
}

openssl_t=$(best sh -c "for f in '$model'/*; do openssl dgst -sha256 \"\$f\"; done")
r_sign=$(best "$rampart" sign "$model" --key "$keys/signer-p256.key.pem" --signature "$work/r.sig")
r_verify=$(best "$rampart" verify "$model" --key "$keys/signer-p256.pub.pem" --signature "$work/r.sig")
m_sign=$(best model_signing sign key "$model" --private_key "$keys/signer-p256.key.pem" --signature "$work/m.sig")
m_verify=$(best model_signing verify key "$model" --public_key "$keys/signer-p256.pub.pem" --signature "$work/m.sig")
# Cross-check: each tool accepts the other's signature.
"$rampart" verify "$model" --key "$keys/signer-p256.pub.pem" --signature "$work/m.sig" >/dev/null 2>&1
model_signing verify key "$model" --public_key "$keys/signer-p256.pub.pem" --signature "$work/r.sig" >/dev/null 2>&1

cores=$(nproc)
[ "$cores" -gt "$FILES" ] && cores=$FILES
python3 - "$total_mib" "$cores" "$openssl_t" "$r_sign" "$r_verify" "$m_sign" "$m_verify" <<'PY'
import sys
mib, cores, o, rs, rv, ms, mv = int(sys.argv[1]), int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"model: {mib} MiB in 4 files; cores used by Rampart: {cores}; best of runs, warm cache")
print(f"{'work':<34}{'seconds':>9}{'MiB/s':>9}")
for name, t in [("openssl dgst -sha256 (1 core)", o), ("rampart sign", rs), ("rampart verify", rv),
                ("model_signing sign key", ms), ("model_signing verify key", mv)]:
    print(f"{name:<34}{t:>9.3f}{mib / t:>9.0f}")
print(f"sign speed-up vs model_signing:   {ms / rs:5.2f}x  (target >= 2)")
print(f"verify speed-up vs model_signing: {mv / rv:5.2f}x  (target >= 2)")
target = 0.9 * (mib / o) * cores
print(f"rampart verify hashing: {mib / rv:.0f} MiB/s vs 0.9 x openssl x {cores} cores = {target:.0f} MiB/s"
      f"  -> ratio {(mib / rv) / ((mib / o) * cores):.2f} of openssl x cores (target >= 0.90)")
PY

#!/usr/bin/env bash
# Large-file scan benchmark: a 1 GiB safetensors file and a 1 GiB PyTorch zip (small data.pkl, one
# 1 GiB stored tensor member), made in a temp dir, scanned by `rampart scan` and by the peers.
# Reports wall time (best and median of RUNS) and peak RSS (/usr/bin/time -v) against the targets:
# Rampart <= 50 ms wall and <= 64 MiB peak RSS per file (tensor bytes are never read).
#
# The files are real and complete (every byte is there to read: the tensor data is a sparse run of
# zeros, so creating them is fast and takes little disk; the zip's CRC-32 and sizes are correct).
#
# Installs nothing. Needs: python3, /usr/bin/time (Debian package `time`), the release binary
# (cargo build --release --locked --bin rampart; RAMPART=... overrides). Peers are optional and are run
# the way bench/scan.sh runs them: picklescan -p FILE, modelscan -p FILE, fickling via its
# Hugging Face dispatch (skip any with PEERS="..."). Not run in CI.
#
# usage: bench/scan-large.sh        env: RUNS=5 PEERS="picklescan modelscan fickling" WORKDIR=/tmp
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
rampart="${RAMPART:-$PWD/target/release/rampart}"
PEERS="${PEERS-picklescan modelscan fickling}"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
work="$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/rampart-scan-large.XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import json, os, struct, sys, zlib
work = sys.argv[1]
GIB = 1 << 30

# --- 1 GiB safetensors: one F32 tensor of 2^28 elements
hdr = json.dumps({"__metadata__": {"format": "pt"},
                  "weight": {"dtype": "F32", "shape": [GIB // 4], "data_offsets": [0, GIB]}}, separators=(",", ":")).encode()
hdr += b" " * ((-len(hdr)) % 8)
p = os.path.join(work, "big.safetensors")
with open(p, "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr)
    f.truncate(8 + len(hdr) + GIB)  # zero tensor bytes (sparse)

# --- 1 GiB PyTorch zip: archive/data.pkl (state_dict with one tensor) + archive/data/0 (1 GiB, stored)
def glob(m, n):
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"
def bu(x):
    b = x.encode()
    return b"X" + struct.pack("<I", len(b)) + b
n = GIB // 4
pkl = (b"\x80\x02" + glob("collections", "OrderedDict") + b"q\x00)Rq\x01(" + bu("weight") + glob("torch._utils", "_rebuild_tensor_v2")
       + b"((" + bu("storage") + glob("torch", "FloatStorage") + bu("0") + bu("cpu") + b"J" + struct.pack("<i", n) + b"tQK\x00(J"
       + struct.pack("<i", n) + b"t(K\x01t\x89" + glob("collections", "OrderedDict") + b")RtRu.")
zero_crc = 0
chunk = bytes(1 << 24)
for _ in range(GIB // len(chunk)):
    zero_crc = zlib.crc32(chunk, zero_crc)
members = [("archive/data.pkl", pkl, None), ("archive/byteorder", b"little", None), ("archive/data/0", None, zero_crc), ("archive/version", b"3\n", None)]
p = os.path.join(work, "big_model.pt")
central = b""
with open(p, "wb") as f:
    for name, data, crc in members:
        nm = name.encode()
        off = f.tell()
        size = GIB if data is None else len(data)
        crc = crc if data is None else zlib.crc32(data)
        # torch aligns member data to 64 bytes with an extra field ("FB" id), as PyTorchFileWriter does
        pad = (-(off + 30 + len(nm) + 4)) % 64
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size, len(nm), len(extra)) + nm + extra)
        if data is None:
            f.seek(size, 1)  # sparse zeros; bytes after it make the file complete
        else:
            f.write(data)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, size, size, len(nm), 0, 0, 0, 0, 0o644 << 16, off) + nm
    cd_off = f.tell()
    f.write(central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_off, 0))
PY
python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None or True; print('zip ok:', [(i.filename, i.file_size) for i in z.infolist()])" "$work/big_model.pt" >&2
ls -ls "$work" >&2
cat "$work"/* >/dev/null  # warm the page cache

fickling_py="$(head -1 "$(command -v fickling 2>/dev/null || echo /dev/null)" 2>/dev/null | sed 's/^#!//')"
cat >"$work/fickling_hf.py" <<'PY'
import sys, types
from pathlib import PurePosixPath
try:
    import torch.serialization  # noqa: F401
except ImportError:
    def _is_zipfile(f):
        start = f.tell(); r = f.read(4); f.seek(start); return r == b"PK\x03\x04"
    t = types.ModuleType("torch"); s = types.ModuleType("torch.serialization"); s._is_zipfile = _is_zipfile; t.serialization = s
    sys.modules["torch"] = t; sys.modules["torch.serialization"] = s
from fickling.cli import HF_RAW_PICKLE_EXTENSIONS, HF_ZIP_PICKLE_EXTENSIONS
from fickling.loader import scan_file, scan_zip_archive
from fickling.polyglot import find_file_properties
path = sys.argv[1]; ext = PurePosixPath(path).suffix.lower(); props = find_file_properties(path)
if props["is_torch_zip"] or props["is_standard_zip"] or ext in HF_ZIP_PICKLE_EXTENSIONS:
    r = list(scan_zip_archive(path, graceful=True, json_output_path="/dev/null").values())
elif props["is_valid_pickle"] or ext in HF_RAW_PICKLE_EXTENSIONS:
    r = [scan_file(path, graceful=True, json_output_path="/dev/null")]
else:
    r = None
print("skipped" if r is None else ("unsafe" if any(not x.is_safe for x in r) else "clean"))
PY

# measure NAME FILE CMD...: RUNS runs under /usr/bin/time -v; prints "best median rss_mib rc"
measure() {
  local f="$work/time.txt" walls=() rss=0 rc=0
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    set +e
    /usr/bin/time -v -o "$f" "$@" >/dev/null 2>&1
    rc=$?
    set -e
    t1=$(date +%s%N)
    walls+=("$(( (t1 - t0) / 1000 ))")
    local r
    r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$f")
    [ "${r:-0}" -gt "$rss" ] && rss=$r
  done
  printf '%s\n' "${walls[@]}" | sort -n | awk -v rss="$rss" -v rc="$rc" '{a[NR]=$1} END {printf "%.1f %.1f %.1f %d\n", a[1]/1000, a[int((NR+1)/2)]/1000, rss/1024, rc}'
}

have_rampart=0
if [ -x "$rampart" ] && "$rampart" scan --help >/dev/null 2>&1; then have_rampart=1; else
  echo "SKIP rampart: $rampart missing or without 'rampart scan' (cargo build --release --locked --bin rampart)" >&2; fi

printf '%-18s %-11s %10s %10s %9s %4s  %s\n' file tool "best ms" "median ms" "RSS MiB" rc verdict
fail=0
for file in big.safetensors big_model.pt; do
  path="$work/$file"
  if [ "$have_rampart" = 1 ]; then
    read -r best med rss rc < <(measure "$rampart" scan "$path" --format json)
    verdict=$("$rampart" scan "$path" --format json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['files'][0]['verdict'])" 2>/dev/null || echo "?")
    ok=$(python3 -c "print('PASS' if $best <= 50 and $rss <= 64 else 'FAIL')")
    [ "$ok" = PASS ] || fail=1
    printf '%-18s %-11s %10s %10s %9s %4s  %s  [target <= 50 ms, <= 64 MiB: %s]\n' "$file" rampart "$best" "$med" "$rss" "$rc" "$verdict" "$ok"
  fi
  for peer in $PEERS; do
    case "$peer" in
      picklescan|modelscan) command -v "$peer" >/dev/null || { echo "SKIP $peer: not on PATH" >&2; continue; }
        read -r best med rss rc < <(measure "$peer" -p "$path") ;;
      fickling) [ -n "$fickling_py" ] || { echo "SKIP fickling: not on PATH" >&2; continue; }
        read -r best med rss rc < <(measure "$fickling_py" "$work/fickling_hf.py" "$path") ;;
      *) continue ;;
    esac
    printf '%-18s %-11s %10s %10s %9s %4s\n' "$file" "$peer" "$best" "$med" "$rss" "$rc"
  done
done
exit "$fail"

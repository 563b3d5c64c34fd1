#!/usr/bin/env bash
# Registry benchmark (issue 4): Rampart vs Debian's `docker-registry` (CNCF distribution 2.8) on
# loopback, in one run, both driven by skopeo. Cases: push and pull of one 1 GiB layer ("big") and of
# 200 x 100 KB layers ("small"), each as an OCI artifact (ModelPack media types, random bytes, so
# skopeo neither compresses nor converts anything; --preserve-digests makes that an error). Targets:
# Rampart >= 1.3x distribution's throughput on the big layer, >= 1.5x on the small blobs.
# Prints the median MiB/s of RUNS repetitions per case and server and the ratio Rampart/distribution.
# Not run in CI.
#
# How it keeps the comparison fair:
# - both servers run at once, on 127.0.0.1, plain HTTP, storage in the same temp dir (same
#   filesystem) as the source layouts and the pull destinations; each operation runs on one server
#   right after the other, and which one goes first alternates between repetitions;
# - every repetition pushes to fresh repository names, and skopeo runs with an empty blob-info
#   cache (a private tmpfs over /var/lib/containers/cache when root, a fresh HOME otherwise), so it
#   cannot skip ("already exists") or cross-mount a blob; the script fails if skopeo reports either;
# - `sync` before every timed operation, so one server's dirty pages are not written back during
#   the next measurement (both fsync what they acknowledge: distribution 38 fsyncs per 1 GiB push,
#   Rampart 9, counted with strace);
# - wall time of the whole `skopeo copy` (process start, auth ping, HEADs, uploads, manifest), and
#   the server's CPU time (user + sys from /proc/PID/stat) over the same operation.
#
# CEILING=1 adds two client floors for the big layer: a push to a stub registry (python3, accepts
# and discards every byte) and a registry-less `skopeo copy oci: dir:` standing in for the pull: the
# best wall time any server could reach with skopeo on this machine.
#
# PEER=unaudited (or AUDIT_BASELINE=1) measures what the audit log costs instead: the same cases,
# runs and fairness rules, but the peer is Rampart without its audit log (the benchmark-only example
# crates/rampart-server/examples/unaudited.rs: the same app, AppState and stores as `rampart serve`,
# minus the audit log). Prints the median MiB/s per case of the audited and the unaudited server,
# the cost = 1 - audited/unaudited throughput (target <= 10 %), and per operation the audit records
# and group commits (write + fdatasync batches) of the audited server, read from its /metrics.
# docker-registry is not needed in that mode.
#
# Needs: skopeo, python3, curl, the Debian package `docker-registry` (it is run in the foreground
# with its own config; the system service is not used) and the release binary
# (cargo build --release --locked --bin rampart -p rampart-cli; RAMPART=... overrides); with
# PEER=unaudited the example instead of docker-registry (cargo build --release --locked
# -p rampart-server --example unaudited; UNAUDITED=... overrides).
#
# usage: bench/registry.sh      env: RUNS=5 WORKDIR=/tmp CASES="big small" SMALL_COUNT=200
#                                    SMALL_SIZE=100000 BIG_SIZE=1073741824 KEEP=1 (keep logs)
#                                    PEER=distribution|unaudited (default distribution)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
CASES="${CASES:-big small}"
BIG_SIZE="${BIG_SIZE:-1073741824}"
SMALL_COUNT="${SMALL_COUNT:-200}"
SMALL_SIZE="${SMALL_SIZE:-100000}"
rampart="${RAMPART:-$PWD/target/release/rampart}"
distribution="${DISTRIBUTION:-/usr/bin/docker-registry}"
unaudited="${UNAUDITED:-$PWD/target/release/examples/unaudited}"
PEER="${PEER:-distribution}"
[ -n "${AUDIT_BASELINE:-}" ] && PEER=unaudited
case "$PEER" in
  distribution | unaudited) ;;
  *) echo "PEER must be distribution or unaudited" >&2; exit 2 ;;
esac
[ -x "$rampart" ] || { echo "build it first: cargo build --release --locked --bin rampart -p rampart-cli" >&2; exit 2; }
if [ "$PEER" = distribution ]; then
  [ -x "$distribution" ] || { echo "needs Debian's docker-registry (apt-get install docker-registry)" >&2; exit 2; }
else
  [ -x "$unaudited" ] || { echo "build it first: cargo build --release --locked -p rampart-server --example unaudited" >&2; exit 2; }
fi
for t in skopeo python3 curl; do
  command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 2; }
done

work="$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/rampart-registry-bench.XXXXXX")"
pids=()
tick="$(getconf CLK_TCK)"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- source data: two OCI layouts, made once
python3 - "$work" "$BIG_SIZE" "$SMALL_COUNT" "$SMALL_SIZE" <<'PY'
import hashlib, json, os, sys
work, big, count, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def layout(name, sizes):
    root = os.path.join(work, name)
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs)
    def put_bytes(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, h), "wb") as f:
            f.write(data)
        return "sha256:" + h
    layers = []
    for i, size in enumerate(sizes):
        tmp = os.path.join(blobs, "tmp")
        h = hashlib.sha256()
        with open(tmp, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 16 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        os.rename(tmp, os.path.join(blobs, h.hexdigest()))
        layers.append({"mediaType": "application/vnd.cncf.model.weight.v1.raw",
                       "digest": "sha256:" + h.hexdigest(), "size": size,
                       "annotations": {"org.opencontainers.image.title": f"weights-{i:04}.bin"}})
    config = json.dumps({"descriptor": {"name": name}, "config": {"format": "safetensors"},
                         "modelfs": {"type": "layers", "diffIds": [l["digest"] for l in layers]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.model.config.v1+json",
                   "digest": put_bytes(config), "size": len(config)},
        "layers": layers,
    }).encode()
    md = put_bytes(manifest)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)

layout("big", [big])
layout("small", [small] * count)
PY
declare -A payload=([big]="$BIG_SIZE" [small]="$((SMALL_COUNT * SMALL_SIZE))")
cat "$work"/big/blobs/sha256/* "$work"/small/blobs/sha256/* >/dev/null  # page cache warm

# --- servers (pids[0]: the peer, distribution or unaudited, on $dport; pids[1]: rampart)
mkdir -p "$work/$PEER" "$work/rampart"
dport="$(free_port)"
if [ "$PEER" = distribution ]; then
cat >"$work/distribution.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $work/distribution
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$dport
EOF
"$distribution" serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
pids+=($!)
dping="/v2/"
else
"$unaudited" "$work/unaudited" "127.0.0.1:$dport" >"$work/unaudited.log" 2>&1 &
pids+=($!)
dping="/healthz"
fi
rport="$(free_port)"
"$rampart" serve --data "$work/rampart" --listen "127.0.0.1:$rport" >"$work/rampart.log" 2>&1 &
pids+=($!)
if [ -n "${CEILING:-}" ]; then
  nport="$(free_port)"
  cat >"$work/stub_registry.py" <<'PY'
# Accepts every upload and discards the bytes: the client's floor, not a registry.
import http.server, sys, uuid
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, headers=()):
        self.send_response(code)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()
    def drain(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                left = size
                while left: left -= len(self.rfile.read(min(left, 1 << 20)))
                self.rfile.readline()
                if size == 0: return
        n = int(self.headers.get("Content-Length") or 0)
        buf = memoryview(bytearray(1 << 20))
        while n > 0: n -= self.rfile.readinto(buf[:min(n, len(buf))])
    def do_GET(self): self.reply(200 if self.path.rstrip("/") == "/v2" else 404)
    def do_HEAD(self): self.reply(404)
    def do_POST(self): self.drain(); self.reply(202, [("Location", f"/v2/up/{uuid.uuid4().hex}"), ("Range", "0-0")])
    def do_PATCH(self): self.drain(); self.reply(202, [("Location", self.path), ("Range", "0-0")])
    def do_PUT(self):
        self.drain()
        self.reply(201, [("Location", self.path), ("Docker-Content-Digest", self.path.split("digest=")[-1].replace("%3A", ":"))])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
  python3 "$work/stub_registry.py" "$nport" >"$work/stub.log" 2>&1 &
  pids+=($!)
fi
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$dport$dping" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$rport/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$dport$dping" >/dev/null || { cat "$work/$PEER.log" >&2; echo "$PEER did not start" >&2; exit 1; }
curl -fs "http://127.0.0.1:$rport/healthz" >/dev/null || { cat "$work/rampart.log" >&2; echo "rampart did not start" >&2; exit 1; }
token="$(cat "$work/rampart/admin-token")"
dpid="${pids[0]}"
rpid="${pids[1]}"
utoken=""
[ "$PEER" = unaudited ] && utoken="$(cat "$work/unaudited/admin-token")"
# audit_counters: "records batches" the audited server has made durable so far (from /metrics,
# which is itself not audited)
audit_counters() {
  curl -fs -u "bench:$token" "http://127.0.0.1:$rport/metrics" |
    awk '$1 == "rampart_audit_records_total" {r = $2} $1 == "rampart_audit_batches_total" {b = $2} END {print r + 0, b + 0}'
}

# skopeo with an empty blob-info cache: a mount namespace with a tmpfs over the root cache dir when
# that works, otherwise a fresh HOME/XDG_DATA_HOME.
isolated=""
if [ "$(id -u)" = 0 ] && unshare -m sh -c 'mkdir -p /var/lib/containers/cache && mount -t tmpfs tmpfs /var/lib/containers/cache' 2>/dev/null; then
  isolated=ns
fi
skopeo_clean() {
  local home
  home="$(mktemp -d "$work/home.XXXXXX")"
  if [ "$isolated" = ns ]; then
    # shellcheck disable=SC2016
    HOME="$home" unshare -m sh -c 'mkdir -p /var/lib/containers/cache && mount -t tmpfs tmpfs /var/lib/containers/cache && exec skopeo "$@"' skopeo "$@"
  else
    HOME="$home" XDG_DATA_HOME="$home/.local/share" skopeo "$@"
  fi
  rm -rf "$home"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# timed OUT_FILE PID CMD...: runs CMD after a sync, appends "nanoseconds server_cpu_ticks" to
# OUT_FILE (PID: the server), checks CMD's output
timed() {
  local out="$1" pid="$2" t0 t1 c0 c1 log
  shift 2
  log="$work/skopeo.out"
  sync
  c0=$(cpu_ticks "$pid")
  t0=$(date +%s%N)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "FAILED: $*" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  c1=$(cpu_ticks "$pid")
  if grep -qiE 'skipped|already exists|mount' "$log"; then
    cat "$log" >&2
    echo "skopeo skipped or mounted a blob: the measurement would be void" >&2
    exit 1
  fi
  echo "$(( t1 - t0 )) $(( c1 - c0 ))" >>"$out"
}

echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), fs $(df -T "$work" | awk 'NR==2 {print $2}')"
if [ "$PEER" = distribution ]; then
  echo "skopeo $(skopeo --version | awk '{print $3}'), $("$distribution" --version | awk '{print $2, $3}'), $("$rampart" --version)"
else
  echo "skopeo $(skopeo --version | awk '{print $3}'), $("$rampart" --version) (audited) vs $unaudited (no audit log)"
fi
echo "payload: big = 1 x $BIG_SIZE B, small = $SMALL_COUNT x $SMALL_SIZE B; RUNS=$RUNS; skopeo cache isolation: ${isolated:-home}"

for run in $(seq 1 "$RUNS"); do
  # alternate which server goes first, so a load change during a pair does not favour one side
  order="rampart $PEER"
  [ $((run % 2)) = 0 ] && order="$PEER rampart"
  for case in $CASES; do
    for server in $order; do
      if [ "$server" = rampart ]; then
        host="127.0.0.1:$rport"; pid="$rpid"
        dest_creds=(--dest-creds "bench:$token")
      elif [ "$server" = unaudited ]; then
        host="127.0.0.1:$dport"; pid="$dpid"
        dest_creds=(--dest-creds "bench:$utoken")
      else
        host="127.0.0.1:$dport"; pid="$dpid"
        dest_creds=()
      fi
      repo="bench/$case-$run"
      [ "$PEER-$server" = unaudited-rampart ] && a0="$(audit_counters)"
      timed "$work/$server-$case-push" "$pid" skopeo_clean copy --preserve-digests --dest-tls-verify=false \
        "${dest_creds[@]}" "oci:$work/$case:1" "docker://$host/$repo:1"
      [ "$PEER-$server" = unaudited-rampart ] && echo "$a0 $(audit_counters)" >>"$work/audit-$case-push"
    done
    for server in $order; do
      if [ "$server" = rampart ]; then
        host="127.0.0.1:$rport"; pid="$rpid"; src_creds=(--src-creds "bench:$token")
      elif [ "$server" = unaudited ]; then
        host="127.0.0.1:$dport"; pid="$dpid"; src_creds=(--src-creds "bench:$utoken")
      else
        host="127.0.0.1:$dport"; pid="$dpid"; src_creds=()
      fi
      out="$work/pull-$server-$case-$run"
      [ "$PEER-$server" = unaudited-rampart ] && a0="$(audit_counters)"
      timed "$work/$server-$case-pull" "$pid" skopeo_clean copy --preserve-digests --src-tls-verify=false \
        "${src_creds[@]}" "docker://$host/bench/$case-$run:1" "dir:$out"
      [ "$PEER-$server" = unaudited-rampart ] && echo "$a0 $(audit_counters)" >>"$work/audit-$case-pull"
      # skopeo verifies every pulled blob against its digest; check that all layers arrived
      n=$(find "$out" -type f -size +"$((SMALL_SIZE - 1))"c | wc -l)
      want=$([ "$case" = big ] && echo 1 || echo "$SMALL_COUNT")
      [ "$n" -ge "$want" ] || { echo "pull of $case from $server gave $n layers, want $want" >&2; exit 1; }
      rm -rf "$out"
    done
  done
  if [ -n "${CEILING:-}" ] && [[ " $CASES " == *" big "* ]]; then
    timed "$work/stub-big-push" "${pids[2]}" skopeo_clean copy --preserve-digests --dest-tls-verify=false \
      "oci:$work/big:1" "docker://127.0.0.1:$nport/bench/big-$run:1"
    timed "$work/local-big-pull" "${pids[2]}" skopeo_clean copy --preserve-digests "oci:$work/big:1" "dir:$work/local-out"
    rm -rf "$work/local-out"
  fi
  echo "run $run/$RUNS done (load $(cut -d' ' -f1-3 /proc/loadavg))"
done

for log in "$work/rampart.log" "$work/unaudited.log"; do
  if [ -f "$log" ] && grep -q '"blob mounted"\|blob mounted' "$log"; then
    echo "$(basename "$log" .log)'s log shows a blob mount: the measurement would be void" >&2
    exit 1
  fi
done

if [ "$PEER" = unaudited ]; then
  # --- results: median seconds and MiB/s per case, audited vs not, cost = 1 - audited/unaudited
  python3 - "$work" "$CASES" "${payload[big]}" "${payload[small]}" "$tick" <<'PY'
import statistics, sys
work, cases, big, small, tick = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
payload = {"big": big, "small": small}

def load(name):
    with open(f"{work}/{name}") as f:
        rows = [line.split() for line in f if line.strip()]
    return [int(r[0]) / 1e9 for r in rows], [int(r[1]) / tick for r in rows]

def audit(name):
    # per operation: records and group commits (one write + fdatasync each) of the audited server
    with open(f"{work}/{name}") as f:
        rows = [[int(x) for x in line.split()] for line in f if line.strip()]
    return [r[2] - r[0] for r in rows], [r[3] - r[1] for r in rows]

print()
print("| case | server | wall s, each run | median s | median MiB/s | server CPU s (median) | audit records / batches per op (median) |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
costs = []
for case in cases:
    for op in ("push", "pull"):
        med = {}
        for server in ("rampart", "unaudited"):
            secs, cpu = load(f"{server}-{case}-{op}")
            med[server] = statistics.median(secs)
            mibs = payload[case] / med[server] / (1 << 20)
            label = {"rampart": "rampart (audited)", "unaudited": "rampart without audit log"}[server]
            extra = "—"
            if server == "rampart":
                recs, batches = audit(f"audit-{case}-{op}")
                extra = f"{statistics.median(recs):.0f} / {statistics.median(batches):.0f}"
            print(f"| {case} {op} | {label} | {' '.join(f'{s:.2f}' for s in secs)} | {med[server]:.3f} "
                  f"| {mibs:.1f} | {statistics.median(cpu):.2f} | {extra} |")
        # audited/unaudited throughput = unaudited wall / audited wall; the two ran back to back in
        # each repetition, so the median of the per-run costs is given too
        cost = 1 - med["unaudited"] / med["rampart"]
        paired = statistics.median(1 - u / a for u, a in zip(load(f"unaudited-{case}-{op}")[0], load(f"rampart-{case}-{op}")[0]))
        costs.append((case, op, cost, paired))
print()
for case, op, cost, paired in costs:
    verdict = "met" if cost <= 0.10 else "NOT met"
    print(f"{case} {op}: audit cost = 1 - audited/unaudited throughput = {cost * 100:.1f} % "
          f"(median of per-run costs {paired * 100:.1f} %; target <= 10 %: {verdict})")
PY
  exit 0
fi

# --- results: median seconds and MiB/s per case and server, ratio Rampart/distribution
python3 - "$work" "$RUNS" "$CASES" "${payload[big]}" "${payload[small]}" "$tick" <<'PY'
import os, statistics, sys
work, runs, cases, big, small, tick = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
payload = {"big": big, "small": small}
target = {"big": 1.3, "small": 1.5}

def load(name):
    with open(f"{work}/{name}") as f:
        rows = [line.split() for line in f if line.strip()]
    return [int(r[0]) / 1e9 for r in rows], [int(r[1]) / tick for r in rows]

print()
print("| case | server | wall s, each run | median s | median MiB/s | server CPU s (median) |")
print("| --- | --- | --- | ---: | ---: | ---: |")
ratios = []
for case in cases:
    for op in ("push", "pull"):
        med = {}
        servers = ["rampart", "distribution"]
        if op == "push" and os.path.exists(f"{work}/stub-{case}-push"):
            servers.append("stub")
        if op == "pull" and os.path.exists(f"{work}/local-{case}-pull"):
            servers.append("local")
        for server in servers:
            secs, cpu = load(f"{server}-{case}-{op}")
            med[server] = statistics.median(secs)
            mibs = payload[case] / med[server] / (1 << 20)
            label = {"stub": "stub registry (discards; client floor)",
                     "local": "no registry: skopeo oci: -> dir: (client floor)"}.get(server, server)
            print(f"| {case} {op} | {label} | {' '.join(f'{s:.2f}' for s in secs)} | {med[server]:.3f} "
                  f"| {mibs:.1f} | {statistics.median(cpu):.2f} |")
        # the two servers ran back to back in each repetition: the median of those paired ratios is
        # less sensitive to load drifting between repetitions than the ratio of medians
        paired = statistics.median(d / r for d, r in zip(load(f"distribution-{case}-{op}")[0], load(f"rampart-{case}-{op}")[0]))
        ratios.append((case, op, med["distribution"] / med["rampart"], paired, med.get("stub") or med.get("local")))
print()
for case, op, ratio, paired, stub in ratios:
    verdict = "met" if ratio >= target[case] else "NOT met"
    extra = ""
    if stub:
        best = statistics.median(load(f"distribution-{case}-{op}")[0]) / stub
        extra = f"; with skopeo as the client, a server costing nothing would reach {best:.2f}x"
    print(f"{case} {op}: Rampart/distribution throughput = {ratio:.2f}x (median of per-run ratios {paired:.2f}x; "
          f"target >= {target[case]}x: {verdict}){extra}")
PY

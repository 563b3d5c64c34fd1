#!/usr/bin/env bash
# Scanner benchmark: run picklescan, modelscan, fickling and `rampart scan` over the labelled corpus in
# testdata/scan-corpus/ and print, per tool: detected (of malicious), missed, false alarms, errors,
# files not scanned, total wall time; the ratio of Rampart's wall time to the fastest peer's; and the
# malicious files that some peer catches but Rampart misses. Per-file results go to
# bench/results/scan.json. Not run in CI.
#
# Installs nothing. Needs on PATH (or via env):
#   picklescan 1.0.5, modelscan 0.8.8, fickling 0.1.12:
#     pip install picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12   (a venv is fine: put its bin/ on PATH)
#   the release binary: cargo build --release --locked --bin rampart   (RAMPART=/path/to/rampart overrides)
# A missing peer is skipped with a message; so is Rampart when the binary or `rampart scan` is missing.
#
# How each tool is driven (the way a user runs it) and what "flagged" means:
#   picklescan  `picklescan -p FILE`, one process per file. flagged = it reported a dangerous global
#               ("Dangerous globals: N", N > 0; exit 1, or exit 2 when the dangerous global came before a
#               parse error). error = exit 2 (or a crash) with no dangerous global. not scanned =
#               "Scanned files: 0". Suspicious (non-denylisted) globals do not count: that is the tool's
#               own default; --strict is not used.
#   modelscan   `modelscan -p FILE -r json -o OUT`, one process per file. flagged = the JSON report has
#               >= 1 issue of any severity (exit 1, or exit 2 when errors also occurred). error = no issue
#               and a non-empty "errors" list (or no report). not scanned = no issue, no error and
#               total_scanned == 0 (exit 3: nothing supported / skipped).
#   fickling    fickling's own Hugging Face dispatch (fickling.cli._scan_huggingface), applied to a
#               local file, one Python process per file: a zip (torch or standard) or a .pt/.pth file ->
#               fickling.loader.scan_zip_archive(graceful=True) (only .pkl/.pickle/.bin members); a
#               file that parses as a pickle or has a .bin/.pkl/.pickle extension ->
#               fickling.loader.scan_file(graceful=True); 7z/tar/NumPy-pickle -> skipped ("not yet
#               supported"); anything else -> skipped. Format detection is fickling.polyglot
#               .find_file_properties; polyglot imports torch only for torch.serialization._is_zipfile,
#               so without torch the driver provides that one function with torch's exact logic (first
#               4 bytes == b"PK\x03\x04"). flagged = some ScanResult is not is_safe (severity above
#               LIKELY_SAFE), which is exactly when the dispatch returns EXIT_UNSAFE. error = the driver
#               raised. not scanned = skipped by the dispatch. (The fickling CLI `--check-safety` only
#               reads raw pickle streams, so it is not used.)
#   rampart     `rampart scan DIR --format json`, ONE process over the whole corpus directory.
#               detected = verdict "malicious" on a malicious file; any other verdict counts as missed.
#               "broken" (expected error) and "suspicious" (expected review) files are outside the
#               detection and false-alarm counts and only enter the exact-label-match line.
#               false alarm = anything but "safe" on a benign file, or "malicious" on a benign_review
#               file. error = verdict "error".
# Peer false alarm = flagged on a benign or benign_review file.
# Wall time = sum of the per-file process wall times for peers (sequential, warm cache), the single
# process wall time for Rampart.
#
# usage: bench/scan.sh [CORPUS_DIR]       env: TOOLS="picklescan modelscan fickling rampart", TIMEOUT=120
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-testdata/scan-corpus}"
[ -f "$corpus/labels.jsonl" ] && [ -d "$corpus/files" ] || { echo "no corpus at $corpus (labels.jsonl + files/)" >&2; exit 2; }
rampart="${RAMPART:-$PWD/target/release/rampart}"
tools="${TOOLS:-picklescan modelscan fickling rampart}"
mkdir -p bench/results

have=()
for t in $tools; do
  case "$t" in
    rampart)
      if [ ! -x "$rampart" ]; then
        echo "SKIP rampart: $rampart not found (cargo build --release --locked --bin rampart)" >&2
      elif ! "$rampart" scan --help >/dev/null 2>&1; then
        echo "SKIP rampart: this binary has no 'rampart scan' subcommand yet" >&2
      else
        have+=(rampart)
      fi ;;
    picklescan|modelscan|fickling)
      if command -v "$t" >/dev/null 2>&1; then have+=("$t"); else
        echo "SKIP $t: not on PATH (pip install picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12)" >&2; fi ;;
    *) echo "unknown tool $t" >&2; exit 2 ;;
  esac
done
[ ${#have[@]} -gt 0 ] || { echo "no tool to run" >&2; exit 2; }
for t in picklescan modelscan fickling; do
  if [[ " ${have[*]} " == *" $t "* ]]; then
    v=$("$(head -1 "$(command -v $t)" | sed 's/^#!//')" -c "import importlib.metadata as m; print(m.version('$t'))" 2>/dev/null || echo "?")
    echo "$t $v" >&2
  fi
done

# The fickling driver: fickling's HF-repo dispatch (cli._scan_huggingface) applied to one local file.
fickling_py="$(head -1 "$(command -v fickling 2>/dev/null || echo /dev/null)" 2>/dev/null | sed 's/^#!//')"
driver="$(mktemp -d)"
trap 'rm -rf "$driver"' EXIT
cat >"$driver/fickling_hf.py" <<'PY'
import json, sys, types
from pathlib import PurePosixPath
try:
    import torch.serialization  # noqa: F401  (real torch, if installed)
except ImportError:
    def _is_zipfile(f):  # torch.serialization._is_zipfile, verbatim logic
        start = f.tell()
        magic = b"PK\x03\x04"
        read = f.read(len(magic))
        f.seek(start)
        return read == magic
    torch = types.ModuleType("torch"); ser = types.ModuleType("torch.serialization")
    ser._is_zipfile = _is_zipfile; torch.serialization = ser
    sys.modules["torch"] = torch; sys.modules["torch.serialization"] = ser
from fickling.cli import HF_RAW_PICKLE_EXTENSIONS, HF_ZIP_PICKLE_EXTENSIONS
from fickling.loader import scan_file, scan_zip_archive
from fickling.polyglot import find_file_properties

path = sys.argv[1]
ext = PurePosixPath(path).suffix.lower()
props = find_file_properties(path)
if props["is_torch_zip"] or props["is_standard_zip"] or ext in HF_ZIP_PICKLE_EXTENSIONS:
    how, results = "zip", list(scan_zip_archive(path, graceful=True, json_output_path="/dev/null").values())
elif props["is_valid_pickle"] or ext in HF_RAW_PICKLE_EXTENSIONS:
    how, results = "pickle", [scan_file(path, graceful=True, json_output_path="/dev/null")]
elif props.get("is_7z") or props["is_tar"] or props["is_numpy_pickle"]:
    how, results = "skipped-unsupported", []
else:
    how, results = "skipped", []
print(json.dumps({"dispatch": how,
                  "severity": max([r.severity.name for r in results], key=lambda n: ["LIKELY_SAFE", "POSSIBLY_UNSAFE", "SUSPICIOUS", "LIKELY_UNSAFE", "LIKELY_OVERTLY_MALICIOUS", "OVERTLY_MALICIOUS"].index(n), default=None),
                  "unsafe": any(not r.is_safe for r in results),
                  "errors": sum(len(r.errors) for r in results)}))
PY

PYTHONDONTWRITEBYTECODE=1 python3 - "$corpus" "$rampart" "$driver" "$fickling_py" "${TIMEOUT:-120}" "${have[@]}" <<'PY'
import json, os, re, subprocess, sys, tempfile, time
from collections import Counter, defaultdict

corpus, rampart, driver, fickling_py, timeout, *tools = sys.argv[1:]
timeout = float(timeout)
files_dir = os.path.abspath(os.path.join(corpus, "files"))
labels = [json.loads(l) for l in open(os.path.join(corpus, "labels.jsonl")) if l.strip()]
lab = {e["path"]: e for e in labels}
peers = [t for t in tools if t != "rampart"]
res = {t: {} for t in tools}   # tool -> path -> {"outcome": flagged|clean|error|not_scanned, ...}
wall = {}

def run(cmd):
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace"), time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        return None, "timeout", time.perf_counter() - t0

def picklescan(path):
    rc, out, dt = run(["picklescan", "-p", path])
    m = re.search(r"Dangerous globals: (\d+)", out)
    dang = int(m.group(1)) if m else 0
    scanned = re.search(r"Scanned files: (\d+)", out)
    if dang > 0 or rc == 1:
        o = "flagged"
    elif rc == 0 and scanned and int(scanned.group(1)) == 0:
        o = "not_scanned"
    elif rc == 0:
        o = "clean"
    else:
        o = "error"
    return {"outcome": o, "rc": rc}, dt

def modelscan(path, tmp):
    outp = os.path.join(tmp, "ms.json")
    if os.path.exists(outp):
        os.remove(outp)
    rc, out, dt = run(["modelscan", "-p", path, "-r", "json", "-o", outp])
    try:
        rep = json.load(open(outp))
    except Exception:
        rep = None
    if rep is None:
        return {"outcome": "error", "rc": rc, "detail": out[-300:]}, dt
    issues = rep.get("summary", {}).get("total_issues", 0) or len(rep.get("issues", []))
    errors = rep.get("errors", [])
    scanned = rep.get("summary", {}).get("scanned", {}).get("total_scanned", 0)
    if issues:
        o = "flagged"
    elif errors:
        o = "error"
    elif not scanned:
        o = "not_scanned"
    else:
        o = "clean"
    d = {"outcome": o, "rc": rc, "issues": issues}
    if errors:
        d["errors"] = [e.get("description", "")[:160] for e in errors][:3]
    return d, dt

def fickling(path):
    rc, out, dt = run([fickling_py, os.path.join(driver, "fickling_hf.py"), path])
    line = [l for l in out.splitlines() if l.startswith("{")]
    if rc != 0 or not line:
        return {"outcome": "error", "rc": rc, "detail": out[-300:]}, dt
    r = json.loads(line[-1])
    if r["dispatch"].startswith("skipped"):
        o = "not_scanned"
    else:
        o = "flagged" if r["unsafe"] else "clean"
    return {"outcome": o, **r}, dt

with tempfile.TemporaryDirectory() as tmp:
    cwd = os.getcwd()
    os.chdir(tmp)  # modelscan looks for ./modelscan-settings.toml; fickling may write files
    try:
        for t in peers:
            total = 0.0
            for i, e in enumerate(labels):
                path = os.path.join(files_dir, e["path"])
                if t == "picklescan":
                    r, dt = picklescan(path)
                elif t == "modelscan":
                    r, dt = modelscan(path, tmp)
                else:
                    r, dt = fickling(path)
                r["seconds"] = round(dt, 4)
                res[t][e["path"]] = r
                total += dt
                if sys.stderr.isatty():
                    print(f"\r{t}: {i + 1}/{len(labels)}", end="", file=sys.stderr, flush=True)
            if sys.stderr.isatty():
                print(file=sys.stderr)
            wall[t] = total
    finally:
        os.chdir(cwd)

if "rampart" in tools:
    t0 = time.perf_counter()
    p = subprocess.run([rampart, "scan", files_dir, "--format", "json"], capture_output=True, timeout=max(timeout, 600))
    wall["rampart"] = time.perf_counter() - t0
    try:
        rep = json.loads(p.stdout)
    except Exception:
        print("rampart scan did not print JSON (exit %d): %s" % (p.returncode, p.stderr.decode(errors="replace")[-500:]), file=sys.stderr)
        rep = {"files": []}
    seen = {}
    for f in rep.get("files", []):  # paths as printed: absolute, or relative to the working directory
        seen[os.path.relpath(os.path.abspath(f["path"]), files_dir)] = f
    for e in labels:
        f = seen.get(e["path"])
        v = f["verdict"] if f else "missing"
        res["rampart"][e["path"]] = {"verdict": v, "outcome": v,
                                     "rules": sorted({x.get("rule") for x in (f or {}).get("findings", [])})}

def judge(t, path):
    r, L = res[t][path], lab[path]["label"]
    if t == "rampart":
        v = r["verdict"]
        if L == "malicious":
            return "detected" if v == "malicious" else "missed"
        if L in ("broken", "suspicious"):
            return "n/a"
        if L == "benign":
            return "ok" if v == "safe" else "false_alarm"
        return "false_alarm" if v == "malicious" else "ok"
    if L == "malicious":
        return "detected" if r["outcome"] == "flagged" else "missed"
    if L in ("broken", "suspicious"):
        return "n/a"
    return "false_alarm" if r["outcome"] == "flagged" else "ok"

n_mal = sum(e["label"] == "malicious" for e in labels)
n_ben = sum(e["label"] == "benign" for e in labels)
n_rev = sum(e["label"] == "benign_review" for e in labels)
n_other = len(labels) - n_mal - n_ben - n_rev
print(f"corpus: {len(labels)} files ({n_mal} malicious, {n_ben} benign, {n_rev} benign_review, {n_other} broken/suspicious) in {files_dir}")
print(f"{'tool':<11}{'detected':>10}{'missed':>8}{'false alarms':>14}{'errors':>8}{'not scanned':>13}{'wall s':>10}")
summary = {}
for t in tools:
    j = Counter(judge(t, p) for p in lab)
    outc = Counter(res[t][p]["outcome"] for p in lab)
    summary[t] = {"detected": j["detected"], "missed": j["missed"], "false_alarms": j["false_alarm"],
                  "errors": outc["error"], "not_scanned": outc["not_scanned"] + outc["missing"], "wall_seconds": round(wall[t], 3)}
    s = summary[t]
    print(f"{t:<11}{s['detected']:>6}/{n_mal:<3}{s['missed']:>8}{s['false_alarms']:>14}{s['errors']:>8}{s['not_scanned']:>13}{s['wall_seconds']:>10.2f}")
if "rampart" in tools:
    v = Counter(res["rampart"][p]["verdict"] for p in lab)
    want = {"malicious": "malicious", "benign": "safe", "benign_review": "review", "broken": "error", "suspicious": "review"}
    exact = sum(1 for p, e in lab.items() if res["rampart"][p]["verdict"] == want[e["label"]])
    print(f"rampart verdicts: {dict(v)}; exact label match {exact}/{len(labels)}")
    if peers:
        fastest = min(peers, key=lambda t: wall[t])
        print(f"speed: fastest peer {fastest} {wall[fastest]:.2f} s / rampart {wall['rampart']:.3f} s = "
              f"{wall[fastest] / max(wall['rampart'], 1e-9):.1f}x (target >= 20x)")
        gap = sorted(p for p, e in lab.items() if e["label"] == "malicious" and judge("rampart", p) == "missed"
                     and any(judge(t, p) == "detected" for t in peers))
        print(f"malicious files some peer catches and rampart misses: {len(gap)}")
        for p in gap:
            print(f"  {p}  (rampart: {res['rampart'][p]['verdict']}; caught by {', '.join(t for t in peers if judge(t, p) == 'detected')})")
    fa = sorted(p for p in lab if judge("rampart", p) == "false_alarm")
    if fa:
        print(f"rampart false alarms: {len(fa)}")
        for p in fa:
            print(f"  {p} [{lab[p]['label']}] -> {res['rampart'][p]['verdict']} {res['rampart'][p]['rules']}")

# detection by category
cats = defaultdict(list)
for p, e in lab.items():
    cats[(e["label"], e["category"])].append(p)
print()
print(f"{'label/category':<42}{'n':>4}" + "".join(f"{t[:10]:>11}" for t in tools))
for (L, c), ps in sorted(cats.items()):
    row = f"{(L[:9] + '/' + c)[:41]:<42}{len(ps):>4}"
    for t in tools:
        k = "detected" if L == "malicious" else "false_alarm"
        row += f"{sum(judge(t, p) == k for p in ps):>11}"
    print(row)
print("(malicious rows: files detected; benign rows: false alarms)")

out = {"corpus": os.path.relpath(corpus), "summary": summary,
       "files": {p: {"label": lab[p]["label"], "category": lab[p]["category"], **{t: res[t][p] for t in tools}} for p in sorted(lab)}}
with open("bench/results/scan.json", "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
print("per-file results: bench/results/scan.json")
PY

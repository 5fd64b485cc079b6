#!/usr/bin/env bash
# One whole `prs sample` run (PRS, budget 8, 48-token responses, K prompts in flight) made three
# times on the same prompts, model and thread count: against llama.cpp's own llama-server (2
# threads, 8 parallel slots, continuous batching; built by scripts/llama-server.sh) in its two
# builds, AVX2 and AVX-512 + VNNI + BF16 (AMX off), and with the embedded engine (--policy
# embedded:..., --threads 2). The runs go one after the other, never at the same time; the
# speed-up is against the faster server. Prints wall time, generated tokens, peak RSS and the speed-up, plus the embedded
# run's engine statistics when its summary.json has them. Tokens: llama-server's own count from
# its log (its usage field covers one choice of an n>1 request); the embedded run's summary.
# RSS: "engine" is llama-server's VmHWM or the embedded prs process; "prs" is the prs process
# (for the llama-server run, only the HTTP client). Run it on an otherwise idle machine: with
# other work on the cores, llama.cpp's spinning worker threads can slow down many times over.
# Usage: scripts/bench-run.sh [PROMPTS_FILE] [COUNT] [K]
#   PROMPTS_FILE  default examples/prefs-heldout.jsonl; topped up from examples/prefs-train.jsonl
#                 when it has fewer than COUNT lines
#   COUNT         prompts (default 16)
#   K             prompts in flight, --concurrency (default 8)
# Environment: BENCH_MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), BENCH_KEEP=1 keeps
# the run directories and logs (their path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPTS=${1:-examples/prefs-heldout.jsonl}; COUNT=${2:-16}; K=${3:-8}
MODEL=${BENCH_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
TOPUP=examples/prefs-train.jsonl
THREADS=2; SLOTS=8; CTX=16384
PRS=.build/release/prs
PY=.venv/bin/python
log() { printf '[bench-run] %s\n' "$*" >&2; }

[ -f "$MODEL" ] || { log "no model at $MODEL (run scripts/setup.sh)"; exit 1; }
[ -x "$PRS" ] || { log "no $PRS (run make build)"; exit 1; }
SERVER_AVX2=$(bash scripts/llama-server.sh avx2)
# The AVX-512 build only where the machine runs it (scripts/machine-runs.sh says what is missing).
BUILDS="avx2"
if bash scripts/machine-runs.sh avx512; then
  SERVER_AVX512=$(bash scripts/llama-server.sh avx512); BUILDS="avx2 avx512"
fi

TMP=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

head -n "$COUNT" "$PROMPTS" > "$TMP/prompts.jsonl"
have=$(grep -c . "$TMP/prompts.jsonl" || true)
if [ "$have" -lt "$COUNT" ] && [ "$(realpath "$PROMPTS")" != "$(realpath "$TOPUP")" ]; then
  head -n "$((COUNT - have))" "$TOPUP" >> "$TMP/prompts.jsonl"
fi
COUNT=$(grep -c . "$TMP/prompts.jsonl")

# Runs one `prs sample` (arguments after the name) and writes NAME.json with its wall seconds,
# exit status and peak RSS (the child's own ru_maxrss, from wait4).
measure() {
  local name=$1; shift
  "$PY" - "$TMP/$name.json" "$TMP/$name.log" "$@" <<'PY'
import json, os, subprocess, sys, time
out, logfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(logfile, "w") as log:
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
json.dump({"wall_s": wall, "rc": os.waitstatus_to_exitcode(status), "rss_mb": usage.ru_maxrss / 1024}, open(out, "w"))
PY
  local rc
  rc=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rc"])' "$TMP/$name.json")
  if [ "$rc" != 0 ]; then
    log "$name: prs sample exited with $rc; its log ends with:"; tail -n 20 "$TMP/$name.log" >&2; exit 1
  fi
}
sample_args=(sample --prompts "$TMP/prompts.jsonl" --strategy prs --budget 8 --max-tokens 48 --reward rubric
  --feedback self --seed 3 --concurrency "$K")

# (a) llama-server (build NAME, binary BIN) on a loopback port, and prs sample against it; the
# server's peak RSS is read just before it stops, into NAME.rss.
server_run() {
  local name=$1 bin=$2
  PORT=$((20000 + RANDOM % 20000))
  log "starting llama-server ($name) on 127.0.0.1:$PORT ($THREADS threads, $SLOTS slots, continuous batching, context $CTX)"
  "$bin" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -t "$THREADS" -tb "$THREADS" -np "$SLOTS" -cb -c "$CTX" \
    > "$TMP/$name.server.log" 2>&1 &
  SERVER=$!
  for i in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { log "llama-server exited; its log ends with:"; tail -n 20 "$TMP/$name.server.log" >&2; exit 1; }
    [ "$i" = 600 ] && { log "llama-server did not answer /health in 5 minutes"; exit 1; }
    sleep 0.5
  done
  log "prs sample against llama-server ($name): $COUNT prompts, --concurrency $K"
  measure "$name" "$PRS" "${sample_args[@]}" --out "$TMP/run-$name" --policy "openai:http://127.0.0.1:$PORT/v1"
  awk '/^VmHWM:/ {print $2}' "/proc/$SERVER/status" > "$TMP/$name.rss"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
}
server_run avx2 "$SERVER_AVX2"
case "$BUILDS" in *avx512*) server_run avx512 "$SERVER_AVX512" ;; esac

# (c) the same run with the embedded engine.
log "prs sample with the embedded engine: $COUNT prompts, --concurrency $K, --threads $THREADS"
measure embedded "$PRS" "${sample_args[@]}" --out "$TMP/run-embedded" --policy "embedded:$MODEL" --threads "$THREADS"

# (d) the table.
"$PY" - "$TMP" "$COUNT" "$K" "$THREADS" "$SLOTS" "$BUILDS" <<'PY'
import json, os, re, sys
tmp, count, k, threads, slots, builds = sys.argv[1], *sys.argv[2:7]

def load(name):
    m = json.load(open(os.path.join(tmp, name + ".json")))
    try:
        summary = json.load(open(os.path.join(tmp, "run-" + name, "summary.json")))
    except (OSError, ValueError):
        summary = {}
    strategies = summary.get("strategies") or [{}]
    return m, summary, strategies[0]

embedded, embedded_summary, embedded_strategy = load("embedded")
print(f"prs sample: {count} prompts, PRS budget 8, 48 max tokens, rubric reward, --concurrency {k}, {threads} threads")
print(f"{'':30}{'wall s':>9}{'tokens':>9}{'tok/s':>9}{'engine RSS MB':>15}{'prs RSS MB':>12}")

def row(label, m, strategy, engine_rss):
    tokens = strategy.get("completion_tokens")
    tok = f"{tokens:9d}" if isinstance(tokens, int) else f"{'-':>9}"
    rate = f"{tokens / m['wall_s']:9.1f}" if isinstance(tokens, int) else f"{'-':>9}"
    print(f"{label:30}{m['wall_s']:9.1f}{tok}{rate}{engine_rss:15.1f}{m['rss_mb']:12.1f}")

servers = {}
if "avx512" not in builds:
    print("llama-server avx512: not run, this machine lacks the instructions (scripts/machine-runs.sh avx512)")
for build in builds.split():
    m, summary, strategy = load(build)
    # Generated tokens: llama-server's usage counts one choice of an n>1 request only, so its side
    # is the sum of the server's own per-request timings ("eval time = ... / N tokens" in its log).
    tokens = 0
    for line in open(os.path.join(tmp, build + ".server.log"), errors="replace"):
        found = re.search(r"(?<!prompt )eval time =.*/\s*(\d+) tokens", line)
        if found:
            tokens += int(found.group(1))
    if tokens:
        strategy = dict(strategy, completion_tokens=tokens)
    servers[build] = (m, strategy)
    row(f"llama-server {build} (-np {slots})", m, strategy, int(open(os.path.join(tmp, build + ".rss")).read()) / 1024)
row(f"embedded ({embedded_summary.get('engine', {}).get('isa', '?')})", embedded, embedded_strategy, embedded["rss_mb"])
fastest = min(servers, key=lambda b: servers[b][0]["wall_s"])
speedup = servers[fastest][0]["wall_s"] / embedded["wall_s"]
print(f"speed-up (the faster llama-server, {fastest}: its time / embedded time): {speedup:.2f}x (target ≥2.5× {'met' if speedup >= 2.5 else 'MISSED'})")
for label, strategy in [(f"llama-server {b}", servers[b][1]) for b in servers] + [("embedded", embedded_strategy)]:
    if "mean_best_reward" in strategy:
        print(f"mean best reward, {label}: {strategy['mean_best_reward']:.3f}")

engine = embedded_summary.get("engine", embedded_strategy.get("engine"))
if isinstance(engine, dict) and engine:
    print("embedded engine statistics:")
    def order(key):  # histogram buckets like "1", "2-3", "16+" by their lower bound
        m = re.match(r"\d+", key)
        return (0, int(m.group()), key) if m else (1, 0, key)
    def show(obj, prefix=""):
        for key, value in sorted(obj.items(), key=lambda kv: order(kv[0])):
            if isinstance(value, dict):
                show(value, f"{prefix}{key}.")
            elif isinstance(value, float):
                print(f"  {prefix}{key}: {value:.4g}")
            else:
                print(f"  {prefix}{key}: {value}")
    show(engine)
PY

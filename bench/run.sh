#!/usr/bin/env bash
# bench/run.sh: the benchmark suite, with medians over several runs, written into
# docs/BENCHMARKS.md (the section between the "bench/run.sh" markers; the rest of the file is
# left alone).
#
#   bench/run.sh                 # the whole suite, RUNS=3 (about 10 minutes on 2 vCPUs)
#   RUNS=5 bench/run.sh          # more runs per measurement
#   QUICK=1 bench/run.sh         # small counts, one run, no criterion: checks the script works
#   NO_WRITE=1 bench/run.sh      # print the section instead of writing it
#
# What runs (release build, profile `release`; the codec with criterion's `bench` profile):
#   1. codec: `cargo bench -p sairex-pdu --bench codec` (criterion; its median per benchmark)
#   2. store: `sairex loadtest store` (enqueue, lease, ack, finalize; sync batch)
#   3. SMPP path: `sairex loadtest smpp` (store + engine + SMSC simulator in one process)
#   4. HTTP path: `sairex loadtest http` against `sairex serve --demo` (the whole gateway with
#      its built-in simulator), closed loop, accept latency, then an open-loop run with --e2e
# Needs: cargo, python3. Uses its own CARGO_TARGET_DIR unless one is set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-3}"
QUICK="${QUICK:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$(mktemp -d -t sairex-bench-XXXXXX)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$OUT"
}
trap cleanup EXIT

if [[ -n "$QUICK" ]]; then
    RUNS=1
    STORE_N=2000 SMPP_N=2000 HTTP_N=2000 E2E_RATE=200 E2E_SECS=5s
else
    STORE_N=50000 SMPP_N=20000 HTTP_N=30000 E2E_RATE=1000 E2E_SECS=20s
fi

log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

log "building release"
cargo build --release -p sairex --quiet
BIN="$CARGO_TARGET_DIR/release/sairex"
export RUST_LOG=error

# 1. Codec (criterion keeps its own statistics; its median is what we quote).
if [[ -z "$QUICK" ]]; then
    log "codec (criterion)"
    cargo bench -p sairex-pdu --bench codec --quiet -- --noplot \
        --warm-up-time 1 --measurement-time 4 >"$OUT/codec.txt" 2>&1 || {
        cat "$OUT/codec.txt" >&2
        exit 1
    }
fi

# 2. Store, 3. SMPP path: RUNS runs each.
for i in $(seq 1 "$RUNS"); do
    log "store run $i/$RUNS"
    "$BIN" loadtest store --messages "$STORE_N" --concurrency 64 --json >"$OUT/store-$i.json"
    log "smpp run $i/$RUNS"
    "$BIN" loadtest smpp --messages "$SMPP_N" --binds 4 --window 64 --json >"$OUT/smpp-$i.json"
done

# 4. HTTP path against the whole gateway (serve --demo: store, engine, simulator, API).
log "starting sairex serve --demo"
mkdir -p "$OUT/data"
(cd "$OUT" && exec "$BIN" serve --demo --data-dir "$OUT/data" --listen 127.0.0.1:0 \
    >"$OUT/serve.out" 2>"$OUT/serve.err") &
SERVER_PID=$!
for _ in $(seq 1 300); do
    grep -q "sk_live_" "$OUT/serve.out" 2>/dev/null && break
    sleep 0.1
done
URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$OUT/serve.out" | head -1)"
KEY="$(grep -o 'sk_live_[A-Za-z0-9]*' "$OUT/serve.out" | head -1)"
if [[ -z "$URL" || -z "$KEY" ]]; then
    log "the demo server did not start:"
    cat "$OUT/serve.err" >&2
    exit 1
fi
export SAIREX_API_KEY="$KEY"
# The first send of a fresh process loads lazy tables: not part of any measurement.
"$BIN" loadtest http --target "$URL" --max --count 200 --concurrency 4 --json >/dev/null
for i in $(seq 1 "$RUNS"); do
    log "http run $i/$RUNS (closed loop)"
    "$BIN" loadtest http --target "$URL" --max --count "$HTTP_N" --concurrency 64 \
        --mix otp:10,transactional:30,bulk:60 --json >"$OUT/http-$i.json"
    log "http run $i/$RUNS (open loop, e2e)"
    "$BIN" loadtest http --target "$URL" --rate "$E2E_RATE" --duration "$E2E_SECS" \
        --concurrency 64 --e2e --json >"$OUT/e2e-$i.json"
done
kill -TERM "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# The machine.
CPU="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
CPUS="$(nproc)"
MEM="$(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
KERNEL="$(uname -sr)"
RUSTC="$(rustc --version)"
WHEN="$(date -u '+%Y-%m-%d %H:%M UTC')"
LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

SECTION="$OUT/section.md"
python3 - "$OUT" "$RUNS" "$CARGO_TARGET_DIR" >"$SECTION" <<PY
import glob, json, os, statistics, sys

out, runs, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def load(prefix):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, prefix + "-*.json")))]

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")

def fmt(x, digits=0):
    return f"{x:,.{digits}f}"

print("<!-- bench/run.sh:begin (generated; edit bench/run.sh, not this section) -->")
print("## Suite (bench/run.sh)")
print()
print("Generated by \`bench/run.sh\`: medians of $RUNS run(s) of each measurement, release build.")
print()
print("- Machine: $CPU, $CPUS CPU(s), $MEM RAM; $KERNEL; $RUSTC")
print("- When: $WHEN; load average at the end: $LOAD (a shared machine: compare ratios)")
print()

codec = []
for est in glob.glob(os.path.join(target, "criterion", "*", "*", "new", "estimates.json")):
    parts = est.split(os.sep)
    group, bench = parts[-4], parts[-3]
    codec.append((group, bench, json.load(open(est))["median"]["point_estimate"]))
if codec:
    print("### Codec (criterion median)")
    print()
    print("| group | benchmark | median |")
    print("| --- | --- | --- |")
    by_group = {}
    for group, bench, ns in sorted(codec):
        unit = f"{ns/1e3:,.2f} µs" if ns >= 1e3 else f"{ns:,.0f} ns"
        print(f"| {group} | {bench.replace('_', '/', 1)} | {unit} |")
        by_group.setdefault(group, {})[bench] = ns
    ratios = []
    for group, b in sorted(by_group.items()):
        ours = next((v for k, v in b.items() if k.startswith("decode_sairex")), None)
        theirs = next((v for k, v in b.items() if k.startswith("decode_smpp-pdu")), None)
        if ours and theirs:
            ratios.append(f"{group} decode: smpp-pdu / sairex = {theirs/ours:.1f}×")
    if ratios:
        print()
        print("Ratios (same run): " + "; ".join(ratios))
    print()

store = load("store")
if store:
    print(f"### Store (\`sairex loadtest store --messages {store[0]['settings']['messages'] if 'settings' in store[0] else '?'} --concurrency 64\`)")
    print()
    print("| phase | messages/s (median) | p50 µs | p99 µs |")
    print("| --- | --- | --- | --- |")
    names = [p["name"] for p in store[0]["phases"]]
    for name in names:
        ph = [next(p for p in r["phases"] if p["name"] == name) for r in store]
        print(f"| {name} | {fmt(med(p['messagesPerSecond'] for p in ph))} | "
              f"{fmt(med(p['latencyUs']['p50'] for p in ph))} | {fmt(med(p['latencyUs']['p99'] for p in ph))} |")
    print()

smpp = load("smpp")
if smpp:
    s = smpp[0]["settings"]
    print(f"### SMPP path (\`sairex loadtest smpp --messages {s['messages']} --binds {s['binds']} --window {s['window']}\`)")
    print()
    d = [r["delivery"] for r in smpp]
    print(f"- queued → DELIVERED: **{fmt(med(x['deliveredPerSecond'] for x in d))} msg/s** "
          f"(runs: {', '.join(fmt(x['deliveredPerSecond']) for x in d)}); latency p50 "
          f"{fmt(med(x['latencyUs']['p50'] for x in d)/1e3, 1)} ms, p99 {fmt(med(x['latencyUs']['p99'] for x in d)/1e3, 1)} ms")
    print(f"- missing: {max(x['missing'] for x in d)} (max over runs)")
    print()

http = load("http")
if http:
    s = http[0]["settings"]
    print("### HTTP path (\`sairex loadtest http\` against \`sairex serve --demo\`)")
    print()
    print("| run | requests/s (median) | p50 ms | p99 ms | p99.9 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    lat = lambda rs, k: med(r["acceptLatencyUs"][k] for r in rs) / 1e3
    errors = sum(sum(r["errors"].values()) if isinstance(r["errors"], dict) else 0 for r in http)
    print(f"| closed loop, 64 connections, {http[0]['requests']} requests | {fmt(med(r['requestsPerSecond'] for r in http))} | "
          f"{lat(http, 'p50'):.2f} | {lat(http, 'p99'):.2f} | {lat(http, 'p999'):.2f} | {errors} |")
    e2e = load("e2e")
    if e2e:
        errors = sum(sum(r["errors"].values()) if isinstance(r["errors"], dict) else 0 for r in e2e)
        print(f"| open loop {e2e[0]['settings'].get('rate', '?')}/s | {fmt(med(r['requestsPerSecond'] for r in e2e))} | "
              f"{lat(e2e, 'p50'):.2f} | {lat(e2e, 'p99'):.2f} | {lat(e2e, 'p999'):.2f} | {errors} |")
        ee = [r["e2e"] for r in e2e if r.get("e2e")]
        if ee:
            print()
            print(f"Accept → DELIVERED (open loop, the demo simulator answers receipts after 300 ms): p50 "
                  f"{med(x['latencyUs']['p50'] for x in ee)/1e3:.1f} ms, p99 {med(x['latencyUs']['p99'] for x in ee)/1e3:.1f} ms; "
                  f"delivered {sum(x['delivered'] for x in ee)} of {sum(x['accepted'] for x in ee)} accepted, missing {sum(x['missing'] for x in ee)}.")
    print()
print("<!-- bench/run.sh:end -->")
PY

if [[ -n "${NO_WRITE:-}" ]]; then
    cat "$SECTION"
    exit 0
fi
python3 - "$ROOT/docs/BENCHMARKS.md" "$SECTION" <<'PY'
import re, sys
doc_path, section_path = sys.argv[1], sys.argv[2]
doc = open(doc_path).read()
section = open(section_path).read().rstrip("\n") + "\n"
pattern = re.compile(r"<!-- bench/run.sh:begin.*?<!-- bench/run.sh:end -->\n?", re.S)
if pattern.search(doc):
    doc = pattern.sub(lambda _: section, doc)
else:
    doc = doc.rstrip("\n") + "\n\n" + section
open(doc_path, "w").write(doc)
PY
log "docs/BENCHMARKS.md updated"

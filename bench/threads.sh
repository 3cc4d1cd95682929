#!/usr/bin/env bash
# Is one training at 2 wasm threads or two trainings side by side at 1 thread each the better use of a 2-core
# machine? (`fewshot reproduce --jobs` defaults to whichever this measured.) Trains METHOD for N episodes on the
# real mini-ImageNet cache with CONFIG (default: the tables' 32 px CPU-budget config; no validation): once alone
# at 2 threads, then twice at once at 1 thread each, and reports episodes per second of each, wall clock
# including process start. Run it on an otherwise idle machine.
#   bash bench/threads.sh [METHOD=protonet-sla] [N=300] [DATA=../shared/datasets/mini-imagenet] [CONFIG=experiments/sla-cpu-5w1s.json]
# Writes results/bench/threads-<method>-<image size>px-<date>.json.
set -u
cd "$(dirname "$0")/.."
method="${1:-protonet-sla}"; n="${2:-300}"; data="${3:-../shared/datasets/mini-imagenet}"; config="${4:-experiments/sla-cpu-5w1s.json}"
out=$(mktemp -d "${TMPDIR:-/tmp}/fewshot-threads-XXXXXX")
trap 'rm -rf "$out"' EXIT
one() { # THREADS NAME
  FEWSHOT_WASM_THREADS=$1 node bin/fewshot.js train "$method" --config "$config" --episodes "$n" --val-every 0 --val-episodes 1 \
    --data "$data" --runs "$out/runs" --name "$2" --backend wasm > "$out/$2.log" 2>&1 || { echo "training failed:"; tail -5 "$out/$2.log"; exit 1; }
}
one 2 warm-cache >/dev/null # prepares the cache if needed, outside the timing
rm -rf "$out/runs"
t0=$(date +%s.%N); one 2 a2; t1=$(date +%s.%N)
one 1 b1 & one 1 c1 & wait; t2=$(date +%s.%N)
mkdir -p results/bench
python3 - "$t0" "$t1" "$t2" "$n" "$method" "$(nproc)" "$config" <<'PY'
import json, sys, datetime, platform
t0, t1, t2, n, m, cores, config = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7]
size = json.load(open(config))["imageSize"]
one, two = n / (t1 - t0), 2 * n / (t2 - t1)
rec = {
    "what": "training throughput: 1 run x 2 wasm threads vs 2 runs x 1 thread side by side",
    "command": f"bash bench/threads.sh {m} {n} <data> {config}", "method": m, "config": config, "imageSize": size, "episodesPerRun": n, "seed": 0,
    "cores": cores, "cpu": platform.processor() or platform.machine(),
    "oneRunTwoThreads": {"wallSeconds": round(t1 - t0, 1), "episodesPerSecond": round(one, 2)},
    "twoRunsOneThread": {"wallSeconds": round(t2 - t1, 1), "episodesPerSecond": round(two, 2)},
    "ratio": round(two / one, 2),
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
}
name = f"results/bench/threads-{m}-{size}px-{rec['date'].replace(':', '-')}.json"
open(name, "w").write(json.dumps(rec, indent=1) + "\n")
print(f"{m}: 1 run x 2 threads {one:.2f} episodes/s; 2 runs x 1 thread {two:.2f} episodes/s; ratio {two / one:.2f} -> {name}")
PY

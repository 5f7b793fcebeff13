#!/usr/bin/env bash
# Where the GPU time of a `fp8llm bench` run goes, kernel by kernel: Nsight Compute times COUNT
# kernel launches after the first SKIP (its duration metric alone, clocks left as they are; CUDA
# graphs are profiled node by node), and the launches are summed by kernel name. Pick SKIP past
# the load and the prompts to see decode steps. Writes OUT.csv (every launch) and OUT.txt (the
# table, largest first).
#
#   [KERNELS=REGEX] scripts/gpu/profile_kernels.sh OUT SKIP COUNT FP8LLM bench ARGS...
#
# KERNELS limits the profile (and SKIP and COUNT) to the kernels whose names match: a way past
# the load's launches without counting them, e.g. KERNELS='nvjet|attention|act'.
set -euo pipefail
out=$1 skip=$2 count=$3
shift 3
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
[[ -n $ncu ]] || { echo "profile_kernels: ncu not found" >&2; exit 2; }
"$ncu" --clock-control none --metrics gpu__time_duration.sum --print-kernel-base function \
  ${KERNELS:+--kernel-name "regex:$KERNELS"} --launch-skip "$skip" \
  --launch-count "$count" --csv "$@" >"$out.raw" 2>"$out.log" || true
# ncu's CSV (a header, then a row per launch and metric) follows the program's own output.
grep -E '^"(ID|[0-9]+)"' "$out.raw" >"$out.csv" || true
python3 - "$out.csv" >"$out.txt" <<'PY'
import csv, sys, collections
times, calls = collections.Counter(), collections.Counter()
with open(sys.argv[1], newline="") as f:
    for row in csv.DictReader(f):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3,
                 "ms": 1e3}.get(row["Metric Unit"], 1.0)
        name = row["Kernel Name"].split("(")[0][:90]
        times[name] += float(row["Metric Value"].replace(",", "")) * scale
        calls[name] += 1
total = sum(times.values())
print(f"{sum(calls.values())} launches, {total / 1e3:.3f} ms of GPU time")
print(f"{'us':>10} {'share':>6} {'calls':>6} {'us/call':>8}  kernel")
for name, t in times.most_common():
    print(f"{t:10.1f} {100 * t / total:5.1f}% {calls[name]:6d} {t / calls[name]:8.2f}  {name}")
PY
rm -f "$out.raw"
head -30 "$out.txt"

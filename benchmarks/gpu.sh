#!/usr/bin/env bash
# Training throughput on a GPU: AMP on/off x torch.compile on/off, GPU utilisation sampled by nvidia-smi, one table.
#
#   bash benchmarks/fetch_gpu_wheels.sh   # once, where PyPI can be reached: wheels for a GPU machine without it
#   bash benchmarks/gpu.sh                # on the GPU machine, from the repo root (with benchmarks/wheels); ~5 min
#
# Python: a venv in $VENV that sees the system's packages, so a CUDA torch already installed on the GPU machine is
# used as is; only where no torch is found is torch==2.13.0 installed (that needs PyPI, and a CUDA build of it). The
# bundle's other requirements come from benchmarks/wheels when it holds wheels (offline), else from PyPI.
# Knobs (environment): ITERS (iterations per epoch, 16), REPEATS (3), CACHE (cache modes for run c,
# "disk,memory_thread"; see benchmarks/train_throughput.py), COMPILE_RUNS (runs with --compile, "a,b": compilation
# does not change loading), RUN_TIMEOUT (seconds per configuration, 120), VENV, DATA, EXTRA_FLAGS (more
# train_throughput flags), DEVICE (cuda). A dry run on a machine without a GPU:
#   DEVICE=cpu VENV=.venv ITERS=2 REPEATS=1 CACHE=disk EXTRA_FLAGS="--smoke --warmup_rounds 0" bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RESULTS="${OUT:-benchmarks/results}/gpu"
VENV="${VENV:-/tmp/sma-gpu-venv}"
DATA="${DATA:-/tmp/sma-gpu-data}"
ITERS="${ITERS:-16}" REPEATS="${REPEATS:-3}" CACHE="${CACHE:-disk,memory_thread}" RUN_TIMEOUT="${RUN_TIMEOUT:-120}"
COMPILE_RUNS="${COMPILE_RUNS:-a,b}"
DEVICE="${DEVICE:-cuda}" EXTRA_FLAGS="${EXTRA_FLAGS:-}"
mkdir -p "$RESULTS"
started=$SECONDS

# --- environment --------------------------------------------------------------------------------------------
[ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
PY="$VENV/bin/python"
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q torch==2.13.0
if compgen -G "benchmarks/wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --find-links benchmarks/wheels -r requirements.txt
else
    "$PY" -m pip install -q -r requirements.txt
fi
"$PY" - "$DEVICE" <<'PYTHON'
import sys, monai, torch
if sys.argv[1] == "cuda":
    assert torch.cuda.is_available(), "torch sees no CUDA device"
name = torch.cuda.get_device_name() if sys.argv[1] == "cuda" else "CPU"
print(f"torch {torch.__version__}, MONAI {monai.__version__}, {name}", flush=True)
PYTHON

# --- GPU utilisation over the whole run (per-run means come from the benchmark itself) ---------------------------
SMI=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$RESULTS/gpu.csv"
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,nounits -lms 500 >"$RESULTS/nvidia-smi.csv" 2>/dev/null &
    SMI=$!
    trap 'kill "$SMI" 2>/dev/null || true' EXIT
fi

# --- the four configurations --------------------------------------------------------------------------------
for compile in off on; do
    for amp in on off; do
        tag="amp_${amp}-compile_${compile}"
        # shellcheck disable=SC2206  # EXTRA_FLAGS is split on purpose
        flags=(--device "$DEVICE" --amp "$amp" --iters_per_epoch "$ITERS" --repeats "$REPEATS" --cache "$CACHE"
               --data_dir "$DATA" --json "$RESULTS/train_throughput-$tag.json" $EXTRA_FLAGS)
        if [ "$compile" = on ]; then flags+=(--compile --runs "$COMPILE_RUNS"); fi
        echo "=== $tag ($((SECONDS - started)) s so far)"
        rm -f "$RESULTS/train_throughput-$tag.json"
        if ! timeout "$RUN_TIMEOUT" "$PY" -m benchmarks.train_throughput "${flags[@]}" >"$RESULTS/log-$tag.txt" 2>&1; then
            echo "$tag failed or timed out; last lines of $RESULTS/log-$tag.txt:"
            tail -n 5 "$RESULTS/log-$tag.txt"
        fi
        grep -E '^\| (a|b|c:)' "$RESULTS/log-$tag.txt" || true
    done
done
[ -z "$SMI" ] || kill "$SMI" 2>/dev/null || true

# --- one table ----------------------------------------------------------------------------------------------
"$PY" - "$RESULTS" <<'PYTHON'
import csv, json, statistics, sys
from pathlib import Path

results = Path(sys.argv[1])
rows, system = [], {}
for compile_ in ("off", "on"):
    for amp in ("on", "off"):
        path = results / f"train_throughput-amp_{amp}-compile_{compile_}.json"
        if not path.is_file():
            rows.append(f"| {amp} | {compile_} | no result: see log-amp_{amp}-compile_{compile_}.txt | | | |")
            continue
        r = json.loads(path.read_text())
        system = system or r["system"]
        for name, run in r["runs"].items():
            key = "b/a" if name == "b" else f"c/b:{name[2:]}" if name.startswith("c:") else None
            ratio = r["ratios"].get(key) if key else None
            util = run.get("gpu_utilisation_median")
            rows.append(f"| {amp} | {compile_} | {name} | {run['slices_per_s_median']:.0f} | "
                        f"{'' if ratio is None else f'{ratio:.3f}'} | {'' if util is None else f'{util:.0f}'} |")
overall = "not sampled (no nvidia-smi)"
if (results / "nvidia-smi.csv").is_file():
  try:
    with open(results / "nvidia-smi.csv") as f:
        util = [float(row[" utilization.gpu [%]"]) for row in csv.DictReader(f) if row.get(" utilization.gpu [%]", "").strip()]
    if util:
        overall = f"{statistics.fmean(util):.0f}% mean, {max(util):.0f}% max over {len(util)} samples"
  except (OSError, KeyError, ValueError) as e:
    overall = f"not read ({e})"
print(f"\n### GPU training throughput ({system.get('gpu', system.get('device', '?'))}, torch {system.get('torch', '?')}, "
      f"MONAI {system.get('monai', '?')})\n")
print("| AMP | compile | run | slices/s (median) | ratio (b/a, c/b) | GPU util % |")
print("| --- | --- | --- | --- | --- | --- |")
print("\n".join(rows))
print(f"\nGPU utilisation over the whole script (nvidia-smi): {overall}. a: bare PyTorch loop; b: bundle trainer, "
      f"in-memory batches; c:<cache>: bundle trainer on NIfTI. JSON and logs: {results}")
PYTHON
echo "gpu.sh done in $((SECONDS - started)) s"

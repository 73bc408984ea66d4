"""Seconds to mask one brain scan, whole process, as a user runs it: the bundle's ``configs/inference.json`` (its
defaults and cheaper settings) beside deepbet and HD-BET, in one run, interleaved, on the same scan.

    python -m benchmarks.brain_mask_speed --scan real_t1/imagesTr/cn200_native_0000.nii.gz
        [--baseline_python baselines/.venv/bin/python] [--repeats 3] [--json benchmarks/results/brain_mask_speed.json]

Every round runs each contender once in a fresh process on a fresh output folder (start-up, imports, loading the
weights, reading, predicting and writing the mask all count, as they do for a user's single scan), in the same order;
the median and the best round are reported, with each one's ratio to deepbet's median. Baselines run through
``scripts.studies.baseline_masks`` (``--baselines`` none: the bundle alone). The CPU should be otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common
from scripts.common.paths import BUNDLE_ROOT, INFERENCE_CONFIG
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.studies.baseline_masks import TOOLS, baseline_masks, case_of
from scripts.studies.study_files import markdown_table

# what the bundle is timed with: inference.json's defaults, then flip TTA on top, then one plane alone
BUNDLE_SETTINGS = {
    "bundle (3 planes, no TTA: the default)": "",
    "bundle (3 planes, flip TTA: 12 passes)": "--tta true",
    "bundle (1 plane, no TTA)": "--inference_planes ['auto']",
}


def bundle_seconds(scan: Path, out_dir: Path, overrides: str) -> float:
    """One ``monai.bundle run`` of inference.json over a folder holding ``scan`` alone."""
    images = out_dir / "images"
    images.mkdir(parents=True)
    (images / scan.name).symlink_to(scan.resolve())
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(INFERENCE_CONFIG)]
    cmd += ["--dataset_dir", str(images), "--output_dir", str(out_dir / "masks"), *shlex.split(overrides)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=BUNDLE_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not any((out_dir / "masks").glob("*.nii.gz")):
        raise SystemExit(f"inference.json {overrides} failed on {scan}:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return seconds


def tool_seconds(tool: str, scan: Path, out_dir: Path, python: str | None) -> float:
    baseline_masks(tool, [scan], out_dir, python)
    return json.loads((out_dir / "seconds.json").read_text())[case_of(scan)]


def parse(argv=None) -> argparse.Namespace:
    p = ToolArgumentParser(prog="python -m benchmarks.brain_mask_speed", description=__doc__.splitlines()[0])
    p.add_argument("--scan", type=Path, required=True, help="a T1 scan named <case>_0000.nii.gz")
    p.add_argument("--baselines", nargs="*", choices=list(TOOLS), default=["deepbet", "hdbet"])
    p.add_argument("--baseline_python", default=None, help="a python with the baselines (requirements-baselines.txt)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=common.RESULTS / "brain_mask_speed.json")
    p.set_defaults(_name="brain_mask_speed")
    args = p.parse_args(argv)
    if not args.scan.is_file() or not args.scan.name.endswith("_0000.nii.gz"):
        raise SystemExit(f"{args.scan}: not found or not named <case>_0000.nii.gz; give one scan in nnU-Net naming")
    return args


def run(args: argparse.Namespace) -> dict:
    """``--repeats`` rounds of every contender in turn, each in a fresh process on a fresh folder: its seconds."""
    contenders = {name: ("bundle", overrides) for name, overrides in BUNDLE_SETTINGS.items()}
    contenders.update({tool: ("tool", tool) for tool in args.baselines})
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    info = common.system_info("cpu")
    for round_ in range(args.repeats):
        for name, (kind, what) in contenders.items():
            with tempfile.TemporaryDirectory() as tmp:
                if kind == "bundle":
                    value = bundle_seconds(args.scan, Path(tmp), what)
                else:
                    value = tool_seconds(what, args.scan, Path(tmp), args.baseline_python)
            seconds[name].append(round(value, 2))
            print(f"round {round_ + 1}: {name}: {value:.1f} s", flush=True)
    return {"scan": str(args.scan), "seconds": seconds, "system": info}


def report(args: argparse.Namespace, result: dict) -> None:
    seconds = result["seconds"]
    reference = statistics.median(seconds["deepbet"]) if "deepbet" in seconds else None
    rows = []
    for name, values in seconds.items():
        med = statistics.median(values)
        rows.append([name, med, min(values), f"{med / reference:.2f}" if reference else "–"])
    common.finish(args, result, markdown_table(["contender", "median s", "best s", "median / deepbet's"], rows))


def main(argv=None) -> dict:
    args = parse(argv)
    result = run(args)
    report(args, result)
    return result


if __name__ == "__main__":
    main()

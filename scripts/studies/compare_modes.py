"""Dice and seconds per epoch of the 2D, 2.5D and 3D modes trained on the same data with the same settings.

    python -m scripts.studies.compare_modes [--epochs 20] [--dataset_dir DIR] [--test_dir DIR] [--json out.json] [--smoke]

Each mode is a real ``monai.bundle run`` in a subprocess (default: the demo data, written on first use). With
``--test_dir`` (a folder with ``imagesTs``/``labelsTs``, e.g. the real-MRI example's) each mode's model is also scored
on those held-out scans with ``configs/evaluate.json`` (mean Dice and HD95 over the cases).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from scripts.common.paths import EVALUATE_CONFIG
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.studies.study_files import write_json
from scripts.tools.launch import config_files, run_bundle

EPOCH_TIME = re.compile(r"SupervisedTrainer - INFO - Epoch\[\d+\] Complete\. Time taken: (\d+):(\d+):([\d.]+)")


def bundle_run(mode: str, root: Path, dataset_dir: str | None, overrides: dict, extra_configs: tuple = ()) -> str:
    """One bundle run of ``mode`` (its layered files and ``extra_configs`` on train.json) into ``root``; its log."""
    files = [*config_files(mode), *(str(c) for c in extra_configs)]
    settings = {"bundle_root": root, **({"dataset_dir": dataset_dir} if dataset_dir else {}), **overrides}
    log = root / f"{mode}-{len(extra_configs)}.log"
    root.mkdir(parents=True, exist_ok=True)
    run_bundle(files, settings, log)
    return log.read_text()


def held_out_scores(mode: str, root: Path, dataset_dir: str | None, overrides: dict, test_dir: str) -> dict:
    """Mean Dice and HD95 of the mode's ``models/model.pt`` on ``test_dir``'s imagesTs/labelsTs."""
    test = {
        "training_images": os.path.join(test_dir, "imagesTs"),
        "training_labels": os.path.join(test_dir, "labelsTs"),
        "eval_split": "all",
    }
    bundle_run(mode, root, dataset_dir, {**overrides, **test}, (EVALUATE_CONFIG,))
    summary = json.loads(next((root / "runs" / "SMALabeller").glob("eval/summary.json")).read_text())["metrics"]
    return {"test_dice": summary["dice"]["mean"], "test_hd95_mm": summary["hd95_mm"]["mean"]}


def run_mode(mode: str, root: Path, dataset_dir: str | None, overrides: dict, test_dir: str | None = None) -> dict:
    log = bundle_run(mode, root, dataset_dir, overrides)
    seconds = [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in EPOCH_TIME.findall(log)]
    events = EventAccumulator(str(next((root / "runs" / "SMALabeller").glob("*-val_cls-*"))))
    events.Reload()
    dice = [e.value for e in events.Scalars("val_mean_dice")]
    row = {
        "mode": mode,
        "final_dice": dice[-1],
        "best_dice": max(dice),
        "validations": len(dice),
        "epochs": len(seconds),
        "median_epoch_seconds": statistics.median(seconds),
    }
    if test_dir:
        row.update(held_out_scores(mode, root, dataset_dir, overrides, test_dir))
    return row


SMOKE = {
    "epochs": 1,
    "iterations_per_epoch": 2,
    "num_workers": 0,
    "spatial_size": 32,
    "slices_per_volume": 4,
    "patch_size": "[32,32,16]",
}


def parse(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(prog="python -m scripts.studies.compare_modes", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dataset_dir", default=None, help="default: the demo data")
    parser.add_argument("--modes", default="2D,2.5D,3D")
    parser.add_argument("--test_dir", default=None, help="also score each model on <test_dir>/imagesTs + labelsTs")
    parser.add_argument("--json", default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 epoch: checks the study runs")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Each mode trained (and scored on ``--test_dir``) in turn in a temporary folder: the settings and a row a mode."""
    overrides = dict(SMOKE) if args.smoke else {"epochs": args.epochs, "num_workers": 0}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            extra = {} if mode == "3D" else {k: v for k, v in overrides.items() if k != "patch_size"}
            rows.append(
                run_mode(
                    mode, Path(tmp) / mode.replace(".", "_"), args.dataset_dir, {**overrides, **extra}, args.test_dir
                )
            )
    return {"settings": overrides, "results": rows}


def report(args: argparse.Namespace, result: dict) -> None:
    test = " held-out Dice | held-out HD95 mm |" if args.test_dir else ""
    print(f"| mode | final val Dice | best val Dice | epochs | median s/epoch |{test}")
    print("| --- | --- | --- | --- | --- |" + (" --- | --- |" if args.test_dir else ""))
    for row in result["results"]:
        # HD95 is undefined (None) when every prediction or label is empty
        hd95 = "n/a" if row.get("test_hd95_mm") is None else f"{row['test_hd95_mm']:.2f}"
        cells = f" {row['test_dice']:.4f} | {hd95} |" if args.test_dir else ""
        scores = (
            f"{row['final_dice']:.3f} | {row['best_dice']:.3f} | {row['epochs']} | {row['median_epoch_seconds']:.1f}"
        )
        print(f"| {row['mode']} | {scores} |{cells}")
    if args.json:
        write_json(Path(args.json), result)


def main(argv=None) -> int:
    args = parse(argv)
    report(args, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

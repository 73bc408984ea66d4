"""Leave-one-source-out on the real multi-source set: train on the other sources with the default config, predict the
held-out source's scans with ``configs/inference.json``, score them on their own grid; published skull-stripping tools
on the same scans beside it (``benchmarks.baseline_masks``: ROBEX, deepbet, HD-BET), each run once per scan and kept.

    python -m scripts.tools.prepare_real_t1 --output_dir real_t1
    python -m benchmarks.leave_one_source_out --dataset_dir real_t1 --sources cn200 sri24 icbm09 [--holdout sri24]
        [--work_dir loso] [--json loso.json] [--train_args "--epochs 10"] [--inference_args "--tta true"]
        [--baselines robex deepbet hdbet] [--baseline_python baselines/.venv/bin/python]

``--sources`` are the sources in play (``cases.json`` of ``scripts.tools.prepare_real_t1`` says which case is which); each
one in ``--holdout`` (default: all of them) is held out in turn, every case of it (native and its second acquisition).
Prints one markdown row per held-out case: Dice, HD95 (mm), false-positive and false-negative ml, recall, each
baseline's Dice / HD95 (mm) and seconds for that scan, training minutes. The baselines' masks live in
``<work_dir>/baselines/<tool>/`` and serve every fold and rerun.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmarks import common
from benchmarks.baseline_masks import TOOLS, baseline_masks
from scripts.handlers.surface_metrics import case_metrics
from scripts.tools.launch import CONFIG_DIR, config_files, run_bundle

BASELINES = ("robex", "deepbet", "hdbet")


def link_cases(cases: list[dict], dataset_dir: Path, target: Path, labels: bool = True) -> None:
    (target / "imagesTr").mkdir(parents=True, exist_ok=True)
    if labels:
        (target / "labelsTr").mkdir(parents=True, exist_ok=True)
    for case in cases:
        name = case["case"]
        (target / "imagesTr" / f"{name}_0000.nii.gz").symlink_to(
            (dataset_dir / "imagesTr" / f"{name}_0000.nii.gz").resolve()
        )
        if labels:
            (target / "labelsTr" / f"{name}.nii.gz").symlink_to((dataset_dir / "labelsTr" / f"{name}.nii.gz").resolve())


def score(mask_path: Path, label_path: Path) -> dict:
    label = nib.load(label_path)
    pred = np.asarray(nib.load(mask_path).dataobj) > 0
    truth = np.asarray(label.dataobj) > 0
    if pred.shape != truth.shape:
        raise SystemExit(f"{mask_path}: shape {pred.shape} differs from its label's {truth.shape}")
    metrics = case_metrics(pred, truth, label.affine)
    metrics["fp_ml"], metrics["fn_ml"] = metrics["fp_volume_ml"], metrics["fn_volume_ml"]
    metrics["recall"] = float((pred & truth).sum()) / max(float(truth.sum()), 1.0)  # for masks drawn by a narrower rule
    return metrics


def run_fold(
    holdout: str,
    sources: list[str],
    cases: list[dict],
    dataset_dir: Path,
    work_dir: Path,
    train_args: list[str],
    inference_args: list[str],
    baselines: tuple[str, ...] = BASELINES,
    baseline_python: str | None = None,
) -> list[dict]:
    fold = work_dir / holdout
    train_cases = [c for c in cases if c["source"] in sources and c["source"] != holdout]
    test_cases = [c for c in cases if c["source"] == holdout]
    if not (fold / "models" / "model.pt").exists():
        link_cases(train_cases, dataset_dir, fold / "train")
        minutes = (
            run_bundle(
                config_files(dict(zip(train_args[::2], train_args[1::2], strict=True)).get("--unet_dimensions")),
                ["--bundle_root", str(fold), "--dataset_dir", str(fold / "train"), *train_args],
                fold / "train.log",
            )
            / 60
        )
        (fold / "train_minutes.txt").write_text(f"{minutes:.2f}\n")
    minutes = float((fold / "train_minutes.txt").read_text())
    if not (fold / "test").exists():
        link_cases(test_cases, dataset_dir, fold / "test", labels=False)
    run_bundle(
        [CONFIG_DIR / "inference.json"],
        [
            "--bundle_root",
            str(fold),
            "--dataset_dir",
            str(fold / "test" / "imagesTr"),
            "--output_dir",
            str(fold / "predictions"),
            "--overwrite",
            "true",
            *inference_args,
        ],
        fold / "inference.log",
    )  # a rerun with other inference settings must not keep the former masks
    images = sorted((fold / "test" / "imagesTr").iterdir())
    tools = {tool: work_dir / "baselines" / tool for tool in baselines}
    masks = {tool: baseline_masks(tool, images, folder, baseline_python) for tool, folder in tools.items()}
    seconds = {tool: json.loads((folder / "seconds.json").read_text()) for tool, folder in tools.items()}
    rows = []
    for case in test_cases:
        label = dataset_dir / "labelsTr" / f"{case['case']}.nii.gz"
        row = {
            "case": case["case"],
            "trained_on": sorted({c["source"] for c in train_cases}),
            "train_minutes": minutes,
            **score(fold / "predictions" / f"{case['case']}.nii.gz", label),
        }
        for tool in tools:
            row[tool] = {**score(masks[tool][case["case"]], label), "seconds": seconds[tool].get(case["case"])}
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    tools = [tool for tool in BASELINES if any(tool in r for r in rows)]
    headers = ["held-out case", "trained on", "Dice", "HD95 mm", "FP ml", "FN ml", "recall"]
    headers += [f"{tool} Dice / HD95 mm / s" for tool in tools] + ["training min"]
    cells = []
    for r in rows:
        cells.append(
            [
                r["case"],
                ", ".join(r["trained_on"]),
                f"{r['dice']:.4f}",
                f"{r['hd95_mm']:.2f}",
                f"{r['fp_ml']:.1f}",
                f"{r['fn_ml']:.1f}",
                f"{r['recall']:.3f}",
                *(
                    (
                        f"{r[t]['dice']:.4f} / {r[t]['hd95_mm']:.2f} / {r[t]['seconds'] or float('nan'):.0f}"
                        if t in r
                        else "–"
                    )
                    for t in tools
                ),
                f"{r['train_minutes']:.1f}",
            ]
        )
    return common.table(headers, cells)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset_dir", required=True, help="output of scripts.tools.prepare_real_t1 (with cases.json)"
    )
    parser.add_argument("--sources", nargs="+", required=True)
    parser.add_argument("--holdout", nargs="+", default=None)
    parser.add_argument("--work_dir", default="loso")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--train_args",
        default="",
        help='train.json overrides in one string, e.g. "--epochs 10"; "--unet_dimensions 2.5D" layers its mode\'s config',
    )
    parser.add_argument("--inference_args", default="", help="inference.json overrides in one string")
    parser.add_argument(
        "--baselines",
        nargs="*",
        choices=list(TOOLS),
        default=list(BASELINES),
        help="published tools whose masks of the held-out scans stand beside the bundle's (none: no baseline)",
    )
    parser.add_argument(
        "--baseline_python", default=None, help="a python that has them (requirements-baselines.txt; default: this one)"
    )
    args = parser.parse_args(argv)
    dataset_dir, work_dir = Path(args.dataset_dir), Path(args.work_dir)
    cases = json.loads((dataset_dir / "cases.json").read_text())
    rows = []
    for holdout in args.holdout or args.sources:
        rows += run_fold(
            holdout,
            args.sources,
            cases,
            dataset_dir,
            work_dir,
            shlex.split(args.train_args),
            shlex.split(args.inference_args),
            tuple(args.baselines),
            args.baseline_python,
        )
        print(table(rows[-len([c for c in cases if c["source"] == holdout]) :]), flush=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

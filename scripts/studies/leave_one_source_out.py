"""Leave-one-source-out on the real multi-source set: train on the other sources with the default config, predict the
held-out source's scans with ``configs/inference.json``, score them on their own grid; published skull-stripping tools
on the same scans beside it (``scripts.studies.baseline_masks``: ROBEX, deepbet, HD-BET), each run once per scan and kept.

    python -m scripts.tools.prepare_real_t1 --output_dir real_t1
    python -m scripts.studies.leave_one_source_out --dataset_dir real_t1 --sources cn200 sri24 icbm09 [--holdout sri24]
        [--work_dir loso] [--json loso.json] [--train_args "--epochs 10"] [--inference_args "--tta true"]
        [--baselines robex deepbet hdbet] [--baseline_python baselines/.venv/bin/python]

``--sources`` are the sources in play (``cases.json`` of ``scripts.tools.prepare_real_t1`` says which case is which); each
one in ``--holdout`` (default: all of them) is held out in turn, every case of it (native and its second acquisition).
Prints one markdown row per held-out case: Dice, HD95 (mm), false-positive and false-negative ml, recall, each
baseline's Dice / HD95 (mm) and seconds for that scan, training minutes. The baselines' masks live in
``<work_dir>/baselines/<tool>/`` and serve every fold and rerun.

A set whose ``dataset.json`` names three or more classes (``scripts.tools.prepare_tissue_classes``) is scored per class:
Dice and HD95 (mm) of each foreground class, beside the classical baseline of that task (``kmeans``,
``scripts.studies.tissue_kmeans``, which is given the reference's brain region):

    python -m scripts.tools.prepare_tissue_classes --output_dir tissue_t1
    python -m scripts.studies.leave_one_source_out --dataset_dir tissue_t1 --sources fsavg avg305 icbm09 --work_dir loso_tissue
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np

from scripts.common.paths import INFERENCE_CONFIG
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.data.label_classes import BINARY_CLASSES, DATASET_JSON, foreground_names, is_binary, read_dataset_json
from scripts.metrics.class_scores import class_dice
from scripts.metrics.surface_metrics import case_metrics
from scripts.studies.baseline_masks import TOOLS, baseline_masks
from scripts.studies.study_files import markdown_table, write_json
from scripts.studies.tissue_kmeans import CLASSES as TISSUES
from scripts.studies.tissue_kmeans import write_kmeans_map
from scripts.tools.launch import config_files, run_bundle

BASELINES = ("robex", "deepbet", "hdbet")
CLASS_BASELINES = ("kmeans",)  # the tissue task's classical baseline; the brain-mask tools do not split tissues


def dataset_classes(dataset_dir: Path) -> dict[str, int]:
    """The set's classes, name -> value: its ``dataset.json``'s ``labels``, else background and foreground."""
    path = dataset_dir / DATASET_JSON
    return (read_dataset_json(path) if path.is_file() else None) or dict(BINARY_CLASSES)


def link_cases(cases: list[dict], dataset_dir: Path, target: Path, labels: bool = True) -> None:
    (target / "imagesTr").mkdir(parents=True, exist_ok=True)
    if labels:
        (target / "labelsTr").mkdir(parents=True, exist_ok=True)
        if (dataset_dir / DATASET_JSON).is_file():  # the classes' names and values travel with the fold's labels
            (target / DATASET_JSON).symlink_to((dataset_dir / DATASET_JSON).resolve())
    for case in cases:
        name = case["case"]
        (target / "imagesTr" / f"{name}_0000.nii.gz").symlink_to(
            (dataset_dir / "imagesTr" / f"{name}_0000.nii.gz").resolve()
        )
        if labels:
            (target / "labelsTr" / f"{name}.nii.gz").symlink_to((dataset_dir / "labelsTr" / f"{name}.nii.gz").resolve())


def read_pair(pred_path: Path, label_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prediction, label, the label's affine), refused unless both have one shape."""
    label = nib.load(label_path)
    pred, truth = np.asarray(nib.load(pred_path).dataobj), np.asarray(label.dataobj)
    if pred.shape != truth.shape:
        raise SystemExit(f"{pred_path}: shape {pred.shape} differs from its label's {truth.shape}")
    return pred, truth, label.affine


def score(mask_path: Path, label_path: Path) -> dict:
    pred, truth, affine = read_pair(mask_path, label_path)
    pred, truth = pred > 0, truth > 0
    metrics = case_metrics(pred, truth, affine)
    metrics["fp_ml"], metrics["fn_ml"] = metrics["fp_volume_ml"], metrics["fn_volume_ml"]
    metrics["recall"] = float((pred & truth).sum()) / max(float(truth.sum()), 1.0)  # for masks drawn by a narrower rule
    return metrics


def score_classes(pred_path: Path, label_path: Path, classes: dict[str, int]) -> dict:
    """Dice (``scripts.metrics.class_scores``: NaN for a class neither map holds) and HD95 (mm) of each foreground class of a
    label map, and their mean Dice."""
    pred, truth, affine = read_pair(pred_path, label_path)
    names = foreground_names(classes)
    dice = class_dice(pred, truth, [classes[name] for name in names])
    scores = {
        name: {
            "dice": dice[classes[name]],
            "hd95_mm": case_metrics(pred == classes[name], truth == classes[name], affine)["hd95_mm"],
        }
        for name in names
    }
    return {"classes": scores, "mean_dice": float(np.nanmean([s["dice"] for s in scores.values()]))}


def kmeans_maps(cases: list[dict], dataset_dir: Path, out_dir: Path, classes: dict[str, int]) -> dict[str, Path]:
    """The k-means baseline's label map of each case (``scripts.studies.tissue_kmeans``: one cluster a foreground class,
    inside the reference's foreground) in ``out_dir``, made once; its seconds in ``out_dir/seconds.json``."""
    # clusters darkest to brightest take CSF, grey and white matter on the tissue set, else the values in rising order
    names = TISSUES if set(TISSUES) <= set(classes) else foreground_names(classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds_path = out_dir / "seconds.json"
    seconds = json.loads(seconds_path.read_text()) if seconds_path.is_file() else {}
    maps = {}
    for case in cases:
        name, maps[case["case"]] = case["case"], out_dir / f"{case['case']}.nii.gz"
        if not maps[name].is_file():
            image, label = dataset_dir / "imagesTr" / f"{name}_0000.nii.gz", dataset_dir / "labelsTr" / f"{name}.nii.gz"
            took, _ = write_kmeans_map(image, label, [classes[n] for n in names], maps[name])
            seconds[name] = round(took, 2)
            seconds_path.write_text(json.dumps(seconds, indent=2) + "\n")
    return maps


def train_fold(fold: Path, train_cases: list[dict], dataset_dir: Path, train_args: list[str]) -> float:
    """The fold's model trained on ``train_cases`` in ``fold`` (once: a fold whose ``models/model.pt`` exists is
    kept); the minutes its training took."""
    if not (fold / "models" / "model.pt").exists():
        link_cases(train_cases, dataset_dir, fold / "train")
        seconds = run_bundle(
            config_files(dict(zip(train_args[::2], train_args[1::2], strict=True)).get("--unet_dimensions")),
            ["--bundle_root", str(fold), "--dataset_dir", str(fold / "train"), *train_args],
            fold / "train.log",
        )
        (fold / "train_minutes.txt").write_text(f"{seconds / 60:.2f}\n")
    return float((fold / "train_minutes.txt").read_text())


def predict_fold(fold: Path, test_cases: list[dict], dataset_dir: Path, inference_args: list[str]) -> None:
    """The fold's model's masks of ``test_cases`` in ``fold/predictions``, made anew on every run (a rerun with other
    inference settings must not keep the former masks)."""
    if not (fold / "test").exists():
        link_cases(test_cases, dataset_dir, fold / "test", labels=False)
    folders = ["--dataset_dir", str(fold / "test" / "imagesTr"), "--output_dir", str(fold / "predictions")]
    run_bundle(
        [INFERENCE_CONFIG],
        ["--bundle_root", str(fold), *folders, "--overwrite", "true", *inference_args],
        fold / "inference.log",
    )


def baseline_outputs(
    fold: Path, test_cases: list[dict], dataset_dir: Path, folders: dict[str, Path], baseline_python: str | None
) -> tuple[dict[str, dict[str, Path]], dict[str, dict]]:
    """Each baseline's mask (brain masks) or label map (k-means) of every held-out case, made once in its folder of
    ``folders``: tool -> case -> path; and the seconds each took: tool -> case -> seconds."""
    classes = dataset_classes(dataset_dir)
    if is_binary(classes):
        images = sorted((fold / "test" / "imagesTr").iterdir())
        masks = {tool: baseline_masks(tool, images, folder, baseline_python) for tool, folder in folders.items()}
    else:
        masks = {tool: kmeans_maps(test_cases, dataset_dir, folder, classes) for tool, folder in folders.items()}
    seconds = {
        tool: json.loads((folder / "seconds.json").read_text()) if (folder / "seconds.json").is_file() else {}
        for tool, folder in folders.items()
    }
    return masks, seconds


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
    """One row per case of ``holdout``: the scores of the model trained on the other ``sources``, and each
    baseline's."""
    fold = work_dir / holdout
    train_cases = [c for c in cases if c["source"] in sources and c["source"] != holdout]
    test_cases = [c for c in cases if c["source"] == holdout]
    minutes = train_fold(fold, train_cases, dataset_dir, train_args)
    predict_fold(fold, test_cases, dataset_dir, inference_args)
    folders = {tool: work_dir / "baselines" / tool for tool in baselines}
    masks, seconds = baseline_outputs(fold, test_cases, dataset_dir, folders, baseline_python)
    classes = dataset_classes(dataset_dir)

    def scorer(pred_path: Path, label_path: Path) -> dict:
        return score(pred_path, label_path) if is_binary(classes) else score_classes(pred_path, label_path, classes)

    rows = []
    for case in test_cases:
        label = dataset_dir / "labelsTr" / f"{case['case']}.nii.gz"
        row = {
            "case": case["case"],
            "trained_on": sorted({c["source"] for c in train_cases}),
            "train_minutes": minutes,
            **scorer(fold / "predictions" / f"{case['case']}.nii.gz", label),
        }
        for tool in folders:
            row[tool] = {**scorer(masks[tool][case["case"]], label), "seconds": seconds[tool].get(case["case"])}
        rows.append(row)
    return rows


def class_table(rows: list[dict]) -> str:
    """One row per held-out case: each class's Dice / HD95 (mm), the bundle's then each baseline's; a mean row."""
    names = list(rows[0]["classes"])
    tools = [tool for tool in CLASS_BASELINES if any(tool in r for r in rows)]
    headers = ["held-out case", "trained on", *(f"{n} Dice / HD95 mm" for n in names)]
    headers += [f"{tool} {n}" for tool in tools for n in names] + ["training min"]

    def cells_of(scores: dict) -> list[str]:
        return [f"{scores[n]['dice']:.3f} / {scores[n]['hd95_mm']:.1f}" for n in names]

    cells = [
        [
            r["case"],
            ", ".join(r["trained_on"]),
            *cells_of(r["classes"]),
            *(c for tool in tools for c in (cells_of(r[tool]["classes"]) if tool in r else ["–"] * len(names))),
            f"{r['train_minutes']:.1f}",
        ]
        for r in rows
    ]

    def mean_dice(scores: list[dict]) -> list[str]:
        return [f"{np.nanmean([s[n]['dice'] for s in scores]):.3f}" for n in names]

    means = mean_dice([r["classes"] for r in rows])
    for tool in tools:
        means += mean_dice([r[tool]["classes"] for r in rows if tool in r])
    cells.append(["mean Dice", "", *means, ""])
    return markdown_table(headers, cells)


def table(rows: list[dict]) -> str:
    if "classes" in rows[0]:
        return class_table(rows)
    tools = [tool for tool in TOOLS if any(tool in r for r in rows)]
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
    return markdown_table(headers, cells)


def parse(argv=None) -> argparse.Namespace:
    parser = ToolArgumentParser(
        prog="python -m scripts.studies.leave_one_source_out", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--dataset_dir", type=Path, required=True, help="output of scripts.tools.prepare_real_t1 (with cases.json)"
    )
    parser.add_argument("--sources", nargs="+", required=True)
    parser.add_argument("--holdout", nargs="+", default=None)
    parser.add_argument("--work_dir", type=Path, default=Path("loso"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--train_args",
        default="",
        help='train.json overrides in one string, e.g. "--epochs 10"; "--unet_dimensions 2.5D" layers its mode\'s config',
    )
    parser.add_argument("--inference_args", default="", help="inference.json overrides in one string")
    parser.add_argument(
        "--baselines",
        nargs="*",
        choices=[*TOOLS, *CLASS_BASELINES],
        default=None,
        help="published tools whose masks of the held-out scans stand beside the bundle's (none: no baseline; "
        f"default: {' '.join(BASELINES)}; on the tissue set, kmeans)",
    )
    parser.add_argument(
        "--baseline_python", default=None, help="a python that has them (requirements-baselines.txt; default: this one)"
    )
    args = parser.parse_args(argv)
    if not (args.dataset_dir / "cases.json").is_file():
        parser.error(
            f"{args.dataset_dir / 'cases.json'} not found: give a set that scripts.tools.prepare_real_t1 wrote"
        )
    classes = dataset_classes(args.dataset_dir)
    fitting = list(TOOLS) if is_binary(classes) else list(CLASS_BASELINES)
    if args.baselines is None:  # k-means splits tissues by brightness; other classes get no baseline unless asked
        args.baselines = list(BASELINES) if is_binary(classes) else ["kmeans"] if set(TISSUES) <= set(classes) else []
    wrong = [tool for tool in args.baselines if tool not in fitting]
    if wrong:
        kind = "brain masks" if is_binary(classes) else "label maps of several classes"
        parser.error(
            f"--baselines {' '.join(wrong)} does not fit {args.dataset_dir}'s {kind}; choose from {' '.join(fitting)}"
        )
    return args


def run(args: argparse.Namespace) -> list[dict]:
    """Each ``--holdout`` source (default: every source) held out in turn; each fold's rows printed when it ends."""
    cases = json.loads((args.dataset_dir / "cases.json").read_text())
    rows = []
    for holdout in args.holdout or args.sources:
        fold_rows = run_fold(
            holdout,
            args.sources,
            cases,
            args.dataset_dir,
            args.work_dir,
            shlex.split(args.train_args),
            shlex.split(args.inference_args),
            tuple(args.baselines),
            args.baseline_python,
        )
        print(table(fold_rows), flush=True)
        rows += fold_rows
    return rows


def report(args: argparse.Namespace, rows: list[dict]) -> None:
    print(table(rows))
    if args.json:
        write_json(args.json, rows)  # a distance that does not exist, a Dice of a class neither map holds: null


def main(argv=None) -> None:
    args = parse(argv)
    report(args, run(args))


if __name__ == "__main__":
    main()

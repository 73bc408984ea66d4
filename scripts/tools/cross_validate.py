"""k-fold cross-validation by volume: train every fold, score its held-out volumes, one per-case and mean table.

    python -m scripts.tools.cross_validate --dataset_dir DIR --num_folds 5 [--cv_dir runs/cv] [--folds 0,2] [--key value ...]

Fold ``i`` runs ``configs/train.json`` with ``--num_folds k --fold i`` (seeded ``KFold`` by volume, see
``scripts.data.cases.split_cases``) and then ``configs/evaluate.json`` on that fold's validation volumes with the fold's
best weights. Every other ``--key value`` is a bundle override given to both (e.g. ``--epochs 50 --seed 1``).
Results, in ``cv_dir``: ``fold_<i>/`` (the training run, ``model.pt``, ``eval/metrics.csv``), ``cv_metrics.csv``
(one row per case with its fold) and ``cv_metrics.md`` (the same as a Markdown table with the mean and std per
column) over every fold evaluated in ``cv_dir`` so far. The metrics are evaluate.json's
(``scripts.handlers.evaluation_report``), read back, not recomputed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from scripts.common.durable_write import csv_text, write_text_durably
from scripts.common.paths import BUNDLE_ROOT, CONFIG_DIR
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.config.setting_names import check_names
from scripts.tools.launch import config_files, run_bundle


def read_rows(metrics_csv: Path, fold: int) -> list[dict]:
    with open(metrics_csv, newline="") as f:
        return [{"fold": fold, **row} for row in csv.DictReader(f)]


def gather(cv_dir: Path, num_folds: int) -> tuple[list[dict], dict[int, float]]:
    """Rows and seconds of every fold 0 .. num_folds-1 evaluated in ``cv_dir`` (so folds run separately, e.g. with
    ``--folds`` on several machines into one ``cv_dir``, end up in one table)."""
    rows, seconds = [], {}
    for fold in range(num_folds):
        metrics = cv_dir / f"fold_{fold}" / "eval" / "metrics.csv"
        if metrics.is_file():
            rows += read_rows(metrics, fold)
            timing = cv_dir / f"fold_{fold}" / "seconds.txt"
            seconds[fold] = float(timing.read_text()) if timing.is_file() else float("nan")
    return rows, seconds


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def write_tables(rows: list[dict], cv_dir: Path, seconds: dict[int, float]) -> str:
    """``cv_metrics.csv`` and ``cv_metrics.md`` (per case, then mean and std over cases); returns the Markdown."""
    import numpy as np

    columns = [c for c in rows[0] if c not in ("fold", "case")] if rows else []
    write_text_durably(csv_text(rows, ["fold", "case", *columns]), cv_dir / "cv_metrics.csv")
    lines = ["| fold | case | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 2)]
    for row in rows:
        lines.append(
            f"| {row['fold']} | {row['case']} | " + " | ".join(f"{_number(row[c]):.4f}" for c in columns) + " |"
        )
    summary = {}
    for column in columns:
        values = np.array([_number(row[column]) for row in rows])
        finite = values[np.isfinite(values)]
        summary[column] = (float(finite.mean()), float(finite.std())) if finite.size else (float("nan"), float("nan"))
    lines.append("| mean | | " + " | ".join(f"{summary[c][0]:.4f}" for c in columns) + " |")
    lines.append("| std | | " + " | ".join(f"{summary[c][1]:.4f}" for c in columns) + " |")
    total = sum(seconds.values())
    lines.append("")
    lines.append(
        f"{len(rows)} case(s) in {len(seconds)} fold(s); train + evaluate wall time {total:.0f} s "
        "(" + ", ".join(f"fold {k}: {v:.0f} s" for k, v in sorted(seconds.items())) + ")"
    )
    markdown = "\n".join(lines) + "\n"
    write_text_durably(markdown, cv_dir / "cv_metrics.md")
    write_text_durably(
        json.dumps(
            {
                "cases": len(rows),
                "folds": sorted(seconds),
                "seconds": seconds,
                "mean": {c: s[0] for c, s in summary.items()},
                "std": {c: s[1] for c, s in summary.items()},
            },
            indent=2,
        )
        + "\n",
        cv_dir / "cv_summary.json",
    )
    return markdown


def main(argv=None) -> None:
    parser = ToolArgumentParser(prog="python -m scripts.tools.cross_validate", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset_dir", required=True, help="nnU-Net layout with imagesTr/labelsTr")
    parser.add_argument("--num_folds", type=int, default=5)
    parser.add_argument("--folds", default="", help="comma-separated subset of folds to run, e.g. 0,2 (default all)")
    parser.add_argument("--cv_dir", default=str(BUNDLE_ROOT / "runs" / "cv"), help="where folds and tables go")
    parser.add_argument(
        "--report_only", action="store_true", help="train nothing: write the tables of the folds in cv_dir"
    )
    args, overrides = parser.parse_known_args(argv)
    if args.num_folds < 2:
        raise SystemExit(f"num_folds={args.num_folds}: cross-validation needs at least 2 folds, e.g. --num_folds 5")
    if len(overrides) % 2 or any(not key.startswith("--") for key in overrides[::2]):
        raise SystemExit(f"overrides must be --key value pairs, got: {' '.join(overrides)}")
    named = dict(zip(overrides[::2], overrides[1::2], strict=True))
    check_names([key[2:] for key in named], config_files(named.get("--unet_dimensions")))
    folds = [int(f) for f in args.folds.split(",") if f.strip()] or list(range(args.num_folds))
    cv_dir = Path(args.cv_dir).resolve()
    cv_dir.mkdir(parents=True, exist_ok=True)

    for fold in [] if args.report_only else folds:
        fold_dir = cv_dir / f"fold_{fold}"
        fold_dir.mkdir(exist_ok=True)
        model = fold_dir / "model.pt"
        common = [
            "--dataset_dir",
            str(Path(args.dataset_dir).resolve()),
            "--num_folds",
            str(args.num_folds),
            "--fold",
            str(fold),
            "--output_dir",
            str(fold_dir),
            "--model_path",
            str(model),
            *overrides,
        ]
        train_files = config_files(named.get("--unet_dimensions"))
        print(f"fold {fold}/{args.num_folds - 1}: training (log {fold_dir / 'train.log'})", flush=True)
        took = run_bundle(train_files, common, fold_dir / "train.log")
        print(f"fold {fold}: evaluating its validation volumes (log {fold_dir / 'evaluate.log'})", flush=True)
        took += run_bundle(
            [*train_files, str(CONFIG_DIR / "evaluate.json")],
            [
                *common,
                "--ckpt_path",
                str(model),
                "--eval_split",
                "validation",
                "--eval_output_dir",
                str(fold_dir / "eval"),
            ],
            fold_dir / "evaluate.log",
        )
        (fold_dir / "seconds.txt").write_text(f"{took:.1f}\n")
        print(f"fold {fold}: done in {took:.0f} s", flush=True)
    rows, seconds = gather(cv_dir, args.num_folds)
    try:
        tables = write_tables(rows, cv_dir, seconds)
    except OSError as error:  # a WriteError (a full disk): one line, the folds' own results stay
        raise SystemExit(
            f"cross-validation stopped: {error}; each fold's results in {cv_dir} are intact: --report_only writes the "
            "tables once there is room"
        ) from None
    print(tables)
    print(f"tables: {cv_dir / 'cv_metrics.csv'}, {cv_dir / 'cv_metrics.md'}")


if __name__ == "__main__":
    main()

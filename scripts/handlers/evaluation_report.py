"""Score every evaluated case, write ``metrics.csv`` (one row per case) and ``summary.json``, and log both."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
from ignite.engine import Engine, Events

from scripts.common.durable_write import csv_text, write_text_durably
from scripts.data.label_classes import foreground_names, is_binary
from scripts.handlers.case_progress import batch_case_ids
from scripts.metrics.surface_metrics import COLUMNS, case_metrics

logger = logging.getLogger(__name__)


def summarise(rows: list[dict], columns=COLUMNS) -> dict[str, dict]:
    """Mean, (population) std and median of each column over the cases where it is finite, with that count ``n``;
    ``None`` for a column with no finite value."""
    summary = {}
    for column in columns:
        values = np.array([row[column] for row in rows], dtype=np.float64)
        values = values[np.isfinite(values)]
        stats = (values.mean(), values.std(), np.median(values)) if values.size else (None, None, None)
        summary[column] = {
            "mean": None if stats[0] is None else float(stats[0]),
            "std": None if stats[1] is None else float(stats[1]),
            "median": None if stats[2] is None else float(stats[2]),
            "n": int(values.size),
        }
    return summary


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4f}"


class EvaluationReport:
    """Ignite handler for an evaluator whose output holds ``pred`` (one channel 0/1, or one-hot over the classes) and
    ``label`` (class indices) on the label's grid: one row per case, or per case and class when there are more than
    two classes (a ``class`` column; background is not scored), and the summary per class.

    MONAI's ``MetricsSaver`` writes one CSV per metric and a CSV summary; this writes all metrics of a case in one
    row, adds volumes, and uses each label's own voxel spacing for the distances in mm.
    """

    def __init__(self, output_dir: str, pred_key: str = "pred", label_key: str = "label", classes=None) -> None:
        self.output_dir = Path(output_dir)
        self.pred_key, self.label_key = pred_key, label_key
        self.classes = None if classes is None or is_binary(classes) else foreground_names(classes)
        self.rows: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.score)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.write)

    def reset(self, engine: Engine) -> None:
        self.rows = []

    def score(self, engine: Engine) -> None:
        outputs = engine.state.output if isinstance(engine.state.output, list) else [engine.state.output]
        for case, output in zip(batch_case_ids(engine.state.batch), outputs, strict=True):
            pred, label = output[self.pred_key], output[self.label_key]
            if self.classes is None:
                rows = [{"case": case, **case_metrics(pred, label, label.affine)}]
            else:  # channel i of the one-hot prediction is class index i of the label
                rows = [
                    {"case": case, "class": name, **case_metrics(pred[index : index + 1], label == index, label.affine)}
                    for index, name in enumerate(self.classes, start=1)
                ]
            for row in rows:
                self.rows.append(row)
                what = case if self.classes is None else f"{case} {row['class']}"
                logger.info("%s: %s", what, ", ".join(f"{c} {_fmt(row[c])}" for c in COLUMNS))

    def write(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.classes is None:
            write_text_durably(csv_text(self.rows, ["case", *COLUMNS]), self.output_dir / "metrics.csv")
            summary = {"cases": len(self.rows), "metrics": summarise(self.rows)}
            parts = {"": summary["metrics"]}
        else:
            write_text_durably(csv_text(self.rows, ["case", "class", *COLUMNS]), self.output_dir / "metrics.csv")
            by_class = {name: summarise([r for r in self.rows if r["class"] == name]) for name in self.classes}
            summary = {"cases": len(self.rows) // len(self.classes), "classes": by_class}
            parts = {f"{name} ": metrics for name, metrics in by_class.items()}
        write_text_durably(json.dumps(summary, indent=2) + "\n", self.output_dir / "summary.json")
        for prefix, metrics in parts.items():
            for column, stats in metrics.items():
                if stats["n"]:
                    logger.info(
                        "%s%s over %d case(s): mean %.4f, std %.4f, median %.4f",
                        prefix,
                        column,
                        stats["n"],
                        stats["mean"],
                        stats["std"],
                        stats["median"],
                    )
                else:
                    logger.info("%s%s: no case has a finite value", prefix, column)
        logger.info(
            "Per-case metrics: %s; summary: %s", self.output_dir / "metrics.csv", self.output_dir / "summary.json"
        )

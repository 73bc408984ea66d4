"""What the studies (and the benchmarks) share: the cases of an nnU-Net folder, Markdown tables, JSON results written
durably."""

from __future__ import annotations

import json
import math
from pathlib import Path

from scripts.common.durable_write import write_text_durably


def labelled_cases(dataset_dir: Path) -> list[str]:
    """The names of the cases with a label in ``dataset_dir/labelsTr/<case>.nii.gz``, sorted."""
    return sorted(p.name[: -len(".nii.gz")] for p in (Path(dataset_dir) / "labelsTr").glob("*.nii.gz"))


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; floats with 3 significant digits below 100, as whole numbers above."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def json_ready(value):
    """``value`` with each NaN (a distance to a class one map lacks, a Dice of a class neither holds) or infinity as
    None: JSON has neither."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_json(path: Path, value, default=None) -> None:
    """``value`` as indented JSON in ``path`` (its folder made), each NaN or infinity as ``null``, written durably: the former file
    or the new one, never half. ``default`` as ``json.dumps``'s, for values JSON has no type for."""
    text = json.dumps(json_ready(value), indent=2, allow_nan=False, default=default)
    write_text_durably(text + "\n", Path(path))

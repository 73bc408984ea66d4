"""Which labelled cases an evaluation scores: the validation split of training, or all of them; and whether their
label values are the model's classes."""

from __future__ import annotations

from scripts.data.cases import DatasetError, split_cases
from scripts.data.label_classes import case_values, class_names, class_values, is_binary

EVAL_SPLITS = ("validation", "all")


def select_cases(
    cases: list[dict], eval_split: str, val_set_size: float, seed: int, num_folds: int = 0, fold: int = 0
) -> list[dict]:
    """``validation``: the cases training held out (same ``val_set_size``, ``seed``, ``num_folds``, ``fold`` give the
    same split);
    ``all``: every case, e.g. for a separate labelled test folder."""
    if eval_split == "validation":
        return split_cases(cases, val_set_size, seed, num_folds, fold)[1]
    if eval_split == "all":
        return list(cases)
    raise DatasetError(f"eval_split={eval_split!r}: use one of {', '.join(EVAL_SPLITS)}, e.g. --eval_split all")


def refuse_unknown_values(cases: list[dict], classes: dict) -> None:
    """A model of several classes scores label maps of its own classes: a value it has no class for would be scored as
    a neighbouring class, so it ends the run with one line naming the first such file, before any scoring. Binary
    models score any label as foreground (value >= the threshold) or background, as training did."""
    if is_binary(classes):
        return
    known = set(class_values(classes))
    wrong = []
    for case in cases:
        unknown = sorted(set(case_values(case)) - known)
        if unknown:
            wrong.append((case["label"], unknown))
    if wrong:
        label, unknown = wrong[0]
        shown = ", ".join(str(v) for v in unknown[:8]) + (
            ", ..." if len(unknown) > 8 else ""
        )  # an image given as label
        named = ", ".join(f"{classes[name]} {name}" for name in class_names(classes))
        more = f" ({len(wrong)} label files in all)" if len(wrong) > 1 else ""
        raise SystemExit(
            f"input error: {label}: label value(s) [{shown}] are none of the model's classes ({named}){more}; "
            "score a model trained on these classes, or relabel the files"
        )

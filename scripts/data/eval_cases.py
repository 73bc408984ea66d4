"""Which labelled cases an evaluation scores: the validation split of training, or all of them."""

from __future__ import annotations

from scripts.data.cases import DatasetError, split_cases

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

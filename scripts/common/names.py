"""Nearest names: what a mistyped setting or flag is answered with (``--epoch`` -> ``--epochs``)."""

from __future__ import annotations

import difflib
import re


def describe(config: dict, key: str) -> str:
    return str(config.get(f"_desc_{key}", ""))


def nearest(name: str, config: dict, candidates: list[str]) -> list[str]:
    """Settings whose name is close to ``name`` (``epoch`` -> ``epochs``), else those whose name and description
    hold every word of it (``learning_rate`` -> ``lr``, described as the learning rate)."""
    ratio = {key: difflib.SequenceMatcher(None, name, key).ratio() for key in candidates}
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.75)
    close = [key for key in close if ratio[key] >= ratio[close[0]] - 0.05]  # a clear winner alone
    words = [w for w in re.split(r"[_\-#]+", name.lower()) if len(w) > 2]
    text = {key: f"{key} {describe(config, key)}".lower() for key in candidates}
    described = [key for key in candidates if words and all(w in text[key] for w in words)]
    return close or described[:3] or difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)

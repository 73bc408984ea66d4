"""Command-line booleans: ``--augmentations false`` reaches the config as the string ``'false'``."""

from __future__ import annotations

TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def as_bool(value, name: str = "value") -> bool:
    """``True``/``False`` from a bool, 0/1 or a word such as ``true``/``false``; anything else is an error."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError(f"{name}={value!r}: expected true or false")

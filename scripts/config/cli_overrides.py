"""``--key value`` pairs that a wrapper does not know itself, read as bundle overrides the way the bundle CLI reads them."""

from __future__ import annotations

from fire.parser import DefaultParseValue


def parse_value(text: str):
    """A command-line value as ``python -m monai.bundle run`` (Fire) reads it: ``32`` -> 32, ``1e-4`` -> 0.0001,
    ``true`` -> ``'true'`` (the bundle's boolean keys accept the words), anything else stays a string."""
    return DefaultParseValue(text)


def split_overrides(argv: list[str], known: set[str]) -> tuple[list[str], dict]:
    """Split ``argv`` into the arguments of a wrapper's own parser and bundle overrides.

    Every ``--key value`` or ``--key=value`` whose ``--key`` is not in ``known`` (the wrapper's own option strings)
    is an override; everything else stays, in order, for the wrapper's parser. Taking the value out here keeps a
    wrapper's positional argument from swallowing it.
    """
    rest, overrides = [], {}
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        name, has_value, value = token.partition("=")
        if token.startswith("--") and len(name) > 2 and name not in known:
            if not has_value:
                if index + 1 >= len(tokens):
                    raise SystemExit(f"{name}: a bundle override needs a value, e.g. {name} 32")
                value = tokens[index + 1]
                index += 1
            overrides[name[2:]] = parse_value(value)
        else:
            rest.append(token)
        index += 1
    return rest, overrides

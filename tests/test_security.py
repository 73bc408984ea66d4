"""Every checkpoint load is weights_only; no eval/exec of strings in the bundle's own code."""

import re

from tests.conftest import BUNDLE

SOURCES = [
    p
    for folder in ("scripts", "benchmarks", "tests", "configs")
    for p in (BUNDLE / folder).rglob("*")
    if p.suffix in (".py", ".json") and p.name != "test_security.py"
]


def calls(text: str, name: str):
    """The argument text of every call to ``name`` (balanced parentheses)."""
    for match in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 1, match.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[match.end() : i - 1]


def test_every_torch_load_is_weights_only():
    found = 0
    for path in SOURCES:
        for args in calls(path.read_text(), "torch.load"):
            found += 1
            assert "weights_only=True" in args, f"{path}: torch.load({args})"
    assert found >= 5


def test_no_eval_or_exec_in_scripts():
    for path in (BUNDLE / "scripts").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path

"""The model zoo's code format (its setup.cfg and pyproject.toml settings, kept in this bundle's own files, and its
pre-commit's pretty-format-json)."""

import subprocess
import sys

import pytest

from tests.conftest import BUNDLE

CHECKS = {
    "isort": [sys.executable, "-m", "isort", "--check-only", "--diff", "."],
    "black": [sys.executable, "-m", "black", "--check", "--diff", "."],
    "flake8": [sys.executable, "-m", "flake8", "."],
    # the model zoo's pre-commit hook, with its arguments (without --autofix it only reports)
    "pretty-format-json": [
        sys.executable,
        "-m",
        "pre_commit_hooks.pretty_format_json",
        "--no-sort-keys",
        "--indent=4",
        *sorted(
            str(p.relative_to(BUNDLE)) for d in ("configs", "models", "tests") for p in (BUNDLE / d).rglob("*.json")
        ),
    ],
}


@pytest.mark.parametrize("tool", CHECKS)
def test_code_is_formatted_as_the_model_zoo_checks_it(tool):
    result = subprocess.run(CHECKS[tool], cwd=BUNDLE, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{tool}: {(result.stdout + result.stderr)[-3000:]}"

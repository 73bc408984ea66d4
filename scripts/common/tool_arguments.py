"""The command-line parser of the bundle's tools: argparse without its two surprises for a user who mistypes a flag."""

from __future__ import annotations

import argparse
import re

from scripts.common.names import nearest


class ToolArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that takes no abbreviations (``--epoch`` is not silently ``--epochs``) and answers
    a mistake with one line naming the nearest flags (exit 2) instead of the usage block followed by the error."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        flags = [f for f in self._option_string_actions if f.startswith("--")]
        unknown = re.findall(r"(--[\w#-]+)", message) if "unrecognized arguments" in message else []
        guesses = [f"--{g}" for flag in unknown for g in nearest(flag[2:], {}, [f[2:] for f in flags])]
        hint = (
            f"; did you mean {' or '.join(dict.fromkeys(guesses))}?" if guesses else f"; {self.prog} --help lists them"
        )
        self.exit(2, f"{self.prog}: {message}{hint}\n")

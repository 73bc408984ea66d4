"""One log line per case with the seconds it took, and a total at the end."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ignite.engine import Engine, Events
from monai.utils import ImageMetaKey

logger = logging.getLogger(__name__)


def batch_case_ids(batch) -> list[str]:
    """Case ids of a decollated batch: the ``case`` key if the data list has one, else the image file name."""
    items = batch if isinstance(batch, list) else [batch]
    ids = []
    for item in items:
        case = item.get("case") if isinstance(item, dict) else None
        if case is None:
            meta = getattr(item.get("image"), "meta", {}) if isinstance(item, dict) else {}
            case = Path(str(meta.get(ImageMetaKey.FILENAME_OR_OBJ, "?"))).name
        ids.append(str(case))
    return ids


class CaseProgress:
    """``[3/10] case_007: 4.2 s`` after each iteration (batch size 1: one case), timed from the end of the
    previous one so loading, inference, inversion and writing are all counted."""

    def __init__(self, what: str = "predicted") -> None:
        self.what = what
        self.start = self.last = 0.0
        self.seconds: list[float] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.case_done)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.completed)

    def started(self, engine: Engine) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds = []

    def case_done(self, engine: Engine) -> None:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        self.seconds.append(seconds)
        total = engine.state.epoch_length or "?"
        cases = ", ".join(batch_case_ids(engine.state.batch))
        logger.info("[%d/%s] %s %s: %.2f s", engine.state.iteration, total, self.what, cases, seconds)

    def completed(self, engine: Engine) -> None:
        n = len(self.seconds)
        elapsed = time.perf_counter() - self.start
        logger.info(
            "%s %d case(s) in %.1f s (%.2f s per case)", self.what.capitalize(), n, elapsed, elapsed / max(n, 1)
        )

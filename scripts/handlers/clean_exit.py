"""Turn an OSError during a run (training, evaluation, inference) into one line and exit status 1."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from ignite.engine import Engine, Events

from scripts.common.durable_write import os_error_in

logger = logging.getLogger(__name__)

OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
# what ignite logs when an error ends an epoch, then the run, before any handler sees it
IGNITES_EXCEPTION_LINES = ("Current run is terminating due to exception", "Engine run is terminating due to exception")


def one_line(error: OSError) -> str:
    """``error``'s text on one line: one re-raised from a DataLoader worker carries the worker's whole traceback as its
    text, whose last line names the error."""
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else repr(error)


def without_ignites_exception_line(record: logging.LogRecord) -> bool:
    """Logging filter for the engines this handler watches: ignite logs ``Current run is terminating due to exception:
    <error>`` (then ``Engine run ...``) before any handler sees the error, which for a failed mask write is MONAI's
    ``applying transform <Compose object at 0x...>`` (and for an enclosing engine, this handler's own line again). The
    line that names the file replaces it; any other error keeps its traceback, which says the same."""
    return not record.getMessage().startswith(IGNITES_EXCEPTION_LINES)


def close_progress_bars() -> None:
    """ignite's ``ProgressBar`` leaves its bar open when a run stops on an error, and tqdm draws it once more at exit:
    after the run's last line, which then no longer ends the output, or in the middle of it."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


class ExitOnOSError:
    """A full disk, a vanished folder or a permission error mid-run is the machine's problem, not a bug: end the
    run with one line naming the file, its folder and the reason, and what the run leaves, instead of pages of engine
    traceback. The ``OSError`` is found inside the ``RuntimeError`` that torch's checkpoint writer and MONAI's
    transforms wrap it in (:func:`~scripts.common.durable_write.os_error_in`); other exceptions keep their
    traceback. Attach it before MONAI's ``StatsHandler``, whose exception handler logs the traceback and re-raises.

    ``run`` names what stopped (``run``, ``evaluation``, ``inference``); ``afterwards`` says what the files written
    before are and how to go on; ``best_checkpoint`` (training), when it exists, is named as the best weights kept."""

    def __init__(
        self, run: str = "run", afterwards: str = "files written before are intact", best_checkpoint: str | None = None
    ) -> None:
        self.run, self.afterwards, self.in_case = run, afterwards, False
        self.best_checkpoint = None if best_checkpoint is None else Path(best_checkpoint)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EXCEPTION_RAISED, self)
        engine.logger.addFilter(without_ignites_exception_line)
        # whether an error comes while a case is handled (its mask) or after the last (the report)
        engine.add_event_handler(Events.ITERATION_STARTED, lambda _: setattr(self, "in_case", True))
        engine.add_event_handler(Events.ITERATION_COMPLETED, lambda _: setattr(self, "in_case", False))

    def message(self, engine: Engine, error: OSError) -> str:
        if self.run == "run":
            where = f"at epoch {engine.state.epoch}"
        elif self.in_case:
            where = f"at case {engine.state.iteration}"
        else:
            where = f"after its {engine.state.iteration} case(s)"
        line = f"{self.run} stopped {where}: {one_line(error)}"
        if error.errno in OUT_OF_SPACE and error.filename:
            line += f"; free space in {Path(error.filename).parent}"
        line += f"; {self.afterwards}"
        if self.best_checkpoint is not None and self.best_checkpoint.is_file():
            line += f"; the best weights so far are in {self.best_checkpoint} (--ckpt_path for inference)"
        return line

    def __call__(self, engine: Engine, error: BaseException) -> None:
        os_error = os_error_in(error)
        if os_error is None:
            raise error
        message = self.message(engine, os_error)
        close_progress_bars()
        logger.error(message)
        raise SystemExit(message) from None

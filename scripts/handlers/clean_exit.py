"""Turn an OSError during training into one line and exit status 1."""

from __future__ import annotations

import logging

from ignite.engine import Engine, Events

logger = logging.getLogger(__name__)


class ExitOnOSError:
    """A full disk, a vanished folder or a permission error mid-run is the machine's problem, not a bug: end the
    run with one line naming the file and the reason instead of pages of engine traceback. Other exceptions keep
    their traceback. Attach it before MONAI's ``StatsHandler``, whose exception handler logs the traceback and
    re-raises."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EXCEPTION_RAISED, self)

    def __call__(self, engine: Engine, error: BaseException) -> None:
        if not isinstance(error, OSError):
            raise error
        message = f"run stopped at epoch {engine.state.epoch}: {error}; checkpoints written before are intact"
        logger.error(message)
        raise SystemExit(message)

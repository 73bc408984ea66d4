"""Stop training at the first non-finite loss or network output."""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine, Events
from monai.utils import CommonKeys

logger = logging.getLogger(__name__)


class StopOnNonFinite:
    """Like Ignite's ``TerminateOnNan``, but it names the tensor (loss or prediction), the epoch and the
    iteration, and it stops before ``EPOCH_COMPLETED`` so no checkpoint is written from a broken model:
    every checkpoint already on disk stays as it was."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        items = output if isinstance(output, list) else [output]  # MONAI engines may decollate the output
        finite = {}
        for key in (CommonKeys.LOSS, CommonKeys.PRED):
            tensors = [item[key].detach() for item in items if isinstance(item.get(key), torch.Tensor)]
            if tensors:
                finite[key] = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
        if not finite or bool(torch.stack(list(finite.values())).all()):  # one host sync per iteration, not one per key
            return
        key = next(k for k, ok in finite.items() if not bool(ok))
        engine.state.non_finite = key
        logger.error(
            "Non-finite %s at epoch %d, iteration %d: training stopped; checkpoints written so far are intact. "
            "Lower max_lr or set --amp false and resume from the last checkpoint.",
            key, engine.state.epoch, engine.state.iteration,
        )
        engine.terminate()


def exit_if_stopped(engine: Engine) -> None:
    """End the process with status 1 (no traceback) if :class:`StopOnNonFinite` stopped ``engine``."""
    key = getattr(engine.state, "non_finite", None)
    if key is not None:
        raise SystemExit(f"training stopped: non-finite {key} at epoch {engine.state.epoch}, iteration {engine.state.iteration}")

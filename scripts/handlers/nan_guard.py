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
        sums = {}
        for key in (CommonKeys.LOSS, CommonKeys.PRED):
            tensors = [item[key].detach() for item in items if isinstance(item.get(key), torch.Tensor)]
            if tensors:
                sums[key] = torch.stack([t.float().sum() for t in tensors]).sum()
        # a sum is finite only if every value is: one reduction per tensor and one host sync per iteration
        if not sums or bool(torch.isfinite(torch.stack(list(sums.values()))).all()):
            return
        key = next(k for k, total in sums.items() if not bool(torch.isfinite(total)))
        engine.state.non_finite = key
        logger.error(
            "Non-finite %s at epoch %d, iteration %d: training stopped; checkpoints written so far are intact. "
            "Lower max_lr or set --amp false and resume from the last checkpoint.",
            key,
            engine.state.epoch,
            engine.state.iteration,
        )
        engine.terminate()


def exit_if_stopped(engine: Engine) -> None:
    """End the process with status 1 (no traceback) if :class:`StopOnNonFinite` stopped ``engine``."""
    key = getattr(engine.state, "non_finite", None)
    if key is not None:
        raise SystemExit(
            f"training stopped: non-finite {key} at epoch {engine.state.epoch}, iteration {engine.state.iteration}"
        )

"""Load network weights from ``models/model.pt`` or from a training checkpoint (``best.pth``/``last.pth``)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from scripts.networks.placement import unwrap

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A missing or unreadable checkpoint; the message names the file and the fix."""


def load_weights(network: torch.nn.Module, ckpt_path: str) -> torch.nn.Module:
    """Load ``ckpt_path`` into ``network`` (strictly) and return it in eval mode.

    Accepts a bare state dict (``models/model.pt``) or a checkpoint written during training, whose
    weights sit under ``model_state``. Read with ``weights_only=True``: no pickled code runs.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: checkpoint not found; train first (python -m monai.bundle run --config_file configs/train.json) "
            "or pass --ckpt_path <model.pt or best.pth>"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated file or a pickle with code in it
        raise CheckpointError(
            f"{path}: not a readable weights file ({type(e).__name__}); pass --ckpt_path <model.pt>"
        ) from e
    if isinstance(state, dict) and "model_state" in state:
        state = state["model_state"]
    try:
        unwrap(network).load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(
            f"{path}: weights do not fit network_def ({first}); use the configs it was trained with"
        ) from e
    logger.info("Loaded weights from %s", path)
    return network.eval()


def start_from(network: torch.nn.Module, init_from: str, model_settings: dict, resumed) -> None:
    """Begin a new run from the weights of ``init_from`` (``model.pt`` or a checkpoint), with this run's fresh
    schedule: training a finished model longer. Refused with one line when the file's recorded settings differ
    from this run's; ignored with one line when a resumed checkpoint already set the weights."""
    if not init_from:
        return
    if resumed is not None:
        logger.info("--init_from %s is not used: the run was resumed from its own checkpoint", init_from)
        return
    from scripts.networks import model_settings as settings_file

    settings_file.refuse_contradictions(settings_file.read(init_from), model_settings, init_from)
    try:
        load_weights(network, init_from).train()
    except CheckpointError as error:
        raise SystemExit(f"configuration error: --init_from {error}") from None

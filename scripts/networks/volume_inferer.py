"""The inferer that runs a trained model over whole scans, chosen from the settings it was trained with."""

from __future__ import annotations

from collections.abc import Sequence

from monai.inferers import Inferer, SlidingWindowInferer

from scripts.networks.context_slices import ContextSliceInferer
from scripts.networks.flip_tta import TTA_AXES, FlipTTAInferer, with_flip_tta
from scripts.networks.pass_progress import PassProgress
from scripts.networks.plane_inferer import PlaneInferer


def volume_inferer(
    model_settings: dict,
    planes: Sequence[str] = ("auto",),
    slice_batch: int = 32,
    sw_batch_size: int = 2,
    sw_overlap: float = 0.25,
    sw_mode: str = "gaussian",
    tta=False,
) -> Inferer:
    """Along each of ``planes``, whole slices fitted into the model's ``spatial_size`` go through a 2D or 2.5D network
    ``slice_batch`` at a time (2.5D: each with its ``context_slices`` neighbours as channels), or a 3D network's
    sliding window of ``patch_size`` runs over the fitted volume (``sw_*``); with ``tta``, flip test-time
    augmentation around it all. Validation during training, evaluation and inference all build their inferer here,
    so a model is run the same way wherever it is scored. A scan that takes long logs its progress (``PassProgress``).
    """
    if model_settings["unet_dimensions"] == "3D":
        slices = SlidingWindowInferer(
            roi_size=model_settings["patch_size"], sw_batch_size=sw_batch_size, overlap=sw_overlap, mode=sw_mode
        )
    else:
        slices = ContextSliceInferer(context_slices=model_settings["context_slices"], slice_batch=slice_batch)
    planes_inferer = PlaneInferer(slices, model_settings["spatial_size"], planes, model_settings["slice_axis"])
    inferer = with_flip_tta(planes_inferer, tta, model_settings.get("mirror_axes", tuple(TTA_AXES)))
    flips = len(inferer.flips) if isinstance(inferer, FlipTTAInferer) else 1
    progress = PassProgress(inferer, passes=len(set(planes_inferer.planes)) * flips)
    planes_inferer.on_pass = progress.pass_done
    return progress

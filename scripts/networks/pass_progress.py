"""How far the prediction of one long scan has come, so that a slow machine does not sit silent for minutes."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import torch
from monai.data import MetaTensor
from monai.data.utils import dense_patch_slices
from monai.inferers import Inferer
from monai.utils import ensure_tuple_rep, fall_back_tuple

from scripts.networks.plane_inferer import PLANE_NAMES
from scripts.transforms.slice_axis import choose_axis

logger = logging.getLogger(__name__)


def wrapped(inferer, attribute: str):
    """The first of ``inferer`` and the inferers it wraps (each one's ``.inferer``) that has ``attribute``."""
    while inferer is not None and not hasattr(inferer, attribute):
        inferer = getattr(inferer, "inferer", None)
    return inferer


def window_count(size, roi_size, overlap) -> int:
    """How many windows MONAI's ``sliding_window_inference`` runs over a volume of ``size`` (padded to ``roi_size``
    where smaller), as it counts them."""
    roi_size = fall_back_tuple(roi_size, size)
    size = [max(int(s), int(r)) for s, r in zip(size, roi_size, strict=True)]
    overlap = ensure_tuple_rep(overlap, len(size))
    interval = [r if r == s else max(int(r * (1 - o)), 1) for s, r, o in zip(size, roi_size, overlap, strict=True)]
    return len(dense_patch_slices(size, roi_size, interval))


class PassProgress(Inferer):
    """Runs ``inferer`` (as ``volume_inferer`` builds it: flip TTA around the planes inferer around the slices' or
    the 3D sliding window's inferer) and, once a scan has taken ``after_s`` seconds, logs where it is at most every
    ``every_s`` seconds: ``coronal plane: 96 of 180 slices (pass 5 of 12), 14 s so far, about 20 s left`` (a 3D
    model counts the windows of its sliding window). A single long pass is followed slice by slice, as a scan of
    many short passes is. A scan predicted within ``after_s`` logs nothing, so validation and quick scans stay quiet.

    Before the scan starts, its passes are worked out as the planes inferer will run them (its planes, ``auto``
    chosen from the scan's spacing; the flips; each plane's slices, the scan's depth along it, or windows). The
    network's calls are counted; the planes inferer calls :meth:`pass_done` (``on_pass``) after each pass. The time
    left is the time so far per slice times the slices of the passes still to come (every slice is fitted to the
    same size, so each costs the same)."""

    def __init__(self, inferer: Inferer, passes: int, after_s: float = 10.0, every_s: float = 10.0) -> None:
        super().__init__()
        self.inferer, self.passes = inferer, max(1, int(passes))
        self.after_s, self.every_s = float(after_s), float(every_s)
        self.start, self.done, self.schedule, self.unit = 0.0, 0, [], "slices"
        self.in_pass, self.before_pass, self.last_line = 0, 0, -math.inf

    def __call__(self, inputs: torch.Tensor, network: Callable, *args, **kwargs) -> torch.Tensor:
        self.schedule = self.passes_of(inputs)
        self.passes = len(self.schedule) or self.passes
        self.start, self.done, self.in_pass, self.before_pass, self.last_line = time.perf_counter(), 0, 0, 0, -math.inf
        return self.inferer(inputs, self.counted(network), *args, **kwargs)

    def passes_of(self, inputs: torch.Tensor) -> list[tuple[str, int]]:
        """``[(plane, slices or windows), ...]`` in the order the passes run; empty for an inferer without planes."""
        planes = wrapped(self.inferer, "planes")
        if planes is None:
            return []
        flips = len(getattr(wrapped(self.inferer, "flips"), "flips", [()]))
        windows = wrapped(planes.inferer, "roi_size")
        volumes = inputs if isinstance(inputs, MetaTensor) else MetaTensor(inputs)
        one_flip = []
        for index in range(volumes.shape[0]):
            affine = volumes.affine if volumes.affine.ndim == 2 else volumes.affine[index]
            for axis in dict.fromkeys(choose_axis(plane, affine, planes.ratio) for plane in planes.planes):
                depth = int(volumes.shape[2 + axis])
                fitted = (planes.spatial_size, planes.spatial_size, depth)
                units = depth if windows is None else window_count(fitted, windows.roi_size, windows.overlap)
                one_flip.append((PLANE_NAMES[axis], units))
        self.unit = "slices" if windows is None else "windows"
        return one_flip * flips

    def counted(self, network: Callable) -> Callable:
        """``network``, counting the slices (or windows) each call is given."""

        def forward(x, *args, **kwargs):
            out = network(x, *args, **kwargs)
            self.in_pass += int(x.shape[0])
            self.report()
            return out

        return forward

    def pass_done(self, plane: str) -> None:
        self.done += 1
        self.before_pass, self.in_pass = self.before_pass + self.in_pass, 0

    def report(self) -> None:
        now = time.perf_counter()
        elapsed, total = now - self.start, sum(units for _, units in self.schedule)
        done = self.before_pass + self.in_pass
        if elapsed < self.after_s or now - self.last_line < self.every_s or not 0 < done < total:
            return  # too early, too soon after the last line, or finished (the case's own line follows)
        self.last_line = now
        plane, units = self.schedule[min(self.done, len(self.schedule) - 1)]
        logger.info(
            "%s plane: %d of %d %s (pass %d of %d), %.0f s so far, about %.0f s left",
            plane,
            self.in_pass,
            units,
            self.unit,
            self.done + 1,
            len(self.schedule),
            elapsed,
            elapsed / done * (total - done),
        )

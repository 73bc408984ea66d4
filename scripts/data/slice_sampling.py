"""Draw whole slices (or slabs of neighbouring slices) from a volume, a share of them centred on foreground."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform, Randomizable

from scripts.common.flags import as_bool


class RandSlicesByPosNegLabeld(Randomizable, MapTransform):
    """``num_samples`` slabs ``[C, H, W, slab]`` along the last axis of each key, the in-plane extent whole.

    The same draws as MONAI's ``RandCropByPosNegLabeld(spatial_size=[-1, -1, slab])``: each sample is centred on a
    foreground voxel (label != 0) with probability ``pos / (pos + neg)``, otherwise on a background voxel, the voxel
    drawn uniformly, so a slice is picked in proportion to its foreground (background) voxel count; the centre is
    then moved inward until the slab fits; a label with no foreground (background) uses the other kind. That
    transform runs the crop and its metadata bookkeeping once per sample and key (about 1.2 ms each, four times the
    cost of reading the cached volume); whole-plane slabs are plain tensor views, picked from per-slice counts.
    Outputs are plain tensors; other keys are shared by every sample.

    ``balance_classes`` (label maps of class indices): a foreground draw first picks one of the classes the volume
    holds, each as likely, then a slice in proportion to that class's voxels, so a small class is trained on as often
    as a large one (nnU-Net's oversampling picks a class the same way).
    """

    def __init__(
        self,
        keys: Sequence[Hashable],
        label_key: str,
        num_samples: int = 1,
        slab: int = 1,
        pos: float = 1.0,
        neg: float = 1.0,
        balance_classes: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        if pos < 0 or neg < 0 or pos + neg == 0:
            raise ValueError(f"pos ({pos}) and neg ({neg}) must be >= 0 and not both 0")
        if int(slab) < 1 or int(slab) % 2 == 0:
            raise ValueError(f"slab must be an odd number of slices >= 1, got {slab}")
        self.label_key, self.num_samples, self.slab = label_key, int(num_samples), int(slab)
        self.pos_ratio = pos / (pos + neg)
        self.balance_classes = as_bool(balance_classes, "balance_classes")

    def centres(self, label: torch.Tensor) -> np.ndarray:
        """``num_samples`` centre slices for a ``[C, H, W, D]`` label (``D >= slab``)."""
        depth = label.shape[-1]
        if depth < self.slab:
            raise ValueError(f"a volume of {depth} slices has no slab of {self.slab}")
        label = torch.as_tensor(label)
        # one channel: foreground is nonzero; more: one-hot with channel 0 the background, as MONAI reads them
        voxels = label[0] if label.shape[0] == 1 else label[1:].ne(0).any(dim=0)
        foreground = torch.count_nonzero(voxels, dim=(0, 1)).double().numpy()
        background = label.shape[1] * label.shape[2] - foreground
        fg_total, bg_total = foreground.sum(), background.sum()
        fg = foreground / fg_total if fg_total > 0 else background / bg_total
        bg = background / bg_total if bg_total > 0 else fg
        per_class = self.class_slices(label) if self.balance_classes and fg_total > 0 else []
        half = self.slab // 2
        centres = np.empty(self.num_samples, dtype=np.int64)
        for i in range(self.num_samples):
            chosen = fg if self.R.rand() < self.pos_ratio else bg
            if chosen is fg and per_class:
                chosen = per_class[self.R.randint(len(per_class))]
            centres[i] = self.R.choice(depth, p=chosen)
        return np.clip(centres, half, depth - 1 - half)

    @staticmethod
    def class_slices(label: torch.Tensor) -> list[np.ndarray]:
        """For each foreground class a ``[C=1, H, W, D]`` label of class indices holds, the share of its voxels in each
        slice."""
        indices = label[0]
        shares = []
        for value in torch.unique(indices):
            if value == 0:
                continue
            counts = torch.count_nonzero(indices == value, dim=(0, 1)).double().numpy()
            shares.append(counts / counts.sum())
        return shares

    def __call__(self, data: Mapping) -> list[dict]:
        d = dict(data)
        centres = self.centres(d[self.label_key])
        half = self.slab // 2
        samples = [dict(d) for _ in centres]
        for key in self.key_iterator(d):
            tensor = d[key].as_tensor() if isinstance(d[key], MetaTensor) else torch.as_tensor(d[key])
            for sample, centre in zip(samples, centres, strict=True):
                sample[key] = tensor[..., centre - half : centre + half + 1]
        return samples

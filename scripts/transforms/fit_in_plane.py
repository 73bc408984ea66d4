"""Fit every slice into a fixed square in-plane size, keeping the physical aspect ratio and the depth."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import ensure_tuple_rep


def _interpolate(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize the two in-plane axes of a ``[C, H, W, D]`` tensor, slice by slice."""
    # depth as the channel axis: [C, H, W, D] memory is [C, D, H, W] in channels-last layout, which PyTorch's CPU
    # kernels resize 3-8x faster than the same slices as a batch, and the result comes back contiguous
    slices = img.permute(0, 3, 1, 2).float()
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(slices, size=size, mode=mode, **kwargs)
    return out.permute(0, 2, 3, 1).to(img.dtype)


def _without_affine(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != "affine"}


class FitInPlane(InvertibleTransform):
    """Resize the in-plane axes (H, W) so the longer physical side spans ``spatial_size`` pixels with square
    pixels, then pad the shorter side to ``spatial_size`` with the volume's lowest value; depth is untouched.

    MONAI's ``Resize(size_mode="longest")`` scales every axis including depth and ignores voxel spacing,
    hence this transform. Its inverse restores the original in-plane size and affine exactly.
    """

    def __init__(self, spatial_size: int, mode: str = "bilinear") -> None:
        self.spatial_size = int(spatial_size)
        self.mode = mode

    def __call__(self, img: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        img = img if isinstance(img, MetaTensor) else MetaTensor(img)
        affine = img.affine.clone().double()
        height, width = img.shape[1:3]
        spacing = torch.linalg.norm(affine[:3, :3], dim=0)[:2].tolist()
        pixel = max(height * spacing[0], width * spacing[1]) / self.spatial_size
        new_h = min(self.spatial_size, max(1, round(height * spacing[0] / pixel)))
        new_w = min(self.spatial_size, max(1, round(width * spacing[1] / pixel)))
        pad_h, pad_w = (self.spatial_size - new_h) // 2, (self.spatial_size - new_w) // 2

        resized = _interpolate(img.as_tensor(), (new_h, new_w), mode or self.mode)
        # padded with the volume's lowest value, its background: after z-scoring, 0 is the mean of the head
        out = torch.full(
            (img.shape[0], self.spatial_size, self.spatial_size, img.shape[3]),
            float(img.amin()) if img.numel() else 0.0,
            dtype=resized.dtype,
            device=resized.device,
        )
        out[:, pad_h : pad_h + new_h, pad_w : pad_w + new_w] = resized

        # new voxel index -> old voxel index (half-pixel centres, as align_corners=False resizing uses)
        to_old = torch.eye(4, dtype=torch.float64)
        for axis, (old, new, pad) in enumerate(((height, new_h, pad_h), (width, new_w, pad_w))):
            to_old[axis, axis] = old / new
            to_old[axis, 3] = (0.5 - pad) * old / new - 0.5
        result = MetaTensor(out, affine=affine @ to_old, meta=_without_affine(img.meta))
        result.applied_operations = list(img.applied_operations)
        self.push_transform(
            result,
            orig_size=(height, width, img.shape[3]),
            extra_info={"resized": (new_h, new_w), "pad": (pad_h, pad_w), "affine": affine},
        )
        return result

    def inverse(self, data: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        transform = self.pop_transform(data)
        height, width, _ = transform["orig_size"]
        (new_h, new_w), (pad_h, pad_w) = transform["extra_info"]["resized"], transform["extra_info"]["pad"]
        tensor = data.as_tensor() if isinstance(data, MetaTensor) else data
        cropped = tensor[:, pad_h : pad_h + new_h, pad_w : pad_w + new_w]
        restored = _interpolate(cropped, (height, width), mode or self.mode)
        if not isinstance(data, MetaTensor):
            return restored
        result = MetaTensor(restored, affine=transform["extra_info"]["affine"], meta=_without_affine(data.meta))
        result.applied_operations = list(data.applied_operations)
        return result


class FitInPlaned(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`FitInPlane`; ``mode`` per key (``bilinear`` images, ``nearest-exact`` labels)."""

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: int,
        mode: Sequence[str] | str = "bilinear",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.fitter = FitInPlane(spatial_size)
        self.mode = ensure_tuple_rep(mode, len(self.keys))

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.fitter(d[key], mode=mode)
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.fitter.inverse(d[key], mode=mode)
        return d

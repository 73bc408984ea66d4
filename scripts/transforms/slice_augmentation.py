"""Random flips, rotation, zoom, smooth deformation and intensity changes for a whole batch of slices at once, each
slice its own draw."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# the world axes of a RAS volume, as mirror_axes names them
MIRROR_AXES = {"LR": 0, "AP": 1, "SI": 2}


def in_plane_axes(normals: torch.Tensor) -> torch.Tensor:
    """``[N]`` slice normals (RAS axes 0-2) -> ``[N, 2]``: the world axes of each slice's rows (H) and columns (W).
    ``SliceAxis`` moves the normal last and keeps the other two axes in their order."""
    table = torch.tensor([[1, 2], [0, 2], [0, 1]])
    return table[normals.long().cpu()]


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, [N, C, height, width], align_corners=False)`` by two broadcast multiply-adds: on the CPU
    its batched matmul against an ``[N, H*W, 3]`` base grid took half of this module's time (5 of 10 ms per batch)."""
    x = (torch.arange(width, dtype=theta.dtype, device=theta.device) * 2 + 1) / width - 1
    y = (torch.arange(height, dtype=theta.dtype, device=theta.device) * 2 + 1) / height - 1
    t = theta[:, :, :, None, None]  # [N, 2, 3, 1, 1]
    grid = t[:, :, 0] * x + t[:, :, 1] * y[:, None] + t[:, :, 2]  # [N, 2, H, W]
    return grid.permute(0, 2, 3, 1)


class SliceAugmentation:
    """In-plane augmentation of ``[N, C, H, W]`` slices (2D, 2.5D) or ``[N, C, H, W, D]`` patches (3D: every slice of
    a patch moves alike) with their labels, on the batch's device in one ``grid_sample``.

    MONAI's dictionary transforms (RandFlipd, RandRotated, RandZoomd, ...) run once per sampled slice in the loader
    workers, and their per-call bookkeeping (about 1 ms per slice and transform) cost as much CPU as a third of the
    training step on a 2-core machine; here the same draws cost one batched resampling. Probabilities and ranges
    follow those transforms: flips of each in-plane axis (``flip_prob``), a rotation in ``[-rotate_range,
    rotate_range]`` radians (``rotate_prob``), a zoom drawn per axis from ``zoom_range`` (``zoom_prob``, > 1
    magnifies, so the field of view cuts the head elsewhere), a shift of up to ``translate_range`` of the slice's
    size per axis (``translate_prob``), a smooth random deformation (``elastic_prob``: displacements drawn on an
    ``elastic_points`` x ``elastic_points`` grid with a standard deviation of up to ``elastic_magnitude`` of the slice's
    size, interpolated bicubically: head and brain shapes the few training subjects do not have), then on the image
    alone ``x * (1 + u)`` with ``|u| <= scale_range``, ``x + v`` with ``|v| <= shift_range``, and Gaussian noise of a
    standard deviation drawn from ``[0, noise_std]``. Flips are only along the world axes in ``mirror_axes`` (``LR``,
    ``AP``, ``SI``): leave ``LR`` out when left and right structures have labels of their own, which a mirror image
    would swap; a slice's axes are known from ``in_plane`` (:func:`in_plane_axes` of its normal).
    Labels are resampled with nearest neighbours and padded with 0; images are padded with each slice's lowest value
    (its background: 0 is the head's mean after z-scoring). Draws use torch's global CPU generator, which the trainer
    reseeds every epoch, so a resumed run augments as the uninterrupted one.
    """

    def __init__(
        self,
        flip_prob: float = 0.5,
        rotate_prob: float = 0.3,
        rotate_range: float = 0.26,
        zoom_prob: float = 0.3,
        zoom_range: tuple[float, float] = (0.9, 1.1),
        translate_prob: float = 0.0,
        translate_range: float = 0.1,
        scale_prob: float = 0.3,
        scale_range: float = 0.1,
        shift_prob: float = 0.3,
        shift_range: float = 0.1,
        noise_prob: float = 0.2,
        noise_std: float = 0.05,
        elastic_prob: float = 0.0,
        elastic_magnitude: float = 0.03,
        elastic_points: int = 5,
        mirror_axes=tuple(MIRROR_AXES),
    ) -> None:
        unknown = [a for a in mirror_axes if a not in MIRROR_AXES]
        if unknown:
            raise ValueError(f"mirror_axes: {unknown} unknown; name some of {', '.join(MIRROR_AXES)}, or none ([])")
        self.mirrored = torch.tensor([axis in mirror_axes for axis in MIRROR_AXES])
        self.flip_prob, self.rotate_prob, self.rotate_range = float(flip_prob), float(rotate_prob), float(rotate_range)
        self.zoom_prob, self.zoom_range = float(zoom_prob), (float(zoom_range[0]), float(zoom_range[1]))
        self.translate_prob, self.translate_range = float(translate_prob), float(translate_range)
        self.scale_prob, self.scale_range = float(scale_prob), float(scale_range)
        self.shift_prob, self.shift_range = float(shift_prob), float(shift_range)
        self.noise_prob, self.noise_std = float(noise_prob), float(noise_std)
        self.elastic_prob, self.elastic_magnitude = float(elastic_prob), float(elastic_magnitude)
        self.elastic_points = int(elastic_points)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, dtype=torch.float64)

    def _chosen(self, n: int, prob: float) -> torch.Tensor:
        return torch.rand(n, dtype=torch.float64) < prob

    def affine(self, n: int, height: int, width: int, in_plane: torch.Tensor | None = None) -> torch.Tensor:
        """``[n, 2, 3]`` matrices for ``F.affine_grid``: output pixel -> input pixel in normalised coordinates.
        ``in_plane``: ``[n, 2]`` world axes of the rows and columns, for ``mirror_axes``."""
        # drawn whatever mirror_axes allows, so leaving an axis out changes no other draw
        flip_x, flip_y = self._chosen(n, self.flip_prob), self._chosen(n, self.flip_prob)
        if in_plane is not None:
            flip_y, flip_x = flip_y & self.mirrored[in_plane[:, 0]], flip_x & self.mirrored[in_plane[:, 1]]
        elif not self.mirrored.all():
            raise ValueError("mirror_axes leaves an axis out, but the slices' axes are not known (no slice normal)")
        flip_x, flip_y = (torch.where(flip, -1.0, 1.0).double() for flip in (flip_x, flip_y))
        angle = torch.where(
            self._chosen(n, self.rotate_prob), self._uniform(n, -self.rotate_range, self.rotate_range), 0.0
        )
        zoomed = self._chosen(n, self.zoom_prob)
        zoom_x = torch.where(zoomed, self._uniform(n, *self.zoom_range), 1.0)
        zoom_y = torch.where(zoomed, self._uniform(n, *self.zoom_range), 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # in pixel units (x along W, y along H) so rotations stay rotations on non-square slices
        matrix = torch.stack(
            [
                torch.stack([flip_x * cos / zoom_x, -flip_x * sin / zoom_y], -1),
                torch.stack([flip_y * sin / zoom_x, flip_y * cos / zoom_y], -1),
            ],
            -2,
        )
        half = torch.tensor([width / 2, height / 2], dtype=torch.float64)
        matrix = matrix * (half[None, None, :] / half[None, :, None])  # pixels -> normalised coordinates
        moved = self._chosen(n, self.translate_prob)[:, None]
        # normalised coordinates span 2 over the slice, so a shift of t of its size is 2t
        shift = torch.where(
            moved, 2 * self._uniform(2 * n, -self.translate_range, self.translate_range).view(n, 2), 0.0
        )
        return torch.cat([matrix, shift[:, :, None]], -1)

    def displacement(self, n: int, height: int, width: int) -> torch.Tensor | None:
        """``[n, height, width, 2]`` smooth offsets in normalised coordinates (zero for slices not drawn), or ``None``
        when ``elastic_prob`` is 0 (no draws, so turning it off leaves every other draw as it was)."""
        if self.elastic_prob <= 0:
            return None
        k = self.elastic_points
        std = torch.where(self._chosen(n, self.elastic_prob), self._uniform(n, 0.0, self.elastic_magnitude), 0.0)
        # normalised coordinates span 2 over the slice, so an offset of m of its size is 2m
        coarse = torch.randn(n, 2, k, k, dtype=torch.float64) * (2 * std).view(n, 1, 1, 1)
        dense = F.interpolate(coarse.float(), size=(height, width), mode="bicubic", align_corners=True)
        return dense.permute(0, 2, 3, 1)

    def intensity(self, image: torch.Tensor) -> torch.Tensor:
        n = image.shape[0]
        shape = (n,) + (1,) * (image.ndim - 1)
        scale = torch.where(
            self._chosen(n, self.scale_prob), 1 + self._uniform(n, -self.scale_range, self.scale_range), 1.0
        )
        shift = torch.where(
            self._chosen(n, self.shift_prob), self._uniform(n, -self.shift_range, self.shift_range), 0.0
        )
        std = torch.where(self._chosen(n, self.noise_prob), self._uniform(n, 0.0, self.noise_std), 0.0)
        image = image * scale.to(image).view(shape) + shift.to(image).view(shape)
        noisy = torch.nonzero(std > 0).flatten().to(image.device)
        if len(noisy):  # noise drawn only for the slices that get it
            noise = torch.randn((len(noisy),) + tuple(image.shape[1:]), dtype=image.dtype, device=image.device)
            image = image.index_add(0, noisy, noise * std[std > 0].to(image).view((-1,) + shape[1:]))
        return image

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, in_plane: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if image.shape[0] != label.shape[0] or image.shape[2:] != label.shape[2:]:
            raise ValueError(f"image {tuple(image.shape)} and label {tuple(label.shape)} differ in batch or space")
        volumetric = image.ndim == 5
        if volumetric:  # [N, C, H, W, D] -> [N, C*D, H, W]: one in-plane transform for every slice of a patch
            depth = image.shape[-1]
            image, label = (t.permute(0, 1, 4, 2, 3).flatten(1, 2) for t in (image, label))
        n, _, height, width = image.shape
        theta = self.affine(n, height, width, in_plane).to(device=image.device, dtype=torch.float32)
        grid = affine_grid(theta, height, width)
        offsets = self.displacement(n, height, width)
        if offsets is not None:
            grid = grid + offsets.to(grid)
        label_dtype = label.dtype
        background = image.float().amin(dim=(1, 2, 3), keepdim=True)
        image = F.grid_sample(
            image.float() - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        image = image + background
        label = F.grid_sample(label.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).to(
            label_dtype
        )
        image = self.intensity(image)
        if volumetric:
            image, label = (t.unflatten(1, (-1, depth)).permute(0, 1, 3, 4, 2) for t in (image, label))
        return image, label

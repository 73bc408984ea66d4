"""Choose the axis a 2D network slices along: move it to the last position, invertibly, with the affine kept true."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform

# after Orientationd("RAS") the voxel axes are R (0), A (1), S (2); slices of a plane are perpendicular to its normal
PLANE_NORMALS = {"sagittal": 0, "coronal": 1, "axial": 2}
SLICE_AXES = ("auto", *PLANE_NORMALS)
# permutation of the spatial axes that puts each normal last, keeping the other two in their order
PERMUTATIONS = {0: (1, 2, 0), 1: (0, 2, 1), 2: (0, 1, 2)}
# nnU-Net treats a volume as anisotropic when its coarsest spacing is at least 3x its finest; slicing needs less
ANISOTROPY_RATIO = 1.5


def spacing_of(affine: torch.Tensor) -> list[float]:
    return torch.linalg.norm(torch.as_tensor(affine, dtype=torch.float64)[:3, :3], dim=0).tolist()


def choose_axis(slice_axis: str, affine, ratio: float = ANISOTROPY_RATIO) -> int:
    """The spatial axis (0, 1, 2 of a RAS volume) to slice along: the named plane's normal, or for ``auto`` the axis
    with the coarsest spacing when it is at least ``ratio`` times the finest (as nnU-Net picks the axis it treats
    separately), else the axial one."""
    if slice_axis not in SLICE_AXES:
        raise ValueError(f"slice_axis={slice_axis!r}: use one of {', '.join(SLICE_AXES)}, e.g. --slice_axis auto")
    if slice_axis != "auto":
        return PLANE_NORMALS[slice_axis]
    spacing = spacing_of(affine)
    coarsest = max(range(3), key=lambda a: (spacing[a], a == 2))  # ties go to the axial axis
    return coarsest if spacing[coarsest] >= ratio * min(spacing) else PLANE_NORMALS["axial"]


class SliceAxis(InvertibleTransform):
    """Permute the spatial axes of a ``[C, X, Y, Z]`` RAS volume so slices along ``axis`` run over the last one;
    the affine is permuted with them, so it still maps voxels to the same world points. Invertible."""

    def __call__(self, img: torch.Tensor, axis: int) -> torch.Tensor:
        img = img if isinstance(img, MetaTensor) else MetaTensor(img)
        perm = PERMUTATIONS[int(axis)]
        affine = img.affine.clone().double()
        new_affine = affine.clone()
        new_affine[:, :3] = affine[:, list(perm)]
        out = img.as_tensor().permute(0, *[p + 1 for p in perm]).contiguous()
        meta = {k: v for k, v in img.meta.items() if k != "affine"}
        result = MetaTensor(out, affine=new_affine, meta=meta)
        result.applied_operations = list(img.applied_operations)
        self.push_transform(result, orig_size=tuple(img.shape[1:]), extra_info={"axis": int(axis), "affine": affine})
        return result

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        transform = self.pop_transform(data)
        perm = PERMUTATIONS[transform["extra_info"]["axis"]]
        inverse = [perm.index(a) for a in range(3)]
        tensor = data.as_tensor() if isinstance(data, MetaTensor) else data
        restored = tensor.permute(0, *[p + 1 for p in inverse]).contiguous()
        if not isinstance(data, MetaTensor):
            return restored
        meta = {k: v for k, v in data.meta.items() if k != "affine"}
        result = MetaTensor(restored, affine=transform["extra_info"]["affine"], meta=meta)
        result.applied_operations = list(data.applied_operations)
        return result


class SliceAxisd(MapTransform, InvertibleTransform):
    """Dictionary version of :class:`SliceAxis`. The axis is chosen once per volume from the first key present
    (``auto``: coarsest spacing when clearly anisotropic, else axial) and applied to every key, so image and label
    stay aligned. With ``plane_key``, an item holding that key is sliced along the plane it names instead (training
    items drawn along every plane, see ``scripts.data.cases.along_planes``). With ``normal_key``, the axis chosen (0
    left-right, 1 anterior-posterior, 2 superior-inferior) is recorded under it, for augmentation that must know which
    world axes a slice's rows and columns run along (``SliceAugmentation``'s ``mirror_axes``). Put it right after
    ``Orientationd(axcodes="RAS")``."""

    def __init__(
        self,
        keys: KeysCollection,
        slice_axis: str = "auto",
        anisotropy_ratio: float = ANISOTROPY_RATIO,
        plane_key: str | None = None,
        normal_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        choose_axis(slice_axis, torch.eye(4), anisotropy_ratio)  # refuse an unknown name at construction
        self.slice_axis, self.ratio, self.plane_key = slice_axis, float(anisotropy_ratio), plane_key
        self.normal_key = normal_key
        self.permuter = SliceAxis()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        plane = d.get(self.plane_key, self.slice_axis) if self.plane_key else self.slice_axis
        axis = None
        for key in self.key_iterator(d):
            if axis is None:
                affine = d[key].affine if isinstance(d[key], MetaTensor) else torch.eye(4)
                axis = choose_axis(plane, affine, self.ratio)
            d[key] = self.permuter(d[key], axis)
        if self.normal_key is not None and axis is not None:
            d[self.normal_key] = int(axis)
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.permuter.inverse(d[key])
        return d

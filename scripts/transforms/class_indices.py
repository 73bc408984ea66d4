"""Label maps as the network learns them: the class index of every voxel."""

from __future__ import annotations

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type

from scripts.data.label_classes import class_values, is_binary


class ClassIndicesd(MapTransform):
    """Binary classes: ``label >= threshold`` (1.0 or 0.0), so soft or 0/255 masks train with ``binarize_labels``.
    More classes: each value replaced by its channel's index (the ``i``-th smallest value -> ``i``), so the values need
    not be consecutive. The data check has refused values outside the classes before any of this runs."""

    def __init__(self, keys: KeysCollection, classes: dict, threshold: float = 0.5) -> None:
        super().__init__(keys)
        self.binary, self.threshold = is_binary(classes), float(threshold)
        # plain numbers, not a tensor: the disk cache's key pickles this transform, and a tensor's pickle varies
        self.values = tuple(float(v) for v in class_values(classes))

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            if self.binary:  # as MONAI's AsDiscreted(threshold=...) did before classes were recorded
                d[key] = convert_to_dst_type(label >= self.threshold, label, dtype=label.dtype)[0]
            else:
                values = torch.as_tensor(label).float().contiguous()
                plain = values.as_tensor() if hasattr(values, "as_tensor") else values
                indices = torch.searchsorted(torch.tensor(self.values, device=plain.device), plain)
                d[key] = convert_to_dst_type(indices, label, dtype=torch.float32)[0]
        return d

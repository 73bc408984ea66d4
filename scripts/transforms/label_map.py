"""The label map inference writes: the dataset's own values, from the network's logits on the scan's grid."""

from __future__ import annotations

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type

from scripts.data.label_classes import class_values, is_binary, label_dtype
from scripts.transforms.class_outputs import probabilities

TORCH_DTYPES = {"uint8": torch.uint8, "uint16": torch.int32}  # torch has no uint16 arithmetic; saving casts it


class LabelMapd(MapTransform):
    """``[C, X, Y, Z]`` logits -> a ``[1, X, Y, Z]`` label map. One channel: ``logit >= 0`` (probability >= 0.5) is
    the foreground value, as the binary masks were always written; several: the value of the most probable class.
    ``uint8``, or ``uint16`` when a value is over 255."""

    def __init__(self, keys: KeysCollection, classes: dict) -> None:
        super().__init__(keys)
        self.binary, self.values = is_binary(classes), torch.tensor(class_values(classes))
        self.dtype = TORCH_DTYPES[label_dtype(classes)]

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            logits = d[key]
            if self.binary:
                labels = (torch.as_tensor(logits) >= 0).to(self.dtype) * self.values[-1].to(self.dtype)
            else:
                labels = self.values.to(self.dtype)[torch.as_tensor(logits).argmax(dim=0, keepdim=True)]
            d[key] = convert_to_dst_type(labels, logits, dtype=self.dtype)[0]
        return d


class Probabilitiesd(MapTransform):
    """Logits -> probabilities: the foreground's (one channel, sigmoid) or each class's (softmax over channels)."""

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = convert_to_dst_type(probabilities(torch.as_tensor(d[key]), dim=0), d[key])[0]
        return d

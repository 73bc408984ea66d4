"""What validation's Dice compares: the prediction made discrete, and the label in the same channels."""

from __future__ import annotations

import torch
from monai.config import KeysCollection
from monai.networks.utils import one_hot
from monai.transforms import MapTransform
from monai.utils import convert_to_dst_type


class MetricInputsd(MapTransform):
    """``keys`` (``[C, X, Y, Z]`` logits) made discrete in place: one channel ``logit >= 0``; several the one-hot of
    the most probable class. ``label_key`` (class indices, ``[1, X, Y, Z]``) is copied to ``onehot_key`` with as many
    channels (one channel: the label itself), so MONAI's Dice scores every class; the loss still reads the indices."""

    def __init__(self, keys: KeysCollection, label_key: str = "label", onehot_key: str = "label_onehot") -> None:
        super().__init__(keys)
        self.label_key, self.onehot_key = label_key, onehot_key

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            logits = d[key]
            channels = logits.shape[0]
            if channels == 1:
                d[key] = convert_to_dst_type(torch.as_tensor(logits) >= 0, logits, dtype=logits.dtype)[0]
                d[self.onehot_key] = d[self.label_key]
            else:
                indices = torch.as_tensor(logits).argmax(dim=0, keepdim=True)
                d[key] = convert_to_dst_type(one_hot(indices[None], channels)[0], logits, dtype=logits.dtype)[0]
                label = d[self.label_key]
                onehot = one_hot(torch.as_tensor(label)[None].long(), channels)[0]
                d[self.onehot_key] = convert_to_dst_type(onehot, label, dtype=torch.float32)[0]
        return d

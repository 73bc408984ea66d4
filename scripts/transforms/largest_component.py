"""Keep one organ: the largest connected foreground component of a mask, with the holes it encloses filled."""

from __future__ import annotations

from monai.config import KeysCollection
from monai.transforms import Compose, FillHolesd, KeepLargestConnectedComponentd, MapTransform

from scripts.config.flags import as_bool


class LargestComponentd(MapTransform):
    """MONAI's ``KeepLargestConnectedComponentd`` then ``FillHolesd`` on label 1 of ``keys``, when ``enabled`` (a bool
    or ``true``/``false`` from the command line); otherwise the data passes unchanged. Inference and evaluation both
    post-process with this, so a scored mask is the mask inference writes. Set it off for targets with several parts."""

    def __init__(self, keys: KeysCollection, enabled=True) -> None:
        super().__init__(keys)
        self.enabled = as_bool(enabled, "postprocessing_lcc")
        self.steps = Compose(
            [KeepLargestConnectedComponentd(keys, applied_labels=[1]), FillHolesd(keys, applied_labels=[1])]
        )

    def __call__(self, data):
        return self.steps(data) if self.enabled else data

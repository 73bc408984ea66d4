"""Keep one object per class: the largest connected component of each (a binary mask's holes filled too)."""

from __future__ import annotations

from monai.config import KeysCollection
from monai.transforms import Compose, FillHolesd, KeepLargestConnectedComponentd, MapTransform

from scripts.common.flags import as_bool
from scripts.data.label_classes import BINARY_CLASSES, class_values, foreground_names, is_binary

AUTO = "auto"


def chosen_values(enabled, classes: dict) -> list[int]:
    """The class values the step applies to: every foreground class for ``true``, none for ``false``, the classes named
    (by name or value) in a list; ``auto``: a binary mask's foreground, and no class of a label map of several classes,
    whose classes often have several parts (tissues, vessels, a left and a right structure sharing a value): keeping
    one part each cut the tissue set's CSF Dice from 0.58 to 0.33."""
    if isinstance(enabled, str) and enabled.strip().lower() == AUTO:
        enabled = is_binary(classes)
    if isinstance(enabled, (list, tuple)):
        by_name = {name: int(value) for name, value in classes.items()}
        values = set(class_values(classes))
        chosen = []
        for item in enabled:
            value = by_name.get(str(item), item)
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
            if value not in values or value == 0:
                raise SystemExit(
                    f"postprocessing_lcc: {item!r} is not a foreground class; name some of "
                    f"{', '.join(f'{n} ({classes[n]})' for n in foreground_names(classes))}, or pass auto, true or false"
                )
            chosen.append(int(value))
        return sorted(set(chosen))
    return [v for v in class_values(classes) if v != 0] if as_bool(enabled, "postprocessing_lcc") else []


class LargestComponentd(MapTransform):
    """When enabled, MONAI's ``KeepLargestConnectedComponentd`` on ``keys``, per class: for two classes then
    ``FillHolesd`` (one organ such as the brain); for more, the classes chosen (``enabled`` true: all; or a list of
    class names or values), without filling (a class's holes are other classes). The data is a label map of class
    values (inference) or one channel per class (evaluation's one-hot). Inference and evaluation both post-process with
    this, so a scored mask is the mask inference writes. Set it off for targets with several parts."""

    def __init__(self, keys: KeysCollection, enabled=AUTO, classes: dict | None = None) -> None:
        super().__init__(keys)
        self.classes = dict(classes or BINARY_CLASSES)
        self.values = chosen_values(enabled, self.classes)
        self.enabled = bool(self.values)
        if is_binary(self.classes):
            # 0/1 in evaluation, the dataset's foreground value in inference's label map
            labels = sorted({1, *self.values})
            self.steps = Compose(
                [KeepLargestConnectedComponentd(keys, applied_labels=labels), FillHolesd(keys, applied_labels=labels)]
            )
        else:
            self.steps = KeepLargestConnectedComponentd(keys, applied_labels=self.values, independent=True)
            channels = class_values(self.classes)
            self.onehot_steps = KeepLargestConnectedComponentd(
                keys, applied_labels=[channels.index(v) for v in self.values], is_onehot=True, independent=True
            )

    def __call__(self, data):
        if not self.enabled:
            return data
        if not is_binary(self.classes) and any(data[key].shape[0] > 1 for key in self.key_iterator(data)):
            return self.onehot_steps(data)
        return self.steps(data)

"""The classes a dataset's label maps hold: their names and values, from its ``dataset.json`` or from the labels.

nnU-Net v2 names a dataset's classes in ``dataset.json`` (``"labels": {"background": 0, "liver": 1, "tumour": 2}``; the
Decathlon and nnU-Net v1 wrote ``{"0": "background", "1": "liver"}``); this reads that when the dataset has one, and
otherwise names the values the data check found (``class 4`` ...). The classes travel with the model
(``model_settings``), so inference writes the dataset's own values and evaluation scores each class by name. Values
need not be consecutive: the network's channel ``i`` is the ``i``-th smallest value.

Two classes (background and one foreground value) are the binary case: one output channel and a sigmoid, as every
model trained before classes were recorded; three or more train a softmax over one channel per class.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from scripts.common.flags import as_bool

logger = logging.getLogger(__name__)

# what a binary dataset without a dataset.json is called, and what a model recorded without classes predicted
BINARY_CLASSES = {"background": 0, "foreground": 1}
DATASET_JSON = "dataset.json"
# the values a label map is written with: the smallest unsigned type that holds them
LABEL_DTYPES = ((255, "uint8"), (65535, "uint16"))


def is_binary(classes: dict) -> bool:
    return len(classes) <= 2


def output_channels(classes: dict) -> int:
    """The network's output channels: 1 (a sigmoid) for two classes, one per class (a softmax) for more."""
    return 1 if is_binary(classes) else len(classes)


def class_values(classes: dict) -> list[int]:
    """The classes' values in channel order (ascending)."""
    return sorted(int(v) for v in classes.values())


def class_names(classes: dict) -> list[str]:
    """The names of the classes in channel order (ascending value), however the dict is ordered (model.json sorts
    its keys by name)."""
    by_value = {int(v): name for name, v in classes.items()}
    return [by_value[v] for v in class_values(classes)]


def foreground_names(classes: dict) -> list[str]:
    """The names of the classes other than background (value 0), in channel order."""
    return [name for name in class_names(classes) if classes[name] != 0]


def label_dtype(classes: dict) -> str:
    """``uint8`` when every value fits, else ``uint16``."""
    largest = max(class_values(classes))
    for limit, dtype in LABEL_DTYPES:
        if largest <= limit:
            return dtype
    raise SystemExit(f"label value {largest} is over 65535; renumber the classes")


def read_dataset_json(path: Path) -> dict[str, int] | None:
    """``labels`` of an nnU-Net v2 ``dataset.json`` (name -> value), or of the Medical Segmentation Decathlon's and
    nnU-Net v1's (``"0": "background"``: value -> name), checked: whole values >= 0, distinct, 0 present
    (background). ``None`` when the file names no labels."""
    try:
        labels = json.loads(path.read_text()).get("labels")
    except (OSError, ValueError, AttributeError) as error:
        raise SystemExit(
            f"{path}: not readable JSON ({error}); fix it or remove it to take the classes from the labels"
        ) from None
    if not labels:
        return None
    if not isinstance(labels, dict):
        raise SystemExit(f'{path}: "labels" is not name -> value (nnU-Net v2: {{"background": 0, "liver": 1}}); fix it')
    if all(str(key).isdigit() and isinstance(name, str) for key, name in labels.items()):
        labels = {name: int(key) for key, name in labels.items()}  # the Decathlon's value -> name
    classes = {}
    for name, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SystemExit(
                f"{path}: label {name!r} has value {value!r}; each class needs one whole value >= 0 "
                "(nnU-Net's region-based training, lists of values, is not supported)"
            )
        classes[str(name)] = value
    values = list(classes.values())
    if len(set(values)) != len(values):
        raise SystemExit(f"{path}: two classes share a value ({labels}); give each class its own value")
    if 0 not in values:
        raise SystemExit(f'{path}: no class has value 0; background must be 0 ("background": 0)')
    return dict(sorted(classes.items(), key=lambda item: item[1]))


def case_values(case: dict) -> list[int]:
    """The distinct values of one case's label: as the data check recorded them (``label_values``), else read from
    the file (the check was off)."""
    if case.get("label_values"):
        return list(case["label_values"])
    import nibabel as nib

    return sorted(int(v) for v in np.unique(np.asarray(nib.load(str(case["label"])).dataobj)))


def label_classes(cases: list[dict], training_labels, binarize_labels=False, label_threshold=None) -> dict[str, int]:
    """The dataset's classes, name -> value in ascending value; logged in one line.

    ``binarize_labels`` or a ``label_threshold``: background and foreground (``label >= threshold``), whatever the
    values. Otherwise ``dataset.json`` beside the labels' folder when there is one (every value found must be one of
    its classes), else the values found (``case["label_values"]``, recorded by the data check; read from the files
    when the check was off)."""
    if as_bool(binarize_labels, "binarize_labels") or label_threshold not in (None, ""):
        logger.info("label classes: 0 background, 1 foreground (label >= threshold)")
        return dict(BINARY_CLASSES)
    found = sorted({int(v) for case in cases for v in case_values(case)} | {0})
    dataset_json = Path(training_labels).parent / DATASET_JSON
    named = read_dataset_json(dataset_json) if dataset_json.is_file() else None
    if named is not None:
        classes, origin = named, f"from {dataset_json}"
        unknown = sorted(set(found) - set(classes.values()))
        if unknown:
            raise SystemExit(
                f'{dataset_json}: the labels hold value(s) {unknown} that its "labels" do not name; add them, '
                "or fix the label files"
            )
    else:
        origin = f"the values found in {training_labels} (name them in {DATASET_JSON} beside it)"
        if len(found) == 2:
            classes = {"background": 0, "foreground": found[1]}
        else:
            classes = {("background" if v == 0 else f"class {v}"): v for v in found}
    if len(classes) < 2:
        raise SystemExit(f"{training_labels}: every label is empty (value 0 only); nothing to learn")
    logger.info("label classes: %s (%s)", ", ".join(f"{v} {name}" for name, v in classes.items()), origin)
    return classes

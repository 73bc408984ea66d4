"""scripts/data/label_classes.py: a dataset's classes from its dataset.json or from the values its labels hold."""

import json
import logging

import nibabel as nib
import numpy as np
import pytest

from scripts.data.label_classes import label_classes, label_dtype, output_channels
from scripts.data.verify_data import check_dataset
from tests.conftest import CLASS_VALUES, write_class_dataset, write_dataset


def checked(root, **options):
    cases, problems = check_dataset(root / "imagesTr", root / "labelsTr", **options)
    assert not [p for p in problems if p.severity == "error"], problems
    return cases


def test_dataset_json_names_the_classes_and_is_logged_in_one_line(tmp_path, caplog):
    root = write_class_dataset(tmp_path)
    caplog.set_level(logging.INFO)
    classes = label_classes(checked(root), root / "labelsTr")
    assert classes == CLASS_VALUES and output_channels(classes) == 3 and label_dtype(classes) == "uint8"
    assert f"label classes: 0 background, 2 shell, 5 core (from {root / 'dataset.json'})" in caplog.text


def test_without_dataset_json_the_values_found_are_named(tmp_path, caplog):
    root = write_class_dataset(tmp_path, dataset_json=False)
    caplog.set_level(logging.INFO)
    assert label_classes(checked(root), root / "labelsTr") == {"background": 0, "class 2": 2, "class 5": 5}
    assert "(the values found in" in caplog.text


def test_binary_data_keeps_one_sigmoid_channel(tmp_path):
    root = write_dataset(tmp_path)
    classes = label_classes(checked(root), root / "labelsTr")
    assert classes == {"background": 0, "foreground": 1} and output_channels(classes) == 1
    for i in range(5):  # 0/255 masks: binary with the value 255, or 0/1 with binarize_labels
        path = root / "labelsTr" / f"case_{i:02d}.nii.gz"
        image = nib.load(path)
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj) * 255, image.affine), path)
    assert label_classes(checked(root), root / "labelsTr") == {"background": 0, "foreground": 255}
    binarized = checked(root, binarize_labels="true")
    assert label_classes(binarized, root / "labelsTr", binarize_labels="true") == {"background": 0, "foreground": 1}


def test_values_are_read_from_the_labels_when_the_check_was_off(tmp_path):
    root = write_class_dataset(tmp_path, dataset_json=False)
    cases = [{"image": str(c["image"]), "label": str(c["label"])} for c in checked(root)]
    assert label_classes(cases, root / "labelsTr") == {"background": 0, "class 2": 2, "class 5": 5}


def test_the_decathlons_value_to_name_labels_and_a_dataset_json_without_labels(tmp_path):
    root = write_class_dataset(tmp_path)
    (root / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "2": "shell", "5": "core"}}))
    assert label_classes(checked(root), root / "labelsTr") == CLASS_VALUES
    (root / "dataset.json").write_text(json.dumps({"name": "blobs", "modality": {"0": "MRI"}}))
    assert label_classes(checked(root), root / "labelsTr") == {"background": 0, "class 2": 2, "class 5": 5}


def test_values_over_255_are_written_as_uint16():
    assert label_dtype({"background": 0, "vessel": 300}) == "uint16"


@pytest.mark.parametrize(
    "labels, message",
    [
        ({"background": 0, "liver": [1, 2]}, r"has value \[1, 2\]; each class needs one whole value >= 0"),
        ({"background": 0, "a": 2, "b": 2}, "two classes share a value"),
        ({"liver": 1, "tumour": 2}, "no class has value 0"),
        ({"background": 0, "shell": 2}, r"the labels hold value\(s\) \[5\] that its \"labels\" do not name"),
    ],
)
def test_a_dataset_json_that_does_not_fit_is_refused_with_one_line(tmp_path, labels, message):
    root = write_class_dataset(tmp_path)
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    with pytest.raises(SystemExit, match=message):
        label_classes(checked(root), root / "labelsTr")

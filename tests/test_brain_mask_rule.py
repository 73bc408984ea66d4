"""scripts/tools/brain_mask_rule.py and its use in the development-set builder: a head phantom whose mask runs to the
skull and down the cord is brought to the rule (brain at its surface, brainstem cut at the cerebellum's lowest point,
ventricles in)."""

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from scripts.tools import prepare_real_t1
from scripts.tools.brain_mask_rule import cerebellum_bottom, envelope, to_rule

WHITE, GREY, CSF, SKULL, SCALP = 100.0, 60.0, 20.0, 8.0, 120.0
CEREBELLUM_BOTTOM = 30  # voxel index (1 mm) of the phantom cerebellum's lowest slice, 42 mm wide


def head_phantom(seed: int = 0) -> dict[str, np.ndarray]:
    """A 1 mm head on a RAS grid (x left-right, y posterior-anterior, z inferior-superior): cerebrum with ventricles,
    cerebellum, a cord from the brain to the bottom of the field of view, 5 mm of CSF around them, skull and scalp."""
    x, y, z = np.indices((96, 112, 112)).astype(np.float32)

    def ellipsoid(centre, radii):
        return sum(((g - c) / r) ** 2 for g, c, r in zip((x, y, z), centre, radii, strict=True)) <= 1

    cerebrum, white = ellipsoid((48, 56, 70), (38, 45, 30)), ellipsoid((48, 56, 70), (32, 39, 24))
    ventricles = ellipsoid((48, 56, 72), (8, 16, 6))
    cerebellum = ellipsoid((48, 30, 40), (30, 15, 14)) & (z >= CEREBELLUM_BOTTOM)
    cord = ((x - 48) ** 2 + (y - 50) ** 2 <= 7**2) & (z <= 60)
    brain = cerebrum | cerebellum | cord
    outside = ndimage.distance_transform_edt(~brain)
    image = np.select(
        [ventricles, white | cord, brain, outside <= 5, outside <= 10, outside <= 15],
        [CSF, WHITE, GREY, CSF, SKULL, SCALP],
        0.0,
    )
    image += np.random.default_rng(seed).normal(0, 3, image.shape)
    return {
        "image": image.astype(np.float32),
        "truth": brain & (z >= CEREBELLUM_BOTTOM),  # ventricles included: they lie inside the cerebrum
        "to_skull": outside <= 5,  # brain and CSF out to the inner skull, cord to the bottom of the field of view
        "csf_band": (outside > 0) & (outside <= 5),
        "ventricles": ventricles,
    }


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


# not RAS: the step works in RAS and must give the mask back on the scan's own grid
LAS = np.diag([-1.0, 1.0, 1.0, 1.0])


def las(array: np.ndarray) -> np.ndarray:
    return array[::-1]


def test_a_mask_to_the_skull_and_down_the_cord_is_brought_to_the_brain_surface():
    head = head_phantom()
    assert dice(head["to_skull"], head["truth"]) < 0.8  # the phantom's source mask is far from the rule
    mask = las(to_rule(las(head["image"]), las(head["to_skull"]), LAS))
    assert dice(mask, head["truth"]) > 0.95
    assert not mask[:, :, : CEREBELLUM_BOTTOM - 1].any()  # the cord below the cerebellum is cut
    assert mask[:, :, CEREBELLUM_BOTTOM + 2].any()  # the cerebellum's lowest slices are kept
    assert mask[head["ventricles"]].all()  # ventricles in
    assert mask[head["csf_band"]].mean() < 0.15  # the CSF outside the brain out, but where closing bridges a notch


def test_a_tissue_mask_keeps_its_edge_and_loses_only_the_cord():
    head = head_phantom()
    mask = to_rule(head["image"], head["truth"] | (head["to_skull"] & ~head["csf_band"]), np.eye(4), kind="tissue")
    assert dice(mask, head["truth"]) > 0.98 and not mask[:, :, : CEREBELLUM_BOTTOM - 1].any()


def test_cerebellum_bottom_is_the_lowest_slice_as_wide_as_the_cerebellum():
    head = head_phantom()
    # 2 mm across: the width criterion is in mm, not voxels
    assert cerebellum_bottom(head["truth"][::2, ::2, ::2], np.full(3, 2.0)) == pytest.approx(
        CEREBELLUM_BOTTOM / 2, abs=2
    )
    assert cerebellum_bottom(head["truth"], np.ones(3)) in range(CEREBELLUM_BOTTOM, CEREBELLUM_BOTTOM + 4)
    assert cerebellum_bottom(np.zeros((10, 10, 10), bool), np.ones(3)) is None


def phantom_source(monkeypatch) -> dict[str, np.ndarray]:
    """A head phantom registered as prepare_real_t1's source ``phantom`` (on a LAS grid, its mask out to the skull and
    down the cord); returns the phantom."""
    head = head_phantom()
    monkeypatch.setitem(prepare_real_t1.SOURCES, "phantom", lambda archives: (head["image"], head["to_skull"], LAS))
    monkeypatch.setitem(prepare_real_t1.MASK_RULE, "phantom", "csf")
    monkeypatch.setitem(prepare_real_t1.FILES, "phantom", "a head phantom")
    monkeypatch.setitem(prepare_real_t1.LICENCES, "phantom", "none")
    return head


def test_the_builder_writes_masks_brought_to_the_rule(tmp_path, monkeypatch):
    head = phantom_source(monkeypatch)
    cases = prepare_real_t1.build(tmp_path, tmp_path / "packages", sources=("phantom",))
    assert [c["mask_rule"] for c in cases] == ["brain surface", "brain surface"]
    label = np.asarray(nib.load(tmp_path / "labelsTr" / "phantom_native.nii.gz").dataobj) > 0
    assert dice(label, head["truth"]) > 0.95 and not label[:, :, : CEREBELLUM_BOTTOM - 1].any()
    assert cases[0]["brain_ml"] == pytest.approx(head["truth"].sum() / 1000, rel=0.05)


def test_envelope_closes_sulci_fills_ventricles_and_drops_specks():
    z, y, x = np.mgrid[:40, :40, :40]
    ball = (z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 15**2
    tissue = ball.copy()
    tissue[18:22, 18:22, 18:22] = False  # a ventricle inside
    tissue[20, :, 5:35] &= np.abs(np.arange(40) - 20)[:, None] < 12  # a 1-voxel sulcus cut in from the surface
    tissue[2, 2, 2] = True  # a speck away from the brain
    solid = envelope(tissue, np.ones(3))
    assert solid[20, 20, 20] and not solid[2, 2, 2]
    assert solid[ball].mean() > 0.99 and solid[~ball].mean() < 0.01

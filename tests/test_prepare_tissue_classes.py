"""scripts/tools/prepare_tissue_classes.py and scripts/studies/tissue_kmeans.py: the multi-class set's layout, its
non-consecutive values and second acquisitions, and the k-means baseline's mapping of clusters to classes.

A head phantom (ventricles, grey and white matter) stands in for a source (the real ones need a package download)."""

import json

import nibabel as nib
import numpy as np
import pytest

from scripts.data.cases import find_cases
from scripts.metrics.class_scores import class_dice, per_class_dice
from scripts.studies import tissue_kmeans
from scripts.tools import prepare_real_t1, prepare_tissue_classes
from scripts.tools.prepare_tissue_classes import CSF, GREY, WHITE
from tests import test_brain_mask_rule as phantom
from tests.test_brain_mask_rule import LAS, las

VALUES = (CSF, GREY, WHITE)


def phantom_classes(head: dict) -> np.ndarray:
    """The phantom's reference: ventricles CSF, the bright voxels (cerebral white matter, cord) white, the rest of the
    brain grey; the CSF around the brain and everything outside background."""
    white = head["image"] > (phantom.WHITE + phantom.GREY) / 2
    classes = np.where(white, WHITE, GREY)
    classes[head["ventricles"]] = CSF
    return np.where(head["truth"], classes, 0).astype(np.uint8)


@pytest.fixture(scope="module")
def head() -> dict:
    head = phantom.head_phantom()
    head["classes"] = phantom_classes(head)
    return head


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory, head):
    """The builder's output for the phantom source (on a LAS grid: the builder must keep the scan's own grid)."""
    root = tmp_path_factory.mktemp("tissue")
    with pytest.MonkeyPatch.context() as monkeypatch:
        source = lambda archives: (las(head["image"]), las(head["classes"]), LAS)  # noqa: E731
        monkeypatch.setitem(prepare_tissue_classes.SOURCES, "phantom", source)
        monkeypatch.setitem(prepare_tissue_classes.FILES, "phantom", "a head phantom")
        monkeypatch.setitem(prepare_tissue_classes.CLASS_RULES, "phantom", "drawn with the phantom")
        monkeypatch.setitem(prepare_tissue_classes.LICENCES, "phantom", "none")
        cases = prepare_tissue_classes.build(root / "set", root / "packages", sources=("phantom",))
    return root, cases


def test_the_builder_writes_nnunet_layout_with_the_non_consecutive_values(phantom_set):
    root, cases = phantom_set
    dataset_dir = root / "set"
    assert [c["case"] for c in cases] == ["phantom_native", "phantom_cor2x3x2"]
    assert json.loads((dataset_dir / "cases.json").read_text()) == cases
    assert "a head phantom" in (dataset_dir / "SOURCES.md").read_text() and not (root / "packages").exists()
    dataset = json.loads((dataset_dir / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, "CSF": 1, "grey matter": 2, "white matter": 4}
    assert (
        dataset["numTraining"] == 2 and dataset["file_ending"] == ".nii.gz" and dataset["channel_names"] == {"0": "T1"}
    )
    found = {c["case"]: c for c in find_cases(dataset_dir / "imagesTr", dataset_dir / "labelsTr")}
    assert set(found) == {"phantom_native", "phantom_cor2x3x2"}
    for case in found.values():
        image, label = nib.load(case["image"]), nib.load(case["label"])
        assert image.shape == label.shape and np.allclose(image.affine, label.affine)
        assert label.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(label.dataobj)).tolist()) == {0, 1, 2, 4}


def test_the_native_label_map_is_the_source_s_on_its_own_grid(phantom_set, head):
    root, _ = phantom_set
    label = nib.load(root / "set" / "labelsTr" / "phantom_native.nii.gz")
    assert np.allclose(label.affine, LAS)
    assert np.array_equal(np.asarray(label.dataobj), las(head["classes"]))


def test_the_second_acquisition_keeps_every_class_at_about_its_volume(phantom_set, head):
    root, cases = phantom_set
    native, second = cases
    assert second["spacing"] == [2.0, 3.0, 2.0]
    # the 3 ml ventricles lose their curved ends to the thick slices' blur (about 10 %), the large classes gain a little
    for name, tolerance in (("CSF", 0.15), ("grey matter", 0.05), ("white matter", 0.05)):
        assert second["class_ml"][name] == pytest.approx(native["class_ml"][name], rel=tolerance), name
    label = nib.load(root / "set" / "labelsTr" / "phantom_cor2x3x2.nii.gz")
    # the same brain as the brain-mask set's second acquisition of it: no voxel lost to the split into classes
    _, brain, affine = prepare_real_t1.second_acquisition(las(head["image"]), las(head["truth"]), LAS)
    assert np.allclose(label.affine, affine) and np.array_equal(np.asarray(label.dataobj) > 0, brain)
    ventricle = nib.affines.apply_affine(LAS, (95 - 48, 56, 72))  # the ventricles' centre (RAS voxel 48, 56, 72), mm
    voxel = np.rint(nib.affines.apply_affine(np.linalg.inv(label.affine), ventricle)).astype(int)
    assert np.asarray(label.dataobj)[tuple(voxel)] == CSF


def test_kmeans_orders_the_clusters_csf_grey_white_and_gives_them_the_dataset_s_values(head):
    predicted, centres = tissue_kmeans.kmeans_classes(head["image"], head["truth"], list(VALUES))
    assert centres == sorted(centres)
    assert centres == pytest.approx([phantom.CSF, phantom.GREY, phantom.WHITE], abs=3)
    dice = class_dice(predicted, head["classes"], VALUES)
    assert all(dice[value] > 0.9 for value in VALUES), dice
    assert np.all(predicted[~head["truth"]] == 0)
    # the values go to the classes, not to the cluster ranks: another dataset's values follow the names
    predicted, _ = tissue_kmeans.kmeans_classes(head["image"], head["truth"], [7, 3, 5])
    assert np.mean(predicted[head["ventricles"]] == 7) > 0.95
    assert np.mean(predicted[head["classes"] == WHITE] == 5) > 0.95


def test_the_baseline_cli_scores_every_case_of_the_set(phantom_set, tmp_path, capsys):
    root, _ = phantom_set
    out = tmp_path / "kmeans.json"
    tissue_kmeans.main(["--dataset_dir", str(root / "set"), "--out_dir", str(tmp_path / "maps"), "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [r["case"] for r in rows] == ["phantom_native", "phantom_cor2x3x2"]
    assert all(dice > 0.9 for dice in rows[0]["dice"].values()), rows[0]
    # at 2 x 3 x 2 mm the brain's edge voxels, half CSF outside it, outnumber the 3 ml ventricles and take the darkest
    # cluster: only grey and white matter are held to a bound there
    assert rows[1]["dice"]["grey matter"] > 0.8 and rows[1]["dice"]["white matter"] > 0.9, rows[1]
    printed = capsys.readouterr().out
    assert "| phantom_native |" in printed and "white matter Dice" in printed
    label = root / "set" / "labelsTr" / "phantom_native.nii.gz"
    assert per_class_dice(tmp_path / "maps" / "phantom_native.nii.gz", label, VALUES)[CSF] == pytest.approx(
        rows[0]["dice"]["CSF"]
    )


def test_class_dice_is_nan_for_a_class_neither_map_holds_and_refuses_other_grids(tmp_path):
    a = np.array([[0, 1], [2, 2]])
    assert class_dice(a, a, (1, 2))[2] == 1.0 and np.isnan(class_dice(a, a, (4,))[4])
    for name, affine in (("a", np.eye(4)), ("b", np.diag([2.0, 1.0, 1.0, 1.0]))):
        nib.save(nib.Nifti1Image(a[..., None].astype(np.uint8), affine), tmp_path / f"{name}.nii.gz")
    with pytest.raises(SystemExit, match="not on the grid"):
        per_class_dice(tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", (1, 2))


def test_bad_input_gets_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        prepare_tissue_classes.main(["--sources", "colin27"])
    assert exit_info.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(SystemExit, match="dataset.json not found"):
        tissue_kmeans.main(["--dataset_dir", str(tmp_path), "--json", str(tmp_path / "x.json")])


def test_the_aseg_table_and_the_lattice_placement():
    classes = prepare_tissue_classes.ASEG_CLASSES
    assert [classes[label] for label in (3, 42, 8, 10, 17)] == [GREY] * 5  # cortex, cerebellar cortex, deep grey
    assert [classes[label] for label in (2, 41, 7, 16, 251, 85)] == [WHITE] * 6
    assert [classes[label] for label in (4, 43, 14, 15, 24)] == [CSF] * 5
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    shifted = np.eye(4)
    shifted[:3, 3] = (1, 0, -1)  # the data's voxel (0, 0, 1) is the grid's (1, 0, 0)
    placed = prepare_tissue_classes.on_lattice(data, shifted, (3, 3, 3), np.eye(4))
    assert placed[1, 0, 0] == data[0, 0, 1] and placed[0].sum() == 0
    shifted[0, 3] = 0.5
    with pytest.raises(SystemExit, match="integer voxel offset"):
        prepare_tissue_classes.on_lattice(data, shifted, (3, 3, 3), np.eye(4))


def test_every_source_is_a_pinned_package_and_none_is_kept_out():
    for source in prepare_tissue_classes.SOURCES:
        assert "==" in prepare_real_t1.PACKAGES[prepare_tissue_classes.NEEDS[source]][0], source
        assert source in prepare_tissue_classes.FILES and source in prepare_tissue_classes.LICENCES
        files = prepare_tissue_classes.FILES[source].lower()
        assert not any(kept in files for kept in ("colin", "single_subj", "ch2", "nlin6", "oasis", "robex"))

from pathlib import Path

import pytest

from scripts.data.cases import DatasetError, find_cases, split_cases
from tests.conftest import write_dataset


def test_pairs_labels_with_0000_images(dataset):
    cases = find_cases(dataset / "imagesTr", dataset / "labelsTr")
    assert [c["case"] for c in cases] == [f"case_{i:02d}" for i in range(5)]
    for case in cases:
        assert Path(case["image"]).name == f"{case['case']}_0000.nii.gz"
        assert Path(case["label"]).name == f"{case['case']}.nii.gz"


def test_accepts_images_without_channel_suffix(tmp_path):
    root = write_dataset(tmp_path, channel_suffix="")
    cases = find_cases(root / "imagesTr", root / "labelsTr")
    assert Path(cases[0]["image"]).name == "case_00.nii.gz"


def test_image_without_label_is_skipped(dataset):
    (dataset / "imagesTr" / "extra_0000.nii.gz").write_bytes(
        (dataset / "imagesTr" / "case_00_0000.nii.gz").read_bytes()
    )
    cases = find_cases(dataset / "imagesTr", dataset / "labelsTr")
    assert "extra" not in {c["case"] for c in cases} and len(cases) == 5


def test_label_without_image_names_the_file(dataset):
    (dataset / "imagesTr" / "case_03_0000.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"case_03\.nii\.gz: label without image"):
        find_cases(dataset / "imagesTr", dataset / "labelsTr")


def test_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="nowhere.*folder not found"):
        find_cases(tmp_path / "nowhere", tmp_path)


def test_split_is_by_volume_seeded_and_disjoint(dataset):
    cases = find_cases(dataset / "imagesTr", dataset / "labelsTr")
    train, val = split_cases(cases, 0.2, seed=42)
    assert len(val) == 1 and len(train) == 4
    assert {c["case"] for c in train}.isdisjoint(c["case"] for c in val)
    assert {c["case"] for c in train + val} == {c["case"] for c in cases}
    assert split_cases(cases, 0.2, seed=42) == (train, val)
    different = {tuple(c["case"] for c in split_cases(cases, 0.4, seed=s)[1]) for s in range(10)}
    assert len(different) > 1


@pytest.mark.parametrize("size", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_val_set_size(dataset, size):
    cases = find_cases(dataset / "imagesTr", dataset / "labelsTr")
    with pytest.raises(DatasetError, match="val_set_size"):
        split_cases(cases, size, seed=0)


def test_k_fold_split_is_disjoint_covering_and_seeded():
    cases = [{"case": f"c{i:02d}"} for i in range(11)]
    folds = [split_cases(cases, 0.2, seed=7, num_folds=5, fold=k) for k in range(5)]
    validation = [[c["case"] for c in val] for _, val in folds]
    flat = [c for val in validation for c in val]
    assert sorted(flat) == [c["case"] for c in cases] and len(flat) == len(set(flat))  # covering, folds disjoint
    for train, val in folds:
        assert {c["case"] for c in train}.isdisjoint(c["case"] for c in val)
        assert len(train) + len(val) == len(cases) and 2 <= len(val) <= 3
    assert [split_cases(cases, 0.2, seed=7, num_folds=5, fold=k) for k in range(5)] == folds  # seeded
    other = [[c["case"] for c in split_cases(cases, 0.2, seed=8, num_folds=5, fold=k)[1]] for k in range(5)]
    assert other != validation
    # num_folds 0 is the usual single split
    assert split_cases(cases, 0.2, 7, num_folds=0, fold=3) == split_cases(cases, 0.2, 7)


def test_bad_fold_settings_name_the_key():
    cases = [{"case": f"c{i}"} for i in range(3)]
    with pytest.raises(DatasetError, match="fold=5: must be 0 .. 2"):
        split_cases(cases, 0.2, 0, num_folds=3, fold=5)
    with pytest.raises(DatasetError, match="needs at least 4 labelled volumes"):
        split_cases(cases, 0.2, 0, num_folds=4, fold=0)
    with pytest.raises(DatasetError, match="num_folds=-1"):
        split_cases(cases, 0.2, 0, num_folds=-1)

"""Find image/label pairs in nnU-Net layout and split them by volume."""

from __future__ import annotations

import logging
from pathlib import Path

from sklearn.model_selection import train_test_split

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
CHANNEL_SUFFIX = "_0000"


class DatasetError(ValueError):
    """A problem with the user's data folders; the message names the file and the fix."""


def case_id(path: Path) -> str:
    """``liver_001.nii.gz`` -> ``liver_001``; ``None`` when the file is not NIfTI."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def _nifti_files(folder: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        cid = case_id(path)
        if cid is not None and not path.name.startswith("."):
            files[cid] = path
    return files


def find_cases(images_dir: str, labels_dir: str) -> list[dict[str, str]]:
    """Pair every label with its image, scanning the labels folder as nnU-Net does.

    ``labelsTr/<case>.nii.gz`` pairs with ``imagesTr/<case>_0000.nii.gz`` (or, for data not
    written by nnU-Net tools, ``imagesTr/<case>.nii.gz``). Images without a label are skipped
    with a warning; a label without an image is an error.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder, what in ((images_dir, "training_images"), (labels_dir, "training_labels")):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: folder not found; set --{what} (or --dataset_dir) to an existing folder")
    images = _nifti_files(images_dir)
    labels = _nifti_files(labels_dir)
    if not labels:
        raise DatasetError(f"{labels_dir}: no .nii.gz labels found; put <case>.nii.gz masks there")

    cases, missing = [], []
    for cid, label in labels.items():
        image = images.get(cid + CHANNEL_SUFFIX, images.get(cid))
        if image is None:
            missing.append(label)
        else:
            cases.append({"case": cid, "image": str(image), "label": str(label)})
    if missing:
        raise DatasetError(
            f"{missing[0]}: label without image ({len(missing)} in all); add "
            f"{images_dir / (case_id(missing[0]) + CHANNEL_SUFFIX + '.nii.gz')} or remove the label"
        )
    paired = {Path(c["image"]).name for c in cases}
    unlabelled = [p.name for p in images.values() if p.name not in paired]
    if unlabelled:
        logger.warning("%d image(s) in %s have no label and are skipped, e.g. %s", len(unlabelled), images_dir, unlabelled[0])
    return cases


def split_cases(cases: list[dict], val_set_size: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded split by volume (never by slice) into (training, validation) case lists."""
    if not 0.0 < val_set_size < 1.0:
        raise DatasetError(f"val_set_size={val_set_size}: must lie strictly between 0 and 1, e.g. --val_set_size 0.2")
    if len(cases) < 2:
        raise DatasetError(f"{len(cases)} case(s) found: a train/validation split needs at least 2 labelled volumes")
    n_val = max(1, round(val_set_size * len(cases)))
    if n_val >= len(cases):
        n_val = len(cases) - 1
    train, val = train_test_split(cases, test_size=n_val, random_state=seed, shuffle=True)
    return train, val

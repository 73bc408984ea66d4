"""Find image/label pairs in nnU-Net layout and split them by volume."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.model_selection import KFold, train_test_split

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
CHANNEL_SUFFIX = "_0000"


class DatasetError(ValueError):
    """A problem with the user's data folders; the message names the file and the fix."""


def case_id(path: Path) -> str | None:
    """``liver_001.nii.gz`` -> ``liver_001``; ``None`` when the file is not NIfTI."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


@dataclass
class Pairing:
    """Labels matched to images by case id, and what did not match."""

    cases: list[dict] = field(default_factory=list)
    labels_without_image: list[Path] = field(default_factory=list)
    images_without_label: list[Path] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (ignored file, file kept)


def case_key(cid: str) -> str:
    """The case id as file systems compare it: ``Colin27_ch2`` and ``colin27_ch2`` are one file on a case-insensitive
    file system (macOS, Windows), where their masks and cache entries would overwrite each other, and on any other
    they are most likely one subject twice, i.e. duplicate data across the split."""
    return cid.casefold()


def _nifti_by_case(folder: Path, strip_channel: bool, duplicates: list) -> dict[str, Path]:
    files: dict[str, Path] = {}
    keys: dict[str, str] = {}  # case_key -> the case id kept
    # "<case>_0000.nii.gz" first, so it is the file kept when "<case>.nii.gz" also exists
    for path in sorted(folder.iterdir(), key=lambda p: (CHANNEL_SUFFIX + "." not in p.name, p.name)):
        cid = case_id(path)
        if cid is None or path.name.startswith("."):
            continue
        if strip_channel and cid.endswith(CHANNEL_SUFFIX):
            cid = cid[: -len(CHANNEL_SUFFIX)]
        if case_key(cid) in keys:
            duplicates.append((path, files[keys[case_key(cid)]]))
        else:
            files[cid], keys[case_key(cid)] = path, cid
    return files


def duplicate_problem(extra: Path, kept: Path) -> str:
    """The line for two files of one case id (or of ids that differ only in letter case), naming both."""
    ids = [case_id(p) for p in (extra, kept)]
    ids = [c[: -len(CHANNEL_SUFFIX)] if c and c.endswith(CHANNEL_SUFFIX) else c for c in ids]
    if ids[0] != ids[1]:
        return (
            f"case id {ids[0]!r} differs from {ids[1]!r} ({kept}) only in letter case: one case twice, or two "
            "whose outputs overwrite each other on a case-insensitive file system; rename or remove one"
        )
    return f"duplicate case id (also {kept.name}); keep one of the two files"


def pair_cases(images_dir: Path, labels_dir: Path) -> Pairing:
    """Pair every label with its image, scanning the labels folder as nnU-Net does:
    ``labelsTr/<case>.nii.gz`` with ``imagesTr/<case>_0000.nii.gz`` (or ``imagesTr/<case>.nii.gz``)."""
    pairing = Pairing()
    images = _nifti_by_case(Path(images_dir), True, pairing.duplicates)
    labels = _nifti_by_case(Path(labels_dir), False, pairing.duplicates)
    for cid, label in labels.items():
        if cid in images:
            pairing.cases.append({"case": cid, "image": str(images[cid]), "label": str(label)})
        else:
            pairing.labels_without_image.append(label)
    pairing.images_without_label = [path for cid, path in images.items() if cid not in labels]
    return pairing


def expected_image(images_dir, label: Path) -> Path:
    return Path(images_dir) / f"{case_id(label)}{CHANNEL_SUFFIX}.nii.gz"


def find_cases(images_dir: str, labels_dir: str) -> list[dict[str, str]]:
    """The paired cases; a missing folder, a label without image or a duplicate case id is a ``DatasetError``.
    Images without a label are skipped with a warning."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder, what in ((images_dir, "training_images"), (labels_dir, "training_labels")):
        if not folder.is_dir():
            raise DatasetError(f"{folder}: folder not found; set --{what} (or --dataset_dir) to an existing folder")
    pairing = pair_cases(images_dir, labels_dir)
    if pairing.duplicates:
        extra, kept = pairing.duplicates[0]
        raise DatasetError(f"{extra}: {duplicate_problem(extra, kept)}")
    if pairing.labels_without_image:
        label = pairing.labels_without_image[0]
        raise DatasetError(
            f"{label}: label without image ({len(pairing.labels_without_image)} in all); "
            f"add {expected_image(images_dir, label)} or remove the label"
        )
    if not pairing.cases:
        raise DatasetError(f"{labels_dir}: no labelled .nii.gz cases found; put <case>.nii.gz masks there")
    if pairing.images_without_label:
        logger.warning(
            "%d image(s) in %s have no label and are skipped, e.g. %s",
            len(pairing.images_without_label),
            images_dir,
            pairing.images_without_label[0].name,
        )
    return pairing.cases


def folds_problems(num_folds, fold) -> list[str]:
    """What is wrong with ``num_folds`` and ``fold``, one line each (checked up front with the other settings, and
    again by :func:`split_cases`)."""
    whole = [isinstance(v, int) and not isinstance(v, bool) for v in (num_folds, fold)]
    found = []
    if not whole[0] or num_folds < 0:
        found.append(
            f"num_folds={num_folds!r}: a whole number, 0 for one train/validation split or >= 2, e.g. --num_folds 5"
        )
    if not whole[1] or fold < 0 or (whole[0] and num_folds >= 2 and fold >= num_folds):
        limit = f"0 .. {num_folds - 1} with --num_folds {num_folds}" if whole[0] and num_folds >= 2 else ">= 0"
        found.append(f"fold={fold!r}: must be {limit}, e.g. --fold 0")
    return found


def split_cases(
    cases: list[dict], val_set_size: float, seed: int, num_folds: int = 0, fold: int = 0
) -> tuple[list[dict], list[dict]]:
    """Seeded split by volume (never by slice) into (training, validation) case lists.

    ``num_folds`` 0 (or 1): one ``train_test_split`` holding out ``val_set_size`` of the volumes. ``num_folds`` k >= 2:
    fold ``fold`` (0 .. k-1) of a seeded, shuffled ``KFold`` by volume: the k validation sets are disjoint and
    together cover every case."""
    if problems := folds_problems(num_folds, fold if num_folds >= 2 else 0):  # without folds, fold is not used
        raise DatasetError(problems[0])
    if num_folds >= 2:
        if len(cases) < num_folds:
            raise DatasetError(
                f"{len(cases)} case(s) found: {num_folds}-fold cross-validation needs at least {num_folds} labelled volumes"
            )
        splits = list(KFold(n_splits=num_folds, shuffle=True, random_state=seed).split(cases))
        train_idx, val_idx = splits[fold]
        return [cases[i] for i in train_idx], [cases[i] for i in val_idx]
    if not 0.0 < val_set_size < 1.0:
        raise DatasetError(f"val_set_size={val_set_size}: must lie strictly between 0 and 1, e.g. --val_set_size 0.2")
    if len(cases) < 2:
        raise DatasetError(f"{len(cases)} case(s) found: a train/validation split needs at least 2 labelled volumes")
    n_val = min(max(1, round(val_set_size * len(cases))), len(cases) - 1)
    train, val = train_test_split(cases, test_size=n_val, random_state=seed, shuffle=True)
    return train, val


def along_planes(cases: list[dict], planes) -> list[dict]:
    """One training item per case and plane in ``planes`` (``slice_plane`` names it, for ``SliceAxisd(plane_key=
    "slice_plane")``), so a 2D network trained on axially acquired scans has also seen coronal and sagittal slices
    when a coronal scan comes to inference. ``["auto"]`` keeps one item per case, sliced as ``slice_axis`` says."""
    return [{**case, "slice_plane": plane} for case in cases for plane in planes]

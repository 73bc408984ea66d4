"""Find the scans to predict in a flat folder and name each mask after its case."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
from monai.utils import ImageMetaKey

from scripts.config.flags import as_bool
from scripts.data.cases import CHANNEL_SUFFIX, DatasetError, case_id
from scripts.data.nifti_reader import header_problem

logger = logging.getLogger(__name__)


def scan_case_id(path: str | Path) -> str:
    """``liver_001_0000.nii.gz`` and ``liver_001.nii.gz`` -> ``liver_001`` (the nnU-Net channel suffix is dropped)."""
    cid = case_id(Path(path))
    if cid is None:
        raise DatasetError(f"{path}: not a NIfTI file (.nii.gz or .nii)")
    return cid[: -len(CHANNEL_SUFFIX)] if cid.endswith(CHANNEL_SUFFIX) else cid


def check_single_channel_3d(path: Path) -> None:
    """The network takes one channel of a 3D scan: ``(H, W, D)`` or ``(H, W, D, 1)`` of grey values that fit in
    memory; reads the header only."""
    try:
        img = nib.load(path)
    except Exception as e:
        raise DatasetError(f"{path}: not a readable NIfTI file ({e}); remove it or replace it") from e
    shape = img.shape
    if problem := header_problem(img):
        raise DatasetError(f"{path}: {problem}")
    if len(shape) < 3 or len(shape) > 4 or (len(shape) == 4 and shape[3] != 1):
        raise DatasetError(f"{path}: shape {shape}, but the model takes single-channel 3D scans; pass (H, W, D) images")


def find_images(folder: str) -> list[dict[str, str]]:
    """``[{"image": path, "case": case id}, ...]`` for every ``*.nii.gz``/``*.nii`` in ``folder`` (not recursive)."""
    root = Path(folder)
    hint = "set --dataset_dir to a folder of <case>_0000.nii.gz or <case>.nii.gz scans"
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found; {hint}")
    scans = [p for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".") and case_id(p) is not None]
    if not scans:
        sub = next((root / s for s in ("imagesTs", "imagesTr") if (root / s).is_dir()), None)
        fix = f"--dataset_dir {sub}" if sub is not None else hint
        raise DatasetError(f"{root}: no .nii.gz or .nii scans found; {fix if sub is None else 'use ' + fix}")
    cases: dict[str, Path] = {}
    for path in scans:
        check_single_channel_3d(path)
        cid = scan_case_id(path)
        if cid in cases:
            raise DatasetError(f"{path} and {cases[cid]} both give the case id {cid!r}; keep only one of them")
        cases[cid] = path
    logger.info("%d scan(s) to predict in %s", len(cases), root)
    return [{"image": str(path), "case": cid} for cid, path in cases.items()]


def scans_to_predict(
    folder: str, output_dir: str, other_outputs: list[str] = (), overwrite=False
) -> list[dict[str, str]]:
    """:func:`find_images`, less the cases whose mask is already in ``output_dir`` (one line each) unless
    ``overwrite``; refused with one line, before anything is written, if an output folder is the scans' folder or any
    output file would be one of the scans. Bad input ends the process with that line (no traceback)."""
    try:
        images = find_images(folder)
        scans = {Path(item["image"]).resolve() for item in images}
        for out in [output_dir, *other_outputs]:
            if Path(out).resolve() == Path(folder).resolve():
                raise DatasetError(f"{out}: this is the folder of the scans to predict; pass another --output_dir")
            for item in images:
                target = (Path(out) / f"{item['case']}.nii.gz").resolve()
                if target in scans:
                    raise DatasetError(
                        f"{target}: a scan to predict, which its mask would replace; pass another --output_dir"
                    )
    except DatasetError as error:
        raise SystemExit(f"input error: {error}") from None
    if as_bool(overwrite, "overwrite"):
        return images
    todo = []
    for item in images:
        mask = Path(output_dir) / f"{item['case']}.nii.gz"
        if mask.exists():
            logger.info("%s: exists, not predicted again (--overwrite true replaces it)", mask)
        else:
            todo.append(item)
    if not todo:
        logger.info("Nothing to predict: every mask is already in %s", output_dir)
    return todo


def mask_name(metadict: dict, saver=None) -> dict:
    """``output_name_formatter`` for ``SaveImage``: the mask of ``<case>_0000.nii.gz`` is ``<case>.nii.gz``.

    MONAI's ``FolderLayout`` strips one extension from ``subject``, so the case id goes in with ``.nii.gz``
    (otherwise a dotted id such as ``sub.01`` would lose ``.01``).
    """
    return {"subject": scan_case_id(str(metadict[ImageMetaKey.FILENAME_OR_OBJ])) + ".nii.gz", "idx": None}

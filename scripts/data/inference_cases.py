"""Find the scans to predict (one file, a flat folder, a glob or a list of these) and name the files written for each:
its mask, and on request the skull-stripped scan and the probabilities.

Every output path is decided here, once, and carried in the data list (``mask_path``, ``brain_path``,
``probabilities_path``), so the checks below (no scan replaced, no two outputs on one file, no mask written twice,
room on the disk) look at exactly the files the savers will write.

A scan that cannot be predicted (unreadable, a dangling link, not 3D, NaN or Inf voxels, constant: the check training
runs, ``scripts/data/scan_check.py``) is skipped with one line and the others are predicted; the run then ends with
a summary and status 1 (:func:`end_of_run`)."""

from __future__ import annotations

import glob
import logging
import time
from pathlib import Path

import nibabel as nib
from monai.utils import ImageMetaKey

from scripts.common.flags import as_bool
from scripts.common.output_space import NIFTI_HEADER_BYTES, output_problems
from scripts.data.cases import CHANNEL_SUFFIX, DatasetError, case_id, case_key, duplicate_problem
from scripts.data.nifti_reader import header_problem
from scripts.data.scan_check import ScanError, check_scan

logger = logging.getLogger(__name__)

HINT = (
    "set --dataset_dir to a NIfTI scan, a folder of <case>_0000.nii.gz or <case>.nii.gz scans, "
    "a glob such as '/data/*_T1w.nii.gz', or a list of these"
)
GLOB_CHARACTERS = "*?["
# what each output is called in messages, and its bytes per voxel uncompressed (the brain: the scan's own type)
OUTPUTS = {
    "mask_path": ("mask", 1),
    "brain_path": ("skull-stripped scan", None),
    "probabilities_path": ("probabilities", 4),
}


def scan_case_id(path: str | Path) -> str:
    """``liver_001_0000.nii.gz`` and ``liver_001.nii.gz`` -> ``liver_001`` (the nnU-Net channel suffix is dropped)."""
    cid = case_id(Path(path))
    if cid is None:
        raise DatasetError(f"{path}: not a NIfTI file (.nii.gz or .nii)")
    return cid[: -len(CHANNEL_SUFFIX)] if cid.endswith(CHANNEL_SUFFIX) else cid


def is_scan(path: Path) -> bool:
    """A NIfTI name that is not hidden. Whether the file can be read is the scan check's to say: a dangling link, a
    folder named ``x.nii.gz`` or an unreadable file is a bad scan, named and skipped, never dropped without a word."""
    return not path.name.startswith(".") and case_id(path) is not None


def folder_scans(root: Path) -> list[Path]:
    """The ``*.nii.gz``/``*.nii`` entries of ``root`` (not recursive); none is an error that names the sub-folder of
    scans an nnU-Net dataset folder has."""
    try:
        entries = sorted(root.iterdir())
    except OSError as error:
        raise DatasetError(f"{root}: cannot list the folder ({error.strerror}); check its permissions") from None
    scans = [p for p in entries if is_scan(p)]
    if not scans:
        sub = next((root / s for s in ("imagesTs", "imagesTr") if (root / s).is_dir()), None)
        fix = f"use --dataset_dir {sub}" if sub is not None else HINT
        raise DatasetError(f"{root}: no .nii.gz or .nii scans found; {fix}")
    return scans


def entry_scans(entry: str) -> list[Path]:
    """The scans one entry of ``dataset_dir`` names: a NIfTI file (a link to one included, even a dangling one), a
    folder's scans, or a glob's matching scans. An existing path is taken as it is, so a folder whose name has ``[``
    is no pattern."""
    path = Path(entry)
    if path.is_dir():
        return folder_scans(path)
    if path.is_file() or path.is_symlink():
        if case_id(path) is None:
            raise DatasetError(f"{path}: not a NIfTI file (.nii.gz or .nii); {HINT}")
        return [path]
    if any(c in entry for c in GLOB_CHARACTERS):
        matches = [p for p in sorted(Path(m) for m in glob.glob(entry, recursive=True)) if is_scan(p)]
        if not matches:
            raise DatasetError(f"{entry}: no .nii.gz or .nii file matches this pattern; {HINT}")
        return matches
    raise DatasetError(f"{path}: no such file or folder; {HINT}")


def find_images(source) -> list[dict[str, str]]:
    """``[{"image": path, "case": case id}, ...]`` for the scans ``source`` names (a file, a folder, a glob, or a list
    of these); nothing is read. A scan named twice counts once; two scans whose case ids are equal, or differ only
    in letter case, are refused (their masks would have one name, on a case-insensitive file system the latter
    too)."""
    entries = [str(e) for e in source] if isinstance(source, (list, tuple)) else [str(source)]
    if not entries:
        raise DatasetError(f"--dataset_dir is an empty list; {HINT}")
    cases: dict[str, tuple[str, Path]] = {}  # case_key -> (case id, scan)
    for path in (scan for entry in entries for scan in entry_scans(entry)):
        cid = scan_case_id(path)
        if case_key(cid) in cases:
            other_cid, other = cases[case_key(cid)]
            if other.resolve() == path.resolve():
                continue
            if other_cid != cid:
                raise DatasetError(f"{path}: {duplicate_problem(path, other)}")
            raise DatasetError(f"{path} and {other} both give the case id {cid!r}; keep only one of them")
        cases[case_key(cid)] = (cid, path)
    logger.info("%d scan(s) to predict in %s", len(cases), ", ".join(entries))
    return [{"image": str(path), "case": cid} for cid, path in cases.values()]


def single_file_problem(key: str, name: str, scans: int) -> str | None:
    """``mask_file`` and ``brain_file`` name one NIfTI file, so they need one scan."""
    if case_id(Path(name)) is None:
        return f"{key}={name}: not a NIfTI file name; end it in .nii.gz or .nii"
    if scans != 1:
        return f"{key}={name}: one file, but --dataset_dir gives {scans} scans; pass --output_dir, a folder, instead"
    return None


def plan_outputs(
    images: list[dict], output_dir: str, mask_file="", brain_file="", save_brain: bool = False, probabilities_dir=None
) -> list[tuple[dict, str, str]]:
    """Add ``mask_path`` (and ``brain_path``, ``probabilities_path`` when asked for) to each item of ``images``;
    ``[(item, field, key that chose its folder), ...]``. Refused, as a ``DatasetError``: a file name given as
    ``output_dir``; ``mask_file``/``brain_file`` with other than one scan; an output into a folder of scans (a later
    run would take the masks for scans), onto a scan, or onto another output."""
    for key, name in (("mask_file", mask_file), ("brain_file", brain_file)):
        if name and (problem := single_file_problem(key, name, len(images))):
            raise DatasetError(problem)
    if case_id(Path(output_dir)) is not None and not Path(output_dir).is_dir():
        raise DatasetError(
            f"output_dir={output_dir}: a folder for the masks, not a file; for one scan pass --mask_file "
            f"{output_dir} (its mask) or --brain_file {output_dir} (the skull-stripped scan)"
        )
    scans = {Path(item["image"]).resolve() for item in images}
    scan_folders = {scan.parent for scan in scans}
    written: dict[Path, str] = {}
    planned = []
    for item in images:
        cid = item["case"]
        mask = Path(mask_file) if mask_file else Path(output_dir) / f"{cid}.nii.gz"
        mask_key = "mask_file" if mask_file else "output_dir"
        outputs = [("mask_path", mask, mask_key)]
        if brain_file or save_brain:
            brain = Path(brain_file) if brain_file else mask.parent / f"{cid}_brain.nii.gz"
            outputs.append(("brain_path", brain, "brain_file" if brain_file else mask_key))
        if probabilities_dir:
            outputs.append(("probabilities_path", Path(probabilities_dir) / f"{cid}.nii.gz", "probabilities_dir"))
        for field, path, key in outputs:
            what, target = f"the {OUTPUTS[field][0]} of {cid!r}", path.resolve()
            if key in ("output_dir", "probabilities_dir") and target.parent in scan_folders:
                raise DatasetError(f"{path.parent}: this is the folder of the scans to predict; pass another --{key}")
            if target in scans:
                raise DatasetError(f"{target}: a scan to predict, which {what} would replace; pass another --{key}")
            if target in written:
                raise DatasetError(f"{path}: would be both {written[target]} and {what}; pass another --{key}")
            written[target] = what
            item[field] = str(path)
            planned.append((item, field, key))
    return planned


def output_bytes(item: dict, field: str) -> int:
    """Uncompressed size of one output: the scan's voxel count times the bytes of the output's voxel type; 0 for a
    scan whose header cannot be read or is refused (the scan check skips it before anything is written)."""
    try:
        img = nib.load(item["image"])
    except Exception:  # nibabel and the OS raise many types; the scan check names the problem
        return 0
    if header_problem(img):
        return 0
    per_voxel = OUTPUTS[field][1] or img.get_data_dtype().itemsize
    voxels = 1
    for n in img.shape:
        voxels *= int(n)
    return NIFTI_HEADER_BYTES + voxels * per_voxel


class ScansToPredict(list):
    """Inference's data list (the items of the scans to predict, with their outputs), with what the summary at the
    end of the run needs: ``skipped``, ``[(scan, reason), ...]`` of the scans the check refused, and ``kept``, the
    masks found already written."""

    def __init__(self, items=(), skipped=(), kept: int = 0) -> None:
        super().__init__(items)
        self.skipped, self.kept = list(skipped), kept


def screened(items: list[dict]) -> ScansToPredict:
    """``items`` whose scans pass :func:`~scripts.data.scan_check.check_scan` (read one at a time, all of its voxels:
    the check training runs); each other scan is one line naming it and why, and is left out."""
    start, good, skipped = time.perf_counter(), [], []
    for item in items:
        try:
            check_scan(item["image"])
        except ScanError as error:
            logger.error("skipped %s: %s", item["image"], error)
            skipped.append((item["image"], str(error)))
        else:
            good.append(item)
    if items:
        logger.info(
            "%d scan(s) checked in %.1f s: %d to predict, %d skipped",
            len(items),
            time.perf_counter() - start,
            len(good),
            len(skipped),
        )
    return ScansToPredict(good, skipped)


def scans_to_predict(
    dataset_dir,
    output_dir: str,
    probabilities_dir: str | None = None,
    overwrite=False,
    mask_file: str = "",
    brain_file: str = "",
    save_brain=False,
) -> ScansToPredict:
    """:func:`find_images` with each item's output paths (:func:`plan_outputs`), less the cases whose mask exists
    (one line each) unless ``overwrite``, and less the scans that fail the scan check (:func:`screened`). Before any
    scan's voxels are read, bad input ends the process with ``input error: <one line>``, a folder that cannot take its
    files (no permission, read-only, too little free space) with ``output error: <one line>`` naming it; no
    traceback."""
    try:
        overwrite, save_brain = as_bool(overwrite, "overwrite"), as_bool(save_brain, "save_brain")
        images = find_images(dataset_dir)
        planned = plan_outputs(images, output_dir, mask_file, brain_file, save_brain, probabilities_dir)
    except ValueError as error:  # a DatasetError, or a flag that is not true or false
        raise SystemExit(f"input error: {error}") from None
    todo = images
    if not overwrite:
        todo = []
        for item in images:
            if Path(item["mask_path"]).exists():
                logger.info("%s: exists, not predicted again (--overwrite true replaces it)", item["mask_path"])
            else:
                todo.append(item)
        if not todo:
            logger.info("Nothing to predict: every mask is already written")
    needs: dict[str, tuple[str, int]] = {}
    todo_ids = {id(item) for item in todo}
    for item, field, key in planned:
        if id(item) in todo_ids:
            folder = str(Path(item[field]).parent)
            previous = needs.get(folder, (key, 0))
            needs[folder] = (previous[0], previous[1] + output_bytes(item, field))
    if problems := output_problems(needs):
        raise SystemExit("output error: " + "\n  ".join(problems))
    scans = screened(todo)
    scans.kept = len(images) - len(todo)
    return scans


def end_of_run(scans: ScansToPredict) -> None:
    """The last line of an inference run (its ``finalize``, reached once every scan in ``scans`` is predicted):
    ``predicted 2, skipped 5: <scans>``; any scan skipped ends the process with status 1, so a script that runs
    inference on a folder sees that some masks are missing."""
    summary = f"predicted {len(scans)}" + (f" ({scans.kept} mask(s) already written, kept)" if scans.kept else "")
    if not scans.skipped:
        logger.info("%s, skipped 0", summary)
        return
    names = ", ".join(str(path) for path, _ in scans.skipped)
    summary += f", skipped {len(scans.skipped)}: {names} (each named above with the reason)"
    raise SystemExit(summary)  # printed once, as the last line, by the exit itself


def mask_name(metadict: dict, saver=None) -> dict:
    """``output_name_formatter`` for ``SaveImage``: the mask of ``<case>_0000.nii.gz`` is ``<case>.nii.gz``.

    MONAI's ``FolderLayout`` strips one extension from ``subject``, so the case id goes in with ``.nii.gz``
    (otherwise a dotted id such as ``sub.01`` would lose ``.01``).
    """
    return {"subject": scan_case_id(str(metadict[ImageMetaKey.FILENAME_OR_OBJ])) + ".nii.gz", "idx": None}

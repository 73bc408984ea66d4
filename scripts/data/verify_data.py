"""Check a dataset folder before training: every problem in one go, one line each, naming the file and the fix.

    python -m scripts.data.verify_data --dataset_dir DIR [--binarize_labels true] [--label_threshold 128]

Volumes are read one at a time, so checking hundreds of scans needs the memory of one.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scripts.config.flags import as_bool
from scripts.config.tool_arguments import ToolArgumentParser
from scripts.data.cases import expected_image, find_cases, pair_cases
from scripts.data.nifti_reader import close_streams, header_problem, open_nifti

logger = logging.getLogger(__name__)

AFFINE_TOLERANCE_MM = 0.1  # scanners and converters write affines with float32 rounding
AFFINE_TOLERANCE_DEGREES = 0.1  # between the label's and the image's voxel axes
SPACING_TOLERANCE = 1e-3  # relative


def affine_difference(image_affine: np.ndarray, label_affine: np.ndarray) -> str | None:
    """How the label's voxel grid differs from its image's, in mm and degrees (``None`` within tolerance): origins,
    voxel spacings, and the angle between corresponding voxel axes, each on its own scale."""
    shift = float(np.linalg.norm(image_affine[:3, 3] - label_affine[:3, 3]))
    if shift > AFFINE_TOLERANCE_MM:
        return f"origin {shift:.2f} mm from its image's"
    a, b = image_affine[:3, :3], label_affine[:3, :3]
    sa, sb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    if np.any(np.abs(sa - sb) > SPACING_TOLERANCE * sa):
        return f"voxel spacing {tuple(np.round(sb, 4))} mm against its image's {tuple(np.round(sa, 4))}"
    cosines = np.clip(((a / sa) * (b / sb)).sum(axis=0), -1.0, 1.0)
    angle = float(np.degrees(np.arccos(cosines)).max())
    if angle > AFFINE_TOLERANCE_DEGREES:
        return f"voxel axes turned {angle:.1f} degrees against its image's"
    return None


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" or "warning"
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _error(path, message) -> Problem:
    return Problem("error", Path(path), message)


def _warning(path, message) -> Problem:
    return Problem("warning", Path(path), message)


def _load(path: Path, problems: list[Problem]):
    """(header-level image, voxel data) or ``None`` after recording why it cannot be read; RGB voxels and volumes too
    large for memory are refused from the header, before decompressing."""
    img = None
    try:
        img = open_nifti(path)
        if problem := header_problem(img):
            problems.append(_error(path, problem))
            return None
        data = np.asanyarray(img.dataobj)
    except Exception as error:  # nibabel and gzip raise many types for truncated files or bad headers
        problems.append(
            _error(path, f"unreadable NIfTI ({type(error).__name__}: {str(error)[:80]}); re-export or remove the file")
        )
        return None
    finally:
        if img is not None:
            close_streams([img])
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        problems.append(
            _error(
                path,
                f"shape {data.shape} is not 3D; give one 3D volume per file (a trailing 4th axis of size 1 is fine)",
            )
        )
        return None
    spacing = np.linalg.norm(img.affine[:3, :3], axis=0)
    zooms = img.header.get_zooms()[:3]
    if np.any(spacing <= 0) or np.any(np.asarray(zooms) <= 0):
        problems.append(
            _error(
                path,
                f"voxel spacing {tuple(float(z) for z in zooms)} is zero or negative; fix pixdim/affine in the header",
            )
        )
        return None
    return img, data


def check_case(image_path: Path, label_path: Path, accept_nonbinary: bool, threshold: float = 0.5) -> list[Problem]:
    problems: list[Problem] = []
    image = _load(image_path, problems)
    label = _load(label_path, problems)
    if image is not None:
        values = image[1]
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            problems.append(
                _error(image_path, f"{bad} NaN or Inf voxel(s); replace them (e.g. with 0) before training")
            )
        elif values.min() == values.max():
            problems.append(
                _error(image_path, f"constant image (every voxel {float(values.min())}); remove it or re-export")
            )
    if label is not None:
        values = np.unique(label[1])
        if not accept_nonbinary and not np.isin(values, (0, 1)).all():
            shown = ", ".join(f"{v:g}" for v in values[:8]) + (" ..." if len(values) > 8 else "")
            problems.append(
                _error(
                    label_path,
                    f"label values {{{shown}}} are not {{0, 1}}; pass --binarize_labels true (or --label_threshold T)",
                )
            )
        elif values.max() <= 0:
            problems.append(
                _warning(label_path, "empty label (no foreground); fine for a negative case, check it is meant")
            )
        elif values.max() < threshold:
            problems.append(
                _error(
                    label_path,
                    f"every label value is below the foreground threshold {threshold:g} (largest "
                    f"{values.max():g}), so the case would train as empty; lower --label_threshold",
                )
            )
    if image is not None and label is not None:
        if image[1].shape != label[1].shape:
            problems.append(
                _error(
                    label_path,
                    f"shape {label[1].shape} differs from its image's {image[1].shape}; resample the label onto the image",
                )
            )
        elif difference := affine_difference(image[0].affine, label[0].affine):
            problems.append(
                _error(label_path, f"affine differs: {difference}; write the label with the image's affine")
            )
    return problems


def check_dataset(
    images_dir, labels_dir, binarize_labels=False, label_threshold=None, min_cases: int = 2
) -> tuple[list[dict], list[Problem]]:
    """(cases that can be paired, every problem found)."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    problems = []
    for folder, key in ((images_dir, "training_images"), (labels_dir, "training_labels")):
        if not folder.is_dir():
            problems.append(
                _error(folder, f"folder not found; set --{key} or --dataset_dir to a folder in nnU-Net layout")
            )
    if problems:
        return [], problems
    pairing = pair_cases(images_dir, labels_dir)
    for extra, kept in pairing.duplicates:
        problems.append(_error(extra, f"duplicate case id (also {kept.name}); keep one of the two files"))
    for label_path in pairing.labels_without_image:
        problems.append(
            _error(label_path, f"label without image; add {expected_image(images_dir, label_path)} or remove the label")
        )
    accept_nonbinary = as_bool(binarize_labels, "binarize_labels") or label_threshold not in (None, "")
    threshold = 0.5 if label_threshold in (None, "") else float(label_threshold)
    for case in pairing.cases:
        problems += check_case(Path(case["image"]), Path(case["label"]), accept_nonbinary, threshold)
    for image_path in pairing.images_without_label:
        problems.append(_warning(image_path, "image without label; it is skipped (add its label to use it)"))
    cases = pairing.cases
    if len(cases) < min_cases:
        problems.append(
            _error(
                labels_dir,
                f"{len(cases)} labelled case(s); training with a validation split needs at least {min_cases}",
            )
        )
    return cases, problems


def report(problems: list[Problem], cases: int) -> int:
    """Log every problem, one line each; return the number of errors."""
    for problem in problems:
        (logger.error if problem.severity == "error" else logger.warning)("%s", problem)
    errors = sum(p.severity == "error" for p in problems)
    logger.info("%d case(s) checked: %d error(s), %d warning(s)", cases, errors, len(problems) - errors)
    return errors


def verified_cases(images_dir, labels_dir, binarize_labels=False, label_threshold=None, enabled=True) -> list[dict]:
    """The training cases, after :func:`check_dataset`; any error ends the process with status 1 (no traceback)."""
    if not as_bool(enabled, "verify_data"):
        return find_cases(images_dir, labels_dir)
    cases, problems = check_dataset(images_dir, labels_dir, binarize_labels, label_threshold)
    errors = report(problems, len(cases))
    if errors:
        raise SystemExit(
            f"dataset check failed with {errors} error(s), listed above; fix them or see "
            "`python -m scripts.data.verify_data --help`"
        )
    return cases


def main(argv=None) -> int:
    parser = ToolArgumentParser(prog="python -m scripts.data.verify_data", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset_dir", required=True)
    parser.add_argument("--training_images", help="default: <dataset_dir>/imagesTr")
    parser.add_argument("--training_labels", help="default: <dataset_dir>/labelsTr")
    parser.add_argument("--binarize_labels", default="false", help="accept labels other than {0,1}")
    parser.add_argument("--label_threshold", default=None, help="foreground = label >= threshold")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout, force=True)
    images = args.training_images or Path(args.dataset_dir) / "imagesTr"
    labels = args.training_labels or Path(args.dataset_dir) / "labelsTr"
    cases, problems = check_dataset(images, labels, args.binarize_labels, args.label_threshold)
    return 1 if report(problems, len(cases)) else 0


if __name__ == "__main__":
    sys.exit(main())

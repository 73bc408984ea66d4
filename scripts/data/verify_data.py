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

from scripts.common.flags import as_bool
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.data.cases import DatasetError, duplicate_problem, expected_image, find_cases, pair_cases
from scripts.data.scan_check import ScanError, check_scan, read_volume

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


def _checked(check, path: Path, problems: list[Problem]):
    """``check(path)`` (:func:`~scripts.data.scan_check.check_scan` or ``read_volume``), or ``None`` after recording
    why it failed."""
    try:
        return check(path)
    except ScanError as error:
        problems.append(_error(path, str(error)))
        return None


def check_case(
    image_path: Path, label_path: Path, accept_nonbinary: bool, threshold: float = 0.5, values_found: list | None = None
) -> list[Problem]:
    """Every problem of one case. Without ``accept_nonbinary`` a label is a label map: whole values >= 0, each a class
    (``scripts.data.label_classes``); they are appended to ``values_found``."""
    problems: list[Problem] = []
    image = _checked(check_scan, image_path, problems)  # the scan check inference runs too
    label = _checked(read_volume, label_path, problems)
    if label is not None:
        values = np.unique(label[1])
        if not accept_nonbinary and (values.min() < 0 or not np.array_equal(values, np.round(values))):
            shown = ", ".join(f"{v:g}" for v in values[:8]) + (" ..." if len(values) > 8 else "")
            problems.append(
                _error(
                    label_path,
                    f"label values {{{shown}}} are not whole numbers >= 0 (one per class); for a soft or scaled "
                    "mask pass --binarize_labels true (or --label_threshold T)",
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
        if values_found is not None and not accept_nonbinary:
            values_found.extend(int(v) for v in values)
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
    """(cases that can be paired, every problem found). Whether a split leaves enough volumes to train on is the
    settings' check (``scripts.config.config_check.training_split``): evaluation scores two cases as they are."""
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
        problems.append(_error(extra, duplicate_problem(extra, kept)))
    for label_path in pairing.labels_without_image:
        problems.append(
            _error(label_path, f"label without image; add {expected_image(images_dir, label_path)} or remove the label")
        )
    accept_nonbinary = as_bool(binarize_labels, "binarize_labels") or label_threshold not in (None, "")
    threshold = 0.5 if label_threshold in (None, "") else float(label_threshold)
    for case in pairing.cases:
        values: list[int] = []
        problems += check_case(Path(case["image"]), Path(case["label"]), accept_nonbinary, threshold, values)
        if values:
            case["label_values"] = sorted(set(values))
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
    """The training cases, after :func:`check_dataset`; any error ends the process with status 1 (no traceback).
    With ``verify_data`` false, only the pairing is checked (:func:`~scripts.data.cases.find_cases`), its first
    problem one ``input error`` line."""
    if not as_bool(enabled, "verify_data"):
        try:
            return find_cases(images_dir, labels_dir)
        except DatasetError as error:
            raise SystemExit(f"input error: {error}") from None
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
    parser.add_argument(
        "--binarize_labels", default="false", help="labels are soft or scaled masks: foreground = label >= threshold"
    )
    parser.add_argument("--label_threshold", default=None, help="foreground = label >= threshold")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout, force=True)
    images = args.training_images or Path(args.dataset_dir) / "imagesTr"
    labels = args.training_labels or Path(args.dataset_dir) / "labelsTr"
    cases, problems = check_dataset(images, labels, args.binarize_labels, args.label_threshold)
    return 1 if report(problems, len(cases)) else 0


if __name__ == "__main__":
    sys.exit(main())

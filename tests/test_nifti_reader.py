import gzip

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import NibabelReader
from monai.transforms import LoadImage
from nibabel.filebasedimages import ImageFileError

from scripts.data.nifti_reader import NiftiReader, load_nifti, open_nifti


def oblique_affine():
    rotation = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.2], [-2.5, 0.0, 0.0]])  # LPS-ish, anisotropic, permuted axes
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation, [10.0, -20.0, 5.0]
    return affine


def scans(tmp_path):
    """Files the bundle meets: float32 and scaled int16 .nii.gz, a trailing channel axis, .nii, NIfTI-2."""
    rng = np.random.default_rng(0)
    float_scan = rng.normal(100, 30, (9, 7, 5)).astype(np.float32)
    int_img = nib.Nifti1Image(rng.integers(-300, 3000, (8, 6, 4)).astype(np.int16), oblique_affine())
    int_img.header.set_slope_inter(0.5, -10.0)
    files = {
        "float32.nii.gz": nib.Nifti1Image(float_scan, np.diag([1.0, 1.0, 2.0, 1.0])),
        "scaled_int16.nii.gz": int_img,
        "channel.nii.gz": nib.Nifti1Image(float_scan[..., None], oblique_affine()),
        "plain.nii": nib.Nifti1Image(float_scan, oblique_affine()),
        "nifti2.nii.gz": nib.Nifti2Image(float_scan, oblique_affine()),
    }
    paths = {}
    for name, img in files.items():
        paths[name] = tmp_path / name
        nib.save(img, paths[name])
    return paths


class SpyReader(NiftiReader):
    used = False

    def get_data(self, img):
        self.used = True
        return super().get_data(img)


@pytest.mark.parametrize(
    "name", ["float32.nii.gz", "scaled_int16.nii.gz", "channel.nii.gz", "plain.nii", "nifti2.nii.gz"]
)
def test_loads_what_monai_nibabel_reader_loads(tmp_path, name):
    path = scans(tmp_path)[name]
    for channel_first in (True, False):
        reader = SpyReader()
        ours = LoadImage(reader=reader, image_only=True, ensure_channel_first=channel_first)(path)
        assert reader.used  # LoadImage falls back to its other readers silently when one raises
        monai = LoadImage(reader=NibabelReader(), image_only=True, ensure_channel_first=channel_first)(path)
        assert ours.dtype == monai.dtype and torch.equal(ours.as_tensor(), monai.as_tensor()), name
        assert torch.equal(ours.affine, monai.affine) and ours.is_contiguous()
        assert ours.meta["filename_or_obj"] == monai.meta["filename_or_obj"]
        for key in ("spatial_shape", "original_channel_dim", "pixdim", "scl_slope", "qform_code", "sform_code"):
            assert np.array_equal(np.asarray(ours.meta[key]), np.asarray(monai.meta[key]), equal_nan=True), (name, key)


def test_isal_stream_for_nifti1_gz_and_nibabel_for_the_rest(tmp_path, caplog):
    paths = scans(tmp_path)
    for name in ("float32.nii.gz", "scaled_int16.nii.gz", "channel.nii.gz"):
        img = open_nifti(paths[name])
        stream = img.dataobj.file_like
        assert type(stream).__module__.startswith("isal"), name
        assert np.array_equal(np.asanyarray(img.dataobj), np.asanyarray(nib.load(paths[name]).dataobj))
        stream.close()
    for name in ("plain.nii", "nifti2.nii.gz"):
        img = open_nifti(paths[name])
        assert isinstance(img.dataobj.file_like, str) and np.array_equal(
            np.asanyarray(img.dataobj), np.asanyarray(nib.load(paths[name]).dataobj)
        )
    assert not [r for r in caplog.records if r.name.startswith("nibabel")]  # no header complaints from a wrong guess
    # the scaled int16 comes back scaled, as nibabel's dataobj gives it
    img, voxels = load_nifti(paths["scaled_int16.nii.gz"])
    assert img.dataobj.file_like.closed  # load_nifti closes the stream once the voxels are read
    raw = np.asanyarray(nib.load(paths["scaled_int16.nii.gz"]).dataobj.get_unscaled())
    assert np.allclose(voxels, raw * 0.5 - 10.0)


def test_reader_closes_each_images_stream_when_reads_interleave(tmp_path):
    # CacheDataset loads with one reader shared by a pool of threads: read(a), read(b), get_data(a), get_data(b)
    paths = scans(tmp_path)
    reader = NiftiReader()
    first = reader.read(str(paths["float32.nii.gz"]))
    second = reader.read(str(paths["scaled_int16.nii.gz"]))
    streams = [first.dataobj.file_like, second.dataobj.file_like]
    assert not any(s.closed for s in streams)
    first_data, _ = reader.get_data(first)
    assert streams[0].closed and not streams[1].closed
    second_data, _ = reader.get_data(second)
    assert streams[1].closed
    assert np.array_equal(first_data, np.asanyarray(nib.load(paths["float32.nii.gz"]).dataobj))
    assert np.array_equal(second_data, np.asanyarray(nib.load(paths["scaled_int16.nii.gz"]).dataobj))


def test_damaged_files_fail_as_with_nibabel(tmp_path):
    good = scans(tmp_path)["float32.nii.gz"]
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(EOFError):
        load_nifti(truncated)
    with pytest.raises(EOFError):
        np.asanyarray(nib.load(truncated).dataobj)
    not_gzip = tmp_path / "not_gzip.nii.gz"  # a .nii renamed: nibabel refuses it too
    not_gzip.write_bytes(gzip.decompress(good.read_bytes()))
    with pytest.raises(ImageFileError):
        nib.load(not_gzip).get_fdata()
    with pytest.raises(ImageFileError):
        load_nifti(not_gzip)


def test_without_isal_files_are_read_by_nibabel(tmp_path, monkeypatch):
    import scripts.data.nifti_reader as nifti_reader

    path = scans(tmp_path)["scaled_int16.nii.gz"]
    monkeypatch.setattr(nifti_reader, "has_isal", False)
    img = open_nifti(path)
    assert isinstance(img.dataobj.file_like, str) and np.array_equal(
        np.asanyarray(img.dataobj), np.asanyarray(nib.load(path).dataobj)
    )
    ours = LoadImage(reader=NiftiReader(), image_only=True, ensure_channel_first=True)(path)
    monai = LoadImage(reader=NibabelReader(), image_only=True, ensure_channel_first=True)(path)
    assert torch.equal(ours.as_tensor(), monai.as_tensor()) and torch.equal(ours.affine, monai.affine)

"""``SaveImaged`` that writes each array in the layout of the file it was predicted from, atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from monai.data import NibabelWriter
from monai.data.utils import is_no_channel
from monai.transforms import SaveImaged
from monai.utils import MetaKeys

from scripts.common.durable_write import replace_durably

logger = logging.getLogger(__name__)


class _WriteRefused(BaseException):
    """Carries a writer's ``OSError`` through ``SaveImage``, which catches every ``Exception`` of its writers and
    raises ``RuntimeError: cannot find a suitable writer`` without it: a full disk would read as a missing library."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class NibabelWriterRaisingOSErrors(NibabelWriter):
    """MONAI's writer of ``.nii``/``.nii.gz`` (the only one it registers for them here), whose ``OSError`` reaches
    :class:`SaveLikeInputd` as itself."""

    def write(self, filename, verbose: bool = True, **obj_kwargs):
        try:
            return super().write(filename, verbose=verbose, **obj_kwargs)
        except OSError as error:
            raise _WriteRefused(error) from error


class SaveLikeInputd(SaveImaged):
    """A ``(H, W, D)`` scan gets a ``(H, W, D)`` file, a ``(H, W, D, 1)`` scan a ``(H, W, D, 1)`` file; each file is
    written under a temporary name in its folder, fsynced and renamed, so a killed run never leaves a partial mask
    under a final name (which a rerun, skipping the masks it finds, would keep).

    ``SaveImaged`` squeezes trailing singletons for every file or for none; and in MONAI 1.6 squeezing an array
    that was loaded with a channel axis (``original_channel_dim=-1``) leaves a 3D tensor that the NIfTI writer
    takes for a 2D image ("Affine ... is not invertible"). Here the squeeze follows ``original_channel_dim``.

    MONAI's writer logs the name it writes, which here is the temporary one (``writing: .../.tmp-x1y2.nii.gz``): a
    name that never exists once the run is over. Its line is silenced and, with ``print_log`` (the default), the
    final name is logged once the file is in place.

    A file that cannot be written (a full disk) raises the writer's ``OSError``, which ``replace_durably`` turns into
    a ``WriteError`` naming the file, not ``SaveImage``'s ``cannot find a suitable writer``.

    ``path_key``: the item's key that holds the file to write (``.nii.gz`` or ``.nii``), for outputs whose names are
    decided with the data list (``scripts/data/inference_cases.py``) rather than by ``output_dir`` and
    ``output_name_formatter``.
    """

    def __init__(self, *args, path_key: str | None = None, **kwargs) -> None:
        kwargs.setdefault("writer", NibabelWriterRaisingOSErrors)
        super().__init__(*args, **kwargs)
        self.path_key = path_key
        self.print_log = bool(self.saver.write_kwargs.get("verbose", True))
        self.saver.set_options(write_kwargs={"verbose": False})

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            had_channel = not is_no_channel(d[key].meta.get(MetaKeys.ORIGINAL_CHANNEL_DIM, "no_channel"))
            self.saver.set_options(data_kwargs={"squeeze_end_dims": not had_channel, "channel_dim": 0})
            if self.path_key is not None:
                final = Path(d[self.path_key])
                # the writers that take .nii.gz take .nii; SaveImage adds output_ext to the name it is given
                self.saver.output_ext = ".nii.gz" if final.name.endswith(".nii.gz") else final.suffix
            else:
                final = Path(self.saver.folder_layout.filename(**self.saver.fname_formatter(d[key].meta, self.saver)))
            ext = self.saver.output_ext

            def write(tmp: Path) -> None:
                try:
                    self.saver(img=d[key], filename=str(tmp)[: -len(ext)])
                except _WriteRefused as refused:  # a full disk: replace_durably names the file
                    raise refused.error from None

            replace_durably(write, final, suffix=ext)
            if self.saver.savepath_in_metadict:  # the saver recorded the temporary name
                d[key].meta[MetaKeys.SAVED_TO] = str(final)
            if self.print_log:
                logger.info("wrote %s", final)
        return d

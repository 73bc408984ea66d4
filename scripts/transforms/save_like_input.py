"""``SaveImaged`` that writes each array in the layout of the file it was predicted from, atomically."""

from __future__ import annotations

from pathlib import Path

from monai.data.utils import is_no_channel
from monai.transforms import SaveImaged
from monai.utils import MetaKeys

from scripts.persistence.durable_disk_saver import replace_durably


class SaveLikeInputd(SaveImaged):
    """A ``(H, W, D)`` scan gets a ``(H, W, D)`` file, a ``(H, W, D, 1)`` scan a ``(H, W, D, 1)`` file; each file is
    written under a temporary name in its folder, fsynced and renamed, so a killed run never leaves a partial mask
    under a final name (which a rerun, skipping the masks it finds, would keep).

    ``SaveImaged`` squeezes trailing singletons for every file or for none; and in MONAI 1.6 squeezing an array
    that was loaded with a channel axis (``original_channel_dim=-1``) leaves a 3D tensor that the NIfTI writer
    takes for a 2D image ("Affine ... is not invertible"). Here the squeeze follows ``original_channel_dim``.
    """

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            had_channel = not is_no_channel(d[key].meta.get(MetaKeys.ORIGINAL_CHANNEL_DIM, "no_channel"))
            self.saver.set_options(data_kwargs={"squeeze_end_dims": not had_channel, "channel_dim": 0})
            final = Path(self.saver.folder_layout.filename(**self.saver.fname_formatter(d[key].meta, self.saver)))
            ext = self.saver.output_ext
            replace_durably(lambda tmp: self.saver(img=d[key], filename=str(tmp)[: -len(ext)]), final, suffix=ext)
        return d

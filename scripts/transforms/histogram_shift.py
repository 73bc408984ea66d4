"""MONAI's random histogram shift, made safe for slices of one intensity give or take rounding."""

from __future__ import annotations

import torch
from monai.transforms import RandHistogramShift, RandHistogramShiftd

RELATIVE_RANGE = 1e-4  # below this share of the values' magnitude a slice counts as constant


class SafeRandHistogramShift(RandHistogramShift):
    """``RandHistogramShift`` returns an image of one value unchanged, but one whose values differ by rounding only
    (a slice of background padding: -4.066082 to -4.066081) has its control points squeezed into that float32 gap
    and comes back as NaN, which stops training. Such an image is returned unchanged here too."""

    def __call__(self, img, randomize: bool = True):
        values = torch.as_tensor(img)
        low, high = float(values.min()), float(values.max())
        if high - low <= RELATIVE_RANGE * max(1.0, abs(low), abs(high)):
            if randomize:
                self.randomize()
            return img
        return super().__call__(img, randomize)


class SafeRandHistogramShiftd(RandHistogramShiftd):
    """``RandHistogramShiftd`` with :class:`SafeRandHistogramShift` inside."""

    def __init__(self, keys, num_control_points=10, prob: float = 0.1, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, num_control_points, prob, allow_missing_keys)
        self.shifter = SafeRandHistogramShift(num_control_points=num_control_points, prob=1.0)

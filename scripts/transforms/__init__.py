"""MONAI transforms of one volume or slice: orientation to the slicing axis, intensity, in-plane fit, augmentation, saving."""

"""Dermoscopic image data: layout readers, one class vocabulary, preprocessing, the decoded-image cache
and augmentation. ``python -m gan.data PATH`` shows what the readers see in a folder.

    from gan.data import load_dataset, augment
    ds = load_dataset("/data/isic2017", size=64)   # ImageSet: ds.images uint8 (N, 3, 64, 64), ds.labels
    ds.class_names()                               # ["melanoma", "nevus", "seborrheic_keratosis"]: class indices
    batch = augment(ds.images[:16], torch.Generator().manual_seed(0))
"""
from gan.data.augmentation import augment
from gan.data.dataset import SIZES, DataConfig, DataWarning, ImageSet, load_dataset, show_warnings_plainly
from gan.data.labels import VOCABULARY, canonical, class_order
from gan.data.layouts import LAYOUTS, SPLITS

__all__ = ["LAYOUTS", "SIZES", "SPLITS", "VOCABULARY", "DataConfig", "DataWarning", "ImageSet", "augment", "canonical",
           "class_order", "load_dataset", "show_warnings_plainly"]

"""A folder of images, one subfolder per class (torchvision's ImageFolder layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metaforge.data.raw import Raw, first_line
from metaforge.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_imagefolder(data_dir: Path | None, image_size: int) -> Raw:
    """One subfolder per class (sorted names) of image files, resized to ``image_size`` square.

    Images become RGB, or single-channel if every one of them is greyscale. Hidden files and
    folders are skipped; any other file that PIL cannot decode is an error, so a stray file is
    noticed instead of silently dropped.
    """
    from PIL import Image, ImageOps  # only this source needs PIL

    if data_dir is None:
        raise DataError("imagefolder needs --data-dir: a folder with one subfolder of images per class")
    class_dirs = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{data_dir} has {len(class_dirs)} class subfolder(s): "
                        "imagefolder needs at least 2 (one subfolder of images per class)")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    all_grey = True
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(class_dir).parts))
        if not files:
            raise DataError(f"class folder {class_dir} has no images: add some or remove the folder")
        for file in files:
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{file} is not an image file (expected {', '.join(IMAGE_SUFFIXES)}): move it out of {data_dir}")
            try:
                with Image.open(file) as opened:
                    im = ImageOps.exif_transpose(opened)  # camera photos: honour the orientation tag
                    all_grey &= im.mode in ("1", "L", "LA", "I", "I;16", "F")
                    rgb = im.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
                    arrays.append(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                raise DataError(f"{file} is not a readable image ({first_line(e)}): remove or replace it") from None
            labels.append(label)
    images = np.stack(arrays)
    if all_grey:
        images = np.ascontiguousarray(images[:, :1])
    return Raw(tuple(p.name for p in class_dirs), images, np.asarray(labels, dtype=np.int64), None)

"""Small datasets for the examples and tests: digits, synthetic shapes with masks, a sample photo.

Every loader returns plain NumPy arrays: images as float32 in [0, 1] with a
channel axis (``channels_last``: ``(n, H, W, C)``, or ``channels_first``:
``(n, C, H, W)``), labels as int64 class ids. Randomness comes from an
explicit ``seed``: the same seed gives bit-identical arrays.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation

__all__ = ["SHAPE_NAMES", "load_digits", "make_shapes", "sample_photo"]

SHAPE_NAMES = ("square", "disc", "triangle", "cross")


def _channel_axis(images: np.ndarray, data_format: str) -> np.ndarray:
    """Add a channel axis of size 1 to ``(n, H, W)`` images."""
    return images[..., None] if data_format == "channels_last" else images[:, None]


def load_digits(test_fraction: float = 0.25, seed: int = 0, data_format: str = "channels_last"):
    """scikit-learn's 8x8 handwritten digits, split into a stratified train and test set.

    Pixel values 0..16 are divided by 16, so images lie in [0, 1] (float32).
    Returns ``(x_train, y_train, x_test, y_test)`` with images shaped
    ``(n, 8, 8, 1)`` (or ``(n, 1, 8, 8)`` for ``channels_first``) and int64
    labels 0..9. The split draws from ``seed``: a fraction ``test_fraction``
    of every class goes to the test set.
    """
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    validation.number_in("load_digits", "test_fraction", test_fraction, 0.0, 1.0, high_open=True)
    if test_fraction == 0.0:
        raise ValueError("load_digits: test_fraction must be in (0, 1); got 0.0")
    data_format = validation.data_format("load_digits", data_format)
    digits = _sk_load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=test_fraction, random_state=seed,
                                              stratify=labels)
    return _channel_axis(x_tr, data_format), y_tr, _channel_axis(x_te, data_format), y_te


def _shape_masks(kind: int, yy: np.ndarray, xx: np.ndarray, cy, cx, r) -> np.ndarray:
    """Boolean masks ``(k, H, W)`` of shape ``kind`` centred at (cy, cx) with half-size r (arrays of k)."""
    cy, cx, r = (a[:, None, None] for a in (cy, cx, r))
    dy, dx = yy - cy, xx - cx
    name = SHAPE_NAMES[kind]
    if name == "square":  # |dx| <= r and |dy| <= r
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if name == "disc":  # dx^2 + dy^2 <= r^2
        return dx * dx + dy * dy <= r * r
    if name == "triangle":  # apex at the top, base at the bottom: half-width grows as (dy + r) / 2
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    arm = r / 3  # cross: a plus sign made of two bars of half-width r / 3
    return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))


def make_shapes(n: int, size: int = 32, seed=0, noise: float = 0.1, data_format: str = "channels_last"):
    """Images of one simple shape each (square, disc, triangle, cross) on a noisy background.

    Each image draws a class uniformly, a half-size ``r`` in [0.15, 0.3] *
    size, a centre that keeps the shape inside the image, a background level
    in [0, 0.3] and an object level in [0.6, 1.0]; Gaussian noise with
    standard deviation ``noise`` is added and the result clipped to [0, 1].
    Returns ``(images, labels, masks)``: float32 images ``(n, size, size, 1)``
    (or ``(n, 1, size, size)``), int64 labels indexing ``SHAPE_NAMES``, and
    bool ground-truth object masks ``(n, size, size)``.
    """
    fn = "make_shapes"
    n = validation.positive_int(fn, "n", n)
    size = validation.positive_int(fn, "size", size, minimum=8)
    noise = validation.number_in(fn, "noise", noise, 0.0, float("inf"))
    data_format = validation.data_format(fn, data_format)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    labels = rng.integers(0, len(SHAPE_NAMES), n).astype(np.int64)
    r = rng.uniform(0.15, 0.3, n) * size
    cy = rng.uniform(r, size - r)  # keeps [c - r, c + r] inside [0, size]
    cx = rng.uniform(r, size - r)
    background = rng.uniform(0.0, 0.3, n)
    foreground = rng.uniform(0.6, 1.0, n)
    eps = rng.standard_normal((n, size, size))

    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    masks = np.zeros((n, size, size), dtype=bool)
    for kind in range(len(SHAPE_NAMES)):  # one vectorised pass per shape class
        idx = np.flatnonzero(labels == kind)
        if idx.size:
            masks[idx] = _shape_masks(kind, yy, xx, cy[idx], cx[idx], r[idx])
    level = np.where(masks, foreground[:, None, None], background[:, None, None])
    images = np.clip(level + noise * eps, 0.0, 1.0).astype(np.float32)
    return _channel_axis(images, data_format), labels, masks


def sample_photo(gray: bool = True, size=None) -> np.ndarray:
    """The portrait shipped with matplotlib (``grace_hopper.jpg``) as float32 in [0, 1].

    ``gray=True`` gives ``(H, W)`` luminance 0.299 R + 0.587 G + 0.114 B;
    otherwise ``(H, W, 3)`` RGB. ``size`` (an int for the height, keeping the
    aspect ratio, or ``(height, width)``) resizes with area averaging.
    """
    import matplotlib.cbook as cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        img = img.convert("RGB")
        if size is not None:
            if validation.is_int(size):
                h = validation.positive_int("sample_photo", "size", size)
                hw = (h, max(1, round(h * img.width / img.height)))
            else:
                hw = validation.int_tuple("sample_photo", "size", size, 2)
            img = img.resize((hw[1], hw[0]), Image.Resampling.BOX)
        rgb = np.asarray(img, dtype=np.float32) / 255.0
    if gray:
        return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)
    return rgb

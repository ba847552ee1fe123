"""Datasets: shapes, ranges, determinism, and masks that agree with their labels."""

import numpy as np
import pytest

from tinygrad_cnn import data


def _bbox(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _looks_like(box: np.ndarray) -> str:
    """Name the shape in a cropped mask from geometry alone (fill ratio, row widths, corners)."""
    fill = box.mean()
    widths = box.sum(1)
    corners = box[0, 0] or box[0, -1] or box[-1, 0] or box[-1, -1]
    if fill > 0.9:
        return "square"
    if widths[-1] == box.shape[1] and widths[0] < widths[-1] / 2:
        return "triangle"
    if not corners:
        return "cross" if fill < 0.68 else "disc"  # pi/4 ~ 0.79 for a disc, 5/9 ~ 0.56 for a cross
    return "?"


def test_make_shapes_shapes_dtypes_ranges():
    images, labels, masks = data.make_shapes(40, size=24, seed=3)
    assert images.shape == (40, 24, 24, 1) and images.dtype == np.float32
    assert labels.shape == (40,) and labels.dtype == np.int64 and set(labels) <= {0, 1, 2, 3}
    assert masks.shape == (40, 24, 24) and masks.dtype == bool
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert masks.reshape(40, -1).any(1).all()
    first, _, _ = data.make_shapes(5, size=16, seed=0, data_format="channels_first")
    assert first.shape == (5, 1, 16, 16)


def test_make_shapes_deterministic():
    a = data.make_shapes(30, seed=7)
    b = data.make_shapes(30, seed=7)
    c = data.make_shapes(30, seed=8)
    for u, v in zip(a, b, strict=True):
        assert u.tobytes() == v.tobytes()
    assert a[0].tobytes() != c[0].tobytes()
    g = data.make_shapes(30, seed=np.random.default_rng(7))
    assert g[0].tobytes() == a[0].tobytes()


def test_masks_agree_with_labels():
    _, labels, masks = data.make_shapes(200, size=32, seed=11)
    names = [_looks_like(_bbox(m)) for m in masks]
    expected = [data.SHAPE_NAMES[k] for k in labels]
    assert names == expected
    # negative control: shuffled labels do not agree
    assert names != [expected[i] for i in np.roll(np.arange(200), 1)]


def test_mask_is_where_the_object_is_without_noise():
    images, _, masks = data.make_shapes(20, seed=2, noise=0.0)
    images = images[..., 0]
    for img, m in zip(images, masks, strict=True):
        assert np.ptp(img[m]) == 0 and np.ptp(img[~m]) == 0
        assert img[m][0] > img[~m][0] + 0.25


def test_load_digits_split():
    x_tr, y_tr, x_te, y_te = data.load_digits(test_fraction=0.25, seed=0)
    assert x_tr.shape[1:] == (8, 8, 1) and x_tr.dtype == np.float32
    assert len(x_tr) + len(x_te) == 1797 and abs(len(x_te) - 0.25 * 1797) <= 1
    assert 0.0 <= x_tr.min() and x_tr.max() == 1.0
    assert set(y_te) == set(range(10)) and y_tr.dtype == np.int64
    again = data.load_digits(test_fraction=0.25, seed=0, data_format="channels_first")
    np.testing.assert_array_equal(again[0][:, 0], x_tr[..., 0])
    np.testing.assert_array_equal(again[3], y_te)


def test_sample_photo():
    gray = data.sample_photo()
    assert gray.ndim == 2 and gray.dtype == np.float32 and 0 <= gray.min() and gray.max() <= 1
    rgb = data.sample_photo(gray=False, size=(30, 20))
    assert rgb.shape == (30, 20, 3)
    assert data.sample_photo(size=60).shape[0] == 60


@pytest.mark.parametrize("call, match", [
    (lambda: data.make_shapes(0), "n"),
    (lambda: data.make_shapes(3, size=4), "size"),
    (lambda: data.make_shapes(3, noise=-1), "noise"),
    (lambda: data.load_digits(test_fraction=1.5), "test_fraction"),
    (lambda: data.load_digits(data_format="nhwc"), "data_format"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()

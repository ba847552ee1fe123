"""XRAI: on a CNN whose target logit reads only a planted square, the best region lies in the square (a
randomised model's does not); Sequential, graph, channels_first, single image and batch agree; the ranking
partitions the image by non-increasing gain; the vectorised greedy growth gives exactly what a direct
transcription of PAIR saliency's ``XRAI._xrai`` / ``_xrai_fast`` loops gives; bad options are named."""

from __future__ import annotations

import numpy as np
import pytest

from jax_ref import attribution as A
from tinygrad_cnn import nn

pytest.importorskip("skimage")

F64 = "float64"
SIZE = 16
SQUARE = np.zeros((SIZE, SIZE), bool)
SQUARE[3:9, 9:15] = True  # the planted region: 36 of 256 pixels
SMALL = {"resize_image": False, "scales": (20, 50, 100), "min_size": 6, "dilation_rad": 1, "min_pixel_diff": 4,
         "steps": 16}  # segmentation sized for 16 x 16 images (PAIR's defaults are for 224 x 224)
X = np.random.default_rng(7).random((8, SIZE, SIZE, 1))


def planted(data_format="channels_last", graph=False, randomised=False):
    """Conv2D(4, 3, same, relu) -> Flatten -> Dense(2), float64. Class 0's logit reads only the features in
    ``SQUARE`` with positive weights (and the kernels are positive), so it grows with the square's pixels and
    ignores the rest; ``randomised``: every weight drawn afresh with random signs (the negative control).
    The same weights in every data format (Flatten(data_format=...) flattens in (H, W, C) order, as Keras')."""
    nn.set_random_seed(0)
    kw = {"dtype": F64, "data_format": data_format}
    inp = nn.Input((SIZE, SIZE, 1) if data_format == "channels_last" else (1, SIZE, SIZE))
    if graph:
        h = nn.ReLU(dtype=F64)(nn.Conv2D(4, 3, padding="same", name="c1", **kw)(inp))
        model = nn.Model(inp, nn.Dense(2, dtype=F64, name="head")(nn.Flatten(data_format=data_format)(h)))
    else:
        model = nn.Sequential([inp, nn.Conv2D(4, 3, padding="same", activation="relu", name="c1", **kw),
                               nn.Flatten(data_format=data_format), nn.Dense(2, dtype=F64, name="head")])
    rng = np.random.default_rng(5 if randomised else 1)
    kernel, dense = rng.standard_normal((3, 3, 1, 4)), rng.standard_normal((SIZE, SIZE, 4, 2))
    if not randomised:
        kernel = np.abs(kernel)
        dense[..., 0] = np.abs(dense[..., 0]) * SQUARE[:, :, None]
    model.set_weights([kernel, np.full(4, 0.1), dense.reshape(-1, 2), np.zeros(2)])
    return model


MODEL = planted()


def top_region_precision(ranks):
    """Per image, the fraction of the best region (rank 1) inside the square."""
    top = ranks == 1
    return (top & SQUARE).sum(axis=(1, 2)) / top.sum(axis=(1, 2))


def test_best_region_lies_in_the_planted_square_and_not_for_a_randomised_model():
    mask, ranks = A.xrai(MODEL, X, target=0, return_xrai_segments=True, **SMALL)
    _, random_ranks = A.xrai(planted(randomised=True), X, target=0, return_xrai_segments=True, **SMALL)
    ours, control = top_region_precision(ranks).mean(), top_region_precision(random_ranks).mean()
    chance = SQUARE.mean()  # any ranking independent of the model puts this fraction of a region in the square
    assert ours > 0.5 > 3 * chance and ours > control + 0.3, (ours, control, chance)  # measured 0.56 vs 0.15
    assert control < 2 * chance
    assert mask.shape == (8, SIZE, SIZE) and ranks.shape == (8, SIZE, SIZE)
    single, single_ranks = A.xrai(MODEL, X[2], target=0, return_xrai_segments=True, **SMALL)
    np.testing.assert_allclose(single, mask[2], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(single_ranks, ranks[2])


def test_graph_model_channels_first_and_precomputed_inputs_agree():
    x = X[:2]
    seq, seq_ranks = A.xrai(MODEL, x, return_xrai_segments=True, **SMALL)
    for model, xs in ((planted(graph=True), x), (planted("channels_first"), x.transpose(0, 3, 1, 2))):
        mask, ranks = A.xrai(model, xs, return_xrai_segments=True, **SMALL)
        np.testing.assert_allclose(mask, seq, rtol=1e-10, atol=1e-14)
        np.testing.assert_array_equal(ranks, seq_ranks)
    # the pieces by hand: IG from the per-image min and max baselines, max over channels, PAIR's segments
    steps, seg_args = SMALL["steps"], {k: v for k, v in SMALL.items() if k not in ("steps", "min_pixel_diff")}
    ig = np.mean([A.integrated_gradients(MODEL, x, baseline=b(x, axis=(1, 2, 3), keepdims=True), steps=steps)
                  for b in (np.min, np.max)], axis=0)
    segments = [A.xrai_segments(im, **seg_args) for im in x]
    by_parts = A.xrai(MODEL, x, segments=segments, base_attribution=ig, min_pixel_diff=4)
    np.testing.assert_allclose(by_parts, seq, rtol=1e-12, atol=1e-15)
    stacks = A.xrai(MODEL, x, return_xrai_segments=True, flatten_xrai_segments=False, **SMALL)[1]
    for stack, ranks in zip(stacks, seq_ranks, strict=True):
        np.testing.assert_array_equal(stack, ranks[None] == np.arange(1, len(stack) + 1)[:, None, None])


def test_segments_partition_each_scale_then_dilate_by_a_disk():
    from scipy import ndimage
    from skimage.morphology import disk

    plain = A.xrai_segments(X[0], resize_image=False, scales=(20, 100), min_size=6, dilation_rad=0)
    scale_of = np.cumsum(plain.sum(axis=(1, 2)))  # masks of one scale are disjoint and cover the image
    assert plain.sum() == 2 * SIZE * SIZE and SIZE * SIZE in scale_of
    dilated = A.xrai_segments(X[0], resize_image=False, scales=(20, 100), min_size=6, dilation_rad=2)
    np.testing.assert_array_equal(dilated, ndimage.binary_dilation(plain, disk(2)[None]))
    resized = A.xrai_segments(X[0], scales=(500,), dilation_rad=0)  # segmented at 224 x 224, labels resized back
    assert resized.shape[1:] == (SIZE, SIZE) and (resized.sum(axis=0) == 1).all()


def test_ranking_partitions_the_image_by_non_increasing_gain():
    rng = np.random.default_rng(0)
    attr = rng.standard_normal((SIZE, SIZE))
    segments = A.xrai_segments(X[3], **{k: v for k, v in SMALL.items() if k not in ("steps", "min_pixel_diff")})
    for algorithm in ("full", "fast"):
        mask, stack = A.xrai_regions(attr, segments, min_pixel_diff=6, algorithm=algorithm,
                                     flatten_xrai_segments=False)
        assert (stack.sum(axis=0) == 1).all()  # every pixel in exactly one region
        gains = np.array([mask[s][0] for s in stack])
        for s, g in zip(stack, gains, strict=True):  # the region's pixels hold its gain, the mean of a over it
            np.testing.assert_array_equal(mask[s], g)
            np.testing.assert_allclose(g, attr[s].mean(), rtol=1e-12)
        assert (np.diff(gains[:-1]) <= 0).all() and len(gains) > 3  # ranked; a never-added rest comes last
        np.testing.assert_allclose(mask.sum(), attr.sum(), rtol=1e-12)  # the map keeps the attribution's sum
    # the gains need not fall in the order of addition (the docstring's example): hence the sort
    mask, ranks = A.xrai_regions(np.array([[10.0, 0.0, 8.0]]), np.array([[[1, 1, 0]], [[0, 1, 1]]], bool),
                                 min_pixel_diff=1)
    np.testing.assert_array_equal(mask, [[5.0, 5.0, 8.0]])
    np.testing.assert_array_equal(ranks, [[2, 2, 1]])


def pair_xrai(attr, segs, area_perc_th=1.0, min_pixel_diff=50):
    """PAIR saliency v0.2.1 ``XRAI._xrai`` with ``_gain_density``, transcribed loop for loop."""
    output_attr = -np.inf * np.ones(shape=attr.shape, dtype=float)
    current_area_perc = 0.0
    current_mask = np.zeros(attr.shape, dtype=bool)
    masks_trace = []
    remaining_masks = dict(enumerate(segs))
    while current_area_perc <= area_perc_th:
        best_gain, best_key, remove_key_queue = -np.inf, None, []
        for mask_key, mask in remaining_masks.items():
            diff = np.logical_and(mask, np.logical_not(current_mask))
            if np.sum(diff) < min_pixel_diff:
                remove_key_queue.append(mask_key)
                continue
            gain = attr[diff].mean()
            if gain > best_gain:
                best_gain, best_key = gain, mask_key
        for key in remove_key_queue:
            del remaining_masks[key]
        if not remaining_masks:
            break
        added_mask = remaining_masks[best_key]
        mask_diff = np.logical_and(added_mask, np.logical_not(current_mask))
        masks_trace.append((mask_diff, best_gain))
        current_mask = np.logical_or(current_mask, added_mask)
        current_area_perc = np.mean(current_mask)
        output_attr[mask_diff] = best_gain
        del remaining_masks[best_key]
    return _pair_finish(attr, output_attr, masks_trace)


def pair_xrai_fast(attr, segs, min_pixel_diff=50):
    """PAIR saliency v0.2.1 ``XRAI._xrai_fast`` with ``_gain_density``, transcribed."""
    output_attr = -np.inf * np.ones(shape=attr.shape, dtype=float)
    current_mask = np.zeros(attr.shape, dtype=bool)
    masks_trace = []
    seg_attrs = [attr[seg].mean() for seg in segs]
    segs, seg_attrs = list(zip(*sorted(zip(segs, seg_attrs, strict=True), key=lambda x: -x[1]), strict=True))
    for added_mask in segs:
        mask_diff = np.logical_and(added_mask, np.logical_not(current_mask))
        if np.sum(mask_diff) < min_pixel_diff:
            continue
        mask_gain = attr[mask_diff].mean()
        masks_trace.append((mask_diff, mask_gain))
        output_attr[mask_diff] = mask_gain
        current_mask = np.logical_or(current_mask, added_mask)
    return _pair_finish(attr, output_attr, masks_trace)


def _pair_finish(attr, output_attr, masks_trace):
    uncomputed_mask = output_attr == -np.inf
    if np.any(uncomputed_mask):
        output_attr[uncomputed_mask] = attr[uncomputed_mask].mean()
    masks_trace = [v[0] for v in sorted(masks_trace, key=lambda x: -x[1])]
    if np.any(uncomputed_mask):
        masks_trace.append(uncomputed_mask)
    attr_ranks = np.zeros(shape=attr.shape, dtype=int)
    for i, mask in enumerate(masks_trace):
        attr_ranks[mask] = i + 1
    return output_attr, attr_ranks


def random_segments(rng, n, shape):
    """``n`` overlapping random rectangles plus one full-image mask (so every pixel can be reached)."""
    masks = np.zeros((n + 1,) + shape, bool)
    for m in masks[:n]:
        (r0, r1), (c0, c1) = (np.sort(rng.choice(s + 1, 2, replace=False)) for s in shape)
        m[r0:r1, c0:c1] = True
    masks[n] = True
    return masks


def test_vectorised_greedy_equals_pairs_loop():
    rng = np.random.default_rng(3)
    shape = (12, 14)
    for trial in range(6):
        segments = random_segments(rng, 30, shape)
        integer = trial % 2 == 0  # integer attributions: many density ties (PAIR keeps the first segment)
        attr = rng.integers(-4, 5, shape).astype(np.float64) if integer else rng.standard_normal(shape)
        for threshold, min_diff in ((1.0, 1), (1.0, 8), (0.4, 3), (0.0, 5)):
            want = pair_xrai(attr, list(segments), threshold, min_diff)
            got = A.xrai_regions(attr, segments, threshold, min_diff)
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_array_equal(got[0], want[0])  # bit for bit: the same sums in the same order
        want = pair_xrai_fast(attr, list(segments), 3)
        got = A.xrai_regions(attr, segments, min_pixel_diff=3, algorithm="fast")
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    assert not np.array_equal(pair_xrai(attr, list(segments), 1.0, 1)[1], pair_xrai_fast(attr, list(segments), 1)[1])


@pytest.mark.parametrize("kwargs, match", [
    ({"algorithm": "ful"}, "algorithm='ful' is not one of 'full', 'fast'; did you mean 'full'"),
    ({"min_pixel_diff": 0}, "min_pixel_diff must be an integer >= 1; got 0"),
    ({"area_threshold": 1.5}, r"area_threshold must be in \[0.0, 1.0\]; got 1.5"),
    ({"algorithm": "fast", "area_threshold": 0.5}, "area_threshold=0.5 needs algorithm='full'"),
    ({"steps": 0}, "steps must be an integer >= 1; got 0"),
    ({"baselines": [np.zeros((3, 3, 1))]}, r"baselines\[0\] of shape \(3, 3, 1\) does not broadcast"),
    ({"baselines": np.zeros(3)}, "baselines must be None or a non-empty list"),
    ({"base_attribution": np.zeros((SIZE, SIZE))}, "base_attribution must have the shape of x"),
    ({"segments": np.ones((2, SIZE, SIZE))}, "segments must be a boolean array"),
    ({"scales": ()}, "scales must be a non-empty tuple or list of positive numbers; got ()"),
    ({"dilation_rad": -1}, "xrai: dilation_rad must be an integer >= 0; got -1"),
    ({"flatten_xrai_segments": "yes"}, "flatten_xrai_segments must be True or False"),
    ({"batch_size": 0, "base_attribution": X[0]}, "xrai: batch_size must be an integer >= 1; got 0"),
])
def test_bad_options_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        A.xrai(MODEL, X[0], **{"steps": 2, **kwargs})


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"segments for a batch of 2 images must be a list of 2 entries"):
        A.xrai(MODEL, X[:2], segments=np.ones((1, SIZE, SIZE), bool), steps=2)
    with pytest.raises(ValueError, match=r"segments must be a boolean array \(n, H, W\).*\(2, 16, 15\)"):
        A.xrai_regions(np.zeros((SIZE, SIZE)), np.ones((2, SIZE, SIZE - 1), bool))
    dense = nn.Sequential([nn.Input((5,)), nn.Dense(2)])
    with pytest.raises(ValueError, match="xrai: x must hold 2-D images"):
        A.xrai(dense, np.zeros((3, 5)))

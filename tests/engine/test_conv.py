"""The convolution family against JAX in float64: forward, vjps, adjoints, second order, bad input."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from agreement import Tally, rel_err
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jax import lax

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.gradcheck import assert_gradcheck

jax.config.update("jax_enable_x64", True)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATS = Tally("conv (vs JAX/keras)")
record = STATS.record
SPEC = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
SPEC_FIRST = {1: ("NCW", "WIO", "NCW"), 2: ("NCHW", "HWIO", "NCHW"), 3: ("NCDHW", "DHWIO", "NCDHW")}


def jax_conv(x, w, b, strides, pads, dilation, groups, fmt):
    d = w.ndim - 2
    spec = SPEC[d] if fmt == "channels_last" else SPEC_FIRST[d]
    y = lax.conv_general_dilated(x, w, strides, list(pads), rhs_dilation=dilation, dimension_numbers=spec,
                                 feature_group_count=groups)
    if b is not None:
        y = y + (b if fmt == "channels_last" else b.reshape((-1,) + (1,) * d))
    return y


@st.composite
def conv_configs(draw):
    d = draw(st.integers(1, 3))
    hi = {1: 12, 2: 8, 3: 5}[d]
    sizes = tuple(draw(st.integers(1, hi)) for _ in range(d))
    ksize = tuple(draw(st.integers(1, n + 2)) for n in sizes)  # 1 up to past the input
    strides = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(d))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    modes = ["valid", "same", "explicit"] + (["causal"] if d == 1 else [])
    mode = draw(st.sampled_from(modes))
    padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(d)) if mode == "explicit" \
        else mode
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    use_bias = draw(st.booleans())
    try:
        pads = tuple(tg.conv_padding(n, k, s, p if mode == "explicit" else mode, r)
                     for n, k, s, r, p in zip(sizes, ksize, strides, dilation,
                                              padding if mode == "explicit" else [None] * d, strict=False))
        for n, k, s, r, p in zip(sizes, ksize, strides, dilation, pads, strict=False):
            tg.conv_output_size(n, k, s, p, r)
    except ValueError:
        assume(False)
    return dict(d=d, sizes=sizes, ksize=ksize, strides=strides, dilation=dilation, groups=groups, cg=cg, og=og,
                padding=padding, pads=pads, fmt=fmt, use_bias=use_bias, seed=draw(st.integers(0, 2**16)))


def make_inputs(cfg):
    rng = np.random.default_rng(cfg["seed"])
    c, f = cfg["groups"] * cfg["cg"], cfg["groups"] * cfg["og"]
    shape = (2,) + cfg["sizes"] + (c,) if cfg["fmt"] == "channels_last" else (2, c) + cfg["sizes"]
    x = rng.standard_normal(shape)
    w = rng.standard_normal(cfg["ksize"] + (cfg["cg"], f))
    b = rng.standard_normal(f) if cfg["use_bias"] else None
    return rng, x, w, b


@SETTINGS
@given(conv_configs())
def test_conv_forward_and_vjps_match_jax(cfg):
    rng, x, w, b = make_inputs(cfg)
    args = dict(strides=cfg["strides"], padding=cfg["padding"], dilation_rate=cfg["dilation"], groups=cfg["groups"],
                data_format=cfg["fmt"])
    tx, tw = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    tb = tg.Tensor(b, requires_grad=True) if b is not None else None
    y = F.conv(tx, tw, tb, **args)

    def ref(x, w, b):
        return jax_conv(x, w, b, cfg["strides"], cfg["pads"], cfg["dilation"], cfg["groups"], cfg["fmt"])

    def forward_and_vjp(x, w, b, ct):  # one jit: one XLA compile per configuration
        y_ref, vjp = jax.vjp(ref, x, w, b) if b is not None else jax.vjp(lambda x, w: ref(x, w, None), x, w)
        return y_ref, vjp(ct)

    ct = rng.standard_normal(y.shape)
    y_ref, grads = jax.jit(forward_and_vjp)(x, w, b, ct)
    errors = [rel_err(y.data, y_ref)]
    y.backward(ct)
    errors += [rel_err(tx.grad, grads[0]), rel_err(tw.grad, grads[1])]
    if b is not None:
        errors.append(rel_err(tb.grad, grads[2]))
    assert y.dtype == np.float64
    record(*errors)


# -- relations between the wrappers -----------------------------------------------------------------------------
def test_conv1d_equals_conv2d_with_height_one():
    rng = np.random.default_rng(0)
    x, k, b = rng.standard_normal((3, 11, 4)), rng.standard_normal((3, 4, 6)), rng.standard_normal(6)
    y1 = F.conv1d(x, k, b, strides=2, padding="same", dilation_rate=1)
    y2 = F.conv2d(x[:, None], k[None], b, strides=(1, 2), padding="same")
    np.testing.assert_allclose(y1.data, y2.data[:, 0], rtol=1e-13, atol=1e-13)


def test_depthwise_matches_grouped_jax_conv():
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((3, 3, 3, 2))
    tx, tk = tg.Tensor(x, requires_grad=True), tg.Tensor(k, requires_grad=True)
    y = F.depthwise_conv2d(tx, tk, strides=2, padding="same")

    def ref(x, k):
        return lax.conv_general_dilated(x, k.reshape(3, 3, 1, 6), (2, 2), [(1, 1), (0, 1)],
                                        dimension_numbers=SPEC[2], feature_group_count=3)

    y_ref, vjp = jax.vjp(ref, x, k)
    ct = rng.standard_normal(y.shape)
    y.backward(ct)
    gx, gk = vjp(ct)
    record(rel_err(y.data, y_ref), rel_err(tx.grad, gx), rel_err(tk.grad, gk))


def test_causal_sees_only_the_past():
    x = np.zeros((1, 8, 1))
    x[0, 5, 0] = 1.0
    y = F.conv1d(x, np.ones((3, 1, 1)), padding="causal", dilation_rate=2).data[0, :, 0]
    assert y.shape == (8,) and np.array_equal(np.nonzero(y)[0], [5, 7])


def test_float32_stays_float32():
    x = tg.Tensor(np.ones((2, 6, 6, 2), np.float32), requires_grad=True)
    k = tg.Tensor(np.ones((3, 3, 2, 4), np.float32), requires_grad=True)
    b = tg.Tensor(np.zeros(4, np.float32), requires_grad=True)
    y = F.conv2d(x, k, b, padding="same")
    y.sum().backward()
    assert y.dtype == x.grad.dtype == k.grad.dtype == b.grad.dtype == np.float32


def test_gradcheck_through_conv():
    rng = np.random.default_rng(5)
    x = tg.Tensor(rng.standard_normal((1, 5, 4, 2)))
    k = tg.Tensor(rng.standard_normal((2, 3, 2, 3)))
    b = tg.Tensor(rng.standard_normal(3))
    assert_gradcheck(lambda x: F.conv2d(x, k, b, strides=(2, 1), padding="same", dilation_rate=(1, 2)).tanh(),
                     [x], params={"kernel": k, "bias": b})



@pytest.mark.parametrize("ksize, padding, dilation", [((3, 3), "same", (1, 1)), ((2, 4), "same", (2, 1)),
                                                      ((3,), "causal", (2,))])
def test_input_gradient_by_shifted_adds_matches_jax(ksize, padding, dilation):
    """Stride 1, output grid = input grid, C_out >= C_in: the input gradient adds every tap at one flat offset
    (``conv._add_shifted``); the cells that would wrap into the next row, image or past the ends must add 0."""
    d = len(ksize)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3,) + (5, 4)[:d] + (2,))
    w = rng.standard_normal(ksize + (2, 3))
    ct = rng.standard_normal(x.shape[:-1] + (3,))
    tx = tg.Tensor(x, requires_grad=True)
    y = F.conv(tx, tg.Tensor(w), padding=padding, dilation_rate=dilation)
    y.backward(ct)
    pads = [tg.conv_padding(n, k, 1, padding, r) for n, k, r in zip(x.shape[1:-1], ksize, dilation, strict=True)]
    _, vjp = jax.vjp(lambda x: jax_conv(x, w, None, (1,) * d, pads, dilation, 1, "channels_last"), x)
    assert y.shape == ct.shape and rel_err(tx.grad, vjp(ct)[0]) < 1e-12

def test_negative_control_wrong_orientation_is_caught():
    """A convolution (flipped kernel) instead of a cross-correlation differs from JAX: the check can fail."""
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal((1, 6, 6, 1)), rng.standard_normal((3, 3, 1, 1))
    flipped = F.conv2d(x, k[::-1, ::-1].copy()).data
    assert rel_err(flipped, jax_conv(x, k, None, (1, 1), [(0, 0)] * 2, (1, 1), 1, "channels_last")) > 1e-2


# -- arithmetic ---------------------------------------------------------------------------------------------------
def test_conv_arithmetic():
    assert tg.conv_output_size(28, 3, padding="same") == 28
    assert tg.conv_output_size(7, 3, strides=2) == 3 and tg.conv_output_size(8, 3, strides=2) == 3
    assert tg.conv_output_size(10, 3, strides=2, padding="same") == 5
    assert tg.conv_padding(10, 4, 2, "same") == (1, 1) and tg.conv_padding(6, 4, 1, "same") == (1, 2)
    assert tg.conv_padding(9, 3, 1, "causal", dilation_rate=2) == (4, 0)
    assert tg.conv_output_size(5, 3, padding=2) == 7 and tg.conv_output_size(5, 3, padding=(0, 1)) == 4
    assert tg.receptive_field([(3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1)]) == 10
    for n, k, s in [(28, 3, 1), (13, 4, 3), (9, 9, 2), (1, 1, 1)]:
        assert tg.conv_output_size(n, k, s) == math.floor((n - k) / s) + 1


# -- bad input ----------------------------------------------------------------------------------------------------
X4 = np.zeros((1, 8, 8, 3))
K4 = np.zeros((3, 3, 4, 8))


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(X4, K4), r"conv2d: input has 3 channels but kernel expects 4 \(kernel shape \(3, 3, 4, 8\)\)"),
    (lambda: F.conv2d(X4, np.zeros((9, 9, 3, 2))), r"conv2d: the kernel spans 9 cells .* padded input has only 8"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), strides=0), r"conv2d: strides must be an integer >= 1; got 0"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), dilation_rate=(1, -2)), r"conv2d: dilation_rate must hold"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), padding="causal"), r"conv2d: padding='causal' is only .* 1-D"),
    (lambda: F.conv2d(np.zeros((1, 8, 8, 4)), np.zeros((3, 3, 2, 6)), groups=3),
     r"conv2d: groups=3 must divide the input's 4 channels"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), padding="smae"), r"conv2d: padding='smae' .* did you mean 'same'"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), data_format="channels_lst"),
     r"conv2d: data_format='channels_lst' .* did you mean 'channels_last'"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3))), r"conv2d: kernel must have rank 4"),
    (lambda: F.conv1d(X4, np.zeros((3, 3, 2))), r"conv1d: x must have rank 3"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), np.zeros(3)), r"conv2d: bias must have shape \(2,\)"),
    (lambda: F.depthwise_conv2d(X4, np.zeros((3, 3, 2, 2))), r"depthwise_conv2d: input has 3 channels"),
    (lambda: F.conv_transpose(X4, np.zeros((3, 3, 2, 4))), r"conv_transpose: input has 3 channels but kernel"),
    (lambda: F.conv_transpose(X4, np.zeros((3, 3, 2, 3)), strides=2, output_padding=2),
     r"conv_transpose: output_padding must be smaller than strides"),
    (lambda: F.conv2d(X4, np.zeros((3, 3, 3, 2)), padding=-1), r"conv2d: padding=-1 must be non-negative"),
])
def test_bad_input_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_zz_report():
    """Prints how many configurations were compared with JAX and the worst relative error (run with -s)."""
    STATS.report()

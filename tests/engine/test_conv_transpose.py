"""Transposed convolution (Keras' shapes), the conv/conv_transpose adjoint and second order through conv."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest
from agreement import Tally, rel_err
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_conv import conv_configs, jax_conv, make_inputs

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.conv_arithmetic import ConvGeometry
from tinygrad_cnn.ops import conv as conv_ops

jax.config.update("jax_enable_x64", True)

STATS = Tally("conv_transpose/second order (vs JAX/keras)")
record = STATS.record


@settings(max_examples=5, deadline=None)
@given(conv_configs())
def test_second_order_through_conv_matches_jax(cfg):
    rng, x, w, _ = make_inputs(cfg)
    args = dict(strides=cfg["strides"], padding=cfg["padding"], dilation_rate=cfg["dilation"], groups=cfg["groups"],
                data_format=cfg["fmt"])
    y_shape = jax.eval_shape(lambda x, w: jax_conv(x, w, None, cfg["strides"], cfg["pads"], cfg["dilation"],
                                                   cfg["groups"], cfg["fmt"]), x, w).shape
    c, r1, r2 = rng.standard_normal(y_shape), rng.standard_normal(x.shape), rng.standard_normal(w.shape)

    def ref(x, w):
        def loss(x, w):
            y = jax_conv(x, w, None, cfg["strides"], cfg["pads"], cfg["dilation"], cfg["groups"], cfg["fmt"])
            return (jax.numpy.tanh(y) * c).sum()
        gx, gw = jax.grad(loss, argnums=(0, 1))(x, w)
        return (gx * r1).sum() + (gw * r2).sum()

    hx, hw = jax.jit(jax.grad(ref, argnums=(0, 1)))(x, w)
    tx, tw = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    loss = (F.conv(tx, tw, **args).tanh() * tg.Tensor(c)).sum()
    gx, gw = tg.grad(loss, [tx, tw], create_graph=True)
    m = (gx * tg.Tensor(r1)).sum() + (gw * tg.Tensor(r2)).sum()
    ex, ew = tg.grad(m, [tx, tw])
    record(rel_err(ex.data, hx), rel_err(ew.data, hw))


@settings(max_examples=30, deadline=None)
@given(conv_configs())
def test_conv_transpose_is_the_adjoint(cfg):
    """<conv(x), y> = <x, conv_transpose(y)> for the internal pair, whatever the geometry."""
    rng, x, w, _ = make_inputs(cfg)
    if cfg["fmt"] == "channels_first":
        x = np.moveaxis(x, 1, -1)
    geo = ConvGeometry(w.shape[:-2], cfg["strides"], cfg["dilation"], cfg["pads"], cfg["groups"])
    y = conv_ops.conv(tg.Tensor(x), tg.Tensor(w), geo=geo).data
    v = rng.standard_normal(y.shape)
    z = conv_ops.conv_transpose(tg.Tensor(v), tg.Tensor(w), x.shape, geo=geo).data
    lhs, rhs = float((y * v).sum()), float((x * z).sum())
    record(abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-12))


# -- transposed convolution: Keras' output shapes ---------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_ops():
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        pytest.skip("keras comparison needs KERAS_BACKEND=jax")
    os.environ["KERAS_BACKEND"] = "jax"
    keras = pytest.importorskip("keras")
    return keras.ops


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(d=st.integers(1, 3), data=st.data())
def test_conv_transpose_matches_keras(keras_ops, d, data):
    sizes = tuple(data.draw(st.integers(1, {1: 7, 2: 5, 3: 3}[d])) for _ in range(d))
    ksize = tuple(data.draw(st.integers(1, 4)) for _ in range(d))
    s = data.draw(st.integers(1, 3))
    r = data.draw(st.sampled_from([1, 1, 2])) if s == 1 else 1  # keras refuses strides > 1 with dilation > 1
    padding = data.draw(st.sampled_from(["valid", "same"]))
    op = data.draw(st.sampled_from([None] + list(range(s))))
    fmt = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    cin, filters = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = rng.standard_normal((2,) + sizes + (cin,) if fmt == "channels_last" else (2, cin) + sizes)
    k, b = rng.standard_normal(ksize + (filters, cin)), rng.standard_normal(filters)
    # 'same' with output_padding 0 gives (n - 1) * s + op cells on an axis of even effective kernel: none for n = 1
    even_kernel_on_a_single_cell = any(n == 1 and (kk - 1) * r % 2 == 1 for n, kk in zip(sizes, ksize, strict=True))
    assume(not (padding == "same" and op == 0 and even_kernel_on_a_single_cell))

    def ref(x, k, b):
        y = keras_ops.conv_transpose(x, k, strides=s, padding=padding, output_padding=op, data_format=fmt,
                                     dilation_rate=r)
        return y + (b if fmt == "channels_last" else b.reshape((-1,) + (1,) * d))

    y_ref, vjp = jax.vjp(ref, x, k, b)
    tx, tk, tb = (tg.Tensor(a, requires_grad=True) for a in (x, k, b))
    y = F.conv_transpose(tx, tk, tb, strides=s, padding=padding, output_padding=op, dilation_rate=r,
                         data_format=fmt)
    assert y.shape == y_ref.shape
    ct = rng.standard_normal(y.shape)
    y.backward(ct)
    gx, gk, gb = vjp(ct)
    record(rel_err(y.data, y_ref), rel_err(tx.grad, gx), rel_err(tk.grad, gk), rel_err(tb.grad, gb))


def test_conv_transpose_valid_is_adjoint_of_conv():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 9, 8, 3))          # conv input (filters of the transposed conv)
    k = rng.standard_normal((3, 2, 3, 5))          # (kh, kw, filters, in_channels)
    y = F.conv2d(z, k, strides=2).data             # (2, 4, 4, 5)
    v = rng.standard_normal(y.shape)
    zt = F.conv_transpose(v, k, strides=2, output_padding=0).data
    assert zt.shape == z.shape
    assert np.isclose((y * v).sum(), (z * zt).sum(), rtol=1e-12)




def test_zz_report():
    """Prints how many configurations were compared with JAX/keras and the worst relative error (run with -s)."""
    STATS.report()

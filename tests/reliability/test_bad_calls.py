"""Bad calls across the public API: each raises the right exception with a message that names the function or
layer, the argument and the value (and, for a misspelt name, the nearest valid one).

One row per bad call: ``(id, call, exception type, regex)``. The regex is searched in ``str(exc)``.
``test_row_count`` pins how many rows there are (the issue asks for >= 60).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, ops, optim
from tinygrad_cnn.gradcheck import gradcheck

T = tg.Tensor
X2 = T(np.zeros((2, 3), np.float32))
X4 = T(np.zeros((2, 6, 6, 3), np.float32))
K = T(np.zeros((3, 3, 3, 4), np.float32))
LABELS = np.array([0, 1])


def _param():
    return T(np.zeros(3), requires_grad=True)  # float64: gradcheck rows need no float32 warning


def _model():
    return nn.Sequential([nn.Input((6, 6, 3)), nn.Conv2D(2, 3, name="c1"), nn.Flatten(name="flat"),
                          nn.Dense(3, name="out")])


def _compiled(loss="sparse_categorical_crossentropy"):
    m = _model()
    m.compile("sgd", loss)
    return m


XS, YS = np.zeros((4, 6, 6, 3), np.float32), np.zeros(4, np.int64)


def _fit(**kwargs):
    return _compiled().fit(XS, kwargs.pop("y", YS), verbose=kwargs.pop("verbose", 0), **kwargs)


def _optimizer_step_with_bad_grad():
    p = _param()
    opt = optim.SGD([p])
    p.grad = np.zeros(5, np.float32)
    opt.step()


def _backward_after(write):
    """A call that records ``p * p``, applies ``write(p)`` (an in-place write) and then runs backward."""
    def call():
        p = _param()
        loss = (p * p).sum()
        write(p)
        loss.backward()
    return call


def _times_ten(p):
    p.data *= 10  # the augmented assignment goes through the Tensor's data setter


def _sgd_step(p):
    p.grad = np.ones(3)
    optim.SGD([p]).step()


def _step_with_schedule(schedule):
    p = _param()
    p.grad = np.ones(3)
    optim.SGD([p], learning_rate=schedule).step()


def _layer_twice():
    dense = nn.Dense(3, name="twice")
    nn.Sequential([nn.Input((3,)), dense, dense])


def _jops():
    from jax_ref import ops as jops
    return jops


def _attr():
    from jax_ref import attribution
    return attribution


def _twin_train(y=None, **kwargs):
    import jax_ref
    return jax_ref.train(_model(), kwargs.pop("x", XS), YS if y is None else y, batch_size=kwargs.pop("batch_size", 2),
                         steps=kwargs.pop("steps", 1), verbose=False, **kwargs)


def _twin(fn, *args, **kwargs):
    import jax_ref
    return getattr(jax_ref, fn)(_model(), *args, **kwargs)


IMG = np.random.default_rng(0).standard_normal((6, 6, 3)).astype(np.float32)


def _attribution_image_rows():
    """Every attribution function that takes images, given one that does not fit ``_model()`` (built for
    (6, 6, 3)): one wrong channel count, one size its Dense layer cannot take."""
    calls = {
        "saliency": lambda x: _attr().saliency(_model(), x),
        "smoothgrad": lambda x: _attr().smoothgrad(_model(), x, n=2),
        "integrated_gradients": lambda x: _attr().integrated_gradients(_model(), x, steps=2),
        "completeness": lambda x: _attr().completeness(_model(), x, np.zeros_like(x)),
        "occlusion": lambda x: _attr().occlusion(_model(), x, window=2),
        "grad_cam": lambda x: _attr().grad_cam(_model(), x, "c1"),
        "feature_maps": lambda x: _attr().feature_maps(_model(), x),
    }
    bad = {
        "channels": (np.zeros((6, 6, 1), np.float32), r"x has 1 channel per image \(image shape \(6, 6, 1\)\) but the "
                     r"model takes 3 \(images of shape \(6, 6, 3\), channels_last\)$"),
        "size": (np.zeros((2, 5, 5, 3), np.float32), r"x holds images of shape \(5, 5, 3\) that layer 'out' cannot "
                 r"take \(the model was built for images of shape \(6, 6, 3\)\): dense: "),
    }
    return [(f"{fn.replace('_', '-')}-x-{kind}", functools.partial(call, x), ValueError, rf"^{fn}: {pattern}")
            for fn, call in calls.items() for kind, (x, pattern) in bad.items()]


ROWS = [
    # -- Tensor, operators and methods ---------------------------------------------------------------------
    ("Tensor-str", lambda: T("abc"), TypeError, r"Tensor: data must be numbers.*got str"),
    ("Tensor-int-requires-grad", lambda: T(np.arange(3), requires_grad=True), TypeError,
     r"Tensor: requires_grad=True needs a floating dtype; got int64"),
    ("reshape-size", lambda: X2.reshape(4, 2), ValueError, r"reshape: cannot reshape .*\(2, 3\).* into shape \(4, 2\)"),
    ("reshape-float", lambda: X2.reshape(2.5, 3), ValueError, r"reshape: shape=\(2.5, 3\) must hold non-negative ints"),
    ("reshape-minus-two", lambda: X2.reshape(-2, 3), ValueError, r"reshape: shape=\(-2, 3\) .*at most one -1"),
    ("transpose-axes", lambda: X2.transpose(0, 0), ValueError, r"transpose: axes \(0, 0\) are not a permutation"),
    ("sum-axis-range", lambda: X2.sum(axis=5), ValueError, r"sum: axis 5 is out of range for an array of rank 2"),
    ("sum-axis-float", lambda: X2.sum(axis=1.0), TypeError, r"sum: axis must be None, an int .*got 1.0"),
    ("mean-axis-repeat", lambda: X2.mean(axis=(1, -1)), ValueError, r"mean: axis \(1, -1\) repeats an axis"),
    ("max-empty", lambda: T(np.zeros(0)).max(), ValueError,
     r"max: cannot reduce over axis 0 of size 0 \(input shape \(0,\)"),
    ("add-broadcast", lambda: X2 + T(np.zeros(4)), ValueError, r"add: operands with shapes \(2, 3\) and \(4,\) cannot"),
    ("matmul-inner", lambda: X2 @ T(np.zeros((4, 2))), ValueError,
     r"matmul: a has shape \(2, 3\) and b has shape \(4, 2\).*\(3\).*\(4\)"),
    ("pad-negative", lambda: X2.pad(-1), ValueError, r"pad: pad_width=-1 must hold non-negative integers"),
    ("pad-rank", lambda: X2.pad(((1, 1),) * 3), ValueError, r"pad: pad_width=.* one pair per axis of the rank-2"),
    ("clip-order", lambda: X2.clip(2, 1), ValueError, r"clip: a_min=2 must be <= a_max=1"),
    ("getitem-bounds", lambda: X2[5], IndexError, r"getitem: index \(5,\) is invalid for shape \(2, 3\)"),
    ("getitem-float-index", lambda: X2[np.array([0.5])], IndexError, r"getitem: index arrays .*got dtype float64"),
    ("astype-typo", lambda: X2.astype("floot32"), TypeError, r"astype: dtype='floot32' is not a NumPy dtype"),
    ("where-broadcast", lambda: ops.where(np.ones(5, bool), X2, X2), ValueError,
     r"where: condition, a and b with shapes \(5,\), \(2, 3\)"),
    ("concatenate-shapes", lambda: ops.concatenate([X2, T(np.zeros((2, 4)))]), ValueError,
     r"concatenate: shapes \[\(2, 3\), \(2, 4\)\] must agree.*axis=0"),
    ("stack-shapes", lambda: ops.stack([X2, T(np.zeros((3, 2)))]), ValueError,
     r"stack: all Tensors must have the same shape; got \[\(2, 3\), \(3, 2\)\]"),
    ("backward-non-scalar", lambda: (_param() * 2).backward(), ValueError,
     r"backward: output has shape \(3,\), so grad .* is required"),
    ("backward-grad-shape", lambda: (_param() * 2).backward(np.ones(4)), ValueError,
     r"backward: grad has shape \(4,\) but the output has shape \(3,\)"),
    ("grad-input-not-tensor", lambda: tg.grad((_param() * 2).sum(), [np.ones(3)]), TypeError,
     r"grad: inputs\[0\] must be a Tensor; got ndarray"),
    # -- functional ----------------------------------------------------------------------------------------
    ("relu-int", lambda: F.relu(np.arange(3)), TypeError, r"relu: x must have a floating dtype; got int64"),
    ("leaky-slope", lambda: F.leaky_relu(X2, -1), ValueError,
     r"leaky_relu: negative_slope must be in \[0.0, inf\]; got -1"),
    ("softmax-axis", lambda: F.softmax(X2, axis=2), ValueError, r"^softmax: axis=2 is out of range .*\(2, 3\)"),
    ("logsumexp-axis", lambda: F.logsumexp(X2, axis=3), ValueError, r"logsumexp: axis=3 is out of range"),
    ("ce-reduction-typo", lambda: F.cross_entropy(X2, LABELS, reduction="meen"), ValueError,
     r"cross_entropy: reduction='meen' is not one of .*did you mean 'mean'\?"),
    ("ce-label-range", lambda: F.cross_entropy(X2, np.array([0, 3])), ValueError,
     r"cross_entropy: labels must be class ids in \[0, 3\); got 3"),
    ("ce-label-negative", lambda: F.cross_entropy(X2, np.array([0, -1])), ValueError,
     r"cross_entropy: labels must be class ids in \[0, 3\); got -1"),
    ("ce-label-shape", lambda: F.cross_entropy(X2, np.array([0, 1, 2])), ValueError,
     r"cross_entropy: labels has shape \(3,\) but the predictions need \(2,\)"),
    ("ce-onehot-shape", lambda: F.cross_entropy(X2, np.zeros((2, 4))), ValueError,
     r"cross_entropy: one-hot labels have shape \(2, 4\) but the predictions have shape \(2, 3\)"),
    ("ce-from-logits-flag", lambda: F.cross_entropy(X2, LABELS, from_logits="yes"), TypeError,
     r"cross_entropy: from_logits must be True or False; got 'yes'"),
    ("mse-shape", lambda: F.mse(X2, np.zeros((2, 4))), ValueError,
     r"mse: predictions have shape \(2, 3\) but targets have shape \(2, 4\)"),
    ("dense-features", lambda: F.dense(X2, T(np.zeros((4, 2)))), ValueError,
     r"dense: input has 3 features .* kernel expects 4 \(kernel shape \(4, 2\)\)"),
    ("dense-bias", lambda: F.dense(X2, T(np.zeros((3, 2))), T(np.zeros(3))), ValueError,
     r"dense: bias must have shape \(2,\); got \(3,\)"),
    ("dropout-rate", lambda: F.dropout(X2, 1.5, True), ValueError, r"dropout: rate must be in \[0.0, 1.0\]; got 1.5"),
    ("dropout-seed", lambda: F.dropout(X2, 0.5, True, seed="a"), TypeError, r"dropout: seed must be .*got 'a'"),
    ("dropout-training-flag", lambda: F.dropout(X2, 0.5, "yes"), TypeError,
     r"dropout: training must be True or False; got 'yes'"),
    ("conv2d-padding-typo", lambda: F.conv2d(X4, K, padding="smae"), ValueError,
     r"conv2d: padding='smae' is not one of 'valid', 'same', 'causal'; did you mean 'same'\?"),
    ("conv2d-padding-float", lambda: F.conv2d(X4, K, padding=1.5), ValueError, r"conv2d: padding=1.5 must be 'valid'"),
    ("conv2d-data-format-typo", lambda: F.conv2d(X4, K, data_format="channel_last"), ValueError,
     r"conv2d: data_format='channel_last' is not one of .*did you mean 'channels_last'\?"),
    ("conv2d-channels", lambda: F.conv2d(X4, T(np.zeros((3, 3, 4, 4), np.float32))), ValueError,
     r"conv2d: input has 3 channels but kernel expects 4 \(kernel shape \(3, 3, 4, 4\)\)"),
    ("conv2d-strides-zero", lambda: F.conv2d(X4, K, strides=0), ValueError,
     r"conv2d: strides must be an integer >= 1; got 0"),
    ("conv2d-strides-length", lambda: F.conv2d(X4, K, strides=(1, 1, 1)), ValueError,
     r"conv2d: strides must be an int or a tuple of 2 ints .*got \(1, 1, 1\)"),
    ("conv2d-dilation", lambda: F.conv2d(X4, K, dilation_rate=0), ValueError,
     r"conv2d: dilation_rate must be an integer >= 1; got 0"),
    ("conv2d-groups", lambda: F.conv2d(X4, K, groups=2), ValueError,
     r"conv2d: groups=2 must divide the input's 3 channels"),
    ("conv2d-rank", lambda: F.conv2d(X2, K), ValueError, r"conv2d: x must have rank 4; got shape \(2, 3\)"),
    ("conv1d-kernel-rank", lambda: F.conv1d(X4, K), ValueError, r"conv1d: kernel must have rank 3 .*\(3, 3, 3, 4\)"),
    ("conv2d-causal", lambda: F.conv2d(X4, K, padding="causal"), ValueError,
     r"conv2d: padding='causal' is only defined for 1-D"),
    ("conv2d-bias", lambda: F.conv2d(X4, K, T(np.zeros(3, np.float32))), ValueError,
     r"conv2d: bias must have shape \(4,\) .*got \(3,\)"),
    ("conv2d-kernel-too-big", lambda: F.conv2d(X4, T(np.zeros((7, 7, 3, 4), np.float32))), ValueError,
     r"conv2d: the kernel spans 7 cells .*only 6"),
    ("conv2d-int-input", lambda: F.conv2d(np.zeros((2, 6, 6, 3), np.int64), K), TypeError,
     r"conv2d: x must have a floating dtype; got int64"),
    ("depthwise-channels", lambda: F.depthwise_conv2d(X4, T(np.zeros((3, 3, 2, 1), np.float32))), ValueError,
     r"depthwise_conv2d: input has 3 channels but kernel expects 2"),
    ("conv-transpose-output-padding",
     lambda: F.conv_transpose(X4, T(np.zeros((3, 3, 2, 3), np.float32)), strides=2, output_padding=2), ValueError,
     r"conv_transpose: output_padding must be smaller than strides.*output_padding=2 with strides=\(2, 2\)"),
    ("conv-transpose-causal", lambda: F.conv_transpose(X4, T(np.zeros((3, 3, 2, 3), np.float32)), padding="causal"),
     ValueError, r"conv_transpose: padding='causal' is not one of 'valid', 'same'"),
    ("max-pool-size", lambda: F.max_pool(X4, 0), ValueError, r"max_pool: pool_size must be an integer >= 1; got 0"),
    ("max-pool-padding-typo", lambda: F.max_pool(X4, 2, padding="vaild"), ValueError,
     r"max_pool: padding='vaild' is not one of 'valid', 'same'; did you mean 'valid'\?"),
    ("max-pool-rank", lambda: F.max_pool(X2, 2), ValueError, r"max_pool: x must have rank 3, 4 or 5 .*\(2, 3\)"),
    ("avg-pool-strides", lambda: F.avg_pool(X4, 2, strides=-1), ValueError,
     r"avg_pool: strides must be an integer >= 1; got -1"),
    ("lp-pool-p", lambda: F.lp_pool(X4, 2, p=0.5), ValueError, r"lp_pool: p must be in \[1.0, inf\); got 0.5"),
    ("global-avg-pool-format", lambda: F.global_avg_pool(X4, data_format="first"), ValueError,
     r"global_avg_pool: data_format='first' is not one of .*did you mean 'channels_first'\?"),
    # -- layers --------------------------------------------------------------------------------------------
    ("Conv2D-filters", lambda: nn.Conv2D(0, 3), ValueError, r"Conv2D '.*': filters must be an integer >= 1; got 0"),
    ("Conv2D-filters-float", lambda: nn.Conv2D(2.5, 3), TypeError,
     r"Conv2D '.*': filters must be an integer .*got 2.5"),
    ("Conv2D-kernel-size", lambda: nn.Conv2D(2, (3, 3, 3)), ValueError,
     r"Conv2D '.*': kernel_size must be an int or a tuple of 2 ints .*got \(3, 3, 3\)"),
    ("Conv2D-padding-typo", lambda: nn.Conv2D(2, 3, padding="smae"), ValueError,
     r"Conv2D '.*': padding='smae' is not one of 'valid', 'same'; did you mean 'same'\?"),
    ("Conv2D-activation-typo", lambda: nn.Conv2D(2, 3, activation="rleu"), ValueError,
     r"Conv2D '.*': activation='rleu' is not one of .*did you mean 'relu'\?"),
    ("Conv2D-initializer-typo", lambda: nn.Conv2D(2, 3, kernel_initializer="glorot_unifrom"), ValueError,
     r"Conv2D '.*': kernel_initializer='glorot_unifrom' .*did you mean 'glorot_uniform'\?"),
    ("Conv2D-regularizer-typo", lambda: nn.Conv2D(2, 3, kernel_regularizer="l3"), ValueError,
     r"Conv2D '.*': kernel_regularizer='l3' .*did you mean 'l2'\?"),
    ("Conv2D-constraint-typo", lambda: nn.Conv2D(2, 3, kernel_constraint="maxnrom"), ValueError,
     r"Conv2D '.*': kernel_constraint='maxnrom' .*did you mean 'max_norm'\?"),
    ("Conv2D-keyword-typo", lambda: nn.Conv2D(2, 3, strides_=2), ValueError,
     r"Conv2D: keyword argument='strides_' is not one of .*did you mean 'strides'\?"),
    ("Conv2D-use-bias", lambda: nn.Conv2D(2, 3, use_bias="no"), TypeError,
     r"Conv2D '.*': use_bias must be True or False; got 'no'"),
    ("Conv2D-groups", lambda: nn.Conv2D(3, 3, groups=2), ValueError,
     r"Conv2D '.*': filters=3 must be divisible by groups=2"),
    ("Conv2D-stride-and-dilation", lambda: nn.Conv2D(2, 3, strides=2, dilation_rate=2), ValueError,
     r"Conv2D '.*': strides > 1 together with dilation_rate > 1 .*strides=\(2, 2\), dilation_rate=\(2, 2\)"),
    ("Conv2D-causal", lambda: nn.Conv2D(2, 3, padding="causal"), ValueError,
     r"Conv2D '.*': padding='causal' is not one of 'valid', 'same'"),
    ("Conv2D-call-rank", lambda: nn.Conv2D(2, 3)(X2), ValueError,
     r"Conv2D '.*': expected an input of rank 4 .*\(2, 3\)"),
    ("Conv2DTranspose-output-padding", lambda: nn.Conv2DTranspose(2, 3, strides=2, output_padding=2), ValueError,
     r"Conv2DTranspose '.*': output_padding must be smaller than strides.*output_padding=\(2, 2\)"),
    ("DepthwiseConv2D-multiplier", lambda: nn.DepthwiseConv2D(3, depth_multiplier=0), ValueError,
     r"DepthwiseConv2D '.*': depth_multiplier must be an integer >= 1; got 0"),
    ("Dense-units", lambda: nn.Dense(0), ValueError, r"Dense '.*': units must be an integer >= 1; got 0"),
    ("Dense-activation-type", lambda: nn.Dense(2, activation=3), TypeError, r"Dense '.*': activation must be .*got 3"),
    ("Dense-dtype-typo", lambda: nn.Dense(2, dtype="flaot32"), ValueError,
     r"Dense: dtype='flaot32' is not one of 'float32', 'float64'; did you mean 'float32'\?"),
    ("Dense-name", lambda: nn.Dense(2, name=5), TypeError, r"Dense: name must be a string; got 5"),
    ("Dense-second-call-features", lambda: [d := nn.Dense(2), d(X2), d(T(np.zeros((2, 4), np.float32)))],
     ValueError, r"Dense '.*': expected axis -1 of the input to have size 3 .*got shape \(2, 4\)"),
    ("Dropout-rate", lambda: nn.Dropout(1.2), ValueError, r"Dropout '.*': rate must be in \[0.0, 1.0\]; got 1.2"),
    ("Dropout-seed", lambda: nn.Dropout(0.5, seed=-3), TypeError,
     r"Dropout '.*': seed must be a non-negative int .*got -3"),
    ("MaxPooling2D-padding-typo", lambda: nn.MaxPooling2D(2, padding="smae"), ValueError,
     r"MaxPooling2D '.*': padding='smae' .*did you mean 'same'\?"),
    ("AveragePooling2D-strides", lambda: nn.AveragePooling2D(2, strides=(1, 1, 1)), ValueError,
     r"AveragePooling2D '.*': strides must be an int or a tuple of 2 ints .*got \(1, 1, 1\)"),
    ("LPPooling2D-p", lambda: nn.LPPooling2D(p=0), ValueError, r"LPPooling2D '.*': p must be in \[1.0, inf\]; got 0"),
    ("GlobalMaxPooling2D-keepdims", lambda: nn.GlobalMaxPooling2D(keepdims="yes"), TypeError,
     r"GlobalMaxPooling2D '.*': keepdims must be True or False; got 'yes'"),
    ("Flatten-format-typo", lambda: nn.Flatten(data_format="first"), ValueError,
     r"Flatten '.*': data_format='first' .*did you mean 'channels_first'\?"),
    ("Activation-typo", lambda: nn.Activation("sigmod"), ValueError,
     r"Activation '.*': activation='sigmod' .*did you mean 'sigmoid'\?"),
    ("ReLU-max-value", lambda: nn.ReLU(max_value=-1), ValueError,
     r"ReLU '.*': max_value must be in \[0.0, inf\]; got -1"),
    ("Input-shape", lambda: nn.Input(shape=(0, 3)), ValueError,
     r"InputLayer '.*': batch_shape must be a tuple of positive ints .*\(None, 0, 3\)"),
    # -- Sequential: build, call, compile, fit, weights -----------------------------------------------------
    ("Sequential-layers-type", lambda: nn.Sequential(nn.Dense(2)), TypeError,
     r"Sequential '.*': layers must be a list of layers; got <Dense"),
    ("Sequential-not-a-layer", lambda: nn.Sequential([nn.Dense(2), "relu"]), TypeError,
     r"Sequential '.*': expected a Layer; got 'relu' of type str"),
    ("Sequential-input-late", lambda: nn.Sequential([nn.Dense(2), nn.Input((3,))]), ValueError,
     r"Sequential '.*': Input must come first"),
    ("build-shape", lambda: nn.Sequential([nn.Dense(2)]).build((None, -3)), ValueError,
     r"Sequential '.*': input_shape must be a tuple of positive ints .*\(None, -3\)"),
    ("build-rank", lambda: nn.Sequential([nn.Conv2D(2, 3)]).build((None, 5)), ValueError,
     r"Conv2D '.*': expected an input of rank 4 .*\(None, 5\)"),
    ("build-kernel-too-big", lambda: nn.Sequential([nn.Conv2D(2, 7)]).build((None, 5, 5, 1)), ValueError,
     r"Conv2D '.*': the kernel spans 7 cells .*only 5"),
    ("call-rank", lambda: _model()(X2), ValueError,
     r"Sequential '.*': expected inputs of shape \(None, 6, 6, 3\) \(rank 4\) for Conv2D 'c1'; got shape \(2, 3\)"),
    ("call-channels", lambda: _model()(T(np.zeros((2, 6, 6, 4), np.float32))), ValueError,
     r"Conv2D 'c1': expected axis 3 of the input to have size 3 .*got shape \(2, 6, 6, 4\)"),
    ("call-spatial", lambda: _model()(T(np.zeros((2, 8, 8, 3), np.float32))), ValueError,
     r"Dense 'out': expected axis -1 .*size 32.*got shape \(2, 72\).*built for inputs \(None, 6, 6, 3\)"),
    ("compile-loss-typo", lambda: _model().compile("adam", loss="sparse_categorical_crossentropyy"), ValueError,
     r"compile: loss='sparse_categorical_crossentropyy' .*did you mean 'sparse_categorical_crossentropy'\?"),
    ("compile-no-loss", lambda: _model().compile("adam"), ValueError, r"compile needs a loss"),
    ("compile-optimizer-typo", lambda: _model().compile("adma", loss="mse"), ValueError,
     r"compile: optimizer='adma' .*did you mean 'adam'\?"),
    ("compile-metric-typo", lambda: _model().compile("adam", loss="mse", metrics=["acuracy"]), ValueError,
     r"compile: metrics='acuracy' .*did you mean 'accuracy'\?"),
    ("fit-uncompiled", lambda: _model().fit(XS, YS), RuntimeError,
     r"call compile\(optimizer, loss, metrics\) before fit"),
    ("fit-batch-size", lambda: _fit(batch_size=0), ValueError, r"fit: batch_size must be an integer >= 1; got 0"),
    ("fit-epochs", lambda: _fit(epochs=-1), ValueError, r"fit: epochs must be an integer >= 0; got -1"),
    ("fit-lengths", lambda: _fit(y=YS[:3]), ValueError, r"fit: x has 4 examples but y has 3"),
    ("fit-validation-data", lambda: _fit(validation_data=np.zeros(3)), ValueError,
     r"fit: validation_data must be \(x_val, y_val\), \(x_val, y_val, sample_weight\) or an iterable"),
    ("fit-seed", lambda: _fit(seed="a"), TypeError, r"fit: seed must be a non-negative int or None; got 'a'"),
    ("fit-verbose", lambda: _fit(verbose="loud"), ValueError, r"fit: verbose must be 0, 1, 2 or 'auto'; got 'loud'"),
    ("fit-labels-range", lambda: _fit(y=np.full(4, 7)), ValueError,
     r"cross_entropy: labels must be class ids in \[0, 3\); got 7"),
    ("evaluate-batch-size", lambda: _compiled().evaluate(XS, YS, batch_size=-1), ValueError,
     r"evaluate: batch_size must be an integer >= 1; got -1"),
    ("predict-empty", lambda: _model().predict(np.zeros((0, 6, 6, 3))), ValueError,
     r"predict: x must be a non-empty array .*\(0, 6, 6, 3\)"),
    ("set-weights-count", lambda: _model().set_weights([]), ValueError,
     r"Sequential '.*': set_weights expects 4 arrays; got 0"),
    ("set-weights-shape", lambda: _model().set_weights([np.zeros(1)] * 4), ValueError,
     r"Conv2D 'c1' weight 'kernel' has shape \(3, 3, 3, 2\); got an array of shape \(1,\)"),
    ("load-weights-unbuilt", lambda: nn.Sequential([nn.Dense(2)]).load_weights("w.npz"), ValueError,
     r"load_weights: build the model '.*' before loading"),
    ("load-weights-directory", lambda: _model().load_weights("."), ValueError,
     r"load_weights: '\.' is not a readable \.npz weights file"),
    ("save-weights-missing-directory", lambda: _model().save_weights("no/such/dir/w.npz"), FileNotFoundError,
     r"save_weights: the directory '.*no/such/dir' of 'no/such/dir/w.npz' does not exist"),
    ("from-config-class-typo", lambda: nn.Sequential.from_config({"layers": [{"class_name": "Dens", "config": {}}]}),
     ValueError, r"nn.deserialize: class_name='Dens' .*did you mean 'dense'\?"),
    # -- optimizers ----------------------------------------------------------------------------------------
    ("SGD-learning-rate", lambda: optim.SGD([_param()], learning_rate=-1), ValueError,
     r"SGD: learning_rate must be in \[0.0, inf\); got -1"),
    ("SGD-learning-rate-type", lambda: optim.SGD([_param()], learning_rate="fast"), TypeError,
     r"SGD: learning_rate must be a number; got 'fast'"),
    ("SGD-momentum", lambda: optim.SGD([_param()], momentum=1.5), ValueError,
     r"SGD: momentum must be in \[0.0, 1.0\]; got 1.5"),
    ("Adam-b1", lambda: optim.Adam([_param()], b1=1.0), ValueError, r"Adam: b1 must be in \[0.0, 1.0\); got 1.0"),
    ("Adam-eps", lambda: optim.Adam([_param()], eps=-1e-8), ValueError,
     r"Adam: eps must be in \[0.0, inf\); got -1e-08"),
    ("AdamW-weight-decay", lambda: optim.AdamW([_param()], weight_decay=-1), ValueError,
     r"AdamW: weight_decay must be in \[0.0, inf\); got -1"),
    ("RMSprop-decay", lambda: optim.RMSprop([_param()], 0.01, decay=2), ValueError,
     r"RMSprop: decay must be in \[0.0, 1.0\]; got 2"),
    ("optimizer-empty", lambda: optim.SGD([]), ValueError, r"SGD: params is empty"),
    ("optimizer-array-param", lambda: optim.Adam([np.zeros(3)]), TypeError,
     r"Adam: params\[0\] must be a Tensor; got ndarray"),
    ("optimizer-duplicate", lambda: [p := _param(), optim.Adam([p, p])], ValueError,
     r"Adam: params\[1\] appears twice in params"),
    ("optimizer-model", lambda: optim.Adam(_model()), TypeError,
     r"Adam: params must be a list of Tensors; got a Sequential: pass model.parameters\(\)"),
    ("optimizer-grad-shape", _optimizer_step_with_bad_grad, ValueError,
     r"SGD.step: params\[0\] has shape \(3,\) but its .grad has shape \(5,\)"),
    # -- gradcheck -----------------------------------------------------------------------------------------
    ("gradcheck-fn", lambda: gradcheck(3, [_param()]), TypeError, r"gradcheck: fn must be callable; got int"),
    ("gradcheck-eps", lambda: gradcheck(lambda a: a * 2, [_param()], eps=0), ValueError,
     r"gradcheck: eps must be a positive float; got 0"),
    ("gradcheck-inputs", lambda: gradcheck(lambda a: a * 2, "abc"), TypeError, r"gradcheck: inputs must be .*got str"),
    ("gradcheck-output", lambda: gradcheck(lambda a: 3.0, [_param()]), TypeError,
     r"gradcheck: fn must return a Tensor; got float"),
    ("gradcheck-max-full", lambda: gradcheck(lambda a: a * 2, [_param()], max_full=-1), ValueError,
     r"gradcheck: max_full must be an integer >= 0; got -1"),
    ("gradcheck-n-projections", lambda: gradcheck(lambda a: a * 2, [_param()], n_projections=0), ValueError,
     r"gradcheck: n_projections must be an integer >= 1; got 0"),
    ("gradcheck-rtol", lambda: gradcheck(lambda a: a * 2, [_param()], rtol=-1), ValueError,
     r"gradcheck: rtol must be in \[0.0, inf\]; got -1"),
    ("gradcheck-seed", lambda: gradcheck(lambda a: a * 2, [_param()], seed="x"), TypeError,
     r"gradcheck: seed must be an integer >= 0; got 'x'"),
    ("gradcheck-params", lambda: gradcheck(lambda a: a * 2, [_param()], params=[np.zeros(3)]), TypeError,
     r"gradcheck: params\[0\] must be a floating Tensor .*got ndarray"),
    ("gradcheck-nan-output", lambda: gradcheck(lambda a: ops.log(a - 10.0), [T(np.ones(3))]), ValueError,
     r"gradcheck: fn's output \(shape \(3,\)\) holds NaN or Inf"),
    # -- the JAX twin: ops, comparison, attribution ----------------------------------------------------------
    ("jax-conv2d-padding-typo", lambda: _jops().conv2d(X4.data, K.data, padding="smae"), ValueError,
     r"conv2d: padding='smae' .*did you mean 'same'\?"),
    ("jax-conv2d-channels", lambda: _jops().conv2d(X4.data, np.zeros((3, 3, 4, 4))), ValueError,
     r"conv2d: input has 3 channels but kernel expects 4"),
    ("jax-max-pool-size", lambda: _jops().max_pool(X4.data, 0), ValueError,
     r"max_pool: pool_size must be an integer >= 1; got 0"),
    ("jax-cross-entropy-reduction", lambda: _jops().cross_entropy(X2.data, LABELS, reduction="meen"), ValueError,
     r"cross_entropy: reduction='meen' .*did you mean 'mean'\?"),
    ("jax-dropout-rate", lambda: _jops().dropout(X2.data, 2.0, True), ValueError,
     r"dropout: rate must be in \[0.0, 1.0\]; got 2.0"),
    ("from-engine-type", lambda: __import__("jax_ref").from_engine(3), TypeError,
     r"from_engine: model must be a tinygrad_cnn.nn.Model or Sequential; got int"),
    ("from-engine-unbuilt", lambda: __import__("jax_ref").from_engine(nn.Sequential([nn.Dense(2)])), ValueError,
     r"from_engine: the engine model '.*' is not built"),
    ("check-op-name", lambda: __import__("jax_ref").check_op("conv2dd", X4.data, K.data), ValueError,
     r"check_op: name='conv2dd' is not an op"),
    ("saliency-score-typo", lambda: _attr().saliency(_model(), IMG, score="logits"), ValueError,
     r"saliency: score='logits' .*did you mean 'logit'\?"),
    ("saliency-x-rank", lambda: _attr().saliency(_model(), np.zeros((5, 5))), ValueError,
     r"saliency: x must be one image of rank 3 or a batch of rank 4; got shape \(5, 5\)"),
    ("smoothgrad-kind-typo", lambda: _attr().smoothgrad(_model(), IMG, kind="mena"), ValueError,
     r"smoothgrad: kind='mena' .*did you mean 'mean'\?"),
    ("smoothgrad-noise-level", lambda: _attr().smoothgrad(_model(), IMG, noise_level=-0.1), ValueError,
     r"smoothgrad: noise_level must be in \[0.0, inf\]; got -0.1"),
    ("smoothgrad-n", lambda: _attr().smoothgrad(_model(), IMG, n=0), ValueError,
     r"smoothgrad: n must be an integer >= 1; got 0"),
    ("integrated-gradients-steps", lambda: _attr().integrated_gradients(_model(), IMG, steps=0), ValueError,
     r"integrated_gradients: steps must be an integer >= 1; got 0"),
    ("occlusion-window", lambda: _attr().occlusion(_model(), IMG, window=0), ValueError,
     r"occlusion: window must be an integer >= 1; got 0"),
    ("occlusion-stride", lambda: _attr().occlusion(_model(), IMG, window=2, stride=3), ValueError,
     r"occlusion: stride \(3, 3\) is larger than window \(2, 2\)"),
    ("grad-cam-layer-typo", lambda: _attr().grad_cam(_model(), IMG, "c2"), ValueError,
     r"grad_cam: layer='c2' is not one of 'c1', 'flat', 'out'; did you mean 'c1'\?"),
    ("filters-no-kernel", lambda: _attr().filters(_model(), "flat"), ValueError,
     r"filters: layer='flat' has no kernel; choose one of 'c1', 'out'"),
    *_attribution_image_rows(),
    ("optimizer-frozen-param", lambda: optim.SGD([_param(), T(np.zeros(2))]), ValueError,
     r"SGD: params\[1\] \(shape \(2,\)\) has requires_grad=False"),
    # -- issue 16: data the engine cannot differentiate, in-place writes, values that make no sense, messages --
    ("Tensor-object", lambda: T(np.array([1, "a"], dtype=object)), TypeError,
     r"^Tensor: data must be numbers.*dtype object\): the engine cannot differentiate complex, string or object"),
    ("Tensor-complex", lambda: T(np.array([1j])), TypeError, r"^Tensor: .*dtype complex128"),
    ("Tensor-string-array", lambda: T(np.array(["a", "b"])), TypeError, r"^Tensor: .*dtype <U1"),
    ("Tensor-ragged", lambda: T([[1.0, 2.0], [3.0]]), ValueError,
     r"^Tensor: data is a ragged nested list \(rows of different lengths"),
    ("astype-complex", lambda: X2.astype(np.complex64), TypeError,
     r"^astype: dtype complex64 is not one the engine works with"),
    ("backward-after-data-write", _backward_after(_times_ten), RuntimeError,
     r"^backward: input 0 of Mul \(a leaf, shape \(3,\), dtype float64\) was modified in place after Mul used it "
     r"\(by an optimizer step, an x.data assignment such as x.data \*= 10, x\[...\] = v, copy_ or set_weights; "
     r"1 write\(s\) so far\)"),
    ("backward-after-setitem", _backward_after(lambda p: p.__setitem__(0, 5.0)), RuntimeError,
     r"^backward: input 0 of Mul .*was modified in place"),
    ("backward-after-optimizer-step", _backward_after(_sgd_step), RuntimeError,
     r"^backward: input 0 of Mul .*was modified in place.*Run backward before changing it"),
    ("SGD-learning-rate-inf", lambda: optim.SGD([_param()], learning_rate=float("inf")), ValueError,
     r"^SGD: learning_rate must be in \[0.0, inf\); got inf"),
    ("SGD-learning-rate-nan", lambda: optim.SGD([_param()], learning_rate=float("nan")), ValueError,
     r"^SGD: learning_rate must be in \[0.0, inf\); got nan"),
    ("SGD-nesterov-string", lambda: optim.SGD([_param()], momentum=0.9, nesterov="no"), TypeError,
     r"^SGD: nesterov must be True or False; got 'no'"),
    ("Adam-eps-inf", lambda: optim.Adam([_param()], eps=float("inf")), ValueError,
     r"^Adam: eps must be in \[0.0, inf\); got inf"),
    ("AdamW-weight-decay-inf", lambda: optim.AdamW([_param()], weight_decay=float("inf")), ValueError,
     r"^AdamW: weight_decay must be in \[0.0, inf\); got inf"),
    ("schedule-negative-rate", lambda: _step_with_schedule(lambda count: -0.1), ValueError,
     r"^SGD.step: the learning_rate schedule .* gave -0.1 at step 0; a learning rate must be a finite number >= 0 "
     r"\(no weight was changed\)"),
    ("schedule-nan-rate", lambda: _step_with_schedule(lambda count: float("nan")), ValueError,
     r"^SGD.step: the learning_rate schedule .* gave nan at step 0"),
    ("occlusion-data-format-mismatch",
     lambda: _attr().occlusion(_model(), IMG, window=2, data_format="channels_first"), ValueError,
     r"^occlusion: data_format='channels_first' but the model is channels_last"),
    ("ce-float-class-ids", lambda: F.cross_entropy(X2, np.array([0.0, 1.0])), TypeError,
     r"^cross_entropy: labels must be integer class ids .*got float class ids of shape \(2,\) \(dtype float64\): "
     r"pass labels.astype\(int\)"),
    ("softmax-axis-float", lambda: F.softmax(X2, axis=1.0), TypeError,
     r"^softmax: axis must be an int \(one axis\); got 1.0 \(float\)"),
    ("log-softmax-axis-none", lambda: F.log_softmax(X2, axis=None), TypeError,
     r"^log_softmax: axis must be an int \(one axis\); got None"),
    ("compile-metrics-string", lambda: _model().compile("adam", loss="mse", metrics="accuracy"), TypeError,
     r"^compile: metrics must be a list of metric names or callables \(as Keras'\); got 'accuracy' of type str: "
     r"pass metrics=\['accuracy'\]"),
    ("set-weights-unbuilt-model", lambda: nn.Sequential([nn.Dense(2)]).set_weights([np.zeros((3, 2)), np.zeros(2)]),
     ValueError, r"^Sequential '.*': set_weights on a model that is not built \(it has no weights yet\); build it"),
    ("set-weights-unbuilt-layer", lambda: nn.Dense(2).set_weights([np.zeros((3, 2)), np.zeros(2)]), ValueError,
     r"^Dense '.*': set_weights on a layer that is not built"),
    ("fit-y-none", lambda: _fit(y=None), ValueError, r"^fit: y is None; give the targets y"),
    ("evaluate-y-none", lambda: _compiled().evaluate(XS, None), ValueError, r"^evaluate: y is None"),
    ("sequential-layer-twice", _layer_twice, ValueError,
     r"^Sequential '.*': Dense 'twice' is already in the model \(position 0\); a Sequential runs each layer once"),
    ("viz-channels-first-image", lambda: __import__("tinygrad_cnn.viz").viz.attribution_heatmap(
        np.zeros((3, 8, 8)), np.zeros((8, 8))), ValueError,
     r"^viz: the image has shape \(3, 8, 8\), which looks channels_first .*pass data_format='channels_first'"),
    ("set-random-seed-none", lambda: nn.set_random_seed(None), TypeError,
     r"^set_random_seed: seed must be an integer >= 0; got None"),
    ("set-random-seed-negative", lambda: nn.set_random_seed(-1), TypeError, r"^set_random_seed: seed must be"),
    # -- issue 16 item 4: the twin refuses what the engine refuses, with the engine's own checks --------------
    ("jax-train-labels-out-of-range", lambda: _twin_train(y=YS + 3), ValueError,
     r"^jax_ref.train: y does not fit the model's output of shape \(4, 3\): cross_entropy: labels must be class ids "
     r"in \[0, 3\); got 3$"),
    ("jax-train-labels-negative", lambda: _twin_train(y=YS - 1), ValueError,
     r"^jax_ref.train: .*labels must be class ids in \[0, 3\); got -1$"),
    ("jax-train-float-labels", lambda: _twin_train(y=YS.astype(np.float32)), TypeError,
     r"^jax_ref.train: y does not fit .*labels must be integer class ids .*pass labels.astype\(int\)"),
    ("jax-train-learning-rate-negative", lambda: _twin_train(learning_rate=-0.1), ValueError,
     r"^jax_ref.train: learning_rate must be in \[0.0, inf\); got -0.1$"),
    ("jax-train-learning-rate-nan", lambda: _twin_train(learning_rate=float("nan")), ValueError,
     r"^jax_ref.train: learning_rate must be in \[0.0, inf\); got nan$"),
    ("jax-train-steps-negative", lambda: _twin_train(steps=-1), ValueError,
     r"^jax_ref.train: steps must be an integer >= 0; got -1$"),
    ("jax-train-epochs-negative", lambda: _twin_train(steps=None, epochs=-2), ValueError,
     r"^jax_ref.train: epochs must be an integer >= 0; got -2$"),
    ("jax-train-batch-size-zero", lambda: _twin_train(batch_size=0), ValueError,
     r"^jax_ref.train: batch_size must be an integer >= 1; got 0$"),
    ("jax-train-seed-none", lambda: _twin_train(seed=None), TypeError,
     r"^jax_ref.train: seed must be an integer >= 0; got None"),
    ("jax-train-xy-lengths", lambda: _twin_train(y=YS[:3]), ValueError,
     r"^jax_ref.train: x has 4 examples but y has 3; every input and target needs one entry per example$"),
    ("jax-train-empty-x", lambda: _twin_train(x=XS[:0], y=YS[:0]), ValueError,
     r"^jax_ref.train: x must be a non-empty array with a batch axis; got shape \(0, 6, 6, 3\)$"),
    ("parity-steps-zero", lambda: _twin("parity", XS, YS, steps=0, batch_size=2), ValueError,
     r"^parity: steps must be an integer >= 1; got 0$"),
    ("parity-labels-out-of-range", lambda: _twin("parity", XS, YS + 7, steps=1, batch_size=2), ValueError,
     r"^parity: y does not fit .*labels must be class ids in \[0, 3\); got 7$"),
    ("parity-xy-lengths", lambda: _twin("parity", XS, YS[:2], steps=1, batch_size=2), ValueError,
     r"^parity: x has 4 examples but y has 2"),
    ("compare-gradients-empty-batch", lambda: _twin("compare_gradients", XS[:0], YS[:0]), ValueError,
     r"^compare_gradients: x must be a non-empty array with a batch axis; got shape \(0, 6, 6, 3\)$"),
    ("compare-gradients-labels-out-of-range", lambda: _twin("compare_gradients", XS, YS + 3), ValueError,
     r"^compare_gradients: y does not fit .*got 3$"),
]

MIN_ROWS = 60


@pytest.mark.parametrize("call, exc_type, pattern", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_call_raises_a_clear_error(call, exc_type, pattern, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the checkpoint rows land in a fresh directory
    with pytest.raises(exc_type) as info:
        call()
    assert info.type is exc_type, f"expected exactly {exc_type.__name__}, got {info.type.__name__}: {info.value}"
    message = str(info.value)
    assert re.search(pattern, message), f"message does not match {pattern!r}:\n{message}"


def test_row_count():
    ids = [r[0] for r in ROWS]
    assert len(set(ids)) == len(ids), "duplicate row ids"
    assert len(ROWS) >= MIN_ROWS
    print(f"\n{len(ROWS)} bad calls covered")


@pytest.mark.parametrize("arg, value, suggestion", [
    ("padding", "smae", "same"), ("padding", "vaild", "valid"), ("data_format", "channles_first", "channels_first"),
])
def test_did_you_mean_for_misspelt_strings_everywhere(arg, value, suggestion):
    """The same misspelling gets the same suggestion from the functional op, the layer and the twin."""
    calls = [lambda: F.conv2d(X4, K, **{arg: value}), lambda: nn.Conv2D(2, 3, **{arg: value}),
             lambda: nn.MaxPooling2D(2, **{arg: value}), lambda: _jops().conv2d(X4.data, K.data, **{arg: value})]
    for call in calls:
        with pytest.raises(ValueError, match=rf"{arg}='{value}' .*did you mean '{suggestion}'\?"):
            call()

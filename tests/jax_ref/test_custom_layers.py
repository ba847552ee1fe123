"""Custom layers in the twin: a user's registered ``Layer`` subclasses (a scaled residual with its own weight, a
conv with explicit padding and a bias, a layer of Tensor methods with a ``training`` branch) mirrored by running
their own ``call`` on JAX, in a Sequential and in a graph model (one of them shared): outputs and per-node
gradients against the engine in float64, parity and optax training, configs and checkpoints; negative controls:
calls that leave JAX are refused by name, and a wrong mirror is caught by compare_gradients."""

from __future__ import annotations

import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ref
import tinygrad_cnn as tg
from jax_ref import _custom
from jax_ref import attribution as A
from jax_ref.attribution.engine import engine_saliency
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn

R = np.random.default_rng(7)


@nn.register_serializable(package="CustomTwin")
class ScaledResidual(nn.Layer):
    """y = x + alpha relu(x @ W), W square (its own weight)."""

    def __init__(self, alpha=0.5, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def build(self, input_shape):
        self.w = self.add_weight("kernel", (input_shape[-1], input_shape[-1]), "glorot_uniform")
        super().build(input_shape)

    def call(self, x, training=False):
        return x + self.alpha * F.relu(x @ self.w)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@nn.register_serializable(package="CustomTwin")
class PaddedConv(nn.Layer):
    """F.conv with explicit (before, after) padding per spatial axis, a bias and an L2 kernel penalty."""

    def __init__(self, filters, kernel_size, padding=((1, 1), (1, 1)), kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = filters, kernel_size
        self.padding = tuple(tuple(p) for p in padding)
        self.kernel_regularizer = self._resolve("regularizer", "kernel_regularizer", kernel_regularizer)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight("kernel", (k, k, input_shape[-1], self.filters), "he_normal",
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), "zeros")
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        size = [n + a + b - self.kernel_size + 1 for n, (a, b) in zip(input_shape[1:3], self.padding, strict=True)]
        return (input_shape[0], *size, self.filters)

    def call(self, x, training=False):
        return F.conv(x, self.kernel, self.bias, padding=self.padding)

    def get_config(self):
        reg = self.kernel_regularizer
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "padding": [list(p) for p in self.padding],
                "kernel_regularizer": None if reg is None else nn.regularizers.serialize(reg)}


def _squash(t):
    """A helper of this module: the mirror rebuilds it too (its F resolves to jax_ref.ops)."""
    return F.tanh(t) * 0.5


@nn.register_serializable(package="CustomTwin")
class TokenMix(nn.Layer):
    """Tensor methods (reshape, transpose, mean, max, exp, sum), a tg constant, a helper, and a training branch."""

    def __init__(self, train_scale=0.8, **kwargs):
        super().__init__(**kwargs)
        self.train_scale = train_scale

    def build(self, input_shape):
        self.gain = self.add_weight("gain", (input_shape[-1],), "ones")
        super().build(input_shape)

    def call(self, x, training=False):
        b, h, w, c = x.shape
        t = x.reshape(b, h * w, c).transpose(0, 2, 1)  # (batch, channels, positions)
        centred = t - t.mean(axis=-1, keepdims=True)
        if training:
            centred = centred * self.train_scale
        weights = (centred - centred.max(axis=-1, keepdims=True)).exp()
        mixed = centred * (weights / weights.sum(axis=-1, keepdims=True)) * self.gain.reshape(1, c, 1)
        offset = tg.full((1, 1, c), 0.1, dtype=x.dtype)
        return _squash(mixed.transpose(0, 2, 1).reshape(b, h, w, c)) + offset.reshape(1, 1, 1, c)

    def get_config(self):
        return {**super().get_config(), "train_scale": self.train_scale}


@nn.register_serializable(package="CustomTwin")
class DoubledDense(nn.Dense):
    """A built-in layer subclassed: super().call (the Dense's own call, mirrored too) and isinstance on Tensor."""

    def call(self, x, training=False):
        assert isinstance(x, tg.Tensor)
        return super().call(x, training) * 2.0


def _randomise(model):
    model.set_weights([R.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    return model


def sequential():
    nn.set_random_seed(3)
    return _randomise(nn.Sequential([
        nn.Input((6, 6, 3)), PaddedConv(4, 3, padding=((1, 1), (2, 0)), kernel_regularizer=nn.regularizers.L2(0.01),
                                        name="pconv", dtype="float64"),
        TokenMix(name="mix", dtype="float64"), nn.Flatten(dtype="float64"), nn.Dense(6, dtype="float64"),
        ScaledResidual(0.7, name="resid", dtype="float64"), DoubledDense(3, activation="tanh", name="doubled",
                                                                       dtype="float64")], name="custom_seq"))


def graph():
    """A conv, a mix read next to its input by an Add, global pooling, one ScaledResidual called twice."""
    nn.set_random_seed(4)
    x = nn.Input((5, 5, 2))
    c = PaddedConv(3, 2, padding=((1, 0), (0, 1)), name="gconv", dtype="float64")(x)
    a = nn.Add(dtype="float64")([c, TokenMix(0.6, activity_regularizer="l2", name="gmix", dtype="float64")(c)])
    shared = ScaledResidual(0.5, name="shared", dtype="float64")
    h = shared(shared(nn.GlobalAveragePooling2D(dtype="float64")(a)))
    return _randomise(nn.Model(x, nn.Dense(3, dtype="float64")(h), name="custom_graph"))


def _data(model, n=4):
    return R.standard_normal((n, *model.input_shape[1:])), R.integers(0, 3, n)


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


@pytest.mark.parametrize(("build", "training"), [(sequential, False), (graph, True)])
def test_twin_runs_the_layers_own_call_outputs_and_gradients_match(build, training):
    """Float64: the twin's outputs (inference and training mode) and every gradient row, per node, agree with
    the engine's to <1e-12 relative to each row's scale; the custom layers' rows are there, by name."""
    model = build()
    x, y = _data(model)
    twin = jax_ref.from_engine(model)
    assert {info.name for info in twin.layers if info.custom} == {"resid", "mix", "pconv", "doubled", "shared",
                                                                   "gmix", "gconv"} & set(twin.layer_names)
    for mode in (False, True):
        assert _rel(twin.apply(twin.params, x, training=mode), model(x, training=mode).numpy()) < 1e-12
    report = jax_ref.compare_gradients(model, x, y, training=training)
    assert report.passed, report
    scale = max(abs(e.engine) for e in report.entries)
    assert max(e.max_abs_error for e in report.entries) < 1e-12 * scale, report
    names = {e.name for e in report.entries}
    if build is graph:
        assert {"shared.kernel", "shared:0 input", "shared:1 input", "gmix.gain", "gconv.kernel"} <= names
        assert report["shared:1 input"].kind == "ScaledResidual backward"
        # attribution runs through the mirrored layers: saliency equals the engine's own input gradient
        assert _rel(A.saliency(twin, x[:2]), engine_saliency(model, x[:2])) < 1e-12
    else:
        assert {"resid.kernel", "mix input", "pconv.bias", "pconv.kernel", "doubled.kernel"} <= names


def test_parity_train_and_saving_with_custom_layers(tmp_path):
    """parity (engine SGD vs optax through the twin, penalties included) agrees; the trained twin's weights go
    back into a model rebuilt from its JSON config, which survives .npz and .keras files."""
    model = graph()
    x, y = _data(model, 8)
    result = jax_ref.parity(model, x, y, steps=2, batch_size=4, learning_rate=0.05)
    assert result.max_rel_loss_deviation < 1e-10 and result.max_rel_param_deviation < 1e-10, result
    clone = nn.Model.from_config(json.loads(json.dumps(model.get_config())))
    clone.set_weights(result.jax_params)  # the twin's trained weights
    np.testing.assert_allclose(clone.get_weights()[0], result.engine_params[0], rtol=1e-10)
    path = tmp_path / "custom.npz"
    clone.save_weights(path)
    again = nn.Model.from_config(clone.get_config())
    again.load_weights(path)
    np.testing.assert_array_equal(again(x).numpy(), clone(x).numpy())
    keras_file = tmp_path / "custom.keras"
    clone.save(keras_file)
    loaded = nn.load_model(keras_file)
    assert isinstance(loaded.get_layer("shared"), ScaledResidual)
    np.testing.assert_array_equal(loaded(x).numpy(), clone(x).numpy())


class UsesData(nn.Layer):
    def call(self, x, training=False):
        return tg.Tensor(np.tanh(x.data))


class UsesUfunc(nn.Layer):
    def call(self, x, training=False):
        return np.tanh(x)


class BranchesOnValues(nn.Layer):
    def call(self, x, training=False):
        return F.relu(x) if x.sum() > 0 else x


class UnmirroredMethod(nn.Layer):
    def call(self, x, training=False):
        return x.sort(axis=-1)


class HoldsALayer(nn.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = nn.Dense(4, name="inner")

    def call(self, x, training=False):
        return self.inner(x)


class AssignsSelf(nn.Layer):
    def call(self, x, training=False):
        self.last = x
        return x


@pytest.mark.parametrize(("cls", "what"), [
    (UsesData, r"reads \.data"), (UsesUfunc, r"np\.tanh"), (BranchesOnValues, r"Python control flow"),
    (UnmirroredMethod, r"Tensor\.sort"), (HoldsALayer, r"uses the layer Dense 'inner' held inside it"),
    (AssignsSelf, r"assigns self\.last")])
def test_calls_that_leave_jax_are_refused_naming_layer_class_and_operation(cls, what):
    """The engine runs these (the first two silently lose the gradient); the twin refuses them when built."""
    layer = cls(name=f"bad_{cls.__name__.lower()}")
    model = nn.Sequential([nn.Input((4,)), layer])
    model(np.ones((2, 4), np.float32))
    with pytest.raises(NotImplementedError, match=rf"custom layer 'bad_{cls.__name__.lower()}' of class "
                                                  rf"{cls.__name__} \(module {__name__}\) cannot be mirrored: its "
                                                  rf"call .*{what}"):
        jax_ref.from_engine(model)


def test_a_wrong_mirror_is_caught_by_compare_gradients_at_the_custom_layer(monkeypatch):
    """Negative control: jax_ref.ops.relu with the right value but a wrong derivative (+0.5) makes the first
    failing row, from the loss backwards, the custom layer's."""
    nn.set_random_seed(5)
    model = _randomise(nn.Sequential([nn.Input((5,)), ScaledResidual(0.5, name="wrong", dtype="float64"),
                                      nn.Dense(3, dtype="float64")]))
    x, y = _data(model)
    right = jax_ref.ops.relu
    monkeypatch.setattr(jax_ref.ops, "relu", lambda t: right(t) + 0.5 * (t - jax.lax.stop_gradient(t)))
    report = jax_ref.compare_gradients(model, x, y)
    assert not report.passed
    assert report.suspect.name == "wrong.kernel", report
    assert report["wrong input"].kind == "ScaledResidual backward" and report["wrong input"].grade != "good"


# every Tensor method the mirror knows, applied to t of shape (3, 4) away from ties and kinks:
# (expression, whether it needs a positive input)
_METHOD_CASES = [
    ("t.sum(axis=1, keepdims=True)", False), ("t.mean(axis=(0, 1))", False), ("t.max(axis=1)", False),
    ("t.min()", False), ("t.prod(axis=0)", False), ("t.var(axis=1, ddof=1)", False),
    ("t.std(axis=0, keepdims=True)", False), ("t.logsumexp(axis=0)", False), ("t.reshape(2, 6) * 1.0", False),
    ("t.reshape((4, 3)).transpose()", False), ("t.transpose(1, 0).flatten()", False),
    ("t.pad(((1, 0), (0, 2)), constant_values=0.5)", False), ("t[:, :1].squeeze(1).expand_dims(0)", False),
    ("t.unsqueeze(1).flip(2).roll(1, axis=2)", False), ("t.repeat(2, axis=1).tile(2, 1)", False),
    ("t.broadcast_to(2, 3, 4).moveaxis(0, 2).swapaxes(0, 1)", False),
    ("t.cumsum(axis=1) + t.cumprod(axis=0)", False), ("t.clip(-0.5, 0.5) + t.astype('float64')", False),
    ("t.maximum(0.1) - t.minimum(-0.2) + t.where(t > 0, 0.0)", False),
    ("t.where((t > 0).any(axis=1, keepdims=True), 1.0) + t.where((t > -1).all(axis=0), 2.0)", False),
    ("t.relu() + t.softplus() + t.sigmoid() + t.tanh() + t.exp() + t.abs() + t.square()", False),
    ("t.log() + t.sqrt() + t.log1p() + t.log2() + t.reciprocal() + t.rsqrt()", True),
    ("t.expm1() + t.exp2() + t.sin() + t.cos() + t.tan() + t.atan() + t.sinh() + t.cosh() + t.erf()", False),
    ("(t * 0.4).asin() + (t * 0.4).acos() + (t * 0.4).atanh() + t.detach() * t", False),
    ("(t.T @ t).sum(axis=0) - 2.0 / (t + 3.0) + (t + 3.0) ** 1.5 + 2.0 ** t - t[1:, ::2].sum() + -t", False),
    ("t.round(1) + t.sign() + t.floor() + t.ceil() + (t.argmax(axis=1) + t.argmin()).astype('float64')[:, None]",
     False),
]


def test_every_mirrored_tensor_method_matches_the_engine(check_vjp):
    """All the expressions at once (one compile), in engine Tensors and in MirrorTensors: values and vjps agree
    (float64); together the cases cover every name of ``_custom.METHODS``."""
    covered = {name for expr, _ in _METHOD_CASES for name in _custom.METHODS if f".{name}(" in expr}
    assert covered == set(_custom.METHODS), set(_custom.METHODS) - covered
    fns = [(eval(f"lambda t: {expr}"), positive) for expr, positive in _METHOD_CASES]  # noqa: S307

    def cases(t, join):  # positive cases read t.abs() + 0.2 (t stays away from 0 by more than 10 eps)
        return join([fn(t.abs() + 0.2 if positive else t).reshape(-1) for fn, positive in fns])

    check_vjp(lambda t: cases(t, tg.concatenate),
              lambda v: cases(_custom.MirrorTensor(jnp.asarray(v)), lambda ts: jnp.concatenate([m.array for m in ts])),
              R.uniform(-0.9, 0.9, (3, 4)), tol=1e-12)


def test_jax_ref_ops_mirrors_functional_name_for_name_and_argument_for_argument():
    """The mirror resolves F.<name> to jax_ref.ops.<name>: same names, same public parameters and defaults."""
    assert set(F.__all__) == set(jax_ref.ops.__all__)
    for name in F.__all__:
        engine, twin = (inspect.signature(getattr(m, name)).parameters for m in (F, jax_ref.ops))
        public = [(p.name, p.default) for p in engine.values() if not p.name.startswith("_")]
        assert public == [(p.name, p.default) for p in twin.values()], name

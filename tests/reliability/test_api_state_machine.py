"""A failed call leaves the model exactly as it was: hypothesis drives random sequences of API calls on one small
model (build, fit, save_weights / load_weights, set_weights, compile, the twin's saliency), good and bad, and after
every refused call compares the model with its snapshot from before: every weight, the config, and the optimizer
(its class, step count, learning rate and every slot of its state), the compiled loss and metrics, and the graph
(how many calls each layer records: a build that failed half-way once dropped them).

Accepted calls are checked for what they promise: a build for the same shape changes nothing, ``load_weights``
gives back the saved weights, ``set_weights`` the given ones, ``saliency`` equals the engine's own gradient on the
model as it is now (a stale compiled twin would not).

Budget: the CI profile runs a few short sequences (derandomized, ``fuzzing.BASE``); ``TINYGRAD_LONG_TESTS=1`` or
``TINYGRAD_CNN_FUZZ=long`` runs many more and longer ones.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
from fuzzing import BASE
from fuzzing import LONG as FUZZ_LONG
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from jax_ref import attribution
from jax_ref.attribution.engine import engine_saliency
from tinygrad_cnn import nn, optim

LONG = FUZZ_LONG or os.environ.get("TINYGRAD_LONG_TESTS") == "1"
SHAPE = (6, 6, 1)
X = np.random.default_rng(0).standard_normal((4, *SHAPE)).astype(np.float32)
Y = np.array([0, 1, 2, 0])
REFUSED = (TypeError, ValueError, OSError)


def _model(filters=2):
    return nn.Sequential([nn.Input(SHAPE), nn.Conv2D(filters, 3, name="c1"), nn.Flatten(name="flat"),
                          nn.Dense(3, name="out")])


def snapshot(model) -> dict:
    """Everything a refused call must leave alone, copied."""
    opt = model.optimizer
    if isinstance(opt, optim.Optimizer):
        opt = (type(opt).__name__, opt.count, opt.learning_rate,
               [{k: np.array(v, copy=True) for k, v in slot.items()} for slot in opt.state])
    return {"weights": [w.copy() for w in model.get_weights()],
            "config": json.dumps(model.get_config(), sort_keys=True, default=repr),
            "optimizer": opt, "loss": model.loss, "metrics": list(model.metrics), "compiled": model.compiled,
            "graph": [(layer.name, len(layer._inbound_nodes)) for layer in model.layers]}  # each layer's calls


def assert_same(before: dict, after: dict, call: str) -> None:
    assert len(before["weights"]) == len(after["weights"]), f"{call} changed the number of weights"
    for i, (a, b) in enumerate(zip(before["weights"], after["weights"], strict=True)):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{call} changed weight {i}"
    assert before["config"] == after["config"], f"{call} changed the config"
    assert before["graph"] == after["graph"], f"{call} changed the graph: calls per layer {after['graph']}"
    assert before["loss"] is after["loss"] and before["metrics"] == after["metrics"], f"{call} changed compile"
    assert before["compiled"] == after["compiled"], f"{call} changed compiled"
    ob, oa = before["optimizer"], after["optimizer"]
    assert type(ob) is type(oa), f"{call} replaced the optimizer {ob!r} by {oa!r}"
    if isinstance(ob, tuple):
        assert ob[:3] == oa[:3], f"{call} changed the optimizer's class, count or learning rate"
        for sb, sa in zip(ob[3], oa[3], strict=True):
            assert sb.keys() == sa.keys() and all(np.array_equal(sb[k], sa[k]) for k in sb), \
                f"{call} changed the optimizer state"
    else:
        assert ob == oa, f"{call} changed the optimizer {ob!r} to {oa!r}"


BAD_FIT = {
    "batch_size=0": lambda m: m.fit(X, Y, batch_size=0, verbose=0),
    "labels out of range": lambda m: m.fit(X, Y + 3, batch_size=4, verbose=0),
    "float class ids": lambda m: m.fit(X, Y.astype(np.float32), batch_size=4, verbose=0),
    "x/y lengths": lambda m: m.fit(X, Y[:3], batch_size=4, verbose=0),
    "x shape": lambda m: m.fit(X[..., :0], Y, batch_size=4, verbose=0),
    "validation_split=1.5": lambda m: m.fit(X, Y, validation_split=1.5, verbose=0),
}
BAD_WEIGHTS = {
    "third array shape": lambda ws: ws[:2] + [np.zeros(ws[2].shape + (1,), np.float32)] + ws[3:],
    "third array object": lambda ws: ws[:2] + [np.full(ws[2].shape, None, object)] + ws[3:],
    "one array short": lambda ws: ws[:-1],
    "nested list": lambda ws: [ws],
}
BAD_COMPILE = {
    "optimizer typo": {"optimizer": "adamm", "loss": "cross_entropy"},
    "no loss": {"optimizer": "sgd", "loss": None},
    "loss typo": {"optimizer": "sgd", "loss": "cross_entropi"},
    "metrics string": {"optimizer": "sgd", "loss": "cross_entropy", "metrics": "accuracy"},
    "optimizer number": {"optimizer": 3, "loss": "cross_entropy"},
}
BAD_BUILD = [(None, 6, 6), (None, 8, 8, 1), (None, 6, 6, 0), "abc"]


class ApiCalls(RuleBasedStateMachine):
    """One model; each rule is one call, good or bad (see the module docstring)."""

    @initialize()
    def start(self):
        nn.set_random_seed(0)
        self.model = _model()
        self.model.compile("adam", loss="cross_entropy", metrics=["accuracy"])
        self.dir = tempfile.TemporaryDirectory()
        self.other = os.path.join(self.dir.name, "other.npz")  # another architecture's weights
        _model(filters=4).save_weights(self.other)
        self.saved = None
        self.before = snapshot(self.model)

    def teardown(self):
        if hasattr(self, "dir"):
            self.dir.cleanup()

    def refused(self, what: str, call) -> None:
        with pytest.raises(REFUSED):
            call()
        assert_same(self.before, snapshot(self.model), what)

    def accepted(self) -> None:
        self.before = snapshot(self.model)

    @rule(shape=st.sampled_from([(None, *SHAPE), *BAD_BUILD]))
    def build(self, shape):
        if shape == (None, *SHAPE):
            self.model.build(shape)
            assert_same(self.before, snapshot(self.model), "build for the same shape")
        else:
            self.refused(f"build({shape!r})", lambda: self.model.build(shape))

    @rule(bad=st.sampled_from([None, *BAD_FIT]))
    def fit(self, bad):
        if bad is None:
            self.model.fit(X, Y, batch_size=4, epochs=1, verbose=0, shuffle=False)
            assert all(np.isfinite(w).all() for w in self.model.get_weights())
            self.accepted()
        else:
            self.refused(f"fit ({bad})", lambda: BAD_FIT[bad](self.model))

    @rule(good=st.booleans())
    def save_weights(self, good):
        if good:
            path = os.path.join(self.dir.name, "model.npz")
            self.model.save_weights(path)
            self.saved = (path, self.model.get_weights())
            assert_same(self.before, snapshot(self.model), "save_weights")
        else:
            self.refused("save_weights into a missing directory",
                         lambda: self.model.save_weights(os.path.join(self.dir.name, "missing", "m.npz")))

    @rule(which=st.sampled_from(["saved", "other architecture", "missing file"]))
    def load_weights(self, which):
        if which == "saved" and self.saved is not None:
            self.model.load_weights(self.saved[0])
            assert all(np.array_equal(a, b) for a, b in zip(self.saved[1], self.model.get_weights(), strict=True))
            self.accepted()
        elif which != "saved":
            path = self.other if which == "other architecture" else os.path.join(self.dir.name, "none.npz")
            self.refused(f"load_weights ({which})", lambda: self.model.load_weights(path))

    @rule(bad=st.sampled_from([None, *BAD_WEIGHTS]), seed=st.integers(0, 3))
    def set_weights(self, bad, seed):
        rng = np.random.default_rng(seed)
        new = [rng.standard_normal(w.shape).astype(w.dtype) for w in self.model.get_weights()]
        if bad is None:
            self.model.set_weights(new)
            assert all(np.array_equal(a, b) for a, b in zip(new, self.model.get_weights(), strict=True))
            self.accepted()
        else:
            self.refused(f"set_weights ({bad})", lambda: self.model.set_weights(BAD_WEIGHTS[bad](new)))

    @rule(bad=st.sampled_from([None, *BAD_COMPILE]))
    def compile(self, bad):
        if bad is None:
            self.model.compile("adam", loss="cross_entropy", metrics=["accuracy"])
            self.accepted()
        else:
            self.refused(f"compile ({bad})", lambda: self.model.compile(**BAD_COMPILE[bad]))

    @rule(good=st.booleans(), cls=st.integers(0, 2))
    def saliency(self, good, cls):
        if good:
            got = attribution.saliency(self.model, X[cls], target=cls)
            want = engine_saliency(self.model, X[cls], target=cls)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))
            assert_same(self.before, snapshot(self.model), "saliency")
        else:
            self.refused("saliency (wrong channels)", lambda: attribution.saliency(self.model, np.zeros((6, 6, 2))))


ApiCalls.TestCase.settings = settings(BASE, max_examples=100 if LONG else 6, stateful_step_count=30 if LONG else 8)
test_a_failed_call_leaves_the_model_as_it_was = ApiCalls.TestCase

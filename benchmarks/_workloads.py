"""The workloads of ``run_all.py``: for each, how to build one step per framework at one setting.

A workload has a ``name``, a ``kind`` (``"train"``, ``"inference"`` or ``"gradcheck"``), ``settings(quick)`` (the
batch sizes, or the gradient-check modes, it is measured at) and ``steps(setting, frameworks)`` ->
``{framework: fn}``, one zero-argument callable per framework among ``frameworks`` that the workload defines
(``"engine"``, ``"torch"``, ``"jax"``, ``"floor"``). ``agreement(first)`` takes each framework's first result and
returns the largest difference from the engine's (first-step losses; inference outputs), or None: the table
shows it so that a ratio between two different computations cannot pass unseen. The models, step makers and
the floor come from the single-workload scripts (``bench_train_step``, ``bench_resnet``, ``mnist1d_cnn``,
``bench_gradcheck``); nothing is redefined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import bench_gradcheck
import bench_resnet
import bench_train_step as bts
import mnist1d_cnn
import numpy as np


def _largest_gap(first: dict, skip=("floor",)) -> float | None:
    ref = first.get("engine")
    gaps = [float(np.max(np.abs(np.asarray(v, np.float64) - np.asarray(ref, np.float64))))
            for k, v in first.items() if k != "engine" and k not in skip]
    return max(gaps) if ref is not None and gaps else None


def _same_weights(build: Callable, _first: dict = {}):  # noqa: B006 (the cache is the point)
    """A fresh ``build()`` with the weights (and BatchNormalization statistics) of the first model ``build`` gave in
    this process: a model maker may draw its kernels from the initializers' global random state."""
    model = build()
    if build not in _first:
        _first[build] = model.get_weights()
    model.set_weights(_first[build])
    return model


@dataclass(frozen=True)
class Training:
    """One training step (forward, softmax cross-entropy, backward, SGD update) of ``model()`` on ``batch(n)``.

    ``makers[framework](model, x, y) -> step`` (the step returns its loss); every framework gets a model of its
    own (a step updates it) with the weights of the first one built, and the same batch.
    """

    name: str
    title: str
    model: Callable
    batch: Callable
    makers: dict
    kind: str = "train"

    def settings(self, quick: bool) -> list:
        return [16] if quick else [64, 256]

    def steps(self, batch: int, frameworks) -> dict:
        x, y = self.batch(batch)
        return {fw: self.makers[fw](_same_weights(self.model), x, y) for fw in frameworks if fw in self.makers}

    def agreement(self, first: dict) -> float | None:
        return _largest_gap(first)


@dataclass(frozen=True)
class Inference:
    """The forward pass in inference mode at batch n: the engine's ``model.predict(x, batch_size=n)`` (conv +
    BatchNormalization folding on, as by default), PyTorch's eval-mode forward under ``torch.no_grad``, the twin's
    ``apply`` under ``jax.jit``, and the forward GEMMs alone (``step_gemms(..., forward_only=True)``)."""

    name: str
    title: str
    model: Callable
    batch: Callable
    torch_net: Callable
    kind: str = "inference"

    def settings(self, quick: bool) -> list:
        return [16] if quick else [256]

    def steps(self, batch: int, frameworks) -> dict:
        x, _ = self.batch(batch)
        model = _same_weights(self.model)
        makers = {"engine": lambda: (lambda: model.predict(x, batch_size=batch)),
                  "torch": lambda: _torch_eval(self.torch_net(model), bts.torch_input(x)),
                  "jax": lambda: _jax_eval(model, x),
                  "floor": lambda: bts.floor_step_fn(model, x, forward_only=True)}
        return {fw: makers[fw]() for fw in frameworks if fw in makers}

    def agreement(self, first: dict) -> float | None:
        return _largest_gap(first)


def _torch_eval(net, xt):
    import torch

    net.eval()

    def step():
        with torch.no_grad():
            return net(xt).numpy()
    return step


def _jax_eval(model, x):
    import jax

    import jax_ref

    twin = jax_ref.from_engine(model)
    forward = jax.jit(lambda params, state, xb: twin.apply(params, xb, state=state))
    xj = jax.device_put(x)
    return lambda: np.asarray(jax.block_until_ready(forward(twin.params, twin.state, xj)))


@dataclass(frozen=True)
class GradCheck:
    """``bench_gradcheck``'s float64 conv2d check: each setting is one of the engine's checker modes beside the
    other framework's own checker in that mode (torch.autograd.gradcheck / gradgradcheck, jax check_grads)."""

    name: str = "gradcheck"
    title: str = "float64 gradient check of conv2d (x 2x3x8x8, kernel 3x3x3x4)"
    kind: str = "gradcheck"
    quick_settings: tuple = field(default=("projection",))

    def settings(self, quick: bool) -> list:
        if quick:
            return list(self.quick_settings)
        return ["full", "order 2 full", "projection", "order 2 projection", "jax order 1", "jax order 2"]

    def steps(self, setting: str, frameworks) -> dict:
        x, k = bench_gradcheck.data()
        out = {"engine": bench_gradcheck.engine_checks(x, k)[setting]}
        if "torch" in frameworks and not setting.startswith("jax"):
            out["torch"] = bench_gradcheck.torch_checks(x, k)[setting]
        if "jax" in frameworks and setting.startswith("jax"):
            out["jax"] = bench_gradcheck.jax_checks(x, k)[setting]
        return out

    def agreement(self, first: dict) -> None:
        return None  # each checker asserts its own verdict


WORKLOADS = {w.name: w for w in (
    Training("cnn", "reference CNN training step (28x28x1, 2 conv + 2 dense)", bts.engine_model, bts.make_batch,
             {"engine": bts.engine_step_fn, "torch": bts.torch_step_fn, "jax": bts.jax_step_fn,
              "floor": bts.floor_step_fn}),
    Training("mnist1d", "MNIST-1D Conv1D CNN training step (42x1, 3 conv1d + dense)", mnist1d_cnn.engine_model,
             mnist1d_cnn.make_batch, {"engine": bts.engine_step_fn, "torch": mnist1d_cnn.torch_step_fn,
                                      "jax": bts.jax_step_fn, "floor": bts.floor_step_fn}),
    Training("resnet", "small ResNet training step (8x8x1, BatchNorm in training mode)", bench_resnet.engine_model,
             bench_resnet.make_batch, {"engine": bts.engine_step_fn, "torch": bench_resnet.torch_resnet_step_fn,
                                       "jax": bench_resnet.jax_resnet_step_fn, "floor": bts.floor_step_fn}),
    Inference("cnn-predict", "reference CNN inference (predict)", bts.engine_model, bts.make_batch, bts.torch_net),
    Inference("resnet-predict", "small ResNet inference (predict, conv+BN folded)", bench_resnet.engine_model,
              bench_resnet.make_batch, bench_resnet.torch_resnet),
    GradCheck(),
)}

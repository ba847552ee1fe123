"""The MNIST-1D CNN of ``examples/10_mnist1d.py`` (the paper's CNN), in the engine and in PyTorch, for the benchmarks.

Model (float32, NWC for the engine, NCW for PyTorch): input 42x1 (the 40 values with the first conv's
``padding=1`` added to the data, as the example does); Conv1D(25, 5, strides 2, valid, relu); Conv1D(25, 3,
strides 2, same, relu) (PyTorch ``padding=1``); Conv1D(25, 3, strides 2, same, relu) (Keras' "same" pads one
position at the end only here: PyTorch pads (0, 1) before a ``padding=0`` conv); Flatten (positions, then
channels); Dense(10) logits. 42 -> 19 -> 10 -> 5 positions, 125 features. The training step is the other
workloads' (softmax cross-entropy, plain SGD), made by ``bench_train_step.engine_step_fn`` / ``jax_step_fn``.
"""

from __future__ import annotations

import numpy as np
from _harness import torch_sgd_step
from bench_train_step import LR, with_nonzero_biases


def engine_model(seed: int = 0):
    """The example's model, built, initialised from ``seed``, biases perturbed away from zero (a wrong bias path
    cannot hide)."""
    from tinygrad_cnn import nn

    nn.set_random_seed(seed)
    model = nn.Sequential([
        nn.Input((42, 1)),
        nn.Conv1D(25, 5, strides=2, padding="valid", activation="relu"),
        nn.Conv1D(25, 3, strides=2, padding="same", activation="relu"),
        nn.Conv1D(25, 3, strides=2, padding="same", activation="relu"),
        nn.Flatten(),
        nn.Dense(10),
    ], name="mnist1d_cnn")
    return with_nonzero_biases(model, seed)


def make_batch(batch: int, seed: int = 1):
    """Random sequences ``(batch, 42, 1)`` (zero at both ends: the first conv's padding) and labels in 0..9."""
    rng = np.random.default_rng(seed)
    x = np.zeros((batch, 42, 1), np.float32)
    x[:, 1:-1] = rng.standard_normal((batch, 40, 1))
    return x, rng.integers(0, 10, batch)


def torch_net(model):
    """The same network in ``torch.nn`` with ``model``'s weights (kernels (k, C_in, C_out) -> (C_out, C_in, k))."""
    import torch
    from torch import nn as tnn

    class PositionsThenChannels(tnn.Module):
        """Flatten NCW in (W, C) order, as Keras' Flatten on NWC (so the dense weights are the same)."""

        def forward(self, h):
            return h.permute(0, 2, 1).reshape(h.shape[0], -1)

    net = tnn.Sequential(
        tnn.Conv1d(1, 25, 5, stride=2), tnn.ReLU(),
        tnn.Conv1d(25, 25, 3, stride=2, padding=1), tnn.ReLU(),
        tnn.ConstantPad1d((0, 1), 0.0), tnn.Conv1d(25, 25, 3, stride=2), tnn.ReLU(),
        PositionsThenChannels(), tnn.Linear(125, 10))
    w = model.get_weights()  # k1 b1 k2 b2 k3 b3 dense_k dense_b
    with torch.no_grad():
        for conv, (k, b) in zip((net[0], net[2], net[5]), (w[0:2], w[2:4], w[4:6]), strict=True):
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.transpose(2, 1, 0))))
            conv.bias.copy_(torch.from_numpy(b))
        net[8].weight.copy_(torch.from_numpy(np.ascontiguousarray(w[6].T)))
        net[8].bias.copy_(torch.from_numpy(w[7]))
    return net


def torch_step_fn(model, x, y):
    """One PyTorch training step (zero_grad, forward, cross-entropy, backward, SGD) on ``x`` (NWC, transposed)."""
    import torch

    net = torch_net(model)
    return torch_sgd_step(net, torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))), y, LR)

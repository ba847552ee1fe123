"""A PyTorch copy of a small engine CNN (Conv2D / MaxPooling2D / Flatten / Dense, channels_last, ReLU or tanh
activations as separate modules, as captum's DeepLift needs), for the captum comparisons."""

from __future__ import annotations

import numpy as np


def torch_copy(model):
    """``torch.nn.Sequential`` computing ``model`` on NCHW float64 tensors (the caller transposes NHWC images)."""
    import torch
    from torch import nn as tnn

    acts = {"relu": tnn.ReLU, "tanh": tnn.Tanh, "sigmoid": tnn.Sigmoid, "linear": None, None: None}
    mods = []
    for layer in model.layers:
        kind, cfg = type(layer).__name__, layer.get_config()
        weights = [torch.tensor(np.asarray(w, np.float64)) for w in layer.get_weights()]
        if kind == "Conv2D":
            assert tuple(cfg["dilation_rate"]) == (1, 1) and cfg["padding"] in ("same", "valid")
            k = cfg["kernel_size"]
            conv = tnn.Conv2d(weights[0].shape[2], weights[0].shape[3], k, stride=cfg["strides"],
                              padding=(k[0] // 2, k[1] // 2) if cfg["padding"] == "same" else 0,
                              dtype=torch.float64)
            conv.weight.data = weights[0].permute(3, 2, 0, 1).contiguous()
            conv.bias.data = weights[1]
            mods.append(conv)
        elif kind == "MaxPooling2D":
            mods.append(tnn.MaxPool2d(cfg["pool_size"]))
        elif kind == "Flatten":
            mods += [_NHWC(), tnn.Flatten()]
        elif kind == "Dense":
            dense = tnn.Linear(*weights[0].shape, dtype=torch.float64)
            dense.weight.data = weights[0].T.contiguous()
            dense.bias.data = weights[1]
            mods.append(dense)
        else:
            raise NotImplementedError(kind)
        act = acts[cfg.get("activation")]
        if act is not None:
            mods.append(act())
    return tnn.Sequential(*mods).eval()


def _NHWC():
    from torch import nn as tnn

    class NHWC(tnn.Module):  # Keras flattens channels_last maps in (H, W, C) order
        def forward(self, x):
            return x.permute(0, 2, 3, 1)

    return NHWC()

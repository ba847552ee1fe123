"""Reference solution of exercises/task9_saliency_smoothgrad.py."""

import numpy as np

import tinygrad_cnn as tg


def saliency(model, x, target):
    xt = tg.Tensor(np.asarray(x, np.float64), requires_grad=True)
    logits = model(xt)
    score = logits[np.arange(len(target)), np.asarray(target)].sum()
    (g,) = tg.grad(score, [xt])
    return g.numpy()


def smoothgrad(model, x, target, noise, noise_level):
    axes = tuple(range(1, x.ndim))
    sigma = noise_level * (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
    return np.mean([saliency(model, x + sigma * eps, target) for eps in noise], axis=0)

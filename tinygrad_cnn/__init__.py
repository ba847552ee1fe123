"""tinygrad_cnn: a reverse-mode autodiff engine for convolutional networks, on NumPy."""

from tinygrad_cnn.tensor import Tensor  # isort: skip  (the core first: the Tensor, its primitives, reverse mode)
from tinygrad_cnn.anomaly import AnomalyError, detect_anomaly
from tinygrad_cnn.conv_arithmetic import conv_output_size, conv_padding, receptive_field
from tinygrad_cnn.creation import arange, eye, full, linspace, ones, ones_like, rand, randn, zeros, zeros_like
from tinygrad_cnn.function import Function
from tinygrad_cnn.modes import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tinygrad_cnn.ops import (  # noqa: A004  (NumPy's module functions, any and all included)
    all,
    any,
    argmax,
    argmin,
    argsort,
    concatenate,
    cumprod,
    cumsum,
    maximum,
    minimum,
    prod,
    sort,
    stack,
    std,
    take_along_axis,
    var,
)
from tinygrad_cnn.ops.indexing import where
from tinygrad_cnn.threads import ThreadTuner, get_num_threads, num_threads, set_num_threads
from tinygrad_cnn.trace import trace
from tinygrad_cnn.transforms import (  # grad: JAX's transform for a function, torch.autograd.grad for Tensors
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linearize,
    value_and_grad,
    vjp,
)

from tinygrad_cnn import nn, optim  # isort: skip  (layers and optimizers, after the engine)

cat = concatenate  # PyTorch's name: cat(tensors, dim) is concatenate(tensors, axis)

__version__ = "0.1.0"

__all__ = [
    "AnomalyError", "Function", "Tensor", "detect_anomaly", "enable_grad", "grad", "is_grad_enabled",
    "no_grad", "set_grad_enabled", "trace",
    # JAX's function transforms (tinygrad_cnn.transforms)
    "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jvp", "linearize", "value_and_grad", "vjp",
    "conv_output_size", "conv_padding", "receptive_field", "nn", "optim",
    # NumPy's module functions for reductions and indexing
    "all", "any", "argmax", "argmin", "argsort", "cumprod", "cumsum", "maximum", "minimum", "prod", "sort", "std",
    "take_along_axis", "var", "where",
]
__all__ += ["ThreadTuner", "get_num_threads", "num_threads", "set_num_threads"]
__all__ += ["arange", "cat", "concatenate", "eye", "full", "linspace", "ones", "ones_like", "rand", "randn", "stack",
            "zeros", "zeros_like"]

"""Convolution arithmetic: output sizes, padding amounts and receptive fields.

One spatial axis at a time. A kernel of ``F`` taps with dilation ``d`` spans
``F_eff = d * (F - 1) + 1`` input cells. With ``P_before + P_after`` zeros
added around an axis of ``W`` cells and a stride ``S``, the windows start at
``0, S, 2S, ...`` as long as they fit, so the output has

    O = floor((W + P_before + P_after - F_eff) / S) + 1

cells. With symmetric padding ``P`` and no dilation this is the textbook
``(W - F + 2P) / S + 1``. When ``S`` does not divide ``W - F + 2P`` the
division is rounded *down*: the last ``(W - F + 2P) mod S`` cells (of the
padded input) are never reached by a window and take no part in the output
(their gradient is zero). Example: W=7, F=3, P=0, S=2 gives (7-3)/2+1 = 3;
W=8 gives floor(5/2)+1 = 3 as well, and the 8th cell is never read.

Padding modes (Keras/TensorFlow names):

* ``"valid"``: no padding, ``O = floor((W - F_eff) / S) + 1``.
* ``"same"``: ``O = ceil(W / S)``; the total padding is the least that makes
  that fit, ``max((O - 1) * S + F_eff - W, 0)``, split with the extra cell
  *after* (``before = total // 2``). With S=1 and odd F this is (F-1)/2 each
  side and ``O = W``.
* ``"causal"`` (1-D only): all ``F_eff - 1`` zeros before, so output ``t``
  sees inputs ``<= t`` only.
* explicit: an int ``p`` (``(p, p)``) or a ``(before, after)`` pair.
"""

from __future__ import annotations

from tinygrad_cnn import validation

__all__ = ["conv_output_size", "conv_padding", "effective_kernel_size", "receptive_field", "receptive_fields"]

PADDING_MODES = ("valid", "same", "causal")


def effective_kernel_size(kernel_size: int, dilation_rate: int = 1) -> int:
    """``d * (F - 1) + 1``: the number of input cells a dilated kernel spans."""
    return dilation_rate * (kernel_size - 1) + 1


def conv_padding(size: int, kernel_size: int, strides: int = 1, padding="valid", dilation_rate: int = 1,
                 fn: str = "conv_padding") -> tuple[int, int]:
    """The zeros added ``(before, after)`` one spatial axis of ``size`` cells for ``padding``.

    ``"valid"`` -> (0, 0); ``"same"`` -> total ``max((ceil(size/S) - 1) * S + F_eff - size, 0)``
    with ``before = total // 2`` (the odd cell goes after, TensorFlow's rule);
    ``"causal"`` -> ``(F_eff - 1, 0)``; an int ``p`` -> ``(p, p)``; a pair is returned as is.
    ``F_eff = dilation_rate * (kernel_size - 1) + 1``.
    """
    validation.positive_int(fn, "strides", strides)
    validation.positive_int(fn, "dilation_rate", dilation_rate)
    validation.positive_int(fn, "kernel_size", kernel_size)
    k_eff = effective_kernel_size(kernel_size, dilation_rate)
    if isinstance(padding, str):
        mode = validation.choice(fn, "padding", padding, PADDING_MODES)
        if mode == "valid":
            return (0, 0)
        if mode == "causal":
            return (k_eff - 1, 0)
        out = -(-size // strides)
        total = max((out - 1) * strides + k_eff - size, 0)
        return (total // 2, total - total // 2)
    if validation.is_int(padding):
        validation.positive_int(fn, "padding", padding, minimum=0)
        return (int(padding), int(padding))
    if (isinstance(padding, (tuple, list)) and len(padding) == 2 and all(validation.is_int(p) for p in padding)
            and min(padding) >= 0):
        return (int(padding[0]), int(padding[1]))
    raise ValueError(f"{fn}: padding={padding!r} must be 'valid', 'same', 'causal', a non-negative int "
                     f"or a (before, after) pair of non-negative ints")


def conv_output_size(size: int, kernel_size: int, strides: int = 1, padding="valid", dilation_rate: int = 1,
                     fn: str = "conv_output_size") -> int:
    """Output cells along one axis: ``floor((size + P_before + P_after - F_eff) / S) + 1``.

    ``F_eff = dilation_rate * (kernel_size - 1) + 1``; the pads come from
    :func:`conv_padding`. The floor means a stride that does not divide
    ``size + P - F_eff`` leaves the last few cells unread. Raises ``ValueError``
    if the dilated kernel is larger than the padded input (no window fits).

    >>> conv_output_size(28, 3, padding="same"), conv_output_size(28, 3), conv_output_size(7, 3, strides=2)
    (28, 26, 3)
    """
    validation.positive_int(fn, "size", size)
    before, after = conv_padding(size, kernel_size, strides, padding, dilation_rate, fn=fn)
    k_eff = effective_kernel_size(kernel_size, dilation_rate)
    padded = size + before + after
    if k_eff > padded:
        raise ValueError(f"{fn}: the kernel spans {k_eff} cells (kernel_size={kernel_size}, "
                         f"dilation_rate={dilation_rate}) but the padded input has only {padded} "
                         f"(size {size} + padding {before}+{after}); the kernel must fit in the padded input")
    return (padded - k_eff) // strides + 1


def _layer_triples(layers) -> list[tuple[int, int, int]]:
    out = []
    for i, layer in enumerate(layers):
        triple = tuple(layer) if isinstance(layer, (tuple, list)) else (layer,)
        triple = triple + (1, 1)[len(triple) - 1:] if len(triple) < 3 else triple
        if len(triple) != 3:
            raise ValueError(f"receptive_field: layers[{i}]={layer!r} must be (kernel, stride, dilation)")
        for name, v in zip(("kernel", "stride", "dilation"), triple, strict=False):
            validation.positive_int("receptive_field", f"layers[{i}] {name}", v)
        out.append(triple)
    return out


def receptive_fields(layers) -> list[int]:
    """Receptive field (input cells along one axis) after each layer of a stack.

    ``layers`` lists ``(kernel, stride, dilation)`` per layer (a bare int is a
    kernel with stride 1; pools are layers too, e.g. ``(2, 2, 1)``). With
    ``J_i`` the product of the strides before layer ``i`` (the "jump" between
    neighbouring outputs of layer ``i - 1``, in input cells):

        R_0 = 1,   R_i = R_{i-1} + (F_eff_i - 1) * J_i

    >>> receptive_fields([(3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1)])
    [3, 4, 8, 10]
    """
    r, jump, out = 1, 1, []
    for kernel, stride, dilation in _layer_triples(layers):
        r += (effective_kernel_size(kernel, dilation) - 1) * jump
        jump *= stride
        out.append(r)
    return out


def receptive_field(layers) -> int:
    """Receptive field of the last layer of ``layers`` (see :func:`receptive_fields`); 1 for no layers."""
    fields = receptive_fields(layers)
    return fields[-1] if fields else 1

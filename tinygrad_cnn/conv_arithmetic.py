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

from dataclasses import dataclass, replace

import numpy as np

from tinygrad_cnn import validation

__all__ = ["ConvGeometry", "PoolGeometry", "adaptive_windows", "conv_output_size", "conv_padding",
           "effective_kernel_size", "explicit_pads", "output_sizes", "receptive_field", "receptive_fields",
           "resolve_padding", "transpose_padding"]

PADDING_MODES = ("valid", "same", "causal")


def effective_kernel_size(kernel_size: int, dilation_rate: int = 1) -> int:
    """``d * (F - 1) + 1``: the number of input cells a dilated kernel spans."""
    return dilation_rate * (kernel_size - 1) + 1


def _mode_padding(size: int, k_eff: int, strides: int, mode: str) -> tuple[int, int]:
    if mode == "valid":
        return (0, 0)
    if mode == "causal":
        return (k_eff - 1, 0)
    out = -(-size // strides)
    total = max((out - 1) * strides + k_eff - size, 0)
    return (total // 2, total - total // 2)


def conv_padding(size: int, kernel_size: int, strides: int = 1, padding="valid", dilation_rate: int = 1,
                 fn: str = "conv_padding") -> tuple[int, int]:
    """The zeros added ``(before, after)`` one spatial axis of ``size`` cells for ``padding``.

    ``"valid"`` -> (0, 0); ``"same"`` -> total ``max((ceil(size/S) - 1) * S + F_eff - size, 0)``
    with ``before = total // 2`` (the odd cell goes after, TensorFlow's rule);
    ``"causal"`` -> ``(F_eff - 1, 0)``; an int ``p`` -> ``(p, p)``; a pair is returned as is.
    ``F_eff = dilation_rate * (kernel_size - 1) + 1``.

    Args:
        size: int, the input's cells along the axis.
        kernel_size: int F.
        strides: int S, default 1.
        padding: ``"valid"`` (default), ``"same"``, ``"causal"``, an int or a ``(before, after)`` pair.
        dilation_rate: int d, default 1.
        fn: str, the caller's name used in error messages (default this function's).
    """
    validation.positive_int(fn, "strides", strides)
    validation.positive_int(fn, "dilation_rate", dilation_rate)
    validation.positive_int(fn, "kernel_size", kernel_size)
    if isinstance(padding, str):
        mode = validation.choice(fn, "padding", padding, PADDING_MODES)
        return _mode_padding(size, effective_kernel_size(kernel_size, dilation_rate), strides, mode)
    if validation.is_int(padding):
        validation.positive_int(fn, "padding", padding, minimum=0)
        return (int(padding), int(padding))
    if _is_pair(padding) and min(padding) >= 0:
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

    Args:
        size: int W, the input's cells along the axis.
        kernel_size: int F.
        strides: int S, default 1.
        padding: ``"valid"`` (default), ``"same"``, ``"causal"``, an int or a ``(before, after)`` pair.
        dilation_rate: int d, default 1.
        fn: str, the caller's name used in error messages (default this function's).
    """
    validation.positive_int(fn, "size", size)
    pair = conv_padding(size, kernel_size, strides, padding, dilation_rate, fn=fn)
    return _checked_size(fn, size, kernel_size, strides, dilation_rate, pair)


def _checked_size(fn, size, kernel_size, strides, dilation_rate, pair) -> int:
    k_eff = effective_kernel_size(kernel_size, dilation_rate)
    padded = size + pair[0] + pair[1]
    if k_eff > padded:
        raise ValueError(f"{fn}: the kernel spans {k_eff} cells (kernel_size={kernel_size}, "
                         f"dilation_rate={dilation_rate}) but the padded input has only {padded} "
                         f"(size {size} + padding {pair[0]}+{pair[1]}); the kernel must fit in the padded input")
    return (padded - k_eff) // strides + 1


def output_sizes(spatial, window, strides, dilation, pads) -> tuple[int, ...]:
    """``floor((W + P_before + P_after - F_eff) / S) + 1`` per axis, unchecked (the hot-path form)."""
    return tuple((n + b + a - (r * (k - 1) + 1)) // s + 1
                 for n, k, s, r, (b, a) in zip(spatial, window, strides, dilation, pads, strict=False))


def _is_pair(p) -> bool:
    return isinstance(p, (tuple, list)) and len(p) == 2 and all(validation.is_int(v) for v in p)


def explicit_pads(fn: str, padding, rank: int) -> tuple[tuple[int, int], ...] | None:
    """Explicit padding as one ``(before, after)`` pair per spatial axis; ``None`` for a padding name.

    Accepted: an int ``p`` (``(p, p)`` on every axis), one int or ``(before, after)`` pair per spatial
    axis, or (1-D) a single ``(before, after)`` pair. Every amount must be >= 0.
    """
    if isinstance(padding, str):
        return None
    if validation.is_int(padding):
        pads = ((padding, padding),) * rank
    elif isinstance(padding, (tuple, list)) and len(padding) == rank and all(
            validation.is_int(p) or _is_pair(p) for p in padding):
        pads = tuple((p, p) if validation.is_int(p) else tuple(p) for p in padding)
    elif rank == 1 and _is_pair(padding):
        pads = (tuple(padding),)
    else:
        raise ValueError(f"{fn}: padding={padding!r} must be 'valid', 'same', 'causal' (1-D), an int, or one "
                         f"int or (before, after) pair per spatial axis ({rank} axes)")
    if any(v < 0 for pair in pads for v in pair):
        raise ValueError(f"{fn}: padding={padding!r} must be non-negative")
    return tuple((int(b), int(a)) for b, a in pads)


def resolve_padding(fn: str, padding, spatial, window, strides, dilation,
                    modes=PADDING_MODES) -> tuple[tuple[int, int], ...]:
    """THE padding resolver of the engine and the twin: one ``(before, after)`` pair per spatial axis.

    ``padding`` is a name in ``modes`` (``"causal"`` only with one spatial axis) or explicit (see
    :func:`explicit_pads`). Checks that every axis has at least one output cell.
    """
    rank = len(spatial)
    pads = explicit_pads(fn, padding, rank)
    if pads is None:
        mode = validation.choice(fn, "padding", padding, modes)
        if mode == "causal" and rank != 1:
            raise ValueError(f"{fn}: padding='causal' is only defined for 1-D convolutions; got an input with "
                             f"{rank} spatial axes")
        pads = tuple(_mode_padding(n, effective_kernel_size(k, r), s, mode)
                     for n, k, s, r in zip(spatial, window, strides, dilation, strict=True))
    for n, k, s, r, pair in zip(spatial, window, strides, dilation, pads, strict=True):
        _checked_size(fn, n, k, s, r, pair)
    return pads


def transpose_padding(fn: str, spatial, ksize, strides, dilation, padding, output_padding):
    """A transposed conv's ``(left, right)`` pads on the ``S``-dilated input and its output sizes, per axis.

    The transposed conv is a stride-1 conv of the input with ``S - 1`` zeros between its cells, padded by
    ``(left, right)``; its output has ``(W - 1) S + left + right - F_eff + 2`` cells. As Keras'
    ``Conv*DTranspose`` (``F_eff = r (F - 1) + 1``, ``op`` = ``output_padding``):
    ``"valid"``: left ``F_eff - 1``, right ``F_eff - 1 + op`` with ``op`` defaulting to ``max(F_eff, S) - F_eff``,
    so ``(W - 1) S + F_eff + op`` cells; ``"same"``: total ``L = S + F_eff - 2`` (no ``op``) or
    ``F_eff + F_eff % 2 - 2 + op``, left ``min(ceil(L / 2), F_eff - 1)``, so ``W S`` or
    ``(W - 1) S + F_eff % 2 + op`` cells. Explicit ``padding`` (PyTorch's: ``(p_before, p_after)`` cells cut
    from the full output, ``op`` defaulting to 0): left ``F_eff - 1 - p_before``, right
    ``F_eff - 1 - p_after + op``, so ``(W - 1) S + F_eff - p_before - p_after + op`` cells.
    ``lax.conv_transpose`` takes these pads as they are; the engine's adjoint takes
    ``(F_eff - 1 - left, F_eff - 1 - right)``.
    """
    rank = len(spatial)
    explicit = explicit_pads(fn, padding, rank)
    mode = "explicit" if explicit is not None else validation.choice(fn, "padding", padding, ("valid", "same"))
    ops_ = (None,) * rank if output_padding is None else validation.int_tuple(
        fn, "output_padding", output_padding, rank, minimum=0)
    pads, out = [], []
    for i, (n, k, s, r, op) in enumerate(zip(spatial, ksize, strides, dilation, ops_, strict=True)):
        if op is not None and op >= s:
            raise ValueError(f"{fn}: output_padding must be smaller than strides on every axis; got "
                             f"output_padding={output_padding!r} with strides={tuple(strides)}")
        ke = effective_kernel_size(k, r)
        if mode == "valid":
            left, right = ke - 1, ke - 1 + (max(ke, s) - ke if op is None else op)
        elif mode == "explicit":
            left, right = ke - 1 - explicit[i][0], ke - 1 - explicit[i][1] + (op or 0)
        else:
            total = s + ke - 2 if op is None else ke + ke % 2 - 2 + op
            left = min(total // 2 + total % 2, ke - 1)
            right = total - left
        size = (n - 1) * s + left + right - ke + 2
        if size < 1:
            raise ValueError(f"{fn}: the output would have {size} cells along a spatial axis (input {n}, "
                             f"kernel {k}, strides {s}, padding {mode!r}, output_padding {op})")
        pads.append((left, right))
        out.append(size)
    return tuple(pads), tuple(out)


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling's windows along one axis (PyTorch's rule): output cell ``i`` of ``out`` covers input
    cells ``[floor(i * size / out), ceil((i + 1) * size / out))``. Returns the starts and the (exclusive) ends."""
    i = np.arange(out)
    return (i * size) // out, -(-((i + 1) * size) // out)


class _WindowArithmetic:
    """The arithmetic of a window of ``window`` taps per axis (shared by :class:`ConvGeometry` and
    :class:`PoolGeometry`, whose fields ``strides``, ``dilation`` and ``pads`` it reads)."""

    __slots__ = ()

    @property
    def rank(self) -> int:
        return len(self.window)

    def effective_kernel(self) -> tuple[int, ...]:
        """``F_eff = r (F - 1) + 1`` per axis: the input cells one window spans."""
        return tuple(effective_kernel_size(k, r) for k, r in zip(self.window, self.dilation, strict=True))

    def padded_size(self, spatial) -> tuple[int, ...]:
        """``W + before + after`` per axis."""
        return tuple(n + b + a for n, (b, a) in zip(spatial, self.pads, strict=True))

    def output_size(self, spatial) -> tuple[int, ...]:
        """``floor((W + before + after - F_eff) / S) + 1`` per axis."""
        return output_sizes(spatial, self.window, self.strides, self.dilation, self.pads)

    def receptive_field(self) -> tuple[tuple[int, int], ...]:
        """Per axis ``(F_eff, S)``: the input cells one output cell sees and the jump between neighbouring
        outputs (this layer's entry for :func:`receptive_fields`)."""
        return tuple(zip(self.effective_kernel(), self.strides, strict=True))

    def disjoint(self) -> bool:
        """No two windows share a cell (``S >= F_eff`` on every axis)."""
        return all(s >= k for s, k in zip(self.strides, self.effective_kernel(), strict=True))

    def with_pads(self, pads):
        """The same geometry with other ``pads``."""
        return replace(self, pads=tuple((int(b), int(a)) for b, a in pads))


@dataclass(frozen=True)
class ConvGeometry(_WindowArithmetic):
    """A convolution's window parameters, one entry per spatial axis.

    ``ksize`` (kernel taps ``F``), ``strides`` (``S``), ``dilation`` (``r``), ``pads`` (``(before, after)``
    cells added, a negative amount crops) and ``groups``. Output cell ``o`` reads input cells
    ``o * S + k * r - before`` for taps ``k = 0 .. F - 1``.
    """

    ksize: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    groups: int = 1

    @classmethod
    def resolve(cls, fn: str, spatial, ksize, strides, padding, dilation, groups: int = 1) -> ConvGeometry:
        """The geometry for an input of ``spatial`` size; ``padding`` as :func:`resolve_padding` takes it."""
        pads = resolve_padding(fn, padding, spatial, ksize, strides, dilation)
        return cls(tuple(ksize), tuple(strides), tuple(dilation), pads, int(groups))

    @property
    def window(self) -> tuple[int, ...]:
        return self.ksize


@dataclass(frozen=True)
class PoolGeometry(_WindowArithmetic):
    """A pooling window's parameters, one entry per spatial axis: ``pool`` taps, ``strides``, ``pads``
    ``(before, after)`` and ``dilation`` (default 1). Window ``o`` covers cells ``o * S + k * r - before``."""

    pool: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.dilation:
            object.__setattr__(self, "dilation", (1,) * len(self.pool))

    @property
    def window(self) -> tuple[int, ...]:
        return self.pool


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
    """Receptive field of the last layer of ``layers`` (see :func:`receptive_fields`); 1 for no layers.

    Args:
        layers: one ``(kernel, stride, dilation)`` per layer, first layer first (a bare int is a kernel with
            stride 1), as :func:`receptive_fields` takes.
    """
    fields = receptive_fields(layers)
    return fields[-1] if fields else 1

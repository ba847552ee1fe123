"""Argument checking and resolution for the conv and pool wrappers in ``tinygrad_cnn.functional``.

Turns user arguments (ints or tuples, padding names, data formats) into the
explicit per-axis tuples the primitives take, raising ``ValueError``/``TypeError``
messages that name the function, the argument, the value and what was expected.
"""

from __future__ import annotations

from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import conv_output_size, conv_padding, effective_kernel_size


def spatial_shape(x_shape, data_format: str) -> tuple[int, ...]:
    return tuple(x_shape[1:-1]) if data_format == "channels_last" else tuple(x_shape[2:])


def channels(x_shape, data_format: str) -> int:
    return x_shape[-1] if data_format == "channels_last" else x_shape[1]


def _is_pair(p) -> bool:
    return isinstance(p, (tuple, list)) and len(p) == 2 and all(validation.is_int(v) for v in p)


def explicit_pads(fn: str, padding, rank: int) -> tuple[tuple[int, int], ...] | None:
    """An int, one int or (before, after) pair per spatial axis, or (1-D) a single pair; None for a string."""
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


def resolve_padding(fn: str, padding, spatial, ksize, strides, dilation, modes=("valid", "same", "causal")):
    """Per-axis (before, after) pads; checks every axis has at least one output cell."""
    rank = len(spatial)
    pads = explicit_pads(fn, padding, rank)
    if pads is None:
        mode = validation.choice(fn, "padding", padding, modes)
        if mode == "causal" and rank != 1:
            raise ValueError(f"{fn}: padding='causal' is only defined for 1-D convolutions; got an input with "
                             f"{rank} spatial axes")
        pads = tuple(conv_padding(n, k, s, mode, r, fn=fn)
                     for n, k, s, r in zip(spatial, ksize, strides, dilation, strict=False))
    for n, k, s, r, pair in zip(spatial, ksize, strides, dilation, pads, strict=False):
        conv_output_size(n, k, s, pair, r, fn=fn)
    return pads


def conv_args(fn: str, x_shape, k_shape, strides, padding, dilation_rate, groups, data_format, rank=None):
    """Check a conv call; return (data_format, strides, dilation, pads, groups)."""
    data_format = validation.data_format(fn, data_format)
    d = len(k_shape) - 2
    if d not in (1, 2, 3):
        raise ValueError(f"{fn}: kernel must have rank 3, 4 or 5 (kernel_size + (in_channels // groups, "
                         f"filters)); got shape {tuple(k_shape)}")
    if rank is not None and d != rank:
        raise ValueError(f"{fn}: kernel must have rank {rank + 2} (kernel_size + (in_channels // groups, "
                         f"filters)); got shape {tuple(k_shape)} (rank {len(k_shape)})")
    validation.rank(fn, "x", x_shape, d + 2)
    groups = validation.positive_int(fn, "groups", groups)
    c_in = channels(x_shape, data_format)
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the input's {c_in} channels (x shape {tuple(x_shape)})")
    if k_shape[-1] % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the kernel's {k_shape[-1]} filters "
                         f"(kernel shape {tuple(k_shape)})")
    if k_shape[-2] * groups != c_in:
        per = f" ({k_shape[-2]} per group x {groups} groups)" if groups > 1 else ""
        raise ValueError(f"{fn}: input has {c_in} channels but kernel expects {k_shape[-2] * groups}{per} "
                         f"(kernel shape {tuple(k_shape)})")
    for n in k_shape[:-2]:
        if n < 1:
            raise ValueError(f"{fn}: kernel_size must be >= 1 on every axis; got kernel shape {tuple(k_shape)}")
    strides = validation.int_tuple(fn, "strides", strides, d)
    dilation = validation.int_tuple(fn, "dilation_rate", dilation_rate, d)
    pads = resolve_padding(fn, padding, spatial_shape(x_shape, data_format), k_shape[:-2], strides, dilation)
    return data_format, strides, dilation, pads, groups


def conv_transpose_args(fn: str, x_shape, k_shape, strides, padding, output_padding, dilation_rate, data_format):
    """Check a transposed conv; return (data_format, strides, dilation, pads, out_spatial).

    Output size per axis, exactly as Keras' ``Conv*DTranspose`` (F_eff = r*(F-1)+1):
    ``"valid"``: ``(W-1)*S + F_eff + op`` with ``op`` defaulting to ``max(F_eff, S) - F_eff``;
    ``"same"``: ``W*S`` if ``op`` is None, else ``(W-1)*S + F_eff % 2 + op``.
    The result is the adjoint of a conv from that size with pads ``(F_eff-1-left, F_eff-1-right)``,
    where ``(left, right)`` is the padding of the equivalent stride-1 conv over the dilated input.
    """
    data_format = validation.data_format(fn, data_format)
    d = len(k_shape) - 2
    if d not in (1, 2, 3):
        raise ValueError(f"{fn}: kernel must have rank 3, 4 or 5 (kernel_size + (filters, in_channels)); "
                         f"got shape {tuple(k_shape)}")
    validation.rank(fn, "x", x_shape, d + 2)
    c_in = channels(x_shape, data_format)
    if k_shape[-1] != c_in:
        raise ValueError(f"{fn}: input has {c_in} channels but kernel expects {k_shape[-1]} "
                         f"(kernel shape {tuple(k_shape)}, layout kernel_size + (filters, in_channels))")
    strides = validation.int_tuple(fn, "strides", strides, d)
    dilation = validation.int_tuple(fn, "dilation_rate", dilation_rate, d)
    mode = validation.choice(fn, "padding", padding, ("valid", "same"))
    ops_ = (None,) * d if output_padding is None else validation.int_tuple(fn, "output_padding", output_padding,
                                                                             d, minimum=0)
    pads, out = [], []
    for n, k, s, r, op in zip(spatial_shape(x_shape, data_format), k_shape[:-2], strides, dilation, ops_, strict=False):
        if op is not None and op >= s:
            raise ValueError(f"{fn}: output_padding must be smaller than strides on every axis; got "
                             f"output_padding={output_padding!r} with strides={strides}")
        ke = effective_kernel_size(k, r)
        if mode == "valid":
            extra = max(ke, s) - ke if op is None else op
            left, right = ke - 1, ke - 1 + extra
        else:
            total = s + ke - 2 if op is None else ke + ke % 2 - 2 + op
            left = min(total // 2 + total % 2, ke - 1)
            right = total - left
        size = (n - 1) * s + left + right - ke + 2
        if size < 1:
            raise ValueError(f"{fn}: the output would have {size} cells along a spatial axis (input {n}, "
                             f"kernel {k}, strides {s}, padding {mode!r}, output_padding {op})")
        pads.append((ke - 1 - left, ke - 1 - right))
        out.append(size)
    return data_format, strides, dilation, tuple(pads), tuple(out)


def pool_args(fn: str, x_shape, pool_size, strides, padding, data_format):
    """Check a pooling call; return (data_format, pool, strides, pads)."""
    data_format = validation.data_format(fn, data_format)
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"{fn}: x must have rank 3, 4 or 5 (batch, 1-3 spatial axes, channels); "
                         f"got shape {tuple(x_shape)} (rank {len(x_shape)})")
    d = len(x_shape) - 2
    pool = validation.int_tuple(fn, "pool_size", pool_size, d)
    strides = pool if strides is None else validation.int_tuple(fn, "strides", strides, d)
    if not isinstance(padding, str):
        raise ValueError(f"{fn}: padding={padding!r} must be 'valid' or 'same' for pooling")
    pads = resolve_padding(fn, padding, spatial_shape(x_shape, data_format), pool, strides, (1,) * d,
                           modes=("valid", "same"))
    return data_format, pool, strides, pads

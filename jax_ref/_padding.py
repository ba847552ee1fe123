"""Padding and output-size arithmetic shared by the twin's convolutions and pools.

When the engine's ``tinygrad_cnn.conv_arithmetic`` exists its ``conv_padding``
is used, so both sides follow one padding rule; the fallback below implements
the same rule:

* ``"valid"``: no padding, ``out = floor((n - k_eff) / s) + 1`` with ``k_eff = (k - 1) d + 1``;
* ``"same"`` (TensorFlow/Keras): ``out = ceil(n / s)``, total pad
  ``max((out - 1) s + k_eff - n, 0)``, ``total // 2`` before and the rest after;
* ``"causal"`` (1-D convolutions only): ``k_eff - 1`` before, nothing after;
* explicit: an int ``p`` (``(p, p)`` on every axis) or one int or ``(before, after)`` pair per spatial axis.
"""

from __future__ import annotations

from tinygrad_cnn import validation


def _fallback_conv_padding(fn, padding, spatial, kernel_size, strides, dilation_rate, allow_causal=True):
    rank = len(spatial)
    if isinstance(padding, str):
        mode = validation.choice(fn, "padding", padding,
                                 ("valid", "same", "causal") if allow_causal else ("valid", "same"))
        pads = []
        for n, k, s, d in zip(spatial, kernel_size, strides, dilation_rate, strict=True):
            k_eff = (k - 1) * d + 1
            if mode == "valid":
                pads.append((0, 0))
            elif mode == "same":
                out = -(-n // s)
                total = max((out - 1) * s + k_eff - n, 0)
                pads.append((total // 2, total - total // 2))
            else:
                if rank != 1:
                    raise ValueError(f"{fn}: padding='causal' is only for 1-D convolutions; got {rank} spatial axes")
                pads.append((k_eff - 1, 0))
        return tuple(pads)
    if validation.is_int(padding):
        if padding < 0:
            raise ValueError(f"{fn}: padding must be >= 0; got {padding}")
        return ((int(padding), int(padding)),) * rank
    if isinstance(padding, (tuple, list)) and len(padding) == rank:
        pads = []
        for p in padding:
            if validation.is_int(p) and p >= 0:
                pads.append((int(p), int(p)))
            elif (isinstance(p, (tuple, list)) and len(p) == 2 and all(validation.is_int(v) and v >= 0 for v in p)):
                pads.append((int(p[0]), int(p[1])))
            else:
                break
        else:
            return tuple(pads)
    raise ValueError(f"{fn}: padding must be 'valid', 'same'{', ' + repr('causal') if allow_causal else ''}, "
                     f"an int or one int or (before, after) pair per spatial axis ({rank}); got {padding!r}")


def conv_padding(fn, padding, spatial, kernel_size, strides, dilation_rate, allow_causal=True):
    """``((before, after), ...)`` per spatial axis for the given padding mode (see the module docstring).

    Padding modes go through the engine's ``tinygrad_cnn.conv_arithmetic.conv_padding``
    when it exists, so both sides follow one rule.
    """
    if isinstance(padding, str):
        try:
            from tinygrad_cnn.conv_arithmetic import conv_padding as engine_conv_padding
        except ImportError:  # pragma: no cover - older engine
            engine_conv_padding = None
        if engine_conv_padding is not None:
            modes = ("valid", "same", "causal") if allow_causal else ("valid", "same")
            mode = validation.choice(fn, "padding", padding, modes)
            if mode == "causal" and len(spatial) != 1:
                raise ValueError(f"{fn}: padding='causal' is only for 1-D convolutions; got {len(spatial)} "
                                 f"spatial axes")
            return tuple(engine_conv_padding(n, k, s, mode, d, fn=fn)
                         for n, k, s, d in zip(spatial, kernel_size, strides, dilation_rate, strict=True))
    if (len(spatial) == 1 and isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(validation.is_int(v) and v >= 0 for v in padding)):
        return ((int(padding[0]), int(padding[1])),)  # 1-D: a single (before, after) pair
    return _fallback_conv_padding(fn, padding, spatial, kernel_size, strides, dilation_rate, allow_causal)


def conv_transpose_padding(kernel_size, strides, dilation_rate, padding, output_padding):
    """Keras' ``conv_transpose`` pads for ``lax.conv_transpose`` (one ``(left, right)`` per axis).

    Output size: ``"valid"``: ``(n - 1) s + k_eff + op`` with ``op`` defaulting to
    ``max(k_eff, s) - k_eff``; ``"same"``: ``n s`` without ``output_padding``, else
    ``(n - 1) s + k_eff % 2 + op``. The pads realise these sizes on the
    ``s``-dilated input: left ``k_eff - 1`` for valid, else ``min(ceil(L / 2), k_eff - 1)``.
    """
    pads = []
    for i, (k, s, d) in enumerate(zip(kernel_size, strides, dilation_rate, strict=True)):
        op = None if output_padding is None else output_padding[i]
        k_eff = (k - 1) * d + 1
        if padding == "valid":
            op = max(k_eff, s) - k_eff if op is None else op
            pads.append((k_eff - 1, k_eff - 1 + op))
        else:
            total = s + k_eff - 2 if op is None else k_eff + k_eff % 2 - 2 + op
            left = min(total // 2 + total % 2, k_eff - 1)
            pads.append((left, total - left))
    return tuple(pads)

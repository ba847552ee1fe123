"""Argument descriptions shared by several layers' docstrings (Google style), so each is written once.

Each constant is an indented block of ``Args:`` lines (8 spaces, as inside a class body's docstring);
a layer's docstring is its own text followed by the blocks it takes.
"""

LAYER_KWARGS = """\
        **kwargs: the base ``Layer`` arguments: ``name`` (str, default a unique ``<class>_<n>``),
            ``dtype`` (the weights' dtype or a policy name, default ``"float32"``), ``trainable``
            (bool, default True; False freezes the weights), ``input_shape`` (shape without the batch
            axis, to build at construction), ``activity_regularizer`` (penalty on the output)."""

WEIGHT_ARGS = """\
        activation: name (``"relu"``, ``"softmax"``, ...) or callable applied to the output;
            None (default) is the identity.
        use_bias: bool, default True: add a learned ``bias`` vector.
        {k}_initializer: initializer of the kernel (name, ``nn.initializers`` object or callable
            ``(shape, dtype) -> array``), default ``"glorot_uniform"``: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
        bias_initializer: initializer of the bias, default ``"zeros"``.
        {k}_regularizer, bias_regularizer: penalty added to the loss (e.g. ``nn.regularizers.L2(1e-4)``:
            1e-4 * sum(w^2)), default None.
        {k}_constraint, bias_constraint: projection applied after each optimizer step (e.g. ``"non_neg"``),
            default None."""

CONV_GEOMETRY = """\
        kernel_size: int or tuple of ``rank`` ints, the window size F.
        strides: int or tuple, default 1: the step S between windows.
        padding: ``"valid"`` (default, no padding: out = floor((W - F_eff) / S) + 1), ``"same"``
            (zeros so that out = ceil(W / S), extra zero at the end as Keras/TensorFlow), or explicit:
            an int or one ``(before, after)`` pair per spatial axis (PyTorch's form).
        data_format: ``"channels_last"`` (default, ``(batch, *spatial, channels)``) or ``"channels_first"``.
        dilation_rate: int or tuple, default 1: gap d between kernel taps, F_eff = d (F - 1) + 1."""

POOL_ARGS = """\
        pool_size: int or tuple of ``rank`` ints, default 2: the window size.
        strides: int or tuple, default None (= ``pool_size``: non-overlapping windows).
        padding: ``"valid"`` (default) or ``"same"`` (windows over the border see only real cells:
            max ignores the padding, the average divides by the count of real cells, as Keras).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``."""

INPUT_ARGS = """\
        shape: tuple, the shape of one example (batch axis excluded), e.g. ``(28, 28, 1)``; None entries are
            unknown sizes.
        batch_size: int or None (default): a fixed batch size.
        dtype: the input's dtype, default float32.
        batch_shape: tuple including the batch axis (instead of ``shape`` and ``batch_size``).
        name: str or None (default: a unique ``input_layer`` name)."""

"""``Sequential``: a stack of layers with Keras' model API (build, summary, weights, config, training).

Shapes carry ``None`` for the batch axis. ``summary()`` also reports each
layer's receptive field: along each spatial axis, with ``J`` the product of
the strides so far (the distance in input pixels between neighbouring
outputs), a layer with effective kernel ``F_eff`` grows it as
``R <- R + (F_eff - 1) J`` and then ``J <- J S``; a Dense or global pooling
layer sees the whole input.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.nn import _serial, checkpoint, fusion
from tinygrad_cnn.nn.core import InputLayer
from tinygrad_cnn.nn.layer import Layer, _fmt_shape
from tinygrad_cnn.nn.training import ModelBase
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = ["Sequential"]


def nn_serialize(layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


class Sequential(ModelBase):
    """``Sequential(layers, name=None)``: ``model(x, training=False)`` applies the layers in order."""

    def __init__(self, layers=None, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Sequential: name must be a string; got {name!r}")
        self.name = name or _serial.unique_name("sequential")
        self._input: InputLayer | None = None
        self._layers: list[Layer] = []
        self.built = False
        self.input_shape: tuple | None = None
        self._shapes: list[tuple] = []
        ModelBase.__init__(self)
        if layers is not None:
            if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
                raise TypeError(f"Sequential {self.name!r}: layers must be a list of layers; got {layers!r}")
            for layer in layers:
                self.add(layer, rebuild=False)
        shape = self._declared_input_shape()
        if shape is not None:
            self.build(shape)

    # -- construction ----------------------------------------------------------------------------------
    def add(self, layer, rebuild: bool = True) -> None:
        """Append a layer (an ``Input``/``InputLayer`` only as the first element)."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input is not None:
                raise ValueError(f"Sequential {self.name!r}: Input must come first, before any layer")
            self._input = layer
        elif isinstance(layer, Layer):
            self._layers.append(layer)
        else:
            raise TypeError(f"Sequential {self.name!r}: expected a Layer; got {layer!r} of type "
                            f"{type(layer).__name__}")
        if rebuild:
            self.built = False
            shape = self._declared_input_shape() or self.input_shape
            if shape is not None:
                self.build(shape)

    def _declared_input_shape(self):
        if self._input is not None:
            return self._input.batch_shape
        if self._layers and self._layers[0].input_shape_arg is not None:
            return (None,) + self._layers[0].input_shape_arg
        return None

    @property
    def layers(self) -> list[Layer]:
        """The layers (the Input placeholder excluded, as in Keras)."""
        return list(self._layers)

    def build(self, input_shape=None) -> None:
        """Build every layer for ``input_shape`` (batch axis first, may be None) and record the output shapes."""
        input_shape = self._declared_input_shape() if input_shape is None else input_shape
        if input_shape is None:
            raise ValueError(f"Sequential {self.name!r}: build needs an input shape (batch axis first), "
                             f"e.g. build((None, 28, 28, 1)), or an Input layer")
        if not isinstance(input_shape, (tuple, list)) or not all(
                s is None or validation.is_int(s) and s > 0 for s in input_shape):
            raise ValueError(f"Sequential {self.name!r}: input_shape must be a tuple of positive ints (batch axis "
                             f"first, None allowed); got {input_shape!r}")
        shape = (None,) + tuple(input_shape[1:])
        shapes = []
        for layer in self._layers:
            shape = tuple(layer.build_from_shape(shape))
            shapes.append(shape)
        self.input_shape = (None,) + tuple(input_shape[1:])
        self._shapes = shapes
        self.built = True

    @property
    def output_shape(self) -> tuple:
        """The output shape with ``None`` for the batch axis."""
        if not self.built:
            raise ValueError(f"Sequential {self.name!r}: the model is not built yet; call build(input_shape), give "
                             f"an Input layer or call the model on data")
        return self._shapes[-1] if self._shapes else self.input_shape

    # -- forward ---------------------------------------------------------------------------------------
    def __call__(self, x, training: bool = False) -> Tensor:
        x = as_tensor(x)
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        elif x.ndim != len(self.input_shape):
            first = self._layers[0]._where() if self._layers else "the model"
            raise ValueError(f"Sequential {self.name!r}: expected inputs of shape {_fmt_shape(self.input_shape)} "
                             f"(rank {len(self.input_shape)}) for {first}; got shape {tuple(x.shape)}")
        shape = tuple(x.shape)
        i = 0
        while i < len(self._layers):
            layer, after = self._layers[i], self._layers[i + 1:i + 2]
            try:
                fused = fusion.conv_relu_max_pool(layer, after[0], x) if after else None
                x = layer(x, training=training) if fused is None else fused
                i += 1 if fused is None else 2
            except ValueError as exc:
                if tuple(shape[1:]) == tuple(self.input_shape[1:]):
                    raise
                raise ValueError(f"{exc} (Sequential {self.name!r} was built for inputs "
                                 f"{_fmt_shape(self.input_shape)} and called on shape {shape})") from exc
        return x

    # -- weights ---------------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Tensor]:
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable(self) -> bool:
        """True if some layer is trainable. Setting it sets every layer's ``trainable`` (freezing or releasing the
        whole model); a layer's own flag can be changed afterwards and is what counts (unlike Keras, where a
        frozen model also hides the weights of a layer set trainable again)."""
        return any(layer.trainable for layer in self._layers)

    @trainable.setter
    def trainable(self, value) -> None:
        value = validation.boolean(f"Sequential {self.name!r}", "trainable", value)
        for layer in self._layers:
            layer.trainable = value

    def parameters(self) -> list[Tensor]:
        """The trainable weight Tensors, in Keras order (for the optimizers)."""
        return [w for layer in self._layers for w in layer.trainable_weights]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._layers)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, layer by layer, kernel then bias (Keras order)."""
        return [a for layer in self._layers for a in layer.get_weights()]

    def set_weights(self, arrays) -> None:
        """Set every weight from arrays in Keras order; all shapes are checked before anything changes."""
        arrays = list(arrays)
        slots = [(layer, name, t) for layer in self._layers for name, t in zip(layer.weight_names, layer.weights,
                                                                                 strict=True)]
        if len(arrays) != len(slots):
            raise ValueError(f"Sequential {self.name!r}: set_weights expects {len(slots)} arrays; got {len(arrays)}")
        checked = []
        for (layer, name, t), a in zip(slots, arrays, strict=True):
            a = np.asarray(a)
            if a.shape != t.shape:
                raise ValueError(f"Sequential {self.name!r}: {layer._where()} weight {name!r} has shape {t.shape}; "
                                 f"got an array of shape {a.shape}")
            checked.append(a)
        for (_, _, t), a in zip(slots, checked, strict=True):
            t.data[...] = a

    def apply_constraints(self) -> None:
        """Project the constrained weights of every layer (after each optimizer step)."""
        for layer in self._layers:
            layer.apply_constraints()

    @property
    def losses(self) -> list[Tensor]:
        """Every layer's regularization penalties (weights now, activity of the last call)."""
        return [loss for layer in self._layers for loss in layer.losses]

    def save_weights(self, path) -> None:
        """Write the weights to ``path`` as .npz, atomically (see ``tinygrad_cnn.nn.checkpoint``)."""
        checkpoint.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights written by ``save_weights`` (or Keras-ordered arrays); all checked before any change."""
        checkpoint.load_weights(self, path)

    # -- config --------------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-able description: name, layers as ``{"class_name", "config"}`` (Input first), build shape."""
        layers = []
        if self._input is not None:
            layers.append({"class_name": "InputLayer", "config": self._input.get_config()})
        layers += [nn_serialize(layer) for layer in self._layers]
        return {"name": self.name, "layers": layers,
                "build_input_shape": None if self.input_shape is None else list(self.input_shape)}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """Rebuild a model (fresh weights) from ``get_config()``."""
        from tinygrad_cnn import nn
        layers = [nn.deserialize(entry) for entry in config["layers"]]
        model = cls(layers, name=config.get("name"))
        if not model.built and config.get("build_input_shape") is not None:
            model.build(tuple(config["build_input_shape"]))
        return model

    # -- summary ----------------------------------------------------------------------------------------
    def receptive_fields(self) -> list[str]:
        """Per layer, the input pixels one output unit sees, as ``"RxR"`` (``"all"`` after Dense/global pooling)."""
        if not self.built:
            raise ValueError(f"Sequential {self.name!r}: build the model before asking for receptive fields")
        spatial = _input_spatial(self.input_shape, self._layers)
        r = jump = None
        whole = False
        out = []
        for layer in self._layers:
            rf = layer.receptive_field()
            if rf == "global":
                whole = True
            elif rf is not None and not whole:
                if r is None:
                    r, jump = [1.0] * len(rf), [1.0] * len(rf)
                for i, (k, s) in enumerate(rf):
                    r[i] += (k - 1) * jump[i]
                    jump[i] *= s
            if whole:
                out.append("all" if spatial is None else "all (" + "x".join(str(n) for n in spatial) + ")")
            elif r is None:
                out.append("1")
            else:
                sizes = [int(round(v)) for v in r]
                if spatial is not None and len(spatial) == len(sizes):
                    sizes = [min(v, n) if n is not None else v for v, n in zip(sizes, spatial, strict=True)]
                out.append("x".join(str(v) for v in sizes))
        return out

    def summary(self, print_fn=print) -> str:
        """Print (and return) a table: layer (type), output shape, parameters, receptive field, and the totals."""
        if not self.built:
            raise ValueError(f"Sequential {self.name!r}: build the model (or give an Input) before summary()")
        rows = [(f"{layer.name} ({type(layer).__name__})", _fmt_shape(shape), f"{layer.count_params():,}", rf)
                for layer, shape, rf in zip(self._layers, self._shapes, self.receptive_fields(), strict=True)]
        head = ("Layer (type)", "Output Shape", "Param #", "Receptive field")
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(4)]
        line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()
        rule = "-" * len(line)
        total = self.count_params()
        trainable = sum(t.size for t in self.parameters())
        text = [f'Model: "{self.name}"', rule, line, rule]
        text += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        text += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", f"Input shape: {_fmt_shape(self.input_shape)}"]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={len(self._layers)} built={self.built}>"


def _input_spatial(input_shape, layers):
    """The spatial sizes of the model input, read with the data format of the first layer that has one."""
    if input_shape is None or len(input_shape) < 3:
        return None
    fmt = next((getattr(layer, "data_format", None) for layer in layers if hasattr(layer, "data_format")),
               "channels_last")
    return tuple(input_shape[1:-1]) if fmt == "channels_last" else tuple(input_shape[2:])

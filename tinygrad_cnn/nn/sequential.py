"""``Sequential``: a ``Model`` whose graph is a chain of layers, built once the input shape is known.

Shapes carry ``None`` for the batch axis. Until the input shape is known (from an ``Input`` first element, a
first layer's ``input_shape=``, ``build(input_shape)`` or the first call on data) the model is a list of layers;
building calls each layer on the symbolic output of the one before, so a Sequential runs, trains, saves and
fuses on the one path every ``Model`` uses (see ``nn.model``).
"""

from __future__ import annotations

from tinygrad_cnn import validation
from tinygrad_cnn.nn import _serial, registry
from tinygrad_cnn.nn.core import InputLayer
from tinygrad_cnn.nn.graph import SymbolicTensor
from tinygrad_cnn.nn.layer import Layer
from tinygrad_cnn.nn.model import Model
from tinygrad_cnn.nn.training import ModelBase

__all__ = ["Sequential"]


class Sequential(Model):
    """A stack of layers, each fed the previous one's output, as ``keras.Sequential``.

    ``model(x, training=False)`` applies the layers in order. Example::

        model = nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(16, 3, activation="relu"), nn.MaxPooling2D(),
                               nn.Flatten(), nn.Dense(10)])
        model.compile(optimizer="adam", loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(x, y, epochs=5, validation_split=0.2)

    The model is built (its weights created) from an ``nn.Input`` first layer, a layer's ``input_shape``,
    ``build(input_shape)``, or the first call/``fit``. It has the whole ``Model`` API (``compile``, ``fit``,
    ``evaluate``, ``predict``, ``save``, ``summary``) and ``add``.

    Args:
        layers: a list of ``nn`` layers, default None (empty; ``add`` them later).
        name: str or None (default ``"sequential"``, made unique).

    Raises:
        TypeError: ``layers`` not a list of layers.
    """

    _summary_shows_connections = False

    def __init__(self, layers=None, name=None):
        ModelBase.__init__(self)
        self.name = self._checked_name(name, "sequential")
        self._single_input = self._single_output = True
        self._input: InputLayer | None = None
        self._layers: list[Layer] = []
        self._all_layers: list[Layer] = []
        self._own_nodes: list = []  # the nodes the last build recorded (dropped from the layers on a rebuild)
        self.built = False
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
        """Append a layer (an ``Input`` / ``InputLayer`` only as the first element)."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._input is not None:
                raise ValueError(f"Sequential {self.name!r}: Input must come first, before any layer")
            self._input = layer
        elif isinstance(layer, Layer):
            if any(existing is layer for existing in self._layers):
                raise ValueError(f"Sequential {self.name!r}: {type(layer).__name__} {layer.name!r} is already in the "
                                 f"model (position {[id(x) for x in self._layers].index(id(layer))}); a Sequential "
                                 f"runs each layer once: add a new layer, or share it in a graph model (nn.Model)")
            self._layers.append(layer)
        else:
            raise TypeError(f"Sequential {self.name!r}: expected a Layer; got {layer!r} of type "
                            f"{type(layer).__name__}")
        if rebuild:
            shape = self._declared_input_shape() or (self.input_shape if self.built else None)
            self.built = False
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
        """Build every layer for ``input_shape`` (batch axis first, may be None): the chain of graph nodes."""
        input_shape = self._declared_input_shape() if input_shape is None else input_shape
        if input_shape is None:
            raise ValueError(f"Sequential {self.name!r}: build needs an input shape (batch axis first), "
                             f"e.g. build((None, 28, 28, 1)), or an Input layer")
        if not isinstance(input_shape, (tuple, list)) or not all(
                s is None or validation.is_int(s) and s > 0 for s in input_shape):
            raise ValueError(f"Sequential {self.name!r}: input_shape must be a tuple of positive ints (batch axis "
                             f"first, None allowed); got {input_shape!r}")
        shape = (None,) + tuple(input_shape[1:])
        source = self._input
        if source is None or source.batch_shape[1:] != shape[1:]:
            source = InputLayer(batch_shape=shape, dtype=self._layers[0].dtype if self._layers else None,
                                name=f"{self.name}_input")
        saved = [(layer, list(layer._inbound_nodes)) for layer in self._layers]  # a failed build puts them back
        for node in self._own_nodes:
            node.layer._inbound_nodes.remove(node)
        try:
            x = source.output
            for layer in self._layers:
                x = layer(x)
        except Exception:
            for layer, nodes in saved:
                layer._inbound_nodes[:] = nodes
            raise
        self._set_graph([source.output], [x])
        self._own_nodes = [node for node in self._nodes if not isinstance(node.layer, InputLayer)]

    # -- config --------------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-able description: name, layers as ``{"class_name", "config"}`` (Input first), build shape."""
        layers = []
        if self._input is not None:
            layers.append({"class_name": "InputLayer", "config": self._input.get_config()})
        layers += [registry.serialize(layer) for layer in self._layers]
        return {"name": self.name, "layers": layers,
                "build_input_shape": list(self.input_shape) if self.built else None}

    @classmethod
    @_serial.names_kept_on_failure()
    def from_config(cls, config: dict) -> "Sequential":
        """Rebuild a model (fresh weights) from ``get_config()``; a failure uses up no layer name."""
        layers = [registry.deserialize(entry) for entry in config["layers"]]
        model = cls(layers, name=config.get("name"))
        if not model.built and config.get("build_input_shape") is not None:
            model.build(tuple(config["build_input_shape"]))
        return model

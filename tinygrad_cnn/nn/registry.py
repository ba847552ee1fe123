"""Layer classes by name, for configs: the package's own (``nn.LAYER_CLASSES``) and the user's registered ones.

A user's ``Layer`` subclass becomes serialisable with ``@nn.register_serializable(package="Custom")`` (Keras'
``register_keras_serializable``): it is stored under the registered name ``"<package>><name>"`` (name: the
class name by default), a layer of it is written by ``serialize`` as ``{"class_name": <class name>,
"config": layer.get_config(), "registered_name": "<package>><name>"}``, and ``deserialize`` rebuilds it with
``cls.from_config(config)`` (by default ``cls(**config)``: its ``get_config`` must return its constructor's
arguments, the base ``Layer.get_config()`` included). So graphs and Sequential models holding it round-trip
through ``get_config``/``from_config``, and their checkpoints load.
"""

from __future__ import annotations

from tinygrad_cnn.nn import _serial
from tinygrad_cnn.nn.layer import Layer

__all__ = ["deserialize", "register_serializable", "registered_class", "registered_name"]

_REGISTERED: dict[str, type] = {}


def register_serializable(package: str = "Custom", name: str | None = None):
    """Decorator: register a ``Layer`` subclass under ``"<package>><name>"`` (``name`` defaults to the class
    name) so its layers serialise and deserialise. Registering the same name for a different class (another
    module or qualified name) raises a ``ValueError``; re-running a class definition replaces it.

    Args:
        package: str, default ``"Custom"`` (Keras' default): the key's prefix.
        name: str or None (default: the class' ``__name__``).
    """
    for arg, value in (("package", package), ("name", name)):
        if value is not None and (not isinstance(value, str) or not value or ">" in value):
            raise ValueError(f"register_serializable: {arg} must be a non-empty string without '>'; got {value!r}")

    def register(cls):
        if not isinstance(cls, type) or not issubclass(cls, Layer):
            raise TypeError(f"register_serializable: only subclasses of nn.Layer can be registered; got {cls!r}")
        key = f"{package}>{name or cls.__name__}"
        old = _REGISTERED.get(key)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"register_serializable: the name {key!r} is already registered for "
                             f"{old.__module__}.{old.__qualname__}; give another package or name")
        _REGISTERED[key] = cls
        cls._registered_name = key
        return cls

    return register


def registered_name(cls) -> str | None:
    """``"<package>><name>"`` if ``cls`` itself was registered (a subclass of it must register on its own)."""
    key = cls.__dict__.get("_registered_name")
    return key if key is not None and _REGISTERED.get(key) is cls else None


def registered_class(key) -> type | None:
    """The class registered under ``key`` (``"<package>><name>"``), or None."""
    return _REGISTERED.get(key) if isinstance(key, str) else None


def serialize(layer) -> dict:
    """``{"class_name", "config"}`` (plus ``"registered_name"`` for a registered class)."""
    out = _serial.serialize(layer)
    key = registered_name(type(layer))
    return out if key is None else {**out, "registered_name": key}


def layer_classes() -> dict[str, type]:
    """The package's own layer classes by name (``nn.LAYER_CLASSES``): every public ``Layer`` subclass defined in
    ``tinygrad_cnn.nn``, found when asked (so every module of the package has defined its classes by then)."""
    return _serial.subclasses(Layer, "tinygrad_cnn.nn")


def deserialize(config: dict, builtin: dict | None = None):
    """The layer ``serialize`` described: a registered class by ``registered_name``, else a class of ``builtin``
    (default: :func:`layer_classes`) by ``class_name`` (any case); a class that is neither is a ``ValueError``
    saying how to register it."""
    builtin = layer_classes() if builtin is None else builtin
    if isinstance(config, dict) and config.get("registered_name") in _REGISTERED:
        return _REGISTERED[config["registered_name"]].from_config(dict(config.get("config") or {}))
    if isinstance(config, dict) and isinstance(config.get("class_name"), str):
        name = config["class_name"]
        if name.lower() not in {k.lower() for k in builtin}:
            mine = [c for c in _REGISTERED.values() if c.__name__ == name]
            if len(mine) == 1:
                return mine[0].from_config(dict(config.get("config") or {}))
            try:
                _serial.class_for("nn.deserialize", "class_name", name, builtin)
            except ValueError as error:
                raise ValueError(f"{error}. A Layer subclass of your own must be registered first, with "
                                 f"@nn.register_serializable() (registered now: {sorted(_REGISTERED) or 'none'})"
                                 ) from None
    return _serial.deserialize(config, builtin, "nn.deserialize")

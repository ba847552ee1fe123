"""Shared plumbing for the Keras-style registries: names, look-up by string/dict/object, serialization.

One ``serialize`` and one ``deserialize`` for every kind (layers, initializers,
regularizers, constraints, activations): an object with ``get_config`` is
stored as ``{"class_name": <its class' name>, "config": obj.get_config()}`` and
rebuilt by ``classes[class_name].from_config(config)`` from that kind's table
of classes (class names matched in any case); an activation is stored as its
name. Each module's public ``serialize``/``get`` are thin names over these.

``get`` accepts what Keras accepts: ``None``, a snake-case name (``"he_normal"``),
a class name (``"HeNormal"``), a config dict ``{"class_name": ..., "config": {...}}``
or an object (returned as is). Unknown names raise a ``ValueError`` with a
did-you-mean suggestion.
"""

from __future__ import annotations

import re
from collections import defaultdict
from contextlib import contextmanager

from tinygrad_cnn import validation

_NAME_COUNTS: dict[str, int] = defaultdict(int)


def snake_case(name: str) -> str:
    """Keras' CamelCase -> snake_case rule: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def unique_name(base: str) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (as Keras names layers)."""
    count = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if count == 0 else f"{base}_{count}"


@contextmanager
def names_kept_on_failure():
    """Undo the names ``unique_name`` handed out inside the block if it fails: a failed ``from_config`` (or load)
    leaves the next layer's default name what it was (``dense_3``, not ``dense_5``)."""
    saved = dict(_NAME_COUNTS)
    try:
        yield
    except BaseException:
        _NAME_COUNTS.clear()
        _NAME_COUNTS.update(saved)
        raise


class Configurable:
    """Keras' config protocol: ``get_config()`` returns the constructor's arguments, ``from_config`` inverts it."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def subclasses(base: type, package: str) -> dict[str, type]:
    """Every public subclass of ``base`` (at any depth) defined in ``package``, by class name, sorted: the table of
    classes ``deserialize`` rebuilds from (private bases such as ``_Pool`` and classes defined elsewhere are left
    out)."""
    found, todo = {}, [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if not sub.__name__.startswith("_") and sub.__module__.startswith(package + "."):
                found[sub.__name__] = sub
    return dict(sorted(found.items()))


def serialize(obj, by_name: dict | None = None):
    """How a config stores ``obj``: ``None`` stays ``None``; an object found (by identity) among the values of
    ``by_name`` is its first name there (activations: ``"relu"``); an object with ``get_config`` is
    ``{"class_name": type(obj).__name__, "config": obj.get_config()}``; any other callable its ``__name__``."""
    if obj is None:
        return None
    name = next((k for k, v in (by_name or {}).items() if v is obj), None)
    if name is not None:
        return name
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    return getattr(obj, "__name__", repr(obj))


def class_for(where: str, arg: str, name, classes: dict) -> type:
    """``classes[name]``, the name matched in any case; otherwise a ValueError naming ``where``, ``arg`` and the
    value, with a did-you-mean suggestion."""
    if name in classes:
        return classes[name]
    lowered = {k.lower(): v for k, v in classes.items()}
    return lowered[validation.choice(where, arg, name if isinstance(name, str) else repr(name), tuple(lowered))]


def deserialize(config, classes: dict, where: str, arg: str | None = None):
    """The object ``serialize`` described: ``class_for(config["class_name"]).from_config(config["config"])``
    (a fresh object: a layer gets new weights); errors name ``where`` and the argument ``arg`` the dict came in."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{where}: {arg or 'config'} as a dict needs a 'class_name' key; got {config!r}")
    key = "class_name" if arg is None else f"{arg} class_name"
    with names_kept_on_failure():
        return class_for(where, key, config["class_name"], classes).from_config(dict(config.get("config") or {}))


def lookup(where: str, arg: str, identifier, by_name: dict, classes: dict, kind: str, allow_callable=True):
    """Resolve ``identifier`` (name, config dict, object) against a registry; ``where`` names the caller."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        by_class = {k.lower(): v for k, v in classes.items()}
        key = identifier.lower()
        made = by_class.get(key) or by_name[validation.choice(where, arg, identifier, tuple(by_name))]
        return made() if isinstance(made, type) else made
    if isinstance(identifier, dict):
        return deserialize(identifier, classes, where, arg)
    if isinstance(identifier, type):
        if identifier in classes.values():
            return identifier()
    elif allow_callable and callable(identifier):
        return identifier
    raise TypeError(f"{where}: {arg} must be None, a {kind} name, a config dict or a {kind} object; "
                    f"got {identifier!r} of type {type(identifier).__name__}")

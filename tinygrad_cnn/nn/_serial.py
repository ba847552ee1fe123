"""Shared plumbing for the Keras-style registries: names, look-up by string/dict/object, serialization.

``get`` accepts what Keras accepts: ``None``, a snake-case name (``"he_normal"``),
a class name (``"HeNormal"``), a config dict ``{"class_name": ..., "config": {...}}``
or an object (returned as is). Unknown names raise a ``ValueError`` with a
did-you-mean suggestion.
"""

from __future__ import annotations

import re
from collections import defaultdict

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


class Configurable:
    """Keras' config protocol: ``get_config()`` returns the constructor's arguments, ``from_config`` inverts it."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def serialize(obj):
    """``{"class_name": ..., "config": ...}`` for an object with ``get_config``; ``None`` stays ``None``."""
    if obj is None:
        return None
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


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
        if "class_name" not in identifier:
            raise ValueError(f"{where}: {arg} as a dict needs a 'class_name' key; got {identifier!r}")
        name = identifier["class_name"]
        if name not in classes:
            validation.choice(where, f"{arg} class_name", name, tuple(classes))
        return classes[name](**(identifier.get("config") or {}))
    if isinstance(identifier, type):
        if identifier in classes.values():
            return identifier()
    elif allow_callable and callable(identifier):
        return identifier
    raise TypeError(f"{where}: {arg} must be None, a {kind} name, a config dict or a {kind} object; "
                    f"got {identifier!r} of type {type(identifier).__name__}")

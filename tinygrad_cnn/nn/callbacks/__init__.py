"""Keras' callbacks for ``fit(..., callbacks=[...])``: the same names, arguments, hooks and rules as Keras 3.

``Callback`` / ``CallbackList`` / ``History`` / ``LambdaCallback`` (``base``), ``EarlyStopping`` /
``ReduceLROnPlateau`` / ``ModelCheckpoint`` / ``LearningRateScheduler`` (``monitor``), ``ProgbarLogger`` /
``CSVLogger`` / ``TerminateOnNaN`` (``loggers``). The hooks and when ``fit`` calls them are in ``base``.
"""

from tinygrad_cnn.nn.callbacks.base import Callback, CallbackList, History, LambdaCallback
from tinygrad_cnn.nn.callbacks.loggers import CSVLogger, ProgbarLogger, TerminateOnNaN
from tinygrad_cnn.nn.callbacks.monitor import (
                                               EarlyStopping,
                                               LearningRateScheduler,
                                               ModelCheckpoint,
                                               MonitorCallback,
                                               ReduceLROnPlateau,
)

__all__ = ["CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "MonitorCallback", "ProgbarLogger", "ReduceLROnPlateau",
           "TerminateOnNaN"]

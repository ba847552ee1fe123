"""tinygrad_cnn.observe: the one hook every tool (anomaly mode, kinks, profiler, tracer) is built on."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import observe


class Recorder(observe.Observer):
    def __init__(self):
        self.events = []

    def forward(self, event):
        self.events.append(("forward", event.function.__name__, event.in_vjp))

    def vjp(self, event):
        self.events.append(("vjp", event.function.__name__, len(event.grads)))

    def leaf(self, event):
        self.events.append(("leaf", event.node.shape, float(event.g.data.sum())))


def test_a_new_tool_sees_forward_vjp_and_leaf_events_in_order():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with observe.observing(Recorder()) as rec:
        loss = (x * x).sum()
        loss.backward()
    assert rec.events == [
        ("forward", "Mul", False), ("forward", "Sum", False),
        ("forward", "Reshape", True), ("forward", "BroadcastTo", True),  # Sum's vjp, written with the engine's ops
        ("vjp", "Sum", 1),  # sent once the vjp has returned
        ("forward", "Mul", True), ("forward", "Mul", True),
        ("vjp", "Mul", 2),
        ("forward", "Add", False),  # the two paths into x are added by the backward pass itself (chain rule)
        ("leaf", (2,), 6.0),
    ]
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_vjp_event_times_include_the_primitives_the_vjp_applies():
    x = tg.Tensor(np.ones((50, 50)), requires_grad=True)
    seconds = {}

    class Timer(observe.Observer):
        def forward(self, event):
            if event.in_vjp:
                seconds["nested"] = seconds.get("nested", 0.0) + event.seconds

        def vjp(self, event):
            seconds[event.function.__name__] = event.seconds

    with observe.observing(Timer()):
        (x.exp() * 3.0).sum().backward()
    assert seconds["Exp"] > 0 and seconds["nested"] <= seconds["Exp"] + seconds["Mul"] + seconds["Sum"]


def test_observers_nest_and_an_observer_that_raises_leaves_no_trace():
    class Boom(observe.Observer):
        def forward(self, event):
            raise RuntimeError("boom")

    with observe.observing(Recorder()) as outer:
        with pytest.raises(RuntimeError, match="boom"), observe.observing(Boom()):
            tg.Tensor(1.0, requires_grad=True) * 2.0
        assert observe.observers() == (outer,)
        tg.Tensor(1.0) + 1.0
    assert observe.observers() == ()
    assert [e[1] for e in outer.events] == ["Mul", "Add"]  # the outer one saw both ops, the raising one's too


def test_observing_is_per_thread():
    seen = []
    barrier = threading.Barrier(2)

    def work(tag):
        with observe.observing(Recorder()) as rec:
            barrier.wait()
            for _ in range(20):
                tg.Tensor(np.ones(2)) * 2.0 if tag == "a" else tg.Tensor(np.ones(2)) + 1.0
            barrier.wait()
        seen.append((tag, {e[1] for e in rec.events}, len(rec.events)))

    threads = [threading.Thread(target=work, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == [("a", {"Mul"}, 20), ("b", {"Add"}, 20)]


def test_observing_needs_an_observer():
    with pytest.raises(TypeError, match="observing: observer must be an Observer; got function"):
        with observe.observing(lambda event: None):
            pass

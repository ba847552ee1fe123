"""An opt-in profiler: time and count every primitive's forward and vjp, per Function class.

    with tinygrad_cnn.profiler.profile() as prof:
        loss = F.cross_entropy(model(x, training=True), y)
        loss.backward()
    print(prof.table())

While the context is open, the profiler observes the engine (``tinygrad_cnn.observe``) in this thread: each
primitive's forward and each vjp the backward pass runs is an event with its time (the core is never patched;
with nothing observing, the cost is one attribute read per primitive). A primitive applied *inside* a vjp
(the backward pass is written with the engine's own ops) is counted in the ``nested`` phase under its own class;
the vjp time of the outer class is inclusive of those nested ops, so ``vjp_ms`` of the classes run by
``backward()`` adds up to the backward pass. ``forward_ms`` is exclusive of
nothing (forwards do not nest). Counts (``forward_calls``, ``vjp_calls``,
``nested_calls``) do not depend on timing, so tests can assert them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinygrad_cnn.observe import ForwardEvent, Observer, VjpEvent, observing

__all__ = ["OpStats", "Profile", "profile"]


@dataclass
class OpStats:
    """Per-class figures: calls and seconds in forward (outside any vjp), in vjp, and applies nested in vjps."""

    forward_calls: int = 0
    forward_s: float = 0.0
    vjp_calls: int = 0
    vjp_s: float = 0.0
    nested_calls: int = 0
    nested_s: float = 0.0


@dataclass
class Profile(Observer):
    """What one ``profile()`` context recorded: ``stats[class_name] -> OpStats``."""

    stats: dict = field(default_factory=dict)

    def forward(self, event: ForwardEvent) -> None:
        s = self._get(event.function.__name__)
        if event.in_vjp:
            s.nested_calls += 1
            s.nested_s += event.seconds
        else:
            s.forward_calls += 1
            s.forward_s += event.seconds

    def vjp(self, event: VjpEvent) -> None:
        s = self._get(event.function.__name__)
        s.vjp_calls += 1
        s.vjp_s += event.seconds

    def _get(self, name: str) -> OpStats:
        s = self.stats.get(name)
        if s is None:
            s = self.stats[name] = OpStats()
        return s

    def counts(self, phase: str = "forward") -> dict:
        """``{class_name: calls}`` for ``phase`` in ``forward`` | ``vjp`` | ``nested``."""
        key = {"forward": "forward_calls", "vjp": "vjp_calls", "nested": "nested_calls"}[phase]
        return {name: getattr(s, key) for name, s in self.stats.items() if getattr(s, key)}

    def total_nodes(self) -> int:
        """Primitives applied outside any vjp (an upper bound on the graph nodes the forward recorded)."""
        return sum(s.forward_calls for s in self.stats.values())

    def table(self, steps: int = 1) -> str:
        """A text table, milliseconds per step (divide by ``steps``), sorted by forward + vjp time."""
        rows = sorted(self.stats.items(), key=lambda kv: -(kv[1].forward_s + kv[1].vjp_s))
        lines = [f"{'primitive':<18} {'fwd calls':>9} {'fwd ms':>8} {'vjp calls':>9} {'vjp ms':>8}"]
        for name, s in rows:
            if not (s.forward_calls or s.vjp_calls):
                continue
            lines.append(f"{name:<18} {s.forward_calls / steps:9.0f} {s.forward_s * 1e3 / steps:8.2f} "
                         f"{s.vjp_calls / steps:9.0f} {s.vjp_s * 1e3 / steps:8.2f}")
        fwd = sum(s.forward_s for s in self.stats.values()) * 1e3 / steps
        vjp = sum(s.vjp_s for _, s in rows) * 1e3 / steps
        lines.append(f"{'total':<18} {'':>9} {fwd:8.2f} {'':>9} {vjp:8.2f}")
        return "\n".join(lines)


def profile():
    """Time and count every primitive's forward and vjp while open (a context manager yielding the ``Profile``;
    see the module docstring)."""
    return observing(Profile())

"""Learning-rate schedules with optax' function names and formulas: ``schedule(count) -> learning rate``.

``count`` is the number of optimizer steps taken so far (0 for the first step), as optax counts; pass a schedule
as any optimizer's ``learning_rate`` (``optim.Adam(params, learning_rate=schedules.cosine_decay_schedule(1e-2,
1000))``). Each function returns a ``Schedule``: a callable whose formula is written once for an array namespace
(NumPy here; the JAX twin evaluates the same formula with ``jax.numpy`` only where optax has no function of that
name, and otherwise builds ``optax.<name>(**schedule.config)``, so parity runs use optax' own schedules).

With ``c`` the count (all in float64):

- ``constant_schedule(value)``: ``value``.
- ``polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0)``:
  ``k = clip(c - transition_begin, 0, transition_steps)``,
  ``(init_value - end_value) * (1 - k / transition_steps) ** power + end_value``; ``transition_steps <= 0``
  gives the constant ``init_value`` (optax' rule), a negative ``transition_begin`` counts as 0.
- ``linear_schedule(init_value, end_value, transition_steps, transition_begin=0)``: the polynomial with power 1.
- ``piecewise_constant_schedule(init_value, boundaries_and_scales=None)``: ``init_value`` times the product of
  the scales of every boundary ``b <= c``.
- ``exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False,
  end_value=None)``: ``p = (c - transition_begin) / transition_steps`` (floored if ``staircase``),
  ``init_value * decay_rate ** p`` for ``c > transition_begin``, else ``init_value``; clipped at ``end_value``
  (from below when ``decay_rate < 1``, from above otherwise). ``transition_steps <= 0`` or ``decay_rate == 0``
  gives the constant ``init_value``.
- ``cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0)``:
  ``init_value * ((1 - alpha) * (0.5 (1 + cos(pi min(c, decay_steps) / decay_steps))) ** exponent + alpha)``.
- ``join_schedules(schedules, boundaries)``: ``schedules[i](c - boundaries[i-1])`` on
  ``boundaries[i-1] <= c < boundaries[i]``.
- ``warmup_constant_schedule(init_value, peak_value, warmup_steps)``: linear from ``init_value`` to ``peak_value``.
- ``warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0)``:
  linear warmup to ``peak_value`` over ``warmup_steps``, then the cosine decay from ``peak_value`` to
  ``end_value`` over ``decay_steps - warmup_steps`` (``alpha = end_value / peak_value``).
- ``warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps, transition_steps, decay_rate,
  transition_begin=0, staircase=False, end_value=None)``: linear warmup, then ``exponential_decay``.
- ``inverse_time_decay(init_value, decay_steps, decay_rate, staircase=False)`` (Keras' ``InverseTimeDecay``;
  optax has none): ``init_value / (1 + decay_rate * p)``, ``p = c / decay_steps`` (floored if ``staircase``).

An optimizer refuses a rate that is negative or not finite when the schedule gives it (a ValueError naming the
schedule, the step and the value), before any weight changes.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tinygrad_cnn import validation

__all__ = ["Schedule", "constant_schedule", "cosine_decay_schedule", "deserialize", "exponential_decay",
           "inverse_time_decay",
           "join_schedules", "linear_schedule", "piecewise_constant_schedule", "polynomial_schedule",
           "warmup_constant_schedule", "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule"]


class Schedule:
    """``schedule(count) -> float``: the formula ``formula(count, xp, **config)`` evaluated with NumPy (float64).

    ``name`` is optax' function name, ``config`` its keyword arguments (``join_schedules`` holds Schedules);
    ``evaluate(count, xp)`` runs the formula with another array namespace (``jax.numpy`` in the twin)."""

    def __init__(self, name: str, formula, **config):
        self.name = name
        self.formula = formula
        self.config = config

    def evaluate(self, count, xp=np):
        """The rate at ``count`` computed with the array namespace ``xp``."""
        return self.formula(count, xp, **self.config)

    def __call__(self, count) -> float:
        return float(self.evaluate(np.float64(count)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.name}({args})"

    def get_config(self) -> dict:
        """``{"name": optax' function name, "config": its arguments}`` (JSON-able; ``deserialize`` inverts it)."""
        config = dict(self.config)
        if self.name == "join_schedules":
            config["schedules"] = [s.get_config() for s in config["schedules"]]
        return {"name": self.name, "config": config}


def deserialize(config: dict) -> Schedule:
    """The schedule described by ``schedule.get_config()`` (the inverse of ``get_config``).

    Args:
        config: ``{"name": <function name>, "config": {<its arguments>}}``.

    Returns:
        The ``Schedule``.

    Raises:
        ValueError: a config that is not such a dict, or an unknown name.
    """
    names = sorted(set(__all__) - {"Schedule", "deserialize"})
    if not isinstance(config, dict) or config.get("name") not in names:
        raise ValueError(f"schedules.deserialize: expected {{'name': one of {names}, "
                         f"'config': {{...}}}}; got {config!r}")
    kwargs = dict(config.get("config", {}))
    if config["name"] == "join_schedules":
        kwargs["schedules"] = [deserialize(s) for s in kwargs["schedules"]]
    if config["name"] == "piecewise_constant_schedule" and kwargs.get("boundaries_and_scales"):
        kwargs["boundaries_and_scales"] = {int(b): v for b, v in kwargs["boundaries_and_scales"].items()}
    return globals()[config["name"]](**kwargs)


def _number(fn: str, arg: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{fn}: {arg} must be a finite number; got {value!r}")
    return float(value)


def _int(fn: str, arg: str, value) -> int:
    if not validation.is_int(value):
        raise TypeError(f"{fn}: {arg} must be an integer; got {value!r} of type {type(value).__name__}")
    return int(value)


def _constant(count, xp, value):
    return value + 0.0 * count


def constant_schedule(value) -> Schedule:
    """optax.constant_schedule(value): ``value`` at every step.

    Args:
        value: the learning rate.

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    return Schedule("constant_schedule", _constant, value=_number("constant_schedule", "value", value))


def _polynomial(count, xp, init_value, end_value, power, transition_steps, transition_begin):
    if transition_steps <= 0:
        return _constant(count, xp, init_value)
    k = xp.clip(count - max(transition_begin, 0), 0, transition_steps)
    frac = 1 - k / transition_steps
    return (init_value - end_value) * frac ** power + end_value


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0) -> Schedule:
    """optax.polynomial_schedule: from ``init_value`` to ``end_value`` along a power curve.

    ``k = clip(count - transition_begin, 0, transition_steps)``,
    ``rate = (init_value - end_value) * (1 - k / transition_steps) ** power + end_value``.

    Args:
        init_value: the rate up to ``transition_begin``.
        end_value: the rate from ``transition_begin + transition_steps`` on.
        power: the curve's exponent (1: linear).
        transition_steps: int, the length of the transition (<= 0: the constant ``init_value``, optax' rule).
        transition_begin: int, default 0: the step the transition starts at.

    Returns:
        A ``Schedule``: ``schedule(count)`` is the learning rate after ``count`` steps; pass it as an optimizer's
        ``learning_rate``.
    """
    fn = "polynomial_schedule"
    return Schedule(fn, _polynomial, init_value=_number(fn, "init_value", init_value),
                    end_value=_number(fn, "end_value", end_value), power=_number(fn, "power", power),
                    transition_steps=_int(fn, "transition_steps", transition_steps),
                    transition_begin=_int(fn, "transition_begin", transition_begin))


def _linear(count, xp, **config):
    return _polynomial(count, xp, power=1.0, **config)


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0) -> Schedule:
    """optax.linear_schedule: the polynomial schedule with power 1: a line from ``init_value`` to ``end_value``.

    Args:
        init_value: the rate up to ``transition_begin``.
        end_value: the rate from ``transition_begin + transition_steps`` on.
        transition_steps: int, the length of the line.
        transition_begin: int, default 0.

    Returns:
        A ``Schedule``: ``schedule(count)`` is the learning rate after ``count`` steps; pass it as an optimizer's
        ``learning_rate``.
    """
    fn = "linear_schedule"
    return Schedule(fn, _linear, init_value=_number(fn, "init_value", init_value),
                    end_value=_number(fn, "end_value", end_value),
                    transition_steps=_int(fn, "transition_steps", transition_steps),
                    transition_begin=_int(fn, "transition_begin", transition_begin))


def _piecewise(count, xp, init_value, boundaries_and_scales):
    v = init_value + 0.0 * count
    for threshold, scale in sorted((boundaries_and_scales or {}).items()):
        indicator = xp.maximum(0.0, xp.sign(threshold - count))
        v = v * indicator + (1 - indicator) * scale * v
    return v


def piecewise_constant_schedule(init_value, boundaries_and_scales=None) -> Schedule:
    """optax.piecewise_constant_schedule: ``init_value`` scaled by every boundary's scale from that step on.

    Args:
        init_value: the rate before the first boundary.
        boundaries_and_scales: ``{step: scale}`` or None (default: constant); from ``step`` on the rate is
            multiplied by ``scale`` (scales accumulate).

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    fn = "piecewise_constant_schedule"
    table = None
    if boundaries_and_scales is not None:
        if not isinstance(boundaries_and_scales, dict):
            raise TypeError(f"{fn}: boundaries_and_scales must be a dict {{step: scale}}; got "
                            f"{boundaries_and_scales!r}")
        table = {_int(fn, "a boundary", b): _number(fn, f"the scale of boundary {b}", s)
                 for b, s in boundaries_and_scales.items()}
        negative = {b: s for b, s in table.items() if s < 0}
        if negative:
            raise ValueError(f"{fn}: scales must be >= 0; got {negative}")
    return Schedule(fn, _piecewise, init_value=_number(fn, "init_value", init_value), boundaries_and_scales=table)


def _exponential(count, xp, init_value, transition_steps, decay_rate, transition_begin, staircase, end_value):
    if transition_steps <= 0 or decay_rate == 0:
        return _constant(count, xp, init_value)
    decreased = count - max(transition_begin, 0)
    p = decreased / transition_steps
    if staircase:
        p = xp.floor(p)
    value = xp.where(decreased <= 0, init_value, init_value * xp.power(decay_rate, p))
    if end_value is not None:
        value = (xp.maximum if decay_rate < 1.0 else xp.minimum)(value, end_value)
    return value


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0, staircase=False,
                      end_value=None) -> Schedule:
    """optax.exponential_decay: ``init_value * decay_rate ** p``, ``p = (count - transition_begin) / transition_steps``.

    Args:
        init_value: the rate up to ``transition_begin``.
        transition_steps: int, the steps per factor ``decay_rate`` (<= 0: the constant ``init_value``).
        decay_rate: the factor per ``transition_steps`` (0: the constant ``init_value``).
        transition_begin: int, default 0.
        staircase: bool, default False: floor p (a step function).
        end_value: float or None (default): a bound the rate is clipped at (from below when ``decay_rate < 1``,
            from above otherwise).

    Returns:
        A ``Schedule``: ``schedule(count)`` is the learning rate after ``count`` steps; pass it as an optimizer's
        ``learning_rate``.
    """
    fn = "exponential_decay"
    return Schedule(fn, _exponential, init_value=_number(fn, "init_value", init_value),
                    transition_steps=_int(fn, "transition_steps", transition_steps),
                    decay_rate=_number(fn, "decay_rate", decay_rate),
                    transition_begin=_int(fn, "transition_begin", transition_begin),
                    staircase=validation.boolean(fn, "staircase", staircase),
                    end_value=_number(fn, "end_value", end_value, allow_none=True))


def _cosine(count, xp, init_value, decay_steps, alpha, exponent):
    c = xp.minimum(count, decay_steps)
    decay = 0.5 * (1 + xp.cos(np.pi * c / decay_steps))
    return init_value * ((1 - alpha) * decay ** exponent + alpha)


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0) -> Schedule:
    """optax.cosine_decay_schedule: ``init_value * ((1 - alpha) * (0.5 (1 + cos(pi k / decay_steps))) ** exponent
    + alpha)``, ``k = min(count, decay_steps)``.

    Args:
        init_value: the rate at step 0.
        decay_steps: int > 0, the steps to reach ``alpha * init_value``.
        alpha: float, default 0: the final rate as a fraction of ``init_value``.
        exponent: float, default 1.

    Returns:
        A ``Schedule``: ``schedule(count)`` is the learning rate after ``count`` steps; pass it as an optimizer's
        ``learning_rate``.
    """
    fn = "cosine_decay_schedule"
    decay_steps = _int(fn, "decay_steps", decay_steps)
    if decay_steps <= 0:
        raise ValueError(f"{fn}: decay_steps must be > 0; got {decay_steps}")
    return Schedule(fn, _cosine, init_value=_number(fn, "init_value", init_value), decay_steps=decay_steps,
                    alpha=_number(fn, "alpha", alpha), exponent=_number(fn, "exponent", exponent))


def _join(count, xp, schedules, boundaries):
    out = schedules[0].evaluate(count, xp)
    for boundary, schedule in zip(boundaries, schedules[1:], strict=False):
        out = xp.where(count < boundary, out, schedule.evaluate(count - boundary, xp))
    return out


def join_schedules(schedules, boundaries) -> Schedule:
    """optax.join_schedules: ``schedules[i]`` (restarted at 0) from ``boundaries[i - 1]`` on.

    Args:
        schedules: a list of n schedules.
        boundaries: n - 1 increasing step counts.

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    fn = "join_schedules"
    schedules = list(schedules)
    if not schedules or not all(isinstance(s, Schedule) for s in schedules):
        raise TypeError(f"{fn}: schedules must be a non-empty list of optim.schedules Schedules; got {schedules!r}")
    boundaries = [_int(fn, "a boundary", b) for b in boundaries]
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"{fn}: {len(schedules)} schedules need {len(schedules) - 1} boundaries; got {boundaries}")
    return Schedule(fn, _join, schedules=schedules, boundaries=boundaries)


def _composite(name: str, inner: Schedule, **config) -> Schedule:
    """A schedule called ``name`` with optax' arguments ``config`` whose formula is ``inner``'s."""
    return Schedule(name, lambda count, xp, **_: inner.evaluate(count, xp), **config)


def warmup_constant_schedule(init_value, peak_value, warmup_steps) -> Schedule:
    """optax.warmup_constant_schedule: linear from ``init_value`` to ``peak_value`` over ``warmup_steps``.

    Args:
        init_value: the rate at step 0.
        peak_value: the rate from ``warmup_steps`` on.
        warmup_steps: int.

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    line = linear_schedule(init_value, peak_value, warmup_steps)
    return _composite("warmup_constant_schedule", line, init_value=line.config["init_value"],
                      peak_value=line.config["end_value"], warmup_steps=line.config["transition_steps"])


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0,
                                 exponent=1.0) -> Schedule:
    """optax.warmup_cosine_decay_schedule (see the module docstring); ``decay_steps`` counts the warmup.

    Args:
        init_value: the rate at step 0.
        peak_value: the rate at the end of the warmup.
        warmup_steps: int, the linear warmup's length.
        decay_steps: int, the total length (warmup included).
        end_value: default 0: the rate at ``decay_steps``.
        exponent: default 1, of the cosine.

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    fn = "warmup_cosine_decay_schedule"
    peak_value, end_value = _number(fn, "peak_value", peak_value), _number(fn, "end_value", end_value)
    warmup_steps, decay_steps = _int(fn, "warmup_steps", warmup_steps), _int(fn, "decay_steps", decay_steps)
    if decay_steps <= warmup_steps:
        raise ValueError(f"{fn}: decay_steps (the whole schedule, warmup included) must be > warmup_steps; got "
                         f"decay_steps={decay_steps}, warmup_steps={warmup_steps}")
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    joined = join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
                             cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
                            [warmup_steps])
    return _composite(fn, joined, init_value=init_value, peak_value=peak_value, warmup_steps=warmup_steps,
                      decay_steps=decay_steps, end_value=end_value, exponent=exponent)


def warmup_exponential_decay_schedule(init_value, peak_value, warmup_steps, transition_steps, decay_rate,
                                      transition_begin=0, staircase=False, end_value=None) -> Schedule:
    """optax.warmup_exponential_decay_schedule: linear warmup to ``peak_value``, then ``exponential_decay``.

    Args:
        init_value: the rate at step 0.
        peak_value: the rate at the end of the warmup.
        warmup_steps: int.
        transition_steps, decay_rate, transition_begin, staircase, end_value: as :func:`exponential_decay`,
            counted from the end of the warmup.

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    warmup_steps = _int("warmup_exponential_decay_schedule", "warmup_steps", warmup_steps)
    decay = exponential_decay(peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value)
    joined = join_schedules([linear_schedule(init_value, peak_value, warmup_steps), decay], [warmup_steps])
    return _composite("warmup_exponential_decay_schedule", joined, init_value=float(init_value),
                      peak_value=decay.config["init_value"], warmup_steps=warmup_steps, **{
                          k: decay.config[k] for k in ("transition_steps", "decay_rate", "transition_begin",
                                                       "staircase", "end_value")})


def _inverse_time(count, xp, init_value, decay_steps, decay_rate, staircase):
    p = count / decay_steps
    if staircase:
        p = xp.floor(p)
    return init_value / (1 + decay_rate * p)


def inverse_time_decay(init_value, decay_steps, decay_rate, staircase=False) -> Schedule:
    """Keras' ``InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate, staircase)`` (optax has none):
    ``init_value / (1 + decay_rate * p)`` with ``p = count / decay_steps``, floored if ``staircase``.

    Args:
        init_value: the rate at step 0.
        decay_steps: positive int.
        decay_rate: a finite number (a negative one makes the rate grow, and a rate below 0 is refused by the
            optimizer when it is given).
        staircase: bool, default False.

    Returns:
        A ``Schedule`` (``schedule(count)`` is the rate after ``count`` steps).
    """
    fn = "inverse_time_decay"
    decay_steps = _int(fn, "decay_steps", decay_steps)
    if decay_steps <= 0:
        raise ValueError(f"{fn}: decay_steps must be > 0; got {decay_steps}")
    return Schedule(fn, _inverse_time, init_value=_number(fn, "init_value", init_value), decay_steps=decay_steps,
                    decay_rate=_number(fn, "decay_rate", decay_rate),
                    staircase=validation.boolean(fn, "staircase", staircase))

"""Shape ops, pad's modes and negative widths against JAX in float64: forward, vjp with a random cotangent over the
whole output, and second order (the Hessian of sum(c * tanh(op(x))) applied to a random direction, which runs the
vjp of every vjp). Awkward cases in every family: negative axes, size-0 axes, rank-0 inputs, non-contiguous inputs
(the engine function takes a transposed or strided view first, so the op itself sees non-contiguous data)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from agreement import Tally
from hypothesis import given, settings
from hypothesis import strategies as st
from vjp_pair import max_rel_error

import tinygrad_cnn as tg
from tinygrad_cnn import ops


def _torch():
    """PyTorch for the tests that compare with it (skipped where it is not installed)."""
    return pytest.importorskip("torch")


STATS = Tally("shape ops (vs JAX)")
R = np.random.default_rng(11)


def normal(*shape):
    return R.standard_normal(shape)


A = normal(2, 3, 4)
E = normal(2, 0, 3)  # a size-0 axis
S = normal()  # rank 0
W = normal(4, 6)


def joined(pieces, cat=ops.concatenate, flat=lambda p: p.reshape(-1)):
    """One output from a list of pieces: each flattened, scaled by its position + 1 (a piece in the wrong place
    or of the wrong size changes it), and concatenated."""
    return cat([flat(p) * (k + 1.0) for k, p in enumerate(pieces)])


def jax_joined(pieces):
    return joined(pieces, jnp.concatenate, jnp.ravel)


def jax_pad(x, widths, mode="constant", value=0.0):
    """Pad with the positive widths (jnp.pad), then crop the negative ones: the definition of negative widths."""
    widths = np.broadcast_to(np.asarray(widths), (x.ndim, 2))
    kwargs = {"constant_values": value} if mode == "constant" else {}
    padded = jnp.pad(x, np.maximum(widths, 0), mode=mode, **kwargs)
    return padded[tuple(slice(-min(b, 0), padded.shape[i] + min(a, 0)) for i, (b, a) in enumerate(widths))]


def case(engine, reference, *arrays):
    return engine, reference, list(arrays)


def same(name, *args, arrays=(A,), **kwargs):
    """The method ``name`` and the jax.numpy function of the same name, with the same arguments."""
    return case(lambda t: getattr(t, name)(*args, **kwargs), lambda t: getattr(jnp, name)(t, *args, **kwargs),
                *arrays)


def transposed(t):
    return t.transpose(tuple(reversed(range(t.ndim))))


CASES = {
    "squeeze_all": same("squeeze", arrays=(normal(1, 3, 1),)),
    "squeeze_neg_axis": same("squeeze", -1, arrays=(normal(1, 3, 1),)),
    "squeeze_tuple": same("squeeze", (0, 2), arrays=(normal(1, 3, 1),)),
    "squeeze_rank0": same("squeeze", arrays=(S,)),
    "squeeze_zero_size": same("squeeze", 1, arrays=(normal(0, 1),)),
    "expand_dims_neg": same("expand_dims", -1),
    "expand_dims_tuple": same("expand_dims", (0, -1, 2)),
    "expand_dims_rank0": same("expand_dims", 0, arrays=(S,)),
    "unsqueeze": case(lambda t: t.unsqueeze(1), lambda t: jnp.expand_dims(t, 1), A),
    "flip_all": same("flip"),
    "flip_neg_axis": same("flip", -2),
    "flip_tuple_zero_size": same("flip", (0, 1), arrays=(E,)),
    "flip_rank0": same("flip", arrays=(S,)),
    "flip_transposed": case(lambda t: transposed(t).flip(1), lambda t: jnp.flip(t.T, 1), W),
    "roll_flat": same("roll", 5),
    "roll_neg_axis": same("roll", -2, -1),
    "roll_tuple_same_axis": same("roll", (1, 2, -7), (0, 2, 0)),
    "roll_big_shift": same("roll", 11, 1),
    "roll_zero_size": same("roll", 1, 1, arrays=(E,)),
    "roll_rank0": same("roll", 3, arrays=(S,)),
    "roll_strided": case(lambda t: t[::2].roll(1, 0), lambda t: jnp.roll(t[::2], 1, 0), W),
    "repeat_flat": same("repeat", 2),
    "repeat_axis": same("repeat", 3, -1),
    "repeat_counts": same("repeat", np.array([2, 0, 3]), 1),
    "repeat_counts_one": same("repeat", np.array([2]), 0),
    "repeat_zero": same("repeat", 0, 1),
    "repeat_rank0": same("repeat", 4, arrays=(S,)),
    "repeat_zero_size": same("repeat", 2, 0, arrays=(E,)),
    "repeat_transposed": case(lambda t: transposed(t).repeat([1, 2, 0, 1, 3, 1], 0),
                              lambda t: jnp.repeat(t.T, np.array([1, 2, 0, 1, 3, 1]), 0), W),
    "tile_int": same("tile", 2),
    "tile_longer_reps": same("tile", (2, 1, 1, 3)),
    "tile_shorter_reps": same("tile", (2, 3)),
    "tile_rank0": same("tile", (2, 3), arrays=(S,)),
    "tile_zero": same("tile", (1, 0, 2)),
    "tile_strided": case(lambda t: t[:, ::3].tile(2, 1), lambda t: jnp.tile(t[:, ::3], (2, 1)), W),
    "expand_keep": case(lambda t: t.expand(2, -1, 3, -1), lambda t: jnp.broadcast_to(t, (2, 2, 3, 4)),
                        normal(2, 1, 4)),
    "expand_rank0": case(lambda t: t.expand((3, 2)), lambda t: jnp.broadcast_to(t, (3, 2)), S),
    "broadcast_to_method": case(lambda t: t.broadcast_to(5, 2, 1, 4), lambda t: jnp.broadcast_to(t, (5, 2, 1, 4)),
                                normal(1, 4)),
    "split_sections": case(lambda t: joined(t.split(2, -1)), lambda t: jax_joined(jnp.split(t, 2, -1)), A),
    "split_indices": case(lambda t: joined(t.split([1, 1, 3], 2)), lambda t: jax_joined(jnp.split(t, [1, 1, 3], 2)),
                          A),
    "split_zero_size": case(lambda t: joined(t.split(3, 1)), lambda t: jax_joined(jnp.split(t, 3, 1)), E),
    "chunk": case(lambda t: joined(t.chunk(3, 2)), lambda t: jax_joined(jnp.split(t, [2], 2)), A),
    "chunk_transposed": case(lambda t: joined(transposed(t).chunk(4, 0)),
                             lambda t: jax_joined(jnp.split(t.T, [2, 4], 0)), W),
    "moveaxis": same("moveaxis", 0, -1),
    "moveaxis_tuple": same("moveaxis", (0, -1), (-1, 0)),
    "moveaxis_zero_size": same("moveaxis", (1,), (2,), arrays=(E,)),
    "swapaxes_neg": same("swapaxes", -1, 0),
    "swapaxes_transposed": case(lambda t: transposed(t).swapaxes(0, 1), lambda t: jnp.swapaxes(t.T, 0, 1), W),
    "cat": case(lambda a, b: tg.cat([a, b], -1), lambda a, b: jnp.concatenate([a, b], -1), normal(2, 3), normal(2, 1)),
    "concatenate_zero_size": case(lambda a, b: tg.concatenate([a, b], 1), lambda a, b: jnp.concatenate([a, b], 1),
                                  E, normal(2, 2, 3)),
    "stack_neg_axis": case(lambda a, b: tg.stack([a, b], -2), lambda a, b: jnp.stack([a, b], -2), W, W * 2),
    "stack_rank0": case(lambda a, b: tg.stack([a, b]), lambda a, b: jnp.stack([a, b]), S, S + 1),
}

PADS = {  # name -> (pad_width, input, modes)
    "pairs": (((1, 3), (0, 2), (2, 1)), A, "all"),
    "long": (((7, 5),), normal(3), "all"),
    "crop": (((-1, 2), (3, -2), (0, 0)), A, "all"),
    "int": (2, normal(3, 4), ("constant", "reflect")),
    "one_element": (((3, 2), (1, 1)), normal(1, 2), ("reflect", "symmetric")),
    "crop_only": (((-1, 0), (-1, -1)), normal(3, 4), ("edge",)),
    "crop_into_pad": (((-5, 3),), normal(4), ("constant", "wrap")),
    "rank0": (3, S, ("constant", "edge")),
}
for _name, (_widths, _x, _modes) in PADS.items():
    for _mode in ("constant", "edge", "reflect", "symmetric", "wrap") if _modes == "all" else _modes:
        CASES[f"pad_{_mode}_{_name}"] = case(lambda t, w=_widths, m=_mode: t.pad(w, mode=m),
                                             lambda t, w=_widths, m=_mode: jax_pad(t, w, m), _x)
CASES["pad_value"] = case(lambda t: t.pad(((1, 2), (2, 0)), constant_values=-1.5),
                          lambda t: jnp.pad(t, ((1, 2), (2, 0)), constant_values=-1.5), W)
CASES["pad_value_crop_vs_lax"] = case(lambda t: t.pad(((-1, 2), (2, -3)), constant_values=2.0),
                                      lambda t: jax.lax.pad(t, 2.0, ((-1, 2, 0), (2, -3, 0))), W)
CASES["pad_zero_size_constant"] = case(lambda t: t.pad(((1, 1), (0, 2), (-1, 0))),
                                       lambda t: jax_pad(t, ((1, 1), (0, 2), (-1, 0))), E)
CASES["pad_reflect_transposed"] = case(lambda t: transposed(t).pad(((2, 3), (1, -1)), mode="reflect"),
                                       lambda t: jax_pad(t.T, ((2, 3), (1, -1)), "reflect"), W)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_vjp_match_jax(name, check_vjp):
    engine_fn, jax_fn, arrays = CASES[name]
    STATS.record(check_vjp(engine_fn, jax_fn, *arrays, seed=len(name), tol=1e-12))


def second_order_error(engine_fn, jax_fn, x, seed):
    """Engine vs JAX on d/dx <grad_x sum(c * tanh(f(x))), u> for random c (over the whole output) and u."""
    r = np.random.default_rng(seed)
    c = r.standard_normal(jax.eval_shape(jax_fn, x).shape)
    u = r.standard_normal(x.shape)

    def directional(x):
        return jnp.vdot(jax.grad(lambda x: jnp.vdot(c, jnp.tanh(jax_fn(x))))(x), u)

    t = tg.Tensor(x, requires_grad=True)
    (g,) = tg.grad((engine_fn(t).tanh() * tg.Tensor(c)).sum(), [t], create_graph=True)
    (h,) = tg.grad((g * tg.Tensor(u)).sum(), [t])
    return max_rel_error(h.data, jax.jit(jax.grad(directional))(x))


SECOND_ORDER = ["squeeze_neg_axis", "expand_dims_tuple", "flip_transposed", "roll_tuple_same_axis", "repeat_axis",
                "repeat_counts", "tile_longer_reps", "expand_keep", "split_sections", "chunk_transposed",
                "moveaxis_tuple", "swapaxes_neg", "pad_value", "pad_constant_crop", "pad_edge_pairs",
                "pad_reflect_crop", "pad_symmetric_long", "pad_wrap_crop_into_pad"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_matches_jax(name):
    engine_fn, jax_fn, (x,) = CASES[name]
    STATS.record(second_order_error(engine_fn, jax_fn, x, seed=len(name)))


def test_second_order_catches_a_vjp_that_is_wrong_only_when_differentiated():
    """Negative control: a flip whose vjp is right in value but built from a constant (so its own vjp, the
    second-order path, is zero) must fail the second-order comparison, though it passes first order."""

    class FlipConstVjp(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x[::-1]

        @staticmethod
        def vjp(ctx, g):
            return (ops.constant(g.data[::-1].copy()),)

    x = normal(5)
    assert second_order_error(lambda t: t.flip(), jnp.flip, x, 0) < 1e-12
    assert second_order_error(FlipConstVjp.apply, jnp.flip, x, 0) > 1e-2


def test_reflect_vjp_adds_the_mirrored_cotangents():
    """reflect pad of [x0, x1, x2] by (2, 1) is [x2, x1, x0, x1, x2, x1]: x1 gets three cotangents, x2 two."""
    t = tg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = t.pad((2, 1), mode="reflect")
    assert y.data.tolist() == [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
    (g,) = tg.grad(y, [t], grad_output=np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 1e5]))
    assert g.data.tolist() == [100.0, 10 + 1000 + 1e5, 1 + 1e4]


def test_ops_see_non_contiguous_data():
    """The views the *_transposed/*_strided cases start from really are non-contiguous (else they test nothing)."""
    t = tg.Tensor(W)
    assert not transposed(t).data.flags.c_contiguous and not t[::2].data.flags.c_contiguous


def test_zero_constant_pad_is_one_pad_primitive():
    """The conv path: a zero constant pad with non-negative widths records a single Pad node, nothing else."""
    t = tg.Tensor(A, requires_grad=True)
    y = t.pad(((0, 1), (2, 0), (1, 1)))
    assert y._ctx.function is ops.movement.Pad and y._ctx.inputs == (t,)
    assert t.pad(0) is t


@pytest.mark.parametrize("mode, torch_mode", [("constant", "constant"), ("edge", "replicate"),
                                              ("reflect", "reflect")])
def test_negative_widths_crop_as_pytorch(mode, torch_mode):
    torch = _torch()
    """PyTorch's F.pad takes (before, after) pairs last axis first; negative ones crop, as ours do."""
    x = normal(2, 3, 5, 6)
    torch_pad = (-2, 4, 3, -1)  # last axis (-2, 4), the one before it (3, -1)
    ours = tg.Tensor(x).pad(((0, 0), (0, 0), (3, -1), (-2, 4)), mode=mode).data
    theirs = torch.nn.functional.pad(torch.from_numpy(x), torch_pad, mode=torch_mode).numpy()
    np.testing.assert_array_equal(ours, theirs)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(n=st.integers(0, 9), chunks=st.integers(1, 6))
def test_chunk_sizes_match_pytorch(n, chunks):
    torch = _torch()
    pieces = tg.Tensor(np.arange(float(n))).chunk(chunks)
    expected = torch.arange(float(n)).chunk(chunks)
    assert [p.data.tolist() for p in pieces] == [p.tolist() for p in expected]


@settings(max_examples=20, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=3), data=st.data())
def test_expand_matches_pytorch(shape, data):
    torch = _torch()
    sizes = [data.draw(st.sampled_from([-1, n])) if n != 1 else data.draw(st.sampled_from([-1, 1, 4]))
             for n in shape]
    sizes = data.draw(st.lists(st.integers(0, 2), max_size=2)) + sizes
    x = np.arange(float(np.prod(shape))).reshape(shape)
    np.testing.assert_array_equal(tg.Tensor(x).expand(sizes).data, torch.from_numpy(x).expand(sizes).numpy())


def test_split_indices_slice_as_numpy():
    """Decreasing, negative and past-the-end cut indices give NumPy's (Python slicing) pieces; JAX rejects them."""
    cuts = [1, 1, -1, 9, 2]
    pieces = tg.Tensor(A).split(cuts, axis=-1)
    assert [p.shape for p in pieces] == [p.shape for p in np.split(A, cuts, axis=-1)]
    for p, q in zip(pieces, np.split(A, cuts, axis=-1), strict=True):
        np.testing.assert_array_equal(p.data, q)


def test_repeat_is_numpys_and_tile_is_pytorchs_repeat():
    torch = _torch()
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(tg.Tensor(x).repeat(2, 1).data, torch.from_numpy(x).repeat_interleave(2, 1))
    np.testing.assert_array_equal(tg.Tensor(x).tile(2, 3).data, torch.from_numpy(x).repeat(2, 3))


X = tg.Tensor(A)
BAD = [
    (lambda: X.squeeze(1), ValueError, r"squeeze: axis 1 has size 3; only axes of size 1 can be removed"),
    (lambda: X.squeeze(3), ValueError, r"squeeze: axis=3 is out of range for an array of rank 3"),
    (lambda: X.expand_dims((0, 0)), ValueError, r"expand_dims: axis=\(0, 0\) repeats an axis"),
    (lambda: X.flip(1.0), TypeError, r"flip: axis must be an int or a tuple of ints; got 1.0"),
    (lambda: X.roll((1, 2), (0, 1, 2)), ValueError, r"roll: shift=\(1, 2\) and axis=\(0, 1, 2\) must have the same"),
    (lambda: X.roll(1.5, 0), TypeError, r"roll: shift must be an int or a sequence of ints; got 1.5"),
    (lambda: X.repeat(-1), ValueError, r"repeat: repeats=-1 must be non-negative"),
    (lambda: X.repeat([1, 2], 1), ValueError, r"repeat: repeats has 2 counts but axis 1 has 3 elements"),
    (lambda: X.tile(2, -1), ValueError, r"tile: reps=\(2, -1\) must be a non-negative int"),
    (lambda: X.expand(3, 4), ValueError, r"expand: shape=\(3, 4\) .* at least one per input axis"),
    (lambda: X.expand(-1, -1, 3, 4), ValueError, r"expand: shape=\(-1, -1, 3, 4\) has -1 on a new leading axis"),
    (lambda: X.expand(2, 5, 4), ValueError, r"broadcast_to: cannot broadcast shape \(2, 3, 4\) to shape \(2, 5, 4\)"),
    (lambda: X.broadcast_to(2, -3), ValueError, r"broadcast_to: shape=\(2, -3\) must hold non-negative ints"),
    (lambda: X.split(3, 2), ValueError, r"split: axis 2 of size 4 cannot be cut into indices_or_sections=3 equal"),
    (lambda: X.split([1.5]), TypeError, r"split: indices_or_sections must be an int or a sequence of ints"),
    (lambda: X.chunk(0), ValueError, r"chunk: chunks must be an integer >= 1; got 0"),
    (lambda: X.moveaxis((0, 1), 2), ValueError, r"moveaxis: source=\(0, 1\) and destination=2 must have the same"),
    (lambda: X.swapaxes(0, 3), ValueError, r"swapaxes: axis2=3 is out of range for an array of rank 3"),
    (lambda: X.pad(1, mode="reflct"), ValueError, r"pad: mode='reflct' is not one of .*did you mean 'reflect'"),
    (lambda: X.pad(1, constant_values="0"), TypeError, r"pad: constant_values must be a number; got '0'"),
    (lambda: X.pad(((0, 0), (-2, -1), (0, 0))), ValueError, r"pad: .* axis 1 of size 3 would have 0"),
    (lambda: X.pad(0.5), ValueError, r"pad: pad_width=0.5 must hold integers"),
    (lambda: tg.Tensor(E).pad(((0, 0), (1, 0), (0, 0)), mode="edge"), ValueError,
     r"pad: mode='edge' cannot extend axis 1, which has size 0"),
]


@pytest.mark.parametrize("index", range(len(BAD)))
def test_bad_arguments_name_the_function_argument_and_value(index):
    call, error, message = BAD[index]
    with pytest.raises(error, match=message):
        call()


def test_report():
    STATS.report()

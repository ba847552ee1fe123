"""tg.set_num_threads / num_threads / get_num_threads: the BLAS pool's size, set, scoped and refused when bad."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tinygrad_cnn as tg


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_scoped_limit_applies_inside_and_restores_after():
    before = _blas_threads()
    with tg.num_threads(1):
        assert _blas_threads() == {1} and tg.get_num_threads() == 1
        a = np.random.default_rng(0).standard_normal((64, 64))
        one_thread = (tg.Tensor(a) @ tg.Tensor(a)).data
    assert _blas_threads() == before
    np.testing.assert_allclose(one_thread, a @ a, rtol=1e-12)


def test_set_num_threads_sticks_until_set_again():
    original = tg.get_num_threads()
    try:
        tg.set_num_threads(1)
        assert _blas_threads() == {1}
    finally:
        tg.set_num_threads(original)
    assert tg.get_num_threads() == original


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, None])
def test_bad_counts_are_refused_naming_the_function_and_the_value(bad):
    before = _blas_threads()
    with pytest.raises(ValueError, match=r"set_num_threads: n=.* must be a positive int"):
        tg.set_num_threads(bad)
    with pytest.raises(ValueError, match=r"num_threads: n=.* must be a positive int"):
        with tg.num_threads(bad):
            pass
    assert _blas_threads() == before

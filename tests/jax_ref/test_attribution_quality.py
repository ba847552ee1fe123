"""Quality metrics (mass inside the mask, pointing game, Spearman) and the model-randomisation sanity check on a
tiny shapes CNN."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from jax_ref.attribution import quality as Q


def test_metrics_on_hand_made_maps():
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 1:3, 1:3] = True
    maps = np.zeros((2, 4, 4))
    maps[0, 1, 1], maps[0, 0, 0] = 3.0, -1.0  # 3 of 4 units inside, peak inside
    maps[1, 3, 3] = 2.0  # all outside
    np.testing.assert_allclose(Q.mass_inside(maps, masks), [0.75, 0.0])
    np.testing.assert_array_equal(Q.pointing_game(maps, masks), [1.0, 0.0])
    assert Q.mass_inside(np.zeros((1, 4, 4)), masks[:1])[0] == 0.0


def test_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 5, 5)), rng.random((3, 5, 5))
    b[0] = a[0] ** 3  # monotone: exactly 1
    b[1, 0, :] = 0.0  # ties
    ref = [spearmanr(a[i].ravel(), b[i].ravel()).statistic for i in range(3)]
    np.testing.assert_allclose(Q.spearman(a, b), ref, rtol=1e-12)
    assert Q.spearman(a[:1], b[:1])[0] == pytest.approx(1.0)


def test_randomisation_sanity_check_tiny():
    model, _ = Q.train_shapes_cnn(n_train=256, size=16, epochs=3, width=4)
    result = Q.quality_table(n_test=16, size=16, model=model, methods=("saliency", "grad_cam"))
    assert 0.0 <= result["chance_mass"] <= 1.0
    for method, mass, point, deletion, insertion, infid, sens, rho_random, rho_control in result["rows"]:
        assert 0.0 <= mass <= 1.0 and 0.0 <= point <= 1.0, method
        assert 0.0 <= deletion <= 1.0 and 0.0 <= insertion <= 1.0, method
        assert infid >= 0.0 and sens >= 0.0, method
        assert rho_control > 0.95, (method, rho_control)  # a tiny perturbation keeps the map
        assert rho_random < 0.5, (method, rho_random)  # a re-initialised model does not
    assert "| saliency |" in Q.format_table(result)

"""SmoothGrad's samples (whole and chunked) and occlusion's windows sharded over 4 forced host devices give the
results of one device (run in a subprocess: the device count is fixed at JAX start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SETUP = r"""
import json, sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from jax_ref import attribution as A
from jax_ref.attribution import _sharding
from tinygrad_cnn import nn

nn.set_random_seed(0)
model = nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(3, 3, padding="same", activation="relu", dtype="float64"),
                       nn.MaxPooling2D(2, dtype="float64"), nn.Flatten(), nn.Dense(4, dtype="float64")])
x = np.random.default_rng(0).random((2, 8, 8, 1))
"""

SCRIPT = SETUP + r"""
out = {
    "devices": _sharding.device_count(),
    "smooth": A.smoothgrad(model, x, n=7, kind="vargrad", seed=4).tolist(),
    "smooth_chunked": A.smoothgrad(model, x, n=7, kind="vargrad", seed=4, batch_size=5).tolist(),
    "occ": A.occlusion(model, x, window=3, stride=2, batch_size=10).tolist(),
}
if _sharding.device_count() > 1:  # the batched inputs really are laid out over every device
    import jax.numpy as jnp
    staged = _sharding.Staged(lambda p, z: (z, jnp.zeros(z.shape[0], jnp.int32), None), lambda p, z, t: z * 2,
                              lambda p, ctx, out: out)
    y = staged.chunk(None, jnp.ones((8, 3)), jnp.zeros(8, jnp.int32))
    out["shards"] = len({s.device for s in y.addressable_shards if s.data.shape[0] == 2})
json.dump(out, sys.stdout)
"""


def run(devices: int) -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")  # the session's quick-compile flag kept
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=root,
                         timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def in_process() -> dict:
    """The same computation in this process (one device: the test session does not force host devices)."""
    scope: dict = {}
    exec(SCRIPT.replace("json.dump(out, sys.stdout)", ""), scope)  # noqa: S102 - our own fixed script
    return scope["out"]


def test_sharded_over_four_devices_equals_one_device():
    one, four = in_process(), run(4)
    assert one["devices"] == 1 and four["devices"] == 4
    assert four["shards"] == 4
    for key in ("smooth", "smooth_chunked", "occ"):
        a, b = np.asarray(one[key]), np.asarray(four[key])
        assert np.abs(a).max() > 0, key
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14, err_msg=key)
    np.testing.assert_allclose(np.asarray(one["smooth_chunked"]), np.asarray(one["smooth"]), rtol=1e-10,
                               atol=1e-14)

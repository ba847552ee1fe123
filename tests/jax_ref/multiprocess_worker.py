"""One process of the multi-process tests (run by ``jax_ref.launch``): ``python multiprocess_worker.py OUT MODE``.

MODE ``train``: data-parallel training of a small digits CNN with ``shard=True`` and a per-process loader; every
process writes ``OUT/process_<i>.json`` (its losses, the rows it loaded, its device counts) and process 0 alone
writes the trained weights ``OUT/weights.npz`` (through ``to_engine``) and the losses and weights of the same
training in one process (``shard=False``) ``OUT/reference.npz``. MODE ``die``: process 1 exits with code 3
right after joining the job while process 0 waits for it in a barrier (until JAX's heartbeat timeout, 30 s).
MODE ``attribution``: SmoothGrad and occlusion maps, written by every process to ``OUT/maps_<i>.npz``.
"""

import json
import os
import sys
from pathlib import Path

from jax_ref.launch import initialize

initialize(initialization_timeout=60)

import jax  # noqa: E402  (after initialize, as jax.distributed requires)
from jax.experimental import multihost_utils  # noqa: E402

if sys.argv[2] == "die":  # before the heavy imports: this mode only needs a collective to wait in
    if jax.process_index() == 1:
        os._exit(3)
    multihost_utils.sync_global_devices("a barrier process 1 never reaches")
    Path(sys.argv[1], "process_0_passed_the_barrier").touch()  # never: the launcher stops process 0 first
    sys.exit(0)

import numpy as np  # noqa: E402

import jax_ref  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402
from tinygrad_cnn.data import load_digits  # noqa: E402

STEPS, BATCH, SEED = 12, 64, 3


def digits_cnn():
    nn.set_random_seed(0)
    return nn.Sequential([nn.Input(shape=(8, 8, 1)), nn.Conv2D(4, 3, activation="relu"), nn.MaxPooling2D(2),
                          nn.Flatten(), nn.Dropout(0.2), nn.Dense(10)])


def attribution(out):
    """SmoothGrad and occlusion of two digits, whole and in chunks; every process gets the whole maps."""
    x, _, _, _ = load_digits()
    model = digits_cnn()
    maps = {}
    for chunk in (None, 6):
        maps[f"smoothgrad_{chunk}"] = jax_ref.attribution.smoothgrad(model, x[:2], n=10, batch_size=chunk)
        maps[f"occlusion_{chunk}"] = jax_ref.attribution.occlusion(model, x[:2], window=(3, 3), stride=(2, 2),
                                                                   batch_size=chunk)
    np.savez(out / f"maps_{jax.process_index()}.npz", devices=len(jax.devices()), **maps)


def main(out):
    x, y, _, _ = load_digits()
    loaded = []

    def loader(idx):  # stands for reading rows from disk: records what this process asked for
        loaded.extend(int(i) for i in idx)
        return x[idx], y[idx]

    model = digits_cnn()
    try:  # a batch that does not split over the devices of all processes
        jax_ref.train(model, x, y, batch_size=BATCH - 1, steps=1, shard=True, verbose=False)
        refused = None
    except ValueError as e:
        refused = str(e)
    result = jax_ref.train(model, optimizer="adam", learning_rate=1e-2, batch_size=BATCH, steps=STEPS, seed=SEED,
                           shard=True, verbose=True, loader=loader, examples=len(x))
    pid = jax.process_index()
    (out / f"process_{pid}.json").write_text(json.dumps({
        "losses": result.losses.tolist(), "loaded": loaded, "devices": result.devices,
        "processes": jax.process_count(), "local_devices": jax.local_device_count(),
        "schedule": [len(x), BATCH, STEPS, SEED], "seconds": result.seconds, "refused": refused}))
    if pid == 0:  # one writer; and the one-process reference (local devices only, no collectives)
        result.model.to_engine()
        np.savez(out / "weights.npz", *model.get_weights())
        reference = digits_cnn()
        ref = jax_ref.train(reference, x, y, "adam", 1e-2, batch_size=BATCH, steps=STEPS, seed=SEED, verbose=False)
        ref.model.to_engine()
        np.savez(out / "reference.npz", *reference.get_weights(), losses=ref.losses, seconds=ref.seconds)


if __name__ == "__main__":
    (attribution if sys.argv[2] == "attribution" else main)(Path(sys.argv[1]))

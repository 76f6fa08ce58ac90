"""Reproduce the shipped two-moons data split and the two shipped classifiers.

    python experiments/train_two_moons.py            # writes into wflow/adversarial/{data,models}/
    python experiments/train_two_moons.py --out DIR  # writes DIR/two_moons.npz and DIR/two_moons_*.npz

Everything is seeded: the data come from ``make_two_moons`` with ``TWO_MOONS_SETTINGS`` and each
network is He-initialized with seed 0 and trained by Adam (mean squared error on the sigmoid
output, as in the paper; 200 epochs, batch 64, lr 3e-3, shuffling seed 0). Takes a few seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wflow.adversarial.data import DATA_PATH, TWO_MOONS_SETTINGS, make_two_moons  # noqa: E402
from wflow.adversarial.mlp import MLP, model_path  # noqa: E402
from wflow.adversarial.training import train  # noqa: E402

TRAINING = {"loss": "mse", "epochs": 200, "batch_size": 64, "lr": 3e-3, "seed": 0}
INIT_SEED = 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: the package)")
    args = ap.parse_args(argv)
    s = TWO_MOONS_SETTINGS
    X_train, y_train = make_two_moons(s["n_train"], s["noise"], seed=s["seed_train"])
    X_test, y_test = make_two_moons(s["n_test"], s["noise"], seed=s["seed_test"])
    data_path = DATA_PATH if args.out is None else args.out / "two_moons.npz"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(data_path, X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)
    print(f"wrote {data_path}")
    for act in ("relu", "gelu"):
        name = f"two_moons_{act}"
        net, hist = train(MLP.init((2, 20, 20, 20, 1), act, seed=INIT_SEED), X_train, y_train, **TRAINING)
        path = model_path(name) if args.out is None else args.out / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        net.save(path)
        print(f"{name}: final train loss {hist[-1]:.5f}, train acc {net.accuracy(X_train, y_train):.3f}, "
              f"test acc {net.accuracy(X_test, y_test):.3f} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

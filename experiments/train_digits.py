"""Reproduce the shipped digits classifier ``wflow/adversarial/models/digits_relu.npz``.

    python experiments/train_digits.py            # writes into wflow/adversarial/models/
    python experiments/train_digits.py --out DIR  # writes DIR/digits_relu.npz

Data: ``load_dataset("digits", seed=0)`` (scikit-learn's 8×8 digits, pixels / 16 in [0, 1],
stratified 75/25 split). Network: 64 → 64 → 64 → 10, ReLU, He-initialized with seed 0, trained
by Adam on the softmax cross-entropy (60 epochs, batch 32, lr 2e-3, shuffling seed 0).
Takes a few seconds; prints the train and test accuracy (the shipped model: test ≥ 0.95).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wflow.adversarial.data import load_dataset  # noqa: E402
from wflow.adversarial.mlp import MLP  # noqa: E402
from wflow.adversarial.training import train  # noqa: E402

LAYERS = (64, 64, 64, 10)
TRAINING = {"loss": "ce", "epochs": 60, "batch_size": 32, "lr": 2e-3, "seed": 0}
INIT_SEED = 0
DEFAULT_PATH = ROOT / "wflow" / "adversarial" / "models" / "digits_relu.npz"


def train_digits():
    ds = load_dataset("digits", seed=0)
    net, hist = train(MLP.init(LAYERS, "relu", seed=INIT_SEED), ds.X_train, ds.y_train, **TRAINING)
    return net, hist, ds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: the package)")
    args = ap.parse_args(argv)
    net, hist, ds = train_digits()
    path = DEFAULT_PATH if args.out is None else args.out / "digits_relu.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    net.save(path)
    print(f"digits_relu: final train loss {hist[-1]:.5f}, train acc {net.accuracy(ds.X_train, ds.y_train):.4f}, "
          f"test acc {net.accuracy(ds.X_test, ds.y_test):.4f} -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

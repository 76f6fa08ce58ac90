"""Robustness lab on scikit-learn's digits: adversarial training with the ∞-flow vs the bound.

Trains a 64 → 64 → 64 → 10 ReLU network per inner method (``adversarial_train``, ℓ∞ in pixel
units with pixels in [0, 1], ε = 0.1, 10 inner steps, 20 epochs) on
``load_dataset("digits", seed=0)``; on the 450 test images and ε ∈ [0, 0.25] (6 budgets)
measures the robust error under IFGSM (20 steps, 2 random restarts), the pairwise-matching
lower bound on the optimal 10-class adversarial risk of the test data, and FGSM / IFGSM / flow
attack strength on the clean-trained model.

Writes ``report.json`` and ``robustness_digits.png`` into ``--out``.

Run:  python experiments/robustness_digits.py --out out/robustness_digits  [--quick]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _robustness_common import run  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(run("digits", __doc__, quick={"epochs": 2, "n_eps": 3, "n_eval": 60, "restarts": 1},
                         full={"n_eps": 6, "restarts": 2}))

"""Robustness lab on two moons: training against flow / IFGSM / FGSM / nothing, vs the optimal risk.

Trains a 2 → 32 → 32 → 1 ReLU network per inner method (``adversarial_train``, ℓ∞, ε = 0.2,
10 inner steps, 40 epochs) on ``load_dataset("two_moons", seed=0)``; on the test split and
ε ∈ [0, 0.4] (9 budgets) measures the robust error under IFGSM (20 steps, 3 random restarts)
and under the grid-search worst case (d = 2), the exact optimal adversarial risk of the test
data, and FGSM / IFGSM / flow / worst-case attack strength on the clean-trained model.

Writes ``report.json`` and ``robustness_two_moons.png`` into ``--out``.

Run:  python experiments/robustness_two_moons.py --out out/robustness_two_moons  [--quick]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _robustness_common import run  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(run("two_moons", __doc__, quick={"epochs": 2, "n_eps": 3, "n_eval": 40, "restarts": 1, "steps": 3,
                                              "eval_steps": 5, "worst_case_grid": 9}))

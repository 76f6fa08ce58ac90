"""Cost of FlowResult.slopes: ReLU network (metric slope, estimated on kinks) against the same
network with GELU (smooth: ‖∇V‖_*), one process, one run each, plus the check_flow wall time.

Run: PYTHONPATH=. python benchmarks/bench_slope.py [--n 100] [--tau 0.01]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import wflow
from wflow.adversarial.losses import make_loss
from wflow.adversarial.mlp import load_model
from wflow.verify import check_flow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--tau", type=float, default=0.01)
    ap.add_argument("--T", type=float, default=0.5)
    args = ap.parse_args()
    x0 = np.random.default_rng(0).uniform(-1.5, 2.0, (args.n, 2))
    print(f"load {os.getloadavg()[0]:.1f}; {args.n} particles, T = {args.T}, tau = {args.tau}, linf")
    for scheme in ("euler", "minmove"):
        row = {}
        for act in ("gelu", "relu"):
            model = load_model(f"two_moons_{act}")
            V = -make_loss(model, model.predict(x0), "ce")  # the attack potential
            res = wflow.solve_flow(V, x0, args.T, args.tau, norm="linf", scheme=scheme)
            t0 = time.perf_counter()
            S = res.slopes
            t1 = time.perf_counter()
            rep = check_flow(res)
            t2 = time.perf_counter()
            row[act] = (t1 - t0, t2 - t1)
            print(f"{scheme:8s} {act}: slopes {t1 - t0:.3f} s ({S.size} values), check_flow {t2 - t1:.3f} s, "
                  f"passed {rep.passed}")
        print(f"{scheme:8s} relu/gelu: slopes x{row['relu'][0] / row['gelu'][0]:.0f}, "
              f"check_flow x{row['relu'][1] / row['gelu'][1]:.1f}")


if __name__ == "__main__":
    main()

"""verify_characterization on 150 curves × 201 times: the default path against the old all-pairs
exact-W∞ path (one process, one run), and the wall time of the verification catalogue.

Run: PYTHONPATH=. python benchmarks/bench_verify.py [--skip-old]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import wflow
from wflow.potentials import GaussianMixture
from wflow.superposition import superpose
from wflow.transport import winf
from wflow.verify import verify_characterization
from wflow.verify.catalogue import run_catalogue


def old_all_pairs(eta, stride: int = 1) -> tuple[float, int]:
    """The previous default's cost driver: exact W∞ between the marginals at every pair of grid
    times (``stride`` > 1: only the pairs among every stride-th time, to time a sample)."""
    ts = eta.times[::stride]
    snaps = [eta.marginal(s, merge=True) for s in ts]
    worst, n = 0.0, 0
    for i in range(len(snaps)):
        for j in range(i + 1, len(snaps)):
            worst = max(worst, winf(snaps[i], snaps[j], "linf") / (ts[j] - ts[i]))
            n += 1
    return worst, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--old-stride", type=int, default=1,
                    help="time the old path on the pairs among every k-th time and scale to all pairs")
    ap.add_argument("--skip-catalogue", action="store_true")
    args = ap.parse_args()
    V = GaussianMixture.default()
    x0 = np.random.default_rng(0).uniform(-1.2, 1.2, (150, 2))
    res = wflow.solve_flow(V, x0, T=1.0, tau=0.005)  # 201 times
    eta = superpose(res)
    winf(eta.marginal(0.0), eta.marginal(0.5))  # load the transport backend once
    t0 = time.perf_counter()
    rep = verify_characterization(eta, potential=V)
    t_new = time.perf_counter() - t0
    print(f"default verify_characterization, {eta.n_curves} curves x {eta.times.size} times: {t_new:.3f} s "
          f"(passed={rep.passed})")
    if not args.skip_old:
        total = eta.times.size * (eta.times.size - 1) // 2
        t0 = time.perf_counter()
        ratio, n = old_all_pairs(eta, args.old_stride)
        t_old = (time.perf_counter() - t0) * total / n
        print(f"old all-pairs exact W∞ ({total} solves; timed {n}, scaled): {t_old:.1f} s "
              f"(max W∞/|t−s| = {ratio:.12f}); ratio old/new = {t_old / t_new:.0f}")
    for quick in () if args.skip_catalogue else (True, False):
        t0 = time.perf_counter()
        cat = run_catalogue(quick=quick)
        print(f"wflow verify{' --quick' if quick else ''}: {time.perf_counter() - t0:.1f} s, "
              f"mutants caught {cat.details['score']}, correct {cat.details['correct_passed']}/{cat.details['n_correct']}")


if __name__ == "__main__":
    main()

"""Optimal adversarial risk curves: wflow vs the straightforward approach (issue 12).

Baseline: scipy ``cdist`` (the full n0 × n1 distance matrix) and, for every budget, a fresh
maximum matching (``maximum_bipartite_matching``, equal uniform classes) or a fresh integer
max-flow (``maximum_flow``, unequal classes). wflow: ``optimal_adversarial_risk`` (blockwise
conflict graph + one sweep). Both sides run in this process, alternately; the numbers must be
identical (asserted).

Cases:

* synthetic: two classes of 5000 points in d = 784 (an 8-dimensional Gaussian signal, class 1
  shifted by 2 along one axis, embedded by a seeded orthonormal map, plus N(0, 0.05²) noise
  in all 784 coordinates), 21 budgets in ℓ2, seed 0;
* digits (scikit-learn, pixels in [0, 1]): pairs 3 vs 8 and 4 vs 9, 21 budgets in ℓ∞ and ℓ2;
* adversarial training: seconds per epoch of ``adversarial_train`` with ``inner="flow"`` vs
  ``inner="ifgsm"`` at equal inner steps (10), two moons (2-32-32-1) and digits (64-64-64-10),
  3 epochs each, alternating.

    python benchmarks/bench_optimal_risk.py [--n 5000] [--repeats 1] [--skip-risk]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_bipartite_matching, maximum_flow
from scipy.spatial.distance import cdist

from wflow.adversarial import MLP, adversarial_train, load_dataset, optimal_adversarial_risk

METRIC = {"l2": "euclidean", "linf": "chebyshev"}


def baseline(X0, X1, eps, norm):
    D = cdist(X0, X1, METRIC[norm])
    n0, n1 = D.shape
    out = []
    for e in eps:
        A = D <= 2 * e
        if n0 == n1:
            m = maximum_bipartite_matching(sp.csr_matrix(A.astype(np.int8)), perm_type="column")
            out.append(0.5 * np.count_nonzero(m >= 0) / n0)
        else:
            L = n0 * n1 // np.gcd(n0, n1)
            r, c = np.nonzero(A)
            s, t = 0, n0 + n1 + 1
            u = np.r_[np.zeros(n0, int), r + 1, np.arange(n1) + 1 + n0]
            v = np.r_[np.arange(n0) + 1, c + 1 + n0, np.full(n1, t)]
            w = np.r_[np.full(n0, L // n0), np.full(r.size, min(L // n0, L // n1)), np.full(n1, L // n1)]
            G = sp.csr_matrix((w.astype(np.int32), (u, v)), shape=(t + 1, t + 1))
            out.append(0.5 * maximum_flow(G, s, t).flow_value / L)
    return np.array(out)


def synthetic(n, d=784, seed=0):
    rng = np.random.default_rng(seed)
    Z0, Z1 = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    Z1[:, 0] += 2.0
    P = np.linalg.qr(rng.normal(size=(d, 8)))[0]
    return Z0 @ P.T + 0.05 * rng.normal(size=(n, d)), Z1 @ P.T + 0.05 * rng.normal(size=(n, d))


def timed(f, *a):
    t = time.perf_counter()
    r = f(*a)
    return time.perf_counter() - t, r


def compare(label, X0, X1, eps, norm, repeats):
    tw, tb = [], []
    for _ in range(repeats):
        t1, rb = timed(baseline, X0, X1, eps, norm)
        t2, rw = timed(optimal_adversarial_risk, X0, X1, eps, norm)
        assert np.array_equal(rb, rw), (rb, rw)
        tb.append(t1)
        tw.append(t2)
    b, w = statistics.median(tb), statistics.median(tw)
    print(f"| {label} | {norm} | {len(X0)} + {len(X1)} | {X0.shape[1]} | {w:.2f} s | {b:.2f} s | {b / w:.1f}× |")
    print(f"|  risk at ε = {', '.join(f'{e:.3g}' for e in eps[::5])} | | | | "
          f"{', '.join(f'{r:.4f}' for r in rw[::5])} | | |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-risk", action="store_true")
    a = ap.parse_args()
    print(f"load before: {os.getloadavg()}")
    if not a.skip_risk:
        risk_benchmarks(a)
    training_benchmarks()
    print(f"load after: {os.getloadavg()}")


def training_benchmarks():
    print("| data | inner | steps | s/epoch (median of 3) | flow / ifgsm |")
    print("|---|---|---|---|---|")
    for name, layers, eps in (("two_moons", (2, 32, 32, 1), 0.2), ("digits", (64, 64, 64, 10), 0.1)):
        ds = load_dataset(name, seed=0)
        m0 = MLP.init(layers, "relu", seed=0)
        times = {"flow": [], "ifgsm": []}
        for _ in range(3):
            for inner in ("flow", "ifgsm"):
                _, h = adversarial_train(m0, ds.X_train, ds.y_train, eps, inner=inner, steps=10, epochs=1, seed=0)
                times[inner].append(float(h.epoch_time[0]))
        f, i = statistics.median(times["flow"]), statistics.median(times["ifgsm"])
        print(f"| {name} | flow | 10 | {f:.3f} | {f / i:.2f} |")
        print(f"| {name} | ifgsm | 10 | {i:.3f} | |")


def risk_benchmarks(a):
    print("| case | norm | points | d | wflow | cdist + fresh matching/flow | ratio |")
    print("|---|---|---|---|---|---|---|")
    X0, X1 = synthetic(a.n)
    compare("synthetic", X0, X1, np.linspace(0.0, 1.5, 21), "l2", a.repeats)
    ds = load_dataset("digits", seed=0)
    X = np.r_[ds.X_train, ds.X_test]
    y = np.r_[ds.y_train, ds.y_test]
    for c0, c1 in ((3, 8), (4, 9)):
        for norm, top in (("linf", 0.5), ("l2", 3.0)):
            compare(f"digits {c0} vs {c1}", X[y == c0], X[y == c1], np.linspace(0.0, top, 21), norm, a.repeats)


if __name__ == "__main__":
    main()

"""Benchmark: superpose_snapshots and the verification of the characterization.

Data: the ℓ∞ Euler flow (τ = 0.002) of 2000 particles in d = 2 (uniform weights; ``--weighted``:
Dirichlet weights) under a Gaussian-mixture potential, 50 snapshots at spacing 0.01, every snapshot's atoms shuffled (unlabelled).

Timed, side by side in one run (median of ``--repeats``; one untimed warm-up coupling first, so
the one-time imports of POT and OR-tools are not counted):

- ``couplings``: the 49 ``optimal_coupling`` calls alone (the baseline: the transport work);
- ``superpose_snapshots``: couplings + vectorized gluing (target < 10 s; Dirichlet weights < 20 s);
- gluing alone, vectorized vs a per-atom Python loop (same couplings, same output);
- ``check_marginals`` + ``check_snapshot_lipschitz`` (consecutive pairs), exact W∞ (target < 30 s).

``--collapse``: the exact ℓ∞ flow of ½‖x‖² from U[-1, 1]² at 50 times in [0, 1.2] (atoms collapse
onto the axes and the origin: coincident atoms, merged by the transport solver), shuffled.

Run: ``python benchmarks/bench_superposition.py [--n 2000] [--snapshots 50] [--repeats 3]
[--weighted | --collapse]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import wflow
from wflow.measures import ParticleMeasure
from wflow.potentials import GaussianMixture
from wflow.superposition import _checked_coupling, _glue_interval, superpose_snapshots
from wflow.transport import optimal_coupling
from wflow.verify import check_marginals, check_snapshot_lipschitz


def make_snapshots(n: int, n_snap: int, seed: int = 0, weighted: bool = False):
    rng = np.random.default_rng(seed)
    V = GaussianMixture.default()
    x0 = rng.uniform(-1.5, 1.5, (n, 2))
    w = rng.dirichlet(np.ones(n)) if weighted else np.full(n, 1.0 / n)
    spacing, tau = 0.01, 0.002
    res = wflow.solve_flow(V, ParticleMeasure(x0, w), T=spacing * (n_snap - 1), tau=tau)
    stride = int(round(spacing / tau))
    times = res.times[::stride]
    snaps = []
    for s in times:
        mu = res.measure(s)
        perm = rng.permutation(n)
        snaps.append(ParticleMeasure(mu.points[perm], mu.weights[perm]))
    return snaps, times


def make_collapsing_snapshots(n: int, n_snap: int, seed: int = 0):
    """u_i(t) = sign(x_i) max(|x_i| − t, 0) (the ℓ∞ flow of ½‖x‖², closed form) at
    t = 0, …, 1.2: atoms reach the axes, then the origin, and coincide; every snapshot shuffled."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.0, 1.0, (n, 2))
    times = np.linspace(0.0, 1.2, n_snap)
    snaps = []
    for t in times:
        P = np.sign(x0) * np.maximum(np.abs(x0) - t, 0.0)
        snaps.append(ParticleMeasure(P[rng.permutation(n)]))
    return snaps, times


def glue_loop(snaps, couplings):
    """Reference gluing with a Python loop over atoms (interval rule, no regularity ordering)."""
    cur = [[(i,), w] for i, w in enumerate(snaps[0].weights)]
    for k, (rows, cols, mass) in enumerate(couplings):
        by_atom: dict[int, list] = {}
        for c in cur:
            by_atom.setdefault(c[0][-1], []).append(c)
        edges: dict[int, list] = {}
        for r, c, m in zip(rows, cols, mass):
            edges.setdefault(int(r), []).append((int(c), m))
        new = []
        W = snaps[k].weights
        for b, incoming in by_atom.items():
            fc = np.cumsum([c[1] for c in incoming])
            fc /= fc[-1]
            out = edges[b]
            fe = np.cumsum([m for _, m in out])
            fe /= fe[-1]
            i = j = 0
            lo = 0.0
            while i < len(incoming) and j < len(out):
                hi = min(fc[i], fe[j])
                if hi > lo:
                    new.append([incoming[i][0] + (out[j][0],), (hi - lo) * W[b]])
                lo = hi
                if fc[i] <= hi:
                    i += 1
                if fe[j] <= hi:
                    j += 1
        cur = new
    return cur


def timed(f, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--snapshots", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--weighted", action="store_true", help="Dirichlet weights instead of uniform")
    ap.add_argument("--collapse", action="store_true",
                    help="the exact ℓ∞ flow of ½‖x‖² from U[-1,1]² (atoms collapse onto the axes)")
    args = ap.parse_args()
    if args.collapse:
        snaps, times = make_collapsing_snapshots(args.n, args.snapshots)
    else:
        snaps, times = make_snapshots(args.n, args.snapshots, weighted=args.weighted)

    def couplings():
        out = []
        for k in range(len(snaps) - 1):
            g = optimal_coupling(snaps[k], snaps[k + 1], "linf", tie_break="w2")
            out.append(_checked_coupling(g, snaps[k].weights, snaps[k + 1].weights, k))
        return out

    optimal_coupling(snaps[0], snaps[1], "linf")  # warm-up: one-time imports (POT, OR-tools) not timed
    t_coup, cps = timed(couplings, args.repeats)
    t_sup, eta = timed(lambda: superpose_snapshots(snaps, times), args.repeats)
    t_sup0, eta0 = timed(lambda: superpose_snapshots(snaps, times, tie_break=None), args.repeats)

    def glue_vec():
        cur_atom, cur_w, prev = np.arange(snaps[0].n), np.array(snaps[0].weights), snaps[0].points
        for k, (rows, cols, mass) in enumerate(cps):
            parent, edge, w = _glue_interval(cur_atom, cur_w, prev, rows, cols, mass,
                                             snaps[k + 1].points[cols], snaps[k].weights)
            prev = snaps[k].points[cur_atom[parent]]
            cur_atom, cur_w = cols[edge], w
        return cur_atom.size

    t_gv, m_vec = timed(glue_vec, args.repeats)
    t_gl, cur = timed(lambda: glue_loop(snaps, cps), 1)

    def verification():
        a = check_marginals(eta, snaps, times)
        b = check_snapshot_lipschitz(snaps, times, "linf")
        return a, b

    t_ver, (ra, rb) = timed(verification, args.repeats)

    kind = "collapsing ℓ∞ flow" if args.collapse else ("Dirichlet" if args.weighted else "uniform") + " weights"
    print(f"n = {args.n} atoms ({kind}), "
          f"{args.snapshots} snapshots, d = 2; median of {args.repeats} "
          f"(loop gluing: 1 run); curves in η: {eta.n_curves}\n")
    print("| stage | time (s) | ratio | note |")
    print("|---|---:|---:|---|")
    print(f"| couplings alone ({len(snaps) - 1} × optimal_coupling) | {t_coup:.2f} | 1.00 | baseline |")
    target = "< 20 s" if args.weighted and not args.collapse else "< 10 s"
    print(f"| superpose_snapshots (couplings + gluing) | {t_sup:.2f} | {t_sup / t_coup:.2f} | target {target} |")
    print(f"| superpose_snapshots, tie_break=None | {t_sup0:.2f} | {t_sup0 / t_coup:.2f} | "
          f"{eta0.n_curves} curves |")
    print(f"| gluing alone, vectorized | {t_gv:.3f} | {t_gv / t_coup:.3f} | {m_vec} curves |")
    print(f"| gluing alone, Python loop over atoms | {t_gl:.3f} | {t_gl / t_coup:.3f} | "
          f"{len(cur)} curves; vectorized is {t_gl / t_gv:.0f}× faster |")
    print(f"| verification (a) + (b), exact W∞, consecutive pairs | {t_ver:.2f} | {t_ver / t_coup:.2f} | "
          f"target < 30 s |")
    print(f"\n(a) max W∞(marginal, snapshot) = {ra.measured:.3g} (passed: {ra.passed}); "
          f"(b) max W∞/|t−s| = {rb.measured:.12f} over {rb.details['n_transport_problems']} pairs "
          f"(passed: {rb.passed})")


if __name__ == "__main__":
    main()

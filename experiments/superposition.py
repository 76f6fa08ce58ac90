"""The representing measure η on curve space, rebuilt from shuffled, unlabelled snapshots.

A particle flow is computed (labelled trajectories are the ground truth), then only its
snapshots μ_{t_0}, …, μ_{t_K} are kept, every one with its atoms shuffled; in the ``split``
variant every other snapshot also has each atom split into two atoms of half the weight (sizes
change over time). :func:`wflow.superpose_snapshots` glues W∞-optimal couplings (ties broken by
minimal W2 cost) into η, and the characterization is checked with exact distances
(:mod:`wflow.verify`):

(a) marginals max_k W∞((e_{t_k})_#η, μ_{t_k}) (0 up to round-off);
(b) W∞(μ_s, μ_t) ≤ |t − s| on all pairs of snapshot times (consecutive pairs for weighted or
    split snapshots: by the triangle inequality they certify all pairs);
(c) energy dissipation 𝓔(μ_t) + ∫_s^t |∂𝓔| ≤ 𝓔(μ_s) + tol on all pairs, tol = 2 Δt·max|∂𝓔| (the
    snapshots come from a scheme with step τ and are Δt apart);
(d) η-mass of curves of maximal slope, per-curve defect tolerance as in (c);

plus the recovery error of the true curves: the η-weighted mean, over curves, of the sup-in-time
ℓ∞ distance to the nearest true particle trajectory.

Problems: the Gaussian-mixture landscape (300 particles uniform in [−1.2, 1.2]² with weights
∝ exp(−‖x‖²), T = 1, τ = 0.005) and the
two-moons GELU distributional attack (300 test points, ε = 0.2, τ = ε/100; checks (a), (b)).

Writes ``superposition.json``, ``eta_<problem>.png`` and ``eta_<problem>_split.png`` (curves
coloured by weight) and ``snapshots_<problem>.png``.

Run:  python experiments/superposition.py --out out/superposition  [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

try:
    import wflow
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import wflow

import numpy as np

from wflow.adversarial import distributional_attack, load_model, load_two_moons
from wflow.io import StagedOutput
from wflow.measures import ParticleMeasure
from wflow.norms import norm as lp_norm
from wflow.plotting import plot_curve_measure, plot_snapshots, save_figure
from wflow.potentials import GaussianMixture
from wflow.superposition import superpose_snapshots
from wflow.verify import verify_characterization


def shuffled_snapshots(res, ks, rng, split: bool):
    """Snapshots at stored indices ``ks``, atoms shuffled; with ``split`` every other one has halved atoms."""
    snaps = []
    for j, k in enumerate(ks):
        X, w = res.positions[k], res.weights
        if split and j % 2 == 1:
            X, w = np.concatenate([X, X]), np.concatenate([w, w]) / 2
        perm = rng.permutation(len(w))
        snaps.append(ParticleMeasure(X[perm], w[perm]))
    return snaps


def recovery_error(eta, res, times) -> float:
    """η-weighted mean over curves of min over true trajectories of sup_t ‖u(t) − x_i(t)‖∞."""
    U = eta.at(times)                                  # (m_t, n_curves, d)
    Xt = res.at(times)                                 # (m_t, n, d)
    errs = np.empty(eta.n_curves)
    for c in range(eta.n_curves):  # curves are few hundred: one vectorized distance per curve
        errs[c] = lp_norm(Xt - U[:, c:c + 1, :], np.inf).max(axis=0).min()
    return float(eta.weights @ errs)


def run(out: str, quick: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = 120 if quick else 300
    K = 10 if quick else 20
    problems = []
    V = GaussianMixture.default()
    X0 = rng.uniform(-1.2, 1.2, size=(n, 2))
    w0 = np.exp(-np.sum(X0**2, axis=1))  # a non-uniform measure: weights ∝ exp(−‖x‖²)
    gm = wflow.solve_flow(V, ParticleMeasure(X0, w0, normalize=True), T=1.0, tau=0.005)
    problems.append(("gaussian_mixture", gm, V))
    data = load_two_moons()
    att = distributional_attack(load_model("two_moons_gelu"), data["X_test"][:n], data["y_test"][:n],
                                eps=0.2, tau=0.002, n_winf=0)
    problems.append(("two_moons_attack", att.flow, None))
    results, figs = [], {}
    t_start = time.perf_counter()
    for name, res, pot in problems:
        ks = np.unique(np.linspace(0, len(res.times) - 1, K + 1).round().astype(int))
        times = res.times[ks]
        dt = float(np.max(np.diff(times)))
        for split in (False, True):
            t0 = time.perf_counter()
            snaps = shuffled_snapshots(res, ks, rng, split)
            eta = superpose_snapshots(snaps, times, norm="linf")
            # default (derived) tolerances; the snapshots do not come from η, so the marginals and
            # the snapshots' W∞-Lipschitz bound are measured with the exact W∞
            rep = verify_characterization(eta, snaps, times, potential=pot)
            a, b = rep["marginals"], rep["snapshot_lipschitz"]
            entry = {
                "problem": name, "split": split, "n_particles": int(res.n_particles), "n_snapshots": len(snaps),
                "snapshot_spacing": dt, "tau": float(res.tau), "n_curves": int(eta.n_curves),
                "characterization": rep.to_dict(), "recovery_error": recovery_error(eta, res, times),
            }
            entry["passed"] = bool(rep.passed)
            entry["seconds"] = time.perf_counter() - t0
            results.append(entry)
            print(f"{name}{' (split atoms)' if split else ''}: {eta.n_curves} curves, marginals W∞ ≤ "
                  f"{a.measured:.2e}, W∞-Lipschitz {b.measured:.6f}, recovery error {entry['recovery_error']:.2e}, "
                  f"{'PASS' if entry['passed'] else 'FAIL'}  ({entry['seconds']:.1f} s)")
            tag = "_split" if split else ""
            figs[f"eta_{name}{tag}.png"] = plot_curve_measure(
                eta, potential=pot, title=f"η from {len(snaps)} shuffled{' split-atom' if split else ''} snapshots")
            if not split:
                figs[f"snapshots_{name}.png"] = plot_snapshots(snaps[:: max(1, K // 4)], times[:: max(1, K // 4)])
    summary = {"experiment": "superposition", "quick": quick, "seed": seed, "results": results,
               "all_passed": all(r["passed"] for r in results), "seconds": time.perf_counter() - t_start}
    with StagedOutput(out) as st:
        for fname, f in figs.items():
            save_figure(f, st.path(fname), dpi=90)
        st.write_json("superposition.json", summary)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/superposition")
    ap.add_argument("--quick", action="store_true", help="fewer particles and snapshots")
    args = ap.parse_args(argv)
    s = run(args.out, args.quick)
    print(f"wrote {os.path.abspath(args.out)} in {s['seconds']:.1f} s")
    return 0 if s["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""FGSM/IFGSM vs minimizing movement as τ → 0 (the paper's convergence experiment).

Setting: ε = 0.2, T = 1, τ = ε·2^{-i} (i = 0, …, 7; ``--quick``: 0, …, 4), 100 random starts
uniform in [−1, 1]² (seed 0), the shipped two-moons ReLU and GELU classifiers, V = −ℓ
(squared error to the label predicted at the start), ℓ∞ with the budget B_ε(x₀). For every τ
both schemes are run and the sup-in-time distance of their piecewise-linear interpolants,
sup_t ‖u_Euler(t) − u_MM(t)‖∞, is measured per start; the maximum and the mean over starts are
fitted by a power law C τ^rate. Both schemes converge to ∞-curves of maximal slope, so the
difference must vanish as τ → 0 (up to the non-uniqueness of those curves).

Writes ``convergence.png`` (log–log with fitted rates) and ``convergence.json``.

Run:  python experiments/convergence_fgsm_vs_minmove.py --out out/convergence  [--quick]
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

from wflow.adversarial import load_model, make_loss
from wflow.io import StagedOutput
from wflow.norms import norm as lp_norm
from wflow.plotting import fit_rate, plot_convergence, save_figure


def sup_distance_per_particle(a, b, n_eval: int = 401) -> np.ndarray:
    """sup over a time grid (plus both grids' nodes) of ‖u_a(t) − u_b(t)‖∞, per particle."""
    ts = np.unique(np.r_[np.linspace(0.0, a.T, n_eval), a.times, b.times])
    return lp_norm(a.at(ts) - b.at(ts), np.inf).max(axis=0)


def run(out: str, quick: bool = False, n_starts: int = 100, seed: int = 0) -> dict:
    eps, T = 0.2, 1.0
    levels = range(5) if quick else range(8)
    taus = [eps * 2.0**-i for i in levels]
    X0 = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n_starts, 2))
    t_start = time.perf_counter()
    results = {}
    for act in ("relu", "gelu"):
        model = load_model(f"two_moons_{act}")
        V = -make_loss(model, None, "mse", x=X0)
        rows = []
        for tau in taus:
            t0 = time.perf_counter()
            e = wflow.solve_flow(V, X0, T, tau, scheme="euler", budget=eps)
            m = wflow.solve_flow(V, X0, T, tau, scheme="minmove", budget=eps)
            d = sup_distance_per_particle(e, m)
            rows.append({"tau": tau, "max": float(d.max()), "mean": float(d.mean()),
                         "median": float(np.median(d)), "energy_gap_mean": float(np.mean(e.energies[-1] - m.energies[-1])),
                         "seconds": time.perf_counter() - t0})
            print(f"{act} τ = {tau:.5g}: max {d.max():.4g}, mean {d.mean():.4g}  ({rows[-1]['seconds']:.1f} s)")
        rate_max, c_max = fit_rate(taus, [r["max"] for r in rows])
        rate_mean, c_mean = fit_rate(taus, [r["mean"] for r in rows])
        results[act] = {"rows": rows, "rate_max": rate_max, "C_max": c_max, "rate_mean": rate_mean, "C_mean": c_mean}
    summary = {
        "experiment": "convergence_fgsm_vs_minmove", "quick": quick, "eps": eps, "T": T, "taus": taus,
        "n_starts": n_starts, "seed": seed, "norm": "linf", "results": results,
        "seconds": time.perf_counter() - t_start,
    }
    with StagedOutput(out) as st:
        series = {}
        for act, r in results.items():
            series[f"{act}: max over starts"] = [row["max"] for row in r["rows"]]
            series[f"{act}: mean over starts"] = [row["mean"] for row in r["rows"]]
        fig = plot_convergence(taus, series, reference_rate=1.0, ylabel="sup_t ‖u_Euler − u_MM‖∞",
                               title=f"IFGSM vs minimizing movement, ε = {eps:g}, {n_starts} starts")
        save_figure(fig, st.path("convergence.png"), dpi=100)
        st.write_json("convergence.json", summary)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/convergence_fgsm_vs_minmove")
    ap.add_argument("--quick", action="store_true", help="τ = ε·2^{-i} for i ≤ 4 only")
    ap.add_argument("--starts", type=int, default=100)
    args = ap.parse_args(argv)
    s = run(args.out, args.quick, n_starts=args.starts)
    for act, r in s["results"].items():
        print(f"{act}: fitted rate (max) {r['rate_max']:.3f}, (mean) {r['rate_mean']:.3f}")
    print(f"wrote {os.path.abspath(args.out)} in {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Minimizing-movement step solvers: local projected gradient vs consensus-based optimization.

One minimizing-movement step x⁺ ∈ argmin{V(x) : ‖x − x₀‖∞ ≤ τ} from each of 200 random
starting points, solved in one batched call per solver:

- ``local`` (wflow's default for non-closed-form V): projected gradient from the Euler (FGSM)
  step, from x₀ and from the Frank–Wolfe vertex at the Euler step, ≤ 88 evaluations;
- ``cbo``: consensus-based optimization, 30 particles × 30 iterations (the authors' budget,
  902 evaluations with V(x₀) and V(consensus)), defaults α = 1e4, λ = 1, σ = 1, dt = 0.1;
- ``cbo best-of-6``: per start, the best of 6 CBO parameter settings (α ∈ {1e2, 1e4, 1e6} ×
  σ ∈ {0.3, 1}) — the strongest CBO comparator, 6 × 902 evaluations;
- ``global``: grid (41² points) + refinement, the reference minimum (d = 2).

Landscapes: ``GaussianMixture.default()`` and, when ``wflow.adversarial`` is available, the
attack energy V = −loss of the shipped two-moons GELU classifier at 200 random test points.
Evaluations count values and gradients as one each. Times: median of ``--repeat`` runs, measured
side by side in this process.

    python benchmarks/bench_minmove.py [--repeat 5] [--n 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from wflow.minmove import minmove_step
from wflow.potentials import GaussianMixture

CBO_SWEEP = [dict(alpha=a, sigma=s) for a in (1e2, 1e4, 1e6) for s in (0.3, 1.0)]


def _timed(repeat, *args, **kw):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = minmove_step(*args, **kw)
        times.append(time.perf_counter() - t0)
    return (out.x, out.info), float(np.median(times))


def landscapes(n: int, rng):
    yield "gaussian mixture", GaussianMixture.default(), rng.uniform(-1.5, 1.5, (n, 2))
    try:
        from wflow.adversarial import load_model, load_two_moons
        from wflow.adversarial.attacks import attack_potential
    except Exception as exc:  # pragma: no cover - the adversarial module is optional here
        print(f"(two-moons classifier unavailable: {exc})")
        return
    model = load_model("two_moons_gelu")
    X = load_two_moons()["X_test"]
    X = X[rng.choice(len(X), n, replace=False)]
    yield "two-moons GELU, V = -loss", -attack_potential(model, X), X


def run(n: int, repeat: int, taus, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for name, V, X in landscapes(n, rng):
        for tau in taus:
            (Zl, il), t_local = _timed(repeat, V, X, tau, inner="local")
            (Zc, ic), t_cbo = _timed(repeat, V, X, tau, inner="cbo", seed=seed)
            ig = minmove_step(V, X, tau, inner="global").info
            sweep = [minmove_step(V, X, tau, inner="cbo", seed=seed + 1 + j, **o).info.energy
                     for j, o in enumerate(CBO_SWEEP)]
            best_cbo = np.min(sweep, axis=0)
            El, Ec, Eg = il.energy, ic.energy, ig.energy
            tol = 1e-12 * (1 + np.abs(Ec))
            rows.append({
                "landscape": name, "tau": tau,
                "local evals median/max": f"{np.median(il.evals):.0f} / {il.evals.max()}",
                "cbo evals": f"{ic.evals.max()}",
                "local ≤ cbo": f"{np.mean(El <= Ec + tol):.3f}",
                "local ≤ cbo best-of-6": f"{np.mean(El <= best_cbo + 1e-12 * (1 + np.abs(best_cbo))):.3f}",
                "mean E(cbo) − E(local)": f"{np.mean(Ec - El):.2e}",
                "max E(local) − E(global)": f"{np.max(El - Eg):.1e}",
                "max E(cbo) − E(global)": f"{np.max(Ec - Eg):.1e}",
                "time local / cbo": f"{t_local * 1e3:.1f} ms / {t_cbo * 1e3:.1f} ms",
            })
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--taus", type=float, nargs="+", default=[0.1, 0.05, 0.0125])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = run(args.n, args.repeat, args.taus, args.seed)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()

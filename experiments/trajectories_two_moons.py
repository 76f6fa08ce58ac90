"""IFGSM vs minimizing movement trajectories on the two-moons classifiers (the paper's figures).

For the ReLU and GELU models and the paper's settings

* x₀ = (0.45, 0.3), ε = 0.25,
* x₀ = (0.1, 0.55), ε = 0.2,

with τ ∈ {0.25, 0.125, 0.025, 0.001} and T = 1, the attack potential V = −ℓ (squared error to
the label predicted at x₀) is flowed in ℓ∞ with the budget B_ε(x₀) by explicit Euler (= IFGSM)
and by minimizing movement. Writes one figure per (model, x₀) — the landscape of V with both
schemes' trajectories, the ε-box and the τ-boxes of the coarse steps — and
``trajectories.json`` with, per setting, the final points and energies and the sup-in-time
distance between the two schemes' interpolants for every τ.

Run:  python experiments/trajectories_two_moons.py --out out/trajectories  [--quick]
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
from wflow.plotting import plot_landscape, save_figure
from wflow.studies import sup_error

SETTINGS = [((0.45, 0.3), 0.25), ((0.1, 0.55), 0.2)]
TAUS = (0.25, 0.125, 0.025, 0.001)


def run(out: str, quick: bool = False) -> dict:
    taus = TAUS[:3] + (0.005,) if quick else TAUS
    schemes = ["euler", "minmove"]
    results = []
    t_start = time.perf_counter()
    with StagedOutput(out) as st:
        for act in ("relu", "gelu"):
            model = load_model(f"two_moons_{act}")
            for x0, eps in SETTINGS:
                x0 = np.asarray(x0)
                y0 = int(model.predict(x0[None])[0])
                V = -make_loss(model, y0, "mse")
                runs = {s: {tau: wflow.solve_flow(V, x0, T=1.0, tau=tau, scheme=s, budget=eps) for tau in taus}
                        for s in schemes}
                entry = {"model": act, "x0": x0.tolist(), "eps": eps, "label": y0, "T": 1.0, "taus": list(taus),
                         "schemes": {}}
                for s in schemes:
                    entry["schemes"][s] = {
                        str(tau): {"final_point": r.positions[-1, 0].tolist(), "final_energy": float(r.energies[-1, 0]),
                                   "steps": int(len(r.times) - 1)}
                        for tau, r in runs[s].items()
                    }
                if "minmove" in runs:
                    entry["sup_distance_euler_minmove"] = {
                        str(tau): sup_error(runs["euler"][tau], runs["minmove"][tau], 1.0, np.inf) for tau in taus
                    }
                results.append(entry)
                # figure: one panel per scheme, all τ overlaid, τ-boxes for the two coarsest steps
                from matplotlib.figure import Figure

                fig = Figure(figsize=(6.0 * len(schemes), 5.2), layout="constrained")
                axes = fig.subplots(1, len(schemes), squeeze=False)[0]
                lo, hi = x0 - eps - 0.08, x0 + eps + 0.08
                for ax, s in zip(axes, schemes):
                    plot_landscape(V, [runs[s][t] for t in taus], labels=[f"τ = {t:g}" for t in taus],
                                   budget=eps, center=x0, tau_boxes=[t >= 0.125 for t in taus], xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]),
                                   resolution=90 if quick else 150, ax=ax,
                                   title=f"{'IFGSM' if s == 'euler' else 'minimizing movement'}: {act}, "
                                         f"x₀ = ({x0[0]:g}, {x0[1]:g}), ε = {eps:g}")
                save_figure(fig, st.path(f"trajectories_{act}_x{x0[0]:g}_{x0[1]:g}.png"), dpi=80 if quick else 110)
        summary = {"experiment": "trajectories_two_moons", "quick": quick, "schemes": schemes,
                   "settings": results, "seconds": time.perf_counter() - t_start}
        st.write_json("trajectories.json", summary)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/trajectories_two_moons")
    ap.add_argument("--quick", action="store_true", help="replace τ = 0.001 by 0.005")
    args = ap.parse_args(argv)
    s = run(args.out, args.quick)
    for e in s["settings"]:
        d = e.get("sup_distance_euler_minmove", {})
        print(f"{e['model']} x0={tuple(e['x0'])} eps={e['eps']}: sup|euler − minmove| per τ = "
              + ", ".join(f"{k}: {v:.3g}" for k, v in d.items()))
    print(f"wrote {os.path.abspath(args.out)} in {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

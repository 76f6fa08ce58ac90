"""Distributional attacks on the two-moons classifiers as W∞ ∞-flows.

For the ReLU and GELU models and ε ∈ {0.1, 0.2}, the test-data measure (true labels, first
1000 points; ``--quick``: 300) is attacked by the ∞-flow of 𝓔(ν) = −∫ℓ dν up to t = ε (ℓ∞,
τ = ε/100). Measured and written to ``distributional_attack.json``:

* expected loss and accuracy along t;
* W∞(μ₀, μ_t) ≤ t, exactly (``wflow.winf``) at 6 times,
  and the labelled upper bound max_i ‖x_i(t) − x_i(0)‖ always;
* the true worst case Σ_i w_i sup_{B_ε(x_i)} ℓ by a dense per-point grid search, and the gaps of
  FGSM, IFGSM (5, 10, 20, 40 steps) and minimizing movement (5, 10 steps) to it.

Figures: ``attack_<model>_eps<ε>.png`` (loss, accuracy, W∞ over t) and ``gaps.png`` (relative
gap to the worst case per attack).

Run:  python experiments/distributional_attack.py --out out/distributional  [--quick]
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
    import wflow  # noqa: F401

import numpy as np
from matplotlib.figure import Figure

from wflow.adversarial import attack_gaps, distributional_attack, load_model, load_two_moons, worst_case_loss
from wflow.io import StagedOutput
from wflow.measures import ParticleMeasure
from wflow.plotting import plot_attack_curves, save_figure

EPSILONS = (0.1, 0.2)


def run(out: str, quick: bool = False) -> dict:
    n = 300 if quick else 1000
    grid, refine = (25, 3) if quick else (49, 4)
    data = load_two_moons()
    X, y = data["X_test"][:n], data["y_test"][:n]
    mu = ParticleMeasure(X)
    t_start = time.perf_counter()
    results = []
    figs = {}
    for act in ("relu", "gelu"):
        model = load_model(f"two_moons_{act}")
        for eps in EPSILONS:
            t0 = time.perf_counter()
            att = distributional_attack(model, mu, y, eps=eps, tau=eps / 100, n_winf=6)
            worst = worst_case_loss(model, mu, y, eps, grid=grid, refine=refine)
            gaps = attack_gaps(model, mu, y, eps, worst=worst, minmove_steps=(5, 10))
            disp = att.displacement
            entry = {
                "model": act, "eps": eps, "tau": eps / 100, "n_points": n,
                "clean_loss": float(att.expected_loss[0]), "attacked_loss": float(att.expected_loss[-1]),
                "clean_accuracy": float(att.accuracy[0]), "attacked_accuracy": float(att.accuracy[-1]),
                "worst_case_loss": worst.mean,
                "flow_gap": worst.mean - float(att.expected_loss[-1]),
                "flow_rel_gap": (worst.mean - float(att.expected_loss[-1])) / worst.mean,
                "times": att.times[:: max(1, len(att.times) // 20)].tolist(),
                "expected_loss": att.expected_loss[:: max(1, len(att.times) // 20)].tolist(),
                "accuracy": att.accuracy[:: max(1, len(att.times) // 20)].tolist(),
                "displacement_over_t_max": float(np.max(disp[1:] / att.times[1:])),
                "winf_times": att.winf_times.tolist(), "winf": att.winf.tolist(),
                "winf_within_time": bool(att.winf_within_time()),
                "gaps": gaps.to_dict(),
                "seconds": time.perf_counter() - t0,
            }
            results.append(entry)
            print(f"{act} ε = {eps}: loss {entry['clean_loss']:.4f} → {entry['attacked_loss']:.4f} "
                  f"(worst case {worst.mean:.4f}, gap {100 * entry['flow_rel_gap']:.2f} %), accuracy "
                  f"{entry['clean_accuracy']:.3f} → {entry['attacked_accuracy']:.3f}  ({entry['seconds']:.1f} s)")
            figs[f"attack_{act}_eps{eps:g}.png"] = plot_attack_curves(
                att.times, att.expected_loss, att.accuracy, worst_case=worst.mean, eps=eps,
                winf_times=att.winf_times, winf=att.winf)
    # relative gaps per attack
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.add_subplot()
    ticks, ticklabels = [], []
    for j, e in enumerate(results):
        ents = [g for g in e["gaps"]["entries"] if "gap" in g]
        names = [f"{g['method']}{'' if g['method'] == 'fgsm' else ' ' + str(g['steps'])}" for g in ents] + ["flow ε/100"]
        vals = [100 * g["rel_gap"] for g in ents] + [100 * e["flow_rel_gap"]]
        x = np.arange(len(vals)) + j * (len(vals) + 1)
        ax.bar(x, vals, label=f"{e['model']}, ε = {e['eps']:g}")
        ticks += list(x)
        ticklabels += names
    ax.set_ylabel("gap to worst case (%)")
    ax.set_xticks(ticks, ticklabels, rotation=90, fontsize=7)
    ax.legend(fontsize="small")
    figs["gaps.png"] = fig
    summary = {"experiment": "distributional_attack", "quick": quick, "exact_winf": True,
               "worst_case_grid": {"grid": grid, "refine": refine}, "results": results,
               "seconds": time.perf_counter() - t_start}
    with StagedOutput(out) as st:
        for name, f in figs.items():
            save_figure(f, st.path(name), dpi=90)
        st.write_json("distributional_attack.json", summary)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/distributional_attack")
    ap.add_argument("--quick", action="store_true", help="300 points, coarser grid search")
    args = ap.parse_args(argv)
    s = run(args.out, args.quick)
    print(f"wrote {os.path.abspath(args.out)} in {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

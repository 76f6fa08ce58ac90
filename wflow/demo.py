"""The ``wflow demo`` pipeline: simulate, check, plot, report.

:func:`run_demo` runs an ∞-flow of a particle measure on an embedded default problem, checks
the theorems on it with measured numbers (:mod:`wflow.suite`), draws the figures and an
animation (:mod:`wflow.plotting`) and writes ``report.json`` and ``report.md``. All files go
through :class:`wflow.config.StagedOutput`, so an error leaves nothing half-written.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from . import __version__
from .config import StagedOutput

__all__ = ["run_demo", "DEMO_FILES", "render_report_md"]

#: files every demo run writes (figures, animation, reports)
DEMO_FILES = (
    "landscape.png",
    "snapshots.png",
    "energy.png",
    "animation.gif",
    "report.json",
    "report.md",
)


def _save(st: StagedOutput, name: str, fig, dpi: int) -> str:
    from .plotting import save_figure

    save_figure(fig, st.path(name), dpi=dpi)
    return name


def run_demo(out="wflow-out", *, quick: bool = False, progress: bool = False, seed: int = 0) -> dict:
    """Run the demo and write its files into ``out``; returns the report dict.

    Parameters
    ----------
    out : path
        Output directory (created; existing files of the same names are replaced).
    quick : bool
        Fewer particles and larger steps (well under 15 s).
    progress : bool
        Show tqdm progress bars.
    seed : int
        Seed of the initial measure.
    """
    from .flow import solve_flow
    from .measures import ParticleMeasure
    from .plotting import animate_measure, plot_energy_slope, plot_landscape, plot_snapshots, save_animation
    from .potentials import GaussianMixture
    from .suite import check_energy_dissipation, check_lipschitz, check_winf_lipschitz

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    n = 120 if quick else 400
    T, tau = 1.0, (0.01 if quick else 0.004)
    V = GaussianMixture.default()
    rng = np.random.default_rng(seed)
    mu0 = ParticleMeasure(rng.uniform(-1.2, 1.2, size=(n, 2)))

    t0 = time.perf_counter()
    res = solve_flow(V, mu0, T, tau, norm="linf", progress=progress)
    timings["flow"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    checks = [
        check_lipschitz(res),
        check_energy_dissipation(res),
        check_winf_lipschitz(res, max_times=8 if quick else 12),
    ]
    timings["checks"] = time.perf_counter() - t0

    report = {
        "wflow_version": __version__,
        "command": "demo",
        "quick": quick,
        "problem": {
            "description": "sign-gradient (ℓ∞) ∞-flow of a uniform particle measure on a Gaussian-mixture landscape",
            "potential": repr(V),
            "n_particles": n,
            "T": T,
            "tau": tau,
            "norm": "linf",
            "scheme": "euler",
            "seed": seed,
        },
        "measured": {
            "energy_start": float(res.energy_curve()[0]),
            "energy_end": float(res.energy_curve()[-1]),
            "slope_start": float(res.slope_curve()[0]),
            "slope_end": float(res.slope_curve()[-1]),
        },
        "checks": [c.to_dict() for c in checks],
        "all_passed": all(c.passed for c in checks),
        "files": list(DEMO_FILES),
    }

    dpi = 70 if quick else 90
    with StagedOutput(out) as st:
        t0 = time.perf_counter()
        _save(st, "landscape.png", plot_landscape(V, res, tau_boxes=False, max_curves=60,
                                                   title="∞-flow on a Gaussian-mixture landscape"), dpi)
        _save(st, "snapshots.png", plot_snapshots(res, potential=V, n_panels=4), dpi)
        _save(st, "energy.png", plot_energy_slope(res), dpi)
        anim = animate_measure(res, potential=V, max_frames=20 if quick else 40)
        save_animation(anim, st.path("animation.gif"), fps=8, dpi=60)
        timings["figures"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        report["timings_seconds"] = timings
        report["environment"] = {"python": platform.python_version(), "numpy": np.__version__}
        st.write_json("report.json", report)
        st.write_text("report.md", render_report_md(report))
    return report


def render_report_md(report: dict) -> str:
    """Human-readable markdown version of a demo or verify report."""
    lines = [f"# wflow {report.get('command', 'report')} report", ""]
    prob = report.get("problem")
    if prob:
        lines += [f"**Problem.** {prob.get('description', '')}", ""]
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in prob.items() if k != "description"]
        lines.append("")
    meas = report.get("measured")
    if meas:
        lines += ["## Measured", "", "| quantity | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in meas.items()]
        lines.append("")
    lines += ["## Checks", "", "| check | measured | | tolerance | result |", "|---|---:|:-:|---:|:-:|"]
    for c in report.get("checks", []):
        lines.append(
            f"| {c['name']} | {_fmt(c['measured'])} | {c['relation']} | {_fmt(c['tolerance'])} | "
            f"{'PASS' if c['passed'] else 'FAIL'} |"
        )
    lines.append("")
    for c in report.get("checks", []):
        lines.append(f"- **{c['name']}**: {c['description']}")
    lines.append("")
    verdict = "all checks PASS" if report.get("all_passed") else "some checks FAIL"
    lines += [f"**Result: {verdict}.**", ""]
    if report.get("files"):
        lines += ["## Files", ""] + [f"- `{f}`" for f in report["files"]] + [""]
    if report.get("timings_seconds"):
        tm = ", ".join(f"{k} {v:.2f} s" for k, v in report["timings_seconds"].items())
        lines += [f"Timings: {tm}.", ""]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)

"""``wflow run CONFIG.toml``: simulate a validated configuration, check it, write its outputs."""

from __future__ import annotations

from .. import __version__
from ..adversarial.robustness import robustness_study
from ..distributed import solve_flow_on
from ..flow import check_flow_memory, solve_flow
from ..io import StagedOutput, check_output_dir
from ..memory import check_memory
from ..plotting import (
    BYTES_PER_PIXEL,
    animate_measure,
    plot_energy_slope,
    plot_landscape,
    plot_snapshots,
    save_animation,
)
from ..verify import check_flow
from .config import FIGURES, ConfigError, ModelPotential, RunConfig, build_initial, build_potential
from .figures import ProbabilityField, save_staged_figure
from .reports import render_report_md

__all__ = ["run_config"]

#: size of the largest figure a run draws (snapshots: 4 panels of 3.2 x 3.0 inches)
LARGEST_FIGURE_INCHES = (12.8, 3.0)


def _solve_on_dask(compute: dict, V, mu0, fl: dict, progress: bool, kwargs: dict):
    """The flow of a ``[compute]`` section through wflow.distributed (dask is optional)."""
    scheduler = compute.get("scheduler", "threads")
    try:
        return solve_flow_on(scheduler, V, mu0, fl["T"], fl["tau"], norm=fl.get("norm", "linf"),
                             scheme=fl.get("scheme", "euler"), seed=fl.get("seed"), progress=progress,
                             chunk_size=compute.get("chunk_size"), timeout=compute.get("timeout", 10.0), **kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"compute.scheduler: {exc}") from None
    except ImportError as exc:
        raise ConfigError(f"[compute] needs dask (pip install \"wflow[dask]\"): {exc}") from None


def run_config(cfg: RunConfig, out, *, progress: bool = False, overwrite: bool = False) -> dict:
    """Run the simulation of a validated configuration and write its outputs to ``out``.

    Writes the requested figures (2-D problems only), ``result.npz`` (unless
    ``output.save_npz = false``), ``report.json`` and ``report.md``, all-or-nothing
    (:class:`wflow.io.StagedOutput`). The output directory is checked before the simulation.

    Returns
    -------
    dict : the report (settings, measured figures and checks with tolerances).

    Raises
    ------
    ConfigError
        An invalid setting (named), found before any work.
    wflow.io.OutputError
        ``out`` cannot receive the outputs (named), found before any work.
    """
    check_output_dir(out, overwrite=overwrite)
    if cfg.robustness:
        return _run_robustness(cfg, out, overwrite=overwrite)
    dpi = cfg.output.get("dpi", 90)
    if cfg.output.get("figures", list(FIGURES)):
        w, h = LARGEST_FIGURE_INCHES
        check_memory(BYTES_PER_PIXEL * (w * dpi) * (h * dpi), f"rendering the figures at output.dpi = {dpi}",
                     "lower output.dpi")
    V = build_potential(cfg)
    dim = getattr(V, "dim", None)
    fl = cfg.flow
    ini = cfg.initial
    n = len(ini["points"]) if ini["kind"] == "points" else ini.get("n", 200)
    d = ini["points"].shape[1] if ini["kind"] == "points" else (dim or 2)
    check_flow_memory(n, d, fl["T"], fl["tau"], fl.get("stride", 1))  # before drawing the n points
    mu0 = build_initial(cfg, dim)
    background = V  # what the figures draw behind the particles
    if isinstance(V, ModelPotential):
        background = ProbabilityField(V.model)
        V = V.bind(mu0.points)
    kwargs = {k: fl[k] for k in ("budget", "selection", "stride", "inner") if k in fl}
    try:
        if cfg.compute:
            res = _solve_on_dask(cfg.compute, V, mu0, fl, progress, kwargs)
        else:
            res = solve_flow(V, mu0, fl["T"], fl["tau"], norm=fl.get("norm", "linf"),
                             scheme=fl.get("scheme", "euler"), seed=fl.get("seed"), progress=progress, **kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, MemoryError):  # the memory estimate names its own knob
            raise
        raise ConfigError(f"flow: {exc}") from None
    checks = check_flow(res).checks  # derived tolerances; dissipation only without an active budget
    budget = fl.get("budget")
    outp = cfg.output
    figures = outp.get("figures", list(FIGURES)) if mu0.dim == 2 else []
    files = []
    report = {
        "wflow_version": __version__,
        "command": "run",
        "config": cfg.source,
        "settings": cfg.to_dict(),
        "summary": res.to_dict(),
        "checks": [c.to_dict() for c in checks],
        "all_passed": all(c.passed for c in checks),
    }
    with StagedOutput(out, overwrite=overwrite, info={"command": "run", "wflow_version": __version__}) as st:
        if "landscape" in figures:
            fig = plot_landscape(background, res, budget=budget if mu0.n == 1 else None,
                                 norm=fl.get("norm", "linf"), max_curves=100,
                                 colorbar_label="V" if background is V else "P(class 1 | x)")
            files.append(save_staged_figure(st, "landscape.png", fig, dpi))
        if "snapshots" in figures:
            files.append(save_staged_figure(st, "snapshots.png", plot_snapshots(res, potential=background), dpi))
        if "energy" in figures:
            files.append(save_staged_figure(st, "energy.png", plot_energy_slope(res), dpi))
        if "animation" in figures:
            anim = animate_measure(res, potential=background, max_frames=outp.get("frames", 40))
            save_animation(anim, st.path("animation.gif"), fps=8, dpi=60)
            files.append("animation.gif")
        if outp.get("save_npz", True):
            res.save(st.path("result.npz"))
            files.append("result.npz")
        files += ["report.json", "report.md"]
        report["files"] = files
        st.write_json("report.json", report)
        st.write_text("report.md", render_report_md(report))
    return report


def _run_robustness(cfg: RunConfig, out, *, overwrite: bool) -> dict:
    """``[robustness]``: :func:`wflow.adversarial.robustness_study`, its report and figure."""
    kw = dict(cfg.robustness)
    try:
        study = robustness_study(kw.pop("dataset"), **kw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"robustness: {exc}") from None
    report = {"wflow_version": __version__, "command": "run", "kind": "robustness", "config": cfg.source,
              "settings": cfg.to_dict(), "study": study.to_dict(),
              "checks": [], "all_passed": True,  # a measurement, not a verification: no checks
              "files": ["robustness.png", "report.json"]}
    with StagedOutput(out, overwrite=overwrite, info={"command": "run", "wflow_version": __version__}) as st:
        save_staged_figure(st, "robustness.png", study.figure(), cfg.output.get("dpi", 90))
        st.write_json("report.json", report)
    return report

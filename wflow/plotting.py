"""Figures and animations of flows, measures and convergence studies (matplotlib).

Every function builds and returns a :class:`matplotlib.figure.Figure` (or a
:class:`matplotlib.animation.FuncAnimation`) with the object-oriented API; nothing here
calls ``pyplot.show()`` or touches a GUI, so the functions run headless (Agg). Pass
``ax=`` to draw into an existing axes instead; the function then returns ``ax.figure``.

Inputs are plain arrays or wflow objects, duck-typed:

- a *trajectory source* is a :class:`~wflow.flow.FlowResult` (``.times``, ``.positions``,
  ``.weights``), an array of shape (K+1, d) (one curve) or (K+1, n, d) (n curves);
- a *measure* is a :class:`~wflow.measures.ParticleMeasure` (``.points``, ``.weights``) or an
  (n, d) array (uniform weights);
- a *curve measure* has ``.curves`` (m, K+1, d) and ``.weights`` (m,) (e.g.
  :class:`~wflow.superposition.CurveMeasure`).

:func:`save_figure` and :func:`save_animation` write files atomically (a temporary file in
the same directory, renamed into place), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Polygon, Rectangle

from .io import atomic_write
from .memory import check_memory
from .studies import fit_rate

__all__ = [
    "plot_landscape",
    "plot_snapshots",
    "animate_measure",
    "plot_energy_slope",
    "plot_convergence",
    "plot_attack_curves",
    "plot_curve_measure",
    "fit_rate",
    "save_figure",
    "save_animation",
    "figure_bytes",
    "check_figure_size",
    "ball_patch",
]


# --------------------------------------------------------------------------------------------
# input normalisation
# --------------------------------------------------------------------------------------------
def _trajectories(source, name: str = "trajectories") -> tuple[np.ndarray | None, np.ndarray]:
    """(times or None, positions of shape (K+1, n, d)) from a FlowResult or an array."""
    if hasattr(source, "positions") and hasattr(source, "times"):
        return np.asarray(source.times, dtype=float), np.asarray(source.positions, dtype=float)
    P = np.asarray(source, dtype=float)
    if P.ndim == 2:
        P = P[:, None, :]
    if P.ndim != 3 or P.shape[0] == 0 or P.shape[1] == 0:
        raise ValueError(f"{name} must have shape (K+1, d) or (K+1, n, d), got {np.shape(source)}")
    if not np.all(np.isfinite(P)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return None, P


def _measure(mu, name: str = "measure") -> tuple[np.ndarray, np.ndarray]:
    """(points (n, d), weights (n,)) from a ParticleMeasure or an (n, d) array."""
    if hasattr(mu, "points") and hasattr(mu, "weights"):
        return np.asarray(mu.points, dtype=float), np.asarray(mu.weights, dtype=float)
    X = np.asarray(mu, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must be a ParticleMeasure or an (n, d) array, got shape {np.shape(mu)}")
    return X, np.full(len(X), 1.0 / len(X))


def _new_axes(ax, figsize, ncols: int = 1, nrows: int = 1):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, (axes[0, 0] if nrows * ncols == 1 else axes)


def _check_2d(d: int, what: str) -> None:
    if d != 2:
        raise ValueError(f"{what} draws points in the plane: need d = 2, got d = {d}")


def _p_of(norm) -> float:
    from .norms import parse_norm

    return parse_norm(norm, name="norm")


def _bounds(points: np.ndarray, pad: float = 0.1) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.maximum(hi - lo, 1e-3)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


# --------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------
def ball_patch(center, radius: float, norm="linf", **kwargs):
    """A matplotlib patch for the ℓp ball B_radius(center) in the plane.

    ℓ∞: a square (:class:`~matplotlib.patches.Rectangle`); ℓ2: a :class:`~matplotlib.patches.Circle`;
    any other p: a :class:`~matplotlib.patches.Polygon` through 256 points of the unit sphere
    {|cos θ|^{2/p} sign(cos θ), |sin θ|^{2/p} sign(sin θ)} scaled by ``radius``.
    """
    p = _p_of(norm)
    c = np.asarray(center, dtype=float).reshape(-1)
    _check_2d(c.size, "ball_patch")
    kwargs.setdefault("fill", False)
    if p == np.inf:
        return Rectangle((c[0] - radius, c[1] - radius), 2 * radius, 2 * radius, **kwargs)
    if p == 2.0:
        return Circle((c[0], c[1]), radius, **kwargs)
    th = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    ct, st = np.cos(th), np.sin(th)
    pts = np.c_[np.sign(ct) * np.abs(ct) ** (2 / p), np.sign(st) * np.abs(st) ** (2 / p)]
    return Polygon(c + radius * pts, closed=True, **kwargs)


# --------------------------------------------------------------------------------------------
# landscape + trajectories
# --------------------------------------------------------------------------------------------
def plot_landscape(
    potential=None,
    trajectories=None,
    *,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    budget: float | None = None,
    center=None,
    norm="linf",
    tau: float | None = None,
    tau_boxes: bool | Sequence[bool] = False,
    labels: Sequence[str] | None = None,
    levels: int = 30,
    resolution: int = 160,
    max_curves: int = 200,
    cmap: str = "viridis",
    colorbar_label: str = "V",
    title: str | None = None,
    ax=None,
) -> Figure:
    """Energy landscape contours with trajectories, the ε-budget ball and per-step τ-balls.

    Parameters
    ----------
    potential : Potential, optional
        A 2-D potential; its values on a ``resolution × resolution`` grid are drawn as filled
        contours (``levels`` levels) with a colorbar.
    trajectories : trajectory source or list of them, optional
        FlowResult, (K+1, d) or (K+1, n, d) arrays. Every source gets its own colour and a
        legend entry from ``labels``; at most ``max_curves`` curves of each are drawn.
    xlim, ylim : (float, float), optional
        Plot window (default: the trajectories' bounding box padded by 10 %, or [−1.5, 1.5]²).
    budget : float, optional
        ε: draw the budget ball B_ε(center) in the flow's norm (dashed black).
    center : array (d,), optional
        Centre of the budget ball (default: the first point of the first trajectory).
    norm : norm specification
        The flow's norm (shape of the ε- and τ-balls: squares for ℓ∞).
    tau : float, optional
        Step size for the τ-balls (default: the FlowResult's ``tau``).
    tau_boxes : bool or sequence of bool
        Draw the ball B_τ(x_k) around every iterate x_k of each drawn curve, the feasible set
        of one minimizing-movement step, as in the paper's trajectory figures (one flag per
        trajectory source, or one for all).

    Returns
    -------
    Figure
    """
    sources = [] if trajectories is None else (
        list(trajectories) if isinstance(trajectories, (list, tuple)) else [trajectories]
    )
    parsed = [_trajectories(s) for s in sources]
    if tau is None:
        taus = [getattr(s, "tau", None) for s in sources]
    else:
        taus = [tau] * len(sources)
    for _, P in parsed:
        _check_2d(P.shape[2], "plot_landscape")
    if xlim is None or ylim is None:
        if parsed:
            allpts = np.concatenate([P.reshape(-1, 2) for _, P in parsed])
            if budget is not None:
                c0 = np.asarray(center if center is not None else parsed[0][1][0, 0], dtype=float)
                allpts = np.vstack([allpts, c0 - budget, c0 + budget])
            bx, by = _bounds(allpts)
        else:
            bx, by = (-1.5, 1.5), (-1.5, 1.5)
        xlim = xlim or bx
        ylim = ylim or by
    fig, ax = _new_axes(ax, (6.0, 5.0))
    if potential is not None:
        gx = np.linspace(*xlim, resolution)
        gy = np.linspace(*ylim, resolution)
        XX, YY = np.meshgrid(gx, gy)
        Z = np.asarray(potential.value(np.c_[XX.ravel(), YY.ravel()]), dtype=float).reshape(XX.shape)
        cs = ax.contourf(XX, YY, Z, levels=levels, cmap=cmap, alpha=0.85)
        ax.contour(XX, YY, Z, levels=levels, colors="k", linewidths=0.3, alpha=0.4)
        fig.colorbar(cs, ax=ax, label=colorbar_label)
    colors = colormaps["tab10"].colors
    box_flags = [bool(tau_boxes)] * len(parsed) if isinstance(tau_boxes, (bool, np.bool_)) else list(tau_boxes)
    if len(box_flags) != len(parsed):
        raise ValueError(f"tau_boxes must be a bool or one bool per trajectory source ({len(parsed)}), got {tau_boxes!r}")
    for j, ((_, P), tj) in enumerate(zip(parsed, taus)):
        col = colors[j % len(colors)]
        idx = np.linspace(0, P.shape[1] - 1, min(P.shape[1], max_curves)).round().astype(int)
        segs = np.transpose(P[:, idx, :], (1, 0, 2))  # (m, K+1, 2)
        lab = labels[j] if labels is not None and j < len(labels) else None
        ax.add_collection(LineCollection(segs, colors=[col], linewidths=1.2, label=lab))
        ax.plot(P[0, idx, 0], P[0, idx, 1], "o", color=col, ms=3, mfc="white")
        ax.plot(P[-1, idx, 0], P[-1, idx, 1], "o", color=col, ms=3)
        if box_flags[j] and tj is not None:
            boxes = [ball_patch(x, tj, norm) for curve in segs for x in curve[:-1]]
            ax.add_collection(PatchCollection(boxes, facecolor="none", edgecolor=col, linewidth=0.5, alpha=0.5))
    if budget is not None:
        c = center if center is not None else (parsed[0][1][0, 0] if parsed else np.zeros(2))
        ax.add_patch(ball_patch(c, budget, norm, edgecolor="k", linestyle="--", linewidth=1.5,
                                label=f"budget ε = {budget:g}"))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    if labels is not None or budget is not None:
        ax.legend(loc="best", fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------
# measures
# --------------------------------------------------------------------------------------------
def _snapshot_list(source, times, n_panels):
    if hasattr(source, "positions") and hasattr(source, "times"):
        T = np.asarray(source.times)
        ks = np.unique(np.linspace(0, len(T) - 1, min(n_panels, len(T))).round().astype(int))
        W = np.asarray(source.weights, dtype=float)
        return [(source.positions[k], W) for k in ks], [float(T[k]) for k in ks]
    if isinstance(source, np.ndarray) and source.ndim == 3:
        return [(X, np.full(X.shape[0], 1.0 / X.shape[0])) for X in source], times
    return [_measure(m, f"measures[{i}]") for i, m in enumerate(source)], times


def plot_snapshots(
    measures,
    times: Sequence[float] | None = None,
    *,
    potential=None,
    n_panels: int = 4,
    ncols: int | None = None,
    size: float = 20.0,
    xlim=None,
    ylim=None,
    cmap: str = "viridis",
) -> Figure:
    """Measure snapshots as weighted scatter plots (marker area ∝ n·w_i), one panel each.

    Parameters
    ----------
    measures : FlowResult, array (K+1, n, d), or list of measures
        A FlowResult gives ``n_panels`` evenly spaced stored times; a list gives one panel per
        measure (sizes and weights may differ between panels).
    times : list of float, optional
        Panel titles t = ….
    potential : Potential, optional
        2-D potential drawn as contour lines behind every panel.
    size : float
        Marker area of an atom of weight 1/n.

    Returns
    -------
    Figure
        One axes per snapshot, each holding a PathCollection (the weighted scatter).
    """
    snaps, times = _snapshot_list(measures, times, n_panels)
    if not snaps:
        raise ValueError("measures must hold at least one snapshot")
    for X, _ in snaps:
        _check_2d(X.shape[1], "plot_snapshots")
    m = len(snaps)
    ncols = ncols or min(m, 4)
    nrows = -(-m // ncols)
    fig = Figure(figsize=(3.2 * ncols, 3.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if xlim is None or ylim is None:
        bx, by = _bounds(np.concatenate([X for X, _ in snaps]))
        xlim, ylim = xlim or bx, ylim or by
    wmax = max(float(w.max()) for _, w in snaps)
    norm_c = Normalize(0.0, wmax if wmax > 0 else 1.0)
    for i, (X, w) in enumerate(snaps):
        ax = axes[i]
        if potential is not None:
            gx, gy = np.linspace(*xlim, 80), np.linspace(*ylim, 80)
            XX, YY = np.meshgrid(gx, gy)
            Z = np.asarray(potential.value(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
            ax.contour(XX, YY, Z, levels=15, colors="0.6", linewidths=0.5)
        sc = ax.scatter(X[:, 0], X[:, 1], s=size * len(w) * w, c=w, cmap=cmap, norm=norm_c,
                        edgecolors="none", alpha=0.8)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal", adjustable="box")
        if times is not None and i < len(times):
            ax.set_title(f"t = {times[i]:.3g}")
    for ax in axes[m:]:
        ax.set_visible(False)
    fig.colorbar(sc, ax=list(axes[:m]), label="weight", shrink=0.8)
    return fig


def animate_measure(
    source,
    *,
    weights=None,
    times: Sequence[float] | None = None,
    potential=None,
    xlim=None,
    ylim=None,
    max_frames: int = 60,
    interval: int = 100,
    size: float = 20.0,
    colors=None,
    title: str = r"$\mu_t$",
) -> FuncAnimation:
    """Animation of a measure evolving in time (weighted scatter, one frame per time).

    Parameters
    ----------
    source : FlowResult, array (K+1, n, d), or list of measures
        The snapshots. Frames are subsampled evenly to at most ``max_frames``.
    weights : array (n,), optional
        Weights for an array source (default: uniform, or the FlowResult's weights).
    times : list of float, optional
        Frame times (default: the FlowResult's, else the frame index).
    potential : Potential, optional
        2-D potential drawn as contours behind the particles.
    colors : array (n,), optional
        Per-particle colour values (e.g. labels); fixed over the animation.

    Returns
    -------
    FuncAnimation
        Save it with :func:`save_animation` (GIF through Pillow).
    """
    if hasattr(source, "positions") and hasattr(source, "times"):
        frames_all = [(X, np.asarray(source.weights, dtype=float)) for X in np.asarray(source.positions)]
        times = list(np.asarray(source.times)) if times is None else list(times)
    elif isinstance(source, np.ndarray) and source.ndim == 3:
        n = source.shape[1]
        w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {w.shape}")
        frames_all = [(X, w) for X in source]
    else:
        frames_all = [_measure(m, f"source[{i}]") for i, m in enumerate(source)]
    if not frames_all:
        raise ValueError("source must hold at least one snapshot")
    _check_2d(frames_all[0][0].shape[1], "animate_measure")
    sel = np.unique(np.linspace(0, len(frames_all) - 1, min(max_frames, len(frames_all))).round().astype(int))
    if xlim is None or ylim is None:
        bx, by = _bounds(np.concatenate([frames_all[k][0] for k in sel]))
        xlim, ylim = xlim or bx, ylim or by
    fig = Figure(figsize=(5.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    if potential is not None:
        gx, gy = np.linspace(*xlim, 100), np.linspace(*ylim, 100)
        XX, YY = np.meshgrid(gx, gy)
        Z = np.asarray(potential.value(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
        ax.contourf(XX, YY, Z, levels=25, cmap="Greys", alpha=0.5)
    X0, w0 = frames_all[sel[0]]
    style = {"c": colors, "cmap": "coolwarm"} if colors is not None else {"color": "C0"}
    sc = ax.scatter(X0[:, 0], X0[:, 1], s=size * len(w0) * w0, edgecolors="none", alpha=0.8, **style)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    label = ax.set_title("")

    def update(i):
        X, w = frames_all[sel[i]]
        sc.set_offsets(X)
        sc.set_sizes(size * len(w) * w)
        t = times[sel[i]] if times is not None else sel[i]
        label.set_text(f"{title},  t = {t:.3g}" if times is not None else f"{title},  frame {t}")
        return sc, label

    update(0)
    return FuncAnimation(fig, update, frames=len(sel), interval=interval, blit=False)


# --------------------------------------------------------------------------------------------
# energy, slope, convergence, curve measures
# --------------------------------------------------------------------------------------------
def plot_energy_slope(source, energy=None, slope=None, *, label: str | None = None) -> Figure:
    """Energy 𝓔(μ_t) and slope |∂𝓔|(μ_t) over time, with the dissipation bound.

    The top panel shows 𝓔(μ_t) and 𝓔(μ_0) − ∫_0^t |∂𝓔|(μ_r) dr (trapezoidal rule on the stored
    times, dashed): for a C¹ potential the two coincide up to O(τ) (energy dissipation
    equality). The bottom panel shows |∂𝓔|(μ_t).

    Parameters
    ----------
    source : FlowResult or array of shape (K+1,)
        A FlowResult (energy and slope taken from ``energy_curve()``/``slope_curve()``) or the
        times, in which case ``energy`` and ``slope`` (arrays of shape (K+1,)) are required.

    Returns
    -------
    Figure with two axes (three lines in the top one when the bound is drawn).
    """
    if hasattr(source, "energy_curve"):
        t = np.asarray(source.times, dtype=float)
        E = np.asarray(source.energy_curve(), dtype=float) if energy is None else np.asarray(energy, dtype=float)
        S = np.asarray(source.slope_curve(), dtype=float) if slope is None else np.asarray(slope, dtype=float)
    else:
        t = np.asarray(source, dtype=float).reshape(-1)
        if energy is None or slope is None:
            raise ValueError("energy and slope are required when source is an array of times")
        E, S = np.asarray(energy, dtype=float).reshape(-1), np.asarray(slope, dtype=float).reshape(-1)
    if not (t.shape == E.shape == S.shape):
        raise ValueError(f"times, energy and slope must have equal shapes, got {t.shape}, {E.shape}, {S.shape}")
    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(t, E, lw=2, label=label or r"$\mathcal{E}(\mu_t)$")
    if len(t) > 1:
        integral = np.r_[0.0, np.cumsum(0.5 * (S[1:] + S[:-1]) * np.diff(t))]
        ax1.plot(t, E[0] - integral, "--", lw=1.5, label=r"$\mathcal{E}(\mu_0) - \int_0^t |\partial\mathcal{E}|(\mu_r)\,dr$")
    ax1.set_ylabel("energy")
    ax1.legend(fontsize="small")
    ax2.plot(t, S, color="C2", lw=2, label=r"$|\partial\mathcal{E}|(\mu_t)$")
    ax2.set_ylabel("slope")
    ax2.set_xlabel("t")
    ax2.legend(fontsize="small")
    return fig


def plot_attack_curves(
    times,
    expected_loss,
    accuracy,
    *,
    worst_case: float | None = None,
    eps: float | None = None,
    winf_times=None,
    winf=None,
) -> Figure:
    """A distributional attack over time: expected loss, accuracy, and W∞(μ₀, μ_t) ≤ t.

    Parameters
    ----------
    times, expected_loss, accuracy : arrays of shape (K+1,)
        ∫ ℓ dμ_t and the accuracy on μ_t.
    worst_case : float, optional
        The inner problem's value Σ_i w_i sup_{B_ε(x_i)} ℓ (horizontal line).
    eps : float, optional
        The budget (vertical line).
    winf_times, winf : arrays (m,), optional
        Exact W∞(μ₀, μ_t), drawn against the bound t in a third panel.

    Returns
    -------
    Figure with two axes (three when ``winf`` is given).
    """
    t = np.asarray(times, dtype=float).reshape(-1)
    L = np.asarray(expected_loss, dtype=float).reshape(-1)
    A = np.asarray(accuracy, dtype=float).reshape(-1)
    if not (t.shape == L.shape == A.shape):
        raise ValueError(f"times, expected_loss and accuracy must have equal shapes, got {t.shape}, {L.shape}, {A.shape}")
    has_w = winf is not None and len(np.atleast_1d(winf)) > 0
    fig = Figure(figsize=(5.0 * (3 if has_w else 2), 3.8), layout="constrained")
    axes = fig.subplots(1, 3 if has_w else 2)
    axes[0].plot(t, L, lw=2, label="attacked expected loss")
    if worst_case is not None:
        axes[0].axhline(worst_case, color="k", ls="--", lw=1, label=f"worst case {worst_case:.4g}")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel(r"$\int \ell\, d\mu_t$")
    axes[0].legend(fontsize="small")
    axes[1].plot(t, A, color="C3", lw=2)
    axes[1].set_xlabel("t")
    axes[1].set_ylabel("accuracy")
    for ax in axes[:2]:
        if eps is not None:
            ax.axvline(eps, color="0.5", ls=":", lw=1)
    if has_w:
        wt = np.asarray(winf_times, dtype=float).reshape(-1)
        wv = np.asarray(winf, dtype=float).reshape(-1)
        axes[2].plot(wt, wt, color="0.5", lw=1, label="bound t")
        axes[2].plot(wt, wv, "o-", color="C2", label=r"$W_\infty(\mu_0, \mu_t)$")
        axes[2].set_xlabel("t")
        axes[2].legend(fontsize="small")
    return fig


def plot_convergence(
    taus,
    errors,
    *,
    fit: bool = True,
    reference_rate: float | None = 1.0,
    xlabel: str = "τ",
    ylabel: str = "sup-in-time error",
    title: str | None = None,
    ax=None,
) -> Figure:
    """Log–log plot of errors against τ with fitted rates in the legend.

    Parameters
    ----------
    taus : array (m,)
    errors : array (m,) or mapping label → array (m,)
        One or several error series (e.g. one per scheme or activation).
    fit : bool
        Draw the least-squares line of :func:`fit_rate` for each series; its rate goes into
        the legend ("rate 0.98").
    reference_rate : float, optional
        Also draw a grey guide line C τ^rate through the first series' largest-τ point.

    Returns
    -------
    Figure
    """
    t = np.asarray(taus, dtype=float).reshape(-1)
    series = dict(errors) if isinstance(errors, Mapping) else {"error": errors}
    fig, ax = _new_axes(ax, (5.5, 4.2))
    for j, (name, e) in enumerate(series.items()):
        e = np.asarray(e, dtype=float).reshape(-1)
        if e.shape != t.shape:
            raise ValueError(f"errors[{name!r}] must have shape {t.shape}, got {e.shape}")
        col = f"C{j % 10}"
        rate, C = fit_rate(t, e) if fit else (float("nan"), float("nan"))
        lab = f"{name} (rate {rate:.2f})" if np.isfinite(rate) else str(name)
        pos = e > 0
        ax.loglog(t[pos], e[pos], "o-", color=col, label=lab)
        if fit and np.isfinite(rate):
            tt = np.geomspace(t[pos].min(), t[pos].max(), 50)
            ax.loglog(tt, C * tt**rate, ":", color=col, lw=1)
    if reference_rate is not None and series:
        e0 = np.asarray(next(iter(series.values())), dtype=float).reshape(-1)
        i0 = int(np.argmax(t))
        if e0[i0] > 0:
            tt = np.geomspace(t.min(), t.max(), 50)
            ax.loglog(tt, e0[i0] * (tt / t[i0]) ** reference_rate, color="0.6", lw=1,
                      label=f"τ^{reference_rate:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def plot_curve_measure(
    eta,
    *,
    potential=None,
    cmap: str = "viridis",
    max_curves: int = 2000,
    xlim=None,
    ylim=None,
    title: str | None = None,
    ax=None,
) -> Figure:
    """The representing measure η = Σ_j w_j δ_{u_j}: its curves coloured by weight.

    Parameters
    ----------
    eta : CurveMeasure or tuple (curves, weights)
        ``curves`` of shape (m, K+1, 2), ``weights`` of shape (m,).
    potential : Potential, optional
        2-D potential drawn as contour lines behind the curves.
    max_curves : int
        Draw the ``max_curves`` heaviest curves only.

    Returns
    -------
    Figure with one LineCollection (array = weights) and a colorbar.
    """
    if isinstance(eta, tuple):
        curves, w = (np.asarray(a, dtype=float) for a in eta)
    else:
        curves, w = np.asarray(eta.curves, dtype=float), np.asarray(eta.weights, dtype=float)
    if curves.ndim != 3 or w.shape != (curves.shape[0],):
        raise ValueError(f"eta must have curves (m, K+1, d) and weights (m,), got {curves.shape} and {w.shape}")
    _check_2d(curves.shape[2], "plot_curve_measure")
    if len(w) > max_curves:
        keep = np.argsort(w)[-max_curves:]
        curves, w = curves[keep], w[keep]
    order = np.argsort(w)  # heavy curves on top
    curves, w = curves[order], w[order]
    if xlim is None or ylim is None:
        bx, by = _bounds(curves.reshape(-1, 2))
        xlim, ylim = xlim or bx, ylim or by
    fig, ax = _new_axes(ax, (6.0, 5.0))
    if potential is not None:
        gx, gy = np.linspace(*xlim, 100), np.linspace(*ylim, 100)
        XX, YY = np.meshgrid(gx, gy)
        Z = np.asarray(potential.value(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
        ax.contour(XX, YY, Z, levels=20, colors="0.7", linewidths=0.5)
    lc = LineCollection(curves, array=w, cmap=cmap, linewidths=0.4 + 1.6 * w / max(w.max(), 1e-300), alpha=0.85)
    ax.add_collection(lc)
    ax.scatter(curves[:, -1, 0], curves[:, -1, 1], c=w, cmap=cmap, s=8, norm=lc.norm)
    fig.colorbar(lc, ax=ax, label="curve weight $w_j$", shrink=0.8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title or f"representing measure η: {len(w)} curves")
    return fig


# --------------------------------------------------------------------------------------------
# atomic output
# --------------------------------------------------------------------------------------------
def save_figure(fig: Figure, path, *, dpi: int = 100, **kwargs) -> str:
    """Write ``fig`` to ``path`` atomically (format from the extension); returns the path.

    The pixel buffer is estimated first (:func:`figure_bytes`) and checked against the memory
    limit (:func:`wflow.memory.check_memory`).
    """
    check_figure_size(fig, dpi)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, **kwargs), parents=True)


def save_animation(anim: FuncAnimation, path, *, fps: int = 10, dpi: int = 72) -> str:
    """Write an animation as a GIF with matplotlib's Pillow writer, atomically."""
    check_figure_size(anim._fig, dpi)
    return atomic_write(path, lambda tmp: anim.save(tmp, writer=PillowWriter(fps=fps), dpi=dpi), parents=True)


#: bytes per pixel while saving: the RGBA canvas, its copy for the encoder, and the encoder
BYTES_PER_PIXEL = 12


def figure_bytes(fig: Figure, dpi) -> float:
    """Estimated memory to render ``fig`` at ``dpi`` (pixels × :data:`BYTES_PER_PIXEL`)."""
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)):
        raise TypeError(f"dpi must be a number, got {type(dpi).__name__} {dpi!r}")
    if not np.isfinite(dpi) or dpi <= 0:
        raise ValueError(f"dpi must be a positive finite number, got {dpi!r}")
    w, h = fig.get_size_inches()
    return float(w * dpi) * float(h * dpi) * BYTES_PER_PIXEL


def check_figure_size(fig: Figure, dpi) -> None:
    """Raise :class:`wflow.memory.MemoryLimitError` before rendering a figure that is too large."""
    w, h = fig.get_size_inches()
    check_memory(figure_bytes(fig, dpi), f"rendering a {w:g}x{h:g} inch figure at dpi={dpi:g}",
                 "use a smaller dpi")

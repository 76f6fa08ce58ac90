"""Plotting: every function runs headless (Agg) and draws the artists it promises."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.animation import FuncAnimation
from matplotlib.collections import LineCollection, PatchCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Polygon, Rectangle

import wflow
from wflow import plotting as P
from wflow.measures import ParticleMeasure
from wflow.potentials import GaussianMixture, Quadratic


@pytest.fixture(scope="module")
def flow():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (12, 2))
    return wflow.solve_flow(GaussianMixture.default(), X, T=0.3, tau=0.05)


def test_fit_rate_recovers_power_law():
    taus = 0.2 * 2.0 ** -np.arange(6)
    rate, C = P.fit_rate(taus, 3.0 * taus**1.5)
    assert rate == pytest.approx(1.5, abs=1e-12)
    assert C == pytest.approx(3.0, rel=1e-12)
    # zero errors are left out; fewer than two points give NaN
    rate2, _ = P.fit_rate(taus, np.r_[0.0, 2.0 * taus[1:]])
    assert rate2 == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(P.fit_rate([0.1, 0.05], [0.0, 1.0])[0])
    with pytest.raises(ValueError, match="same length"):
        P.fit_rate([0.1, 0.05], [1.0])


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(0.1, 3.0), C=st.floats(1e-3, 1e3), tau0=st.floats(1e-3, 1.0), m=st.integers(2, 8))
def test_fit_rate_is_exact_on_power_laws(rate, C, tau0, m):
    taus = tau0 * 2.0 ** -np.arange(m)
    r, c = P.fit_rate(taus, C * taus**rate)
    assert r == pytest.approx(rate, abs=1e-9)
    assert c == pytest.approx(C, rel=1e-8)


@pytest.mark.parametrize("norm, kind", [("linf", Rectangle), ("l2", Circle), ("l1", Polygon), (3, Polygon)])
def test_ball_patch_is_the_unit_sphere_of_the_norm(norm, kind):
    c, r = np.array([0.5, -1.0]), 0.3
    patch = P.ball_patch(c, r, norm)
    assert isinstance(patch, kind)
    if kind is Rectangle:
        assert patch.get_xy() == pytest.approx((0.2, -1.3))
        assert patch.get_width() == pytest.approx(0.6) and patch.get_height() == pytest.approx(0.6)
    elif kind is Polygon:
        V = patch.get_xy() - c
        p = wflow.norms.parse_norm(norm)
        assert np.allclose(wflow.norms.norm(V, p), r, atol=1e-12)


def test_landscape_with_trajectories_budget_and_tau_boxes(flow):
    fig = P.plot_landscape(flow.potential, flow, budget=0.2, tau_boxes=True, labels=["euler"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lcs = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lcs) == 1 and len(lcs[0].get_segments()) == flow.n_particles
    # one τ-box per step and curve, each a square of half-width τ
    boxes = [c for c in ax.collections if isinstance(c, PatchCollection)]
    assert len(boxes) == 1 and len(boxes[0].get_paths()) == flow.n_particles * (len(flow.times) - 1)
    budget = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(budget) == 1 and budget[0].get_width() == pytest.approx(0.4)
    assert len(fig.axes) == 2  # the axes and the colorbar of the contours
    assert ax.get_legend() is not None


def test_landscape_accepts_plain_arrays_and_several_sources():
    line = np.c_[np.linspace(0, 1, 5), np.linspace(0, 0.5, 5)]
    fig = P.plot_landscape(None, [line, line[:, None, :] + 1.0], labels=["a", "b"])
    ax = fig.axes[0]
    assert sum(isinstance(c, LineCollection) for c in ax.collections) == 2
    lo, hi = ax.get_xlim()
    assert lo < 0 and hi > 2  # window covers both curves
    with pytest.raises(ValueError, match="d = 2"):
        P.plot_landscape(None, np.zeros((4, 3)))


def test_snapshots_weighted_scatter(flow):
    fig = P.plot_snapshots(flow, potential=flow.potential, n_panels=3)
    axes = [a for a in fig.axes if a.get_visible() and a.get_title().startswith("t =")]
    assert len(axes) == 3
    scat = [c for c in axes[0].collections if isinstance(c, PathCollection)]
    assert len(scat) == 1 and len(scat[0].get_offsets()) == flow.n_particles
    # marker area ∝ weight: a measure with unequal weights
    mu = ParticleMeasure([[0, 0], [1, 1]], [0.75, 0.25])
    fig2 = P.plot_snapshots([mu], times=[0.0], size=10.0)
    sizes = [c for c in fig2.axes[0].collections if isinstance(c, PathCollection)][0].get_sizes()
    assert np.allclose(sizes, [15.0, 5.0])


def test_energy_slope_panels_and_dissipation_bound(flow):
    fig = P.plot_energy_slope(flow)
    ax1, ax2 = fig.axes
    assert len(ax1.get_lines()) == 2 and len(ax2.get_lines()) == 1
    E, bound = ax1.get_lines()[0].get_ydata(), ax1.get_lines()[1].get_ydata()
    assert np.allclose(E, flow.energy_curve())
    assert bound[0] == E[0]  # the bound starts at 𝓔(μ_0)
    # from arrays: a linear energy with constant slope is its own bound
    t = np.linspace(0, 1, 11)
    fig2 = P.plot_energy_slope(t, energy=1 - 2 * t, slope=np.full(11, 2.0))
    l1, l2 = fig2.axes[0].get_lines()
    assert np.allclose(l1.get_ydata(), l2.get_ydata(), atol=1e-14)
    with pytest.raises(ValueError, match="required"):
        P.plot_energy_slope(t)


def test_convergence_plot_reports_fitted_rate():
    taus = 0.1 * 2.0 ** -np.arange(5)
    fig = P.plot_convergence(taus, {"euler": 0.5 * taus, "minmove": 2.0 * taus**2})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "euler (rate 1.00)" in labels and "minmove (rate 2.00)" in labels
    assert len(ax.get_lines()) == 5  # two series, two fits, one reference line


def test_attack_curves():
    t = np.linspace(0, 0.2, 11)
    fig = P.plot_attack_curves(t, t**2, 1 - t, worst_case=0.05, eps=0.2, winf_times=t[::5], winf=t[::5])
    assert len(fig.axes) == 3
    assert np.allclose(fig.axes[0].get_lines()[0].get_ydata(), t**2)
    assert len(P.plot_attack_curves(t, t, t).axes) == 2


def test_curve_measure_coloured_by_weight():
    rng = np.random.default_rng(1)
    curves = np.cumsum(rng.normal(size=(6, 5, 2)), axis=1)
    w = rng.dirichlet(np.ones(6))
    fig = P.plot_curve_measure((curves, w), potential=Quadratic(np.eye(2)))
    ax = fig.axes[0]
    lc = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_array() is not None
          and len(c.get_segments()) == 6]
    assert len(lc) == 1
    assert np.allclose(np.sort(lc[0].get_array()), np.sort(w))
    assert len(fig.axes) == 2  # colorbar
    fig2 = P.plot_curve_measure((curves, w), max_curves=3)
    kept = [c for c in fig2.axes[0].collections if isinstance(c, LineCollection)][0].get_array()
    assert np.allclose(np.sort(kept), np.sort(w)[-3:])  # the heaviest three


def test_animation_frames_and_atomic_gif(flow, tmp_path):
    anim = P.animate_measure(flow, potential=flow.potential, max_frames=4)
    assert isinstance(anim, FuncAnimation)
    path = tmp_path / "sub" / "a.gif"
    P.save_animation(anim, path, fps=5, dpi=30)
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4
    assert sorted(os.listdir(path.parent)) == ["a.gif"]  # no temporary files left


def test_save_figure_is_atomic(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    out = tmp_path / "f.png"
    P.save_figure(fig, out, dpi=20)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        P.save_figure(fig, tmp_path / "g.notaformat")
    assert sorted(os.listdir(tmp_path)) == ["f.png"]  # the failed save left nothing behind

"""The ``wflow`` command: demo, verify, help/version; reports hold measured figures."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import wflow
from wflow import suite
from wflow.app.cli import main
from wflow.app.demo import DEMO_FILES


def _passes(c) -> bool:
    m, t = c["measured"], c["tolerance"]
    return m is not None and t is not None and (m <= t if c["relation"] == "<=" else m >= t)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "wflow-out"
    code = main(["demo", "--quick", "--out", str(out)])
    return code, out


def test_demo_quick_writes_every_promised_file(demo_out):
    code, out = demo_out
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    files = DEMO_FILES
    assert sorted(p.name for p in out.iterdir()) == sorted((*files, wflow.io.MARKER))
    assert report["files"] == list(files)
    for name in files:
        data = (out / name).read_bytes()
        if name.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        if name.endswith(".gif"):
            from PIL import Image

            with Image.open(out / name) as im:
                assert im.n_frames >= 10
    assert "PASS" in (out / "report.md").read_text()


def test_demo_report_holds_measured_figures_within_tolerance(demo_out):
    _, out = demo_out
    report = json.loads((out / "report.json").read_text())
    assert report["all_passed"] is True
    names = {c["name"] for c in report["checks"]}
    assert {"lipschitz", "energy_dissipation", "winf_lipschitz"} <= names
    for c in report["checks"]:
        assert isinstance(c["measured"], float) and isinstance(c["tolerance"], float), c["name"]
        assert _passes(c) and c["passed"], c
    lip = next(c for c in report["checks"] if c["name"] == "lipschitz")
    # Euler steps have length exactly τ in ℓ∞ (sign steps), so the max speed is 1 to round-off
    assert abs(lip["measured"] - 1.0) < 1e-9
    m = report["measured"]
    if "attacked_loss" in m:  # the two-moons attack demo
        assert m["attacked_loss"] > m["clean_loss"]
        assert m["attacked_accuracy"] < m["clean_accuracy"]
        assert m["attacked_loss"] <= m["worst_case_loss"] * (1 + 1e-3)
        assert m["max_displacement"] <= report["problem"]["eps"] + 1e-12
        if report["problem"]["exact_winf"]:
            # exact W∞ is at most the labelled coupling's cost, and the η marginals are exact
            assert m["winf_mu0_mu_eps"] <= m["max_displacement"] + 1e-12
            marg = next(c for c in report["checks"] if c["name"] == "marginals")
            assert marg["measured"] <= 1e-11 and marg["details"]["mass_error"] <= 1e-12


@pytest.mark.filterwarnings("ignore:Animation was deleted")
def test_demo_writes_nothing_when_it_fails(tmp_path, monkeypatch, capsys):
    import wflow.app.demo

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(wflow.app.demo, "save_animation", boom)
    out = tmp_path / "o"
    assert main(["demo", "--quick", "--out", str(out)]) == 3  # an internal error, not a failed check
    assert "disk full" in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the staging directory is gone too
    import gc

    gc.collect()  # the unsaved animation warns when collected: inside this test's warning filter


def test_verify_passes_on_the_suite_and_writes_its_table(tmp_path, capsys):
    assert main(["verify", "--quick", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar when the output is not a terminal
    printed = captured.out
    assert "FAIL" not in printed and "| lipschitz[quadratic] |" in printed
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["all_passed"] and all(_passes(c) for c in report["checks"])
    conv = next(c for c in report["checks"] if c["name"] == "convergence[quadratic]")
    # Euler on the separable quadratic: sup error ≤ τ (closed form), fitted rate ≈ 1
    assert conv["measured"] >= 0.9
    assert all(e <= t + 1e-12 for e, t in zip(conv["details"]["errors"], conv["details"]["taus"]))


def test_verify_fails_on_a_wrong_flow(capsys):
    assert main(["verify", "--quick", "--wrong-flow"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed


def test_speed_two_curve_fails_the_lipschitz_checks():
    V = wflow.potentials.Linear([1.0, -2.0])
    res = wflow.solve_flow(V, np.zeros((3, 2)), T=1.0, tau=0.01)  # default rtol 10τ/T = 0.1
    good = [suite.check_lipschitz(res), suite.check_winf_lipschitz(res), suite.check_energy_dissipation(res)]
    assert all(c.passed for c in good)
    # closed form u(t) = x0 − t sign(a): speed exactly 1; the energy identity is exact for linear V
    assert good[0].measured == pytest.approx(1.0, abs=1e-12)
    assert good[2].measured == pytest.approx(0.0, abs=1e-12)
    fast = suite.corrupt_speed(res, 2.0)
    bad = [suite.check_lipschitz(fast), suite.check_winf_lipschitz(fast), suite.check_energy_dissipation(fast),
           suite.check_maximal_slope_mass(fast)]
    assert not any(c.passed for c in bad)
    assert bad[0].measured == pytest.approx(2.0, abs=1e-12)
    assert bad[1].measured == pytest.approx(2.0, abs=1e-9)
    # 𝓔 drops by 3T while ∫|∂𝓔| = 3·T/2: relative defect exactly 1
    assert bad[2].measured == pytest.approx(1.0, abs=1e-12)
    assert bad[3].measured == 0.0


def test_check_relations_and_nan():
    assert suite.make_check("a", "", 1.0, 1.0).passed
    assert not suite.make_check("a", "", 1.1, 1.0).passed
    assert suite.make_check("a", "", 1.1, 1.0, ">=").passed
    assert not suite.make_check("a", "", float("nan"), 1.0).passed
    assert suite.make_check("a", "", float("nan"), 1.0).to_dict()["measured"] is None
    with pytest.raises(ValueError, match="relation"):
        suite.make_check("a", "", 1.0, 1.0, "<")


def test_help_version_and_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "wflow", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for cmd in ("demo", "run", "verify"):
        assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-m", "wflow", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"wflow {wflow.__version__}"
    assert main([]) == 2  # no command: help and a usage exit code
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--bogus"])
    assert exc.value.code == 2


def test_uphill_flow_fails_dissipation_and_maximal_slope():
    """A 1-Lipschitz curve that climbs the potential is not a curve of maximal slope."""
    V = wflow.potentials.GaussianMixture.default()
    x0 = np.random.default_rng(3).uniform(-1, 1, (20, 2))
    down = wflow.solve_flow(V, x0, T=0.5, tau=0.01)
    up = wflow.solve_flow(-1.0 * V, x0, T=0.5, tau=0.01)
    up_seen_by_V = suite.corrupt_speed(up, 1.0)  # same curves, same times
    up_seen_by_V.potential = V
    good = suite.check_maximal_slope_mass(down)
    assert good.passed and good.measured == pytest.approx(1.0)
    assert good.details["max_defect_over_tolerance"] < 0.5
    bad = suite.check_maximal_slope_mass(up_seen_by_V)
    assert suite.check_lipschitz(up_seen_by_V).passed  # speed 1: only the energy can tell
    assert bad.measured < 0.05 and not bad.passed
    assert not suite.check_energy_dissipation(up_seen_by_V).passed

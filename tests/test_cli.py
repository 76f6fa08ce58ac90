"""The ``wflow`` command: demo, verify, help/version; reports hold measured figures."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest

import wflow
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
    assert {"curve_lipschitz", "energy_dissipation", "maximal_slope_mass"} <= names
    assert "marginals" not in names  # η against the snapshots it was glued from cannot fail
    for c in report["checks"]:
        assert isinstance(c["measured"], float), c["name"]
        if c["passed"] is None:  # a measurement (the attack's gap), not a theorem check
            assert c["tolerance"] is None and c["name"] == "attack_gap"
            continue
        assert isinstance(c["tolerance"], float) and c["formula"], c["name"]
        assert _passes(c) and c["passed"], c
    lip = next(c for c in report["checks"] if c["name"] == "curve_lipschitz")
    # Euler steps have length exactly τ in ℓ∞ (sign steps), so the max speed is 1 to round-off
    assert abs(lip["measured"] - 1.0) < 1e-9
    m = report["measured"]
    if "attacked_loss" in m:  # the two-moons attack demo
        assert m["attacked_loss"] > m["clean_loss"]
        assert m["attacked_accuracy"] < m["clean_accuracy"]
        assert m["attacked_loss"] <= m["worst_case_loss"] * (1 + 1e-3)
        assert m["max_displacement"] <= report["problem"]["eps"] + 1e-12
        if report["problem"]["exact_winf"]:
            # exact W∞ is at most the labelled coupling's cost; η from every other snapshot
            # approaches the held-out ones as the spacing halves
            assert m["winf_mu0_mu_eps"] <= m["max_displacement"] + 1e-12
            held = next(c for c in report["checks"] if c["name"] == "held_out")
            assert held["measured"] >= 0.8 and held["details"]["errors"][-1] < held["details"]["errors"][0]


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


@pytest.mark.slow
def test_verify_runs_the_catalogue_catches_every_mutant_and_writes_its_table(tmp_path, capsys):
    assert main(["verify", "--quick", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar when the output is not a terminal
    printed = captured.out
    assert "FAIL" not in printed and "| mutant:ascent |" in printed
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["all_passed"] and report["score"] == "16/16"
    names = [c["name"] for c in report["checks"]]
    assert sum(n.startswith("mutant:") for n in names) == 16
    assert "correct:convergence[euler,quadratic,linf,closed form]" in names


def test_verify_exit_code_follows_the_catalogue(monkeypatch, capsys):
    import wflow.app.cli
    from wflow.verify import CheckReport

    def fake(quick=False, progress=False):
        rows = [CheckReport("mutant:x", False, 0.0, 1.0, ">=")]
        return CheckReport("catalogue", False, 0.0, 1.0, ">=", checks=rows,
                           details={"score": "0/1", "correct_passed": 0, "n_correct": 0})

    monkeypatch.setattr(wflow.app.cli, "run_catalogue", fake)
    assert main(["verify", "--quick"]) == 1
    assert "mutants caught: 0/1" in capsys.readouterr().out


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

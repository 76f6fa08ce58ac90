"""TOML run configurations: validation names the key; valid configs run and write their files."""

from __future__ import annotations

import json
import textwrap

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import wflow
from wflow.app.cli import main
from wflow.app.config import ConfigError, load_config, parse_config
from wflow.potentials import Quadratic

VALID = """
[potential]
kind = "quadratic"
A = [[1.0, 0.0], [0.0, 3.0]]

[initial]
kind = "points"
points = [[1.0, -0.5], [0.3, 0.8], [-0.6, -0.2]]
weights = [0.5, 0.25, 0.25]

[flow]
T = 0.6
tau = 0.05

[output]
figures = ["energy"]
"""


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize(
    "edit, key",
    [
        (("tau = 0.05", "tau = -0.1"), "flow.tau"),
        (("tau = 0.05", "tau = 0.0"), "flow.tau"),
        (("tau = 0.05", 'tau = "fast"'), "flow.tau"),
        (("T = 0.6", "T = 0.6\nsteps = 10"), "flow.steps"),
        (("T = 0.6", "T = -1.0"), "flow.T"),
        (("T = 0.6\n", ""), "flow.T"),
        (('kind = "quadratic"', 'kind = "quartic"'), "potential.kind"),
        (("[output]", "[outputs]"), "outputs"),
        (('figures = ["energy"]', 'figures = ["energy", "movie"]'), "output.figures"),
        (('figures = ["energy"]', "figures = 3"), "output.figures"),
        (("weights = [0.5, 0.25, 0.25]", "weights = [0.5, 0.5]"), "initial.weights"),
        (("T = 0.6", 'T = 0.6\nnorm = "l7"'), "flow.norm"),
        (("T = 0.6", "T = 0.6\nnorm = 0.5"), "flow.norm"),
        (("T = 0.6", "T = 0.6\nbudget = true"), "flow.budget"),
        (('kind = "points"', 'kind = "points"\nn = 5'), "initial.n"),
    ],
)
def test_bad_config_names_the_key_and_writes_nothing(tmp_path, capsys, edit, key):
    old, new = edit
    assert old in VALID
    path = _write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert key in err
    assert not out.exists()


def test_toml_syntax_error_and_missing_file(tmp_path, capsys):
    bad = _write(tmp_path, "[flow\nT = 1")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_parse_config_types_and_defaults():
    cfg = parse_config({"flow": {"T": 1, "tau": 0.1}})
    assert cfg.potential["kind"] == "gaussian_mixture" and cfg.initial["kind"] == "uniform"
    with pytest.raises(ConfigError, match="flow.stride must be an integer"):
        parse_config({"flow": {"T": 1, "tau": 0.1, "stride": 1.5}})
    with pytest.raises(ConfigError, match="potential.A"):
        parse_config({"potential": {"kind": "linear", "A": [[1.0]]}, "flow": {"T": 1, "tau": 0.1}})
    with pytest.raises(ConfigError, match="flow.inner"):
        parse_config({"flow": {"T": 1, "tau": 0.1, "inner": "grid"}})


def test_valid_config_runs_the_closed_form(tmp_path):
    path = _write(tmp_path, VALID)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".wflow-run", "energy.png", "report.json", "report.md", "result.npz"]
    report = json.loads((out / "report.json").read_text())
    assert report["all_passed"] and {c["name"] for c in report["checks"]} >= {"curve_lipschitz", "energy_dissipation"}
    with np.load(out / "result.npz") as f:
        pos, w = f["positions"], f["weights"]
    # closed form of the separable quadratic in ℓ∞: u_i(t) = sign(x_i) max(|x_i| − t, 0) (Euler exact
    # up to one step of chattering, amplitude ≤ τ)
    x0 = np.array([[1.0, -0.5], [0.3, 0.8], [-0.6, -0.2]])
    exact = np.sign(x0) * np.maximum(np.abs(x0) - 0.6, 0.0)
    assert np.max(np.abs(pos[-1] - exact)) <= 0.05 + 1e-12
    assert np.allclose(w, [0.5, 0.25, 0.25])
    ref = wflow.solve_flow(Quadratic(np.diag([1.0, 3.0])), x0, 0.6, 0.05)
    assert np.array_equal(pos, ref.positions)


def test_shipped_example_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "experiments" / "configs").glob("*.toml"))
    assert configs, "no example configs"
    for c in configs:
        cfg = load_config(c)
        assert cfg.robustness or cfg.flow["tau"] > 0


def test_model_config_attacks_with_predicted_labels(tmp_path):
    pytest.importorskip("wflow.adversarial.distributional")
    path = _write(tmp_path, """
        [potential]
        kind = "model"
        name = "two_moons_gelu"

        [initial]
        kind = "dataset"
        n = 30

        [flow]
        T = 0.05
        tau = 0.01
        budget = 0.05

        [output]
        figures = ["landscape"]
        save_npz = false
        """)
    out = tmp_path / "o"
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".wflow-run", "landscape.png", "report.json", "report.md"]
    report = json.loads((out / "report.json").read_text())
    assert report["all_passed"]
    # the attack raises the loss: V = −loss decreases from t = 0 to T
    assert report["summary"]["energy_end"] < report["summary"]["energy_start"]
    bad = _write(tmp_path, "[potential]\nkind = \"model\"\nname = \"no_such_model\"\n[flow]\nT = 1\ntau = 0.1\n", "b.toml")
    assert main(["run", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()

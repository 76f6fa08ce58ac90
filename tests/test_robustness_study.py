"""The robustness study end to end (tiny settings)."""

import json

import numpy as np
import pytest

from wflow.adversarial import robustness_study


@pytest.fixture(scope="module")
def study():
    return robustness_study("two_moons", eps=[0.0, 0.1, 0.3], inners=("none", "flow"), epochs=3, steps=3,
                            eval_steps=5, restarts=1, n_eval=60, worst_case_grid=9)


def test_study_fields_and_invariants(study):
    assert study.inners == ("none", "flow") and study.eps.tolist() == [0.0, 0.1, 0.3]
    for k in study.inners:
        # ε = 0: the robust error is the clean error
        assert study.robust_error[k][0] == pytest.approx(1 - study.clean_accuracy[k])
        assert np.all(np.diff(study.worst_case_error[k]) >= 0)
    # two classes: the bound is the exact optimal risk of the evaluated test points
    assert study.lower_bound_kind.startswith("optimal risk") and study.lower_bound[0] == 0.0
    assert set(study.attack_error) == {"fgsm", "ifgsm", "flow", "worst case"}
    d = study.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["dataset"]["name"] == "two_moons" and len(d["robust_error"]["flow"]) == 3
    fig = study.figure()
    assert len(fig.axes) == 2


def test_study_bad_input():
    with pytest.raises(ValueError, match="dataset"):
        robustness_study("mnist")
    with pytest.raises(ValueError, match="inners"):
        robustness_study("two_moons", inners=("pgd",))


def test_wflow_run_robustness_config(tmp_path):
    from wflow.app.cli import main
    from wflow.app.config import ConfigError, parse_config

    cfg = tmp_path / "rob.toml"
    cfg.write_text('[robustness]\ndataset = "two_moons"\neps = [0.0, 0.2]\ninners = ["none"]\nepochs = 1\n'
                   'steps = 2\neval_steps = 3\nrestarts = 1\nn_eval = 30\n\n[output]\ndpi = 40\n')
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["kind"] == "robustness" and rep["study"]["eps"] == [0.0, 0.2]
    assert (out / "robustness.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="robustness.inners"):
        parse_config({"robustness": {"inners": ["pgd"]}})
    with pytest.raises(ConfigError, match="robustness.budget"):
        parse_config({"robustness": {"budget": 0.1}})
    with pytest.raises(ConfigError, match=r"\[flow\]"):
        parse_config({"robustness": {}, "flow": {"T": 1.0, "tau": 0.1}})

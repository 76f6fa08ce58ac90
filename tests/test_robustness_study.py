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

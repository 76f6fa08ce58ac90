"""Attack API conventions: AttackResult, per-sample budgets, sweeps, early stop, restarts, memory."""

import tracemalloc

import numpy as np
import pytest

from wflow.adversarial import AttackResult, fgsm, ifgsm, load_model, load_two_moons, make_loss, minmove_attack


@pytest.fixture(scope="module")
def setup():
    d = load_two_moons()
    return load_model("two_moons_gelu"), d["X_test"][:60], d["y_test"][:60]


def test_result_fields_and_to_dict(setup):
    m, X, y = setup
    r = ifgsm(m, X, y, 0.1, 0.02, 8)
    assert isinstance(r, AttackResult) and r.trajectory is None
    assert r.x_adv.shape == X.shape and r.success.shape == (60,) and r.loss.shape == (60,)
    np.testing.assert_array_equal(r.success, m.predict(r.x_adv) != y)
    np.testing.assert_array_equal(r.loss, make_loss(m, y).value(r.x_adv))
    np.testing.assert_array_equal(r.eps, np.full(60, 0.1))
    assert r.success_rate == r.success.mean()
    dct = r.to_dict()
    assert dct["success_rate"] == r.success_rate and dct["norm"] == "linf" and dct["n_samples"] == 60


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_per_sample_budgets_equal_single_runs(setup, norm):
    m, X, y = setup
    eps = np.linspace(0.0, 0.3, len(X))
    r = ifgsm(m, X, y, eps, 0.02, 10, norm=norm)
    for i in (0, 7, 31, 59):
        ri = ifgsm(m, X[i], y[i], float(eps[i]), 0.02, 10, norm=norm)
        # same arithmetic; a 1-row batch may round the network's products differently (ℓ2 divides by
        # the gradient norm): agreement to a few ulps of the O(1) coordinates
        np.testing.assert_allclose(r.x_adv[i], ri.x_adv, rtol=0, atol=1e-14)
    dist = np.abs(r.x_adv - X).max(1) if norm == "linf" else np.linalg.norm(r.x_adv - X, axis=1)
    assert np.all(dist <= eps * (1 + 1e-12) + 1e-15)
    f = fgsm(m, X, y, eps, norm=norm)
    for i in (3, 40):
        np.testing.assert_allclose(f.x_adv[i], fgsm(m, X[i], y[i], float(eps[i]), norm=norm).x_adv, rtol=0, atol=1e-14)


def test_sweep_gives_budgets_by_samples(setup):
    m, X, y = setup
    budgets = [0.0, 0.05, 0.2]
    r = ifgsm(m, X, y, epsilons=budgets, alpha=0.02, steps=6)
    assert r.success.shape == (3, 60) and r.x_adv.shape == (3, 60, 2) and r.success_rate.shape == (3,)
    for b, row in zip(budgets, r.x_adv):
        np.testing.assert_array_equal(row, ifgsm(m, X, y, b, 0.02, 6).x_adv)
    assert not r.success[0][m.predict(X) == y].any()  # ε = 0 cannot flip a correct prediction
    assert np.all(np.diff(r.success_rate) >= 0)
    fs = fgsm(m, X, y, epsilons=budgets)
    np.testing.assert_array_equal(fs.x_adv[2], fgsm(m, X, y, 0.2).x_adv)
    with pytest.raises(ValueError, match="either eps"):
        ifgsm(m, X, y, 0.1, epsilons=budgets)


@pytest.mark.parametrize("attack", [ifgsm, minmove_attack])
def test_early_stop_freezes_at_first_success(setup, attack):
    m, X, y = setup
    eps, alpha, steps = 0.3, 0.05, 8
    kw = {"inner": "local"} if attack is minmove_attack else {}
    full = attack(m, X, y, eps, alpha, steps, return_trajectory=True, **kw).trajectory.positions
    r = attack(m, X, y, eps, alpha, steps, early_stop=True, **kw)
    pred = m.predict(full.reshape(-1, 2)).reshape(steps + 1, -1)
    wrong = pred != y[None, :]
    first = np.where(wrong.any(0), wrong.argmax(0), steps)
    np.testing.assert_array_equal(r.steps_taken, first)
    assert r.success.any() and not r.success.all()
    for i in range(len(X)):
        np.testing.assert_allclose(r.x_adv[i], full[first[i], i], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r.success, wrong.any(0))


def test_restarts_keep_the_best_per_sample(setup):
    m, X, y = setup
    one = ifgsm(m, X, y, 0.15, 0.03, 5, random_start=True, seed=4)
    many = ifgsm(m, X, y, 0.15, 0.03, 5, random_start=True, seed=4, restarts=4)
    assert np.all(many.success >= one.success)
    same = many.success == one.success
    assert np.all(many.loss[same] >= one.loss[same])
    assert np.all(np.abs(many.x_adv - X) <= 0.15 + 1e-15)


def test_memory_does_not_grow_with_steps(setup):
    # without return_trajectory the peak memory is O(n·d), independent of the number of steps
    # (the former implementation kept all steps + 1 positions: +140 · X.nbytes between the runs)
    m, _, _ = setup
    X = np.random.default_rng(0).normal(size=(1000, 2))

    def peak(steps, **kw):
        tracemalloc.start()
        ifgsm(m, X, None, 0.1, 0.002, steps, **kw)
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p

    for kw in ({}, {"early_stop": True}):
        peak(10, **kw)  # warm-up: first-call caches
        grow = peak(150, **kw) - peak(10, **kw)
        assert grow < 10 * X.nbytes, (kw, grow, X.nbytes)


def test_default_alpha_and_bad_input(setup):
    m, X, y = setup
    r = ifgsm(m, X, y, 0.1, steps=4)
    assert r.alpha == pytest.approx(0.0625)
    with pytest.raises(ValueError, match="eps"):
        ifgsm(m, X, y, np.full(3, 0.1))
    with pytest.raises(ValueError, match="eps"):
        fgsm(m, X, y, np.full(60, -0.1))
    with pytest.raises(ValueError, match="alpha"):
        ifgsm(m, X, y, 0.1, -0.01, 3)
    with pytest.raises(ValueError, match="return_trajectory"):
        ifgsm(m, X, y, 0.1, 0.01, 3, early_stop=True, return_trajectory=True)
    with pytest.raises(TypeError, match="early_stop"):
        ifgsm(m, X, y, 0.1, 0.01, 3, early_stop="yes")

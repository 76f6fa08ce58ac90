"""wflow.distributed: every blockwise result against the single-process one on the same data."""

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial.distance import cdist
from test_config import VALID

import wflow
from wflow.adversarial import distributional_attack, fgsm, ifgsm, load_model
from wflow.potentials import GaussianMixture, Linear, Quadratic

da = pytest.importorskip("dask.array")
wd = pytest.importorskip("wflow.distributed")

U = np.finfo(float).eps / 2


def sum_order_bound(terms: np.ndarray) -> np.ndarray:
    """|Σ in one order − Σ in another| ≤ 2 γ_{n−1} Σ|terms| (γ_k = ku/(1 − ku), Higham Thm 4.4)."""
    n = terms.shape[-1]
    g = (n - 1) * U / (1 - (n - 1) * U)
    return 2 * g * np.abs(terms).sum(axis=-1)


@pytest.fixture(scope="module")
def particles():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2500, 2))
    w = rng.random(2500)
    return X, w / w.sum()


V2 = Quadratic(np.array([[2.0, 0.3], [0.3, 1.0]]), b=[0.1, -0.2])


def test_import_needs_no_dask():
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "import wflow, wflow.flow, wflow.adversarial, wflow.distributed as wd, numpy as np\n"
        "wflow.solve_flow(wflow.potentials.Linear([1.0]), [[0.0]], T=1.0, tau=0.5)\n"
        "try:\n    wd.solve_flow(wflow.potentials.Linear([1.0]), [[0.0]], T=1.0, tau=0.5)\n"
        "except ImportError as e:\n    assert 'wflow[dask]' in str(e); print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=".")
    assert out.stdout.strip() == "ok", out.stderr


def test_flow_bit_identical_weighted(particles):
    X, w = particles
    ref = wflow.solve_flow(V2, wflow.ParticleMeasure(X, w), T=0.5, tau=0.01, stride=7)
    r = wd.solve_flow(V2, X, T=0.5, tau=0.01, weights=w, chunks=600, stride=7, keep=wd.FLOW_OUTPUTS)
    assert r.is_lazy and isinstance(r.positions, da.Array) and r.positions.chunks[1] == (600,) * 4 + (100,)
    r = r.compute()
    assert not r.is_lazy
    np.testing.assert_array_equal(r.times, ref.times)
    np.testing.assert_array_equal(r.positions, ref.positions)
    np.testing.assert_array_equal(r.final, ref.positions[-1])
    np.testing.assert_array_equal(r.energies, ref.energies)
    # curves: the same terms w_i V(x_i) summed in another order
    E = ref.energies * w
    assert np.all(np.abs(r.energy_curve - ref.energy_curve()) <= sum_order_bound(E))
    S = ref.slopes * w
    assert np.all(np.abs(r.slope_curve - ref.slope_curve()) <= sum_order_bound(S))
    # labelled W∞ bounds: maxima are exact in any order
    P = ref.positions
    step = np.abs(np.diff(P, axis=0)).max(axis=2).max(axis=1)
    np.testing.assert_array_equal(r.step_bound, step)
    full = np.array([[np.abs(P[b] - P[a]).max(axis=1).max() for b in range(len(P))] for a in range(len(P))])
    np.testing.assert_array_equal(r.winf_bound, full)
    assert np.all(r.step_bound <= 7 * 0.01 * (1 + 1e-12))  # ℓ∞ speed ≤ 1 over 7 steps of τ
    fr = r.to_flow_result(V2)
    np.testing.assert_array_equal(fr.at(0.25), ref.at(0.25))


def test_flow_single_block_curves_identical(particles):
    X, w = particles
    ref = wflow.solve_flow(V2, wflow.ParticleMeasure(X, w), T=0.2, tau=0.05)
    r = wd.solve_flow(V2, wflow.ParticleMeasure(X, w), T=0.2, tau=0.05, chunks=len(X)).compute()
    np.testing.assert_array_equal(r.energy_curve, ref.energy_curve())
    np.testing.assert_array_equal(r.slope_curve, ref.slope_curve())


def test_flow_dask_input_budget_l2_and_random_selection():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (1000, 3))
    C = X + rng.uniform(-0.05, 0.05, X.shape)
    Xd = da.from_array(X, chunks=(300, 2))  # column chunks are merged
    V = GaussianMixture([[0.0, 0.0, 0.0], [0.5, -0.5, 0.2]], [1.0, 0.5], [0.3, 0.2])
    ref = wflow.solve_flow(V, X, T=0.3, tau=0.02, norm="l2", budget=0.1, center=C)
    r = wd.solve_flow(V, Xd, T=0.3, tau=0.02, norm="l2", budget=0.1, center=da.from_array(C, chunks=250),
                      keep=["positions"]).compute()
    np.testing.assert_array_equal(r.positions, ref.positions)
    assert np.all(np.linalg.norm(r.positions[-1] - C, axis=1) <= 0.1 * (1 + 1e-12))
    # ℓ∞ with a zero gradient component: random selections, seeded per block as per chunk
    L = Linear([1.0, 0.0, -2.0])
    ref = wflow.solve_flow(L, X, T=0.3, tau=0.1, selection="random", seed=7, chunk_size=300)
    r = wd.solve_flow(L, X, T=0.3, tau=0.1, selection="random", seed=7, chunks=300, keep="positions").compute()
    np.testing.assert_array_equal(r.positions, ref.positions)
    other = wd.solve_flow(L, X, T=0.3, tau=0.1, selection="random", seed=8, chunks=300, keep="positions")
    assert not np.array_equal(other.compute().positions, ref.positions)  # the seed matters


def test_flow_memory_bounded_by_chunks():
    """Only the curves are kept: peak memory follows the chunk, not the ensemble."""
    K = 10

    def peak(n):
        X = da.random.default_rng(0).standard_normal((n, 2), chunks=(15_000, 2))
        r = wd.solve_flow(Linear([1.0, -1.0]), X, T=K * 0.01, tau=0.01, keep=["energy_curve", "step_bound"])
        tracemalloc.start()
        out = r.compute(scheduler="sync")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, out

    small, _ = peak(150_000)
    big, out = peak(600_000)
    trajectory = (K + 1) * 600_000 * 2 * 8  # what the in-memory path stores: 106 MB
    assert big < trajectory / 4 and big < 2 * small, (small, big, trajectory)  # 4x the particles
    assert hasattr(out.weights, "__dask_graph__")  # curves only: no (n,) array gathered on the client
    # |fl(x ± τ) − x| = τ up to one rounding of a number of size |x| + τ ≤ 8 (standard normals)
    np.testing.assert_allclose(out.step_bound, np.full(K, 0.01), rtol=0, atol=2 * U * 8)
    # V = x1 − x2 drops at unit ℓ1 slope per unit time: 𝓔(t) = 𝓔(0) − 2t (sign steps of size τ)
    np.testing.assert_allclose(out.energy_curve - out.energy_curve[0], -2 * out.times, atol=1e-12)


def test_flow_bad_input_before_work(particles):
    X, w = particles
    with pytest.raises(ValueError, match="keep"):
        wd.solve_flow(V2, X, T=1.0, tau=0.1, keep=["velocity"])
    with pytest.raises(ValueError, match="tau"):
        wd.solve_flow(V2, X, T=1.0, tau=-0.1)
    with pytest.raises(ValueError, match="weights"):
        wd.solve_flow(V2, X, T=1.0, tau=0.1, weights=w[:-1])
    with pytest.raises(ValueError, match="sum to 1"):
        wd.solve_flow(V2, X, T=1.0, tau=0.1, weights=da.from_array(2 * w, chunks=500))
    with pytest.raises(TypeError, match="workers"):
        wd.solve_flow(V2, X, T=1.0, tau=0.1, workers=2)
    with pytest.raises(ValueError, match="budget ball"):  # the single-path check, on a probe
        wd.solve_flow(V2, X, T=1.0, tau=0.1, budget=0.1, center=np.zeros(2))
    with pytest.raises(ValueError, match="dimension"):
        wd.solve_flow(Quadratic(np.eye(3)), X, T=1.0, tau=0.1)
    with pytest.raises(ValueError, match="chunks"):
        wd.solve_flow(V2, X, T=1.0, tau=0.1, chunks=0)


def test_progress_bar(capsys, particles):
    X, _ = particles
    wd.solve_flow(V2, X, T=0.1, tau=0.05, chunks=1000).compute(progress=True)
    assert "100%" in capsys.readouterr().out


@pytest.fixture(scope="module")
def moons():
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 2, (1200, 2))
    y = (rng.random(1200) > 0.5).astype(float)
    w = rng.random(1200)
    return load_model("two_moons_gelu"), X, y, w / w.sum()


def test_attacks_bit_identical(moons):
    model, X, y, _ = moons
    np.testing.assert_array_equal(wd.fgsm(model, X, y, 0.1, chunks=300).compute(), fgsm(model, X, y, 0.1).x_adv)
    yd = da.from_array(y, chunks=500)
    np.testing.assert_array_equal(wd.fgsm(model, X, yd, 0.1, loss="ce", norm="l2", chunks=300).compute(),
                                  fgsm(model, X, y, 0.1, loss="ce", norm="l2").x_adv)
    for y_ in (None, 1.0):
        a = wd.ifgsm(model, X, y_, 0.1, 0.02, 8, chunks=250).compute()
        np.testing.assert_array_equal(a, ifgsm(model, X, y_, 0.1, 0.02, 8).x_adv)
    # random start: block b skips the uniforms of the rows before it
    a = wd.ifgsm(model, X, y, 0.1, 0.02, 8, random_start=True, seed=11, chunks=250).compute()
    b = ifgsm(model, X, y, 0.1, 0.02, 8, random_start=True, seed=11).x_adv
    np.testing.assert_array_equal(a, b)
    c = ifgsm(model, X, y, 0.1, 0.02, 8, random_start=True, seed=12).x_adv
    assert not np.array_equal(a, c)
    # a budget per sample travels with its rows (numpy or dask)
    e = np.random.default_rng(4).uniform(0.02, 0.2, len(X))
    ref = ifgsm(model, X, y, e, 0.02, 8, random_start=True, seed=5).x_adv
    for e_ in (e, da.from_array(e, chunks=400)):
        np.testing.assert_array_equal(wd.ifgsm(model, X, y, e_, 0.02, 8, random_start=True, seed=5, chunks=250).compute(), ref)
    np.testing.assert_array_equal(wd.fgsm(model, X, y, e, chunks=250).compute(), fgsm(model, X, y, e).x_adv)


def test_model_shipped_once(moons):
    model, X, y, _ = moons
    adv = wd.ifgsm(model, X, y, 0.1, 0.02, 2, chunks=100)
    shipped = [k for k in dict(adv.__dask_graph__()) if "wflow-shipped" in str(k)]
    assert len(shipped) == 1 and len(adv.chunks[0]) == 12


def test_distributional_attack(moons):
    model, X, y, w = moons
    ref = distributional_attack(model, wflow.ParticleMeasure(X, w), y, eps=0.1, tau=0.01, n_winf=0, loss="ce")
    r = wd.distributional_attack(model, X, y, eps=0.1, tau=0.01, weights=w, chunks=300, loss="ce",
                                 keep_positions=True).compute()
    np.testing.assert_array_equal(r.positions, ref.flow.positions)
    np.testing.assert_array_equal(r.final, ref.flow.positions[-1])
    np.testing.assert_array_equal(r.displacement, ref.displacement)
    assert np.all(np.abs(r.expected_loss - ref.expected_loss) <= sum_order_bound(ref.flow.energies * w))
    assert np.all(np.abs(r.accuracy - ref.accuracy) <= sum_order_bound(np.broadcast_to(w, ref.flow.energies.shape)))
    assert r.to_dict()["eps"] == 0.1 and len(r.to_dict()["accuracy"]) == 11


def brute_transport(D, r):
    """F(r) by an LP over couplings of the uniform measures supported on {D ≤ r} (scipy HiGHS)."""
    n0, n1 = D.shape
    ii, jj = np.nonzero(D <= r)
    if ii.size == 0:
        return 0.0
    A = np.zeros((n0 + n1, ii.size))
    A[ii, np.arange(ii.size)] = 1
    A[n0 + jj, np.arange(ii.size)] = 1
    b = np.r_[np.full(n0, 1 / n0), np.full(n1, 1 / n1)]
    return -linprog(-np.ones(ii.size), A_ub=A, b_ub=b, bounds=(0, None), method="highs").fun


@pytest.mark.parametrize("norm,metric", [("linf", "chebyshev"), ("l1", "cityblock")])
def test_conflict_edges_against_brute_force(norm, metric):
    rng = np.random.default_rng(5)
    X0, X1 = rng.standard_normal((90, 4)), rng.standard_normal((70, 4)) + 0.4
    g = wd.conflict_edges(X0, da.from_array(X1, chunks=30), 2.0, norm, chunks=25)
    D = cdist(X0, X1, metric)
    r, c = np.nonzero(D <= 2.0)
    np.testing.assert_array_equal(g.rows, r)
    np.testing.assert_array_equal(g.cols, c)
    np.testing.assert_array_equal(g.dists, D[r, c])
    for rad in (0.5, 1.2, 2.0):
        assert abs(g.transported(rad) - brute_transport(D, rad)) <= 1e-9
    sq = wd.conflict_edges(X0[:70], X1, 1.2, norm, chunks=32)
    M = (maximum_bipartite_matching(csr_matrix(cdist(X0[:70], X1, metric) <= 1.2)) >= 0).sum()
    assert sq.transported(1.2) == M / 70
    with pytest.raises(ValueError, match="radius"):
        g.transported(2.5)


def test_local_cluster_matches_single_process(moons):
    distributed = pytest.importorskip("distributed")
    model, X, y, _ = moons
    rng = np.random.default_rng(2)
    P = rng.standard_normal((3000, 2))
    ref = wflow.solve_flow(V2, P, T=0.2, tau=0.02, stride=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        r = wd.solve_flow(V2, P, T=0.2, tau=0.02, stride=3, chunks=700, keep=["positions", "energy_curve"])
        held = client.has_what()  # the potential was scattered to both workers before any task
        assert len(held) == 2 and all(any("Quadratic" in str(k) for k in keys) for keys in held.values())
        r = r.compute(progress=False)
        np.testing.assert_array_equal(r.positions, ref.positions)
        assert np.all(np.abs(r.energy_curve - ref.energy_curve()) <= sum_order_bound(ref.energies / len(P)))
        a = wd.ifgsm(model, X, y, 0.1, 0.02, 5, random_start=True, seed=4, chunks=400, client=client)
        np.testing.assert_array_equal(a.compute(), ifgsm(model, X, y, 0.1, 0.02, 5, random_start=True, seed=4).x_adv)
        g = wd.conflict_edges(X[:100], X[100:180], 0.3, chunks=40)
        D = cdist(X[:100], X[100:180], "chebyshev")
        assert g.n_edges == int((D <= 0.3).sum())
    with pytest.raises(ConnectionError, match="cannot reach"):
        wd.connect("tcp://127.0.0.1:1", timeout=0.5)


def test_optimal_adversarial_risk_sweep_matches_matching():
    rng = np.random.default_rng(8)
    X0, X1 = rng.standard_normal((60, 3)), rng.standard_normal((60, 3)) + 0.3
    eps = np.array([0.1, 0.3, 0.6])
    risk = wd.optimal_adversarial_risk(X0, X1, eps, "linf", chunks=25)
    D = cdist(X0, X1, "chebyshev")
    expected = [0.5 * (maximum_bipartite_matching(csr_matrix(D <= 2 * e)) >= 0).sum() / 60 for e in eps]
    np.testing.assert_allclose(risk, expected, rtol=0, atol=1e-12)
    assert np.all(np.diff(risk) >= 0)  # the graph only grows with ε


def test_solve_flow_on_returns_the_single_process_result(particles):
    X, w = particles
    mu = wflow.ParticleMeasure(X, w)
    ref = wflow.solve_flow(V2, mu, T=0.3, tau=0.05, norm="l2")
    for scheduler in ("threads", "sync"):
        res = wd.solve_flow_on(scheduler, V2, mu, 0.3, 0.05, norm="l2", chunk_size=700)
        assert isinstance(res, wflow.FlowResult) and res.norm == ref.norm
        np.testing.assert_array_equal(res.positions, ref.positions)
        np.testing.assert_array_equal(res.weights, w)
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        wd.solve_flow_on("tcp://127.0.0.1:1", V2, X, 0.3, 0.05, timeout=0.5)
    with pytest.raises(TypeError, match="scheduler"):
        wd.solve_flow_on(3, V2, X, 0.3, 0.05)


#: test_config's valid configuration without figures (the [compute] tests append their section)
COMPUTE_TOML = VALID.replace('figures = ["energy"]', "figures = []")


def test_wflow_run_compute_section(tmp_path):
    from wflow.app.cli import main
    from wflow.app.config import ConfigError, parse_config

    cfg = tmp_path / "c.toml"
    cfg.write_text(COMPUTE_TOML + '\n[compute]\nscheduler = "threads"\nchunk_size = 2\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "run")]) == 0
    with np.load(tmp_path / "run" / "result.npz") as f:
        pos = f["positions"]
    x0 = np.array([[1.0, -0.5], [0.3, 0.8], [-0.6, -0.2]])
    np.testing.assert_array_equal(pos, wflow.solve_flow(Quadratic(np.diag([1.0, 3.0])), x0, 0.6, 0.05).positions)
    # an unreachable scheduler: exit code 2, the message names the key and the address, nothing written
    cfg.write_text(COMPUTE_TOML + '\n[compute]\nscheduler = "tcp://127.0.0.1:1"\ntimeout = 0.5\n')
    out = tmp_path / "bad"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    assert not out.exists() or not any(p.name.endswith((".npz", ".json")) for p in out.iterdir())
    with pytest.raises(ConfigError, match="compute.scheduler"):
        parse_config({"flow": {"T": 1, "tau": 0.1}, "compute": {"scheduler": "fast"}})
    with pytest.raises(ConfigError, match="compute.chunk_size"):
        parse_config({"flow": {"T": 1, "tau": 0.1}, "compute": {"chunk_size": 0}})


def test_optimal_risk_equals_the_single_process_function():
    optimal_risk = pytest.importorskip("wflow.adversarial.optimal_risk")
    rng = np.random.default_rng(9)
    X0, X1 = rng.standard_normal((80, 4)), rng.standard_normal((50, 4)) + 0.2
    w0, w1 = rng.random(80), rng.random(50)
    w0, w1 = w0 / w0.sum(), w1 / w1.sum()
    eps = np.array([0.2, 0.5, 0.9])
    for norm in ("linf", "l2"):
        ref = optimal_risk.optimal_adversarial_risk(X0, X1, eps, norm, w0, w1)
        got = wd.optimal_adversarial_risk(X0, X1, eps, norm, w0, w1, chunks=30)
        np.testing.assert_array_equal(got, ref)  # same graph, same max-flow
        one_eps = optimal_risk.optimal_adversarial_risk(X0, X1, 0.5, norm, w0, w1)
        assert wd.optimal_adversarial_risk(X0, X1, 0.5, norm, w0, w1, chunks=30) == one_eps
        g = wd.conflict_edges(X0, X1, 1.8, norm, chunks=30, exact_at=2 * eps).to_graph()
        one = optimal_risk.conflict_graph(X0, X1, 1.8, norm, exact_at=2 * eps)
        for r in 2 * eps:  # identical edge sets at every radius of the sweep
            a = {(i, j) for i, j, m in zip(g.rows, g.cols, g.within(r)) if m}
            b = {(i, j) for i, j, m in zip(one.rows, one.cols, one.within(r)) if m}
            assert a == b

"""One vocabulary and one result type per solver: Norm everywhere, budget/tau names, StepResult,
trajectory accessors, and the import structure of the core modules (docs/conventions.md)."""

import ast
import json
import pathlib

import numpy as np
import pytest

import wflow
from wflow import norms
from wflow.minmove import MinMoveScheme, minmove_step, project_intersection
from wflow.norms import Norm, as_norm
from wflow.potentials import GaussianMixture, Linear, Quadratic, quadratic_coefficients
from wflow.schemes import SCHEMES, EulerScheme, make_scheme, register_scheme
from wflow.steps import Ball, StepInfo, StepResult
from wflow.studies import StudyResult, fgsm_minmove_study, sup_error
from wflow.superposition import CurveInfo, CurveMeasure, superpose, superpose_snapshots

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPECS = [("l1", 1.0), ("l2", 2.0), ("linf", np.inf), (3, 3.0), (Norm(1.5), 1.5)]


@pytest.mark.parametrize("spec,p", SPECS)
def test_norm_functions_take_norm_keyword_with_any_spec(spec, p):
    x = np.array([[3.0, -4.0, 0.5], [0.0, 1.0, -2.0]])
    direct = np.sum(np.abs(x) ** p, axis=1) ** (1 / p) if np.isfinite(p) else np.abs(x).max(axis=1)
    np.testing.assert_allclose(norms.norm(x, norm=spec), direct, rtol=1e-14)
    q = as_norm(spec).q
    dual = np.sum(np.abs(x) ** q, axis=1) ** (1 / q) if np.isfinite(q) else np.abs(x).max(axis=1)
    np.testing.assert_allclose(norms.dual_norm(x, norm=spec), dual, rtol=1e-14)
    v = norms.steepest(x, norm=spec)
    np.testing.assert_allclose(np.einsum("nd,nd->n", x, v), dual, rtol=1e-12)
    z = norms.project_ball(x, np.zeros(3), 0.5, norm=spec)
    assert np.all(as_norm(spec).norm(z) <= 0.5 * (1 + 1e-12))
    assert norms.dual_exponent(spec) == q


def test_p_is_no_longer_a_norm_keyword():
    with pytest.raises(TypeError):
        norms.norm(np.ones(2), p=2)
    with pytest.raises(TypeError):
        project_intersection(np.ones((1, 2)), np.zeros((1, 2)), 0.1, p="l2")
    with pytest.raises(TypeError):
        EulerScheme(p=2)


@pytest.mark.parametrize("spec,name", [("l2", "l2"), (2, "l2"), (np.inf, "linf"), (Norm(1.0), "l1"), (3, "l3")])
def test_results_store_a_norm_whose_str_is_its_name(spec, name):
    V = Quadratic(np.eye(2))
    res = wflow.solve_flow(V, [[1.0, -0.5], [0.2, 0.3]], T=0.3, tau=0.1, norm=spec)
    assert isinstance(res.norm, Norm) and res.norm == as_norm(spec) and str(res.norm) == name
    summary = res.to_dict()
    assert summary["norm"] == name and json.loads(json.dumps(summary))["norm"] == name
    eta = superpose(res)
    assert isinstance(eta.norm, Norm) and eta.norm == res.norm  # carried, not reset to linf
    snaps = superpose_snapshots([res.measure(t) for t in res.times], res.times, norm=spec)
    assert snaps.norm == res.norm
    # the slope of the flow uses the dual of the stored norm
    G = V.grad(res.positions[-1])
    np.testing.assert_allclose(res.slopes[-1], norms.dual_norm(G, spec), rtol=1e-15)


def test_bad_norm_is_named():
    with pytest.raises(ValueError, match="norm"):
        wflow.solve_flow(Linear([1.0]), [0.0], 1.0, 0.1, norm="l0")
    with pytest.raises(ValueError, match="norm"):
        CurveMeasure(np.zeros((1, 2, 1)), [1.0], [0.0, 1.0], norm=0.5)
    with pytest.raises(TypeError, match="norm"):
        minmove_step(Linear([1.0]), [0.0], 0.1, norm=[2])


def test_trajectory_and_snapshot_hide_the_two_layouts():
    rng = np.random.default_rng(3)
    V = Quadratic.separable_from([1.0, 3.0])
    res = wflow.solve_flow(V, rng.uniform(-1, 1, (5, 2)), T=0.4, tau=0.05)
    eta = superpose(res)
    K1, n, d = res.positions.shape
    assert eta.curves.shape == (n, K1, d)
    for i in range(n):
        assert res.trajectory(i).shape == (K1, d)
        np.testing.assert_array_equal(res.trajectory(i), eta.curves[i])
    for k, t in enumerate(res.times):
        np.testing.assert_array_equal(eta.snapshot(k), res.positions[k])
        np.testing.assert_array_equal(eta.snapshot(k), eta.at(t))
        np.testing.assert_array_equal(res.at(t), res.positions[k])
    np.testing.assert_array_equal(res.trajectory(-1), res.positions[:, -1])
    with pytest.raises(ValueError, match="i must"):
        res.trajectory(n)
    with pytest.raises(TypeError, match="i must"):
        res.trajectory(0.5)
    with pytest.raises(ValueError, match="k must"):
        eta.snapshot(K1)


def test_minmove_step_returns_one_step_result():
    V = GaussianMixture.default()
    X = np.random.default_rng(0).uniform(-1, 1, (7, 2))
    step = minmove_step(V, X, 0.1, norm="linf", budget=0.15, inner="local")
    assert isinstance(step, StepResult) and isinstance(step.info, StepInfo)
    assert step.x.shape == (7, 2)
    info = step.info
    for a in (info.energy, info.evals, info.active, info.fallback, info.budget_active):
        assert a.shape == (7,)
    np.testing.assert_allclose(info.energy, V.value(step.x), rtol=0, atol=1e-14)
    assert np.all(info.energy <= V.value(X))  # never increases V
    assert np.all(np.abs(step.x - X).max(axis=1) <= 0.1 * (1 + 1e-12))
    d = json.loads(json.dumps(step.to_dict()))
    assert np.allclose(d["x"], step.x) and d["info"]["evals"] == info.evals.tolist()
    assert minmove_step(V, X, 0.1).info.budget_active is None


def test_step_info_is_stacked_over_blocks_and_none_for_euler():
    V = GaussianMixture.default()
    X = np.random.default_rng(1).uniform(-1, 1, (9, 2))
    one = wflow.solve_flow(V, X, 0.3, 0.1, scheme="minmove", chunk_size=9, workers=1)
    blocks = wflow.solve_flow(V, X, 0.3, 0.1, scheme="minmove", chunk_size=4, workers=1)
    assert isinstance(blocks.step_info, StepInfo) and blocks.step_info.energy.shape == (3, 9)
    np.testing.assert_array_equal(blocks.step_info.evals, one.step_info.evals)
    np.testing.assert_allclose(blocks.step_info.energy, V.value(blocks.positions[1:].reshape(-1, 2)).reshape(3, 9),
                               rtol=0, atol=1e-14)
    assert blocks.step_info.budget_active is None
    assert wflow.solve_flow(V, X, 0.3, 0.1).step_info is None


def test_scheme_registry_passes_a_norm_and_resolves_minmove_directly():
    assert SCHEMES["minmove"] is MinMoveScheme
    s = make_scheme("minmove", "l2", inner="local")
    assert isinstance(s, MinMoveScheme) and s.norm == Norm(2.0)
    seen = {}

    def factory(norm, selection, **options):
        seen.update(norm=norm, selection=selection, **options)
        return EulerScheme(norm, selection)

    register_scheme("my_euler", factory)
    try:
        V = Linear([1.0, -2.0])
        a = wflow.solve_flow(V, [0.0, 0.0], 0.5, 0.1, norm=3, scheme="my_euler")
        b = wflow.solve_flow(V, [0.0, 0.0], 0.5, 0.1, norm=3)
        np.testing.assert_array_equal(a.positions, b.positions)
        assert seen == {"norm": Norm(3.0), "selection": "canonical"}
    finally:
        del SCHEMES["my_euler"]
    with pytest.raises(ValueError, match="scheme"):
        make_scheme("nope", "linf")


def test_ball_is_named_by_its_budget():
    b = Ball(np.zeros(2), 0.5, "l2")
    assert b.budget == 0.5 and b.norm == Norm(2.0)
    np.testing.assert_allclose(b.project(np.array([[3.0, 4.0]])), [[0.3, 0.4]], rtol=1e-15)
    z = project_intersection(np.array([[2.0, 0.0]]), np.zeros((1, 2)), 1.0, center=np.array([0.5, 0.0]),
                             budget=0.25, norm="linf")
    np.testing.assert_allclose(z, [[0.75, 0.0]], rtol=0, atol=0)


def test_fgsm_minmove_study_names_its_coarsest_step_tau_max():
    V = Quadratic.separable_from([1.0, 2.0])
    res = fgsm_minmove_study(V, [[0.4, -0.3]], T=0.5, tau_max=0.1, n_halvings=2)
    np.testing.assert_allclose(res.taus, [0.1, 0.05, 0.025], rtol=0, atol=0)
    assert res.meta["tau_max"] == 0.1 and "eps" not in res.meta


def test_sup_error_takes_norm_keyword():
    a = lambda t: np.zeros((len(t), 1, 2))  # noqa: E731
    b = lambda t: np.broadcast_to(np.array([3.0, 4.0]), (len(t), 1, 2))  # noqa: E731
    assert sup_error(a, b, 1.0, norm="l2", n_eval=3) == pytest.approx(5.0, rel=1e-15)
    assert sup_error(a, b, 1.0, norm=Norm(1.0), n_eval=3) == pytest.approx(7.0, rel=1e-15)


def test_quadratic_coefficients_of_sums_and_scalings():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    b = np.array([1.0, -1.0])
    a = np.array([0.5, 0.25])
    V = 2.0 * Quadratic(A, b) + Linear(a)
    A2, b2 = quadratic_coefficients(V)
    np.testing.assert_array_equal(A2, 2 * A)
    np.testing.assert_array_equal(b2, 2 * b + a)
    X = np.random.default_rng(0).standard_normal((4, 2))
    np.testing.assert_allclose(V.grad(X), X @ A2.T + b2, rtol=1e-14)  # the coefficients reproduce ∇V
    A1, b1 = quadratic_coefficients(Linear(a))
    assert A1 is None
    np.testing.assert_array_equal(b1, a)
    assert quadratic_coefficients(GaussianMixture.default()) is None
    assert quadratic_coefficients(Quadratic(A) + GaussianMixture.default()) is None


def test_curve_info_is_a_dataclass_and_json_ready():
    rng = np.random.default_rng(0)
    snaps = [rng.uniform(-1, 1, (4, 2)) for _ in range(3)]
    eta = superpose_snapshots(snaps, [0.0, 1.0, 2.0])
    assert isinstance(eta.info, CurveInfo) and eta.info.source == "snapshots"
    assert eta.info.winf_steps.shape == (2,) and eta.info.n_atoms.tolist() == [4, 4, 4]
    d = json.loads(json.dumps(eta.info.to_dict()))
    assert d["gluing"] == "interval" and len(d["winf_steps"]) == 2
    assert CurveMeasure(np.zeros((1, 2, 1)), [1.0], [0, 1]).info == CurveInfo()
    with pytest.raises(TypeError, match="info"):
        CurveMeasure(np.zeros((1, 2, 1)), [1.0], [0, 1], info={"source": "x"})


def test_aliases_are_removed():
    assert not hasattr(CurveMeasure, "inclusion_mass")
    assert not hasattr(StudyResult, "errors")
    assert not hasattr(wflow.flow.FlowResult, "p")


# ------------------------------------------------------------------------------------------
# import structure of the core modules
# ------------------------------------------------------------------------------------------
CORE = ["_validation", "norms", "potentials", "measures", "steps", "minmove", "schemes", "flow",
        "studies", "superposition"]


def _local_imports(source):
    """(relative modules imported at module top, line numbers of imports inside functions/blocks)."""
    tree = ast.parse(source)
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.level == 1:
                    top.add((node.module or "").split(".")[0])
            else:
                nested.append(node.lineno)
    return top, nested


def _find_cycle(graph):
    """A cycle of the directed graph {module: set of imported modules} as a list, or None."""
    state = {}

    def visit(m, path):
        if state.get(m) == 1:
            return path[path.index(m):] + [m]
        if state.get(m) == 2 or m not in graph:
            return None
        state[m] = 1
        for dep in sorted(graph[m]):
            cyc = visit(dep, path + [m])
            if cyc:
                return cyc
        state[m] = 2
        return None

    for m in sorted(graph):
        cyc = visit(m, [])
        if cyc:
            return cyc
    return None


def test_import_checks_detect_cycles_and_nested_imports():
    # the checks below must be able to fail: a planted cycle and a planted in-function import
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    top, nested = _local_imports("from .norms import Norm\n\ndef f():\n    from .schemes import Ball\n")
    assert top == {"norms"} and nested == [4]


def test_core_modules_import_at_top_and_without_cycles():
    graph = {}
    for name in CORE:
        top, nested = _local_imports((ROOT / "wflow" / f"{name}.py").read_text())
        assert not nested, f"wflow/{name}.py imports inside functions at lines {nested}"
        graph[name] = top
    assert "app" not in set().union(*graph.values())
    assert _find_cycle(graph) is None, _find_cycle(graph)
    assert "minmove" in graph["schemes"] and "schemes" not in graph["minmove"]


def test_public_curve_helpers_against_brute_force():
    from wflow.superposition import as_times, worst_increase

    rng = np.random.default_rng(5)
    F = rng.standard_normal((6, 40))
    best, j, k = worst_increase(F)
    brute = np.array([max(F[r, b] - F[r, a] for a in range(40) for b in range(a, 40)) for r in range(6)])
    np.testing.assert_array_equal(best, brute)
    np.testing.assert_array_equal(F[np.arange(6), k] - F[np.arange(6), j], best)
    assert np.all(j <= k)
    eta = CurveMeasure(rng.standard_normal((3, 5, 2)), np.full(3, 1 / 3), [0.0, 0.5, 1.0, 2.0, 2.5])
    grid, U = eta.refined(4)
    assert grid.shape == (17,) and U.shape == (3, 17, 2)
    np.testing.assert_allclose(U, np.moveaxis(eta.at(grid), 0, 1), rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="increasing"):
        as_times([0.0, 1.0, 1.0])

"""Every public entry point, tried as a careless or hostile user would.

NaN/inf, empty, wrong shape, wrong type and extreme magnitudes raise ``ValueError`` /
``TypeError`` naming the argument; file-system problems raise ``OSError`` naming the path (exit
code 2 on the command line, one line on stderr, before the simulation); outputs appear whole or
not at all, also under SIGINT and SIGTERM; JSON is valid; large allocations are estimated
first. See docs/cli.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

import wflow
from wflow import io as wio
from wflow import memory
from wflow import potentials as P
from wflow.adversarial import (
    distributional_attack,
    fgsm,
    ifgsm,
    load_model,
    make_two_moons,
    minmove_attack,
    worst_case_loss,
)
from wflow.app.cli import main
from wflow.app.config import ConfigError, load_config
from wflow.measures import ParticleMeasure
from wflow.minmove import minmove_step
from wflow.norms import as_norm
from wflow.plotting import save_figure
from wflow.studies import convergence_study, sup_error
from wflow.superposition import superpose, superpose_snapshots
from wflow.transport import wasserstein, winf

ROOT = Path(__file__).resolve().parents[1]
nan, inf = float("nan"), float("inf")
V = P.GaussianMixture.default()
X = np.zeros((3, 2))
MU = ParticleMeasure(np.eye(2))
MODEL = load_model("two_moons_gelu")
RES = wflow.solve_flow(P.Linear([1.0, 0.0]), X, T=0.1, tau=0.05)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

# (id, call, exception type, regex the message must match: the argument's name)
CASES = [
    # solve_flow
    ("flow-x0-nan", lambda: wflow.solve_flow(V, [[nan, 0]], 1, 0.1), ValueError, "x0"),
    ("flow-x0-inf", lambda: wflow.solve_flow(V, [[inf, 0]], 1, 0.1), ValueError, "x0"),
    ("flow-x0-empty", lambda: wflow.solve_flow(V, np.zeros((0, 2)), 1, 0.1), ValueError, "x0 must hold at least one"),
    ("flow-x0-shape", lambda: wflow.solve_flow(V, np.zeros((2, 2, 2)), 1, 0.1), ValueError, "x0"),
    ("flow-x0-dim", lambda: wflow.solve_flow(V, np.zeros((2, 3)), 1, 0.1), ValueError, "x0"),
    ("flow-x0-type", lambda: wflow.solve_flow(V, "abc", 1, 0.1), TypeError, "x0"),
    ("flow-T-nan", lambda: wflow.solve_flow(V, X, nan, 0.1), ValueError, "T"),
    ("flow-T-neg", lambda: wflow.solve_flow(V, X, -1, 0.1), ValueError, "T"),
    ("flow-T-type", lambda: wflow.solve_flow(V, X, "1", 0.1), TypeError, "T"),
    ("flow-tau-zero", lambda: wflow.solve_flow(V, X, 1, 0.0), ValueError, "tau"),
    ("flow-tau-inf", lambda: wflow.solve_flow(V, X, 1, inf), ValueError, "tau"),
    ("flow-tau-tiny", lambda: wflow.solve_flow(V, X, 1, 1e-12), MemoryError, "stride"),
    ("flow-norm", lambda: wflow.solve_flow(V, X, 1, 0.1, norm="l7x"), ValueError, "norm"),
    ("flow-norm-type", lambda: wflow.solve_flow(V, X, 1, 0.1, norm=[1]), TypeError, "norm"),
    ("flow-scheme", lambda: wflow.solve_flow(V, X, 1, 0.1, scheme="rk4"), ValueError, "scheme"),
    ("flow-budget-nan", lambda: wflow.solve_flow(V, X, 1, 0.1, budget=nan), ValueError, "budget"),
    ("flow-budget-neg", lambda: wflow.solve_flow(V, X, 1, 0.1, budget=-1), ValueError, "budget"),
    ("flow-center-nobudget", lambda: wflow.solve_flow(V, X, 1, 0.1, center=[0, 0]), ValueError, "center"),
    ("flow-center-shape", lambda: wflow.solve_flow(V, X, 1, 0.1, budget=1, center=[0, 0, 0]), ValueError, "center"),
    ("flow-stride", lambda: wflow.solve_flow(V, X, 1, 0.1, stride=0), ValueError, "stride"),
    ("flow-chunk", lambda: wflow.solve_flow(V, X, 1, 0.1, chunk_size=0), ValueError, "chunk_size"),
    ("flow-workers", lambda: wflow.solve_flow(V, X, 1, 0.1, workers=0), ValueError, "workers"),
    ("flow-seed-neg", lambda: wflow.solve_flow(V, X, 1, 0.1, seed=-1), ValueError, "seed"),
    ("flow-seed-type", lambda: wflow.solve_flow(V, X, 1, 0.1, seed="a"), TypeError, "seed"),
    ("flow-potential-type", lambda: wflow.solve_flow(3.0, X, 1, 0.1), TypeError, "potential"),
    ("flow-selection", lambda: wflow.solve_flow(V, X, 1, 0.1, selection="best"), ValueError, "selection"),
    ("flow-x0-huge", lambda: wflow.solve_flow(P.Quadratic(np.eye(2)), [[1e200, 1e200]], 1, 0.1),
     ValueError, "potential"),
    # measures
    ("pm-nan", lambda: ParticleMeasure([[nan, 0]]), ValueError, "points"),
    ("pm-empty", lambda: ParticleMeasure(np.zeros((0, 2))), ValueError, "points"),
    ("pm-type", lambda: ParticleMeasure("ab"), TypeError, "points"),
    ("pm-w-shape", lambda: ParticleMeasure(X, [1, 0]), ValueError, "weights"),
    ("pm-w-neg", lambda: ParticleMeasure(np.eye(2), [2, -1]), ValueError, "weights"),
    ("pm-w-nan", lambda: ParticleMeasure(np.eye(2), [nan, 1]), ValueError, "weights"),
    ("pm-w-inf", lambda: ParticleMeasure(np.eye(2), [inf, 1], normalize=True), ValueError, "weights"),
    ("pm-w-sum", lambda: ParticleMeasure(np.eye(2), [0.3, 0.3]), ValueError, "weights"),
    ("pm-w-zero", lambda: ParticleMeasure(np.eye(2), [0, 0], normalize=True), ValueError, "weights"),
    ("pm-w-type", lambda: ParticleMeasure(np.eye(2), ["a", "b"]), TypeError, "weights"),
    # potentials
    ("dw-dim-float", lambda: P.DoubleWell(dim=2.7), TypeError, "dim"),
    ("dw-dim-zero", lambda: P.DoubleWell(dim=0), ValueError, "dim"),
    ("dw-a-nan", lambda: P.DoubleWell(a=nan), ValueError, "a must"),
    ("dw-b-type", lambda: P.DoubleWell(b="x"), TypeError, "b must"),
    ("gm-amp-nan", lambda: P.GaussianMixture([[0, 0]], amplitudes=[nan]), ValueError, "amplitudes"),
    ("gm-amp-len", lambda: P.GaussianMixture([[0, 0]], amplitudes=[1, 2]), ValueError, "amplitudes"),
    ("gm-widths-len", lambda: P.GaussianMixture([[0, 0], [1, 1]], widths=[1, 2, 3]), ValueError, "widths"),
    ("gm-widths-neg", lambda: P.GaussianMixture([[0, 0]], widths=-1), ValueError, "widths"),
    ("gm-widths-nan", lambda: P.GaussianMixture([[0, 0]], widths=nan), ValueError, "widths"),
    ("gm-centers-empty", lambda: P.GaussianMixture(np.zeros((0, 2))), ValueError, "centers"),
    ("gm-centers-type", lambda: P.GaussianMixture("ab"), TypeError, "centers"),
    ("quad-c-type", lambda: P.Quadratic(np.eye(2), c="a"), TypeError, "c must"),
    ("quad-c-nan", lambda: P.Quadratic(np.eye(2), c=nan), ValueError, "c must"),
    ("quad-A-nan", lambda: P.Quadratic([[nan, 0], [0, 1]]), ValueError, "A must"),
    ("quad-A-shape", lambda: P.Quadratic(np.ones((2, 3))), ValueError, "A must"),
    ("quad-A-type", lambda: P.Quadratic([["a", "b"], ["c", "d"]]), TypeError, "A must"),
    ("lin-a-inf", lambda: P.Linear([inf, 0]), ValueError, "a must"),
    ("lin-a-empty", lambda: P.Linear([]), ValueError, "a must"),
    ("fc-value-type", lambda: P.FromCallables(3), TypeError, "value"),
    ("fc-dim-float", lambda: P.FromCallables(lambda Z: Z[:, 0], dim=1.5), TypeError, "dim"),
    ("pot-add-str", lambda: V + "a", TypeError, "str"),
    ("pot-add-nan", lambda: V + nan, ValueError, "constant"),
    ("pot-mul-nan", lambda: V * nan, ValueError, "scale"),
    ("pot-value-dim", lambda: V.value(np.zeros((2, 3))), ValueError, "dimension"),
    # minimizing movement
    ("mm-center-nobudget", lambda: minmove_step(V, X, 0.1, center=[0, 0]), ValueError, "center"),
    ("mm-outside", lambda: minmove_step(V, [[1, 1]], 0.1, budget=0.1, center=[0, 0]), ValueError, "budget"),
    ("mm-center-rows", lambda: minmove_step(V, X, 0.1, budget=1, center=np.zeros((2, 2))), ValueError, "center"),
    ("mm-center-dim", lambda: minmove_step(V, X, 0.1, budget=1, center=[0, 0, 0]), ValueError, "center"),
    ("mm-center-nan", lambda: minmove_step(V, X, 0.1, budget=1, center=[nan, 0]), ValueError, "center"),
    ("mm-tau", lambda: minmove_step(V, X, -0.1), ValueError, "tau"),
    ("mm-x-nan", lambda: minmove_step(V, [[nan, 0]], 0.1), ValueError, "x"),
    # norms
    ("norm-bad", lambda: as_norm("l0"), ValueError, "norm"),
    ("norm-p-small", lambda: as_norm(0.5), ValueError, "norm"),
    ("norm-nan", lambda: as_norm(nan), ValueError, "norm"),
    # transport, superposition
    ("winf-nan", lambda: winf(np.array([[nan, 0]]), MU), ValueError, "mu|points"),
    ("winf-dim", lambda: winf(np.zeros((2, 3)), MU), ValueError, "dimension"),
    ("winf-empty", lambda: winf(np.zeros((0, 2)), MU), ValueError, "mu|points"),
    ("winf-type", lambda: winf("a", MU), TypeError, "mu"),
    ("wass-p", lambda: wasserstein(MU, MU, p=0.5), ValueError, "p"),
    ("wass-p-nan", lambda: wasserstein(MU, MU, p=nan), ValueError, "p"),
    ("superpose-type", lambda: superpose("a"), TypeError, "FlowResult"),
    ("snap-times-len", lambda: superpose_snapshots([MU, MU], [0.0]), ValueError, "times"),
    ("snap-times-nan", lambda: superpose_snapshots([MU, MU], [0.0, nan]), ValueError, "times"),
    ("snap-empty", lambda: superpose_snapshots([], []), ValueError, "measures"),
    # adversarial
    ("fgsm-eps-nan", lambda: fgsm(MODEL, X, None, nan), ValueError, "eps"),
    ("fgsm-x-nan", lambda: fgsm(MODEL, [[nan, 0]], None, 0.1), ValueError, "x"),
    ("fgsm-x-dim", lambda: fgsm(MODEL, np.zeros((2, 3)), None, 0.1), ValueError, "x|dimension"),
    ("ifgsm-alpha-inf", lambda: ifgsm(MODEL, X, None, 0.1, inf, 3), ValueError, "alpha"),
    ("mma-steps-type", lambda: minmove_attack(MODEL, X, None, 0.1, 0.01, 2.5), TypeError, "steps"),
    ("dist-eps-neg", lambda: distributional_attack(MODEL, X, None, eps=-1, tau=0.01), ValueError, "eps"),
    ("wcl-grid-huge", lambda: worst_case_loss(MODEL, X, None, 0.1, grid=100000), MemoryError, "grid"),
    ("wcl-grid-1", lambda: worst_case_loss(MODEL, X, None, 0.1, grid=1), ValueError, "grid"),
    ("load-model-name", lambda: load_model("nope"), ValueError, "nope"),
    ("moons-n", lambda: make_two_moons(n=0), ValueError, "n"),
    ("moons-noise-nan", lambda: make_two_moons(n=10, noise=nan), ValueError, "noise"),
    ("moons-seed-neg", lambda: make_two_moons(n=10, seed=-1), ValueError, "seed"),
    ("mlp-predict-nan", lambda: MODEL.predict([[nan, 0]]), ValueError, "x|X"),
    # studies
    ("study-taus-empty", lambda: convergence_study(V, X, 1.0, []), ValueError, "taus"),
    ("study-taus-nan", lambda: convergence_study(V, X, 1.0, [0.1, nan]), ValueError, "taus"),
    ("sup-error-T", lambda: sup_error(RES, RES, nan), ValueError, "T must"),
    # memory knob
    ("memory-limit-word", lambda: memory.set_memory_limit("lots"), ValueError, "limit"),
    ("memory-limit-neg", lambda: memory.set_memory_limit(-5), ValueError, "limit"),
    ("memory-limit-type", lambda: memory.set_memory_limit([1]), TypeError, "limit"),
    # files
    ("save-into-dir", lambda: RES.save(ROOT), OSError, str(ROOT)),
    ("save-missing-parent", lambda: RES.save("/nonexistent-wflow-dir/r.npz"), OSError, "nonexistent-wflow-dir"),
    ("mlp-save-missing-parent", lambda: MODEL.save("/nonexistent-wflow-dir/m.npz"), OSError, "nonexistent-wflow-dir"),
    ("out-empty", lambda: wio.StagedOutput(""), OSError, "non-empty"),
    ("out-type", lambda: wio.StagedOutput(3.5), TypeError, "out"),
    ("out-root-dir", lambda: wio.check_output_dir("/"), OSError, "root directory /"),
    ("atomic-write-empty", lambda: wio.atomic_write("", lambda tmp: None), OSError, "path"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_the_table_covers_every_kind_of_bad_input():
    ids = " ".join(c[0] for c in CASES)
    for kind in ("nan", "inf", "empty", "shape", "type", "huge", "tiny", "dir", "neg"):
        assert kind in ids, kind


# --------------------------------------------------------------------------------------------
# values that used to be silent
# --------------------------------------------------------------------------------------------
def test_extreme_weights_normalize_to_the_right_measure():
    # 1e308 + 1e308 overflows; 5e-324 is the smallest subnormal: both must give (1/2, 1/2)
    for w in ([1e308, 1e308], [5e-324, 5e-324], [1e308, 3e307]):
        got = ParticleMeasure(np.eye(2), w, normalize=True).weights
        np.testing.assert_allclose(got, np.array(w) / np.array(w).max() / np.sum(np.array(w) / max(w)), rtol=1e-15)
        assert got.sum() == pytest.approx(1.0, abs=1e-15)


def test_constant_added_to_a_dimensionless_potential():
    W = P.FromCallables(lambda Z: Z[:, 0] ** 2) + 1.5
    Z = np.array([[2.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(W.value(Z), [5.5, 1.5])
    np.testing.assert_allclose(W.grad(Z), [[4.0, 0.0], [0.0, 0.0]], atol=1e-8)


def _nan_beyond_half():
    """V(x) = −x₁ for x₁ ≤ ½ and NaN beyond (gradient too): the flow runs into the NaN region."""
    return P.FromCallables(
        lambda Z: np.where(Z[:, 0] > 0.5, np.nan, -Z[:, 0]),
        lambda Z: np.where(Z[:, :1] > 0.5, np.nan, np.array([[-1.0, 0.0]]) + 0 * Z),
    )


@pytest.mark.parametrize("inner", ["local", "global"])
def test_minmove_names_the_step_and_particle_of_a_nan(inner):
    x0 = np.array([[-0.3, 0.0], [0.0, 0.0], [0.3, 0.0]])
    # particle 2 moves 0.1 per step (ℓ∞, slope 1): x₁ = 0.5 after 2 steps, the NaN region is
    # reached by the candidates of step 3
    with pytest.raises(ValueError, match=r"step 3 \(t = 0\.2 → 0\.3\), particle 2") as err:
        wflow.solve_flow(_nan_beyond_half(), x0, T=1.0, tau=0.1, scheme="minmove", inner=inner)
    assert "non-finite" in str(err.value)


def test_euler_reports_nan_gradients_and_nan_values():
    x0 = np.array([[0.0, 0.0]])
    with pytest.raises(ValueError, match="grad"):
        wflow.solve_flow(_nan_beyond_half(), x0, T=1.0, tau=0.1)
    # finite gradient, NaN value at the end: caught, naming the particle
    Vn = P.FromCallables(lambda Z: np.where(Z[:, 0] < -0.5, np.nan, Z[:, 0]), lambda Z: np.ones_like(Z))
    with pytest.raises(ValueError, match=r"potential.value is non-finite at the end .* particle 1"):
        wflow.solve_flow(Vn, np.array([[2.0, 0.0], [0.0, 0.0]]), T=1.0, tau=0.1)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_overflow_is_not_blamed_on_the_gradient():
    # ℓ2 steps of 1e306 from 1.7e308: the positions overflow, the gradient stays finite
    with pytest.raises(ValueError, match="overflowed"):
        wflow.solve_flow(P.Linear([-1.0, 0.0]), [[1.7e308, 0.0]], T=1e307, tau=1e306, norm="l2")


# --------------------------------------------------------------------------------------------
# JSON, memory
# --------------------------------------------------------------------------------------------
def _strict_json(text):
    def refuse(name):
        raise ValueError(f"invalid JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_valid_and_flags_nonfinite_numbers():
    data = {"energy": [1.0, nan, -inf], "ok": np.float64(2.5), "n": np.int64(3), "arr": np.array([inf]),
            "nested": {"slope": np.float32("nan")}}
    out = _strict_json(wio.json_dumps(data))
    assert out["energy"] == [1.0, None, None] and out["ok"] == 2.5 and out["n"] == 3 and out["arr"] == [None]
    assert out[wio.NONFINITE_KEY] == ["energy[1]", "energy[2]", "arr[0]", "nested.slope"]
    clean = _strict_json(wio.json_dumps({"a": 1.0}))
    assert wio.NONFINITE_KEY not in clean
    with pytest.raises(TypeError, match="obj"):
        wio.json_dumps({"obj": object()})


def test_flow_result_with_nan_energies_saves_valid_json(tmp_path):
    res = wflow.solve_flow(P.Linear([1.0, 0.0]), X, T=0.1, tau=0.05)
    res._cache["energies"] = np.full_like(res._per_time("value"), np.nan)  # as if V were NaN
    res.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as z:
        summary = _strict_json(str(z["summary"]))
    assert summary["energy_start"] is None and "energy_start" in summary[wio.NONFINITE_KEY]
    assert sorted(os.listdir(tmp_path)) == ["r.npz"]


@pytest.fixture
def small_memory_limit():
    previous = memory.set_memory_limit("1MiB")
    yield
    memory._limit = previous


def test_memory_limit_is_checked_before_allocating(small_memory_limit):
    # (101 stored times) x 1000 particles x (2 coordinates + 1 energy) x 8 bytes ≈ 2.4 MB > 1 MiB
    with pytest.raises(memory.MemoryLimitError, match=r"stride=.*set_memory_limit") as err:
        wflow.solve_flow(V, np.zeros((1000, 2)), T=1.0, tau=0.01)
    assert "2.34 MiB" in str(err.value) and isinstance(err.value, ValueError)
    res = wflow.solve_flow(V, np.zeros((1000, 2)), T=1.0, tau=0.01, stride=50)  # the knob works
    assert res.positions.shape == (3, 1000, 2)
    fig = Figure(figsize=(4, 3))
    with pytest.raises(memory.MemoryLimitError, match="dpi"):
        save_figure(fig, "never-written.png", dpi=1000)  # 4000 x 3000 px x 12 B
    assert not os.path.exists("never-written.png")


def test_flow_memory_estimate_matches_the_arrays():
    # stride 1: 11 stored times of (7, 3) positions + (7,) energies, and 4 grid arrays of 11
    est = wflow.flow.check_flow_memory(7, 3, 1.0, 0.1)
    assert est == 8 * (12 * 7 * 4 + 4 * 11)
    res = wflow.solve_flow(P.Linear([1.0, 0.0, 0.0]), np.zeros((7, 3)), T=1.0, tau=0.1)
    assert res.positions.nbytes + res.energies.nbytes <= est  # an upper bound of the stored arrays


def test_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.setattr(memory, "_limit", None)
    monkeypatch.setenv(memory.ENV_VAR, "2GiB")
    assert memory.memory_limit() == 2 * 2**30
    monkeypatch.setenv(memory.ENV_VAR, "none")
    assert memory.memory_limit() == math.inf
    monkeypatch.setenv(memory.ENV_VAR, "12 parsecs")
    with pytest.raises(ValueError, match=memory.ENV_VAR):
        memory.memory_limit()
    monkeypatch.delenv(memory.ENV_VAR)
    assert memory.memory_limit() == pytest.approx(memory.DEFAULT_FRACTION * memory.machine_memory())
    assert memory.parse_size("1.5 KiB") == 1536 and memory.parse_size(10) == 10


# --------------------------------------------------------------------------------------------
# files: atomic writes and staged directories
# --------------------------------------------------------------------------------------------
def _snapshot(root: Path) -> dict:
    """Every file under root (hidden ones too) with a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_atomic_write_uses_unique_temporaries_and_cleans_up(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    seen = []

    def inner(tmp):
        seen.append(tmp)
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    def outer(tmp):
        seen.append(tmp)
        with pytest.raises(RuntimeError):
            wio.atomic_write(target, inner)  # a second, concurrent save of the same path
        Path(tmp).write_bytes(b"new")

    wio.atomic_write(target, outer)
    assert seen[0] != seen[1] and all(os.path.dirname(s) == str(tmp_path) for s in seen)
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]
    with pytest.raises(KeyboardInterrupt):
        wio.atomic_write(target, lambda tmp: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert sorted(os.listdir(tmp_path)) == ["f.bin"] and target.read_bytes() == b"new"


@pytest.mark.parametrize("save", ["flow", "mlp"])
def test_saves_leave_nothing_when_the_rename_fails(tmp_path, monkeypatch, save):
    target = tmp_path / "x.npz"
    target.write_bytes(b"previous")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(wio.os, "replace", refuse)
    with pytest.raises(PermissionError):
        (RES if save == "flow" else MODEL).save(target)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["x.npz"] and target.read_bytes() == b"previous"


def test_staged_output_refuses_a_foreign_directory_and_replaces_its_own(tmp_path):
    out = tmp_path / "o"
    (out / "report.json").mkdir(parents=True)  # the trap: a directory named like an output
    (out / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    with pytest.raises(wio.OutputError, match=rf"{out}.*--overwrite"):
        with wio.StagedOutput(out) as st:
            st.write_text("report.json", "{}")
    assert _snapshot(tmp_path) == before
    # with overwrite: replaced as a whole
    with wio.StagedOutput(out, overwrite=True) as st:
        st.write_text("a.txt", "1")
        st.write_text("animation.gif", "old gif")
    assert sorted(os.listdir(out)) == [wio.MARKER, "a.txt", "animation.gif"]
    # a previous wflow run is replaced as a whole: no stale animation.gif next to new files
    with wio.StagedOutput(out) as st:
        st.write_text("a.txt", "2")
    assert sorted(os.listdir(out)) == [wio.MARKER, "a.txt"] and (out / "a.txt").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["o"]  # no staging or old directories left
    # an error inside the block leaves the previous run byte-for-byte
    before = _snapshot(tmp_path)
    with pytest.raises(RuntimeError):
        with wio.StagedOutput(out) as st:
            st.write_text("a.txt", "3")
            raise RuntimeError("boom")
    assert _snapshot(tmp_path) == before
    with pytest.raises(ValueError, match="name"):
        with wio.StagedOutput(out) as st:
            st.path("../escape.txt")


def test_output_path_problems_name_the_path(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(wio.OutputError, match=rf"{blocker}.*not a directory"):
        wio.check_output_dir(blocker)
    with pytest.raises(wio.OutputError, match=rf"{blocker} is not a directory"):
        wio.check_output_dir(blocker / "sub" / "out")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(wio.OutputError, match=rf"{link} is a symbolic link"):
        wio.check_output_dir(link)
    real_access = os.access
    monkeypatch.setattr(wio.os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(wio.OutputError, match=rf"{tmp_path} is not writable"):
        wio.check_output_dir(tmp_path / "out")


@pytest.fixture
def default_sigint():
    # Python's own SIGINT handler, whatever the runner was started with: a background job of a
    # non-interactive shell inherits SIGINT ignored, and an ignored signal is (correctly)
    # re-raised into nothing after the swap.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_signal_during_the_swap_is_deferred_until_the_swap_is_complete(tmp_path, monkeypatch, default_sigint):
    out = tmp_path / "o"
    with wio.StagedOutput(out) as st:
        st.write_text("a.txt", "1")
    real_rename = os.rename
    calls = []

    def rename_then_signal(src, dst):
        calls.append(dst)
        if len(calls) == 1:  # between moving the old run aside and moving the new one in
            signal.raise_signal(signal.SIGINT)
        real_rename(src, dst)

    monkeypatch.setattr(wio.os, "rename", rename_then_signal)
    with pytest.raises(KeyboardInterrupt):
        with wio.StagedOutput(out) as st:
            st.write_text("a.txt", "2")
    assert len(calls) == 2 and (out / "a.txt").read_text() == "2"  # complete, not half-swapped
    assert sorted(os.listdir(tmp_path)) == ["o"]


def test_a_swallowed_interruption_is_not_published(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        with wio.StagedOutput(out) as st:
            st.write_text("a.txt", "1")
            try:  # as when the handler's exception is raised inside a __del__ and ignored
                wio.interrupt_handler(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass
    assert os.listdir(tmp_path) == [] and wio.signals_received()[-1] == signal.SIGINT


def test_library_staged_output_cleans_up_on_sigterm(tmp_path):
    script = ("import sys, time\nfrom wflow.io import StagedOutput\n"
              "with StagedOutput(sys.argv[1]) as st:\n"
              "    st.write_text('a.txt', 'x')\n    print('ready', flush=True)\n    time.sleep(60)\n")
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert any(p.startswith(".wflow-stage-") for p in os.listdir(tmp_path))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Terminated" in err
    assert os.listdir(tmp_path) == []  # neither the output nor the staging directory


@pytest.mark.skipif(IS_ROOT, reason="root writes everywhere")
def test_unwritable_parent_is_found_before_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(wio.OutputError, match=f"{ro} is not writable"):
            wio.check_output_dir(ro / "out")
    finally:
        ro.chmod(0o700)


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------
GOOD = """
[potential]
kind = "linear"
a = [1.0, 0.0]
[initial]
kind = "points"
points = [[0.0, 0.0], [1.0, 1.0]]
[flow]
T = 0.2
tau = 0.05
[output]
figures = []
"""


def _config(tmp_path, text=GOOD, name="c.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert str(n) in err, (n, err)
    return err


def test_cli_occupied_output_is_refused_before_the_run_then_overwritten(tmp_path, capsys, monkeypatch):
    cfg = _config(tmp_path)
    out = tmp_path / "o"
    (out / "report.json").mkdir(parents=True)
    before = _snapshot(tmp_path)
    import wflow.app.run as run_module

    def no_run(*a, **k):
        raise AssertionError("the simulation must not start")

    monkeypatch.setattr(run_module, "solve_flow", no_run)
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    _one_line_error(capsys, out, "--overwrite")
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    assert main(["run", str(cfg), "--out", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == [wio.MARKER, "report.json", "report.md", "result.npz"]
    report = _strict_json((out / "report.json").read_text())
    assert report["all_passed"] is True
    # a second run into its own previous output: replaced, no leftovers
    (out / "animation.gif").write_bytes(b"stale")
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == [wio.MARKER, "report.json", "report.md", "result.npz"]
    assert sorted(os.listdir(tmp_path)) == ["c.toml", "o"]


@pytest.mark.parametrize("command", [["run", "CFG"], ["demo"], ["verify"]])
def test_cli_output_problems_exit_2_before_any_work(tmp_path, capsys, command):
    cfg = _config(tmp_path)
    argv = [str(cfg) if a == "CFG" else a for a in command]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    t0 = time.perf_counter()
    assert main([*argv, "--out", str(blocker / "out")]) == 2
    _one_line_error(capsys, blocker, "not a directory")
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", ""])
    assert exc.value.code == 2
    assert "non-empty" in capsys.readouterr().err
    occupied = tmp_path / "occ"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep")
    assert main([*argv, "--out", str(occupied)]) == 2
    _one_line_error(capsys, occupied)
    assert (occupied / "mine.txt").read_text() == "keep" and sorted(os.listdir(occupied)) == ["mine.txt"]
    assert time.perf_counter() - t0 < 10  # refused up front, not after a demo or a verify run


def test_cli_config_file_problems_exit_2(tmp_path, capsys):
    out = tmp_path / "o"
    (tmp_path / "dir.toml").mkdir()
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[flow]\n")
    for path, needle in [(tmp_path / "dir.toml", "is a directory"), (binary, "not UTF-8"),
                         (tmp_path / "missing.toml", "does not exist")]:
        assert main(["run", str(path), "--out", str(out)]) == 2
        _one_line_error(capsys, path, needle)
    assert not out.exists()


@pytest.mark.skipif(IS_ROOT, reason="root reads everything")
def test_cli_unreadable_config_exits_2(tmp_path, capsys):
    cfg = _config(tmp_path)
    cfg.chmod(0)
    try:
        assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
        _one_line_error(capsys, cfg, "cannot read")
    finally:
        cfg.chmod(0o600)


def test_cli_disk_error_while_writing_exits_2_and_keeps_the_previous_run(tmp_path, capsys, monkeypatch):
    cfg = _config(tmp_path)
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--out", str(out)]) == 0
    capsys.readouterr()
    before = _snapshot(tmp_path)
    import wflow.app.run as run_module

    def disk_full(report):
        raise OSError(28, "No space left on device", str(out / "report.md"))

    monkeypatch.setattr(run_module, "render_report_md", disk_full)
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    _one_line_error(capsys, out / "report.md", "No space left on device")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("edit, needle", [
    ('[initial]\nkind = "dataset"\nn = 100000\n', "initial.n"),
    ('[output]\ndpi = 100000\n', "output.dpi"),
    ('[initial]\nkind = "uniform"\nn = 1000000\n[flow]\nT = 1.0\ntau = 1e-5\n', "stride"),
])
def test_cli_settings_that_cannot_work_exit_2_before_the_run(tmp_path, capsys, edit, needle):
    text = '[potential]\nkind = "gaussian_mixture"\n' + edit
    if "[flow]" not in text:
        text += "[flow]\nT = 0.1\ntau = 0.05\n"
    cfg = _config(tmp_path, text)
    out = tmp_path / "o"
    t0 = time.perf_counter()
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    _one_line_error(capsys, needle)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["c.toml"]
    assert time.perf_counter() - t0 < 10


def test_cli_seed_must_be_non_negative(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--seed", "-1"])
    assert exc.value.code == 2 and "--seed" in capsys.readouterr().err


def test_load_config_dataset_larger_than_the_data(tmp_path):
    cfg = load_config(_config(tmp_path, '[initial]\nkind = "dataset"\nn = 5000\n[flow]\nT = 0.1\ntau = 0.05\n'))
    from wflow.app.config import build_initial

    with pytest.raises(ConfigError, match=r"initial.n = 5000 exceeds the \d+ points"):
        build_initial(cfg, 2)


SLOW = """
[potential]
kind = "gaussian_mixture"
[initial]
kind = "uniform"
n = 60
[flow]
T = 1.0
tau = 0.01
[output]
figures = ["animation"]
frames = 40
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("when", ["simulating", "writing"])
def test_interrupting_wflow_run_leaves_the_previous_output_byte_for_byte(tmp_path, sig, when):
    cfg = _config(tmp_path, SLOW)
    out = tmp_path / "o"
    out.mkdir()
    (out / wio.MARKER).write_text("{}\n")
    (out / "report.json").write_text('{"previous": true}\n')
    before = _snapshot(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, "-m", "wflow", "run", str(cfg), "--out", str(out)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("wflow run:")  # signal handlers are in place
    deadline = time.monotonic() + 60
    if when == "writing":  # wait for the staging directory: the animation is being written
        while time.monotonic() < deadline and proc.poll() is None and not any(
                p.startswith(".wflow-stage-") for p in os.listdir(tmp_path)):
            time.sleep(0.01)
    staged = any(p.startswith(".wflow-stage-") for p in os.listdir(tmp_path))
    alive = proc.poll() is None
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".")]
    assert leftovers == [], (proc.returncode, err)
    assert proc.returncode != 0 or not alive or not staged, "a signal during the writing was lost"
    if proc.returncode == 0:  # the run won the race: then the output is complete
        assert {"report.json", "result.npz", "animation.gif", wio.MARKER} <= set(os.listdir(out))
        return
    assert proc.returncode == 128 + sig, err
    assert _snapshot(out) == before
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err
    assert "Traceback" not in err


def test_dense_cost_matrices_are_estimated_before_allocating(small_memory_limit):
    # 400 x 400 x 8 B = 1.22 MiB > 1 MiB: refused with the estimate and the knob, nothing allocated
    X = np.random.default_rng(0).normal(size=(400, 2))
    with pytest.raises(memory.MemoryLimitError, match=r"400×400 cost matrix would need about 1\.22 MiB.*winf"):
        wflow.transport.cost_matrix(X, X + 1.0)
    with pytest.raises(memory.MemoryLimitError, match="cost matrix"):
        wflow.wasserstein(X, X + 1.0, p=2)
    # below the limit the same call runs and is exact: a translate by (1, 1) costs √2 in ℓ2
    assert wflow.wasserstein(X[:300], X[:300] + 1.0, p=2) == pytest.approx(np.sqrt(2), rel=1e-12)

"""Exact W∞ (wflow.winf) side by side with POT's exact W1 (ot.emd2), d = 2, uniform, ℓ∞ cost.

Cases (issue 3, Performance):

* Gaussian clouds N(0, I) and N(0, I) + 0.3 (both coordinates), n = 5000: winf vs POT;
* the same at n = 20000: winf alone (POT would need a 3.2 GB cost matrix), time and peak RSS;
* adversarial: x ~ U[0,1]², y = x³ componentwise, shuffled, n = 2000 (the nearest-neighbour
  lower bound ≈ 0.03 is far from W∞ ≈ 0.385): winf vs POT; plus two harder variants that
  break the axis-aligned product structure (ℓ2 ground norm; both clouds rotated by 0.5 rad);
* general weights: random weights, n = 2000 vs m = 1500 Gaussian shift: winf vs POT;
* 1-D, n = 10⁶ (random weights both sides), against sorting both samples (np.sort);
* optimal_coupling between two nearby snapshots (n = 2000, every point moved by ±0.01);
* issue 13 (transport at scale): d = 64, n = 2000 perturbed copy (N(0, I) + 0.01 N(0, I),
  shuffled) vs POT; d = 784, n = 5000 (U[0,1]^784 + U(±0.03), shuffled) and d = 50,
  n = 2·10⁴ (perturbed copy) alone; general weights n = m = 5000 alone (``--weights-rss``: that
  case alone in a fresh process, with its peak RSS).

POT's time includes building its cost matrix (wflow.transport.cost_matrix, ℓ∞) and uses
numItermax = 10⁸ (result code checked: optimal). Runs alternate between the two sides and are
repeated; medians are reported.

``--only 1d`` runs the 1-D row alone (same data as in the full run) and prints every call's
time: the first is the process's cold call (fresh memory pages). ``--ref COMMIT`` adds the
``wflow`` package of an earlier commit (``git archive``, imported as ``wflow_ref``) to that
row, alternating with this checkout in the same process, and asserts that value and coupling
are bit for bit the same.

    python benchmarks/bench_transport.py [--repeats 3] [--big 20000] [--d50 20000]
    python benchmarks/bench_transport.py --weights-rss
    python benchmarks/bench_transport.py --only 1d [--repeats 5] [--ref COMMIT]
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import ot

from wflow.transport import cost_matrix, optimal_coupling, winf

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_ref(ref: str, tmp: pathlib.Path):
    """``solve_winf`` of the ``wflow`` package of commit ``ref`` (imported as ``wflow_ref``)."""
    archive = subprocess.run(["git", "archive", ref, "wflow"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "wflow").rename(tmp / "wflow_ref")
    sys.path.insert(0, str(tmp))
    return importlib.import_module("wflow_ref.transport").solve_winf, importlib.import_module("wflow_ref.measures")


def one_d(args, rng):
    """The 1-D row alone: every call's time (the first is cold), optionally against ``--ref``."""
    from wflow.measures import ParticleMeasure
    from wflow.transport import solve_winf

    n1 = 1_000_000
    x, y = rng.standard_normal((n1, 1)), rng.standard_normal((n1, 1)) + 0.1
    wx, wy = rng.random(n1), rng.random(n1)
    mu, nu = ParticleMeasure(x, wx, normalize=True), ParticleMeasure(y, wy, normalize=True)
    sides = {"this checkout": lambda: solve_winf(mu, nu)}
    if args.ref:
        tmp = tempfile.TemporaryDirectory()
        ref_solve, ref_measures = load_ref(args.ref, pathlib.Path(tmp.name))
        rmu = ref_measures.ParticleMeasure(x, wx, normalize=True)
        rnu = ref_measures.ParticleMeasure(y, wy, normalize=True)
        sides[f"ref {args.ref}"] = lambda: ref_solve(rmu, rnu)
    times = {k: [] for k in sides}
    out = {}
    for _ in range(args.repeats):
        for k, f in sides.items():
            t, out[k] = timed(f)
            times[k].append(t)
    tb = [timed(lambda: (np.sort(x[:, 0]), np.sort(y[:, 0])))[0] for _ in range(args.repeats)]
    res = out["this checkout"]
    for k, r in out.items():  # bit for bit: value and coupling
        c, c0 = r.coupling, res.coupling
        same = r.value == res.value and all(np.array_equal(u, v) for u, v in
                                            ((c.rows, c0.rows), (c.cols, c0.cols), (c.mass, c0.mass)))
        assert same, f"{k}: result differs from this checkout"
    print(f"1-D weighted, n=10⁶, W∞ = {res.value!r}, {res.coupling.nnz} plan entries; "
          f"np.sort of both: median {statistics.median(tb):.3f} s")
    for k, ts in times.items():
        print(f"  {k}: calls {' '.join(f'{t:.3f}' for t in ts)} s (first: cold); "
              f"median of the rest {statistics.median(ts[1:] or ts):.3f} s")
    if args.ref:
        print("  value and coupling identical bit for bit")


def pot_w1(X, Y, norm="linf"):
    C = cost_matrix(X, Y, norm)
    a = np.full(len(X), 1.0 / len(X))
    b = np.full(len(Y), 1.0 / len(Y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a non-optimal POT result must not pass unnoticed
        v, log = ot.emd2(a, b, C, numItermax=10**8, log=True)
    assert log["result_code"] == 1, log
    return float(v)


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def side_by_side(ours, base, repeats):
    to, tb = [], []
    for _ in range(repeats):
        t, vo = timed(ours)
        to.append(t)
        t, vb = timed(base)
        tb.append(t)
    return statistics.median(to), statistics.median(tb), vo, vb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", type=int, default=20000)
    ap.add_argument("--d50", type=int, default=20000, help="n of the d = 50 case")
    ap.add_argument("--weights-rss", action="store_true",
                    help="only the general-weights case n = 5000, then print the peak RSS")
    ap.add_argument("--only", choices=["1d"], help="run one row alone: 1d = 1-D weighted, n = 10⁶")
    ap.add_argument("--ref", help="with --only 1d: also time this git commit's wflow (same process)")
    args = ap.parse_args(argv)
    if args.ref and args.only != "1d":
        ap.error("--ref needs --only 1d")
    rng = np.random.default_rng(0)
    rows = []
    if args.only == "1d":
        # the draws of the rows before the 1-D one, so that its data are those of a full run
        rng.standard_normal((5000, 2)), rng.standard_normal((5000, 2))
        rng.standard_normal((args.big, 2)), rng.standard_normal((args.big, 2))
        rng.random((2000, 2)), rng.permutation(2000)
        rng.standard_normal((2000, 2)), rng.standard_normal((1500, 2)), rng.random(2000), rng.random(1500)
        one_d(args, rng)
        return
    if args.weights_rss:
        from wflow.measures import ParticleMeasure as PMw

        n = 5000
        Xg, Yg = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)) + 0.3
        mug, nug = PMw(Xg, rng.random(n), normalize=True), PMw(Yg, rng.random(n), normalize=True)
        t, v = timed(lambda: winf(mug, nug))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"general weights n=5000: {t:.2f} s, W∞ = {v!r}, peak RSS of the process {rss:.0f} MB")
        return

    # Gaussian, n = 5000
    n = 5000
    X, Y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)) + 0.3
    to, tb, vo, vb = side_by_side(lambda: winf(X, Y), lambda: pot_w1(X, Y), args.repeats)
    rows.append(("Gaussian shift 0.3, n=5000", to, tb, vo, vb, "≤ 0.5"))

    # Gaussian, big n: winf only
    nb = args.big
    Xb, Yb = rng.standard_normal((nb, 2)), rng.standard_normal((nb, 2)) + 0.3
    tbig = []
    for _ in range(args.repeats):
        t, vbig = timed(lambda: winf(Xb, Yb))
        tbig.append(t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    rows.append((f"Gaussian shift 0.3, n={nb}", statistics.median(tbig), float("nan"), vbig, float("nan"),
                 f"< 60 s (peak RSS of the whole run {rss:.2f} GB)"))

    # adversarial
    n = 2000
    U = rng.random((n, 2))
    V = (U**3)[rng.permutation(n)]
    to, tb, vo, vb = side_by_side(lambda: winf(U, V), lambda: pot_w1(U, V), args.repeats)
    rows.append(("adversarial x~U², y=x³ shuffled, n=2000", to, tb, vo, vb, "≤ 1"))
    to, tb, vo, vb = side_by_side(lambda: winf(U, V, "l2"), lambda: pot_w1(U, V, "l2"), args.repeats)
    rows.append(("  same, ℓ2 ground norm", to, tb, vo, vb, "(harder variant)"))
    R = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
    Ur, Vr = U @ R, V @ R
    to, tb, vo, vb = side_by_side(lambda: winf(Ur, Vr), lambda: pot_w1(Ur, Vr), args.repeats)
    rows.append(("  same, both rotated 0.5 rad", to, tb, vo, vb, "(harder variant)"))

    # general weights, n = 2000 vs 1500 (random weights, Gaussian shift)
    from wflow.measures import ParticleMeasure as PM

    Xw, Yw = rng.standard_normal((2000, 2)), rng.standard_normal((1500, 2)) + 0.3
    muw, nuw = PM(Xw, rng.random(2000), normalize=True), PM(Yw, rng.random(1500), normalize=True)

    def pot_weighted():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            v, log = ot.emd2(muw.weights, nuw.weights, cost_matrix(Xw, Yw, "linf"), numItermax=10**8, log=True)
        assert log["result_code"] == 1
        return float(v)

    to, tb, vo, vb = side_by_side(lambda: winf(muw, nuw), pot_weighted, args.repeats)
    rows.append(("random weights, n=2000 vs m=1500", to, tb, vo, vb, "(no target)"))

    # 1-D, n = 10⁶, weighted
    n1 = 1_000_000
    x, y = rng.standard_normal((n1, 1)), rng.standard_normal((n1, 1)) + 0.1
    from wflow.measures import ParticleMeasure

    wx, wy = rng.random(n1), rng.random(n1)
    mu, nu = ParticleMeasure(x, wx, normalize=True), ParticleMeasure(y, wy, normalize=True)
    to, tb, vo, _ = side_by_side(lambda: winf(mu, nu), lambda: (np.sort(x[:, 0]), np.sort(y[:, 0])), args.repeats)
    rows.append(("1-D weighted, n=10⁶ (baseline: np.sort of both)", to, tb, vo, float("nan"), "< 1 s"))

    # optimal coupling of nearby snapshots
    n = 2000
    P = rng.standard_normal((n, 2))
    Q = (P + 0.01 * np.sign(rng.standard_normal((n, 2))))[rng.permutation(n)]
    to, tb, c, vb = side_by_side(lambda: optimal_coupling(P, Q), lambda: pot_w1(P, Q), args.repeats)
    rows.append(("optimal_coupling, nearby snapshots n=2000", to, tb, c.value, vb, "< 0.2 s"))

    # ---- issue 13: high dimension (BLAS blocks), perturbed copies, ℓ∞
    n, d = 2000, 64
    Xh = rng.standard_normal((n, d))
    Yh = (Xh + 0.01 * rng.standard_normal((n, d)))[rng.permutation(n)]
    to, tb, vo, vb = side_by_side(lambda: winf(Xh, Yh), lambda: pot_w1(Xh, Yh), args.repeats)
    rows.append(("d=64 perturbed copy (σ=0.01, shuffled), n=2000", to, tb, vo, vb, "≤ 0.5"))
    n, d = 5000, 784
    Xm = rng.random((n, d))
    Ym = (Xm + rng.uniform(-0.03, 0.03, (n, d)))[rng.permutation(n)]
    t784, v784 = timed(lambda: winf(Xm, Ym))
    rows.append(("d=784 U[0,1] + U(±0.03), shuffled, n=5000", t784, float("nan"), v784, float("nan"), "< 10 s"))
    n, d = args.d50, 50
    X5 = rng.standard_normal((n, d))
    Y5 = (X5 + 0.01 * rng.standard_normal((n, d)))[rng.permutation(n)]
    t50, v50 = timed(lambda: winf(X5, Y5))
    rows.append((f"d=50 perturbed copy, n={n}", t50, float("nan"), v50, float("nan"), "< 30 s"))
    # ---- issue 13: general weights without an n×m matrix (peak RSS measured separately)
    n = 5000
    Xg, Yg = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)) + 0.3
    mug = PM(Xg, rng.random(n), normalize=True)
    nug = PM(Yg, rng.random(n), normalize=True)
    tg, vg = timed(lambda: winf(mug, nug))
    rows.append(("random weights, n=m=5000 (Gaussian shift 0.3)", tg, float("nan"), vg, float("nan"),
                 "< 10 s, < 500 MB (see --weights-rss)"))

    print(f"repeats: {args.repeats} (medians)\n")
    print("| case | wflow (s) | POT emd2 W1 (s) | ratio | W∞ | W1 (POT) | target |")
    print("|---|---|---|---|---|---|---|")
    for name, to, tb, vo, vb, target in rows:
        ratio = to / tb if np.isfinite(tb) else float("nan")
        tbs = f"{tb:.3f}" if np.isfinite(tb) else "—"
        rs = f"{ratio:.2f}" if np.isfinite(ratio) else "—"
        vbs = f"{vb:.6f}" if np.isfinite(vb) else "—"
        print(f"| {name} | {to:.3f} | {tbs} | {rs} | {vo:.6f} | {vbs} | {target} |")


if __name__ == "__main__":
    main()

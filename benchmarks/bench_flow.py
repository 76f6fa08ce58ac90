"""Sign-gradient flow throughput: wflow.solve_flow vs the straightforward numpy loop.

Quadratic potential in d = 2, 10⁶ particles × 50 steps, full trajectory kept (51 × 10⁶ × 2
float64 = 816 MB). Both sides allocate their trajectory inside the timed region. Runs are
interleaved and repeated; the median is reported.

    python benchmarks/bench_flow.py [--n 1000000] [--steps 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import wflow
from wflow.potentials import Quadratic


def naive(x, A, tau, steps):
    traj = np.empty((steps + 1,) + x.shape)
    traj[0] = x
    for k in range(steps):
        x = x - tau * np.sign(x @ A)
        traj[k + 1] = x
    return traj


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    V = Quadratic(A)
    x = np.random.default_rng(0).standard_normal((args.n, 2))
    tau = 0.01
    T = args.steps * tau
    try:  # BLAS threads spin under contention and make the baseline erratic: pin them to 1
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        blas = "BLAS pinned to 1 thread"
    except ImportError:
        blas = "BLAS threads not pinned (threadpoolctl missing)"
    runs = {
        "numpy loop (baseline)": lambda: naive(x, A, tau, args.steps),
        "solve_flow, 1 thread": lambda: wflow.solve_flow(V, x, T, tau, workers=1).positions,
        "solve_flow, default (2 threads)": lambda: wflow.solve_flow(V, x, T, tau).positions,
    }
    times = {k: [] for k in runs}
    ref = None
    for _ in range(args.repeats):
        for name, f in runs.items():
            t0 = time.perf_counter()
            out = f()
            times[name].append(time.perf_counter() - t0)
            if ref is None:
                ref = out
            else:
                assert np.array_equal(out, ref), "results differ from the baseline"
            del out
    base = statistics.median(times["numpy loop (baseline)"])
    ps = args.n * args.steps
    print(f"n = {args.n}, steps = {args.steps}, d = 2, trajectory kept; median of {args.repeats}; {blas}\n")
    print("| method | median time (s) | particle-steps / s | speed-up vs numpy loop |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {ps / m:.3g} | {base / m:.2f}× |")
    # bounded memory: keep every 10th time only
    t0 = time.perf_counter()
    r = wflow.solve_flow(V, x, T, tau, stride=10)
    dt = time.perf_counter() - t0
    print(f"\nstride=10: {r.positions.nbytes / 2**20:.0f} MiB kept (vs {ref.nbytes / 2**20:.0f} MiB), {dt:.3f} s")


if __name__ == "__main__":
    main()

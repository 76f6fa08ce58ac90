"""Two block workers on a float32 IFGSM: the GIL, and the numba engine's whole-block kernel.

    python benchmarks/bench_workers.py [--n 100000] [--steps 20] [--repeats 3]

1. ``ifgsm`` on the shipped two-moons models in float32 with ``workers=1`` and ``workers=2``
   (BLAS pinned to one thread), alternating, ``--repeats`` runs each, for each kernel engine:
   ``numba`` (one nogil call per 1024-row block for the whole forward/backward pass) and
   ``numpy`` (about 30 numpy calls per block). Prints the medians and workers=1 / workers=2.
2. Two threads each doing float32 ``multiply`` + ``add`` on (rows, 20) arrays vs the same work
   serially, for rows = 1024 (the MLP's block), 8192 and 65536: the ratio threaded / serial —
   why the numpy engine's short calls do not run in parallel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wflow.adversarial import ifgsm, load_model  # noqa: E402
from wflow.adversarial.data import make_two_moons  # noqa: E402
from wflow.adversarial.mlp import kernel_engine  # noqa: E402


def _ufunc_work(rows: int, elements: float = 2e7) -> None:
    a = np.random.default_rng(0).random((rows, 20), dtype=np.float32)
    o = np.empty_like(a)
    for _ in range(int(elements / (rows * 20)) * 20):
        np.multiply(a, 1.0001, out=o)
        np.add(o, a, out=o)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}")
    X, _ = make_two_moons(args.n, 0.15, seed=123)
    engines = ["numba", "numpy"] if kernel_engine() == "numba" else ["numpy"]
    for engine in engines:
        kernel_engine(engine)
        for name in ("two_moons_relu", "two_moons_gelu"):
            m = load_model(name).astype(np.float32)
            ifgsm(m, X[:2000], None, 0.1, 0.005, 2)  # warm-up (kernels, workspaces)
            times: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for w in (1, 2):
                    with threadpool_limits(1):
                        t = time.perf_counter()
                        ifgsm(m, X, None, 0.1, 0.1 / args.steps, args.steps, workers=w)
                        times[w].append(round(time.perf_counter() - t, 3))
            med = {w: statistics.median(v) for w, v in times.items()}
            print(f"{engine} engine, {name} float32, {args.n} points × {args.steps} steps: workers=1 {times[1]} s, "
                  f"workers=2 {times[2]} s; median speed-up {med[1] / med[2]:.2f}×")
    kernel_engine("auto")
    for rows in (1024, 8192, 65536):
        t = time.perf_counter()
        _ufunc_work(rows)
        _ufunc_work(rows)
        serial = time.perf_counter() - t
        t = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(_ufunc_work, [rows, rows]))
        threaded = time.perf_counter() - t
        print(f"multiply+add on ({rows}, 20) float32, two threads / serial: {threaded / serial:.2f} "
              f"({threaded:.3f} s vs {serial:.3f} s)")
    print(f"load average after the run: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

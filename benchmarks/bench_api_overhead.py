"""Per-step overhead of the flow solver: this checkout against an earlier commit, side by side.

The reference commit's ``wflow`` package is extracted with ``git archive`` into a temporary
directory and imported as ``wflow_ref`` in the same process, so both versions run interleaved on
the same data (medians of ``--repeats`` alternating runs, BLAS pinned to one thread). Cases are
chosen where Python-level overhead per step shows (100 particles × 2000 steps) plus one large
ensemble; trajectories are asserted identical.

    python benchmarks/bench_api_overhead.py --ref 791de6f [--repeats 11]
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_ref(ref: str, tmp: pathlib.Path):
    """Import the ``wflow`` package of commit ``ref`` as ``wflow_ref``."""
    archive = subprocess.run(["git", "archive", ref, "wflow"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "wflow").rename(tmp / "wflow_ref")
    schemes = tmp / "wflow_ref" / "schemes.py"  # older versions name minmove by a string
    schemes.write_text(schemes.read_text().replace('"wflow.minmove:', '"wflow_ref.minmove:'))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("wflow_ref.flow"), importlib.import_module("wflow_ref.potentials")


def cases(flow, pots, xs, xb):
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    V, G = pots.Quadratic(A), pots.GaussianMixture.default()
    return {
        "linf, n=100, K=2000": lambda: flow.solve_flow(V, xs, 20.0, 0.01, workers=1),
        "linf + budget, n=100, K=2000": lambda: flow.solve_flow(V, xs, 20.0, 0.01, budget=0.5, workers=1),
        "l2, n=100, K=2000": lambda: flow.solve_flow(V, xs, 20.0, 0.01, norm="l2", workers=1),
        "linf, n=2e5, K=50": lambda: flow.solve_flow(V, xb, 0.5, 0.01, workers=1),
        "minmove (mixture), n=100, K=20": lambda: flow.solve_flow(G, xs, 1.0, 0.05, scheme="minmove", workers=1),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="791de6f", help="git commit to compare against")
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    sys.path.insert(0, str(ROOT))
    import wflow.flow as new_flow
    import wflow.potentials as new_pots

    with tempfile.TemporaryDirectory() as tmp:
        ref_flow, ref_pots = load_ref(args.ref, pathlib.Path(tmp))
        rng = np.random.default_rng(0)
        xs, xb = rng.standard_normal((100, 2)), rng.standard_normal((200_000, 2))
        old, new = cases(ref_flow, ref_pots, xs, xb), cases(new_flow, new_pots, xs, xb)
        print(f"| case | {args.ref} (s) | this checkout (s) | ratio new/ref |")
        print("|---|---|---|---|")
        for name in old:
            np.testing.assert_array_equal(old[name]().positions, new[name]().positions)
            to, tn = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                old[name]()
                to.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                new[name]()
                tn.append(time.perf_counter() - t0)
            mo, mn = statistics.median(to), statistics.median(tn)
            print(f"| {name} | {mo:.4f} | {mn:.4f} | {mn / mo:.2f} |")


if __name__ == "__main__":
    main()

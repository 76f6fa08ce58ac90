"""Activation kernels of one (1024, 20) block: the numpy pass chain vs the numba engine.

    python benchmarks/bench_kernels.py [--repeats 3000]

Times a and a′ with the bias add (what ``MLP._block_forward`` does per hidden layer) for GELU
and ReLU in float32/float64; minimum over 7 rounds of ``--repeats`` calls, engines
interleaved. Needs numba (a dependency of wflow; ``pip install numba``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wflow.adversarial.mlp import _act_and_deriv_inplace, _gelu32  # noqa: E402


def best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t) / repeats)
    return best * 1e6


def measure(nb, dt, rng, repeats: int) -> list[str]:
    h = rng.normal(size=(1024, 20)).astype(dt)
    s, d, t, q = (np.empty_like(h) for _ in range(4))
    b = np.tile(rng.normal(size=20).astype(dt), 1024)
    sf, df = s.reshape(-1), d.reshape(-1)
    copy = best_time(lambda: np.copyto(s, h), repeats)  # subtracted: every call resets s first
    cases = {"ReLU": (lambda: (np.copyto(s, h), sf.__iadd__(b), np.multiply(s, np.greater(s, 0.0, out=d), out=s)),
                      lambda: (np.copyto(s, h), nb.bias_relu(sf, b, df)))}
    if dt == np.float32:
        cases["GELU"] = (lambda: (np.copyto(s, h), sf.__iadd__(b), _gelu32(s, d, t, q)),
                         lambda: (np.copyto(s, h), nb.bias_gelu32(sf, b, df)))
    else:  # numpy engine: scipy.special.ndtr + exp; numba: Cody's erfc, fused
        ws: dict = {}
        cases["GELU"] = (lambda: (np.copyto(s, h), sf.__iadd__(b), _act_and_deriv_inplace("gelu", s, d, ws)),
                         lambda: (np.copyto(s, h), nb.bias_gelu64(sf, b, df)))
    rows = []
    for name, (f_np, f_nb) in cases.items():
        f_nb()  # compile
        a, c = best_time(f_np, repeats) - copy, best_time(f_nb, repeats) - copy
        rows.append(f"| bias + {name} + a′, {dt.name} | {a:.1f} | {c:.1f} | {a / c:.1f}× |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3000)
    args = ap.parse_args(argv)
    try:
        from wflow.adversarial import _numba as nb
    except ImportError:
        print('numba is not installed: pip install numba')
        return 1
    print(f"load average {os.getloadavg()}; numpy {np.__version__}")
    rng = np.random.default_rng(0)
    rows = ["| kernel | numpy (µs) | numba (µs) | factor |", "|---|---:|---:|---:|"]
    for dt in (np.float32, np.float64):
        rows += measure(nb, np.dtype(dt), rng, args.repeats)
    print("\n".join(rows))
    print(f"load average after the run: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

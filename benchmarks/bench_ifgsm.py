"""IFGSM on a shipped two-moons classifier: numpy (wflow) vs batched PyTorch vs one point at a time.

    python benchmarks/bench_ifgsm.py [--n 100000] [--steps 100] [--repeats 3] [--single 100]
                                     [--models two_moons_relu two_moons_gelu] [--threads 1 2]

All three run the same attack: ℓ = squared error of the sigmoid output to the label predicted at
the clean input, x_{k+1} = clip(x_k + α sign ∇ℓ(x_k), x − ε, x + ε), ε = 0.1, α = ε/steps.

- ``numpy``: ``wflow.adversarial.ifgsm`` with the default kernel engine (numba when installed,
  ``WFLOW_KERNELS=numpy`` for the pure-numpy path; printed in the header), storing only the
  final positions (``stride=steps``), on the float64 model and on
  ``model.astype(numpy.float32)``; with T threads it runs T block
  workers (``workers=T``) with single-threaded BLAS (threadpoolctl), so the cores are not
  oversubscribed;
- ``torch batched``: the same loop written in PyTorch on the CPU over all points at once
  (``mlp_to_torch`` of the same weights; float64 as numpy, and float32);
- ``torch one at a time``: the loop run for each point separately with batch size 1, as the
  paper's published code attacks points. It is timed on ``--single`` points and extrapolated
  linearly to n (its cost is per point; stated in the output).

Each batched variant is timed ``--repeats`` times side by side (interleaved) and the median is
reported; the float64 torch result is compared with numpy's (max |Δ|), and float32 wflow with
float32 torch (fraction of coordinates within 1e-5). Prints a markdown table with the ratios
wflow / torch at equal precision and thread count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wflow.adversarial import ifgsm, load_model, load_two_moons, make_two_moons  # noqa: E402

EPS = 0.1


def torch_ifgsm(net, X, y, eps, alpha, steps, dtype):
    import torch

    x0 = torch.as_tensor(X, dtype=dtype)
    t = torch.as_tensor(y, dtype=dtype)
    lo, hi = x0 - eps, x0 + eps
    x = x0.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        loss = ((net(x)[:, 0] - t) ** 2).sum()
        (g,) = torch.autograd.grad(loss, x)
        x = torch.clamp(x.detach() + alpha * g.sign(), lo, hi)
    return x.detach().numpy()


def torch_one_at_a_time(net, X, y, eps, alpha, steps, dtype):
    out = np.empty_like(X)
    for i in range(len(X)):
        out[i] = torch_ifgsm(net, X[i:i + 1], y[i:i + 1], eps, alpha, steps, dtype)[0]
    return out


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--single", type=int, default=100, help="points timed one at a time (extrapolated)")
    ap.add_argument("--models", nargs="+", default=["two_moons_relu", "two_moons_gelu"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1],
                    help="thread counts: torch intra-op threads, and wflow block workers (BLAS pinned to 1)")
    ap.add_argument("--no-single", action="store_true", help="skip the one-at-a-time baseline")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch==2.13.0 (CPU build) to run this benchmark")
        return 1
    from threadpoolctl import threadpool_limits

    from wflow.adversarial import mlp_to_torch

    D = load_two_moons()
    X, _ = make_two_moons(args.n, 0.15, seed=123)  # n points from the data distribution
    n, steps, alpha = args.n, args.steps, EPS / args.steps
    from wflow.adversarial.mlp import kernel_engine

    print(f"IFGSM, n = {n} points, {steps} steps, ε = {EPS}, α = ε/{steps}; "
          f"torch {torch.__version__}; numpy {np.__version__}; wflow kernel engine {kernel_engine()}; "
          f"load average {os.getloadavg()}\n")
    rows = ["| model | variant | time (s), median | per point-step (ns) | wflow / torch (same dtype, threads) |",
            "|---|---|---|---|---|"]
    default_threads = torch.get_num_threads()
    for name in args.models:
        m = load_model(name)
        assert m.accuracy(D["X_test"], D["y_test"]) >= 0.97
        m32 = m.astype(np.float32)
        y = m.predict(X).astype(float)
        nets = {"float64": mlp_to_torch(m, torch.float64), "float32": mlp_to_torch(m, torch.float32)}

        def run_numpy(model, th):
            with threadpool_limits(1):
                return ifgsm(model, X, None, EPS, alpha, steps, workers=th).x_adv

        def run_torch(dt, th, y=y, nets=nets):
            torch.set_num_threads(th)
            try:
                return torch_ifgsm(nets[dt], X, y, EPS, alpha, steps, getattr(torch, dt))
            finally:
                torch.set_num_threads(default_threads)

        variants = {}
        for th in args.threads:
            for dt, model in (("float64", m), ("float32", m32)):
                variants[("wflow", dt, th)] = lambda model=model, th=th: run_numpy(model, th)
                variants[("torch", dt, th)] = lambda dt=dt, th=th: run_torch(dt, th)
        # warm-up (allocator, lazy initialization) on a small problem, untimed
        for dt, net in nets.items():
            torch_ifgsm(net, X[:1000], y[:1000], EPS, alpha, 2, getattr(torch, dt))
        ifgsm(m, X[:1000], None, EPS, alpha, 2)
        ifgsm(m32, X[:1000], None, EPS, alpha, 2)  # (results: AttackResult; .x_adv above)
        times = {key: [] for key in variants}
        res = {}
        for _ in range(args.repeats):  # interleaved, so load changes hit all variants alike
            for key, fn in variants.items():
                dt_, res[key] = timed(fn)
                times[key].append(dt_)
        k = min(args.single, n)
        dt_single = np.nan
        if not args.no_single:
            torch.set_num_threads(1)  # one point per call: threads only add overhead
            dt_single, _ = timed(lambda k=k, y=y, nets=nets: torch_one_at_a_time(
                nets["float32"], X[:k], y[:k], EPS, alpha, steps, torch.float32))
            torch.set_num_threads(default_threads)
        med = {key: statistics.median(v) for key, v in times.items()}
        pps = 1e9 / (n * steps)
        th0 = args.threads[0]
        diff64 = np.abs(res[("wflow", "float64", th0)] - res[("torch", "float64", th0)]).max()
        a32, t32 = res[("wflow", "float32", th0)], res[("torch", "float32", th0)]
        agree32 = np.mean(np.abs(a32 - t32) <= 1e-5)
        for key in variants:
            lib, dt, th = key
            label = f"{'wflow ifgsm' if lib == 'wflow' else 'torch batched'}, {dt}, {th} thread{'s' * (th > 1)}"
            ratio = f"{med[key] / med[('torch', dt, th)]:.2f}" if lib == "wflow" else ""
            rows.append(f"| {name} | {label} | {med[key]:.2f} | {med[key] * pps:.0f} | {ratio} |")
        if not args.no_single:
            est = dt_single * n / k
            rows.append(f"| {name} | torch one point at a time, float32, 1 thread ({k} points timed, "
                        f"×{n / k:g} extrapolated) | {est:.0f} | {est * pps:.0f} | |")
        print(f"{name}: all runs (s): " + "; ".join(f"{'/'.join(map(str, k_))}: {[round(t, 2) for t in v]}"
                                                  for k_, v in times.items())
              + f"; one at a time, {k} points: {dt_single:.2f} s; max |wflow − torch| float64 = {diff64:.1e}; "
              f"float32 coordinates within 1e-5 of torch float32: {agree32:.4f}")
    print()
    print("\n".join(rows))
    print(f"\nload average after the run: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One training epoch on the digits data: wflow (numpy, float32/float64) vs the same loop in PyTorch.

    python benchmarks/bench_train.py [--repeats 3] [--threads 1 2] [--activations relu gelu]
                                     [--eps 0.1] [--steps 10] [--batch-size 64]

Data: scikit-learn's 8×8 digits, pixels / 16 ∈ [0, 1], the seeded stratified 75 % train split
(1347 images, d = 64, 10 classes); model 64 → 64 → 64 → 10 (He init, seed 0), softmax
cross-entropy, Adam (lr 1e-2), mini-batches of 64, one epoch, shuffling seeded.

- ``adversarial_train``: ``wflow.adversarial.adversarial_train(inner="flow")`` — every batch is
  attacked by the ∞-flow of −ℓ to t = ε (``steps`` sign steps of τ = ε/steps from the clean
  batch, clipped to the ε-box), then one Adam step at the attacked batch. The torch loop does
  exactly that with autograd input gradients and ``torch.optim.Adam``.
- ``train``: plain ``wflow.adversarial.train`` vs a torch loop (forward, backward, Adam).

wflow runs with single-threaded BLAS (threadpoolctl); torch with 1 or 2 intra-op threads.
Variants are interleaved ``--repeats`` times; medians; a markdown table with wflow / torch
float32 ratios. Skips ``adversarial_train`` (and says so) when this wflow has none.
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

from wflow.adversarial import MLP, train  # noqa: E402


def digits_train_split(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X, y = d.data / 16.0, d.target.astype(np.int64)
    Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    return np.ascontiguousarray(Xtr), ytr


def torch_epoch(net, X, y, *, eps, steps, batch_size, lr, seed, adversarial, dtype):
    """One epoch of (adversarial) training in torch, mirroring wflow's loop."""
    import torch

    F = torch.nn.functional
    Xt, yt = torch.as_tensor(X, dtype=dtype), torch.as_tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    perm = np.random.default_rng(seed).permutation(len(X))
    tau = eps / steps
    for start in range(0, len(X), batch_size):
        idx = torch.as_tensor(perm[start:start + batch_size])
        xb, yb = Xt[idx], yt[idx]
        if adversarial:
            lo, hi = xb - eps, xb + eps
            x = xb.clone()
            for _ in range(steps):
                x.requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(net(x), yb, reduction="sum"), x)
                x = torch.clamp(x.detach() + tau * g.sign(), lo, hi)
            xb = x
        opt.zero_grad()
        F.cross_entropy(net(xb), yb).backward()
        opt.step()
    return net


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", nargs="+", type=int, default=[1])
    ap.add_argument("--activations", nargs="+", default=["relu", "gelu"])
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-2)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch (CPU build) to run this benchmark")
        return 1
    from threadpoolctl import threadpool_limits

    import wflow.adversarial as wa
    from wflow.adversarial import mlp_to_torch
    from wflow.adversarial.mlp import kernel_engine

    adv_train = getattr(wa, "adversarial_train", None) if "adversarial_train" in dir(wa) else None
    X, y = digits_train_split()
    print(f"digits train split {X.shape}, batch {args.batch_size}, ε = {args.eps}, {args.steps} inner steps; "
          f"torch {torch.__version__}; numpy {np.__version__}; wflow kernel engine {kernel_engine()}; "
          f"load average {os.getloadavg()}")
    if adv_train is None:
        print("this wflow has no adversarial_train: timing the plain train epoch only")
    default_threads = torch.get_num_threads()
    rows = ["| loop | model | variant | time per epoch (s), median | wflow / torch float32 (same threads) |",
            "|---|---|---|---|---|"]
    kinds = (["adversarial_train(inner=\"flow\")"] if adv_train is not None else []) + ["train"]
    for act in args.activations:
        m0 = MLP.init((64, 64, 64, 10), act, seed=0)
        for kind in kinds:
            adversarial = kind != "train"
            variants = {}
            for dt in ("float32", "float64"):
                model = m0.astype(dt)

                def run_wflow(model=model, adversarial=adversarial):
                    with threadpool_limits(1):
                        if adversarial:
                            return adv_train(model, X, y, args.eps, inner="flow", steps=args.steps, loss="ce",
                                             epochs=1, batch_size=args.batch_size, lr=args.lr, seed=1)
                        return train(model, X, y, loss="ce", epochs=1, batch_size=args.batch_size, lr=args.lr,
                                     seed=1)

                variants[("wflow", dt, 1)] = run_wflow
                for th in args.threads:
                    def run_torch(dt=dt, th=th, m0=m0, adversarial=adversarial):
                        torch.set_num_threads(th)
                        try:
                            net = mlp_to_torch(m0, getattr(torch, dt)).train()
                            return torch_epoch(net, X, y, eps=args.eps, steps=args.steps,
                                               batch_size=args.batch_size, lr=args.lr, seed=1,
                                               adversarial=adversarial, dtype=getattr(torch, dt))
                        finally:
                            torch.set_num_threads(default_threads)

                    variants[("torch", dt, th)] = run_torch
            for fn in variants.values():  # warm-up
                fn()
            times = {k: [] for k in variants}
            for _ in range(args.repeats):
                for k, fn in variants.items():
                    t0 = time.perf_counter()
                    fn()
                    times[k].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            for k in variants:
                lib, dt, th = k
                label = f"{lib}, {dt}, {th} thread{'s' * (th > 1)}"
                ratio = ""
                if lib == "wflow":
                    ratio = " / ".join(f"{med[k] / med[('torch', 'float32', t)]:.2f} (torch {t} thr)"
                                       for t in args.threads) if dt == "float32" else \
                        " / ".join(f"{med[k] / med[('torch', 'float64', t)]:.2f} vs torch float64 ({t} thr)"
                                   for t in args.threads)
                rows.append(f"| {kind} | {act} | {label} | {med[k]:.3f} | {ratio} |")
            print(f"{kind}, {act}: all runs (s): "
                  + "; ".join(f"{'/'.join(map(str, k))}: {[round(t, 3) for t in v]}" for k, v in times.items()))
    print()
    print("\n".join(rows))
    print(f"\nload average after the run: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

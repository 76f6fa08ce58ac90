"""wflow.distributed: single process vs threaded dask vs a LocalCluster, time and peak memory.

Cases (each variant runs in its own fresh subprocess, one after the other, so that its peak
resident memory — ``ru_maxrss`` of the process, and of every worker process — is its own):

- ``flow``: energy curve of the ℓ∞ flow of a quadratic, n particles × 50 steps, stride 10.
  Particles are generated block by block from ``default_rng([0, b])`` (the same numbers in
  every variant); the curves of the variants are compared.
- ``big``: the same on a LocalCluster, n = 5·10⁷, with ``WFLOW_MEMORY_LIMIT=4GiB`` in every
  process; first the in-memory ``wflow.solve_flow`` is called under that limit (it refuses with
  its estimate: 6 × 5·10⁷ × 2 float64 of trajectory plus energies).
- ``risk``: the conflict graph of 2 × 20 000 points in d = 784 (ℓ∞), single process vs
  LocalCluster.

    python benchmarks/bench_distributed.py flow [--n 10000000]
    python benchmarks/bench_distributed.py big [--n 50000000]
    python benchmarks/bench_distributed.py risk [--n 20000] [--d 784]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

A = np.array([[2.0, 0.5], [0.5, 1.0]])
TAU, STEPS, STRIDE = 0.01, 50, 10
CHUNK = 1_000_000


def _block(b: int, rows: int) -> np.ndarray:
    return np.random.default_rng([0, b]).standard_normal((rows, 2))


def _sizes(n: int, chunk: int) -> list[int]:
    return [min(chunk, n - s) for s in range(0, n, chunk)]


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker_stats(client) -> tuple[list, float]:
    """Peak RSS (MB) of every worker process and the CPU seconds they used."""
    def stats():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_maxrss / 1024, r.ru_utime + r.ru_stime

    vals = list(client.run(stats).values())
    return sorted(v[0] for v in vals), sum(v[1] for v in vals)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _dask_particles(n: int, chunk: int):
    import dask
    import dask.array as da

    parts = [da.from_delayed(dask.delayed(_block)(b, r), shape=(r, 2), dtype=float)
             for b, r in enumerate(_sizes(n, chunk))]
    return da.concatenate(parts, axis=0)


def _cluster(workers: int):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit="6GiB")
    return cluster, Client(cluster)


def _on_cluster(out: dict, t0: float, work):
    """``work(client)`` on a fresh 2-worker LocalCluster, timed without the cluster's set-up.

    ``out["setup_s"]`` gets the set-up time (from ``t0``), ``out["worker_peak_mb"]`` the workers'
    peak RSS. Returns (work's result, t0, c0): the wall-clock start after the set-up, and c0
    such that ``_cpu_s() - c0`` is this process's CPU time plus the workers' CPU time in
    ``work``. The live Client is dask's default scheduler while ``work`` runs.
    """
    cluster, client = _cluster(2)
    try:
        out["setup_s"] = time.perf_counter() - t0
        _, w0 = _worker_stats(client)
        t0, c0 = time.perf_counter(), _cpu_s() - w0
        res = work(client)
        out["worker_peak_mb"], wcpu = _worker_stats(client)
        c0 -= wcpu
    finally:
        client.close()
        cluster.close()
    return res, t0, c0


def run_flow_variant(variant: str, n: int, chunk: int) -> dict:
    import wflow
    from wflow import distributed as wd
    from wflow.potentials import Quadratic

    V = Quadratic(A)
    T = STEPS * TAU
    out = {"variant": variant, "n": n}
    if variant != "single":
        wd._dask()  # imports are not part of the timing
    t0, c0 = time.perf_counter(), _cpu_s()
    if variant == "refuse":  # the in-memory path under the same limit: refused before allocating
        from wflow.memory import MemoryLimitError

        X = np.zeros((n, 2))
        try:
            wflow.solve_flow(V, X, T, TAU, stride=STRIDE)
            out["refused"] = None
        except MemoryLimitError as exc:
            out["refused"] = str(exc)
        out["time_s"], out["cpu_s"], out["process_peak_mb"], out["curve"] = 0.0, 0.0, _maxrss_mb(), []
        return out
    if variant == "single":
        X = np.concatenate([_block(b, r) for b, r in enumerate(_sizes(n, chunk))])
        res = wflow.solve_flow(V, X, T, TAU, stride=STRIDE)
        curve = res.energy_curve()
    else:
        def work(client):
            r = wd.solve_flow(V, _dask_particles(n, chunk), T, TAU, stride=STRIDE, keep=["energy_curve"])
            return np.asarray(r.compute().energy_curve)

        if variant.startswith("cluster"):
            curve, t0, c0 = _on_cluster(out, t0, work)
        else:
            curve = work(None)
    out["time_s"] = time.perf_counter() - t0
    out["cpu_s"] = _cpu_s() - c0
    out["process_peak_mb"] = _maxrss_mb()
    out["curve"] = curve.tolist()
    return out


def run_risk_variant(variant: str, n: int, d: int, radius: float) -> dict:
    from wflow import distributed as wd

    rng = np.random.default_rng(0)
    # two classes of "images" in [0, 1]^d: tight clusters around 100 prototypes, class 0 on
    # prototypes 0-59, class 1 on 40-99 (the 20 shared ones make conflicts at small radii)
    proto = rng.random((100, d))
    X0 = np.clip(proto[rng.integers(0, 60, n)] + 0.02 * rng.standard_normal((n, d)), 0, 1)
    X1 = np.clip(proto[rng.integers(40, 100, n)] + 0.02 * rng.standard_normal((n, d)), 0, 1)
    out = {"variant": variant, "n": n, "d": d, "radius": radius, "kernel": wd._risk_kernel().__module__
           if wd._risk_kernel() else "scipy cdist"}
    nrm = wd.as_norm("linf")
    t0, c0 = time.perf_counter(), _cpu_s()
    if variant == "single":
        kernel = wd._risk_kernel()
        if kernel is not None:
            g = kernel(X0, X1, radius, nrm)
            rows, cols, dists = g.rows, g.cols, g.dists
        else:
            rows, cols, dists = wd._edge_block(X0, X1, 0, 0, radius, nrm, None)
        order = np.lexsort((cols, rows))
        g = wd.ConflictEdges(rows[order], cols[order], dists[order], (n, n), radius, nrm)
    else:
        g, t0, c0 = _on_cluster(out, t0, lambda client: wd.conflict_edges(X0, X1, radius, nrm, chunks=5000,
                                                                          client=client))
    out["time_s"] = time.perf_counter() - t0
    out["cpu_s"] = _cpu_s() - c0
    out["edges"] = g.n_edges
    out["edges_sha1"] = hashlib.sha1(np.stack([g.rows, g.cols]).tobytes() + g.dists.tobytes()).hexdigest()
    t1 = time.perf_counter()
    out["transported"] = g.transported(radius)  # F(2ε) for ε = radius/2, on the client (exact max-flow)
    out["maxflow_s"] = time.perf_counter() - t1
    out["process_peak_mb"] = _maxrss_mb()
    return out


def _child(args: list[str], **env_extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **env_extra)
    res = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=["flow", "big", "risk"])
    ap.add_argument("--n", type=int)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--radius", type=float, default=0.1)
    ap.add_argument("--chunk", type=int, default=CHUNK)
    ap.add_argument("--repeats", type=int, default=2, help="rounds; even rounds run the variants in reverse order")
    ap.add_argument("--variant")
    ap.add_argument("--child", action="store_true")
    a = ap.parse_args(argv)
    if a.child:
        out = (run_risk_variant(a.variant, a.n, a.d, a.radius) if a.case == "risk"
               else run_flow_variant(a.variant, a.n, a.chunk))
        print(json.dumps(out))
        return
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.case == "flow":
        n = a.n or 10_000_000
        variants = ["single", "threads", "cluster"]
    elif a.case == "big":
        n = a.n or 50_000_000
        variants = ["refuse", "cluster"]
    else:
        n = a.n or 20_000
        variants = ["single", "cluster"]
    rows = {v: [] for v in variants}
    extra = ["--d", str(a.d), "--radius", str(a.radius)] if a.case == "risk" else ["--chunk", str(a.chunk)]
    for rnd in range(a.repeats if a.case == "flow" else 1):
        for v in (variants if rnd % 2 == 0 else variants[::-1]):  # mirrored order: load drift cancels
            # big: every process (the in-memory path, each worker) under the same 4 GiB limit
            r = _child([a.case, "--variant", v, "--n", str(n), *extra],
                       **({"WFLOW_MEMORY_LIMIT": "4GiB"} if a.case == "big" else {}))
            rows[v].append(r)
            print(json.dumps({k: x for k, x in r.items() if k != "curve"}), flush=True)
    if a.case == "risk":
        for v, rs in rows.items():
            r = rs[0]
            print(f"{v}: kernel {r['kernel']}, {r['edges']} edges (sha1 {r['edges_sha1'][:12]}), "
                  f"F(radius) = {r['transported']:.6f}, max-flow on the client {r['maxflow_s']:.2f} s")
    for r in rows.get("refuse", []):
        print("in-memory path:", r["refused"] or "not refused")
    if a.case == "flow" and "single" in rows:
        ref = np.array(rows["single"][0]["curve"])
        for v in variants[1:]:
            diff = max(np.abs(np.array(r["curve"]) - ref).max() for r in rows[v])
            print(f"{v}: max |energy curve - single process| = {diff:.3g}")
    print("| variant | wall time (s), each round | CPU time (s), each round | peak RSS of the process (MB) |"
          " peak RSS per worker (MB) |")
    print("|---|---|---|---:|---|")
    for v, rs in rows.items():
        wk = ", ".join(f"{m:.0f}" for m in max((r.get("worker_peak_mb", []) for r in rs), key=sum)) or "—"
        times = " / ".join(f"{r['time_s']:.1f}" for r in rs)
        cpu = " / ".join(f"{r['cpu_s']:.1f}" if "cpu_s" in r else "—" for r in rs)
        print(f"| {v} | {times} | {cpu} | {max(r['process_peak_mb'] for r in rs):.0f} | {wk} |")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()

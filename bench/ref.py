"""The NumPy and PyTorch references of `make bench` (bench/run.lua runs this with /usr/bin/python3).

Usage: OPENBLAS_NUM_THREADS=T /usr/bin/python3 bench/ref.py --threads T [--runs R] CASE...
Cases, each timed R times (best kept) after one warm-up run, each printed as "CASE <seconds>":
  matmul<n>  numpy float32 (n, n) @ (n, n) (NumPy's BLAS: OpenBLAS where it is installed)
  softmax    torch.softmax over the rows of a (4096, 4096) float32 tensor
  conv       torch conv2d forward and backward: x (32, 32, 28, 28), w (64, 32, 3, 3), padding 1,
             no bias, backward from a fixed random upstream gradient (32, 64, 28, 28)
Also prints "blas <name>": the BLAS library NumPy loaded (from /proc/self/maps).
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F


def best(runs, fn):
    fn()
    t = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def blas_name():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    names = sorted({p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in libs})
    return ",".join(names) or "none"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("cases", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for case in a.cases:
        if case.startswith("matmul"):
            n = int(case[len("matmul"):])
            x, y = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
            t = best(a.runs, lambda: x @ y)
        elif case == "softmax":
            x = torch.rand(4096, 4096)
            t = best(a.runs, lambda: torch.softmax(x, 1))
        elif case == "conv":
            x = torch.randn(32, 32, 28, 28, requires_grad=True)
            w = torch.randn(64, 32, 3, 3, requires_grad=True)
            g = torch.randn(32, 64, 28, 28)

            def step():
                x.grad = w.grad = None
                F.conv2d(x, w, padding=1).backward(g)

            t = best(a.runs, step)
        else:
            raise SystemExit("ref.py: unknown case " + case)
        print(case, "%.6f" % t, flush=True)
    print("blas", blas_name())


if __name__ == "__main__":
    main()

"""The main job's CNN in PyTorch, as the reference for `make bench` and for accuracy.

Usage: /usr/bin/python3 bench/torch_cnn.py [--epochs E] [--batch B] [--threads T] [--steps S]
Prints one line per epoch (loss, test accuracy, images/s); with --steps only times S training
steps (after 3 warm-up steps) and prints "images/s <value>".
"""
import argparse
import gzip
import time

import numpy as np
import torch
from torch import nn

DIR = "/usr/share/datasets/fashion-mnist/"


def idx(name):
    with gzip.open(DIR + name) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--decay", action="store_true", help="linear learning-rate decay to 0")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    norm = lambda x: (torch.tensor(x, dtype=torch.float32).unsqueeze(1) / 255 - 0.2860) / 0.3530
    xtr, ytr = norm(idx("train-images-idx3-ubyte.gz")), torch.tensor(idx("train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xte, yte = norm(idx("t10k-images-idx3-ubyte.gz")), torch.tensor(idx("t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    m = model()
    opt = torch.optim.Adam(m.parameters(), lr=a.lr)
    lossf = nn.CrossEntropyLoss()

    total = a.epochs * ((60000 + a.batch - 1) // a.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / total) if a.decay else None

    def step(xb, yb):
        opt.zero_grad()
        loss = lossf(m(xb), yb)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        return loss

    if a.steps:
        m.train()
        xb, yb = xtr[:a.batch], ytr[:a.batch]
        for _ in range(3):
            step(xb, yb)
        t0 = time.perf_counter()
        for i in range(a.steps):
            s = (i * a.batch) % (60000 - a.batch)
            step(xtr[s:s + a.batch], ytr[s:s + a.batch])
        print("images/s %.1f" % (a.steps * a.batch / (time.perf_counter() - t0)))
        return
    for e in range(a.epochs):
        m.train()
        perm = torch.randperm(60000)
        t0 = time.perf_counter()
        for s in range(0, 60000, a.batch):
            i = perm[s:s + a.batch]
            loss = step(xtr[i], ytr[i])
        dt = time.perf_counter() - t0
        m.eval()
        with torch.no_grad():
            acc = (m(xte).argmax(1) == yte).float().mean().item()
        print("epoch %d loss %.4f test accuracy %.4f images/s %.1f" % (e + 1, loss.item(), acc, 60000 / dt))


if __name__ == "__main__":
    main()

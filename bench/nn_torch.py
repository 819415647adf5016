#!/usr/bin/python3
"""PyTorch peer of bench/nn_bench.c: MLP 784-512-512-10 (relu) on Fashion-MNIST, Adam lr 1e-3,
batch 256, pixels scaled to [0, 1], a fresh random order each epoch. Prints one line per epoch
and a RESULT line bench/nn_bench.sh parses.

usage: /usr/bin/python3 bench/nn_torch.py [DATA_DIR [EPOCHS [THREADS]]]
"""
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

data = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
if not os.path.exists(os.path.join(data, "train-images-idx3-ubyte.gz")):
    print("skip: Fashion-MNIST not found in %s" % data)
    sys.exit(77)
torch.set_num_threads(threads)
torch.manual_seed(1)


def idx(name, images):
    with gzip.open(os.path.join(data, name), "rb") as f:
        b = f.read()
    if images:
        n, r, c = np.frombuffer(b[4:16], ">u4")
        return np.frombuffer(b[16:], np.uint8).reshape(n, r * c).astype(np.float32) / 255.0
    return np.frombuffer(b[8:], np.uint8).astype(np.int64)


X = torch.from_numpy(idx("train-images-idx3-ubyte.gz", True))
y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz", False))
Xt = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz", True))
yt = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz", False))

model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                      nn.Linear(512, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
first = total = acc = 0.0
for e in range(epochs):
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(X.shape[0])
    for i in range(0, X.shape[0], 256):
        b = perm[i:i + 256]
        opt.zero_grad()
        loss = F.cross_entropy(model(X[b]), y[b])
        loss.backward()
        opt.step()
    s = time.perf_counter() - t0
    first = s if e == 0 else first
    total += s
    model.eval()
    with torch.no_grad():
        acc = (model(Xt).argmax(1) == yt).float().mean().item()
    print("torch epoch %d: %.3f s, test accuracy %.4f" % (e + 1, s, acc))
print("RESULT torch first_epoch_s=%.3f mean_epoch_s=%.3f test_acc=%.4f epochs=%d threads=%d "
      "torch=%s" % (first, total / epochs, acc, epochs, threads, torch.__version__))

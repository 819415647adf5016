#!/usr/bin/env python3
"""PyTorch peer of bench/gpu/mf_bench.c, run on the same GPU in the same device call by
tests/gpu/run-device.sh, on the interaction table mf_bench wrote (same users, items, weights).

  mf_torch.py bpr DATA_FILE FACTORS [REPEATS [BATCH]]
  mf_torch.py als DATA_FILE FACTORS [REPEATS]

bpr: one epoch = nnz sampled triples in mini-batches of BATCH (default 8192, Lepton's
deterministic batch): the observed pair uniform over the table, the negative uniform over the
items (no check against the user's history: cheaper than Lepton's draw), factors + an item-bias
column, the step of mf.h's BPR with lr 0.05 and reg 0.01 applied by index_add_ (float atomics).
als: one implicit-ALS user half-step, alpha 2, lambda 0.05: G = Y^T Y, every user's
A_u = G + lambda I + sum alpha w y y^T from outer products added per user with index_add_ in
chunks of 65536 pairs, b_u likewise, then batched torch.linalg.cholesky_ex + cholesky_solve in
fp32 (Lepton factors in double).
Timing: 2 warm-up runs, then REPEATS runs between torch.cuda.Event records; median. Prints
RESULT lines in mf_bench.c's format (peer "torch").
"""
import statistics
import sys

import numpy as np
import torch


def load(path):
    raw = np.fromfile(path, dtype=np.int32)
    nu, ni, nnz = int(raw[0]), int(raw[1]), int(raw[2])
    ptr = raw[3:3 + nu + 1]
    col = raw[3 + nu + 1:3 + nu + 1 + nnz]
    w = raw[3 + nu + 1 + nnz:3 + nu + 1 + 2 * nnz].view(np.float32)
    users = np.repeat(np.arange(nu, dtype=np.int64), np.diff(ptr))
    dev = torch.device("cuda")
    return (nu, ni, nnz, torch.from_numpy(users).to(dev),
            torch.from_numpy(col.astype(np.int64)).to(dev), torch.from_numpy(w.copy()).to(dev))


def timed(fn, repeats):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b))  # ms
    return out


def bpr(path, factors, repeats, batch):
    nu, ni, nnz, users, items, _ = load(path)
    torch.manual_seed(5)
    k = factors + 1
    U = torch.randn(nu, k, device="cuda") * (0.1 / factors ** 0.5)
    V = torch.randn(ni, k, device="cuda") * (0.1 / factors ** 0.5)
    U[:, -1] = 1
    V[:, -1] = 0
    lr, reg = 0.05, 0.01
    state = {"loss": 0.0}

    def epoch():
        tot = torch.zeros((), device="cuda", dtype=torch.float64)
        for s0 in range(0, nnz, batch):
            m = min(batch, nnz - s0)
            p = torch.randint(0, nnz, (m,), device="cuda")
            u, i = users[p], items[p]
            j = torch.randint(0, ni, (m,), device="cuda")
            xu, yi, yj = U[u], V[i], V[j]
            z = (xu * (yi - yj)).sum(1)
            g = torch.sigmoid(-z)[:, None]
            du = lr * (g * (yi - yj) - reg * xu)
            du[:, -1] = 0
            di = lr * (g * xu - reg * yi)
            dj = lr * (-g * xu - reg * yj)
            di[:, -1] = lr * (g[:, 0] - reg * yi[:, -1])
            dj[:, -1] = lr * (-g[:, 0] - reg * yj[:, -1])
            U.index_add_(0, u, du)
            V.index_add_(0, i, di)
            V.index_add_(0, j, dj)
            tot += torch.nn.functional.softplus(-z).sum(dtype=torch.float64)
        state["loss"] = tot

    t = timed(epoch, repeats)
    med = statistics.median(t)
    print("RESULT torch cuda bpr-b%d %d triples_per_s=%.0f ms=%.3f min=%.3f max=%.3f nnz=%d "
          "loss=%.4f" % (batch, factors, nnz / (med * 1e-3), med, min(t), max(t), nnz,
                         float(state["loss"]) / nnz))


def als(path, factors, repeats):
    nu, ni, nnz, users, items, w = load(path)
    torch.manual_seed(5)
    k = factors
    Y = torch.randn(ni, k, device="cuda") / k ** 0.5
    X = torch.empty(nu, k, device="cuda")
    lam, alpha, chunk = 0.05, 2.0, 65536
    eye = torch.eye(k, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    info = {}

    def half():
        G = Y.T @ Y
        A = (G + lam * eye).expand(nu, k, k).contiguous()
        b = torch.zeros(nu, k, device="cuda")
        for c0 in range(0, nnz, chunk):
            sl = slice(c0, min(nnz, c0 + chunk))
            yt = Y[items[sl]]
            cw = alpha * w[sl]
            A.index_add_(0, users[sl], cw[:, None, None] * yt[:, :, None] * yt[:, None, :])
            b.index_add_(0, users[sl], (1 + cw)[:, None] * yt)
        L, bad = torch.linalg.cholesky_ex(A)
        X.copy_(torch.cholesky_solve(b[:, :, None], L)[:, :, 0])
        info["bad"] = bad

    t = timed(half, repeats)
    print("RESULT torch cuda als-user-half %d ms=%.3f min=%.3f max=%.3f nnz=%d not_spd=%d"
          % (factors, statistics.median(t), min(t), max(t), nnz,
             int((info["bad"] != 0).sum())))


def main():
    if not torch.cuda.is_available():
        print("skip: torch sees no CUDA device")
        sys.exit(77)
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "bpr":
        bpr(a[1], int(a[2]), int(a[3]) if len(a) > 3 else 10, int(a[4]) if len(a) > 4 else 8192)
    elif len(a) >= 3 and a[0] == "als":
        als(a[1], int(a[2]), int(a[3]) if len(a) > 3 else 10)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch peer of bench/gpu/mlp_bench.c and gemm_bench.c, run on the same GPU in the same
device call by tests/gpu/run-device.sh.

  mlp_torch.py mlp|softmax|cnn BATCH [STEPS [REPEATS [MODE]]]
  mlp_torch.py gemm N fp32|tf32 [REPEATS]

Models as mlp_bench.c: 784-512-512-10 relu, 784 -> 10, or the CNN conv32-conv64-fc128 on
1x28x28 (3x3 convs padding 1 + relu, 2x2 max pools, 3136 -> 128 relu -> 10, cuDNN as PyTorch
picks it, benchmark mode off), AdamW lr 1e-3 (no weight decay),
F.cross_entropy, seeded uniform pixels and random labels, 8 batches cycled.
MODE "host" (default) does what one lp_nn_train_step does: the batch goes host -> device each
step and loss.item() brings the loss back (a sync per step). MODE "resident" keeps the batches
on the GPU and syncs only at the end of a timed group: PyTorch's best case.
Timing: 10 warm-up steps, then REPEATS groups of STEPS steps between torch.cuda.Event records;
median samples/s. gemm: torch.matmul of n x n fp32 (TF32 allowed or not), 3 warm-up, median
of REPEATS groups of 10. Prints RESULT lines in mlp_bench.c's format (peer "torch").
"""
import statistics
import sys

import torch
import torch.nn.functional as F


def set_tf32(on):
    try:  # PyTorch >= 2.9
        torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"
    except (AttributeError, AssertionError):  # older PyTorch
        torch.backends.cuda.matmul.allow_tf32 = on


def timed_groups(fn, groups):
    out = []
    for _ in range(groups):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b) / 1e3)  # seconds
    return out


def gemm(n, prec, repeats):
    set_tf32(prec == "tf32")
    g = torch.Generator().manual_seed(3)
    a = (torch.rand(n, n, generator=g) * 2 - 1).cuda()
    b = (torch.rand(n, n, generator=g) * 2 - 1).cuda()
    for _ in range(3):
        c = a @ b
    torch.cuda.synchronize()

    def run():
        for _ in range(10):
            torch.matmul(a, b, out=c)

    t = [10 * 2.0 * n ** 3 / s / 1e12 for s in timed_groups(run, repeats)]
    print("RESULT torch gemm %s %d tflops=%.2f min=%.2f max=%.2f"
          % ("cuda" if prec == "fp32" else "cuda-tf32", n, statistics.median(t), min(t), max(t)))


def mlp(model, batch, steps, repeats, mode):
    set_tf32(False)  # fp32 like the "cuda" table
    torch.manual_seed(1)
    torch.backends.cudnn.allow_tf32 = False  # fp32 convolutions too
    if model == "cnn":
        layers = [torch.nn.Unflatten(1, (1, 28, 28)),
                  torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                  torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                  torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
                  torch.nn.Linear(128, 10)]
    elif model == "mlp":
        layers = [torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                  torch.nn.ReLU(), torch.nn.Linear(512, 10)]
    else:
        layers = [torch.nn.Linear(784, 10)]
    net = torch.nn.Sequential(*layers).cuda()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(7)
    xs = [torch.rand(batch, 784, generator=g) for _ in range(8)]
    ys = [torch.randint(0, 10, (batch,), generator=g) for _ in range(8)]
    if mode == "resident":
        xs = [x.cuda() for x in xs]
        ys = [y.cuda() for y in ys]
    state = {"b": 0, "loss": 0.0}

    def step():
        b = state["b"]
        state["b"] = (b + 1) % 8
        x, y = xs[b], ys[b]
        if mode == "host":
            x, y = x.cuda(), y.cuda()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if mode == "host":
            state["loss"] = loss.item()
        else:
            state["loss"] = loss

    for _ in range(10):
        step()
    torch.cuda.synchronize()

    def group():
        for _ in range(steps):
            step()

    r = [steps * batch / s for s in timed_groups(group, repeats)]
    med = statistics.median(r)
    print("RESULT torch-%s cuda %s %d samples_per_s=%.0f ms_per_step=%.4f min=%.0f max=%.0f "
          "loss=%.4f" % (mode, model, batch, med, 1e3 * batch / med, min(r), max(r),
                         float(state["loss"])))


def main():
    if not torch.cuda.is_available():
        print("skip: torch sees no CUDA device")
        sys.exit(77)
    a = sys.argv[1:]
    if a and a[0] == "gemm":
        gemm(int(a[1]), a[2], int(a[3]) if len(a) > 3 else 10)
    elif a and a[0] in ("mlp", "softmax", "cnn"):
        mlp(a[0], int(a[1]), int(a[2]) if len(a) > 2 else 20, int(a[3]) if len(a) > 3 else 15,
            a[4] if len(a) > 4 else "host")
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()

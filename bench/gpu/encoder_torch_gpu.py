#!/usr/bin/env python3
"""encoder_torch_gpu.py - the PyTorch peers of the encoder benchmarks on the device (PyTorch,
transformers and PEFT are in its image; tests/gpu/run-device.sh runs these beside
encoder_bench and encoder_lora_step on the same GPU and the same folder, written by
minilm_random.py).

  embed FOLDER TEXTS.tsv N BATCH   sentence embeddings: transformers' BertModel (float32, its
      default attention), mean pooling over the mask and L2 normalisation as sentence-transformers
      does; the first N texts tokenized once beforehand (BertTokenizerFast on the folder's
      vocabulary, kept out of the timing; the ids are lepton's, tests/gpu checks them), sorted by length and padded per batch; best of 3 runs
      after one warm-up, each ended by torch.cuda.synchronize(). Latency: median and p90 of 200
      single-sentence calls. Prints RESULT torch-cuda sentences_per_s=.. latency_ms_p50=..
  lora FOLDER TRAIN.tsv BATCH STEPS   one LoRA fine-tuning step as lepton's encoder_lora_step
      takes it: PEFT LoRA rank 8, alpha 16, no dropout, on query, key, value, attention output,
      intermediate and output dense of every layer (target "query", "key", "value", "dense";
      the model has no pooler), base frozen, a Linear(384, C) head on the mean-pooled
      L2-normalised embedding, softmax cross-entropy, AdamW (lr 1e-3 LoRA, 1e-2 head, weight
      decay 0.01); batches of BATCH texts drawn at random (seed 42), tokenized in the step;
      the mean over STEPS steps after 2 warm-up steps. Prints RESULT torch-peft-cuda
      lora_step_ms=..
The device argument defaults to cuda; LEPTON_TORCH_DEVICE=cpu runs either mode on the CPU (to
check the script where there is no GPU).
"""
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

DEV = os.environ.get("LEPTON_TORCH_DEVICE", "cuda")


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        rows = [l.split("\t") for l in f.read().split("\n")[1:] if l]
    return [r[0] for r in rows], [r[-1] for r in rows]


def load(folder):
    from transformers import BertModel, BertTokenizerFast
    # from_pretrained reads the folder's vocab.txt (transformers 5 builds an empty vocabulary
    # from BertTokenizerFast(vocab_file=...): every word an [UNK])
    tok = BertTokenizerFast.from_pretrained(folder, do_lower_case=True)
    model = BertModel.from_pretrained(folder, add_pooling_layer=False).to(DEV)
    return tok, model


def pool(out, mask):
    m = mask[..., None].to(out.dtype)
    return F.normalize((out * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=1)


def embed(folder, tsv, n, batch):
    tok, model = load(folder)
    model.eval()
    texts = read_tsv(tsv)[1][:n]
    enc = [tok(t, truncation=True, max_length=256)["input_ids"] for t in texts]
    enc.sort(key=len)

    def tensors(chunk):
        T = max(len(s) for s in chunk)
        ids = torch.zeros(len(chunk), T, dtype=torch.long)
        mask = torch.zeros(len(chunk), T, dtype=torch.long)
        for i, s in enumerate(chunk):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        return ids.to(DEV), mask.to(DEV)

    batches = [tensors(enc[i:i + batch]) for i in range(0, len(enc), batch)]
    best = 1e30
    with torch.inference_mode():
        for r in range(4):
            sync()
            t0 = time.perf_counter()
            for ids, mask in batches:
                pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
            sync()
            s = time.perf_counter() - t0
            if r > 0:
                best = min(best, s)
        lat = []
        for r in range(200):
            t0 = time.perf_counter()
            ids, mask = tensors([enc[r % len(enc)]])
            pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask).cpu()
            lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    print("RESULT torch-%s sentences_per_s=%.1f latency_ms_p50=%.3f latency_ms_p90=%.3f "
          "(torch %s)" % (DEV, len(texts) / best, lat[100], lat[180], torch.__version__))


def lora(folder, tsv, batch, steps):
    from peft import LoraConfig, get_peft_model
    tok, model = load(folder)
    labels_s, texts = read_tsv(tsv)
    names = sorted(set(labels_s))
    y_all = [names.index(l) for l in labels_s]
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                     target_modules=["query", "key", "value", "dense"])
    model = get_peft_model(model, cfg)
    model.train()
    head = torch.nn.Linear(model.config.hidden_size, len(names)).to(DEV)
    lora_params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": lora_params, "lr": 1e-3},
                             {"params": head.parameters(), "lr": 1e-2}], weight_decay=0.01)
    rng = random.Random(42)
    n_lora = sum(p.numel() for p in lora_params) + sum(p.numel() for p in head.parameters())

    def step():
        idx = [rng.randrange(len(texts)) for _ in range(batch)]
        b = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=256,
                return_tensors="pt").to(DEV)
        y = torch.tensor([y_all[i] for i in idx], device=DEV)
        z = pool(model(input_ids=b["input_ids"],
                       attention_mask=b["attention_mask"]).last_hidden_state,
                 b["attention_mask"])
        loss = F.cross_entropy(head(z), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(2):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    ms = (time.perf_counter() - t0) / steps * 1e3
    print("RESULT torch-peft-%s lora_step_ms=%.2f batch=%d classes=%d trainable=%d (torch %s)"
          % (DEV, ms, batch, len(names), n_lora, torch.__version__))


def main():
    mode = sys.argv[1]
    if mode == "embed":
        embed(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "lora":
        lora(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: encoder_torch_gpu.py embed FOLDER TEXTS N BATCH | "
                 "lora FOLDER TRAIN BATCH STEPS")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""minilm_random.py - an all-MiniLM-L6-v2-shaped BERT with random weights, as an unpacked
sentence-transformers folder (config.json, model.safetensors, vocab.txt, sentence_bert_config.json,
1_Pooling/config.json) that lepton's encoder converter (lp_encoder_convert, through
bench/bench_encoder.h) and transformers' BertModel.from_pretrained both read. The GPU runs use
it because the real weights (90 MB of float32) do not fit what one device call carries; speed
does not depend on the weights' values, and the CUDA-against-CPU parity holds for any.

Shape: vocabulary 30522 (the committed MiniLM vocabulary, tests/fixtures/minilm_vocab.txt.gz, so
texts tokenize to the real lengths), hidden 384, 6 layers, 12 heads, feed-forward 1536, 512
positions, max_seq_length 256. Weights as BERT initialises them: N(0, 0.02) for matrices and
embeddings, zero biases, LayerNorm 1 and 0 (numpy; the folder is written by
tests/fixtures/gen_minilm.py's write_folder, as the tiny test model is).

usage: minilm_random.py OUTDIR [SEED]
"""
import gzip
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import gen_minilm as gm  # noqa: E402  (its folder writer; it imports torch, as the peers do)

D, L, H, FF, P, V = 384, 6, 12, 1536, 512, 30522


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    with gzip.open(os.path.join(ROOT, "tests", "fixtures", "minilm_vocab.txt.gz"), "rt",
                   encoding="utf-8") as f:
        vocab = f.read()
    if len(vocab.splitlines()) != V:
        sys.exit("minilm_random.py: the vocabulary has %d entries, expected %d"
                 % (len(vocab.splitlines()), V))
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
           "position_embedding_type": "absolute", "vocab_size": V, "hidden_size": D,
           "num_hidden_layers": L, "num_attention_heads": H, "intermediate_size": FF,
           "max_position_embeddings": P, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "pad_token_id": 0}
    W = {}
    for k, sh in gm.bert_shapes(cfg).items():
        if k.endswith("LayerNorm.weight"):
            W[k] = np.ones(sh, np.float32)
        elif k.endswith(".bias"):
            W[k] = np.zeros(sh, np.float32)
        else:
            W[k] = rng.standard_normal(sh, dtype=np.float32) * np.float32(0.02)
    gm.write_folder(out, cfg, W, 256, vocab, "bench/gpu/minilm_random.py")
    print("minilm_random: %s (%d tensors, %.1f MB)"
          % (out, len(W), sum(a.nbytes for a in W.values()) / 1e6))


if __name__ == "__main__":
    main()

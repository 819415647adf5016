"""Peers of bench/recommend_any.sh on any interaction file pair: the `implicit` library's ALS
(its defaults: 100 factors, regularization 0.01, alpha 1, 15 iterations) on the raw weights and
on BM25-weighted ones (implicit's Last.fm example), its BPR (defaults: 100 factors, 100
iterations) and its item-item cosine and BM25 recommenders (K = 20 neighbours, the default),
each as a user of that library would call it, with 2 threads. Prints one JSON line per model:
training seconds, precision@10 and NDCG@10 with every test row relevant and with weight >=
MIN_WEIGHT relevant. The metric is lepton-recommend eval's (lp_metrics_rank_at_k): a user's
training items are left out of its list; test items never seen in training are relevant but
cannot be hit; NDCG's ideal DCG is over min(k, relevant) items; users with no relevant test
row are not counted.

usage: python recommend_peers_any.py TRAIN TEST USER_COL ITEM_COL [WEIGHT_COL|-] [MIN_WEIGHT]
       [threads]
(separator sniffed: comma, tab or semicolon; ids read as text)
"""
import json
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommend_peers import K, metrics  # the same formulas as recommend_bench.sh's peers


def read(path, cols):
    return pd.read_csv(path, sep=None, engine="python", dtype={c: str for c in cols})


def topk(model, x):
    ids, _ = model.recommend(np.arange(x.shape[0]), x, N=K, filter_already_liked_items=True)
    return ids


def main():
    train, test, ucol, icol = sys.argv[1:5]
    wcol = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] not in ("", "-") else None
    min_w = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    threads = int(sys.argv[7]) if len(sys.argv) > 7 else 2
    tr, te = read(train, [ucol, icol]), read(test, [ucol, icol])
    users = {u: i for i, u in enumerate(pd.unique(tr[ucol]))}
    items = {v: i for i, v in enumerate(pd.unique(tr[icol]))}
    w = tr[wcol].astype(np.float32).values if wcol else np.ones(len(tr), np.float32)
    x = sp.csr_matrix((w, (tr[ucol].map(users).values, tr[icol].map(items).values)),
                      shape=(len(users), len(items)))
    x.sum_duplicates()
    import implicit
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, bm25_weight

    def run(name, model, fit_x):
        t0 = time.perf_counter()
        model.fit(fit_x, show_progress=False)
        secs = time.perf_counter() - t0
        top = topk(model, fit_x)
        out = {"model": "implicit %s %s" % (implicit.__version__, name), "train_s": round(secs, 3)}
        for tag, mw in (("all", -np.inf), ("pos", min_w)):
            p, n, nu = metrics(top, te, users, items, mw, ucol, icol, wcol)
            out.update({"p10_" + tag: round(p, 4), "ndcg10_" + tag: round(n, 4),
                        "users_" + tag: nu})
        print(json.dumps(out), flush=True)

    run("als", AlternatingLeastSquares(num_threads=threads, random_state=42), x)
    xb = bm25_weight(x, K1=100, B=0.8).tocsr().astype(np.float32)
    run("als bm25", AlternatingLeastSquares(num_threads=threads, random_state=42), xb)
    run("bpr", BayesianPersonalizedRanking(num_threads=threads, random_state=42), x)
    run("cosine", CosineRecommender(num_threads=threads), x)
    run("bm25", BM25Recommender(num_threads=threads), x)


if __name__ == "__main__":
    main()

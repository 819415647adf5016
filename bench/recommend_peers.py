"""recommend_peers.py - the peers of bench/recommend_bench.sh on one train/test split.

Runs the `implicit` library's ALS and BPR (when importable) and its CosineRecommender, plus an
item-kNN in NumPy (cosine with shrinkage, top-100 neighbours per item: the method of
lepton's itemknn), and prints one JSON line per model in recommend_bench's format: training
time, precision@10 and NDCG@10 with all test rows relevant and with rating >= MIN relevant,
training items excluded from every list. The metric formulas are lp_metrics_rank_at_k's
(NDCG's ideal DCG over min(k, |relevant|)).

Confidence matches lepton's ALS, c = 1 + alpha * rating: implicit uses the matrix values as
the confidence itself, so it is given 1 + alpha * rating.

usage: python recommend_peers.py TRAIN.csv TEST.csv [threads] [min_weight]
env MF_FACTORS, MF_ITERS, MF_REG, MF_ALPHA: ALS hyper-parameters of the quality runs (the
64 x 15 timing runs always follow them with 64 factors and 15 iterations).
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

K = 10


def load(train_path, test_path):
    tr = pd.read_csv(train_path)
    te = pd.read_csv(test_path)
    users = {u: i for i, u in enumerate(pd.unique(tr.user_id))}
    items = {v: i for i, v in enumerate(pd.unique(tr.item_id))}
    r = tr.user_id.map(users).values
    c = tr.item_id.map(items).values
    x = sp.csr_matrix((tr.rating.values.astype(np.float32), (r, c)),
                      shape=(len(users), len(items)))
    return tr, te, users, items, x


def metrics(top, te, users, items, min_w, ucol="user_id", icol="item_id", wcol="rating"):
    """top: (n_users, K) item indices (-1 padding) for the train users; wcol None: every test
    row relevant. Returns precision@K, NDCG@K and the users counted."""
    prec, ndcg = [], []
    disc = 1.0 / np.log2(np.arange(2, K + 2))
    for u, g in te.groupby(ucol):
        rel_rows = g if wcol is None else g[g[wcol] >= min_w]
        rel = set(items.get(i, -1 - j) for j, i in enumerate(rel_rows[icol]))
        if not rel:
            continue
        row = top[users[u]] if u in users else np.full(K, -1)
        hits = np.array([1.0 if i in rel else 0.0 for i in row])
        prec.append(hits.sum() / K)
        ndcg.append((hits * disc).sum() / disc[: min(K, len(rel))].sum())
    return float(np.mean(prec)), float(np.mean(ndcg)), len(prec)


def report(name, secs, top, te, users, items, min_w):
    p_all, n_all, _ = metrics(top, te, users, items, 0)
    p_pos, n_pos, _ = metrics(top, te, users, items, min_w)
    print(json.dumps({"model": name, "train_s": round(secs, 3), "p10_all": round(p_all, 4),
                      "ndcg10_all": round(n_all, 4), "p10_pos": round(p_pos, 4),
                      "ndcg10_pos": round(n_pos, 4)}), flush=True)


def topk_masked(scores, x):
    scores = np.asarray(scores, dtype=np.float64)
    scores[x.nonzero()] = -np.inf
    idx = np.argpartition(-scores, K, axis=1)[:, :K]
    part = np.take_along_axis(scores, idx, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def knn_numpy(x, neighbors=100, shrink=10.0):
    xd = x.toarray().astype(np.float64)
    s = xd.T @ xd
    norm = np.sqrt(np.diag(s))
    sim = s / (np.outer(norm, norm) + shrink)
    np.fill_diagonal(sim, 0.0)
    keep = np.argpartition(-sim, neighbors, axis=1)[:, :neighbors]
    pruned = np.zeros_like(sim)
    np.put_along_axis(pruned, keep, np.take_along_axis(sim, keep, axis=1), axis=1)
    return xd @ pruned  # score_ui = sum_j w_uj sim(j, i) over j's kept neighbours


def main():
    train_path, test_path = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    min_w = float(sys.argv[4]) if len(sys.argv) > 4 else 4.0
    tr, te, users, items, x = load(train_path, test_path)
    env = os.environ
    als = {"factors": int(env.get("MF_FACTORS", 64)), "iterations": int(env.get("MF_ITERS", 15)),
           "regularization": float(env.get("MF_REG", 0.05)), "alpha": float(env.get("MF_ALPHA", 2))}
    try:
        import implicit
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError as e:
        print(json.dumps({"model": "implicit", "skipped": str(e)}), flush=True)
        implicit = None
    if implicit is not None:
        conf = x.copy()
        conf.data = 1.0 + als["alpha"] * conf.data
        runs = [("", als["factors"], als["iterations"]), ("_64x15", 64, 15)]
        for suffix, factors, iterations in runs:
            for use_cg in (False, True):
                m = AlternatingLeastSquares(factors=factors, iterations=iterations,
                                            regularization=als["regularization"], alpha=1.0,
                                            use_cg=use_cg, use_gpu=False, num_threads=threads,
                                            random_state=42, calculate_training_loss=False)
                secs = 1e30
                for _ in range(int(os.environ.get("MF_REPEATS", 1))):  # fastest of N, as ours
                    m = AlternatingLeastSquares(factors=factors, iterations=iterations,
                                                regularization=als["regularization"], alpha=1.0,
                                                use_cg=use_cg, use_gpu=False,
                                                num_threads=threads, random_state=42,
                                                calculate_training_loss=False)
                    t0 = time.perf_counter()
                    m.fit(conf, show_progress=False)
                    secs = min(secs, time.perf_counter() - t0)
                top = topk_masked(m.user_factors @ m.item_factors.T, x)
                name = "implicit_als_%s%s" % ("cg" if use_cg else "cholesky", suffix)
                report(name, secs, top, te, users, items, min_w)
        m = BayesianPersonalizedRanking(factors=64, iterations=50, learning_rate=0.05,
                                        regularization=0.01, use_gpu=False,
                                        num_threads=threads, random_state=42)
        t0 = time.perf_counter()
        m.fit(x, show_progress=False)
        secs = time.perf_counter() - t0
        top = topk_masked(m.user_factors @ m.item_factors.T, x)
        report("implicit_bpr " + implicit.__version__, secs, top, te, users, items, min_w)
        m = CosineRecommender(K=100, num_threads=threads)
        t0 = time.perf_counter()
        m.fit(x, show_progress=False)
        secs = time.perf_counter() - t0
        top = topk_masked((x @ m.similarity).toarray(), x)
        report("implicit_cosine_k100", secs, top, te, users, items, min_w)
    t0 = time.perf_counter()
    scores = knn_numpy(x)
    secs = time.perf_counter() - t0
    report("numpy_itemknn", secs, topk_masked(scores, x), te, users, items, min_w)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""CLINC150 TF-IDF for the logistic-regression benchmark, and scikit-learn's side of it.

    /usr/bin/python3 bench/linear_sklearn.py <clinc150 dir> <out dir> <C> <tol> <max_iter>

Reads train.tsv and test.tsv (all 151 labels: the 150 in-scope intents plus "oos"),
fits TfidfVectorizer() with its defaults on train, and writes for the C benchmark
(bench/linear_bench.c) <out>/clinc_{train,test}.csr: little-endian
    char magic[8] = "LPCSR01\\0", u64 rows, u64 cols, u64 nnz,
    u64 indptr[rows + 1], u32 indices[nnz], f32 values[nnz], i32 labels[rows]
(labels are indices into the sorted label names of the training set). Then it fits
LogisticRegression(multinomial, lbfgs, the given C / tol / max_iter) on the same float64 CSR,
times fit(), and writes "fit_seconds cpu_seconds test_accuracy n_iter" to
<out>/sklearn_logistic.txt.
"""
import struct
import sys
import time

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def read_tsv(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        li, ti = header.index("label"), header.index("text")
        for line in f:
            cols = line.rstrip("\n").split("\t")
            labels.append(cols[li])
            texts.append(cols[ti])
    return labels, texts


def write_csr(path, X, y):
    X = X.tocsr()
    X.sort_indices()
    with open(path, "wb") as f:
        f.write(b"LPCSR01\0")
        f.write(struct.pack("<QQQ", X.shape[0], X.shape[1], X.nnz))
        f.write(X.indptr.astype("<u8").tobytes())
        f.write(X.indices.astype("<u4").tobytes())
        f.write(X.data.astype("<f4").tobytes())
        f.write(np.asarray(y, dtype="<i4").tobytes())


def main():
    src, out, C, tol, max_iter = sys.argv[1], sys.argv[2], float(sys.argv[3]), \
        float(sys.argv[4]), int(sys.argv[5])
    ytr_s, ttr = read_tsv(src + "/train.tsv")
    yte_s, tte = read_tsv(src + "/test.tsv")
    names = sorted(set(ytr_s))
    index = {n: i for i, n in enumerate(names)}
    ytr = np.array([index[s] for s in ytr_s])
    yte = np.array([index[s] for s in yte_s])
    vec = TfidfVectorizer()
    Xtr = vec.fit_transform(ttr)
    Xte = vec.transform(tte)
    write_csr(out + "/clinc_train.csr", Xtr, ytr)
    write_csr(out + "/clinc_test.csr", Xte, yte)
    print("data: train %d x %d (nnz %d), test %d, %d classes; scikit-learn %s"
          % (Xtr.shape[0], Xtr.shape[1], Xtr.nnz, Xte.shape[0], len(names),
             sklearn.__version__))
    clf = LogisticRegression(C=C, solver="lbfgs", tol=tol, max_iter=max_iter)
    t0, c0 = time.perf_counter(), time.process_time()
    clf.fit(Xtr, ytr)
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    acc = float(np.mean(clf.predict(Xte) == yte))
    with open(out + "/sklearn_logistic.txt", "w") as f:
        f.write("%.4f %.4f %.6f %d\n" % (fit_s, cpu_s, acc, int(clf.n_iter_[0])))
    print("sklearn: fit %.3f s (%.3f s CPU), test accuracy %.4f, %d iterations"
          % (fit_s, cpu_s, acc, int(clf.n_iter_[0])))


if __name__ == "__main__":
    main()

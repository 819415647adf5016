#!/usr/bin/python3
"""Peer baselines for bench/cs_bench.sh (customer-service), same splits as Lepton.

  cs_peers.py clinc DATA_DIR WORK_DIR      scikit-learn TF-IDF + LogisticRegression, and
                                           fastText predictions read from WORK_DIR
  cs_peers.py slots TRAIN TEST             scikit-learn per-token LogisticRegression over BIO tags
  cs_peers.py faq FAQ QUERIES              scikit-learn TF-IDF cosine ranking

OOS protocols, as on the Lepton side: (A) OOS rows in training, a text is OOS when `oos` is
the top class; (B) no OOS rows in training or validation, a text is OOS when its top
probability is below the validation 5% quantile (95% of in-scope validation rows kept).
Prints one JSON object per line.
"""
import json
import re
import subprocess
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction import DictVectorizer


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [dict(zip(head, r)) for r in rows]


def oos_metrics(tool, proto, gold, pred, secs):
    gold, pred = np.array(gold), np.array(pred)
    ins = gold != "oos"
    out = {"tool": tool, "protocol": proto, "train_s": round(secs, 2),
           "in_scope_accuracy": float(np.mean(pred[ins] == gold[ins])),
           "oos_recall": float(np.mean(pred[~ins] == "oos"))}
    print(json.dumps(out))


def decide(classes, P, tau):
    top = P.argmax(1)
    return [classes[j] if P[i, j] >= tau else "oos" for i, j in enumerate(top)]


def clinc(data, work):
    tr, va, te = (read_tsv(f"{data}/{s}.tsv") for s in ("train", "val", "test"))
    gold = [r["label"] for r in te]
    for proto in ("A", "B"):
        keep = (lambda r: True) if proto == "A" else (lambda r: r["label"] != "oos")
        t = [r for r in tr if keep(r)]
        v = [r for r in va if keep(r)]
        t0 = time.time()
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        X = vec.fit_transform([r["text"] for r in t])
        clf = LogisticRegression(C=10, max_iter=1000).fit(X, [r["label"] for r in t])
        secs = time.time() - t0
        classes = list(clf.classes_)
        P = clf.predict_proba(vec.transform([r["text"] for r in te]))
        if proto == "A":
            pred = [classes[j] for j in P.argmax(1)]
        else:
            Pv = clf.predict_proba(vec.transform([r["text"] for r in v]))
            tau = np.quantile(Pv.max(1), 0.05)
            pred = decide(classes, P, tau)
        oos_metrics("scikit-learn tfidf+logreg", proto, gold, pred, secs)
        # fastText: the shell script trained WORK/ft_{proto}.bin and timed it
        with open(f"{work}/ft_{proto}.secs") as f:
            ft_secs = float(f.read())

        def ft_probs(path):
            out = subprocess.run(["fasttext", "predict-prob", f"{work}/ft_{proto}.bin", path, "1"],
                                 capture_output=True, text=True, check=True).stdout.split("\n")
            labs, ps = [], []
            for line in out:
                if line.strip():
                    a, b = line.split(" ")
                    labs.append(a.replace("__label__", ""))
                    ps.append(float(b))
            return labs, np.array(ps)

        labs, ps = ft_probs(f"{work}/test.txt")
        if proto == "A":
            pred = labs
        else:
            vl, vp = ft_probs(f"{work}/val_B.txt")
            tau = np.quantile(vp, 0.05)
            pred = [l if p >= tau else "oos" for l, p in zip(labs, ps)]
        oos_metrics("fastText", proto, gold, pred, ft_secs)


TOK = re.compile(rb"[A-Za-z0-9\x80-\xff]+|[^\sA-Za-z0-9\x80-\xff]")


def toks(text):
    b = text.encode()
    return [(m.start(), m.end(), m.group().decode("utf-8", "replace")) for m in TOK.finditer(b)]


def shape(w):
    s = re.sub("[A-Z]", "X", w)
    s = re.sub("[a-z]", "x", s)
    s = re.sub("[0-9]", "d", s)
    return re.sub(r"(.)\1+", r"\1", s)


def spans_of(s):
    if s == "-":
        return []
    out = []
    for it in s.split(";"):
        t, a, b = it.split(" ")
        out.append((t, int(a), int(b)))
    return out


def feats(tk, i, req):
    w = tk[i][2].lower()
    f = {"w=" + w: 1, "sh=" + shape(tk[i][2]): 1, "suf3=" + w[-3:]: 1, "pre3=" + w[:3]: 1,
         "w-1=" + (tk[i - 1][2].lower() if i else "<s>"): 1,
         "w+1=" + (tk[i + 1][2].lower() if i + 1 < len(tk) else "</s>"): 1,
         "req=" + req: 1, "req|sh=" + req + "|" + shape(tk[i][2]): 1}
    return f


def slots(train, test):
    def prep(rows):
        X, Y, meta = [], [], []
        for r in rows:
            tk = toks(r["text"])
            tags = ["O"] * len(tk)
            for t, a, b in spans_of(r["spans"]):
                first = True
                for i, (s, e, _) in enumerate(tk):
                    if s < b and a < e:
                        tags[i] = ("B-" if first else "I-") + t
                        first = False
            for i in range(len(tk)):
                X.append(feats(tk, i, r.get("requested_slots", "-")))
                Y.append(tags[i])
            meta.append((tk, spans_of(r["spans"])))
        return X, Y, meta
    Xtr, Ytr, _ = prep(read_tsv(train))
    Xte, _, meta = prep(read_tsv(test))
    t0 = time.time()
    dv = DictVectorizer()
    clf = LogisticRegression(C=10, max_iter=1000).fit(dv.fit_transform(Xtr), Ytr)
    secs = time.time() - t0
    pred = clf.predict(dv.transform(Xte))
    tp = fp = fn = 0
    k = 0
    for tk, gold in meta:
        tags = pred[k:k + len(tk)]
        k += len(tk)
        got, cur = [], None
        for i, t in enumerate(tags):
            if t.startswith("I-") and cur and cur[0] == t[2:]:
                cur[2] = tk[i][1]
                continue
            if cur:
                got.append(tuple(cur))
                cur = None
            if t != "O":
                cur = [t[2:], tk[i][0], tk[i][1]]
        if cur:
            got.append(tuple(cur))
        g = set(gold)
        tp += len(g & set(got))
        fp += len(set(got) - g)
        fn += len(g - set(got))
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    print(json.dumps({"tool": "scikit-learn per-token logreg", "train_s": round(secs, 2),
                      "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12)}))


def faq(faq_path, queries):
    fq = read_tsv(faq_path)
    qs = read_tsv(queries)
    docs = [r["question"] + " " + r.get("answer", "") for r in fq]
    ids = [r["id"] for r in fq]
    vec = TfidfVectorizer(sublinear_tf=True)
    D = vec.fit_transform(docs)
    S = (vec.transform([q["query"] for q in qs]) @ D.T).toarray()
    top1 = r5 = mrr = 0.0
    for i, q in enumerate(qs):
        order = np.argsort(-S[i], kind="stable")
        rank = [ids[j] for j in order].index(q["faq_id"]) + 1
        top1 += rank == 1
        r5 += rank <= 5
        mrr += 1 / rank
    n = len(qs)
    print(json.dumps({"tool": "scikit-learn tfidf cosine", "top1": top1 / n,
                      "recall_at_5": r5 / n, "mrr": mrr / n}))


if __name__ == "__main__":
    {"clinc": clinc, "slots": slots, "faq": faq}[sys.argv[1]](*sys.argv[2:])

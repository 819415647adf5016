#!/usr/bin/python3
"""Interaction files laid out like three public recommender data sets, for
bench/recommend_any.sh (lepton-recommend against the `implicit` library on data shaped unlike
the project's shop simulator). Synthetic: only the columns, their names, types and separators
follow the originals; the taste signal is planted (10 latent dimensions, item popularity by a
power law, each user's items drawn by popularity x exp(2 * taste . item)).
  lastfm   HetRec 2011 Last.fm user_artists.dat: TAB-separated userID, artistID, weight (play
           counts, log-normal and larger for a better match, median ~ 60, heavy tail);
           test = a random 20% of each user's artists
  amazon   Amazon reviews (ratings only, with the JSON files' names): reviewerID, asin,
           overall (1-5 stars, higher for a better match), unixReviewTime; test = each
           user's last 20% by time
  books    Book-Crossing BX-Book-Ratings.csv: semicolon-separated, quoted "User-ID";"ISBN";
           "Book-Rating", 0 (implicit: read, not rated) for 60% of the rows, else 1-10;
           test = a random 20% of each user's books
2,000 users, 3,000 items, 8-200 interactions a user. Files: OUT/NAME_{train,test}.EXT.

usage: /usr/bin/python3 bench/recommend_lookalike.py OUT_DIR [SEED]
"""
import math
import os
import sys

import numpy as np

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(seed)
U, I, D = 2000, 3000, 10
pu = rng.normal(0, 1 / math.sqrt(D), (U, D))
qi = rng.normal(0, 1 / math.sqrt(D), (I, D))
logpop = -0.9 * np.log1p(rng.permutation(I))  # Zipf-like popularity, random item order


def draw():
    """Per user: items (distinct), their affinity."""
    for u in range(U):
        n = int(min(200, max(8, rng.lognormal(math.log(35), 0.8))))
        aff = qi @ pu[u]
        logit = logpop + 2.0 * aff * math.sqrt(D)
        p = np.exp(logit - logit.max())
        p /= p.sum()
        items = rng.choice(I, size=n, replace=False, p=p)
        yield u, items, aff[items] * math.sqrt(D)


def split_random(n):
    k = max(1, int(round(0.2 * n)))
    test = np.zeros(n, bool)
    test[rng.choice(n, size=k, replace=False)] = True
    return test


lastfm, amazon, books = ([], []), ([], []), ([], [])
for u, items, a in draw():
    plays = np.maximum(1, np.round(rng.lognormal(4.1 + 0.8 * a, 1.3))).astype(int)
    t = split_random(len(items))
    for j, i in enumerate(items):
        lastfm[int(t[j])].append("%d\t%d\t%d\n" % (u + 2, i + 1, plays[j]))
    stars = np.clip(np.round(3.6 + 0.9 * a + rng.normal(0, 0.8, len(items))), 1, 5).astype(int)
    times = np.sort(rng.integers(1_300_000_000, 1_500_000_000, len(items)))
    n_test = max(1, int(round(0.2 * len(items))))
    for j, i in enumerate(items):
        amazon[j >= len(items) - n_test].append(
            "A%013X,B%09d,%d.0,%d\n" % (u * 7919 + 13, i * 104729 % 999999937, stars[j], times[j]))
    t = split_random(len(items))
    stars10 = np.clip(np.round(7 + 1.6 * a + rng.normal(0, 1.2, len(items))), 1, 10).astype(int)
    implicit = rng.random(len(items)) < 0.6
    for j, i in enumerate(items):
        isbn = "%09d%s" % (i * 7907 % 999999999, "0123456789X"[i % 11])
        rating = 0 if implicit[j] else stars10[j]
        books[int(t[j])].append('"%d";"%s";"%d"\n' % (u * 3 + 8, isbn, rating))

for name, ext, header, parts in (
        ("lastfm", "dat", "userID\tartistID\tweight\n", lastfm),
        ("amazon", "csv", "reviewerID,asin,overall,unixReviewTime\n", amazon),
        ("books", "csv", '"User-ID";"ISBN";"Book-Rating"\n', books)):
    for part, rows in (("train", parts[0]), ("test", parts[1])):
        with open(os.path.join(out, "%s_%s.%s" % (name, part, ext)), "w") as f:
            f.write(header)
            f.writelines(rows)

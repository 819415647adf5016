"""dx_ece.py - the ECE lepton computes (lp_metrics_ece: 15 equal bins of the top probability,
bin b holds conf in (b/M, (b+1)/M]), for the diagnosis benchmarks' Python side."""
import numpy as np


def ece(p, y, bins=15):
    conf, pred = p.max(1), p.argmax(1)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    e = 0.0
    for k in range(bins):
        m = idx == k
        if m.any():
            e += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return e

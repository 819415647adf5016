#!/usr/bin/python3
"""Drive `lepton-fraud serve` with POST /v1/score, one transaction at a time in time order on one
keep-alive connection (as a payment gateway's authorization call would), and report the service's
own `latency_us` (features + model + TreeSHAP + rules, measured inside the handler) and the
client's round-trip time, p50/p90/p99.

usage: fraud_serve_latency.py PORT CSV[.gz] [--warm N] [--score N]
  The first --warm rows (after skipping) are posted to warm the velocity state and are not
  counted; the next --score rows are counted. Columns: transaction_id, tx_datetime, customer_id,
  terminal_id, tx_amount (the fraud-sim-handbook / data/fraud layout). Standard library only.
"""
import csv
import gzip
import http.client
import json
import sys
import time


def pct(v, q):
    v = sorted(v)
    return v[int((len(v) - 1) * q)] if v else float("nan")


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    skip = int(opts.get("--skip", 0))
    warm, score = int(opts.get("--warm", 0)), int(opts.get("--score", 10000))
    f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    lat, rtt, errors, n = [], [], 0, 0
    for i, row in enumerate(csv.DictReader(f)):
        if i < skip:
            continue
        if n >= warm + score:
            break
        body = json.dumps({"transaction_id": row["transaction_id"],
                           "tx_datetime": row["tx_datetime"].replace(" ", "T") + "Z",
                           "customer_id": row["customer_id"], "terminal_id": row["terminal_id"],
                           "tx_amount": float(row["tx_amount"])})
        t0 = time.perf_counter()
        conn.request("POST", "/v1/score", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        t1 = time.perf_counter()
        n += 1
        if r.status != 200:
            errors += 1
            if errors <= 3:
                print("error %d: %s" % (r.status, data[:200]), file=sys.stderr)
            continue
        if n > warm:
            lat.append(json.loads(data)["latency_us"])
            rtt.append((t1 - t0) * 1e6)
    print(json.dumps({"scored": len(lat), "errors": errors,
                      "latency_us_p50": pct(lat, 0.5), "latency_us_p90": pct(lat, 0.9),
                      "latency_us_p99": pct(lat, 0.99), "latency_us_max": max(lat or [0]),
                      "rtt_us_p50": round(pct(rtt, 0.5), 1), "rtt_us_p99": round(pct(rtt, 0.99), 1)}))


main()

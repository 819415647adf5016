"""csv_load_pandas.py - the peer side of bench/csv_load.sh: time pandas.read_csv on one file
and print the same key=value line as bench/csv_load.c (rows, cols, seconds, rows/second, peak
RSS from the resource module).   usage: /usr/bin/python3 csv_load_pandas.py FILE"""
import resource
import sys
import time

import pandas as pd


def main():
    path = sys.argv[1]
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    rows, cols = df.shape
    print("rows=%d cols=%d seconds=%.3f rows_per_s=%.0f peak_rss_mb=%.1f pandas=%s"
          % (rows, cols, secs, rows / secs, rss_mb, pd.__version__))


if __name__ == "__main__":
    main()

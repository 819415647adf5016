/*
 * csv_load.c - time lp_frame_read_csv on one file and report rows, columns, seconds,
 * rows/second and peak RSS (getrusage ru_maxrss) as one line of key=value pairs, which
 * bench/csv_load.sh puts next to pandas' numbers. Exit 1 when the read fails.
 *   usage: csv_load FILE
 */
#include <stdio.h>
#include <sys/resource.h>

#include "lepton/lepton.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: csv_load FILE\n");
        return 2;
    }
    lp_frame *f = NULL;
    lp_err err;
    uint64_t t0 = lp_time_ns();
    lp_status st = lp_frame_read_csv(argv[1], NULL, &f, &err);
    double secs = lp_time_since(t0);
    if (st) {
        fprintf(stderr, "csv_load: %s\n", lp_err_text(&err));
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    size_t rows = lp_frame_nrows(f), cols = lp_frame_ncols(f);
    printf("rows=%zu cols=%zu seconds=%.3f rows_per_s=%.0f peak_rss_mb=%.1f kinds=", rows, cols,
           secs, (double)rows / secs, (double)ru.ru_maxrss / 1024.0);
    for (size_t j = 0; j < cols; j++)
        printf("%s%s", j ? "," : "", lp_col_kind_name(lp_frame_col(f, j)->kind));
    printf("\n");
    lp_frame_free(f);
    return 0;
}

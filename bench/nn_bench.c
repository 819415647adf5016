/*
 * nn_bench.c - the nn family on Fashion-MNIST: MLP 784-512-512-10 (relu), Adam lr 1e-3,
 * batch 256, pixels scaled to [0, 1]. Prints one line per epoch (train seconds, test
 * accuracy) and a summary line bench/nn_bench.sh parses. Same model and recipe as
 * bench/nn_torch.py. Not a test: numbers go to bench/RESULTS.md.
 *
 * usage: nn_bench [DATA_DIR [EPOCHS [BACKEND]]]   (default /usr/share/datasets/fashion-mnist,
 *        3 epochs, cpu). Exit 77 when the data set is absent. Threads: OMP_NUM_THREADS and
 *        OPENBLAS_NUM_THREADS. Starts as the lepton programs do (lp_process_tune: OpenMP and
 *        OpenBLAS settings, see base.h), so the bench measures what `lepton train` runs.
 */
#include "lepton/lepton.h"
#include "model/nn.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* IDX (gzip): images (n, rows*cols) scaled to [0, 1] when want_images, else labels (n). */
static float *read_idx(const char *dir, const char *name, bool want_images, size_t *n, size_t *d)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *buf;
    size_t len;
    lp_err err;
    if (lp_file_read(path, &buf, &len, &err)) {
        fprintf(stderr, "%s\n", lp_err_text(&err));
        return NULL;
    }
    size_t hdr = want_images ? 16 : 8;
    if (len < hdr || be32(buf) != (want_images ? 2051u : 2049u)) {
        fprintf(stderr, "%s: not an IDX %s file\n", path, want_images ? "image" : "label");
        free(buf);
        return NULL;
    }
    *n = be32(buf + 4);
    *d = want_images ? (size_t)be32(buf + 8) * be32(buf + 12) : 1;
    if (len < hdr + *n * *d) {
        fprintf(stderr, "%s: truncated\n", path);
        free(buf);
        return NULL;
    }
    float *out = malloc(*n * *d * sizeof *out);
    for (size_t i = 0; out && i < *n * *d; i++)
        out[i] = want_images ? buf[hdr + i] / 255.0f : (float)buf[hdr + i];
    free(buf);
    return out;
}

int main(int argc, char **argv)
{
    lp_process_tune(argv);
    const char *timeout = getenv("OPENBLAS_THREAD_TIMEOUT");
    printf("openblas core %s, OPENBLAS_THREAD_TIMEOUT=%s\n", openblas_get_corename(),
           timeout ? timeout : "(default)");
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 3;
    const char *backend = argc > 3 ? argv[3] : "cpu";
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        printf("skip: %s not found (Debian package dataset-fashion-mnist)\n", probe);
        return 77;
    }
    fclose(f);
    size_t n, d, nt, dt, k;
    float *X = read_idx(dir, "train-images-idx3-ubyte.gz", true, &n, &d);
    float *y = read_idx(dir, "train-labels-idx1-ubyte.gz", false, &k, &dt);
    float *Xt = read_idx(dir, "t10k-images-idx3-ubyte.gz", true, &nt, &dt);
    float *yt = read_idx(dir, "t10k-labels-idx1-ubyte.gz", false, &k, &dt);
    if (!X || !y || !Xt || !yt)
        return 1;

    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "512,512";
    o.activation = "relu";
    o.n_outputs = 10;
    o.lr = 1e-3;
    o.batch_size = 256;
    o.epochs = 1;
    o.seed = 1;
    o.backend = backend;
    lp_err err;
    lp_nn *m;
    if (lp_nn_new(d, &o, &m, &err)) {
        fprintf(stderr, "%s\n", lp_err_text(&err));
        return 1;
    }
    float *pr = malloc(nt * 10 * sizeof *pr);
    double first = 0, total = 0, acc = 0;
    for (int e = 0; e < epochs; e++) {
        uint64_t t0 = lp_time_ns();
        if (lp_nn_train(m, X, y, n, NULL, NULL, 0, &err)) {
            fprintf(stderr, "%s\n", lp_err_text(&err));
            return 1;
        }
        double s = lp_time_since(t0);
        if (e == 0)
            first = s;
        total += s;
        if (lp_nn_predict(m, Xt, nt, pr, &err)) {
            fprintf(stderr, "%s\n", lp_err_text(&err));
            return 1;
        }
        size_t ok = 0;
        for (size_t i = 0; i < nt; i++) {
            size_t c = 0;
            for (size_t j = 1; j < 10; j++)
                if (pr[i * 10 + j] > pr[i * 10 + c])
                    c = j;
            ok += (float)c == yt[i];
        }
        acc = (double)ok / (double)nt;
        printf("lepton epoch %d: %.3f s, test accuracy %.4f\n", e + 1, s, acc);
    }
    printf("RESULT lepton first_epoch_s=%.3f mean_epoch_s=%.3f test_acc=%.4f epochs=%d\n", first,
           total / epochs, acc, epochs);
    lp_nn_free(m);
    free(pr);
    free(X);
    free(y);
    free(Xt);
    free(yt);
    return 0;
}

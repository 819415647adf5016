/*
 * robust.c - accuracy under a gradient attack (explain.h, "Robustness"): the labelled rows are
 * mapped to the design (cleaner + pipeline), attacked there by FGSM or PGD (nn_adv.c), and
 * classified clean and attacked by the net's raw outputs. Only the nn family is attacked;
 * other families get LP_EUNSUPPORTED, with no black-box fallback.
 */
#include "explain/explain_internal.h"

#include "lepton/linalg.h"
#include "model/family.h"
#include "model/nn.h"

#include <stdlib.h>
#include <string.h>

lp_attack_opts lp_attack_opts_default(void)
{
    lp_attack_opts o = {LP_ATTACK_METHOD_FGSM, 0.1, 10, 0.0, 0};
    return o;
}

lp_status lp_attack_method_parse(const char *s, lp_attack_method *out, lp_err *err)
{
    lp_nn_attack a;
    lp_status st = lp_nn_attack_parse(s, &a, err);
    if (!st)
        *out = a == LP_NN_ATTACK_PGD ? LP_ATTACK_METHOD_PGD : LP_ATTACK_METHOD_FGSM;
    return st;
}

static double accuracy(const float *z, size_t n, size_t k, const int32_t *cls)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        size_t b = 0;
        for (size_t c = 1; c < k; c++)
            if (z[i * k + c] > z[i * k + b])
                b = c;
        ok += (int32_t)b == cls[i];
    }
    return n ? (double)ok / (double)n : 0.0;
}

lp_status lp_model_attack_eval(const lp_model *m, const lp_frame *data, const lp_attack_opts *o,
                               lp_attack_result *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!o)
        return lp_err_set(err, LP_EINVAL, "attack: options are NULL");
    lp_model_kind kind = lp_model_get_kind(m);
    if (kind != LP_MODEL_KIND_NN)
        return lp_err_set(err, LP_EUNSUPPORTED, "attack: the attack needs a differentiable model "
                          "(nn); this model is %s", lp_model_kind_name(kind));
    if (lp_model_task(m) == LP_TASK_REGRESSION)
        return lp_err_set(err, LP_EUNSUPPORTED, "attack: accuracy under attack needs a "
                          "classification model; this nn is a regression");
    lp_nn_attack_opts a = lp_nn_attack_opts_default();
    a.method = o->method == LP_ATTACK_METHOD_PGD ? LP_NN_ATTACK_PGD : LP_NN_ATTACK_FGSM;
    a.eps = o->eps;
    a.steps = o->steps;
    a.step_size = o->step_size;
    a.seed = o->seed;
    lp_status st = lp_nn_attack_opts_check(&a, err);
    if (st)
        return st;
    const lp_nn *net = lp_family_nn_net(m, NULL, NULL);
    lp_matf *X = NULL;
    double *y = NULL;
    int32_t *cls = NULL;
    if ((st = lp_model_design_labeled(m, data, &X, &y, &cls, err)))
        return st;
    size_t n = X->rows, d = X->cols, k = lp_nn_n_outputs(net);
    float *fy = lp_mallocarray(n + 1, sizeof(float));
    float *Xa = lp_mallocarray(n * d + 1, sizeof(float));
    float *z = lp_mallocarray(n * k + 1, sizeof(float));
    if (!fy || !Xa || !z) {
        st = lp_err_set(err, LP_ENOMEM, "attack: out of memory for %zu rows", n);
        goto done;
    }
    if (n == 0) {
        st = lp_err_set(err, LP_EINVAL, "attack: no labelled rows");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        fy[i] = (float)cls[i];
    if ((st = lp_nn_predict_raw(net, X->v, n, z, err)))
        goto done;
    out->n = n;
    out->clean_accuracy = accuracy(z, n, k, cls);
    lp_explain_lock();
    st = lp_nn_attack_rows((lp_nn *)net, &a, X->v, fy, n, 0, Xa, err);
    lp_explain_unlock();
    if (!st)
        st = lp_nn_predict_raw(net, Xa, n, z, err);
    if (!st)
        out->adv_accuracy = accuracy(z, n, k, cls);
done:
    lp_matf_free(X);
    free(y);
    free(cls);
    free(fy);
    free(Xa);
    free(z);
    return st;
}

/*
 * nn_arch.c - from options to a layer list: the arch grammar of nn.h ("conv32bn,pool,fc128"),
 * the input shape "CxHxW", and the plan that gives every layer its kind, input and output
 * shapes, window, and workspace needs, plus the parameter and state counts, without
 * allocating anything (a loader checks a blob's counts with it before building).
 *
 * A dense-only spec (hidden="512,512", dropout) plans exactly the layers the nn family always
 * built: dense act [drop] ... dense. Parameters are assigned offsets later (add_params).
 */
#include "model/nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILTERS 4096
#define MAX_KERNEL 15
#define MAX_STRIDE 8

/* Digits at *p as a number (saturating); *p advances; -1 when there are none. */
static long long read_num(const char **p)
{
    if (**p < '0' || **p > '9')
        return -1;
    long long v = 0;
    while (**p >= '0' && **p <= '9') {
        if (v < 100000000)
            v = v * 10 + (**p - '0');
        (*p)++;
    }
    return v;
}

static lp_status bad_token(const char *arch, const char *tok, size_t len, const char *why,
                           lp_err *err)
{
    return lp_err_set(err, LP_EINVAL, "nn: arch=\"%s\": token \"%.*s\": %s", arch, (int)len, tok,
                      why);
}

/* One token [tok, tok + len) into *sp. */
static lp_status parse_token(const char *arch, const char *tok, size_t len, lp_nn_spec *sp,
                             lp_err *err)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return bad_token(arch, tok, len, len ? "too long" : "empty (two commas in a row?)", err);
    memcpy(buf, tok, len);
    buf[len] = '\0';
    memset(sp, 0, sizeof *sp);
    const char *p = buf;
    if (strncmp(p, "conv", 4) == 0) {
        p += 4;
        long long f = read_num(&p), k = 3, s = 1;
        if (f < 1 || f > MAX_FILTERS)
            return bad_token(arch, tok, len, "expected conv<filters> with filters in [1, 4096]",
                             err);
        if (*p == 'k') {
            p++;
            k = read_num(&p);
            if (k < 1 || k > MAX_KERNEL || k % 2 == 0)
                return bad_token(arch, tok, len, "kernel k<K> must be odd and in [1, 15]", err);
        }
        if (*p == 's') {
            p++;
            s = read_num(&p);
            if (s < 1 || s > MAX_STRIDE)
                return bad_token(arch, tok, len, "stride s<S> must be in [1, 8]", err);
        }
        if (strcmp(p, "bn") == 0)
            sp->bn = true, p += 2;
        if (*p)
            return bad_token(arch, tok, len, "expected conv<F>[k<K>][s<S>][bn]", err);
        sp->kind = LP_NN_LAYER_KIND_CONV2D;
        sp->width = (size_t)f;
        sp->k = (size_t)k;
        sp->s = (size_t)s;
        return LP_OK;
    }
    if (strncmp(p, "fc", 2) == 0) {
        p += 2;
        long long n = read_num(&p);
        if (n < 1 || n > LP_NN_MAX_WIDTH)
            return bad_token(arch, tok, len, "expected fc<units> with units in [1, 1048576]", err);
        if (strcmp(p, "bn") == 0)
            sp->bn = true, p += 2;
        if (*p)
            return bad_token(arch, tok, len, "expected fc<N>[bn]", err);
        sp->kind = LP_NN_LAYER_KIND_DENSE;
        sp->width = (size_t)n;
        return LP_OK;
    }
    lp_nn_layer_kind pk;
    if (strncmp(p, "maxpool", 7) == 0)
        p += 7, pk = LP_NN_LAYER_KIND_MAXPOOL;
    else if (strncmp(p, "avgpool", 7) == 0)
        p += 7, pk = LP_NN_LAYER_KIND_AVGPOOL;
    else if (strncmp(p, "pool", 4) == 0)
        p += 4, pk = LP_NN_LAYER_KIND_MAXPOOL;
    else if (strcmp(p, "gap") == 0) {
        sp->kind = LP_NN_LAYER_KIND_GAP;
        return LP_OK;
    } else if (strcmp(p, "bn") == 0) {
        sp->kind = LP_NN_LAYER_KIND_BATCHNORM;
        return LP_OK;
    } else if (strcmp(p, "drop") == 0) {
        sp->kind = LP_NN_LAYER_KIND_DROPOUT;
        return LP_OK;
    } else
        return bad_token(arch, tok, len,
                         "unknown layer (expected conv<F>[k<K>][s<S>][bn], pool[<K>], "
                         "maxpool[<K>], avgpool[<K>], gap, bn, fc<N>[bn] or drop)",
                         err);
    long long k = 2;
    if (*p) {
        k = read_num(&p);
        if (k < 1 || k > MAX_KERNEL || *p)
            return bad_token(arch, tok, len, "pool window must be an integer in [1, 15]", err);
    }
    sp->kind = pk;
    sp->k = sp->s = (size_t)k;
    return LP_OK;
}

lp_status lp_nn_parse_arch(const lp_nn_opts *o, lp_nn_spec *specs, size_t *k, lp_err *err)
{
    *k = 0;
    const char *a = o->arch;
    if (!a || !*a) {
        /* the dense spec: hidden widths, each followed by dropout when p > 0 */
        const char *h = o->hidden ? o->hidden : "";
        const char *p = h;
        while (*p == ' ')
            p++;
        if (!*p)
            return LP_OK;
        for (;;) {
            if (*k + 2 > LP_NN_MAX_SPEC || *k / (o->dropout > 0 ? 2 : 1) >= LP_NN_MAX_HIDDEN)
                return lp_err_set(err, LP_EINVAL, "nn: hidden=\"%s\": more than %d layers", h,
                                  LP_NN_MAX_HIDDEN);
            while (*p == ' ')
                p++;
            long long v = read_num(&p);
            if (v < 0)
                return lp_err_set(err, LP_EINVAL,
                                  "nn: hidden=\"%s\": width %zu is not an integer (expected "
                                  "comma-separated widths such as \"512,512\")",
                                  h, *k + 1);
            if (v < 1 || v > LP_NN_MAX_WIDTH)
                return lp_err_set(err, LP_EINVAL,
                                  "nn: hidden=\"%s\": width %zu is %s, must be an integer in "
                                  "[1, %d]",
                                  h, *k + 1, v == 0 ? "0" : "too large", LP_NN_MAX_WIDTH);
            memset(&specs[*k], 0, sizeof specs[*k]);
            specs[*k].kind = LP_NN_LAYER_KIND_DENSE;
            specs[(*k)++].width = (size_t)v;
            if (o->dropout > 0) {
                memset(&specs[*k], 0, sizeof specs[*k]);
                specs[(*k)++].kind = LP_NN_LAYER_KIND_DROPOUT;
            }
            while (*p == ' ')
                p++;
            if (!*p)
                return LP_OK;
            if (*p != ',')
                return lp_err_set(err, LP_EINVAL,
                                  "nn: hidden=\"%s\": unexpected '%c' (expected ',')", h, *p);
            p++;
        }
    }
    const char *p = a;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (*k == LP_NN_MAX_SPEC)
            return lp_err_set(err, LP_EINVAL, "nn: arch=\"%s\": more than %d tokens", a,
                              LP_NN_MAX_SPEC);
        lp_status st = parse_token(a, p, len, &specs[*k], err);
        if (st)
            return st;
        if (specs[*k].kind == LP_NN_LAYER_KIND_DROPOUT && !(o->dropout > 0))
            return lp_err_set(err, LP_EINVAL, "nn: arch=\"%s\": \"drop\" needs dropout > 0", a);
        (*k)++;
        if (!e)
            return LP_OK;
        p = e + 1;
    }
}

lp_status lp_nn_parse_shape(const char *s, size_t d, size_t *c, size_t *h, size_t *w,
                            lp_err *err)
{
    if (!s || !*s) {
        *c = d, *h = 1, *w = 1;
        return LP_OK;
    }
    const char *p = s;
    long long v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = read_num(&p);
        if (v[i] < 1 || v[i] > LP_NN_MAX_WIDTH || (i < 2 && *p != 'x') || (i == 2 && *p))
            return lp_err_set(err, LP_EINVAL,
                              "nn: input_shape=\"%s\": expected CxHxW with each in [1, %d]", s,
                              LP_NN_MAX_WIDTH);
        if (i < 2)
            p++;
    }
    if ((unsigned long long)v[0] * (unsigned long long)v[1] * (unsigned long long)v[2] != d)
        return lp_err_set(err, LP_EINVAL,
                          "nn: input_shape=\"%s\" holds %llu values, the input has %zu features",
                          s, (unsigned long long)(v[0] * v[1] * v[2]), d);
    *c = (size_t)v[0], *h = (size_t)v[1], *w = (size_t)v[2];
    return LP_OK;
}

/* Append one planned layer (layers may be NULL: count only). */
static lp_status push(lp_nn_layer *layers, size_t cap, size_t *n, const lp_nn_layer *L,
                      lp_err *err)
{
    if (*n >= 4 * LP_NN_MAX_SPEC + 1)
        return lp_err_set(err, LP_EINVAL, "nn: too many layers");
    if (layers) {
        if (*n >= cap)
            return lp_err_set(err, LP_EINTERNAL, "nn: layer list overflow");
        layers[*n] = *L;
        layers[*n].index = *n;
        layers[*n].ops = lp_nn_layer_ops_of(L->kind);
    }
    (*n)++;
    return LP_OK;
}

lp_status lp_nn_plan(size_t d, const lp_nn_opts *o, lp_nn_layer *layers, size_t cap,
                     size_t *n_layers, uint64_t *n_params, size_t *n_state, lp_err *err)
{
    lp_nn_spec specs[LP_NN_MAX_SPEC];
    size_t k, c, h, w;
    lp_status st = lp_nn_parse_arch(o, specs, &k, err);
    if (!st)
        st = lp_nn_parse_shape(o->input_shape, d, &c, &h, &w, err);
    if (st)
        return st;
    lp_act_kind act;
    st = lp_act_kind_parse(o->activation ? o->activation : "relu", &act, err);
    if (st)
        return st;
    size_t n = 0;
    uint64_t np = 0;
    size_t ns = 0;
    const char *arch = o->arch && *o->arch ? o->arch : (o->hidden ? o->hidden : "");
    for (size_t t = 0; t <= k; t++) {
        lp_nn_spec last = {LP_NN_LAYER_KIND_DENSE, (size_t)o->n_outputs, 0, 0, false};
        const lp_nn_spec *sp = t < k ? &specs[t] : &last;
        lp_nn_layer L;
        memset(&L, 0, sizeof L);
        L.c = c, L.h = h, L.w = w;
        L.in = c * h * w;
        L.kind = sp->kind;
        bool then_act = false, then_bn = sp->bn;
        switch (sp->kind) {
        case LP_NN_LAYER_KIND_DENSE:
            L.in = c * h * w;
            L.oc = sp->width, L.oh = 1, L.ow = 1;
            np += (uint64_t)L.oc * L.in + L.oc;
            then_act = t < k;
            break;
        case LP_NN_LAYER_KIND_CONV2D: {
            if (h == 1 && w == 1 && !(o->input_shape && *o->input_shape))
                return lp_err_set(err, LP_EINVAL,
                                  "nn: arch=\"%s\": a convolution needs input_shape (CxHxW)", arch);
            lp_conv2d_geom g = {1, c, h, w, sp->k, sp->k, sp->s, sp->s, sp->k / 2, sp->k / 2};
            size_t oh, ow;
            if ((st = lp_conv2d_geom_check(&g, "nn conv", &oh, &ow, err)))
                return st;
            L.g = g;
            L.oc = sp->width, L.oh = oh, L.ow = ow;
            size_t ckk = c * sp->k * sp->k, P = oh * ow;
            L.ws = ckk * P + L.oc;
            L.ws_fixed = L.oc * P;
            np += (uint64_t)L.oc * ckk + L.oc;
            then_act = true;
            break;
        }
        case LP_NN_LAYER_KIND_MAXPOOL:
        case LP_NN_LAYER_KIND_AVGPOOL:
        case LP_NN_LAYER_KIND_GAP: {
            if (h == 1 && w == 1 && sp->kind != LP_NN_LAYER_KIND_GAP)
                return lp_err_set(err, LP_EINVAL,
                                  "nn: arch=\"%s\": pooling needs a spatial input (input_shape "
                                  "CxHxW, before any fc layer)",
                                  arch);
            lp_conv2d_geom g = {1, c, h, w, sp->k, sp->k, sp->s, sp->s, 0, 0};
            if (sp->kind == LP_NN_LAYER_KIND_GAP)
                g.kh = h, g.kw = w, g.stride_h = g.stride_w = 1;
            size_t oh, ow;
            if ((st = lp_conv2d_geom_check(&g, "nn pool", &oh, &ow, err)))
                return lp_err_prefix(err, "nn: arch=\"%s\"", arch);
            L.g = g;
            L.oc = c, L.oh = oh, L.ow = ow;
            if (sp->kind == LP_NN_LAYER_KIND_MAXPOOL)
                L.ws = 2 * c * oh * ow;
            break;
        }
        case LP_NN_LAYER_KIND_BATCHNORM:
            then_bn = false;
            L.oc = c, L.oh = h, L.ow = w;
            L.ws = 3 * L.in + c;
            L.ws_fixed = h * w * c + 8 * c;
            L.s_off = ns;
            ns += 2 * c;
            np += 2 * (uint64_t)c;
            break;
        case LP_NN_LAYER_KIND_DROPOUT:
            L.oc = c, L.oh = h, L.ow = w;
            L.p = o->dropout;
            break;
        default:
            return lp_err_set(err, LP_EINTERNAL, "nn: unplanned layer kind %d", (int)sp->kind);
        }
        L.out = L.oc * L.oh * L.ow;
        if ((st = push(layers, cap, &n, &L, err)))
            return st;
        c = L.oc, h = L.oh, w = L.ow;
        if (then_bn) {
            lp_nn_layer B;
            memset(&B, 0, sizeof B);
            B.kind = LP_NN_LAYER_KIND_BATCHNORM;
            B.c = B.oc = c, B.h = B.oh = h, B.w = B.ow = w;
            B.in = B.out = c * h * w;
            B.ws = 3 * B.in + c;
            B.ws_fixed = h * w * c + 8 * c;
            B.s_off = ns;
            ns += 2 * c;
            np += 2 * (uint64_t)c;
            if ((st = push(layers, cap, &n, &B, err)))
                return st;
        }
        if (then_act) {
            lp_nn_layer A;
            memset(&A, 0, sizeof A);
            A.kind = LP_NN_LAYER_KIND_ACT;
            A.act = act;
            A.c = A.oc = c, A.h = A.oh = h, A.w = A.ow = w;
            A.in = A.out = c * h * w;
            if ((st = push(layers, cap, &n, &A, err)))
                return st;
        }
    }
    *n_layers = n;
    if (n_params)
        *n_params = np;
    if (n_state)
        *n_state = ns;
    return LP_OK;
}

/*
 * swap.c - the hot-swap pointer: an atomically replaced, reference-counted object (a model).
 *
 * Each installed object lives in a node {obj, refs, generation}. The swap itself holds one
 * reference to the current node; every lp_swap_acquire adds one. Loading the current node and
 * incrementing its count must be one step with respect to a concurrent lp_swap_set dropping
 * the swap's reference (else the node could reach zero and be freed between the load and the
 * increment), so acquire and set share a tiny critical section (a mutex held for a pointer
 * load and an atomic add: no allocation, no call-out). Release is lock-free: the thread whose
 * decrement reaches zero runs the destructor, which therefore runs exactly once per object.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lepton/serve.h"

struct lp_swap_ref {
    void *obj;
    _Atomic uint64_t refs;
    uint64_t generation;
    lp_swap_destroy_fn destroy;
    void *destroy_user;
};

struct lp_swap {
    pthread_mutex_t mu;
    lp_swap_ref *cur; /* guarded by mu */
    uint64_t generation;
    lp_swap_destroy_fn destroy;
    void *destroy_user;
};

static lp_swap_ref *node_new(lp_swap *s, void *obj)
{
    lp_swap_ref *n = malloc(sizeof *n);
    if (!n) return NULL;
    n->obj = obj;
    atomic_init(&n->refs, 1);
    n->generation = ++s->generation;
    n->destroy = s->destroy;
    n->destroy_user = s->destroy_user;
    return n;
}

lp_swap *lp_swap_new(void *obj, lp_swap_destroy_fn destroy, void *destroy_user)
{
    lp_swap *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->destroy = destroy;
    s->destroy_user = destroy_user;
    s->cur = node_new(s, obj);
    if (!s->cur) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void lp_swap_release(lp_swap_ref *r)
{
    if (!r) return;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        if (r->destroy && r->obj) r->destroy(r->obj, r->destroy_user);
        free(r);
    }
}

void lp_swap_free(lp_swap *s)
{
    if (!s) return;
    lp_swap_release(s->cur);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

lp_swap_ref *lp_swap_acquire(lp_swap *s)
{
    if (!s) return NULL;
    pthread_mutex_lock(&s->mu);
    lp_swap_ref *r = s->cur;
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    return r;
}

void *lp_swap_ref_object(const lp_swap_ref *r)
{
    return r ? r->obj : NULL;
}

uint64_t lp_swap_ref_generation(const lp_swap_ref *r)
{
    return r ? r->generation : 0;
}

lp_status lp_swap_set(lp_swap *s, void *obj, lp_err *err)
{
    if (!s) return lp_err_set(err, LP_EINVAL, "swap: no swap given");
    pthread_mutex_lock(&s->mu);
    lp_swap_ref *n = node_new(s, obj);
    if (!n) {
        pthread_mutex_unlock(&s->mu);
        return lp_err_set(err, LP_ENOMEM, "swap: out of memory installing a new object");
    }
    lp_swap_ref *old = s->cur;
    s->cur = n;
    pthread_mutex_unlock(&s->mu);
    /* outside the lock: the destructor may be slow (freeing a large model) */
    lp_swap_release(old);
    return LP_OK;
}

uint64_t lp_swap_generation(lp_swap *s)
{
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    uint64_t g = s->cur->generation;
    pthread_mutex_unlock(&s->mu);
    return g;
}

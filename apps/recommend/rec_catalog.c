/*
 * rec_catalog.c - the recommend service's item catalog: category and in-stock flag per item id
 * (POST /v1/items, stored in SQLite by the service), in an open-addressing hash table of indices
 * into an array of items. Not thread-safe: the service guards it with a read-write lock.
 */
#include <stdlib.h>
#include <string.h>

#include "rec.h"

const rec_item *rec_cat_find(const rec_catalog *c, const char *id)
{
    if (!c->n_slots) return NULL;
    for (size_t p = rec_hash(id) & (c->n_slots - 1);; p = (p + 1) & (c->n_slots - 1)) {
        int32_t v = c->slots[p];
        if (v < 0) return NULL;
        if (strcmp(c->items[v].id, id) == 0) return &c->items[v];
    }
}

void rec_cat_clear(rec_catalog *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->items[i].id), free(c->items[i].category);
    free(c->items);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

lp_status rec_cat_put(rec_catalog *c, const char *id, const char *category, int in_stock,
                      lp_err *err)
{
    rec_item *it = (rec_item *)rec_cat_find(c, id);
    if (!it) {
        if ((c->n + 1) * 2 > c->n_slots) {
            size_t ns = c->n_slots ? c->n_slots * 2 : 256;
            int32_t *slots = lp_mallocarray(ns, sizeof *slots);
            if (!slots) return lp_err_set(err, LP_ENOMEM, "catalog: out of memory");
            for (size_t p = 0; p < ns; p++) slots[p] = -1;
            for (size_t i = 0; i < c->n; i++) {
                size_t p = rec_hash(c->items[i].id) & (ns - 1);
                while (slots[p] >= 0) p = (p + 1) & (ns - 1);
                slots[p] = (int32_t)i;
            }
            free(c->slots);
            c->slots = slots;
            c->n_slots = ns;
        }
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 256;
            rec_item *ni = lp_reallocarray(c->items, cap, sizeof *ni);
            if (!ni) return lp_err_set(err, LP_ENOMEM, "catalog: out of memory");
            c->items = ni;
            c->cap = cap;
        }
        char *copy = lp_strdup(id);
        if (!copy) return lp_err_set(err, LP_ENOMEM, "catalog: out of memory");
        it = &c->items[c->n];
        *it = (rec_item){.id = copy, .category = NULL, .in_stock = true};
        size_t p = rec_hash(id) & (c->n_slots - 1);
        while (c->slots[p] >= 0) p = (p + 1) & (c->n_slots - 1);
        c->slots[p] = (int32_t)c->n++;
    }
    if (category) {
        char *cc = lp_strdup(category);
        if (!cc) return lp_err_set(err, LP_ENOMEM, "catalog: out of memory");
        free(it->category);
        it->category = cc;
    }
    if (in_stock >= 0 && (bool)in_stock != it->in_stock) {
        c->out_of_stock += in_stock ? (size_t)-1 : 1;
        it->in_stock = in_stock;
    }
    return LP_OK;
}

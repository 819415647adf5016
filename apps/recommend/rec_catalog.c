/*
 * rec_catalog.c - the recommend service's item catalog: category and in-stock flag per item id
 * (POST /v1/items, stored in SQLite by the service), in an open-addressing hash table of indices
 * into an array of items, and the reading of a catalog file (serve --items). Not thread-safe:
 * the service guards the catalog with a read-write lock.
 */
#include <stdio.h>
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

long rec_id_control_at(const char *v)
{
    for (size_t i = 0; v[i]; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f ||
            ((unsigned char)v[i] == 0xC2 && (unsigned char)v[i + 1] >= 0x80 &&
             (unsigned char)v[i + 1] <= 0x9F))
            return (long)i;
    return -1;
}

void rec_cat_file_free(rec_cat_file *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->ids[i]), free(f->cats[i]);
    free(f->ids), free(f->cats), free(f->stock);
    memset(f, 0, sizeof *f);
}

/* "'name'" of column j of f into buf, or "none" when j < 0. */
static void col_label(const lp_frame *f, long j, char *buf, size_t cap)
{
    if (j < 0) snprintf(buf, cap, "none");
    else snprintf(buf, cap, "'%.*s'", (int)cap - 3, lp_frame_col(f, (size_t)j)->name);
}

lp_status rec_cat_file_read(const char *path, const char *item_col, rec_cat_file *out,
                            lp_err *err)
{
    memset(out, 0, sizeof *out);
    lp_frame *f = NULL;
    lp_status st = lp_frame_read(path, NULL, &f, err);
    if (st) return st;
    static const char *const id_like[] = {"itemid", "item", "productid", "asin", "isbn", NULL};
    static const char *const id_only[] = {"id", NULL};
    static const char *const cat_like[] = {"category", "genre", "department", NULL};
    static const char *const stock_like[] = {"instock", NULL};
    long ji = item_col ? lp_frame_find(f, item_col) : -1;
    if (ji < 0) ji = lp_frame_find_like(f, id_like);
    if (ji < 0) ji = lp_frame_find_like(f, id_only);
    if (ji < 0) ji = 0;
    long jc = lp_frame_find_like(f, cat_like), js = lp_frame_find_like(f, stock_like);
    col_label(f, ji, out->id_col, sizeof out->id_col);
    col_label(f, jc, out->cat_col, sizeof out->cat_col);
    col_label(f, js, out->stock_col, sizeof out->stock_col);
    size_t n = lp_frame_nrows(f);
    const lp_column *ci = lp_frame_col(f, (size_t)ji);
    const lp_column *cc = jc >= 0 ? lp_frame_col(f, (size_t)jc) : NULL;
    const lp_column *cs = js >= 0 ? lp_frame_col(f, (size_t)js) : NULL;
    out->ids = lp_calloc(n ? n : 1, sizeof *out->ids);
    out->cats = lp_calloc(n ? n : 1, sizeof *out->cats);
    out->stock = lp_mallocarray(n ? n : 1, sizeof *out->stock);
    if (!out->ids || !out->cats || !out->stock) st = lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        char b1[LP_MF_ID_MAX + 1], b2[LP_MF_ID_MAX + 1], b3[32];
        const char *id = lp_column_cell_str(ci, i, b1, sizeof b1);
        const char *cat = cc ? lp_column_cell_str(cc, i, b2, sizeof b2) : NULL;
        const char *is = cs ? lp_column_cell_str(cs, i, b3, sizeof b3) : NULL;
        if (!id || !*id || strlen(id) > LP_MF_ID_MAX || rec_id_control_at(id) >= 0) {
            out->skipped++;
            continue;
        }
        size_t k = out->n;
        bool in = true; /* a cell that says nothing keeps what is stored */
        out->stock[k] = is && *is && lp_parse_bool(is, strlen(is), true, &in) ? in : -1;
        out->ids[k] = lp_strdup(id);
        out->cats[k] = cat && *cat ? lp_strdup(cat) : NULL;
        out->n++;
        if (!out->ids[k] || (cat && *cat && !out->cats[k]))
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    lp_frame_free(f);
    if (st) rec_cat_file_free(out);
    return st;
}

/*
 * lpm.c - the .lpm model file: writer and validating reader (layout in docs/model-format.md).
 *
 *   0   8  magic  89 'L' 'P' 'M' 0D 0A 1A 0A   (PNG-style: catches text-mode mangling)
 *   8   4  format version (u32 LE)              12  4  flags (0)
 *   16  8  header offset (= 64)                 24  8  header length (JSON bytes)
 *   32  8  section table offset                 40  8  section count
 *   48 16  zero
 *   64  JSON header, zero-padded to a multiple of 64
 *   ..  section table: per section 80 bytes: name[48] NUL-padded, dtype u32, crc32 u32,
 *       offset u64, size u64, reserved u64 (0); zero-padded to a multiple of 64
 *   ..  section data, each starting at a multiple of 64, zero-padded
 *   end 8  CRC-32 (u32 LE) of every byte before it, then "LPME"
 * All integers little-endian. The reader trusts nothing: every offset and size is checked
 * against the file length before use.
 */
#include "lepton/registry.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t MAGIC[8] = {0x89, 'L', 'P', 'M', 0x0D, 0x0A, 0x1A, 0x0A};
#define ALIGN 64u
#define ENTRY 80u
#define TRAILER 8u

typedef struct section {
    char name[LP_LPM_NAME_MAX];
    uint32_t dtype, crc;
    uint64_t offset, size;
    uint8_t *data; /* writer: owned copy; reader: points into the file buffer */
} section;

struct lp_lpm_writer {
    section *s;
    size_t n, cap;
};

struct lp_lpm {
    uint8_t *buf; /* whole file, 64-byte aligned allocation */
    size_t len;
    uint32_t version;
    char *header;
    section *s;
    size_t n;
    char name[256];
};

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= LP_LPM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
            return false;
    }
    return true;
}

lp_lpm_writer *lp_lpm_writer_new(void) { return calloc(1, sizeof(lp_lpm_writer)); }

void lp_lpm_writer_free(lp_lpm_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->s[i].data);
    free(w->s);
    free(w);
}

lp_status lp_lpm_writer_add(lp_lpm_writer *w, const char *name, lp_lpm_dtype dtype,
                            const void *data, size_t size, lp_err *err)
{
    if (!name || !name_ok(name))
        return lp_err_set(err, LP_EINVAL,
                          "model file section name '%s' is invalid (1-47 of A-Z a-z 0-9 _ . : / -)",
                          name ? name : "");
    if ((unsigned)dtype > LP_LPM_DTYPE_U8)
        return lp_err_set(err, LP_EINVAL, "section '%s': unknown dtype %d", name, (int)dtype);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->s[i].name, name) == 0)
            return lp_err_set(err, LP_EEXIST, "section '%s' added twice", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        section *s = lp_reallocarray(w->s, cap, sizeof *s);
        if (!s)
            return lp_err_set(err, LP_ENOMEM, "out of memory adding section '%s'", name);
        w->s = s;
        w->cap = cap;
    }
    section *s = &w->s[w->n];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->dtype = (uint32_t)dtype;
    s->size = size;
    s->data = malloc(size ? size : 1);
    if (!s->data)
        return lp_err_set(err, LP_ENOMEM, "out of memory for section '%s' (%zu bytes)", name, size);
    if (size)
        memcpy(s->data, data, size);
    s->crc = lp_crc32(0, s->data, size);
    w->n++;
    return LP_OK;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

lp_status lp_lpm_writer_finish(const lp_lpm_writer *w, const char *header_json, uint8_t **out,
                               size_t *len, lp_err *err)
{
    *out = NULL;
    *len = 0;
    size_t hlen = header_json ? strlen(header_json) : 0;
    cJSON *j = cJSON_ParseWithLength(header_json ? header_json : "", hlen);
    bool obj = j && cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!obj)
        return lp_err_set(err, LP_EINVAL, "model file header is not a JSON object");
    uint64_t table_off = align_up(64 + hlen);
    uint64_t pos = align_up(table_off + (uint64_t)w->n * ENTRY);
    uint64_t *offs = lp_mallocarray(w->n, sizeof(uint64_t));
    if (!offs)
        return lp_err_set(err, LP_ENOMEM, "out of memory writing model file");
    for (size_t i = 0; i < w->n; i++) {
        offs[i] = pos;
        pos = align_up(pos + w->s[i].size);
    }
    uint64_t total = pos + TRAILER;
    uint8_t *b = calloc(1, (size_t)total);
    if (!b) {
        free(offs);
        return lp_err_set(err, LP_ENOMEM, "out of memory writing model file (%llu bytes)",
                          (unsigned long long)total);
    }
    memcpy(b, MAGIC, 8);
    put_u32(b + 8, LP_LPM_VERSION);
    put_u32(b + 12, 0);
    put_u64(b + 16, 64);
    put_u64(b + 24, hlen);
    put_u64(b + 32, table_off);
    put_u64(b + 40, w->n);
    memcpy(b + 64, header_json, hlen);
    for (size_t i = 0; i < w->n; i++) {
        uint8_t *e = b + table_off + i * ENTRY;
        memcpy(e, w->s[i].name, strlen(w->s[i].name));
        put_u32(e + 48, w->s[i].dtype);
        put_u32(e + 52, w->s[i].crc);
        put_u64(e + 56, offs[i]);
        put_u64(e + 64, w->s[i].size);
        if (w->s[i].size)
            memcpy(b + offs[i], w->s[i].data, w->s[i].size);
    }
    free(offs);
    put_u32(b + total - 8, lp_crc32(0, b, total - 8));
    memcpy(b + total - 4, "LPME", 4);
    *out = b;
    *len = (size_t)total;
    return LP_OK;
}

lp_status lp_lpm_writer_save(const lp_lpm_writer *w, const char *header_json, const char *path,
                             lp_err *err)
{
    uint8_t *b;
    size_t n;
    lp_status st = lp_lpm_writer_finish(w, header_json, &b, &n, err);
    if (st)
        return lp_err_prefix(err, "%s", path);
    st = lp_file_write(path, b, n, err);
    free(b);
    return st;
}

/* ---- reader --------------------------------------------------------------------------------*/

void lp_lpm_free(lp_lpm *m)
{
    if (!m)
        return;
    free(m->buf);
    free(m->header);
    free(m->s);
    free(m);
}

#define BAD(...) (lp_err_set(err, LP_EFORMAT, __VA_ARGS__), st = LP_EFORMAT, (void)0)

lp_status lp_lpm_parse(const void *data, size_t len, const char *name, lp_lpm **out, lp_err *err)
{
    *out = NULL;
    const char *nm = name ? name : "model file";
    if (len < 64 + TRAILER || memcmp(data, MAGIC, 8) != 0)
        return lp_err_set(err, LP_EFORMAT, "%s: not a Lepton model file (bad magic or too short)",
                          nm);
    lp_lpm *m = calloc(1, sizeof *m);
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", nm);
    snprintf(m->name, sizeof m->name, "%s", nm);
    if (posix_memalign((void **)&m->buf, ALIGN, len)) {
        free(m);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory (%zu bytes)", nm, len);
    }
    memcpy(m->buf, data, len);
    m->len = len;
    const uint8_t *b = m->buf;
    lp_status st = LP_OK;
    m->version = get_u32(b + 8);
    uint64_t hoff = get_u64(b + 16), hlen = get_u64(b + 24), toff = get_u64(b + 32),
             n = get_u64(b + 40);
    if (m->version == 0 || m->version > LP_LPM_VERSION) {
        st = lp_err_set(err, LP_EVERSION,
                        "%s: model file format version %u; this build reads up to %u (written by "
                        "a newer Lepton?)",
                        nm, m->version, LP_LPM_VERSION);
        goto fail;
    }
    if (memcmp(b + len - 4, "LPME", 4) != 0) {
        BAD("%s: truncated model file (end marker missing)", nm);
        goto fail;
    }
    uint32_t want = get_u32(b + len - 8), got = lp_crc32(0, b, len - 8);
    if (want != got) {
        BAD("%s: model file checksum mismatch (stored %08x, computed %08x): corrupted", nm, want,
            got);
        goto fail;
    }
    uint64_t body = len - TRAILER;
    if (hoff != 64 || hlen > body - 64 || toff < 64 + hlen || toff > body ||
        n > (body - toff) / ENTRY) {
        BAD("%s: model file layout is inconsistent (header %llu+%llu, table %llu, %llu sections, "
            "file %zu bytes)",
            nm, (unsigned long long)hoff, (unsigned long long)hlen, (unsigned long long)toff,
            (unsigned long long)n, len);
        goto fail;
    }
    m->header = lp_strndup((const char *)b + 64, (size_t)hlen);
    if (!m->header) {
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", nm);
        goto fail;
    }
    cJSON *j = cJSON_ParseWithLength(m->header, (size_t)hlen);
    bool obj = j && cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!obj || strlen(m->header) != hlen) {
        BAD("%s: model file header is not a JSON object", nm);
        goto fail;
    }
    m->s = lp_calloc((size_t)n, sizeof(section));
    if (!m->s) {
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", nm);
        goto fail;
    }
    m->n = (size_t)n;
    for (size_t i = 0; i < m->n; i++) {
        const uint8_t *e = b + toff + i * ENTRY;
        section *s = &m->s[i];
        if (memchr(e, 0, LP_LPM_NAME_MAX) == NULL) {
            BAD("%s: section %zu has an unterminated name", nm, i);
            goto fail;
        }
        memcpy(s->name, e, LP_LPM_NAME_MAX);
        s->dtype = get_u32(e + 48);
        s->crc = get_u32(e + 52);
        s->offset = get_u64(e + 56);
        s->size = get_u64(e + 64);
        if (!name_ok(s->name) || s->dtype > LP_LPM_DTYPE_U8) {
            BAD("%s: section %zu has an invalid name or type", nm, i);
            goto fail;
        }
        if (s->offset % ALIGN || s->offset < toff + n * ENTRY || s->offset > body ||
            s->size > body - s->offset) {
            BAD("%s: section '%s' lies outside the file (offset %llu, size %llu)", nm, s->name,
                (unsigned long long)s->offset, (unsigned long long)s->size);
            goto fail;
        }
        s->data = m->buf + s->offset;
        if (lp_crc32(0, s->data, (size_t)s->size) != s->crc) {
            BAD("%s: section '%s' checksum mismatch: corrupted", nm, s->name);
            goto fail;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->s[k].name, s->name) == 0) {
                BAD("%s: section '%s' appears twice", nm, s->name);
                goto fail;
            }
    }
    *out = m;
    return LP_OK;
fail:
    lp_lpm_free(m);
    return st;
}

lp_status lp_lpm_load(const char *path, lp_lpm **out, lp_err *err)
{
    *out = NULL;
    uint8_t *d;
    size_t n;
    lp_status st = lp_file_read(path, &d, &n, err);
    if (st)
        return st;
    st = lp_lpm_parse(d, n, path, out, err);
    free(d);
    return st;
}

const char *lp_lpm_header(const lp_lpm *m) { return m->header; }
uint32_t lp_lpm_version(const lp_lpm *m) { return m->version; }
size_t lp_lpm_section_count(const lp_lpm *m) { return m->n; }

const char *lp_lpm_section_name(const lp_lpm *m, size_t i)
{
    return i < m->n ? m->s[i].name : NULL;
}

lp_status lp_lpm_section(const lp_lpm *m, const char *name, int want_dtype, const void **data,
                         size_t *size, lp_err *err)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->s[i].name, name) == 0) {
            if (want_dtype >= 0 && (uint32_t)want_dtype != m->s[i].dtype)
                return lp_err_set(err, LP_EFORMAT, "%s: section '%s' has type %u, expected %d",
                                  m->name, name, m->s[i].dtype, want_dtype);
            *data = m->s[i].data;
            *size = (size_t)m->s[i].size;
            return LP_OK;
        }
    return lp_err_set(err, LP_ENOTFOUND, "%s: model file has no section '%s'", m->name, name);
}

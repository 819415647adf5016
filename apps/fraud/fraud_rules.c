/*
 * fraud_rules.c - the rule language of lepton-fraud: a recursive-descent parser compiling an
 * expression over transaction fields and features into a small tree, and its evaluation.
 *
 * Grammar in fraud.h. Values are doubles; comparisons and and/or/not give 0 or 1; any nonzero
 * value is true; x / 0 is 0 (a rule must never produce NaN or trap). Errors are LP_EPARSE with
 * the 1-based column of the offending token. Compiled rules are immutable and thread-safe.
 */
#include "fraud.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum op {
    OP_NUM, OP_VAR, OP_NEG, OP_NOT, OP_ADD, OP_SUB, OP_MUL, OP_DIV,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, OP_AND, OP_OR
} op;

typedef struct node {
    op op;
    double num;
    size_t var;
    struct node *a, *b;
} node;

struct fraud_rule {
    node *root;
};

typedef struct parser {
    const char *src, *p;
    const char *const *names;
    size_t n_names;
    lp_err *err;
    bool failed;
    size_t depth, nodes;
} parser;

/* Nesting (parentheses, unary minus, not) and the whole tree's size are bounded: evaluation and
 * freeing recurse over the tree, and a chain a + a + ... is as deep as it is long. */
#define MAX_DEPTH 64
#define MAX_NODES 1024

static void free_node(node *n)
{
    if (!n)
        return;
    free_node(n->a);
    free_node(n->b);
    free(n);
}

static node *fail(parser *ps, const char *at, const char *fmt, const char *arg)
{
    if (!ps->failed) {
        char msg[256];
        snprintf(msg, sizeof msg, fmt, arg);
        lp_utf8_scrub(msg); /* a "%.20s" of the rule may cut a character */
        lp_err_set(ps->err, LP_EPARSE, "column %zu: %s", (size_t)(at - ps->src) + 1, msg);
    }
    ps->failed = true;
    return NULL;
}

static void skip(parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static bool word(parser *ps, const char *w)
{
    skip(ps);
    size_t n = strlen(w);
    if (strncmp(ps->p, w, n) || isalnum((unsigned char)ps->p[n]) || ps->p[n] == '_' ||
        ps->p[n] == ':' || ps->p[n] == '.')
        return false;
    ps->p += n;
    return true;
}

static bool sym(parser *ps, const char *s)
{
    skip(ps);
    size_t n = strlen(s);
    if (strncmp(ps->p, s, n))
        return false;
    ps->p += n;
    return true;
}

static node *mk(parser *ps, op o, node *a, node *b)
{
    if (++ps->nodes > MAX_NODES) {
        free_node(a);
        free_node(b);
        if (!ps->failed)
            lp_err_set(ps->err, LP_EPARSE, "rule has more than %d terms and operators",
                       MAX_NODES);
        ps->failed = true;
        return NULL;
    }
    node *n = lp_calloc(1, sizeof *n);
    if (!n || (o >= OP_NEG && !a) || (o >= OP_ADD && !b)) {
        free(n);
        free_node(a);
        free_node(b);
        if (!n && !ps->failed) {
            lp_err_set(ps->err, LP_ENOMEM, "rule: out of memory");
            ps->failed = true;
        }
        return NULL;
    }
    n->op = o;
    n->a = a;
    n->b = b;
    return n;
}

static node *parse_or(parser *ps);

static node *parse_atom(parser *ps)
{
    skip(ps);
    const char *at = ps->p;
    if (++ps->depth > MAX_DEPTH)
        return fail(ps, at, "%s", "expression nested too deeply");
    node *r = NULL;
    if (*at == '(') {
        ps->p++;
        r = parse_or(ps);
        if (r && !sym(ps, ")")) {
            free_node(r);
            r = fail(ps, ps->p, "%s", "expected ')'");
        }
    } else if (isdigit((unsigned char)*at) || (*at == '.' && isdigit((unsigned char)at[1]))) {
        char *end;
        double v = strtod(at, &end);
        if (!isfinite(v))
            return fail(ps, at, "%s", "number out of range");
        ps->p = end;
        r = mk(ps, OP_NUM, NULL, NULL);
        if (r)
            r->num = v;
    } else if (isalpha((unsigned char)*at) || *at == '_') {
        const char *e = at;
        while (isalnum((unsigned char)*e) || *e == '_' || *e == ':' || *e == '.')
            e++;
        char name[128];
        size_t len = (size_t)(e - at);
        if (len >= sizeof name)
            return fail(ps, at, "%s", "name longer than 127 characters");
        memcpy(name, at, len);
        name[len] = 0;
        ps->p = e;
        if (!strcmp(name, "true") || !strcmp(name, "false")) {
            r = mk(ps, OP_NUM, NULL, NULL);
            if (r)
                r->num = name[0] == 't';
        } else if (!strcmp(name, "and") || !strcmp(name, "or") || !strcmp(name, "not")) {
            return fail(ps, at, "unexpected '%s'", name);
        } else {
            size_t j = 0;
            while (j < ps->n_names && strcmp(ps->names[j], name))
                j++;
            if (j == ps->n_names)
                return fail(ps, at, "unknown feature '%s'", name);
            r = mk(ps, OP_VAR, NULL, NULL);
            if (r)
                r->var = j;
        }
    } else if (!*at) {
        return fail(ps, at, "%s", "unexpected end of rule");
    } else {
        unsigned char b = (unsigned char)*at; /* the whole UTF-8 character, not one byte */
        size_t len = b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        char c[5] = {0};
        for (size_t k = 0; k < len && at[k]; k++)
            c[k] = at[k];
        return fail(ps, at, "unexpected '%s'", c);
    }
    ps->depth--;
    return r;
}

static node *parse_unary(parser *ps)
{
    if (sym(ps, "-")) {
        if (++ps->depth > MAX_DEPTH)
            return fail(ps, ps->p, "%s", "expression nested too deeply");
        node *a = parse_unary(ps);
        ps->depth--;
        return a ? mk(ps, OP_NEG, a, NULL) : NULL;
    }
    return parse_atom(ps);
}

static node *parse_prod(parser *ps)
{
    node *a = parse_unary(ps);
    while (a) {
        op o;
        if (sym(ps, "*"))
            o = OP_MUL;
        else if (sym(ps, "/"))
            o = OP_DIV;
        else
            break;
        node *b = parse_unary(ps);
        a = b ? mk(ps, o, a, b) : (free_node(a), NULL);
    }
    return a;
}

static node *parse_sum(parser *ps)
{
    node *a = parse_prod(ps);
    while (a) {
        op o;
        if (sym(ps, "+"))
            o = OP_ADD;
        else if (sym(ps, "-"))
            o = OP_SUB;
        else
            break;
        node *b = parse_prod(ps);
        a = b ? mk(ps, o, a, b) : (free_node(a), NULL);
    }
    return a;
}

static node *parse_cmp(parser *ps)
{
    node *a = parse_sum(ps);
    if (!a)
        return NULL;
    op o;
    if (sym(ps, "<="))
        o = OP_LE;
    else if (sym(ps, ">="))
        o = OP_GE;
    else if (sym(ps, "=="))
        o = OP_EQ;
    else if (sym(ps, "!="))
        o = OP_NE;
    else if (sym(ps, "<"))
        o = OP_LT;
    else if (sym(ps, ">"))
        o = OP_GT;
    else
        return a;
    node *b = parse_sum(ps);
    return b ? mk(ps, o, a, b) : (free_node(a), NULL);
}

static node *parse_not(parser *ps)
{
    if (word(ps, "not")) {
        if (++ps->depth > MAX_DEPTH)
            return fail(ps, ps->p, "%s", "expression nested too deeply");
        node *a = parse_not(ps);
        ps->depth--;
        return a ? mk(ps, OP_NOT, a, NULL) : NULL;
    }
    return parse_cmp(ps);
}

static node *parse_and(parser *ps)
{
    node *a = parse_not(ps);
    while (a && word(ps, "and")) {
        node *b = parse_not(ps);
        a = b ? mk(ps, OP_AND, a, b) : (free_node(a), NULL);
    }
    return a;
}

static node *parse_or(parser *ps)
{
    node *a = parse_and(ps);
    while (a && word(ps, "or")) {
        node *b = parse_and(ps);
        a = b ? mk(ps, OP_OR, a, b) : (free_node(a), NULL);
    }
    return a;
}

lp_status fraud_rule_compile(const char *expr, const char *const *names, size_t n_names,
                             fraud_rule **out, lp_err *err)
{
    *out = NULL;
    if (!expr)
        return lp_err_set(err, LP_EINVAL, "rule: no expression");
    parser ps = {expr, expr, names, n_names, err, false, 0, 0};
    node *root = parse_or(&ps);
    if (root) {
        skip(&ps);
        if (*ps.p) {
            free_node(root);
            root = fail(&ps, ps.p, "unexpected '%.20s' after the expression", ps.p);
        }
    }
    if (!root)
        return err ? err->status : LP_EPARSE;
    fraud_rule *r = lp_calloc(1, sizeof *r);
    if (!r) {
        free_node(root);
        return lp_err_set(err, LP_ENOMEM, "rule: out of memory");
    }
    r->root = root;
    *out = r;
    return LP_OK;
}

void fraud_rule_free(fraud_rule *r)
{
    if (!r)
        return;
    free_node(r->root);
    free(r);
}

static double ev(const node *n, const float *x)
{
    switch (n->op) {
    case OP_NUM:
        return n->num;
    case OP_VAR:
        return x[n->var];
    case OP_NEG:
        return -ev(n->a, x);
    case OP_NOT:
        return ev(n->a, x) == 0.0;
    case OP_ADD:
        return ev(n->a, x) + ev(n->b, x);
    case OP_SUB:
        return ev(n->a, x) - ev(n->b, x);
    case OP_MUL:
        return ev(n->a, x) * ev(n->b, x);
    case OP_DIV: {
        double d = ev(n->b, x);
        return d == 0.0 ? 0.0 : ev(n->a, x) / d;
    }
    case OP_LT:
        return ev(n->a, x) < ev(n->b, x);
    case OP_LE:
        return ev(n->a, x) <= ev(n->b, x);
    case OP_GT:
        return ev(n->a, x) > ev(n->b, x);
    case OP_GE:
        return ev(n->a, x) >= ev(n->b, x);
    case OP_EQ:
        return ev(n->a, x) == ev(n->b, x);
    case OP_NE:
        return ev(n->a, x) != ev(n->b, x);
    case OP_AND:
        return ev(n->a, x) != 0.0 && ev(n->b, x) != 0.0;
    case OP_OR:
        return ev(n->a, x) != 0.0 || ev(n->b, x) != 0.0;
    }
    return 0.0;
}

double fraud_rule_eval(const fraud_rule *r, const float *x)
{
    double v = ev(r->root, x);
    return isfinite(v) ? v : 0.0;
}

const char *fraud_action_name(fraud_action a)
{
    return a == FRAUD_ACTION_ALLOW ? "allow" : a == FRAUD_ACTION_REVIEW ? "review" : "block";
}

void fraud_ruleset_free(fraud_ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->name[i]);
        free(rs->expr[i]);
        fraud_rule_free(rs->rule[i]);
    }
    free(rs->name);
    free(rs->expr);
    free(rs->action);
    free(rs->rule);
    free(rs);
}

lp_status fraud_ruleset_parse(const cJSON *arr, const char *const *names, size_t n_names,
                              fraud_ruleset **out, lp_err *err)
{
    *out = NULL;
    if (!cJSON_IsArray(arr))
        return lp_err_set(err, LP_EINVAL, "rules: expected a JSON array of {name, when, "
                          "action}");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n > 1000)
        return lp_err_set(err, LP_ETOOBIG, "rules: %zu rules, at most 1000", n);
    fraud_ruleset *rs = lp_calloc(1, sizeof *rs);
    if (!rs)
        return lp_err_set(err, LP_ENOMEM, "rules: out of memory");
    rs->name = lp_calloc(n + 1, sizeof(char *));
    rs->expr = lp_calloc(n + 1, sizeof(char *));
    rs->action = lp_calloc(n + 1, sizeof(fraud_action));
    rs->rule = lp_calloc(n + 1, sizeof(fraud_rule *));
    if (!rs->name || !rs->expr || !rs->action || !rs->rule) {
        fraud_ruleset_free(rs);
        return lp_err_set(err, LP_ENOMEM, "rules: out of memory");
    }
    lp_status st = LP_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        size_t i = rs->n;
        const cJSON *nm = cJSON_GetObjectItem(it, "name"), *w = cJSON_GetObjectItem(it, "when");
        const cJSON *a = cJSON_GetObjectItem(it, "action");
        if (!cJSON_IsObject(it) || !cJSON_IsString(nm) || !cJSON_IsString(w) ||
            !cJSON_IsString(a)) {
            st = lp_err_set(err, LP_EINVAL, "rule %zu: expected an object with string fields "
                            "'name', 'when' and 'action'", i);
            break;
        }
        /* a name is how rules_hit, reasons and the backtest tell rules apart */
        bool blank = true;
        for (const char *p = nm->valuestring; *p && blank; p++)
            blank = *p == ' ' || *p == '\t';
        if (blank) {
            st = lp_err_set(err, LP_EINVAL, "rule %zu: 'name' is empty", i);
            break;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(rs->name[k], nm->valuestring)) {
                st = lp_err_set(err, LP_EINVAL, "rule %zu: name '%.64s' is also rule %zu's", i,
                                nm->valuestring, k);
                break;
            }
        if (st)
            break;
        if (!strcmp(a->valuestring, "allow"))
            rs->action[i] = FRAUD_ACTION_ALLOW;
        else if (!strcmp(a->valuestring, "review"))
            rs->action[i] = FRAUD_ACTION_REVIEW;
        else if (!strcmp(a->valuestring, "block"))
            rs->action[i] = FRAUD_ACTION_BLOCK;
        else {
            st = lp_err_set(err, LP_EINVAL, "rule %zu '%.64s': action '%.32s' is not allow, "
                            "review or block", i, nm->valuestring, a->valuestring);
            break;
        }
        rs->name[i] = lp_strdup(nm->valuestring);
        rs->expr[i] = lp_strdup(w->valuestring);
        rs->n++;
        if (!rs->name[i] || !rs->expr[i]) {
            st = lp_err_set(err, LP_ENOMEM, "rules: out of memory");
            break;
        }
        if ((st = fraud_rule_compile(w->valuestring, names, n_names, &rs->rule[i], err))) {
            lp_err_prefix(err, "rule %zu '%.64s'", i, nm->valuestring);
            break;
        }
    }
    if (st) {
        fraud_ruleset_free(rs);
        return st;
    }
    *out = rs;
    return LP_OK;
}

cJSON *fraud_ruleset_to_json(const fraud_ruleset *rs)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; rs && i < rs->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", rs->name[i]);
        cJSON_AddStringToObject(o, "when", rs->expr[i]);
        cJSON_AddStringToObject(o, "action", fraud_action_name(rs->action[i]));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

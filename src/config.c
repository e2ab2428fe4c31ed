/* config.c — the run configuration (see config.h and docs/config.md).
 *
 * Every ordinary key is one row of KEYS: its type, where it lives in Config,
 * its default (as text, applied through the same parser so the defaults obey
 * the same rules as user input) and its valid range. Setting, printing and
 * validating all walk that one table, so a new key is one new row.
 *
 * Sizes are order-independent: `sizes = a, b` records names, and every
 * `size.NAME = ...` definition fills any listed entry of that name, whenever
 * it comes. config_validate reports a listed name that never got defined. */
#include "config.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "mlp_sparse.h"
#include "record.h"
#include "variant.h"

/* Sanity cap on d, h, F and T: keeps every tensor size product far from
 * 64-bit overflow and catches typos such as an extra zero or two. */
#define SIZE_FIELD_MAX (1 << 20)
#define MAX_VOCAB 65536

typedef ConfigKey KeyDef;

/* A row's field: its offset and size, so that a row whose type does not fit
 * its field is caught on the first config_defaults (test_config does it). */
#define AT(field) .off = offsetof(Config, field), .size = sizeof(((Config *)0)->field)
#define NOMAX HUGE_VAL

static const char *const SAMPLER_NAMES[] = {"random", "sequential", NULL};
static const char *const OPTIMIZER_NAMES[] = {"adamw", "sgd", NULL};
/* the order of MlpKernel (mlp_sparse.h) */
static const char *const MLP_KERNEL_NAMES[] = {"dense", "sparse", "auto", NULL};

/* Every key, in the order config_print writes them (and docs/config.md lists
 * them). `results = 1` marks the keys whose value changes what a run
 * computes: they decide whether a dataset or checkpoint may be resumed with
 * another config (config_diff) and make up config_fingerprint. New keys go at
 * the end. */
static const KeyDef KEYS[] = {
    {.name = "sizes", .type = K_SIZES, .def = "tiny", .results = 1},
    {.name = "seeds", .type = K_SEEDS, .def = "0", .results = 1},
    {.name = "ranks_per_run", .type = K_INT, AT(ranks_per_run), .def = "0", .hi = NOMAX},
    {.name = "train_data", .type = K_STRING, AT(train_data), .def = "", .results = 1},
    {.name = "val_data", .type = K_STRING, AT(val_data), .def = "", .results = 1},
    {.name = "sampler", .type = K_CHOICE, AT(sampler), .def = "random",
     .choices = SAMPLER_NAMES, .results = 1},
    {.name = "batch_size", .type = K_INT, AT(batch_size), .def = "8", .lo = 1, .hi = NOMAX,
     .results = 1},
    {.name = "steps", .type = K_LONG, AT(steps), .def = "100", .lo = 1, .hi = NOMAX, .results = 1},
    {.name = "optimizer", .type = K_CHOICE, AT(optimizer), .def = "adamw",
     .choices = OPTIMIZER_NAMES, .results = 1},
    {.name = "lr", .type = K_DOUBLE, AT(lr), .def = "3e-4", .hi = NOMAX, .lo_open = 1,
     .results = 1},
    {.name = "lr_min", .type = K_DOUBLE, AT(lr_min), .def = "3e-5", .hi = NOMAX, .results = 1},
    {.name = "warmup_steps", .type = K_LONG, AT(warmup_steps), .def = "10", .hi = NOMAX,
     .results = 1},
    {.name = "beta1", .type = K_DOUBLE, AT(beta1), .def = "0.9", .hi = 1, .hi_open = 1,
     .results = 1},
    {.name = "beta2", .type = K_DOUBLE, AT(beta2), .def = "0.95", .hi = 1, .hi_open = 1,
     .results = 1},
    {.name = "eps", .type = K_DOUBLE, AT(eps), .def = "1e-8", .hi = NOMAX, .lo_open = 1,
     .results = 1},
    {.name = "weight_decay", .type = K_DOUBLE, AT(weight_decay), .def = "0.1", .hi = NOMAX,
     .results = 1},
    {.name = "grad_clip", .type = K_DOUBLE, AT(grad_clip), .def = "1.0", .hi = NOMAX,
     .results = 1},
    {.name = "dead_window", .type = K_LONG, AT(dead_window), .def = "100", .lo = 1, .hi = NOMAX,
     .results = 1},
    {.name = "snapshot_every", .type = K_LONG, AT(snapshot_every), .def = "100", .hi = NOMAX,
     .results = 1},
    {.name = "eval_every", .type = K_LONG, AT(eval_every), .def = "100", .hi = NOMAX,
     .results = 1},
    {.name = "eval_tokens", .type = K_LONG, AT(eval_tokens), .def = "8192", .hi = NOMAX,
     .results = 1},
    {.name = "spectrum_topk", .type = K_INT, AT(spectrum_topk), .def = "16", .lo = 1, .hi = NOMAX,
     .results = 1},
    {.name = "out_dir", .type = K_STRING, AT(out_dir), .def = "runs/default"},
    {.name = "log_every", .type = K_LONG, AT(log_every), .def = "10", .hi = NOMAX},
    {.name = "checkpoint_every", .type = K_LONG, AT(checkpoint_every), .def = "100", .hi = NOMAX},
    {.name = "flush_every", .type = K_LONG, AT(flush_every), .def = "10", .hi = NOMAX},
    {.name = "check_every", .type = K_LONG, AT(check_every), .def = "50", .hi = NOMAX},
    {.name = "overwrite", .type = K_BOOL, AT(overwrite), .def = "false"},
    /* the fault-injection keys change nothing before they fire, and a resume
     * after an injected fault runs without them: not `results` */
    {.name = "debug_nan_step", .type = K_LONG, AT(debug_nan_step), .def = "-1", .hi = NOMAX,
     .or_never = 1},
    {.name = "stop_at_step", .type = K_LONG, AT(stop_at_step), .def = "-1", .lo = 1, .hi = NOMAX,
     .or_never = 1},
    {.name = "debug_diverge_step", .type = K_LONG, AT(debug_diverge_step), .def = "-1",
     .hi = NOMAX, .or_never = 1},
    {.name = "checkpoint_final_only", .type = K_BOOL, AT(checkpoint_final_only), .def = "true"},
    /* interventions (include/intervene.h, docs/interventions.md) */
    {.name = "fork_from", .type = K_STRING, AT(fork_from), .def = "", .results = 1},
    {.name = "data_seed", .type = K_LONG, AT(data_seed), .def = "-1", .hi = NOMAX, .or_never = 1,
     .results = 1},
    {.name = "resample_dead", .type = K_LONG, AT(resample_dead), .def = "0", .hi = NOMAX,
     .results = 1},
    {.name = "debug_kill_step", .type = K_LONG, AT(debug_kill_step), .def = "-1", .hi = NOMAX,
     .or_never = 1, .results = 1},
    /* the sparse MLP kernels change the numbers by float rounding: `results` */
    {.name = "mlp_kernel", .type = K_CHOICE, AT(mlp_kernel), .def = "dense",
     .choices = MLP_KERNEL_NAMES, .results = 1},
};
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

const ConfigKey *config_keys(int *count) {
    *count = N_KEYS;
    return KEYS;
}

static const ModelSize BUILTIN_SIZES[] = {
    {"tiny", 2, 64, 4, 256, 64, 256, .pos = POS_LEARNED},
    {"S", 4, 128, 4, 512, 128, 256, .pos = POS_LEARNED},
    {"M", 6, 256, 8, 1024, 256, 4096, .pos = POS_LEARNED},
    {"P", 6, 512, 8, 4096, 256, 4096, .pos = POS_LEARNED},
};


/* The size a row's type needs its field to have (0: not a plain field). */
static size_t type_size(KeyType t) {
    switch (t) {
    case K_INT: case K_BOOL: case K_CHOICE: return sizeof(int);
    case K_LONG: return sizeof(long);
    case K_DOUBLE: return sizeof(double);
    case K_STRING: return RS_PATH_MAX;
    case K_SIZES: case K_SEEDS: return 0;
    }
    return 0;
}

/* Dies on a row that cannot work: a field of the wrong size, a choice
 * without names, a bad default (a programming error, caught by any test). */
static void check_row(const KeyDef *k) {
    size_t want = type_size(k->type);
    if (k->type == K_STRING ? k->size < 2 : k->size != want)
        die("internal error: config key '%s': its field has %zu bytes, its type needs %zu",
            k->name, k->size, want);
    if ((k->type == K_CHOICE) != (k->choices != NULL))
        die("internal error: config key '%s': choices given to a non-choice key or missing",
            k->name);
}

static const KeyDef *find_key(const char *name) {
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(KEYS[i].name, name)) return &KEYS[i];
    return NULL;
}

/* ---------------------------------------------------------------- sizes */

static int valid_size_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= SIZE_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* The shape rules every size obeys, shared by parsing and validation. */
static int check_size_fields(const ModelSize *s, char *why, size_t n) {
    const char *names = "LdhFTV";
    const int v[6] = {s->L, s->d, s->h, s->F, s->T, s->V};
    for (int i = 0; i < 6; i++)
        if (v[i] < 1) return fail_msg(why, n, "%c=%d must be at least 1", names[i], v[i]);
    if (s->L > MAX_LAYERS) return fail_msg(why, n, "L=%d exceeds %d layers", s->L, MAX_LAYERS);
    if (s->V > MAX_VOCAB)
        return fail_msg(why, n, "V=%d exceeds %d (tokens are 16-bit)", s->V, MAX_VOCAB);
    for (int i = 1; i < 5; i++)
        if (v[i] > SIZE_FIELD_MAX)
            return fail_msg(why, n, "%c=%d exceeds %d", names[i], v[i], SIZE_FIELD_MAX);
    if (s->d % s->h != 0)
        return fail_msg(why, n, "d=%d is not a multiple of h=%d", s->d, s->h);
    return variant_check(s, why, n);
}

/* Parses one "X=N" token of a size definition into the matching field. */
static int size_token(const char *tok, size_t len, int *fields, char *why, size_t n) {
    static const char names[] = "LdhFTV";
    const char *p = strchr(names, tok[0]);
    if (len < 3 || tok[1] != '=' || !p || tok[0] == '\0')
        return fail_msg(why, n, "'%.*s' is not FIELD=INTEGER with FIELD one of L d h F T V, "
                    "nor a variant key (pos tie mlp_bias act)", (int)len, tok);
    int idx = (int)(p - names);
    if (fields[idx] != 0) return fail_msg(why, n, "field %c given twice", tok[0]);
    char buf[32];
    if (len - 2 >= sizeof buf) return fail_msg(why, n, "'%.*s' is too long", (int)len, tok);
    memcpy(buf, tok + 2, len - 2);
    buf[len - 2] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (!isdigit((unsigned char)buf[0]) || *end || errno == ERANGE || v < 1 || v > INT_MAX)
        return fail_msg(why, n, "%c=%s is not a positive integer", tok[0], buf);
    fields[idx] = (int)v;
    return 0;
}

/* "L=.. d=.. h=.. F=.. T=.. V=.." then any variant keys (pos=rope ...), in
 * any order, spaces or commas between. */
static int parse_size_spec(const char *spec, ModelSize *s, char *why, size_t n) {
    int fields[6] = {0};
    unsigned variants_seen = 0;
    const char *p = spec;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        if (!*p) break;
        size_t len = strcspn(p, " \t,");
        int v = variant_parse(s, p, len, &variants_seen, why, n);
        if (v < 0 || (v == 1 && size_token(p, len, fields, why, n) != 0)) return -1;
        p += len;
    }
    for (int i = 0; i < 6; i++)
        if (fields[i] == 0)
            return fail_msg(why, n, "missing field %c (need L=.. d=.. h=.. F=.. T=.. V=..)",
                        "LdhFTV"[i]);
    s->L = fields[0]; s->d = fields[1]; s->h = fields[2];
    s->F = fields[3]; s->T = fields[4]; s->V = fields[5];
    return check_size_fields(s, why, n);
}

/* Adds or replaces a defined size, and fills every listed entry of that name
 * (a definition may come before or after the `sizes` line). */
static int define_size(Config *c, const ModelSize *s, char *why, size_t n) {
    int i = 0;
    while (i < c->n_defined && strcmp(c->defined[i].name, s->name) != 0) i++;
    if (i == c->n_defined) {
        if (c->n_defined == MAX_SIZES)
            return fail_msg(why, n, "too many sizes defined (at most %d)", MAX_SIZES);
        c->n_defined++;
    }
    c->defined[i] = *s;
    for (int k = 0; k < c->n_sizes; k++)
        if (!strcmp(c->sizes[k].name, s->name)) c->sizes[k] = *s;
    return 0;
}

const ModelSize *config_find_size(const Config *c, const char *name) {
    for (int i = 0; i < c->n_defined; i++)
        if (!strcmp(c->defined[i].name, name)) return &c->defined[i];
    return NULL;
}

/* ------------------------------------------------------- list values */

/* Calls item(...) on each comma-separated, trimmed element of value. */
static int for_each_item(const char *value, int (*item)(Config *, const char *, char *, size_t),
                         Config *c, char *why, size_t n) {
    char buf[64];
    const char *p = value;
    int count = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b == a) return fail_msg(why, n, "empty element in the list '%s'", value);
        if ((size_t)(b - a) >= sizeof buf) return fail_msg(why, n, "'%.*s' is too long", (int)(b - a), a);
        memcpy(buf, a, (size_t)(b - a));
        buf[b - a] = '\0';
        if (item(c, buf, why, n) != 0) return -1;
        count++;
        if (!p[len]) break;
        p += len + 1;
    }
    return count;
}

static int add_size_item(Config *c, const char *name, char *why, size_t n) {
    if (!valid_size_name(name))
        return fail_msg(why, n, "'%s' is not a size name (1-%d characters of A-Z a-z 0-9 _ -)",
                    name, SIZE_NAME_MAX - 1);
    for (int i = 0; i < c->n_sizes; i++)
        if (!strcmp(c->sizes[i].name, name)) return fail_msg(why, n, "size '%s' listed twice", name);
    if (c->n_sizes == MAX_RUN_SIZES)
        return fail_msg(why, n, "more than %d sizes listed", MAX_RUN_SIZES);
    ModelSize *s = &c->sizes[c->n_sizes++];
    const ModelSize *def = config_find_size(c, name);
    if (def) { *s = *def; return 0; }
    /* not defined yet: L = 0 marks it until a size.NAME line fills it */
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return 0;
}

/* A seed: decimal digits only, within 64 bits; item is the whole list
 * element, for the message. */
static int parse_seed(const char *text, size_t len, const char *item, uint64_t *out,
                      char *why, size_t n) {
    char buf[32], *end;
    if (len == 0 || len >= sizeof buf || !isdigit((unsigned char)text[0]))
        return fail_msg(why, n, "'%s' is not a non-negative integer or a range a-b", item);
    memcpy(buf, text, len);
    buf[len] = '\0';
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end) return fail_msg(why, n, "'%s' is not a non-negative integer or a range a-b", item);
    if (errno == ERANGE)   /* unsigned long long is 64-bit on every target we build for */
        return fail_msg(why, n, "'%s' is out of range (0 .. 18446744073709551615)", buf);
    *out = (uint64_t)v;
    return 0;
}

/* One element of `seeds`: a seed, or a range a-b (a <= b, both included). */
static int add_seed_item(Config *c, const char *text, char *why, size_t n) {
    const char *dash = strchr(text, '-');
    size_t len = dash ? (size_t)(dash - text) : strlen(text);
    uint64_t a, b;
    if (parse_seed(text, len, text, &a, why, n) != 0) return -1;
    b = a;
    if (dash) {
        if (parse_seed(dash + 1, strlen(dash + 1), text, &b, why, n) != 0) return -1;
        if (b < a) return fail_msg(why, n, "the range '%s' runs backwards", text);
    }
    if (b - a >= (uint64_t)(MAX_SEEDS - c->n_seeds))
        return fail_msg(why, n, "more than %d seeds listed", MAX_SEEDS);
    for (uint64_t v = a;; v++) {
        for (int i = 0; i < c->n_seeds; i++)
            if (c->seeds[i] == v)
                return fail_msg(why, n, "seed %llu listed twice", (unsigned long long)v);
        c->seeds[c->n_seeds++] = v;
        if (v == b) break;
    }
    return 0;
}

/* ---------------------------------------------------------- scalars */

/* The phrase for a violated range: "is not a positive number", "must be >= 1",
 * "must be in [0, 1)", "must be -1 (never) or >= 1". */
static void range_phrase(const KeyDef *k, char *out, size_t n) {
    const char *never = k->or_never ? "-1 (never) or " : "";
    if (isinf(k->hi)) {
        if (k->lo == 0 && k->lo_open && !k->or_never) snprintf(out, n, "is not a positive number");
        else snprintf(out, n, "must be %s%s %g", never, k->lo_open ? ">" : ">=", k->lo);
    } else {
        snprintf(out, n, "must be %sin %c%g, %g%c", never, k->lo_open ? '(' : '[', k->lo, k->hi,
                 k->hi_open ? ')' : ']');
    }
}

static int in_range(const KeyDef *k, double v) {
    if (k->or_never && v == -1) return 1;
    if (k->lo_open ? !(v > k->lo) : !(v >= k->lo)) return 0;
    if (k->hi_open ? !(v < k->hi) : !(v <= k->hi)) return 0;
    return 1;
}

/* Parses a number of the key's type (full consumption, type range, finite). */
static int parse_number(const KeyDef *k, const char *v, double *out, long *lout,
                        char *why, size_t n) {
    char *end;
    errno = 0;
    if (k->type == K_DOUBLE) {
        double d = strtod(v, &end);
        if (end == v || *end || isspace((unsigned char)v[0]))
            return fail_msg(why, n, "'%s' is not a number", v);
        if (errno == ERANGE || !isfinite(d)) return fail_msg(why, n, "'%s' is out of range", v);
        *out = d;
        return 0;
    }
    long l = strtol(v, &end, 10);
    if (end == v || *end || isspace((unsigned char)v[0]))
        return fail_msg(why, n, "'%s' is not an integer", v);
    if (errno == ERANGE || (k->type == K_INT && (l < INT_MIN || l > INT_MAX)))
        return fail_msg(why, n, "'%s' is out of range", v);
    *lout = l;
    *out = (double)l;
    return 0;
}

static int set_number(Config *c, const KeyDef *k, const char *v, char *why, size_t n) {
    double d = 0.0;
    long l = 0;
    if (parse_number(k, v, &d, &l, why, n) != 0) return -1;
    if (!in_range(k, d)) {
        char phrase[64];
        range_phrase(k, phrase, sizeof phrase);
        return fail_msg(why, n, "'%s' %s", v, phrase);
    }
    char *field = (char *)c + k->off;
    if (k->type == K_DOUBLE) *(double *)(void *)field = d;
    else if (k->type == K_LONG) *(long *)(void *)field = l;
    else *(int *)(void *)field = (int)l;
    return 0;
}

static int set_choice(const KeyDef *k, int *out, const char *v, char *why, size_t n) {
    for (int i = 0; k->choices[i]; i++)
        if (!strcmp(v, k->choices[i])) { *out = i; return 0; }
    char list[256] = "";
    for (int i = 0; k->choices[i]; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, k->choices[i], sizeof list - strlen(list) - 1);
    }
    return fail_msg(why, n, "'%s' is not one of %s", v, list);
}

static int set_bool(int *out, const char *v, char *why, size_t n) {
    static const char *const yes[] = {"true", "1", "yes"}, *const no[] = {"false", "0", "no"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(v, yes[i])) { *out = 1; return 0; }
        if (!strcasecmp(v, no[i])) { *out = 0; return 0; }
    }
    return fail_msg(why, n, "'%s' is not a boolean (true/false, yes/no, 1/0)", v);
}

static int set_string(const KeyDef *k, char *field, const char *v, char *why, size_t n) {
    size_t len = strlen(v);
    if (len >= k->size)
        return fail_msg(why, n, "the value is longer than %zu bytes", k->size - 1);
    /* a quote inside would not survive printing and re-loading */
    for (const char *p = v; *p; p++)
        if (*p == '"' || iscntrl((unsigned char)*p))
            return fail_msg(why, n, "double quotes and control characters are not allowed");
    memcpy(field, v, len + 1);
    return 0;
}

static int set_list(Config *c, const KeyDef *k, const char *v, char *why, size_t n) {
    /* parse into a copy so that a bad element leaves the old list in place */
    Config tmp = *c;
    int count;
    if (k->type == K_SIZES) {
        tmp.n_sizes = 0;
        count = for_each_item(v, add_size_item, &tmp, why, n);
    } else {
        tmp.n_seeds = 0;
        count = for_each_item(v, add_seed_item, &tmp, why, n);
    }
    if (count < 0) return -1;
    if (k->type == K_SIZES) {
        c->n_sizes = tmp.n_sizes;
        memcpy(c->sizes, tmp.sizes, sizeof c->sizes);
    } else {
        c->n_seeds = tmp.n_seeds;
        memcpy(c->seeds, tmp.seeds, sizeof c->seeds);
    }
    return 0;
}

static int set_key(Config *c, const KeyDef *k, const char *v, char *why, size_t n) {
    char *field = (char *)c + k->off;
    switch (k->type) {
    case K_INT: case K_LONG: case K_DOUBLE: return set_number(c, k, v, why, n);
    case K_STRING: return set_string(k, field, v, why, n);
    case K_BOOL: return set_bool((int *)(void *)field, v, why, n);
    case K_CHOICE: return set_choice(k, (int *)(void *)field, v, why, n);
    case K_SIZES: case K_SEEDS: return set_list(c, k, v, why, n);
    }
    return fail_msg(why, n, "internal error: key type %d", (int)k->type);
}

/* Trims blanks and one pair of surrounding double quotes into out. */
static void normalize_value(const char *value, char *out, size_t n) {
    const char *a = value ? value : "", *b;
    while (isspace((unsigned char)*a)) a++;
    b = a + strlen(a);
    while (b > a && isspace((unsigned char)b[-1])) b--;
    if (b - a >= 2 && *a == '"' && b[-1] == '"') { a++; b--; }
    size_t len = (size_t)(b - a) < n - 1 ? (size_t)(b - a) : n - 1;
    memcpy(out, a, len);
    out[len] = '\0';
}

static int config_set_raw(Config *c, const char *key, const char *value, const char *origin,
                          char *err, size_t errlen) {
    char v[RS_PATH_MAX + 2], why[768];
    if (!origin) origin = "command line";
    if (strlen(value ? value : "") > RS_PATH_MAX)
        return fail_msg(err, errlen, "%s: key '%s': the value is longer than %d bytes", origin, key,
                    RS_PATH_MAX - 1);
    normalize_value(value, v, sizeof v);
    if (!strncmp(key, "size.", 5)) {
        ModelSize s;
        memset(&s, 0, sizeof s);
        if (!valid_size_name(key + 5))
            return fail_msg(err, errlen, "%s: key '%s': a size name is 1-%d characters of "
                        "A-Z a-z 0-9 _ -", origin, key, SIZE_NAME_MAX - 1);
        snprintf(s.name, sizeof s.name, "%s", key + 5);
        if (parse_size_spec(v, &s, why, sizeof why) != 0 || define_size(c, &s, why, sizeof why) != 0)
            return fail_msg(err, errlen, "%s: key '%s': %s", origin, key, why);
        return 0;
    }
    const KeyDef *k = find_key(key);
    if (!k) return fail_msg(err, errlen, "%s: unknown key '%s' (docs/config.md lists the keys)", origin, key);
    if (set_key(c, k, v, why, sizeof why) != 0)
        return fail_msg(err, errlen, "%s: key '%s': %s", origin, key, why);
    if (k->off == offsetof(Config, dead_window)) c->dead_window_set = 1;   /* resample_dead needs it */
    return 0;
}

int config_set(Config *c, const char *key, const char *value, const char *origin,
               char *err, size_t errlen) {
    if (config_set_raw(c, key, value, origin, err, errlen) == 0) return 0;
    return terminal_safe(err, errlen);
}

void config_defaults(Config *c) {
    char err[256];
    memset(c, 0, sizeof *c);
    c->n_defined = (int)(sizeof BUILTIN_SIZES / sizeof BUILTIN_SIZES[0]);
    memcpy(c->defined, BUILTIN_SIZES, sizeof BUILTIN_SIZES);
    for (int i = 0; i < N_KEYS; i++) {
        check_row(&KEYS[i]);
        if (config_set(c, KEYS[i].name, KEYS[i].def, "defaults", err, sizeof err) != 0)
            die("internal error: %s", err);
    }
    c->dead_window_set = 0;   /* only a dead_window of the file or command line counts */
}

/* ------------------------------------------------------------ files */

/* Keys already set in the file being read, to refuse duplicates. */
typedef struct { int n, cap; char **keys; long *lines; } KeySeen;

static long key_seen(KeySeen *s, const char *key, long line) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i], key)) return s->lines[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        char **k = realloc(s->keys, (size_t)s->cap * sizeof *k);
        long *l = realloc(s->lines, (size_t)s->cap * sizeof *l);
        if (!k || !l) die("out of memory reading a config file");
        s->keys = k;
        s->lines = l;
    }
    s->keys[s->n] = xmalloc(strlen(key) + 1);
    strcpy(s->keys[s->n], key);
    s->lines[s->n++] = line;
    return 0;
}

static void key_seen_free(KeySeen *s) {
    for (int i = 0; i < s->n; i++) free(s->keys[i]);
    free(s->keys);
    free(s->lines);
}

/* Cuts the trailing comment off the value part of a line. A quoted value
 * ends at its closing quote (so '#' may appear inside); otherwise a '#'
 * at the start or after a blank starts the comment. */
static int cut_comment(char *value, char *why, size_t n) {
    char *p = value;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '"') {
        char *close = strchr(p + 1, '"');
        if (!close) return fail_msg(why, n, "unterminated double quote");
        char *q = close + 1;
        while (isspace((unsigned char)*q)) q++;
        if (*q && *q != '#') return fail_msg(why, n, "unexpected text after the closing quote");
        close[1] = '\0';
        return 0;
    }
    for (char *q = p; *q; q++)
        if (*q == '#' && (q == p || isspace((unsigned char)q[-1]))) { *q = '\0'; break; }
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int load_line(Config *c, const char *path, long lineno, char *line, KeySeen *seen,
                     int stored, char *err, size_t errlen) {
    char origin[RS_PATH_MAX + 32], why[256];
    snprintf(origin, sizeof origin, "%s:%ld", path, lineno);
    char *s = trim(line);
    if (*s == '\0' || *s == '#') return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return fail_msg(err, errlen, "%s: expected 'key = value', got '%.60s'", origin, s);
    *eq = '\0';
    char *key = trim(s), *value = eq + 1;
    if (*key == '\0') return fail_msg(err, errlen, "%s: missing key before '='", origin);
    if (cut_comment(value, why, sizeof why) != 0)
        return fail_msg(err, errlen, "%s: key '%s': %s", origin, key, why);
    long first = key_seen(seen, key, lineno);
    if (first)
        return fail_msg(err, errlen, "%s: key '%s' is set twice in this file (first on line %ld)",
                    origin, key, first);
    if (config_set(c, key, value, origin, err, errlen) == 0) return 0;
    const KeyDef *k = find_key(key);
    return stored && k && !k->results ? 0 : -1;   /* see config_load_text */
}

/* Every line of fp; name is the file's name (or origin) in messages. */
static int load_stream(Config *c, FILE *fp, const char *name, int stored, char *err,
                       size_t errlen) {
    KeySeen seen = {0, 0, NULL, NULL};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if ((size_t)len != strlen(line))   /* a binary file given by mistake */
            rc = fail_msg(err, errlen, "%s:%ld: contains a NUL byte (not a text file?)", name, lineno);
        else
            rc = load_line(c, name, lineno, line, &seen, stored, err, errlen);
    }
    if (rc == 0 && ferror(fp))
        rc = fail_msg(err, errlen, "%s: cannot read: %s", name, strerror(errno));
    free(line);
    key_seen_free(&seen);
    return rc == 0 ? 0 : terminal_safe(err, errlen);
}

int config_load_file(Config *c, const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fail_msg(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return terminal_safe(err, errlen);
    }
    int rc = load_stream(c, fp, path, 0, err, errlen);
    fclose(fp);
    return rc;
}

int config_load_text(Config *c, const char *text, const char *origin, int stored,
                     char *err, size_t errlen) {
    size_t len = text ? strlen(text) : 0;
    if (len == 0) return 0;   /* fmemopen refuses an empty buffer */
    FILE *fp = fmemopen((void *)(uintptr_t)text, len, "r");
    if (!fp) die("out of memory reading %s", origin);
    int rc = load_stream(c, fp, origin, stored, err, errlen);
    fclose(fp);
    return rc;
}

/* ------------------------------------------------------- validation */

static double number_value(const Config *c, const KeyDef *k) {
    const char *field = (const char *)c + k->off;
    if (k->type == K_DOUBLE) return *(const double *)(const void *)field;
    if (k->type == K_LONG) return (double)*(const long *)(const void *)field;
    return (double)*(const int *)(const void *)field;
}

/* Every numeric key within its range (a Config may be filled in code). */
static int validate_ranges(const Config *c, char *err, size_t errlen) {
    for (int i = 0; i < N_KEYS; i++) {
        const KeyDef *k = &KEYS[i];
        if (k->type == K_CHOICE) {
            int v = *(const int *)(const void *)((const char *)c + k->off), count = 0;
            while (k->choices[count]) count++;
            if (v < 0 || v >= count)
                return fail_msg(err, errlen, "key '%s': value %d is not one of its %d choices",
                                k->name, v, count);
        }
        if (k->type != K_INT && k->type != K_LONG && k->type != K_DOUBLE) continue;
        double v = number_value(c, k);
        if (!isfinite(v) || !in_range(k, v)) {
            char text[64], phrase[64];
            config_key_text(c, k, text, sizeof text);
            range_phrase(k, phrase, sizeof phrase);
            return fail_msg(err, errlen, "key '%s': %s %s", k->name, text, phrase);
        }
    }
    return 0;
}

static int validate_lists(const Config *c, char *err, size_t errlen) {
    char why[256];
    if (c->n_sizes < 1 || c->n_sizes > MAX_RUN_SIZES)
        return fail_msg(err, errlen, "key 'sizes': list 1 to %d sizes", MAX_RUN_SIZES);
    if (c->n_seeds < 1 || c->n_seeds > MAX_SEEDS)
        return fail_msg(err, errlen, "key 'seeds': list 1 to %d seeds", MAX_SEEDS);
    for (int i = 0; i < c->n_seeds; i++)
        for (int j = 0; j < i; j++)
            if (c->seeds[i] == c->seeds[j])
                return fail_msg(err, errlen, "key 'seeds': seed %llu listed twice",
                            (unsigned long long)c->seeds[i]);
    for (int i = 0; i < c->n_sizes; i++) {
        const ModelSize *s = &c->sizes[i];
        if (s->L == 0)   /* listed, never defined */
            return fail_msg(err, errlen, "key 'sizes': size '%s' is not defined (add a line "
                        "size.%s = L=.. d=.. h=.. F=.. T=.. V=..)", s->name, s->name);
        if (check_size_fields(s, why, sizeof why) != 0)
            return fail_msg(err, errlen, "key 'size.%s': %s", s->name, why);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->sizes[j].name, s->name))
                return fail_msg(err, errlen, "key 'sizes': size '%s' listed twice", s->name);
    }
    return 0;
}

/* Rules that tie keys together (sizes, schedule, evaluation). */
static int validate_cross(const Config *c, char *err, size_t errlen) {
    if (c->train_data[0] == '\0')
        return fail_msg(err, errlen, "key 'train_data' is not set: set train_data=GLOB of token "
                    "shards (made by 'reluscope prepare')");
    if (c->out_dir[0] == '\0') return fail_msg(err, errlen, "key 'out_dir' is empty");
    if (c->lr_min > c->lr)
        return fail_msg(err, errlen, "key 'lr_min': %g exceeds lr = %g", c->lr_min, c->lr);
    if (c->warmup_steps > c->steps)
        return fail_msg(err, errlen, "key 'warmup_steps': %ld exceeds steps = %ld",
                    c->warmup_steps, c->steps);
    for (int i = 0; i < c->n_sizes; i++) {
        const ModelSize *s = &c->sizes[i];
        if (c->spectrum_topk > s->F)
            return fail_msg(err, errlen, "key 'spectrum_topk': %d exceeds F = %d of size '%s'",
                        c->spectrum_topk, s->F, s->name);
        if (c->eval_every > 0 && c->eval_tokens % s->T != 0)
            return fail_msg(err, errlen, "key 'eval_tokens': %ld is not a multiple of T = %d of "
                        "size '%s' (or set eval_every = 0)", c->eval_tokens, s->T, s->name);
        /* the held-out set is counted in int sequences (eval.c): refuse, never truncate */
        if (c->eval_every > 0 && c->eval_tokens / s->T > (1L << 30))
            return fail_msg(err, errlen, "key 'eval_tokens': %ld is %ld sequences of T = %d "
                        "(size '%s'); at most 2^30 fit one evaluation", c->eval_tokens,
                        c->eval_tokens / s->T, s->T, s->name);
        if (c->mlp_kernel != MLP_DENSE && s->F > MLP_SPARSE_MAX_F)
            return fail_msg(err, errlen, "key 'mlp_kernel': the sparse MLP path serves F <= %d "
                        "(16-bit units), size '%s' has F = %d (use mlp_kernel = dense)",
                        MLP_SPARSE_MAX_F, s->name, s->F);
        if (c->debug_kill_step >= 0 && s->no_mlp_bias)   /* it plants death through b_in */
            return fail_msg(err, errlen, "key 'debug_kill_step': size '%s' has no MLP bias "
                        "(mlp_bias=0) to plant a death in", s->name);
    }
    if (c->eval_every > 0 && c->val_data[0] != '\0' && c->eval_tokens == 0)
        return fail_msg(err, errlen, "key 'eval_tokens': must be positive when eval_every > 0 "
                    "(or set eval_every = 0)");
    return 0;
}

int config_validate(const Config *c, char *err, size_t errlen) {
    if (validate_ranges(c, err, errlen) != 0) return -1;
    if (validate_lists(c, err, errlen) != 0) return -1;
    return validate_cross(c, err, errlen);
}

int config_override(Config *c, const char *arg, char *err, size_t errlen) {
    const char *eq = strchr(arg, '=');
    if (!eq) return fail_msg(err, errlen, "command line: expected key=value, got '%s'", arg);
    char key[128];
    size_t klen = (size_t)(eq - arg);
    if (klen >= sizeof key)
        return fail_msg(err, errlen, "command line: unknown key '%.*s'", (int)klen, arg);
    memcpy(key, arg, klen);
    key[klen] = '\0';
    return config_set(c, trim(key), eq + 1, "command line", err, errlen);
}

int config_load(Config *c, const char *path, int n_overrides, char **overrides,
                char *err, size_t errlen) {
    config_defaults(c);
    if (path && config_load_file(c, path, err, errlen) != 0) return -1;
    for (int i = 0; i < n_overrides; i++)
        if (config_override(c, overrides[i], err, errlen) != 0)
            return terminal_safe(err, errlen);
    if (config_validate(c, err, errlen) != 0) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err);
        fail_msg(err, errlen, "%s: %s", path ? path : "config", why);
        return terminal_safe(err, errlen);
    }
    return 0;
}

void config_build(Config *c, const char *path, int n_overrides, char **overrides) {
    char err[RS_PATH_MAX + 1024];
    if (config_load(c, path, n_overrides, overrides, err, sizeof err) != 0) die("%s", err);
}

/* config_text.c — the config as text (see config.h, docs/config.md): one
 * key's value, the loadable print-out, the comparison of two configs (resume
 * and merge) and the fingerprint of what makes a run's numbers (checkpoints).
 * All of it walks the KEYS rows of config.c; a row's `results` flag decides
 * what the comparison and the fingerprint look at. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "variant.h"

/* Room for any one value: a path (quoted) or a list of 64 seeds. */
#define VALUE_MAX (RS_PATH_MAX + 2048)

/* Shortest %.Ng that reads back to the same double (exact round trip). */
static void format_double(double v, char *out, size_t n) {
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, n, "%.*g", digits, v);
        if (strtod(out, NULL) == v) return;
    }
}

static const char *choice_name(const ConfigKey *k, int v) {
    for (int i = 0; k->choices[i]; i++)
        if (i == v) return k->choices[i];
    return "(invalid)";   /* set in code; config_validate refuses it */
}

void config_key_text(const Config *c, const ConfigKey *k, char *out, size_t n) {
    const void *field = (const char *)c + k->off;
    size_t used = 0;
    out[0] = '\0';
    switch (k->type) {
    case K_INT: snprintf(out, n, "%d", *(const int *)field); break;
    case K_LONG: snprintf(out, n, "%ld", *(const long *)field); break;
    case K_DOUBLE: format_double(*(const double *)field, out, n); break;
    case K_STRING: snprintf(out, n, "\"%s\"", (const char *)field); break;
    case K_BOOL: snprintf(out, n, "%s", *(const int *)field ? "true" : "false"); break;
    case K_CHOICE: snprintf(out, n, "%s", choice_name(k, *(const int *)field)); break;
    case K_SIZES:
        for (int i = 0; i < c->n_sizes && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, "%s%s", i ? ", " : "", c->sizes[i].name);
        break;
    case K_SEEDS:
        for (int i = 0; i < c->n_seeds && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, "%s%llu", i ? ", " : "",
                                     (unsigned long long)c->seeds[i]);
        break;
    }
}

/* "L=.. d=.. h=.. F=.. T=.. V=.." and the non-default variant keys
 * ("pos=rope ..."): nothing more for the SPEC §2 model, so its text is as before */
static void shape_text(const ModelSize *s, char *out, size_t n) {
    char variants[128];
    variant_format(s, 0, variants, sizeof variants);
    snprintf(out, n, "L=%d d=%d h=%d F=%d T=%d V=%d%s", s->L, s->d, s->h, s->F, s->T, s->V,
             variants);
}

static int is_grid(const ConfigKey *k) { return k->type == K_SIZES || k->type == K_SEEDS; }

void config_print(const Config *c, FILE *fp) {
    char text[VALUE_MAX];
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < c->n_sizes; i++) {
        if (c->sizes[i].L == 0) continue;   /* undefined: validation refuses such a Config */
        shape_text(&c->sizes[i], text, sizeof text);
        fprintf(fp, "size.%s = %s\n", c->sizes[i].name, text);
    }
    for (int i = 0; i < n; i++) {
        config_key_text(c, &keys[i], text, sizeof text);
        fprintf(fp, "%s = %s\n", keys[i].name, text);
    }
}

/* Whatever fn prints, as a malloc'd string. */
static char *print_to_string(void (*fn)(const Config *, const ModelSize *, FILE *),
                             const Config *c, const ModelSize *run) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) die("out of memory printing the config");
    fn(c, run, fp);
    if (fclose(fp) != 0 || !buf) die("out of memory printing the config");
    return buf;
}

static void print_all(const Config *c, const ModelSize *run, FILE *fp) {
    (void)run;
    config_print(c, fp);
}

char *config_to_string(const Config *c) { return print_to_string(print_all, c, NULL); }

/* ------------------------------------------------------- comparison */

/* "key = A stored, B now", each value cut at 200 bytes. */
static int differ(const char *key, const char *a, const char *b, char *what, size_t n) {
    snprintf(what, n, "%s = %.200s stored, %.200s now", key, a, b);
    return 1;
}

static int grid_diff(const Config *a, const Config *b, char *what, size_t n) {
    char ta[VALUE_MAX], tb[VALUE_MAX];
    int count;
    const ConfigKey *keys = config_keys(&count);
    for (int i = 0; i < count; i++) {
        if (!is_grid(&keys[i])) continue;
        config_key_text(a, &keys[i], ta, sizeof ta);
        config_key_text(b, &keys[i], tb, sizeof tb);
        if (strcmp(ta, tb) != 0) return differ(keys[i].name, ta, tb, what, n);
    }
    for (int i = 0; i < a->n_sizes; i++) {   /* same names: now the shapes */
        char name[SIZE_NAME_MAX + 8];
        shape_text(&a->sizes[i], ta, sizeof ta);
        shape_text(&b->sizes[i], tb, sizeof tb);
        snprintf(name, sizeof name, "size.%s", a->sizes[i].name);
        if (strcmp(ta, tb) != 0) return differ(name, ta, tb, what, n);
    }
    return 0;
}

int config_diff(const Config *stored, const Config *now, int ignore_grid, char *what, size_t n) {
    char ta[VALUE_MAX], tb[VALUE_MAX];
    int count;
    const ConfigKey *keys = config_keys(&count);
    for (int i = 0; i < count; i++) {
        if (!keys[i].results || is_grid(&keys[i])) continue;
        config_key_text(stored, &keys[i], ta, sizeof ta);
        config_key_text(now, &keys[i], tb, sizeof tb);
        if (strcmp(ta, tb) != 0) return differ(keys[i].name, ta, tb, what, n);
    }
    return ignore_grid ? 0 : grid_diff(stored, now, what, n);
}

int config_text_diff(const char *stored, const char *now, int ignore_grid, char *what, size_t n) {
    Config *c = xmalloc(2 * sizeof *c);   /* two Configs are ~20 KB: off the stack */
    const char *text[2] = {stored, now}, *whose[2] = {"stored config", "new config"};
    char err[RS_PATH_MAX + 1024];
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        config_defaults(&c[i]);
        if (config_load_text(&c[i], text[i], whose[i], 1, err, sizeof err) != 0) {
            snprintf(what, n, "the %s cannot be read by this build: %s", whose[i], err);
            rc = 1;
        }
    }
    if (rc == 0) rc = config_diff(&c[0], &c[1], ignore_grid, what, n);
    free(c);
    return rc;
}

/* ------------------------------------------------------ fingerprint */

static void print_results(const Config *c, const ModelSize *run, FILE *fp) {
    char text[VALUE_MAX];
    int count;
    const ConfigKey *keys = config_keys(&count);
    for (int i = 0; i < count; i++) {
        if (!keys[i].results || (run && is_grid(&keys[i]))) continue;
        config_key_text(c, &keys[i], text, sizeof text);
        fprintf(fp, "%s = %s\n", keys[i].name, text);
    }
    if (run) {
        shape_text(run, text, sizeof text);
        fprintf(fp, "size = %s\n", text);
        return;
    }
    for (int i = 0; i < c->n_sizes; i++) {
        shape_text(&c->sizes[i], text, sizeof text);
        fprintf(fp, "size.%s = %s\n", c->sizes[i].name, text);
    }
}

char *config_results_text(const Config *c, const ModelSize *run) {
    return print_to_string(print_results, c, run);
}

uint64_t config_fingerprint(const Config *c, const ModelSize *run) {
    char *text = config_results_text(c, run);
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a, 64-bit */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    free(text);
    return h;
}

/* ------------------------------------------------------------- JSON */

void json_string(const char *s, FILE *fp) {
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(fp, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(fp, "\\u%04x", *p);
        else fputc(*p, fp);
    }
    fputc('"', fp);
}

static void json_value(const Config *c, const ConfigKey *k, FILE *fp) {
    const void *field = (const char *)c + k->off;
    char text[VALUE_MAX];
    switch (k->type) {
    case K_INT: case K_LONG: case K_DOUBLE:   /* the printed form is a JSON number */
        config_key_text(c, k, text, sizeof text);
        fputs(text, fp);
        break;
    case K_STRING: json_string((const char *)field, fp); break;
    case K_BOOL: fputs(*(const int *)field ? "true" : "false", fp); break;
    case K_CHOICE: json_string(choice_name(k, *(const int *)field), fp); break;
    case K_SIZES:
        fputc('[', fp);
        for (int i = 0; i < c->n_sizes; i++) {
            const ModelSize *s = &c->sizes[i];
            fprintf(fp, "%s{\"name\": ", i ? ", " : "");
            json_string(s->name, fp);
            fprintf(fp, ", \"L\": %d, \"d\": %d, \"h\": %d, \"F\": %d, \"T\": %d, \"V\": %d",
                    s->L, s->d, s->h, s->F, s->T, s->V);
            for (int v = 0; v < NUM_VARIANT_KEYS; v++)   /* every variant key */
                fprintf(fp, ", \"%s\": \"%s\"", variant_key(v),
                        variant_value_name(v, variant_value(s, v)));
            fputc('}', fp);
        }
        fputc(']', fp);
        break;
    case K_SEEDS:
        fputc('[', fp);
        for (int i = 0; i < c->n_seeds; i++)
            fprintf(fp, "%s%llu", i ? ", " : "", (unsigned long long)c->seeds[i]);
        fputc(']', fp);
        break;
    }
}

void config_print_json(const Config *c, FILE *fp) {
    int n;
    const ConfigKey *keys = config_keys(&n);
    fputc('{', fp);
    for (int i = 0; i < n; i++) {
        fprintf(fp, "%s\"%s\": ", i ? ", " : "", keys[i].name);
        json_value(c, &keys[i], fp);
    }
    fputc('}', fp);
}

/* ------------------------------------------------------------ merge */

char *config_text_with_grid(const char *text, const char *origin, const ModelSize *sizes,
                            int n_sizes, const uint64_t *seeds, int n_seeds, char *err, size_t errlen) {
    if (n_sizes < 1 || n_sizes > MAX_RUN_SIZES || n_seeds < 1 || n_seeds > MAX_SEEDS) {
        snprintf(err, errlen, "%d sizes and %d seeds: a config holds 1-%d sizes and 1-%d seeds",
                 n_sizes, n_seeds, MAX_RUN_SIZES, MAX_SEEDS);
        return NULL;
    }
    Config *c = xmalloc(sizeof *c);
    char why[RS_PATH_MAX + 512];
    config_defaults(c);
    if (config_load_text(c, text, origin, 1, why, sizeof why) != 0) {
        snprintf(err, errlen, "%.*s", (int)(errlen > 1 ? errlen - 1 : 0), why);
        free(c);
        return NULL;
    }
    c->n_sizes = n_sizes;
    memcpy(c->sizes, sizes, (size_t)n_sizes * sizeof *sizes);
    c->n_seeds = n_seeds;
    memcpy(c->seeds, seeds, (size_t)n_seeds * sizeof *seeds);
    char *out = config_to_string(c);
    free(c);
    return out;
}

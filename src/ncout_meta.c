/* ncout_meta.c — the dataset's description (NcoutMeta): owned copies,
 * validation, and the grid comparison used by resume (the config itself is
 * compared by config_text_diff in config_text.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ncout_impl.h"
#include "util.h"

static char *dup_or_empty(const char *s) {
    size_t n = s ? strlen(s) : 0;
    char *d = xmalloc(n + 1);
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The string fields, in one order for copying, encoding and freeing. */
#define META_N_STRINGS 6
static const char **meta_strings(NcoutMeta *m, int i) {
    const char **f[META_N_STRINGS] = {&m->config_text, &m->version, &m->git_commit,
                                      &m->mpi_layout, &m->command_line, &m->start_time};
    return f[i];
}

void meta_copy(NcoutMeta *dst, const NcoutMeta *src) {
    NcoutMeta tmp = *src;
    for (int i = 0; i < META_N_STRINGS; i++) {
        const char **s = meta_strings(&tmp, i);
        *s = dup_or_empty(*s);
    }
    *dst = tmp;
}

void meta_release(NcoutMeta *m) {
    for (int i = 0; i < META_N_STRINGS; i++) {
        const char **s = meta_strings(m, i);
        free((char *)*s);
        *s = NULL;
    }
}

void ncout_meta_from_config(NcoutMeta *m, const Config *c) {
    memset(m, 0, sizeof *m);
    m->n_sizes = c->n_sizes;
    memcpy(m->sizes, c->sizes, (size_t)c->n_sizes * sizeof c->sizes[0]);
    m->n_seeds = c->n_seeds;
    memcpy(m->seeds, c->seeds, (size_t)c->n_seeds * sizeof c->seeds[0]);
    m->topk = c->eval_every > 0 ? c->spectrum_topk : 0;
    m->steps = c->steps;
    m->eval_every = c->eval_every;
    m->snapshot_every = c->snapshot_every;
}

int meta_lmax(const NcoutMeta *m) {
    int L = 1;
    for (int i = 0; i < m->n_sizes; i++) if (m->sizes[i].L > L) L = m->sizes[i].L;
    return L;
}

int meta_n_runs(const NcoutMeta *m) { return m->n_sizes * m->n_seeds; }

void ncout_group_name(const char *size_name, uint64_t seed, char *out, size_t outlen) {
    char clean[SIZE_NAME_MAX];
    size_t i = 0;
    for (; size_name[i] && i + 1 < sizeof clean; i++) {
        char ch = size_name[i];
        clean[i] = (isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.') ? ch : '_';
    }
    clean[i] = '\0';
    snprintf(out, outlen, "run_%s_seed%llu", clean, (unsigned long long)seed);
}

static int check_sizes(const NcoutMeta *m, const char *shown, char *err, size_t errlen) {
    for (int i = 0; i < m->n_sizes; i++) {
        const ModelSize *s = &m->sizes[i];
        if (!s->name[0] || memchr(s->name, '\0', SIZE_NAME_MAX) == NULL) {
            snprintf(err, errlen, "%s: size %d has no name", shown, i);
            return -1;
        }
        if (s->L < 1 || s->L > MAX_LAYERS || s->F < 1 || s->d < 1 || s->h < 1 || s->T < 1 ||
            s->V < 1) {
            snprintf(err, errlen, "%s: size %s has an impossible shape (L=%d d=%d h=%d F=%d T=%d "
                     "V=%d; L must be 1..%d)", shown, s->name, s->L, s->d, s->h, s->F, s->T,
                     s->V, MAX_LAYERS);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            char a[128], b[128];
            ncout_group_name(s->name, 0, a, sizeof a);
            ncout_group_name(m->sizes[j].name, 0, b, sizeof b);
            if (!strcmp(a, b)) {
                snprintf(err, errlen, "%s: sizes %s and %s have the same group name %s",
                         shown, m->sizes[j].name, s->name, a);
                return -1;
            }
        }
    }
    return 0;
}

int meta_check(const NcoutMeta *m, const char *shown, char *err, size_t errlen) {
    if (m->n_sizes < 1 || m->n_sizes > MAX_RUN_SIZES || m->n_seeds < 1 || m->n_seeds > MAX_SEEDS) {
        snprintf(err, errlen, "%s: the sweep needs 1..%d sizes and 1..%d seeds (got %d and %d)",
                 shown, MAX_RUN_SIZES, MAX_SEEDS, m->n_sizes, m->n_seeds);
        return -1;
    }
    if (m->topk < 0 || m->topk > 65536 || m->steps < 0 || m->eval_every < 0 ||
        m->snapshot_every < 0) {
        snprintf(err, errlen, "%s: impossible topk %d, steps %ld, eval_every %ld or "
                 "snapshot_every %ld", shown, m->topk, m->steps, m->eval_every, m->snapshot_every);
        return -1;
    }
    for (int i = 0; i < m->n_seeds; i++)
        for (int j = 0; j < i; j++)
            if (m->seeds[i] == m->seeds[j]) {
                snprintf(err, errlen, "%s: seed %llu is listed twice", shown,
                         (unsigned long long)m->seeds[i]);
                return -1;
            }
    return check_sizes(m, shown, err, errlen);
}

/* Field by field: bytes after a name's NUL may differ. */
static int same_size(const ModelSize *x, const ModelSize *y) {
    return !strncmp(x->name, y->name, SIZE_NAME_MAX) && x->L == y->L && x->d == y->d &&
           x->h == y->h && x->F == y->F && x->T == y->T && x->V == y->V;
}

int meta_grid_diff(const NcoutMeta *a, const NcoutMeta *b, char *what, size_t n) {
    if (a->n_sizes != b->n_sizes || a->n_seeds != b->n_seeds) {
        snprintf(what, n, "%d sizes x %d seeds stored, %d x %d now", a->n_sizes, a->n_seeds,
                 b->n_sizes, b->n_seeds);
        return 1;
    }
    for (int i = 0; i < a->n_sizes; i++)
        if (!same_size(&a->sizes[i], &b->sizes[i])) {
            snprintf(what, n, "size %d is %s stored, %s now (or its shape differs)", i,
                     a->sizes[i].name, b->sizes[i].name);
            return 1;
        }
    for (int i = 0; i < a->n_seeds; i++)
        if (a->seeds[i] != b->seeds[i]) {
            snprintf(what, n, "seed %d is %llu stored, %llu now", i,
                     (unsigned long long)a->seeds[i], (unsigned long long)b->seeds[i]);
            return 1;
        }
    if (a->topk != b->topk || a->steps != b->steps || a->eval_every != b->eval_every ||
        a->snapshot_every != b->snapshot_every) {
        snprintf(what, n, "topk/steps/eval_every/snapshot_every %d/%ld/%ld/%ld stored, "
                 "%d/%ld/%ld/%ld now", a->topk, a->steps, a->eval_every, a->snapshot_every,
                 b->topk, b->steps, b->eval_every, b->snapshot_every);
        return 1;
    }
    return 0;
}

/* fork.c — runs that start from another run's checkpoint with another
 * batch order (intervene.h, docs/interventions.md), and the start-up checks
 * of every intervention key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "intervene.h"
#include "variant.h"
#include "util.h"

uint64_t data_seed_of(const Config *c, uint64_t run_seed) {
    return c->data_seed < 0 ? run_seed : (uint64_t)c->data_seed;
}

static int same_shape(const ModelSize *a, const ModelSize *b) {
    return a->L == b->L && a->d == b->d && a->h == b->h && a->F == b->F && a->T == b->T &&
           a->V == b->V && variant_same(a, b);
}

/* A fork continues its parent's training: every key that changes results
 * must be the parent's, except the interventions themselves and the grid
 * (seeds name the forks; the sizes' shapes are checked against the file). */
static int check_parent_config(const Config *c, char *err, size_t errlen) {
    char why[RS_PATH_MAX + 1024], what[512];
    char *text = checkpoint_config_text(c->fork_from, why, sizeof why);
    if (!text) return fail_msg(err, errlen, "key 'fork_from': %s", why);
    Config *k = xmalloc(2 * sizeof *k);   /* parent, and this config with its interventions */
    config_defaults(&k[0]);
    int rc = config_load_text(&k[0], text, c->fork_from, 1, why, sizeof why);
    free(text);
    if (rc != 0) {
        free(k);
        return fail_msg(err, errlen, "key 'fork_from': %s: its config cannot be read by this "
                        "build: %s", c->fork_from, why);
    }
    k[1] = *c;
    memcpy(k[1].fork_from, k[0].fork_from, sizeof k[1].fork_from);
    k[1].data_seed = k[0].data_seed;
    k[1].resample_dead = k[0].resample_dead;
    k[1].debug_kill_step = k[0].debug_kill_step;
    rc = config_diff(&k[0], &k[1], 1, what, sizeof what);
    free(k);
    if (rc)
        return fail_msg(err, errlen, "key 'fork_from': %s was trained with another config (%s): "
                        "a fork continues its parent's training, so only seeds, data_seed, "
                        "resample_dead and keys that do not change results may differ",
                        c->fork_from, what);
    return 0;
}

/* The fork's checkpoint must be readable and verified, hold the shape of
 * every size of the sweep, be at a step the sweep still trains, and come
 * from the same training config. */
static int check_fork(const Config *c, char *err, size_t errlen) {
    ModelSize ms;
    int64_t step;
    char why[RS_PATH_MAX + 512];
    if (checkpoint_peek(c->fork_from, &ms, NULL, &step, why, sizeof why) != 0)
        return fail_msg(err, errlen, "key 'fork_from': %s", why);
    for (int i = 0; i < c->n_sizes; i++) {
        const ModelSize *s = &c->sizes[i];
        if (!same_shape(&ms, s)) {
            char theirs[128], mine[128];
            variant_format(&ms, 0, theirs, sizeof theirs);
            variant_format(s, 0, mine, sizeof mine);
            return fail_msg(err, errlen, "key 'fork_from': %s is a checkpoint of size L=%d d=%d "
                            "h=%d F=%d T=%d V=%d%s, but size '%s' of the sweep is L=%d d=%d h=%d "
                            "F=%d T=%d V=%d%s", c->fork_from, ms.L, ms.d, ms.h, ms.F, ms.T, ms.V,
                            theirs, s->name, s->L, s->d, s->h, s->F, s->T, s->V, mine);
        }
    }
    if (step >= c->steps)
        return fail_msg(err, errlen, "key 'fork_from': %s is at step %lld, but steps = %ld: "
                        "the fork would train nothing (raise steps)", c->fork_from,
                        (long long)step, c->steps);
    return check_parent_config(c, err, errlen);
}

int intervene_check(const Config *c, char *err, size_t errlen) {
    if (c->resample_dead > 0 && !c->dead_window_set)
        return fail_msg(err, errlen, "key 'resample_dead': set dead_window too (the units off "
                        "for dead_window steps are the ones resampled)");
    if (c->resample_dead > 0 && c->dead_window > c->steps)
        return fail_msg(err, errlen, "key 'resample_dead': dead_window = %ld exceeds steps = %ld, "
                        "so no unit can ever be off and resampled", c->dead_window, c->steps);
    if (c->resample_dead > c->steps)
        return fail_msg(err, errlen, "key 'resample_dead': every %ld steps never comes in "
                        "steps = %ld", c->resample_dead, c->steps);
    if (c->fork_from[0] != '\0') return check_fork(c, err, errlen);
    return 0;
}

void fork_start(const Config *c, const ModelSize *ms, Model *m, Optimizer *o, RunState *rs,
                uint64_t run_seed) {
    char err[RS_PATH_MAX + 1024];
    if (checkpoint_load(c->fork_from, ms, NULL, m, o, rs, err, sizeof err) != 0)
        die("key 'fork_from': %s", err);
    /* the fork's own checkpoints and records belong to the fork's run; the
     * parent's seed stays in fork_from's file */
    rs->seed = run_seed;
}

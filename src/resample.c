/* resample.c — re-initialization of dead units (resample_dead) and the
 * test-only planted death (debug_kill_step); see intervene.h. */
#include <math.h>
#include <string.h>
#include "intervene.h"
#include "rng.h"

int resample_due(const Config *c, int64_t step) {
    return c->resample_dead > 0 && (step + 1) % c->resample_dead == 0;
}

/* Unit f of layer l gets the init of SPEC §2; its optimizer moments restart
 * at zero, as for a parameter never updated. Views: fc [L][d][F] (column f),
 * b_in [L][F] (absent with mlp_bias=0), proj [L][F][d] (row f). */
static void reinit_unit(Model *m, Optimizer *o, Rng *rng, int l, int f) {
    const ModelSize *s = &m->cfg;
    size_t d = (size_t)s->d, F = (size_t)s->F;
    float proj_std = 0.02f / sqrtf(2.0f * (float)s->L);
    float *p = m->params_memory;
    size_t col = (size_t)(m->params.fcw - p) + (size_t)l * d * F + (size_t)f;
    size_t row = (size_t)(m->params.fcprojw - p) + ((size_t)l * F + (size_t)f) * d;
    for (size_t k = 0; k < d; k++) {
        size_t i = col + k * F;
        p[i] = 0.02f * rng_normal(rng);
        o->m[i] = o->v[i] = 0.0f;
    }
    if (m->params.fcb) {
        size_t bias = (size_t)(m->params.fcb - p) + (size_t)l * F + (size_t)f;
        p[bias] = 0.0f;
        o->m[bias] = o->v[bias] = 0.0f;
    }
    for (size_t k = 0; k < d; k++) {
        p[row + k] = proj_std * rng_normal(rng);
        o->m[row + k] = o->v[row + k] = 0.0f;
    }
}

void resample_dead_units(const Config *c, Model *m, Optimizer *o, RunState *rs, int64_t step,
                         StepRecord *rec) {
    Rng rng;   /* the run's own stream: checkpointed, the same on every replica */
    memcpy(rng.s, rs->rng_state, sizeof rng.s);
    for (int l = 0; l < m->cfg.L; l++) {
        DeathTracker *t = &rs->trackers[l];
        int32_t n = 0;
        for (int f = 0; f < t->F; f++) {
            if (step - t->last_fire[f] < c->dead_window) continue;   /* not off */
            reinit_unit(m, o, &rng, l, f);
            t->last_fire[f] = step;   /* a new unit: W steps to fire before it is off */
            t->born[f] = step;
            n++;
        }
        rec->layers[l].resampled = n;
    }
    memcpy(rs->rng_state, rng.s, sizeof rs->rng_state);
}

/* The planted units: the first DEBUG_KILL_UNITS units of layer 0 that fired
 * on the step's global batch (layer 0's block of the summed usage buffer
 * starts with fire_count[F]). Returns how many were found. */
static int planted_units(const Model *m, const int64_t *usage, int units[DEBUG_KILL_UNITS]) {
    int n = 0;
    for (int f = 0; f < m->cfg.F && n < DEBUG_KILL_UNITS; f++)
        if (usage[f] > 0) units[n++] = f;
    return n;
}

void debug_kill_spike(const Config *c, Model *m, const int64_t *usage, int64_t step) {
    if (step != c->debug_kill_step || !m->grads.fcb) return;   /* config: mlp_bias=1 needed */
    int units[DEBUG_KILL_UNITS], n = planted_units(m, usage, units);
    for (int i = 0; i < n; i++) m->grads.fcb[units[i]] += DEBUG_KILL_SPIKE;
}

void debug_kill_bias(const Config *c, Model *m, const int64_t *usage, int64_t step) {
    if (step != c->debug_kill_step || !m->params.fcb) return;
    int units[DEBUG_KILL_UNITS], n = planted_units(m, usage, units);
    for (int i = 0; i < n; i++) m->params.fcb[units[i]] = DEBUG_KILL_BIAS;
}

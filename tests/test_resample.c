/* test_resample.c — resample_dead and the re-death bookkeeping
 * (include/intervene.h) against what they must do, value by value:
 *   - exactly the off units are re-initialized: their fc column, b_in and
 *     proj row take the values a replay of the RNG stream gives (N(0, 0.02),
 *     0, N(0, 0.02/sqrt(2L)) in layer-then-unit order), their AdamW moments
 *     are zero, their tracker restarts (last_fire = born = step); every other
 *     parameter and moment is untouched; the RNG state advances;
 *   - the same call on a copy gives the same bits (what every replica does);
 *   - death_tracker_step counts a resampled unit that turns off again once,
 *     with its life, and not a unit never resampled or one that fires. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "intervene.h"
#include "rng.h"

static const ModelSize SZ = {.name = "t", .L = 2, .d = 8, .h = 2, .F = 16, .T = 4, .V = 16};

typedef struct { Model m; Optimizer o; RunState rs; } Bundle;

static void build(Bundle *b) {
    build_model(&b->m, &SZ, 1);
    model_init_params(&b->m, 5);
    build_optimizer(&b->o, OPT_ADAMW, b->m.num_params);
    for (size_t i = 0; i < b->o.n; i++) { b->o.m[i] = 1.0f + (float)i; b->o.v[i] = 2.0f; }
    memset(&b->rs, 0, sizeof b->rs);
    b->rs.trackers = xcalloc((size_t)SZ.L, sizeof(DeathTracker));
    for (int l = 0; l < SZ.L; l++) build_death_tracker(&b->rs.trackers[l], SZ.F, 10);
    run_state_init(&b->rs, 9);
}

static void release(Bundle *b) {
    for (int l = 0; l < SZ.L; l++) free_death_tracker(&b->rs.trackers[l]);
    free(b->rs.trackers);
    free_optimizer(&b->o);
    free_model(&b->m);
}

/* Unit f of layer l is off at step 100 iff (l + f) % 3 == 0. */
static int is_off(int l, int f) { return (l + f) % 3 == 0; }

static void set_trackers(Bundle *b) {
    for (int l = 0; l < SZ.L; l++)
        for (int f = 0; f < SZ.F; f++)
            b->rs.trackers[l].last_fire[f] = is_off(l, f) ? (f % 2 ? -1 : 80) : 95;
}

/* The index of each of unit (l, f)'s parameters: role 0 fc, 1 b_in, 2 proj. */
static int unit_of(const Model *m, size_t i, int *l, int *f, int *role) {
    size_t d = (size_t)SZ.d, F = (size_t)SZ.F, L = (size_t)SZ.L;
    size_t fc = (size_t)(m->params.fcw - m->params_memory);
    size_t b = (size_t)(m->params.fcb - m->params_memory);
    size_t pj = (size_t)(m->params.fcprojw - m->params_memory);
    if (i >= fc && i < fc + L * d * F) {
        size_t k = i - fc; *l = (int)(k / (d * F)); *f = (int)(k % F); *role = 0; return 1;
    }
    if (i >= b && i < b + L * F) { size_t k = i - b; *l = (int)(k / F); *f = (int)(k % F); *role = 1; return 1; }
    if (i >= pj && i < pj + L * F * d) {
        size_t k = i - pj; *l = (int)(k / (F * d)); *f = (int)(k / d % F); *role = 2; return 1;
    }
    return 0;
}

static void test_resample(void) {
    Bundle a, c;
    build(&a); build(&c);
    set_trackers(&a); set_trackers(&c);
    float *before = xmalloc(a.m.num_params * sizeof(float));
    memcpy(before, a.m.params_memory, a.m.num_params * sizeof(float));
    uint64_t rng0[4];
    memcpy(rng0, a.rs.rng_state, sizeof rng0);
    Config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dead_window = 10;
    cfg.resample_dead = 4;
    StepRecord *rec = xcalloc(1, sizeof *rec), *rec2 = xcalloc(1, sizeof *rec2);
    CHECK(resample_due(&cfg, 99) && !resample_due(&cfg, 100), "resample_due (s+1) %% 4");
    resample_dead_units(&cfg, &a.m, &a.o, &a.rs, 100, rec);
    resample_dead_units(&cfg, &c.m, &c.o, &c.rs, 100, rec2);
    /* the replay: layer then unit, d fc values then d proj values */
    Rng r;
    memcpy(r.s, rng0, sizeof r.s);
    size_t d = (size_t)SZ.d, F = (size_t)SZ.F;
    float *want = xmalloc(a.m.num_params * sizeof(float));
    memcpy(want, before, a.m.num_params * sizeof(float));
    float proj_std = 0.02f / sqrtf(2.0f * SZ.L);
    for (int l = 0; l < SZ.L; l++) {
        int n = 0;
        for (int f = 0; f < SZ.F; f++) {
            if (!is_off(l, f)) continue;
            n++;
            for (size_t k = 0; k < d; k++)
                want[(size_t)(a.m.params.fcw - a.m.params_memory) + l * d * F + k * F + f] =
                    0.02f * rng_normal(&r);
            want[(size_t)(a.m.params.fcb - a.m.params_memory) + l * F + f] = 0.0f;
            for (size_t k = 0; k < d; k++)
                want[(size_t)(a.m.params.fcprojw - a.m.params_memory) + (l * F + f) * d + k] =
                    proj_std * rng_normal(&r);
            CHECK(a.rs.trackers[l].last_fire[f] == 100 && a.rs.trackers[l].born[f] == 100,
                  "tracker of (%d, %d) not restarted", l, f);
        }
        CHECK(rec->layers[l].resampled == n, "layer %d: resampled %d, want %d", l,
              rec->layers[l].resampled, n);
    }
    CHECK(!memcmp(r.s, a.rs.rng_state, sizeof r.s), "the RNG state is not the replay's");
    CHECK(memcmp(rng0, a.rs.rng_state, sizeof rng0) != 0, "the RNG state did not advance");
    size_t bad_p = 0, bad_m = 0;
    for (size_t i = 0; i < a.m.num_params; i++) {
        int l, f, role;
        int reinit = unit_of(&a.m, i, &l, &f, &role) && is_off(l, f);
        bad_p += a.m.params_memory[i] != want[i];
        bad_m += reinit ? (a.o.m[i] != 0.0f || a.o.v[i] != 0.0f)
                        : (a.o.m[i] != 1.0f + (float)i || a.o.v[i] != 2.0f);
    }
    CHECK(bad_p == 0, "%zu parameters differ from the replay", bad_p);
    CHECK(bad_m == 0, "%zu moments wrong (zero for re-initialized units, untouched elsewhere)",
          bad_m);
    CHECK(!memcmp(a.m.params_memory, c.m.params_memory, a.m.num_params * sizeof(float)) &&
          !memcmp(a.rs.rng_state, c.rs.rng_state, sizeof a.rs.rng_state),
          "two replicas resampled differently");
    for (int l = 0; l < SZ.L; l++)
        for (int f = 0; f < SZ.F; f++)
            if (!is_off(l, f))
                CHECK(a.rs.trackers[l].last_fire[f] == 95 && a.rs.trackers[l].born[f] == -1,
                      "tracker of on unit (%d, %d) changed", l, f);
    free(before); free(want); free(rec); free(rec2);
    release(&a); release(&c);
}

/* Units: 0 resampled at 50, last fired 53, silent since -> off at 63: redied,
 * life 3; 1 resampled at 50, never fired after -> off at 60: redied, life 0;
 * 2 never resampled, off at 60: not counted; 3 resampled, fires: not counted. */
static void test_redied(void) {
    DeathTracker t;
    build_death_tracker(&t, 4, 10);
    t.last_fire[0] = 50; t.born[0] = 50;
    t.last_fire[1] = 50; t.born[1] = 50;
    t.last_fire[2] = 50; t.born[2] = -1;
    t.last_fire[3] = 50; t.born[3] = 50;
    LayerMetrics m;
    int64_t redied = 0, life = 0, turned = 0;
    for (long s = 51; s <= 70; s++) {
        int64_t fires[4] = {s <= 53, 0, 0, 1};
        memset(&m, 0, sizeof m);
        death_tracker_step(&t, s, fires, 1, &m);
        redied += m.redied; life += m.redied_life; turned += m.turned_off;
        if (s == 60) CHECK(m.redied == 1 && m.redied_life == 0 && m.turned_off == 2,
                           "step 60: redied %d life %lld turned_off %d", m.redied,
                           (long long)m.redied_life, m.turned_off);
        if (s == 63) CHECK(m.redied == 1 && m.redied_life == 3, "step 63: redied %d life %lld",
                           m.redied, (long long)m.redied_life);
    }
    CHECK(redied == 2 && life == 3 && turned == 3, "totals: redied %lld life %lld turned %lld",
          (long long)redied, (long long)life, (long long)turned);
    CHECK(t.born[0] == -1 && t.born[1] == -1 && t.born[2] == -1 && t.born[3] == 50,
          "born not cleared at the re-death (or cleared for a live unit)");
    free_death_tracker(&t);
}

int main(void) {
    test_resample();
    test_redied();
    return test_done("test_resample");
}

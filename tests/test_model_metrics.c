/* test_model_metrics.c — the metrics on a real tiny model's forward pass:
 * the fused counts equal a brute-force recount of the stored activations,
 * and a unit silenced through a very negative bias is reported off exactly
 * W steps after its last firing, and revived when it fires again. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model.h"
#include "rng.h"
#include "util.h"

static ModelSize ms = {"mm", 3, 32, 4, 48, 16, 50, .pos = POS_LEARNED};
enum { B = 4 };

static void random_tokens(uint16_t *tok, Rng *rng) {
    for (int i = 0; i < B * (ms.T + 1); i++) tok[i] = (uint16_t)rng_below(rng, ms.V);
}

static void test_counts_match_activations(Model *m, uint16_t *tok) {
    size_t n = (size_t)ms.L * usage_stride(ms.F);
    int64_t *usage = xcalloc(n, sizeof *usage);
    model_forward(m, tok, B, usage, NULL, NULL);
    for (int l = 0; l < ms.L; l++) {
        const float *a = model_layer_h(m, l);
        UsageCounts u = usage_view(usage, l, ms.F);
        int64_t fire[64] = {0}, thist[64] = {0}, shist[64] = {0};
        for (int b = 0; b < B; b++) {
            int seen[64] = {0};
            for (int t = 0; t < ms.T; t++) {
                int k = 0;
                for (int f = 0; f < ms.F; f++) {
                    int on = a[((size_t)b * ms.T + t) * ms.F + f] > 0.0f;
                    fire[f] += on; k += on; seen[f] |= on;
                }
                thist[k]++;
            }
            int k = 0;
            for (int f = 0; f < ms.F; f++) k += seen[f];
            shist[k]++;
        }
        int bad = 0;
        for (int f = 0; f < ms.F; f++) bad += fire[f] != u.fire_count[f];
        for (int k = 0; k <= ms.F; k++) bad += (thist[k] != u.token_hist[k]) + (shist[k] != u.seq_hist[k]);
        CHECK(bad == 0, "layer %d: %d counts differ from the brute-force recount", l, bad);
    }
    free(usage);
}

/* Steps of forward passes (no training) with unit f of layer 1 silenced
 * from step `off_from` and forced on again at step `on_again`. */
static void test_dead_window(Model *m, Rng *rng) {
    const int W = 4, layer = 1, unit = 7, off_from = 3, on_again = 12;
    float *bias = m->params.fcb + (size_t)layer * ms.F + unit, keep = *bias;
    DeathTracker tr;
    build_death_tracker(&tr, ms.F, W);
    size_t n = (size_t)ms.L * usage_stride(ms.F);
    int64_t *usage = xmalloc(n * sizeof *usage);
    uint16_t *tok = xmalloc((size_t)B * (ms.T + 1) * sizeof *tok);
    int was_off = 0;
    for (long s = 0; s < 16; s++) {
        *bias = s >= off_from && s < on_again ? -1e4f : (s >= on_again ? 1e4f : keep);
        random_tokens(tok, rng);
        memset(usage, 0, n * sizeof *usage);
        model_forward(m, tok, B, usage, NULL, NULL);
        UsageCounts u = usage_view(usage, layer, ms.F);
        LayerMetrics lm;
        memset(&lm, 0, sizeof lm);
        death_tracker_step(&tr, s, u.fire_count, (int64_t)B * ms.T, &lm);
        int off = s - tr.last_fire[unit] >= W;
        /* last firing at off_from - 1 (checked): off from off_from - 1 + W */
        if (s == off_from - 1) CHECK(u.fire_count[unit] > 0, "unit did not fire before silencing");
        long expect_off = s >= off_from - 1 + W && s < on_again;
        CHECK(off == expect_off, "step %ld: unit off=%d, expected %ld", s, off, expect_off);
        if (s == off_from - 1 + W) CHECK(lm.turned_off >= 1, "step %ld: turned_off not counted", s);
        if (s == on_again) CHECK(was_off && lm.revived >= 1 && u.fire_count[unit] == B * ms.T,
                                 "step %ld: revival not counted", s);
        was_off = off;
    }
    *bias = keep;
    free(usage); free(tok);
    free_death_tracker(&tr);
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 99, 0);
    Model m;
    build_model(&m, &ms, B);
    model_init_params(&m, 5);
    for (size_t i = 0; i < m.num_params; i++) m.params_memory[i] += 0.05f * rng_normal(&rng);
    uint16_t *tok = xmalloc((size_t)B * (ms.T + 1) * sizeof *tok);
    random_tokens(tok, &rng);
    test_counts_match_activations(&m, tok);
    test_dead_window(&m, &rng);
    free(tok);
    free_model(&m);
    return test_done("model_metrics");
}

/* test_sweep.c — the sweep planner: every run planned exactly once, every
 * group's rank count divides the batch, impossible layouts refused. */
#include <string.h>
#include "check.h"
#include "sweep.h"

static Config make_config(int n_sizes, int n_seeds, int B) {
    Config c;
    memset(&c, 0, sizeof c);
    ModelSize small = {"small", 2, 64, 4, 256, 64, 256, .pos = POS_LEARNED}, big = {"big", 6, 256, 8, 1024, 128, 256, .pos = POS_LEARNED};
    c.n_sizes = n_sizes;
    for (int i = 0; i < n_sizes; i++) c.sizes[i] = i % 2 ? big : small;
    c.n_seeds = n_seeds;
    for (int i = 0; i < n_seeds; i++) c.seeds[i] = (uint64_t)i;
    c.batch_size = B;
    c.steps = 10;
    return c;
}

/* Every run once in `order`, the groups' slices of it contiguous and in
 * group order, every rank in exactly the group that claims it. */
static void check_plan(const SweepPlan *p, const Config *c, int W, const char *what) {
    int seen[MAX_RUNS] = {0}, ranks = 0;
    CHECK(p->start[0] == 0 && p->start[p->n_groups] == p->n_runs, "%s: start[] does not span "
          "the runs (%d .. %d of %d)", what, p->start[0], p->start[p->n_groups], p->n_runs);
    for (int g = 0; g < p->n_groups; g++) {
        int n;
        const int *runs = sweep_group_runs(p, g, &n);
        CHECK(c->batch_size % p->group_size[g] == 0, "%s: group %d size %d does not divide B",
              what, g, p->group_size[g]);
        CHECK(p->first_rank[g] == ranks, "%s: group %d starts at rank %d, not %d", what, g,
              p->first_rank[g], ranks);
        CHECK(n >= 0 && runs == p->order + p->start[g], "%s: group %d's slice", what, g);
        ranks += p->group_size[g];
        for (int i = 0; i < n; i++) seen[runs[i]]++;
    }
    CHECK(ranks == W && p->n_ranks == W, "%s: %d ranks planned of %d", what, ranks, W);
    for (int r = 0; r < p->n_runs; r++) CHECK(seen[r] == 1, "%s: run %d planned %d times", what, r, seen[r]);
    for (int w = 0; w < W; w++) {
        int g = sweep_group_of_rank(p, w);
        CHECK(g >= 0 && w >= p->first_rank[g] && w < p->first_rank[g] + p->group_size[g],
              "%s: rank %d not inside its group %d", what, w, g);
    }
    CHECK(sweep_group_of_rank(p, W) == -1, "%s: rank %d (outside) has a group", what, W);
}

int main(void) {
    char err[512];
    SweepPlan p;
    for (int W = 1; W <= 8; W *= 2) {
        Config c = make_config(2, 2, 16);
        char what[64];
        snprintf(what, sizeof what, "2x2 runs on %d ranks", W);
        CHECK(sweep_plan(&p, &c, W, err, sizeof err) == 0, "%s: %s", what, err);
        check_plan(&p, &c, W, what);
    }
    /* more ranks than runs: the bigger model gets more ranks */
    Config c = make_config(2, 1, 16);
    CHECK(sweep_plan(&p, &c, 6, err, sizeof err) == 0, "6 ranks 2 runs: %s", err);
    check_plan(&p, &c, 6, "2 runs on 6 ranks");
    CHECK(p.group_size[1] > p.group_size[0], "big run got %d ranks, small %d",
          p.group_size[1], p.group_size[0]);
    /* 3 ranks, one run, B = 16: no divisor layout uses every rank */
    c = make_config(1, 1, 16);
    CHECK(sweep_plan(&p, &c, 3, err, sizeof err) != 0, "3 ranks for B=16 accepted");
    CHECK(strstr(err, "batch_size") != NULL, "message names batch_size: %s", err);
    /* ranks_per_run that does not divide the rank count */
    c = make_config(2, 2, 16);
    c.ranks_per_run = 3;
    CHECK(sweep_plan(&p, &c, 4, err, sizeof err) != 0, "ranks_per_run 3 on 4 ranks accepted");
    c.ranks_per_run = 2;
    CHECK(sweep_plan(&p, &c, 4, err, sizeof err) == 0, "ranks_per_run 2 on 4: %s", err);
    check_plan(&p, &c, 4, "rpr 2 on 4 ranks");
    CHECK(p.n_groups == 2 && p.start[1] == 2 && p.start[2] == 4, "2 groups x 2 runs");
    /* ranks_per_run leaving a group without a run (4 ranks, 2 per run, 1 run) */
    Config one = make_config(1, 1, 16);
    one.ranks_per_run = 2;
    CHECK(sweep_plan(&p, &one, 4, err, sizeof err) != 0 && strstr(err, "2 rank(s) would be idle"),
          "an idle group accepted: %s", err);
    CHECK(sweep_plan(&p, &one, 2, err, sizeof err) == 0, "ranks_per_run 2 on 2 ranks: %s", err);
    /* runs dealt longest-first to the least-loaded group: with sizes small,
     * big and 2 seeds on 2 single ranks, each rank gets one big and one small
     * run, the big one first */
    c.ranks_per_run = 0;
    CHECK(sweep_plan(&p, &c, 2, err, sizeof err) == 0, "2x2 on 2 ranks: %s", err);
    int n0, n1;
    const int *g0 = sweep_group_runs(&p, 0, &n0), *g1 = sweep_group_runs(&p, 1, &n1);
    CHECK(n0 == 2 && n1 == 2 && g0[0] == 2 && g1[0] == 3 && g0[1] == 0 && g1[1] == 1,
          "queues %d:[%d %d] %d:[%d %d], expected [2 0] [3 1]", n0, g0[0], g0[1], n1, g1[0], g1[1]);
    /* the largest sweep, one rank: a plan on the stack (no N x N queue) */
    c = make_config(MAX_RUN_SIZES, MAX_SEEDS, 16);
    CHECK(sizeof(SweepPlan) < 64 * 1024, "SweepPlan is %zu bytes", sizeof(SweepPlan));
    CHECK(sweep_plan(&p, &c, 1, err, sizeof err) == 0, "1024 runs on 1 rank: %s", err);
    check_plan(&p, &c, 1, "1024 runs on 1 rank");
    CHECK(sweep_plan(&p, &c, 48, err, sizeof err) == 0, "1024 runs on 48 ranks: %s", err);
    check_plan(&p, &c, 48, "1024 runs on 48 ranks");
    CHECK(sweep_plan(&p, &c, 1024, err, sizeof err) == 0, "1024 runs on 1024 ranks: %s", err);
    check_plan(&p, &c, 1024, "1024 runs on 1024 ranks");
    return test_done("sweep");
}

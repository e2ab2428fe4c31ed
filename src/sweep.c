/* sweep.c — splitting a job's ranks among the runs of a sweep (see sweep.h). */
#include "sweep.h"
#include <string.h>
#include "model.h"

void run_size_seed(const Config *c, int run, int *size_index, int *seed_index) {
    *size_index = run / c->n_seeds;
    *seed_index = run % c->n_seeds;
}

void run_name(const Config *c, int run, char *out, size_t outlen) {
    int si, ki;
    run_size_seed(c, run, &si, &ki);
    snprintf(out, outlen, "%s_seed%llu", c->sizes[si].name, (unsigned long long)c->seeds[ki]);
}

/* Smallest divisor of B greater than k (B itself at most). */
static int next_divisor(int B, int k) {
    for (int d = k + 1; d <= B; d++)
        if (B % d == 0) return d;
    return 0;
}

/* One group per run; spare ranks to the run with the most work per rank. */
static void plan_one_group_per_run(SweepPlan *p, const Config *c, int W) {
    int used = p->n_runs;
    p->n_groups = p->n_runs;
    for (int r = 0; r < p->n_runs; r++) {
        p->group_size[r] = 1;
        p->n_queue[r] = 1;
        p->queue[r][0] = r;
    }
    for (;;) {
        int best = -1;
        double best_load = 0;
        for (int r = 0; r < p->n_runs; r++) {
            int next = next_divisor(c->batch_size, p->group_size[r]);
            if (!next || used - p->group_size[r] + next > W) continue;
            double load = p->work[r] / p->group_size[r];
            if (best < 0 || load > best_load) { best = r; best_load = load; }
        }
        if (best < 0) break;
        int next = next_divisor(c->batch_size, p->group_size[best]);
        used += next - p->group_size[best];
        p->group_size[best] = next;
    }
}

/* Fixed-size groups; runs dealt longest-first to the least-loaded group. */
static void plan_queues(SweepPlan *p, int n_groups, int size) {
    double load[MAX_RUNS] = {0};
    int order[MAX_RUNS], done[MAX_RUNS] = {0};
    for (int i = 0; i < p->n_runs; i++) {   /* order runs by work, descending */
        int best = -1;
        for (int r = 0; r < p->n_runs; r++)
            if (!done[r] && (best < 0 || p->work[r] > p->work[best])) best = r;
        done[best] = 1;
        order[i] = best;
    }
    p->n_groups = n_groups;
    for (int g = 0; g < n_groups; g++) { p->group_size[g] = size; p->n_queue[g] = 0; }
    for (int i = 0; i < p->n_runs; i++) {
        int g = 0;
        for (int k = 1; k < n_groups; k++) if (load[k] < load[g]) g = k;
        p->queue[g][p->n_queue[g]++] = order[i];
        load[g] += p->work[order[i]];
    }
}

int sweep_plan(SweepPlan *p, const Config *c, int W, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->n_runs = c->n_sizes * c->n_seeds;
    if (W > 4096) { snprintf(err, errlen, "%d ranks: at most 4096 supported", W); return -1; }
    for (int r = 0; r < p->n_runs; r++) {
        int si, ki;
        run_size_seed(c, r, &si, &ki);
        const ModelSize *s = &c->sizes[si];
        p->work[r] = model_flops_per_token(s) * s->T * (double)c->batch_size * c->steps;
    }
    int k = c->ranks_per_run;
    if (k > 0) {
        if (W % k != 0 || c->batch_size % k != 0) {
            snprintf(err, errlen, "ranks_per_run = %d must divide the rank count (%d) and "
                     "batch_size (%d)", k, W, c->batch_size);
            return -1;
        }
        plan_queues(p, W / k, k);
    } else if (W >= p->n_runs) {
        plan_one_group_per_run(p, c, W);
    } else {
        plan_queues(p, W, 1);
    }
    int rank = 0;
    for (int g = 0; g < p->n_groups; g++) {
        p->group_first_rank[g] = rank;
        for (int i = 0; i < p->group_size[g]; i++) p->group_of_rank[rank++] = g;
    }
    if (rank < W) {   /* no split of the ranks into divisors of B fits exactly */
        snprintf(err, errlen, "%d ranks cannot all be used: each run's rank count must divide "
                 "batch_size (%d); %d rank(s) would be idle", W, c->batch_size, W - rank);
        return -1;
    }
    return 0;
}

void sweep_print(const SweepPlan *p, const Config *c, FILE *fp) {
    fprintf(fp, "plan: %d run(s) on %d group(s)\n", p->n_runs, p->n_groups);
    for (int g = 0; g < p->n_groups; g++) {
        fprintf(fp, "  group %d: ranks %d-%d (%d per run), runs:", g, p->group_first_rank[g],
                p->group_first_rank[g] + p->group_size[g] - 1, p->group_size[g]);
        for (int i = 0; i < p->n_queue[g]; i++) {
            char name[96];
            run_name(c, p->queue[g][i], name, sizeof name);
            fprintf(fp, " %s", name);
        }
        fputc('\n', fp);
    }
}

/* sweep.c — splitting a job's ranks among the runs of a sweep (see sweep.h),
 * and the corpus checks a sweep needs before it starts. */
#include "sweep.h"
#include <stdlib.h>
#include <string.h>
#include "data.h"
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
        p->start[r] = r;
        p->order[r] = r;
    }
    p->start[p->n_runs] = p->n_runs;
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

/* Fixed-size groups; runs dealt longest-first to the least-loaded group,
 * then laid out group by group in `order` (a counting sort on the group). */
static void plan_queues(SweepPlan *p, int n_groups, int size) {
    double load[MAX_RUNS] = {0};
    int by_work[MAX_RUNS], group_of[MAX_RUNS], done[MAX_RUNS] = {0}, count[MAX_RUNS] = {0};
    for (int i = 0; i < p->n_runs; i++) {   /* order runs by work, descending */
        int best = -1;
        for (int r = 0; r < p->n_runs; r++)
            if (!done[r] && (best < 0 || p->work[r] > p->work[best])) best = r;
        done[best] = 1;
        by_work[i] = best;
    }
    p->n_groups = n_groups;
    for (int g = 0; g < n_groups; g++) p->group_size[g] = size;
    for (int i = 0; i < p->n_runs; i++) {
        int g = 0;
        for (int k = 1; k < n_groups; k++) if (load[k] < load[g]) g = k;
        group_of[i] = g;
        count[g]++;
        load[g] += p->work[by_work[i]];
    }
    p->start[0] = 0;
    for (int g = 0; g < n_groups; g++) p->start[g + 1] = p->start[g] + count[g];
    int next[MAX_RUNS];
    memcpy(next, p->start, (size_t)n_groups * sizeof next[0]);
    for (int i = 0; i < p->n_runs; i++) p->order[next[group_of[i]]++] = by_work[i];
}

int sweep_plan(SweepPlan *p, const Config *c, int W, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->n_runs = c->n_sizes * c->n_seeds;
    p->n_ranks = W;
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
        if (W / k > p->n_runs) {   /* a group with no run would idle (docs/parallel.md) */
            snprintf(err, errlen, "ranks_per_run = %d: %d ranks make %d groups for %d run(s), "
                     "so %d rank(s) would be idle; use %d ranks", k, W,
                     W / k, p->n_runs, W - p->n_runs * k, p->n_runs * k);
            return -1;
        }
        if (W / k > MAX_RUNS) {
            snprintf(err, errlen, "%d ranks in groups of %d: at most %d groups", W, k, MAX_RUNS);
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
        p->first_rank[g] = rank;
        rank += p->group_size[g];
    }
    if (rank < W) {   /* no split of the ranks into divisors of B fits exactly */
        snprintf(err, errlen, "%d ranks cannot all be used: each run's rank count must divide "
                 "batch_size (%d); %d rank(s) would be idle", W, c->batch_size, W - rank);
        return -1;
    }
    return 0;
}

int sweep_group_of_rank(const SweepPlan *p, int rank) {
    for (int g = 0; g < p->n_groups; g++)
        if (rank < p->first_rank[g] + p->group_size[g]) return g;
    return -1;   /* not a rank of the plan */
}

const int *sweep_group_runs(const SweepPlan *p, int g, int *n) {
    *n = p->start[g + 1] - p->start[g];
    return p->order + p->start[g];
}

void sweep_print(const SweepPlan *p, const Config *c, FILE *fp) {
    fprintf(fp, "plan: %d run(s) on %d group(s)\n", p->n_runs, p->n_groups);
    for (int g = 0; g < p->n_groups; g++) {
        int n;
        const int *runs = sweep_group_runs(p, g, &n);
        fprintf(fp, "  group %d: ranks %d-%d (%d per run), runs:", g, p->first_rank[g],
                p->first_rank[g] + p->group_size[g] - 1, p->group_size[g]);
        for (int i = 0; i < n; i++) {
            char name[96];
            run_name(c, runs[i], name, sizeof name);
            fprintf(fp, " %s", name);
        }
        fputc('\n', fp);
    }
}

/* Each token set is opened (and validated) once, against the smallest V of
 * the sweep, which every size's check implies. */
int sweep_check_corpus(const Config *c, uint64_t prints[2], char *err, size_t errlen) {
    err[0] = '\0';
    if (prints) prints[0] = prints[1] = 0;
    int min_v = c->sizes[0].V;
    for (int i = 1; i < c->n_sizes; i++) min_v = c->sizes[i].V < min_v ? c->sizes[i].V : min_v;
    TokenSet ts;
    if (tokenset_open(&ts, c->train_data, min_v, err, errlen) == 0) {
        if (prints) prints[0] = ts.fingerprint;
        for (int i = 0; i < c->n_sizes && !err[0]; i++) {
            Sampler sp;
            if (build_sampler(&sp, &ts, c->sizes[i].T, c->batch_size, c->sampler, 0, err,
                              errlen) == 0)
                free_sampler(&sp);
        }
        tokenset_close(&ts);
    }
    if (!err[0] && c->eval_every > 0 && c->val_data[0] != '\0' &&
        tokenset_open(&ts, c->val_data, min_v, err, errlen) == 0) {
        if (prints) prints[1] = ts.fingerprint;
        for (int i = 0; i < c->n_sizes && !err[0]; i++)
            heldout_check(&ts, c->sizes[i].T, (int)(c->eval_tokens / c->sizes[i].T), err, errlen);
        tokenset_close(&ts);
    }
    return err[0] ? -1 : 0;
}

/* sweep.h — the plan of a sweep: which ranks train which runs, in what order.
 * Plain C (no MPI), so it is tested in one process.
 *
 * A run is one (size, seed) pair: run = size_index * n_seeds + seed_index.
 * The job's W ranks are split ONCE into groups; each group trains a queue of
 * runs one after another, data-parallel over its ranks. Every group's rank
 * count divides the global batch B.
 *   - ranks_per_run = k > 0: W/k groups of k ranks (W % k == 0 required).
 *   - otherwise, W >= runs: one group per run; spare ranks go to the runs with
 *     the most work per rank (FLOPs per step), each count a divisor of B, so
 *     that runs finish together where possible.
 *   - otherwise (fewer ranks than runs): W groups of one rank; runs are dealt
 *     longest-first to the least-loaded group.
 */
#ifndef RELUSCOPE_SWEEP_H
#define RELUSCOPE_SWEEP_H
#include <stdio.h>
#include "config.h"

#define MAX_RUNS (MAX_RUN_SIZES * MAX_SEEDS)

/* Group g has ranks first_rank[g] .. first_rank[g] + group_size[g] - 1 and
 * trains the runs order[start[g]] .. order[start[g + 1] - 1], one after
 * another: every run appears once in `order`, grouped by group. */
typedef struct {
    int n_runs, n_groups, n_ranks;
    int group_size[MAX_RUNS];
    int first_rank[MAX_RUNS];
    int start[MAX_RUNS + 1];
    int order[MAX_RUNS];
    double work[MAX_RUNS];           /* FLOPs of a run (for ETA and balance) */
} SweepPlan;

/* -1 + err when the layout is impossible (rank count vs B, ranks_per_run). */
int  sweep_plan(SweepPlan *p, const Config *c, int world_size, char *err, size_t errlen);
/* The group a world rank belongs to. */
int  sweep_group_of_rank(const SweepPlan *p, int rank);
/* The runs of group g, in order: *n of them. */
const int *sweep_group_runs(const SweepPlan *p, int g, int *n);
void sweep_print(const SweepPlan *p, const Config *c, FILE *fp);
void run_size_seed(const Config *c, int run, int *size_index, int *seed_index);
/* "S_seed0": names the run's checkpoint folder and its dataset group */
void run_name(const Config *c, int run, char *out, size_t outlen);

/* The corpus checks each run does when it starts (every token < V, enough
 * windows for a batch, a held-out set that fits), for every size of the
 * sweep: `train` and `plan --check` run them before anything is written.
 * -1 + err naming the file and the problem. prints (or NULL): the
 * fingerprints of train_data and val_data (0 when not opened), data.h. */
int  sweep_check_corpus(const Config *c, uint64_t prints[2], char *err, size_t errlen);

#endif

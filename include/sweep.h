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

typedef struct {
    int n_runs, n_groups;
    int group_of_rank[4096];         /* world rank -> group (W <= 4096) */
    int group_size[MAX_RUNS];
    int group_first_rank[MAX_RUNS];
    int n_queue[MAX_RUNS];           /* runs per group */
    int queue[MAX_RUNS][MAX_RUNS];   /* the run ids of each group, in order */
    double work[MAX_RUNS];           /* FLOPs of a run (for ETA and balance) */
} SweepPlan;

/* -1 + err when the layout is impossible (rank count vs B, ranks_per_run). */
int  sweep_plan(SweepPlan *p, const Config *c, int world_size, char *err, size_t errlen);
void sweep_print(const SweepPlan *p, const Config *c, FILE *fp);
void run_size_seed(const Config *c, int run, int *size_index, int *seed_index);
/* "S_seed0": names the run's checkpoint folder and its dataset group */
void run_name(const Config *c, int run, char *out, size_t outlen);

#endif

/* bench_ncout.c — the cost of recording one training step in the NetCDF
 * dataset, with the ncout.h calls the trainer makes on job rank 0 (through
 * dataset.c): ncout_write_step every step, ncout_flush every flush_every
 * steps. The three parts are timed apart:
 *   write   encoding one StepRecord into the in-memory buffer;
 *   journal ncout_flush appending flush_every records to the journal
 *           (with the PATH updates deferred: budget 1e-6);
 *   update  bringing PATH up to date for flush_every records (journal fsync,
 *           HDF5 writes, nc_sync), timed as ncout_sync.
 * Per step of length tau, with the default budget b (ncout.h), the trainer
 * pays write + journal / flush_every + min(update / flush_every, b * tau):
 * an update runs at most at every flush, and at most b of the wall time.
 * usage: bench_ncout DIR L F flush_every [flushes]
 * Output: '#' lines, then "RESULT write_s=... journal_s=... update_s=...". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench_stats.h"
#include "ncout.h"
#include "util.h"

#define MAX_FLUSHES 200

static void fill(StepRecord *r, int64_t step, int L, int F) {
    memset(r, 0, sizeof *r);
    r->run = 0; r->step = step; r->L = L;
    r->loss = 5.0 / (1.0 + 0.01 * step); r->lr = 3e-4; r->grad_norm = 1.0;
    r->step_time = 1.0; r->tokens_seen = (step + 1) * 4096;
    for (int l = 0; l < L; l++) {
        LayerMetrics *m = &r->layers[l];
        double u = 0.5 + 0.3 * sin(0.1 * step + l);
        m->token_use_mean = 0.1 * u; m->seq_use_mean = 0.5 * u; m->batch_use = u;
        for (int q = 0; q < NUM_QUANTILES; q++) {
            m->token_use_q[q] = 0.1 * u * q / (NUM_QUANTILES - 1);
            m->seq_use_q[q] = 0.5 * u * q / (NUM_QUANTILES - 1);
        }
        m->dead_frac = 1.0 - u; m->turned_off = (int32_t)(step % 7); m->revived = (int32_t)(step % 3);
    }
    (void)F;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_ncout DIR L F flush_every [flushes]\n");
        return 2;
    }
    const char *dir = argv[1];
    int L = atoi(argv[2]), F = atoi(argv[3]), fe = atoi(argv[4]);
    int nflush = argc > 5 ? atoi(argv[5]) : 40;
    if (L < 1 || L > MAX_LAYERS || F < 1 || fe < 1 || nflush < 2 || nflush > MAX_FLUSHES)
        die("bench_ncout: bad arguments");
    char path[RS_PATH_MAX], err[1024];
    snprintf(path, sizeof path, "%s/bench_ncout.nc", dir);
    Config c;
    config_defaults(&c);
    NcoutMeta meta;
    ncout_meta_from_config(&meta, &c);
    meta.n_sizes = 1;
    meta.sizes[0] = (ModelSize){"bench", L, 64, 1, F, 64, 256, .pos = POS_LEARNED};
    meta.n_seeds = 1; meta.seeds[0] = 0; meta.topk = 0;
    meta.steps = (long)fe * nflush * 2; meta.eval_every = 0; meta.snapshot_every = 0;
    meta.config_text = "# bench_ncout\n"; meta.version = "bench"; meta.git_commit = "bench";
    meta.mpi_layout = "1 rank"; meta.command_line = "bench_ncout"; meta.start_time = "now";
    unlink(path);
    Ncout *o = ncout_open(path, &meta, 1, err, sizeof err);
    if (!o) die("%s", err);
    StepRecord rec;
    int64_t step = 0;
    double tw[MAX_FLUSHES * 8], tj[MAX_FLUSHES], tu[MAX_FLUSHES];
    int nw = 0;
    /* part 1: write + journal only (updates deferred after the first) */
    ncout_set_budget(o, 1e-6);
    for (int k = 0; k <= nflush; k++) {
        for (int i = 0; i < fe; i++, step++) {
            fill(&rec, step, L, F);
            double t0 = now_seconds();
            if (ncout_write_step(o, &rec, err, sizeof err) != 0) die("%s", err);
            if (k > 0 && nw < MAX_FLUSHES * 8) tw[nw++] = now_seconds() - t0;
        }
        double t0 = now_seconds();
        if (ncout_flush(o, err, sizeof err) != 0) die("%s", err);
        if (k > 0) tj[k - 1] = now_seconds() - t0;   /* k = 0: the first, updating flush */
    }
    /* part 2: an update of PATH for every flush_every records */
    int nupd = nflush < 20 ? nflush : 20;
    for (int k = 0; k < nupd; k++) {
        for (int i = 0; i < fe; i++, step++) {
            fill(&rec, step, L, F);
            if (ncout_write_step(o, &rec, err, sizeof err) != 0) die("%s", err);
        }
        if (ncout_flush(o, err, sizeof err) != 0) die("%s", err);   /* journal (deferred) */
        double t0 = now_seconds();
        if (ncout_sync(o, err, sizeof err) != 0) die("%s", err);
        tu[k] = now_seconds() - t0;
    }
    double t0 = now_seconds();
    if (ncout_close(o, err, sizeof err) != 0) die("%s", err);
    double tclose = now_seconds() - t0;
    unlink(path);
    double mw = bench_median(tw, nw < MAX_FLUSHES * 8 ? nw : MAX_FLUSHES * 8);
    double mj = bench_median(tj, nflush), mu = bench_median(tu, nupd);
    printf("# L=%d: write_step %.1f us, flush (journal, %d records) %.3f ms, update (PATH) %.3f ms,"
           " close %.3f ms\n", L, 1e6 * mw, fe, 1e3 * mj, 1e3 * mu, 1e3 * tclose);
    printf("RESULT write_s=%.9f journal_s=%.9f update_s=%.9f close_s=%.6f flush_every=%d budget=%g\n",
           mw, mj, mu, tclose, fe, NCOUT_DEFAULT_BUDGET);
    return 0;
}

/* train.c — the `train` command: config, plan, signals, the group's queue of
 * runs, and the dataset on job rank 0. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "blas.h"
#include "cli.h"
#include "comm.h"
#include "config.h"
#include "data.h"
#include "intervene.h"
#include "model.h"
#include "run.h"
#include "sink.h"
#include "sweep.h"
#include "util.h"

/* Exit code of a run stopped by SIGUSR1/SIGTERM after checkpointing:
 * the job script requeues on it (EX_TEMPFAIL). */
#define EXIT_STOPPED 75

/* When the first stop signal came (clock_gettime is async-signal-safe): the
 * exit line reports how long the stop took, which KillWait/GraceTime must
 * exceed (docs/slurm.md). */
static struct timespec g_stop_time;

static void on_stop_signal(int sig) {
    (void)sig;
    if (!g_stop_requested) clock_gettime(CLOCK_MONOTONIC, &g_stop_time);
    g_stop_requested = 1;
}

void train_install_signals(void) {
    signal(SIGUSR1, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
}

static void report_stop(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (g_stop_time.tv_sec == 0 && g_stop_time.tv_nsec == 0)   /* another rank's signal */
        printf("stopped on request; checkpoints written; exit %d\n", EXIT_STOPPED);
    else
        printf("stopped on request %.1f s after the signal; checkpoints written; exit %d\n",
               (double)(now.tv_sec - g_stop_time.tv_sec) +
               1e-9 * (double)(now.tv_nsec - g_stop_time.tv_nsec), EXIT_STOPPED);
}

static void train_usage(FILE *fp) {
    fprintf(fp,
        "usage: reluscope train CONFIG [key=value ...]\n"
        "Runs every (size, seed) of CONFIG (docs/config.md lists the keys), data-parallel\n"
        "over the job's MPI ranks, writing OUT_DIR/dataset.nc and checkpoints under\n"
        "OUT_DIR/checkpoints/. Resumes from the newest valid checkpoints by itself.\n"
        "SIGUSR1 or SIGTERM: finish the step, checkpoint, flush, exit %d (requeue me).\n"
        "Example: mpirun -np 2 bin/reluscope train configs/demo.conf steps=200 seeds=0,1\n",
        EXIT_STOPPED);
}

static char *joined_command_line(int argc, char **argv) {
    size_t len = 32;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
    char *s = xmalloc(len);
    strcpy(s, "reluscope train");
    for (int i = 1; i < argc; i++) { strcat(s, " "); strcat(s, argv[i]); }
    return s;
}

/* Plan on every rank (same inputs, same plan); only rank 0 reports problems. */
static int plan_or_report(SweepPlan *plan, const Config *c, int rank) {
    char err[1024];
    if (sweep_plan(plan, c, comm_world_size(), err, sizeof err) == 0) return 0;
    if (rank == 0) fprintf(stderr, "reluscope: error: %s\n", err);
    return -1;
}

/* The corpus of every size, before anything is written (sweep.h): a bad
 * shard is one error line, not a dataset.nc with no records. Every rank
 * reads the same files and reaches the same verdict; rank 0 reports. The
 * corpora's fingerprints go into the runs' checkpoints (resume.h). */
static int check_corpus(const Config *c, int rank, CorpusPrints *cp) {
    char err[1024];
    uint64_t prints[2];
    if (sweep_check_corpus(c, prints, err, sizeof err) == 0) {
        cp->train = prints[0];
        cp->val = prints[1];
        return 0;
    }
    if (rank == 0) fprintf(stderr, "reluscope: error: %s\n", err);
    return -1;
}

/* Bytes one rank of group g plans to allocate for its largest run: params,
 * gradients and both moments, the activations of its slice of the batch,
 * its rows of the held-out activations, and a margin for OpenBLAS's buffers
 * and MPI. An estimate on the high side of the model's own buffers. */
static double planned_bytes(const Config *c, const SweepPlan *plan, int g) {
    int n;
    const int *runs = sweep_group_runs(plan, g, &n);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        int si, ki;
        run_size_seed(c, runs[i], &si, &ki);
        const ModelSize *s = &c->sizes[si];
        double N = (double)c->batch_size / plan->group_size[g] * s->T;
        double floats = 4.0 * (double)param_total(s) +
                        N * (s->L * (10.0 * s->d + 3.0 * s->F) + 3.0 * s->d + s->V) +
                        (c->eval_every > 0 ? (double)c->eval_tokens / plan->group_size[g] *
                                                 s->L * s->F : 0);
        worst = floats * 4 > worst ? floats * 4 : worst;
    }
    return worst + 160.0 * 1024 * 1024;
}

/* ulimit -v too small makes OpenBLAS spin forever in its allocator: refuse
 * at start with the numbers instead. Rank 0 reports. */
static int check_memory(const Config *c, const SweepPlan *plan, int rank) {
    char why[512];
    int bad = address_space_check(planned_bytes(c, plan, sweep_group_of_rank(plan, rank)), why,
                                  sizeof why) != 0;
    if (bad && rank == 0) fprintf(stderr, "reluscope: error: %s\n", why);
    return comm_world_any(bad) ? -1 : 0;
}

int cmd_train(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        train_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    train_install_signals();   /* main() did it before MPI_Init; again for direct callers */
    int rank = comm_world_rank();
    Config c;
    char err[RS_PATH_MAX + 1024];
    /* a bad config or override (docs/config.md, "Errors"): one line, exit 64,
     * the same verdict on every rank, before any output */
    if (config_load(&c, argv[1], argc - 2, argv + 2, err, sizeof err) != 0) {
        if (rank == 0) fprintf(stderr, "reluscope: error: %s\n", err);
        return EXIT_USAGE;
    }
    if (intervene_check(&c, err, sizeof err) != 0) {   /* same verdict on every rank */
        if (rank == 0) fprintf(stderr, "reluscope: error: %s\n", err);
        return EXIT_USAGE;
    }
    SweepPlan plan;
    if (plan_or_report(&plan, &c, rank) != 0) return 1;
    CorpusPrints prints;
    if (check_corpus(&c, rank, &prints) != 0) return 1;
    if (check_memory(&c, &plan, rank) != 0) return 1;
    if (rank == 0) {
        if (mkdir_p(c.out_dir) != 0)
            die("%s: cannot create the output folder: %s", c.out_dir, strerror(errno));
        const char *better = blas_better_coretype();
        /* on stdout with the startup report: stderr carries errors only */
        if (better)
            printf("# warning: OpenBLAS chose its %s kernels, older than this CPU supports "
                   "(matmuls run several times slower): start the job with "
                   "OPENBLAS_CORETYPE=%s in its environment (scripts/blas-env.sh does it)\n",
                   blas_core_name(), better);
        printf("# reluscope train: effective config\n");
        config_print(&c, stdout);
        sweep_print(&plan, &c, stdout);
        fflush(stdout);
    }
    char *cmdline = joined_command_line(argc, argv);
    char start[64], layout[256];
    time_t now = time(NULL);
    strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(layout, sizeof layout, "%d ranks, %d group(s)", comm_world_size(), plan.n_groups);
    SinkMeta meta = {cmdline, start, layout};
    sink_open(&c, &plan, &meta);
    /* rank 0 (dataset open) decides what each run may resume from; all wait */
    if (comm_world_any(rank == 0 && resume_check_all(&c, &prints) != 0)) {
        sink_close_now();
        free(cmdline);
        return 1;
    }
    Comm comm;
    int group = sweep_group_of_rank(&plan, rank), n_runs;
    const int *runs = sweep_group_runs(&plan, group, &n_runs);
    comm_split(&comm, group, rank);
    int stopped = 0;
    for (int i = 0; i < n_runs && !stopped; i++) {
        /* a stop that came while the previous run ended starts no new run */
        if (i > 0 && comm_group_any(&comm, g_stop_requested != 0)) { stopped = 1; break; }
        stopped = train_run(&c, runs[i], &prints, &comm) == RUN_STOPPED;
    }
    if (comm.rank == 0) sink_group_done(group);
    sink_close(plan.n_groups);
    comm_free(&comm);
    free(cmdline);
    stopped = comm_world_any(stopped);
    if (rank == 0 && stopped) report_stop();
    return stopped ? EXIT_STOPPED : 0;
}

/* main.c — bin/reluscope: dispatch to the subcommands of cli.h. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "blas.h"
#include "cli.h"
#include "comm.h"

#ifndef RELUSCOPE_GIT
#define RELUSCOPE_GIT "unknown"
#endif
#define RELUSCOPE_VERSION "0.1.0"

const char *reluscope_version(void) { return RELUSCOPE_VERSION " (git " RELUSCOPE_GIT ")"; }

static void usage(FILE *fp) {
    fprintf(fp,
        "reluscope %s — train sweeps of small ReLU transformers and record how\n"
        "sparsely every MLP layer uses its hidden units, step by step.\n\n"
        "usage: reluscope COMMAND [options]   (COMMAND --help for details)\n"
        "  train CONFIG [key=value ...]   run the sweep of CONFIG (under mpirun/srun or alone)\n"
        "  eval --checkpoint F --tokens S [--json]   loss and usage of a checkpoint on a shard\n"
        "  prepare --out DIR [options] FILE...       text files -> token shards (+ BPE)\n"
        "  merge IN.nc ... -o OUT.nc                 combine the datasets of array tasks\n"
        "  plan CONFIG [key=value ...] [--json]      the effective config, runs and rank groups\n"
        "  export --checkpoint F --out DIR           a checkpoint's weights for PyTorch\n"
        "  schema --json                             the dataset's variables, as JSON\n"
        "  --version                                 print the version and the BLAS kernels\n",
        reluscope_version());
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        const char *better = blas_better_coretype();
        printf("reluscope %s\nOpenBLAS kernels: %s%s%s\n", reluscope_version(), blas_core_name(),
               better ? ", older than this CPU supports: set OPENBLAS_CORETYPE=" : "",
               better ? better : "");
        return 0;
    }
    /* for scripts/blas-env.sh: the OPENBLAS_CORETYPE to set, or nothing */
    if (!strcmp(argv[1], "--blas-coretype")) {
        const char *better = blas_better_coretype();
        if (better) printf("%s\n", better);
        return 0;
    }
    /* a file-size limit (ulimit -f) gives EFBIG from write(), reported with the
     * file's name and its temporary removed, instead of a silent SIGXFSZ kill */
    signal(SIGXFSZ, SIG_IGN);
    if (!strcmp(argv[1], "prepare")) return cmd_prepare(argc - 1, argv + 1);
    if (!strcmp(argv[1], "merge")) return cmd_merge(argc - 1, argv + 1);
    if (!strcmp(argv[1], "plan")) return cmd_plan(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(argv[1], "schema")) return cmd_schema(argc - 1, argv + 1);
    int (*cmd)(int, char **) = NULL;
    if (!strcmp(argv[1], "train")) cmd = cmd_train;
    else if (!strcmp(argv[1], "eval")) cmd = cmd_eval;
    if (!cmd) {
        fprintf(stderr, "reluscope: error: unknown command '%s' (see reluscope --help)\n", argv[1]);
        return 2;
    }
    /* before MPI_Init, which takes a while: an early SIGUSR1/SIGTERM must not kill us */
    if (cmd == cmd_train) train_install_signals();
    comm_init(&argc, &argv);
    int rc = cmd(argc - 1, argv + 1);
    comm_finalize();
    return rc;
}

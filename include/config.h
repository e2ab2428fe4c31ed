/* config.h — the run configuration: a file of `key = value` lines, overridden
 * by `key=value` command-line arguments, every key validated.
 *
 * Model sizes have names. Built in: S, M, P (the benchmark sizes of SPEC §6)
 * and "tiny" (for tests). A config defines more with
 *     size.NAME = L=6 d=512 h=8 F=4096 T=256 V=4096
 * and a sweep lists them:  sizes = S, M   and   seeds = 0, 1, 2
 */
#ifndef RELUSCOPE_CONFIG_H
#define RELUSCOPE_CONFIG_H
#include <stdint.h>
#include "util.h"

#define MAX_SIZES 32        /* defined (built-in + config) size names */
#define MAX_RUN_SIZES 16    /* sizes listed in one sweep */
#define MAX_SEEDS 64
#define SIZE_NAME_MAX 32

typedef struct {
    char name[SIZE_NAME_MAX];
    int L;   /* layers */
    int d;   /* model width */
    int h;   /* attention heads; d % h == 0 */
    int F;   /* MLP hidden units */
    int T;   /* context length */
    int V;   /* vocabulary size (<= 65536: tokens are uint16) */
} ModelSize;

typedef enum { SAMPLER_RANDOM = 0, SAMPLER_SEQUENTIAL = 1 } SamplerKind;
typedef enum { OPT_ADAMW = 0, OPT_SGD = 1 } OptimizerKind;

typedef struct {
    /* sweep */
    int n_defined;                   ModelSize defined[MAX_SIZES];
    int n_sizes;                     ModelSize sizes[MAX_RUN_SIZES]; /* `sizes` */
    int n_seeds;                     uint64_t seeds[MAX_SEEDS];      /* `seeds` */
    int ranks_per_run;               /* 0 = planner decides */
    /* data */
    char train_data[RS_PATH_MAX];    /* glob of .bin shards */
    char val_data[RS_PATH_MAX];      /* glob of .bin shards ("" = none) */
    SamplerKind sampler;
    int batch_size;                  /* B: sequences per global batch */
    long steps;
    /* optimizer */
    OptimizerKind optimizer;
    double lr, lr_min;               /* peak, and floor of the cosine */
    long warmup_steps;
    double beta1, beta2, eps, weight_decay;
    double grad_clip;                /* global norm; 0 = off */
    /* metrics */
    long dead_window;                /* W of the off/dead rule */
    long snapshot_every;             /* per-unit snapshots; 0 = off */
    long eval_every;                 /* held-out evaluation; 0 = off */
    long eval_tokens;                /* size of the held-out batch */
    int spectrum_topk;               /* singular values kept per layer */
    /* output and cadence */
    char out_dir[RS_PATH_MAX];
    long log_every, checkpoint_every, flush_every, check_every;
    int overwrite;                   /* allow replacing a dataset of another config */
    /* test-only fault injection: loss becomes NaN at this step (-1 = never) */
    long debug_nan_step;
    /* stop as if preempted once this many steps are done (-1 = never): for
     * preemption drills and resume tests */
    long stop_at_step;
    /* test-only fault injection: group rank 1 perturbs one parameter after
     * this step's update, so the replicas diverge (-1 = never) */
    long debug_diverge_step;
} Config;

/* Defaults, with the built-in sizes defined and sizes = tiny, seeds = 0. */
void config_defaults(Config *c);

/* Apply a file of `key = value` lines ('#' starts a comment). On error:
 * writes "FILE:LINE: problem" into err and returns -1. */
int config_load_file(Config *c, const char *path, char *err, size_t errlen);

/* Apply one "key=value" (from the command line; origin names it in errors). */
int config_set(Config *c, const char *key, const char *value, const char *origin,
               char *err, size_t errlen);

/* Cross-key checks (d % h, F >= 1, eval_tokens vs T, ...). -1 + err on failure. */
int config_validate(const Config *c, char *err, size_t errlen);

/* Print the effective config as loadable `key = value` lines. */
void config_print(const Config *c, FILE *fp);

/* The same text into a malloc'd string (for NetCDF / checkpoint metadata). */
char *config_to_string(const Config *c);

/* Find a defined size by name; NULL if none. */
const ModelSize *config_find_size(const Config *c, const char *name);

/* Defaults + file (path may be NULL) + "key=value" overrides + validate.
 * -1 + a one-line message on any error (terminal-safe: control bytes and
 * bytes that are not UTF-8 are shown as \xNN, as in every message here). */
int config_load(Config *c, const char *path, int n_overrides, char **overrides,
                char *err, size_t errlen);

/* The same for CLIs: dies with the message. */
void config_build(Config *c, const char *path, int n_overrides, char **overrides);

#endif

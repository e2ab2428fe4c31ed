/* plan.c — the `plan` command: the effective config and the sweep's grid,
 * runs and rank groups, as lines for shell scripts or as JSON, without
 * training. With --check it also runs the corpus and intervention checks
 * `train` runs before it creates any output, so that a login node can refuse a bad sweep before
 * it is queued. The one reader of config files for jobs/, merge and
 * analysis/ (docs/config.md, "reluscope plan"). */
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "config.h"
#include "intervene.h"
#include "sweep.h"
#include "util.h"
#include "variant.h"

static void plan_usage(FILE *fp) {
    fprintf(fp,
        "usage: reluscope plan CONFIG [key=value ...] [--ranks N] [--check] [--json]\n"
        "Prints the effective config of CONFIG with the overrides (the config train would\n"
        "run), its sizes, seeds and runs, and how N ranks (default 1) are split into groups.\n"
        "CONFIG '-' reads the config text from stdin (e.g. a dataset's config attribute).\n"
        "  --check   also check the corpus of every size and the fork_from/resample_dead\n"
        "            setup, as train does before it writes (exit 64 for the latter)\n"
        "  --json    one JSON object instead of lines\n"
        "Lines (each starts with its kind; docs/config.md describes them):\n"
        "  config KEY = VALUE            the effective config, loadable (one line a key)\n"
        "  size NAME L=.. d=.. h=.. F=.. T=.. V=..\n"
        "  seed SEED\n"
        "  run ID size=NAME seed=SEED name=NAME_seedSEED\n"
        "  group G first_rank=R ranks=K runs=ID,ID,...\n"
        "  fingerprint HEX               config_fingerprint of the sweep\n"
        "Exit status: 0 fine, 64 a bad config (one line on stderr), 1 a bad layout or\n"
        "corpus (one line), 2 usage.\n");
}

typedef struct {
    const char *config;            /* path, or "-" for stdin */
    char **overrides;
    int n_overrides, ranks, check, json;
} PlanArgs;

static int parse_args(PlanArgs *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->ranks = 1;
    a->overrides = xcalloc((size_t)argc, sizeof *a->overrides);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--check")) a->check = 1;
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--ranks") || !strncmp(s, "--ranks=", 8)) {
            const char *v = s[7] == '=' ? s + 8 : (i + 1 < argc ? argv[++i] : "");
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 1 << 20) {
                fprintf(stderr, "reluscope: error: plan: --ranks needs a number of ranks "
                        "from 1 to %d, got '%s'\n", 1 << 20, v);
                return -1;
            }
            a->ranks = (int)n;
        } else if (s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "reluscope: error: plan: unknown option '%s' (see plan --help)\n", s);
            return -1;
        } else if (!a->config) a->config = s;
        else a->overrides[a->n_overrides++] = argv[i];
    }
    if (!a->config) {
        plan_usage(stderr);
        return -1;
    }
    return 0;
}

/* Config text from stdin, read as stored text (config_load_text). */
static int load_stdin(Config *c, const PlanArgs *a, char *err, size_t errlen) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t got;
    if (!mem) die("out of memory reading stdin");
    while ((got = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, got, mem);
    if (fclose(mem) != 0 || !text) die("out of memory reading stdin");
    if (ferror(stdin)) {
        free(text);
        return fail_msg(err, errlen, "stdin: cannot read the config");
    }
    config_defaults(c);
    int rc = strlen(text) != len
        ? fail_msg(err, errlen, "stdin: contains a NUL byte (not a config?)")
        : config_load_text(c, text, "stdin", 1, err, errlen);
    free(text);
    for (int i = 0; rc == 0 && i < a->n_overrides; i++)
        rc = config_override(c, a->overrides[i], err, errlen);
    char why[1024];
    if (rc == 0 && config_validate(c, why, sizeof why) != 0)
        rc = fail_msg(err, errlen, "stdin: %s", why);
    return rc;
}

static void print_lines(const Config *c, const SweepPlan *p, FILE *fp) {
    char *text = config_to_string(c), name[96];
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(fp, "config %s\n", line);
    free(text);
    for (int i = 0; i < c->n_sizes; i++) {
        const ModelSize *s = &c->sizes[i];
        char variants[128];   /* " pos=rope ...": the non-default variant keys */
        variant_format(s, 0, variants, sizeof variants);
        fprintf(fp, "size %s L=%d d=%d h=%d F=%d T=%d V=%d%s\n", s->name, s->L, s->d, s->h, s->F,
                s->T, s->V, variants);
    }
    for (int i = 0; i < c->n_seeds; i++) fprintf(fp, "seed %llu\n", (unsigned long long)c->seeds[i]);
    for (int r = 0; r < p->n_runs; r++) {
        int si, ki;
        run_size_seed(c, r, &si, &ki);
        run_name(c, r, name, sizeof name);
        fprintf(fp, "run %d size=%s seed=%llu name=%s\n", r, c->sizes[si].name,
                (unsigned long long)c->seeds[ki], name);
    }
    for (int g = 0; g < p->n_groups; g++) {
        int n;
        const int *runs = sweep_group_runs(p, g, &n);
        fprintf(fp, "group %d first_rank=%d ranks=%d runs=", g, p->first_rank[g], p->group_size[g]);
        for (int i = 0; i < n; i++) fprintf(fp, "%s%d", i ? "," : "", runs[i]);
        fputc('\n', fp);
    }
    fprintf(fp, "fingerprint %016llx\n", (unsigned long long)config_fingerprint(c, NULL));
}

static void print_json(const Config *c, const SweepPlan *p, FILE *fp) {
    char *text = config_to_string(c), name[96];
    fputs("{\"config\": ", fp);
    config_print_json(c, fp);
    fputs(",\n \"config_text\": ", fp);
    json_string(text, fp);
    free(text);
    int n_keys;
    const ConfigKey *keys = config_keys(&n_keys);
    fputs(",\n \"results_keys\": [", fp);
    for (int i = 0, first = 1; i < n_keys; i++)
        if (keys[i].results) { fprintf(fp, "%s\"%s\"", first ? "" : ", ", keys[i].name); first = 0; }
    fputs("],\n \"runs\": [", fp);
    for (int r = 0; r < p->n_runs; r++) {
        int si, ki;
        run_size_seed(c, r, &si, &ki);
        run_name(c, r, name, sizeof name);
        fprintf(fp, "%s{\"id\": %d, \"size\": \"%s\", \"seed\": %llu, \"name\": \"%s\"}",
                r ? ", " : "", r, c->sizes[si].name, (unsigned long long)c->seeds[ki], name);
    }
    fprintf(fp, "],\n \"ranks\": %d,\n \"groups\": [", p->n_ranks);
    for (int g = 0; g < p->n_groups; g++) {
        int n;
        const int *runs = sweep_group_runs(p, g, &n);
        fprintf(fp, "%s{\"id\": %d, \"first_rank\": %d, \"ranks\": %d, \"runs\": [", g ? ", " : "",
                g, p->first_rank[g], p->group_size[g]);
        for (int i = 0; i < n; i++) fprintf(fp, "%s%d", i ? ", " : "", runs[i]);
        fputs("]}", fp);
    }
    fprintf(fp, "],\n \"fingerprint\": \"%016llx\"}\n",
            (unsigned long long)config_fingerprint(c, NULL));
}

int cmd_plan(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        plan_usage(stdout);
        return 0;
    }
    PlanArgs a;
    if (parse_args(&a, argc, argv) != 0) {
        free(a.overrides);
        return 2;
    }
    Config c;
    SweepPlan p;
    char err[RS_PATH_MAX + 1024];
    int rc = !strcmp(a.config, "-") ? load_stdin(&c, &a, err, sizeof err)
                                    : config_load(&c, a.config, a.n_overrides, a.overrides,
                                                  err, sizeof err);
    int bad_config = rc != 0;
    if (rc == 0) rc = sweep_plan(&p, &c, a.ranks, err, sizeof err);
    if (rc == 0 && a.check) rc = sweep_check_corpus(&c, NULL, err, sizeof err);
    int bad_intervention = rc == 0 && a.check && intervene_check(&c, err, sizeof err) != 0;
    free(a.overrides);
    if (rc != 0 || bad_intervention) {
        fprintf(stderr, "reluscope: error: %s\n", err);
        return bad_config || bad_intervention ? EXIT_USAGE : 1;   /* as train */
    }
    if (a.json) print_json(&c, &p, stdout);
    else print_lines(&c, &p, stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "reluscope: error: plan: cannot write the output\n");
        return 1;
    }
    return 0;
}

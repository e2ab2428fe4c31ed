/* test_config.c — the config module: defaults, files with comments and
 * quotes, command-line overrides, every rejection (each must return -1 with
 * a message naming the key and where it came from), order-independent size
 * definitions, and print -> load giving back the same Config. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "config.h"
#include "mlp_sparse.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (!fp) { perror(path); exit(2); }
    fputs(text, fp);
    fclose(fp);
}

/* Defaults plus the one key the defaults cannot know. */
static void base(Config *c) {
    char err[512];
    config_defaults(c);
    if (config_set(c, "train_data", "data/train_*.bin", "test", err, sizeof err) != 0) {
        fprintf(stderr, "setting train_data: %s\n", err);
        exit(2);
    }
}

static void test_defaults(void) {
    Config c;
    char err[512];
    config_defaults(&c);
    CHECK(config_validate(&c, err, sizeof err) == -1, "defaults without train_data validated");
    CHECK(strstr(err, "train_data=") != NULL, "the error should say train_data=...: %s", err);
    base(&c);
    CHECK(config_validate(&c, err, sizeof err) == 0, "defaults + train_data: %s", err);
    CHECK(c.n_sizes == 1 && !strcmp(c.sizes[0].name, "tiny"), "default sizes = tiny");
    CHECK(c.sizes[0].L == 2 && c.sizes[0].d == 64 && c.sizes[0].h == 4 && c.sizes[0].F == 256 &&
          c.sizes[0].T == 64 && c.sizes[0].V == 256, "tiny = 2 64 4 256 64 256");
    CHECK(c.n_seeds == 1 && c.seeds[0] == 0, "default seeds = 0");
    CHECK(c.batch_size == 8 && c.steps == 100 && c.warmup_steps == 10, "B, steps, warmup");
    CHECK(c.lr == 3e-4 && c.lr_min == 3e-5 && c.beta1 == 0.9 && c.beta2 == 0.95 &&
          c.eps == 1e-8 && c.weight_decay == 0.1 && c.grad_clip == 1.0, "optimizer defaults");
    CHECK(c.optimizer == OPT_ADAMW && c.sampler == SAMPLER_RANDOM, "enum defaults");
    CHECK(c.mlp_kernel == MLP_DENSE, "mlp_kernel defaults to dense");
    for (int k = MLP_DENSE; k <= MLP_AUTO; k++) {   /* the names follow MlpKernel */
        static const char *const names[] = {"dense", "sparse", "auto"};
        char err[256];
        CHECK(config_set(&c, "mlp_kernel", names[k], "test", err, sizeof err) == 0 &&
              c.mlp_kernel == k, "mlp_kernel=%s", names[k]);
    }
    config_defaults(&c);
    CHECK(c.dead_window == 100 && c.snapshot_every == 100 && c.eval_every == 100 &&
          c.eval_tokens == 8192 && c.spectrum_topk == 16, "metric defaults");
    CHECK(!strcmp(c.out_dir, "runs/default") && c.val_data[0] == '\0', "path defaults");
    CHECK(c.log_every == 10 && c.checkpoint_every == 100 && c.flush_every == 10 &&
          c.check_every == 50 && c.overwrite == 0 && c.debug_nan_step == -1 &&
          c.stop_at_step == -1 && c.ranks_per_run == 0, "cadence defaults");
    const ModelSize *S = config_find_size(&c, "S"), *M = config_find_size(&c, "M"),
                    *P = config_find_size(&c, "P");
    CHECK(S && S->L == 4 && S->d == 128 && S->h == 4 && S->F == 512 && S->T == 128 && S->V == 256,
          "built-in S");
    CHECK(M && M->L == 6 && M->d == 256 && M->h == 8 && M->F == 1024 && M->T == 256 &&
          M->V == 4096, "built-in M");
    CHECK(P && P->L == 6 && P->d == 512 && P->h == 8 && P->F == 4096 && P->T == 256 &&
          P->V == 4096, "built-in P");
    CHECK(config_find_size(&c, "nope") == NULL, "undefined size found");
}

static void test_file_and_overrides(void) {
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/good.conf", tmpdir);
    write_file(path,
        "# a sweep\n"
        "sizes = small, S   # two sizes\n"
        "seeds = 3, 1,18446744073709551615\n"
        "\n"
        "   train_data = \"data dir/train #1_*.bin\"  # quoted: '#' kept\n"
        "val_data = data/val_*.bin\n"
        "optimizer = sgd\r\n"
        "sampler = sequential\n"
        "lr = 0.25\n"
        "overwrite = YES\n"
        "eval_tokens = 4096\n"
        "size.small = V=64 T=32 F=128, d=32 h=2 L=3\n");
    Config c;
    config_defaults(&c);
    CHECK(config_load_file(&c, path, err, sizeof err) == 0, "load: %s", err);
    CHECK(config_set(&c, "steps", "250", "command line", err, sizeof err) == 0, "steps: %s", err);
    CHECK(config_set(&c, "lr", " 0.5 ", "command line", err, sizeof err) == 0, "lr: %s", err);
    CHECK(config_validate(&c, err, sizeof err) == 0, "validate: %s", err);
    CHECK(c.n_sizes == 2 && !strcmp(c.sizes[0].name, "small") && !strcmp(c.sizes[1].name, "S"),
          "sizes listed");
    CHECK(c.sizes[0].L == 3 && c.sizes[0].d == 32 && c.sizes[0].h == 2 && c.sizes[0].F == 128 &&
          c.sizes[0].T == 32 && c.sizes[0].V == 64, "size.small defined after sizes");
    CHECK(c.sizes[1].d == 128, "built-in S resolved");
    CHECK(c.n_seeds == 3 && c.seeds[0] == 3 && c.seeds[1] == 1 && c.seeds[2] == UINT64_MAX,
          "seeds parsed");
    CHECK(!strcmp(c.train_data, "data dir/train #1_*.bin"), "quoted value: '%s'", c.train_data);
    CHECK(!strcmp(c.val_data, "data/val_*.bin"), "val_data: '%s'", c.val_data);
    CHECK(c.optimizer == OPT_SGD && c.sampler == SAMPLER_SEQUENTIAL, "enums (CRLF line too)");
    CHECK(c.overwrite == 1 && c.eval_tokens == 4096, "bool and long");
    CHECK(c.steps == 250 && c.lr == 0.5, "overrides win over the file");
    CHECK(config_set(&c, "size.small", "L=4 d=32 h=2 F=128 T=32 V=64", "command line", err,
                     sizeof err) == 0 && c.sizes[0].L == 4, "a command-line size redefinition");
    /* config_build: the same through the CLI entry point */
    char *ov[] = {"steps=17", "seeds=5,6", "size.extra=L=1 d=8 h=1 F=8 T=8 V=8", "sizes=extra",
                  "eval_tokens=64", "spectrum_topk=4"};
    config_build(&c, path, 6, ov);
    CHECK(c.steps == 17 && c.n_seeds == 2 && c.seeds[1] == 6 && c.n_sizes == 1 &&
          c.sizes[0].F == 8, "config_build applies the overrides");
}

/* One config_set that must fail with a message containing key and want. */
static void reject_set(const char *key, const char *value, const char *want) {
    Config c;
    char err[1024] = "";
    base(&c);
    int rc = config_set(&c, key, value, "command line", err, sizeof err);
    CHECK(rc == -1, "%s=%s was accepted", key, value);
    if (rc != -1) return;
    CHECK(strstr(err, key) != NULL, "%s=%s: message does not name the key: %s", key, value, err);
    CHECK(strncmp(err, "command line: ", 14) == 0, "%s=%s: no origin: %s", key, value, err);
    CHECK(!want || strstr(err, want), "%s=%s: message lacks '%s': %s", key, value, want, err);
    CHECK(strchr(err, '\n') == NULL, "%s=%s: message is not one line", key, value);
}

static void test_set_rejections(void) {
    reject_set("foo", "1", "unknown key 'foo'");
    reject_set("lr", "-1", "key 'lr': '-1' is not a positive number");
    reject_set("lr", "abc", "not a number");
    reject_set("lr", "1e-3x", "not a number");
    reject_set("lr", "nan", NULL);
    reject_set("lr", "inf", NULL);
    reject_set("lr", "1e999", "out of range");
    reject_set("lr", "", "not a number");
    reject_set("lr_min", "-0.1", NULL);
    reject_set("steps", "1.5", "not an integer");
    reject_set("steps", "0", NULL);
    reject_set("steps", "99999999999999999999", "out of range");
    reject_set("batch_size", "0", NULL);
    reject_set("batch_size", "3000000000", "out of range");
    reject_set("beta1", "1", "[0, 1)");
    reject_set("beta2", "-0.5", NULL);
    reject_set("eps", "0", NULL);
    reject_set("weight_decay", "-1", NULL);
    reject_set("grad_clip", "-1", NULL);
    reject_set("warmup_steps", "-1", NULL);
    reject_set("dead_window", "0", NULL);
    reject_set("eval_tokens", "-64", NULL);
    reject_set("spectrum_topk", "0", NULL);
    reject_set("ranks_per_run", "-2", NULL);
    const char *cadences[] = {"snapshot_every", "eval_every", "log_every", "checkpoint_every",
                              "flush_every", "check_every"};
    for (int i = 0; i < 6; i++) reject_set(cadences[i], "-1", NULL);
    reject_set("debug_nan_step", "-2", "must be -1 (never) or >= 0");
    reject_set("stop_at_step", "x", NULL);
    reject_set("stop_at_step", "0", "must be -1 (never) or >= 1");   /* would do nothing */
    reject_set("stop_at_step", "-2", NULL);
    reject_set("debug_diverge_step", "-3", NULL);
    reject_set("overwrite", "maybe", "boolean");
    reject_set("sampler", "shuffled", "random, sequential");
    reject_set("optimizer", "adam", "adamw, sgd");
    reject_set("mlp_kernel", "fast", "dense, sparse, auto");
    reject_set("out_dir", "a\"b", "quotes");
    reject_set("seeds", "-1", NULL);
    reject_set("seeds", "1, 1", "twice");
    reject_set("seeds", "", "empty");
    reject_set("seeds", "1,,2", "empty");
    reject_set("seeds", "18446744073709551616", "out of range");
    reject_set("seeds", "0-18446744073709551616", "out of range");
    reject_set("seeds", "1-2-3", "'1-2-3' is not a non-negative integer or a range a-b");
    reject_set("seeds", "3-", "'3-' is not");
    reject_set("seeds", "-3", "'-3' is not");
    reject_set("seeds", "5-3", "backwards");
    reject_set("seeds", "0-64", "more than 64 seeds");
    reject_set("seeds", "0-18446744073709551615", "more than 64 seeds");
    reject_set("seeds", "1, 0-2", "seed 1 listed twice");
    reject_set("seeds", "0-31, 32-64", "more than 64 seeds");
    reject_set("sizes", "S, S", "twice");
    reject_set("sizes", "bad name!", NULL);
    reject_set("size.x", "L=2 d=30 h=4 F=8 T=8 V=8", "not a multiple of h=4");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8", "missing field V");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=70000", "65536");
    reject_set("size.x", "L=65 d=32 h=4 F=8 T=8 V=8", "64");
    reject_set("size.x", "L=2 d=32 h=4 F=0 T=8 V=8", "F=0");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 Q=3", "Q=3");
    reject_set("size.x", "L=2 L=3 d=32 h=4 F=8 T=8 V=8", "twice");
    reject_set("size.x", "L=2 d=-32 h=4 F=8 T=8 V=8", NULL);
    reject_set("size.", "L=2 d=32 h=4 F=8 T=8 V=8", NULL);
    reject_set("size.a/b", "L=2 d=32 h=4 F=8 T=8 V=8", NULL);
    reject_set("size.abcdefghijabcdefghijabcdefghij12", "L=2 d=32 h=4 F=8 T=8 V=8", NULL);
    /* a refused list leaves the previous one in place */
    Config c;
    char err[512];
    base(&c);
    config_set(&c, "seeds", "4, 5", "t", err, sizeof err);
    CHECK(config_set(&c, "seeds", "6, x", "t", err, sizeof err) == -1 && c.n_seeds == 2 &&
          c.seeds[0] == 4, "a bad list replaced the old one");
}

/* Seeds may be ranges a-b (both ends included), alone or in lists; a file's
 * range and a command-line list that replaces it (jobs/ does exactly that). */
static void test_seed_ranges(void) {
    Config c;
    char err[512], path[256];
    base(&c);
    CHECK(config_set(&c, "seeds", "0-4", "t", err, sizeof err) == 0, "0-4: %s", err);
    CHECK(c.n_seeds == 5 && c.seeds[0] == 0 && c.seeds[4] == 4, "0-4 gave %d seeds", c.n_seeds);
    CHECK(config_set(&c, "seeds", "10, 2-3 ,7-7", "t", err, sizeof err) == 0, "list: %s", err);
    CHECK(c.n_seeds == 4 && c.seeds[0] == 10 && c.seeds[1] == 2 && c.seeds[2] == 3 &&
          c.seeds[3] == 7, "a list of ranges, in the order written");
    CHECK(config_set(&c, "seeds", "0-63", "t", err, sizeof err) == 0 && c.n_seeds == 64,
          "64 seeds in one range: %s", err);
    CHECK(config_set(&c, "seeds", "18446744073709551614-18446744073709551615", "t", err,
                     sizeof err) == 0 && c.n_seeds == 2 && c.seeds[1] == UINT64_MAX,
          "a range ending at the largest seed: %s", err);
    char *text = config_to_string(&c);
    CHECK(strstr(text, "\nseeds = 18446744073709551614, 18446744073709551615\n") != NULL,
          "printed seeds are expanded:\n%s", text);
    free(text);
    snprintf(path, sizeof path, "%s/range.conf", tmpdir);
    write_file(path, "train_data = x_*.bin\nseeds = 0-4\n");
    char *ov[] = {"seeds=0,1"};
    CHECK(config_load(&c, path, 1, ov, err, sizeof err) == 0, "file range + override: %s", err);
    CHECK(c.n_seeds == 2 && c.seeds[1] == 1, "the override replaced the file's range");
    CHECK(config_load(&c, path, 0, NULL, err, sizeof err) == 0 && c.n_seeds == 5,
          "the file's range alone: %s", err);
}

/* A binary file or a terminal escape given as config text: the message must
 * never carry raw control bytes (or bytes that are not UTF-8) to a terminal. */
static void test_escaped_messages(void) {
    char path[256], err[1024];
    Config c;
    const char *junk[] = {"\x1b]0;owned\x07 = 1\n", "lr = \x1b[2J\n", "\xff\xfe\x01\x02\n",
                          "lr = 1\n\xc2\x9b" "31m = 2\n", "sizes = a\x7f\n"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/junk%d.conf", tmpdir, i);
        write_file(path, junk[i]);
        base(&c);
        err[0] = '\0';
        CHECK(config_load_file(&c, path, err, sizeof err) == -1, "junk %d loaded", i);
        int bad = 0;
        for (const unsigned char *p = (const unsigned char *)err; *p; p++)
            if (*p < 0x20 || *p == 0x7f || *p == 0xff || *p == 0xfe || (p[0] == 0xc2 && p[1] < 0xa0))
                bad = 1;
        CHECK(!bad, "junk %d: raw bytes in the message: %s", i, err);
        CHECK(strstr(err, "\\x") != NULL, "junk %d: no \\xNN escape: %s", i, err);
        CHECK(strstr(err, path) != NULL, "junk %d: the file is not named: %s", i, err);
    }
    /* command-line values too, and UTF-8 text is kept as it is */
    base(&c);
    CHECK(config_set(&c, "sampler", "r\xc3\xa9\x1b", "command line", err, sizeof err) == -1 &&
          strstr(err, "'r\xc3\xa9\\x1B'") != NULL, "command-line junk: %s", err);
    char *ov[] = {"\x1b[31m"};
    CHECK(config_load(&c, NULL, 1, ov, err, sizeof err) == -1 && strstr(err, "\\x1B[31m"),
          "an override without '=': %s", err);
}

/* Choice keys are one type: the names come from the key's row, and a value
 * set in code outside the list is refused by validation. */
static void test_choices(void) {
    Config c;
    char err[512];
    base(&c);
    CHECK(config_set(&c, "optimizer", "sgd", "t", err, sizeof err) == 0 && c.optimizer == OPT_SGD,
          "optimizer = sgd");
    CHECK(config_set(&c, "sampler", "sequential", "t", err, sizeof err) == 0 &&
          c.sampler == SAMPLER_SEQUENTIAL, "sampler = sequential");
    CHECK(config_set(&c, "sampler", "Random", "t", err, sizeof err) == -1, "choices are exact");
    c.sampler = (SamplerKind)2;
    CHECK(config_validate(&c, err, sizeof err) == -1 && strstr(err, "key 'sampler'"),
          "sampler 2 set in code validated: %s", err);
    base(&c);
    c.optimizer = (OptimizerKind)-1;
    CHECK(config_validate(&c, err, sizeof err) == -1 && strstr(err, "key 'optimizer'"),
          "optimizer -1 set in code validated: %s", err);
    base(&c);   /* the sparse MLP's lists hold 16-bit units */
    c.sizes[0].F = MLP_SPARSE_MAX_F + 1;
    CHECK(config_validate(&c, err, sizeof err) == 0, "F = 65537, dense: %s", err);
    c.mlp_kernel = MLP_AUTO;
    CHECK(config_validate(&c, err, sizeof err) == -1 && strstr(err, "key 'mlp_kernel'"),
          "F = 65537 with mlp_kernel = auto validated: %s", err);
    c.sizes[0].F = MLP_SPARSE_MAX_F;
    CHECK(config_validate(&c, err, sizeof err) == 0, "F = 65536, auto: %s", err);
}

/* Changes one key's field in place (no validation): numbers +1, reals
 * *1.5 + 1, strings get a character more, booleans and choices flip. */
static void perturb(Config *c, const ConfigKey *k) {
    void *f = (char *)c + k->off;
    switch (k->type) {
    case K_INT: case K_BOOL: case K_CHOICE: *(int *)f = k->type == K_INT ? *(int *)f + 1 : !*(int *)f; break;
    case K_LONG: *(long *)f += 1; break;
    case K_DOUBLE: *(double *)f = *(double *)f * 1.5 + 1; break;
    case K_STRING: strcat((char *)f, "x"); break;
    case K_SIZES: c->sizes[0].F *= 2; break;
    case K_SEEDS: c->seeds[0] += 100; break;
    }
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* config_diff and config_fingerprint follow each row's `results` flag:
 * every key in turn is changed, and exactly the result keys must show. */
static void test_diff_and_fingerprint(void) {
    Config a, b;
    char err[512], what[512];
    int n;
    const ConfigKey *keys = config_keys(&n);
    base(&a);
    config_set(&a, "sizes", "tiny, S", "t", err, sizeof err);
    config_set(&a, "seeds", "0-2", "t", err, sizeof err);
    uint64_t fa = config_fingerprint(&a, NULL), ra = config_fingerprint(&a, &a.sizes[0]);
    int n_results = 0;
    for (int i = 0; i < n; i++) {
        const ConfigKey *k = &keys[i];
        int grid = k->type == K_SIZES || k->type == K_SEEDS;
        b = a;
        perturb(&b, k);
        what[0] = '\0';
        int d = config_diff(&a, &b, 0, what, sizeof what);
        CHECK(d == k->results, "key %s: config_diff %d, results %d (%s)", k->name, d, k->results, what);
        CHECK(!d || strstr(what, k->name) || (k->type == K_SIZES && strstr(what, "size.tiny")),
              "key %s: the difference does not name it: %s", k->name, what);
        CHECK(config_diff(&a, &b, 1, what, sizeof what) == (k->results && !grid),
              "key %s: ignore_grid", k->name);
        CHECK((config_fingerprint(&b, NULL) != fa) == k->results, "key %s: sweep fingerprint",
              k->name);
        if (k->type != K_SIZES)   /* a run's own shape is part of its fingerprint */
            CHECK((config_fingerprint(&b, &b.sizes[0]) != ra) == (k->results && !grid),
                  "key %s: run fingerprint", k->name);
        n_results += k->results;
    }
    CHECK(n_results >= 20 && n_results < n, "%d of %d keys change results", n_results, n);
    const char *yes[] = {"lr", "weight_decay", "steps", "train_data", "sampler", "dead_window"},
               *no[] = {"out_dir", "log_every", "stop_at_step", "overwrite", "ranks_per_run"};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 6; j++) {
            if (!strcmp(keys[i].name, yes[j])) CHECK(keys[i].results, "%s: results", yes[j]);
            if (j < 5 && !strcmp(keys[i].name, no[j])) CHECK(!keys[i].results, "%s: not results", no[j]);
        }
    /* the run fingerprint sees its size's shape, not the rest of the sweep */
    b = a;
    b.sizes[1].d = 256;
    CHECK(config_fingerprint(&b, &b.sizes[0]) == ra && config_fingerprint(&b, NULL) != fa,
          "another size's shape changed a run fingerprint");
    CHECK(config_fingerprint(&a, &a.sizes[1]) != ra, "two sizes, one run fingerprint");
    char *text = config_results_text(&a, &a.sizes[0]);
    CHECK(config_fingerprint(&a, &a.sizes[0]) == fnv1a(text), "not FNV-1a of the canonical text");
    CHECK(strstr(text, "\nsize = L=2 d=64 h=4 F=256 T=64 V=256\n") && !strstr(text, "seeds") &&
          !strstr(text, "log_every") && strstr(text, "\nlr = 0.0003\n") ,
          "canonical run text:\n%s", text);
    free(text);
    /* printed configs: unreadable text counts as a difference; a stored value
     * that this build refuses is skipped when its key does not change results */
    char *ta = config_to_string(&a);
    b = a;
    b.log_every = 7;
    b.lr = 0.125;
    char *tb = config_to_string(&b);
    CHECK(config_text_diff(ta, ta, 0, what, sizeof what) == 0, "a text differs from itself: %s", what);
    CHECK(config_text_diff(ta, tb, 0, what, sizeof what) == 1 &&
          strstr(what, "lr = 0.0003 stored, 0.125 now"), "lr: %s", what);
    CHECK(config_text_diff(ta, "bench = 1\n", 0, what, sizeof what) == 1 &&
          strstr(what, "new config cannot be read") && strstr(what, "unknown key 'bench'"),
          "unreadable: %s", what);
    size_t len = strlen(ta);
    char *old = malloc(len + 64);
    snprintf(old, len + 64, "%s", ta);
    char *stop = strstr(old, "stop_at_step = -1");
    CHECK(stop != NULL, "no stop_at_step line");
    if (stop) memcpy(stop, "stop_at_step =  0", 17);
    CHECK(config_text_diff(old, ta, 0, what, sizeof what) == 0, "stored stop_at_step = 0: %s", what);
    free(old);
    free(ta);
    free(tb);
}

/* The config of a merged dataset: the first input's printed config with the
 * union of sizes (and their shapes) and seeds; it loads and validates. */
static void test_text_with_grid(void) {
    Config a, b;
    char err[512], path[256];
    base(&a);
    config_set(&a, "size.small", "L=2 d=16 h=2 F=16 T=8 V=64", "t", err, sizeof err);
    config_set(&a, "sizes", "small", "t", err, sizeof err);
    config_set(&a, "eval_tokens", "64", "t", err, sizeof err);
    config_set(&a, "spectrum_topk", "4", "t", err, sizeof err);
    char *text = config_to_string(&a);
    ModelSize sizes[2] = {a.sizes[0], {"big", 3, 24, 3, 24, 8, 64, .pos = POS_LEARNED}};
    uint64_t seeds[3] = {7, 11, 0};
    char *merged = config_text_with_grid(text, "in.nc", sizes, 2, seeds, 3, err, sizeof err);
    CHECK(merged != NULL, "with grid: %s", err);
    if (!merged) return;
    CHECK(strstr(merged, "size.big = L=3 d=24 h=3 F=24 T=8 V=64\n") &&
          strstr(merged, "\nsizes = small, big\n") && strstr(merged, "\nseeds = 7, 11, 0\n"),
          "merged config:\n%s", merged);
    snprintf(path, sizeof path, "%s/merged.conf", tmpdir);
    write_file(path, merged);
    CHECK(config_load(&b, path, 0, NULL, err, sizeof err) == 0, "merged config invalid: %s", err);
    CHECK(config_diff(&a, &b, 1, err, sizeof err) == 0, "merged config changed a key: %s", err);
    free(merged);
    CHECK(config_text_with_grid("bench = 1\n", "in.nc", sizes, 2, seeds, 3, err, sizeof err) == NULL &&
          strstr(err, "in.nc:1: unknown key 'bench'"), "unreadable text: %s", err);
    CHECK(config_text_with_grid(text, "in.nc", sizes, 0, seeds, 3, err, sizeof err) == NULL,
          "no sizes accepted");
    free(text);
}

/* Assignments that each set fine but that config_validate must refuse. */
static void reject_validate(const char *key, const char *const *kv, int n, const char *want) {
    Config c;
    char err[1024] = "";
    base(&c);
    for (int i = 0; i < n; i += 2)
        if (config_set(&c, kv[i], kv[i + 1], "t", err, sizeof err) != 0) {
            CHECK(0, "setup %s=%s failed: %s", kv[i], kv[i + 1], err);
            return;
        }
    int rc = config_validate(&c, err, sizeof err);
    CHECK(rc == -1, "validate accepted a config with bad %s", key);
    if (rc != -1) return;
    CHECK(strstr(err, key) != NULL, "validate: message does not name %s: %s", key, err);
    CHECK(!want || strstr(err, want), "validate: message lacks '%s': %s", want, err);
}

static void test_validate_rejections(void) {
    const char *a[] = {"lr", "1e-4", "lr_min", "1e-3"};
    reject_validate("lr_min", a, 4, NULL);
    const char *b[] = {"steps", "5", "warmup_steps", "6"};
    reject_validate("warmup_steps", b, 4, NULL);
    const char *c1[] = {"size.odd", "L=1 d=8 h=1 F=8 T=48 V=8", "sizes", "tiny, odd",
                        "spectrum_topk", "8"};
    reject_validate("eval_tokens", c1, 6, "size 'odd'");
    const char *d[] = {"train_data", ""};
    reject_validate("train_data", d, 2, "train_data=");
    const char *e[] = {"spectrum_topk", "257"};
    reject_validate("spectrum_topk", e, 2, "F = 256");
    const char *f[] = {"sizes", "S, later"};
    reject_validate("sizes", f, 2, "size 'later' is not defined");
    const char *g[] = {"val_data", "v.bin", "eval_tokens", "0"};
    reject_validate("eval_tokens", g, 4, NULL);
    const char *h[] = {"out_dir", ""};
    reject_validate("out_dir", h, 2, NULL);
    const char *i1[] = {"eval_tokens", "137438953472"};   /* 2^31 sequences of T = 64 */
    reject_validate("eval_tokens", i1, 2, "at most 2^30");
    /* eval off: eval_tokens need not fit T */
    Config c;
    char err[512];
    base(&c);
    config_set(&c, "eval_tokens", "100", "t", err, sizeof err);
    config_set(&c, "eval_every", "0", "t", err, sizeof err);
    CHECK(config_validate(&c, err, sizeof err) == 0, "eval off: %s", err);
    /* a Config filled in code is range-checked too */
    base(&c);
    c.beta2 = 1.0;
    CHECK(config_validate(&c, err, sizeof err) == -1 && strstr(err, "beta2"), "beta2 = 1 in code");
    base(&c);
    c.sizes[0].h = 5;
    CHECK(config_validate(&c, err, sizeof err) == -1 && strstr(err, "size.tiny"), "d %% h in code");
}

/* A file with `text` must fail to load with a message containing want. */
static void reject_file(const char *name, const char *text, const char *want) {
    char path[256], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (text) write_file(path, text);
    Config c;
    base(&c);
    int rc = config_load_file(&c, path, err, sizeof err);
    CHECK(rc == -1, "%s loaded", name);
    CHECK(strstr(err, path) != NULL, "%s: message does not name the file: %s", name, err);
    CHECK(!want || strstr(err, want), "%s: message lacks '%s': %s", name, want, err);
}

static void test_file_rejections(void) {
    reject_file("missing.conf", NULL, "cannot open");
    reject_file("noeq.conf", "lr = 1\njust words\n", ".conf:2: expected 'key = value'");
    reject_file("dup.conf", "lr = 1\n# c\nlr = 2\n", ".conf:3: key 'lr' is set twice");
    reject_file("dupsize.conf", "size.a = L=1 d=8 h=1 F=8 T=8 V=8\n"
                "size.a = L=1 d=8 h=1 F=8 T=8 V=8\n", ":2: key 'size.a'");
    reject_file("unknown.conf", "\n\nfoo = 1\n", ".conf:3: unknown key 'foo'");
    reject_file("badval.conf", "lr = -1\n", ".conf:1: key 'lr': '-1' is not a positive number");
    reject_file("quote.conf", "out_dir = \"abc\n", ":1: key 'out_dir': unterminated");
    reject_file("nokey.conf", " = 3\n", ":1: missing key");
    char nul[256];
    snprintf(nul, sizeof nul, "%s/nul.conf", tmpdir);
    FILE *fp = fopen(nul, "wb");
    if (fp) { fwrite("lr = 1\0junk\n", 1, 12, fp); fclose(fp); }
    reject_file("nul.conf", NULL, ":1: contains a NUL byte");
    char dir[256];
    snprintf(dir, sizeof dir, "%s", tmpdir);   /* a directory is not a config */
    Config c;
    char err[512];
    base(&c);
    CHECK(config_load_file(&c, dir, err, sizeof err) == -1, "a directory loaded as a config");
}

/* Every key of the table has the same value (the field's bytes; strings up
 * to their end), and the listed sizes and seeds are the same: a new key is
 * covered without touching this test. */
static int same_config(const Config *a, const Config *b) {
    if (a->n_sizes != b->n_sizes || a->n_seeds != b->n_seeds) return 0;
    if (memcmp(a->sizes, b->sizes, (size_t)a->n_sizes * sizeof a->sizes[0]) != 0) return 0;
    if (memcmp(a->seeds, b->seeds, (size_t)a->n_seeds * sizeof a->seeds[0]) != 0) return 0;
    int n;
    const ConfigKey *keys = config_keys(&n);
    for (int i = 0; i < n; i++) {
        const char *fa = (const char *)a + keys[i].off, *fb = (const char *)b + keys[i].off;
        if (keys[i].type == K_STRING ? strcmp(fa, fb) != 0
                                     : memcmp(fa, fb, keys[i].size) != 0) return 0;
    }
    return 1;
}

static void test_round_trip(void) {
    Config a, b;
    char err[512], path[256];
    base(&a);
    const char *kv[] = {"size.w", "L=3 d=48 h=3 F=96 T=16 V=100", "size.tiny",
                        "L=1 d=16 h=2 F=32 T=16 V=50", "sizes", "w, tiny, M", "seeds", "9, 0, 7",
                        "lr", "0.1", "lr_min", "0.030000000000000002", "beta2", "0.999",
                        "eps", "1e-300", "weight_decay", "0", "optimizer", "sgd",
                        "sampler", "sequential", "overwrite", "1", "out_dir", "out dir/#x",
                        "val_data", "v_*.bin", "eval_tokens", "1536", "stop_at_step", "17",
                        "debug_nan_step", "4", "grad_clip", "0.7000000000000001"};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i += 2)
        CHECK(config_set(&a, kv[i], kv[i + 1], "t", err, sizeof err) == 0, "%s", err);
    CHECK(config_validate(&a, err, sizeof err) == 0, "round-trip config: %s", err);
    char *text = config_to_string(&a);
    CHECK(strstr(text, "size.w = L=3 d=48 h=3 F=96 T=16 V=100\n") != NULL, "size line:\n%s", text);
    CHECK(strstr(text, "size.M = ") != NULL, "listed built-in printed");
    CHECK(strstr(text, "size.S = ") == NULL, "unlisted size printed");
    snprintf(path, sizeof path, "%s/printed.conf", tmpdir);
    write_file(path, text);
    config_defaults(&b);
    CHECK(config_load_file(&b, path, err, sizeof err) == 0, "loading the printed config: %s", err);
    CHECK(config_validate(&b, err, sizeof err) == 0, "printed config invalid: %s", err);
    CHECK(same_config(&a, &b), "print -> load changed the config:\n%s", text);
    char *again = config_to_string(&b);
    CHECK(strcmp(text, again) == 0, "printing twice differs:\n%s\n---\n%s", text, again);
    CHECK(b.lr_min == 0.030000000000000002 && b.grad_clip == 0.7000000000000001,
          "doubles not exact after the round trip");
    free(text);
    free(again);
    /* the defaults round-trip too */
    base(&a);
    text = config_to_string(&a);
    write_file(path, text);
    config_defaults(&b);
    CHECK(config_load_file(&b, path, err, sizeof err) == 0 && same_config(&a, &b),
          "defaults round trip: %s", err);
    free(text);
}

/* Architecture variants in a size definition: parsed, printed (only the
 * non-default keys, so the default config text is unchanged) and read back. */
static void test_variants(void) {
    Config a, b;
    char err[512], path[256];
    base(&a);
    CHECK(config_set(&a, "size.v", "L=2 d=32 h=4 F=64 T=16 V=64 act=relu2, tie=0 pos=rope "
                     "mlp_bias=0", "t", err, sizeof err) == 0, "%s", err);
    CHECK(config_set(&a, "size.e", "pos=learned tie=1 mlp_bias=1 act=relu L=2 d=32 h=4 F=64 "
                     "T=16 V=64", "t", err, sizeof err) == 0, "%s", err);
    CHECK(config_set(&a, "sizes", "v, e", "t", err, sizeof err) == 0, "%s", err);
    const ModelSize *v = &a.sizes[0], *e = &a.sizes[1];
    CHECK(v->pos == POS_ROPE && v->untied == 1 && v->no_mlp_bias == 1 && v->act == ACT_RELU2,
          "variant fields %d %d %d %d", v->pos, v->untied, v->no_mlp_bias, v->act);
    CHECK(e->pos == POS_LEARNED && !e->untied && !e->no_mlp_bias && e->act == ACT_RELU,
          "explicit defaults");
    CHECK(config_validate(&a, err, sizeof err) == 0, "%s", err);
    char *text = config_to_string(&a);
    CHECK(strstr(text, "size.v = L=2 d=32 h=4 F=64 T=16 V=64 pos=rope tie=0 mlp_bias=0 "
                 "act=relu2\n") && strstr(text, "size.e = L=2 d=32 h=4 F=64 T=16 V=64\n"),
          "variant size lines:\n%s", text);
    snprintf(path, sizeof path, "%s/variants.conf", tmpdir);
    write_file(path, text);
    config_defaults(&b);
    CHECK(config_load_file(&b, path, err, sizeof err) == 0 && same_config(&a, &b),
          "variants round trip: %s", err);
    free(text);
    /* a variant is part of the size: config_diff names it, the fingerprints change */
    char what[512];
    b = a;
    b.sizes[0].act = ACT_RELU;
    CHECK(config_diff(&a, &b, 0, what, sizeof what) == 1 && strstr(what, "size.v"),
          "config_diff misses a variant change: %s", what);
    CHECK(config_fingerprint(&a, &a.sizes[0]) != config_fingerprint(&b, &b.sizes[0]),
          "run fingerprint ignores the variant");
    b = a;
    b.debug_kill_step = 3;   /* plants death through b_in, which mlp_bias=0 lacks */
    CHECK(config_validate(&b, err, sizeof err) == -1 && strstr(err, "debug_kill_step") &&
          strstr(err, "size 'v'"), "debug_kill_step with mlp_bias=0: %s", err);
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 pos=alibi", "accepted: learned, none, rope");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 act=gelu", "accepted: relu, relu2");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 tie=yes", "accepted: 1, 0");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 mlp_bias=", "accepted: 1, 0");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 pos=none pos=rope", "pos given twice");
    reject_set("size.x", "L=2 d=30 h=2 F=8 T=8 V=8 pos=rope", "even head size");
    reject_set("size.x", "L=2 d=32 h=4 F=8 T=8 V=8 rope", "variant key");
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    test_defaults();
    test_file_and_overrides();
    test_set_rejections();
    test_validate_rejections();
    test_file_rejections();
    test_round_trip();
    test_seed_ranges();
    test_escaped_messages();
    test_choices();
    test_diff_and_fingerprint();
    test_text_with_grid();
    test_variants();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_done("test_config");
}

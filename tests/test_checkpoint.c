/* test_checkpoint.c — checkpoints: save -> load restores every byte of the
 * parameters, optimizer state, counters and death trackers; the file follows
 * the layout of docs/checkpoint.md; damaged, truncated, padded, foreign and
 * wrong-size files are refused without touching the model; find_latest skips
 * damaged files; a failed save leaves nothing behind; `keep` prunes; every
 * architecture variant round-trips and is refused by the others. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "checkpoint.h"
#include "variant.h"
#include "rng.h"

static char tmpdir[] = "/tmp/test_checkpoint.XXXXXX";
static const ModelSize TINY = {"tiny", 2, 64, 4, 256, 64, 256, .pos = POS_LEARNED};
static const char *CONFIG_TEXT = "size.tiny = L=2 d=64 h=4 F=256 T=64 V=256\nsizes = tiny\n";

/* Everything a run checkpoints, with distinctive contents. */
typedef struct {
    Model m;
    Optimizer opt;
    RunState rs;
} Bundle;

static void build_bundle(Bundle *b, const ModelSize *s, OptimizerKind kind, long window) {
    build_model(&b->m, s, 1);
    build_optimizer(&b->opt, kind, b->m.num_params);
    memset(&b->rs, 0, sizeof b->rs);
    b->rs.trackers = xcalloc((size_t)s->L, sizeof(DeathTracker));
    for (int l = 0; l < s->L; l++) build_death_tracker(&b->rs.trackers[l], s->F, window);
}

static void free_bundle(Bundle *b) {
    for (int l = 0; l < b->m.cfg.L; l++) free_death_tracker(&b->rs.trackers[l]);
    free(b->rs.trackers);
    free_optimizer(&b->opt);
    free_model(&b->m);
}

/* The counters of a run that has done `step` steps of TOKENS_PER_STEP tokens
 * (a load refuses counters that do not fit together). */
#define TOKENS_PER_STEP 4096
static void set_step(Bundle *b, int64_t step) {
    b->rs.step = step;
    b->opt.t = step;
    b->rs.tokens_seen = step * TOKENS_PER_STEP;
    for (int l = 0; l < b->m.cfg.L; l++)
        for (int f = 0; f < b->rs.trackers[l].F; f++) {
            b->rs.trackers[l].last_fire[f] = f % 5 == 0 ? -1 : (1000 * l + f) % step;
            b->rs.trackers[l].born[f] = f % 3 == 0 ? (7 + f) % step : -1;
        }
}

static void fill_bundle(Bundle *b, int64_t step) {
    model_init_params(&b->m, 7);
    for (size_t i = 0; i < b->opt.n; i++) {
        b->opt.m[i] = 0.25f * (float)(i % 1000) - 3.0f;
        b->opt.v[i] = 1e-6f * (float)(i % 777) + 1e-9f;
    }
    b->rs.seed = 0xDEADBEEFCAFEF00DULL;
    b->rs.id = (RunIdentity){0x1111222233334444ull, 0x5555ull, 0x6666ull, 200000000};
    for (int i = 0; i < 4; i++) b->rs.rng_state[i] = 0x0101010101010101ULL * (uint64_t)(i + 1);
    for (int l = 0; l < b->m.cfg.L; l++) {
        DeathTracker *t = &b->rs.trackers[l];
        for (int f = 0; f < t->F; f++) t->fires_since_snap[f] = 3 * f + l;
        t->tokens_since_snap = 4096 + l;
    }
    set_step(b, step);
}

/* "dir/name" in a ring of buffers: each result stays valid for the next 15 calls. */
static char *path_in(const char *dir, const char *name) {
    static char buf[16][512];
    static int k = 0;
    k = (k + 1) % 16;
    if (snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name) >= (int)sizeof buf[k]) {
        fprintf(stderr, "path too long: %s/%s\n", dir, name);
        exit(2);
    }
    return buf[k];
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { *len = 0; return NULL; }
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = xmalloc(*len);
    if (fread(p, 1, *len, fp) != *len) *len = 0;
    fclose(fp);
    return p;
}

static void write_bytes(const char *path, const unsigned char *p, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(2); }
    fwrite(p, 1, len, fp);
    fclose(fp);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The file must match docs/checkpoint.md offset by offset. */
static void check_documented_layout(const char *path, const Bundle *b) {
    size_t len;
    unsigned char *f = read_all(path, &len);
    uint64_t P = b->m.num_params, L = 2, F = 256, clen = strlen(CONFIG_TEXT);
    uint64_t table = (208 + clen + 7) / 8 * 8, params = table + 16 * 64;
    uint64_t trackers = (params + 12 * P + 7) / 8 * 8;
    uint64_t total = trackers + 8 + L * (16 + 24 * F) + 4;
    CHECK(len == total, "file is %zu bytes, the documented layout gives %llu", len,
          (unsigned long long)total);
    if (len != total) { free(f); return; }
    CHECK(!memcmp(f, "RSCKPT01", 8) && le32(f + 8) == 4 && le32(f + 12) == 208, "magic/version");
    CHECK(le32(f + 16) == 2 && le32(f + 20) == 64 && le32(f + 24) == 4 && le32(f + 28) == 256 &&
          le32(f + 32) == 64 && le32(f + 36) == 256 && !strcmp((char *)f + 40, "tiny"), "size");
    CHECK(le64(f + 72) == b->rs.seed && le64(f + 80) == 42 && le64(f + 88) == 42 * 4096 &&
          le64(f + 96) == b->rs.rng_state[0] && le64(f + 120) == b->rs.rng_state[3], "run state");
    CHECK(le32(f + 128) == 0 && le32(f + 132) == 16 && le64(f + 136) == 42 &&
          le64(f + 144) == P && le64(f + 152) == clen, "optimizer/counts");
    CHECK(le64(f + 160) == b->rs.id.config && le64(f + 168) == 0x5555 && le64(f + 176) == 0x6666 &&
          le64(f + 184) == 200000000, "identity block at 160");
    CHECK(le32(f + 192) == 0 && le32(f + 196) == 0 && le32(f + 200) == 0 && le32(f + 204) == 0,
          "variant block of the default model at 192");
    CHECK(!memcmp(f + 208, CONFIG_TEXT, clen), "config text at 208");
    const unsigned char *e = f + table + 10 * 64;   /* fcw: [L][d][F] */
    CHECK(!strcmp((char *)e, "fcw") && le32(e + 16) == 3 && le64(e + 24) == 2 &&
          le64(e + 32) == 64 && le64(e + 40) == 256 && le64(e + 48) == 2 * 64 * 256 &&
          le64(e + 56) == (uint64_t)(b->m.params.fcw - b->m.params_memory), "fcw table entry");
    CHECK(!memcmp(f + params, b->m.params_memory, 4 * P), "parameters at their offset");
    CHECK(!memcmp(f + params + 4 * P, b->opt.m, 4 * P), "m at its offset");
    CHECK(!memcmp(f + params + 8 * P, b->opt.v, 4 * P), "v at its offset");
    const unsigned char *t = f + trackers;
    CHECK(le32(t) == 2 && le32(t + 4) == 256 && le64(t + 8) == 100 && le64(t + 16) == 4096 &&
          !memcmp(t + 24, b->rs.trackers[0].last_fire, 8 * F) &&
          !memcmp(t + 24 + 8 * F, b->rs.trackers[0].fires_since_snap, 8 * F) &&
          !memcmp(t + 24 + 16 * F, b->rs.trackers[0].born, 8 * F), "trackers");
    CHECK(le32(f + len - 4) == crc32_update(0, f, len - 4), "CRC of every preceding byte");
    free(f);
}

static void check_same(const Bundle *a, const Bundle *b) {
    size_t bytes = a->m.num_params * sizeof(float);
    CHECK(!memcmp(a->m.params_memory, b->m.params_memory, bytes), "parameters differ");
    CHECK(!memcmp(a->opt.m, b->opt.m, bytes) && !memcmp(a->opt.v, b->opt.v, bytes), "m/v differ");
    CHECK(a->opt.t == b->opt.t, "optimizer t %ld vs %ld", a->opt.t, b->opt.t);
    CHECK(a->rs.step == b->rs.step && a->rs.tokens_seen == b->rs.tokens_seen &&
          a->rs.seed == b->rs.seed && !memcmp(a->rs.rng_state, b->rs.rng_state, 32), "run state");
    for (int l = 0; l < a->m.cfg.L; l++) {
        const DeathTracker *x = &a->rs.trackers[l], *y = &b->rs.trackers[l];
        CHECK(!memcmp(x->last_fire, y->last_fire, (size_t)x->F * 8) &&
              !memcmp(x->fires_since_snap, y->fires_since_snap, (size_t)x->F * 8) &&
              !memcmp(x->born, y->born, (size_t)x->F * 8) &&
              x->tokens_since_snap == y->tokens_since_snap, "tracker %d differs", l);
    }
}

static void test_round_trip(Bundle *src) {
    char err[1024];
    char dir[512];
    snprintf(dir, sizeof dir, "%s/rt", tmpdir);
    CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &src->m, &src->opt, &src->rs, 0, err,
                          sizeof err) == 0, "save: %s", err);
    CHECK(count_files(dir) == 1, "save left %d files (a temporary?)", count_files(dir));
    const char *file = path_in(dir, "ckpt_00000042.bin");
    check_documented_layout(file, src);
    Bundle dst;
    build_bundle(&dst, &TINY, OPT_SGD, 5);
    CHECK(checkpoint_load(file, &TINY, NULL, &dst.m, &dst.opt, &dst.rs, err, sizeof err) == 0,
          "load: %s", err);
    check_same(src, &dst);
    CHECK(dst.opt.kind == OPT_SGD && dst.rs.trackers[1].window == 5, "caller's kind/window kept");
    free_bundle(&dst);
    ModelSize ms;
    uint64_t seed;
    int64_t step;
    CHECK(checkpoint_peek(file, &ms, &seed, &step, err, sizeof err) == 0, "peek: %s", err);
    CHECK(!memcmp(&ms, &TINY, sizeof ms) && seed == src->rs.seed && step == 42, "peek values");
    /* eval's way: model only, no trackers */
    Model m;
    build_model(&m, &TINY, 1);
    CHECK(checkpoint_load(file, &TINY, NULL, &m, NULL, NULL, err, sizeof err) == 0 &&
          !memcmp(m.params_memory, src->m.params_memory, m.num_params * 4), "model-only: %s", err);
    free_model(&m);
}

/* The run's RNG: seeded from the seed's own stream; a checkpoint with an
 * all-zero state (older builds) loads as the seeded state, any other state
 * loads as saved. */
static void test_rng_state(Bundle *b) {
    char err[1024], dir[512];
    RunState a = {0}, c = {0};
    run_state_init(&a, 7);
    run_state_init(&c, 8);
    Rng r;
    rng_seed(&r, 7, RUN_RNG_STREAM);
    CHECK(a.seed == 7 && !memcmp(a.rng_state, r.s, sizeof r.s), "run_state_init: seeded stream");
    CHECK((a.rng_state[0] | a.rng_state[1] | a.rng_state[2] | a.rng_state[3]) != 0 &&
          memcmp(a.rng_state, c.rng_state, sizeof a.rng_state), "states valid, per seed");
    snprintf(dir, sizeof dir, "%s/rng", tmpdir);
    uint64_t saved[4];
    memcpy(saved, b->rs.rng_state, sizeof saved);
    memset(b->rs.rng_state, 0, sizeof b->rs.rng_state);
    CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 0, err,
                          sizeof err) == 0, "save: %s", err);
    memcpy(b->rs.rng_state, saved, sizeof saved);
    Bundle d;
    build_bundle(&d, &TINY, OPT_ADAMW, 100);
    CHECK(checkpoint_load(path_in(dir, "ckpt_00000042.bin"), &TINY, NULL, &d.m, &d.opt, &d.rs, err,
                          sizeof err) == 0, "load: %s", err);
    rng_seed(&r, b->rs.seed, RUN_RNG_STREAM);
    CHECK(!memcmp(d.rs.rng_state, r.s, sizeof r.s), "zero RNG state loads as the seeded one");
    free_bundle(&d);
}

/* A load of `path` must fail naming it and `want`, leaving dst untouched. */
static void expect_refused(const char *path, const ModelSize *ms, const char *want) {
    char err[1024] = "";
    Bundle dst;
    build_bundle(&dst, ms, OPT_ADAMW, 100);
    for (size_t i = 0; i < dst.m.num_params; i++) dst.m.params_memory[i] = 0.5f;
    dst.rs.step = -7;
    CHECK(checkpoint_load(path, ms, NULL, &dst.m, &dst.opt, &dst.rs, err, sizeof err) == -1,
          "%s loaded", path);
    CHECK(strncmp(err, path, strlen(path)) == 0 && strstr(err, want), "want '%s' in: %s", want, err);
    CHECK(strchr(err, '\n') == NULL, "multi-line error: %s", err);
    int untouched = dst.rs.step == -7 && dst.opt.t == 0;
    for (size_t i = 0; i < dst.m.num_params && untouched; i++) untouched = dst.m.params_memory[i] == 0.5f;
    CHECK(untouched, "a refused load modified the model or state (%s)", want);
    free_bundle(&dst);
}

static void test_damage(void) {
    const char *good = path_in(tmpdir, "rt/ckpt_00000042.bin");
    size_t len;
    unsigned char *f = read_all(good, &len);
    const char *bad = path_in(tmpdir, "bad.bin");
    f[len / 2] ^= 0x40;
    write_bytes(bad, f, len);
    expect_refused(bad, &TINY, "CRC");
    f[len / 2] ^= 0x40;
    write_bytes(bad, f, len - 100);
    expect_refused(bad, &TINY, "truncated");
    write_bytes(bad, f, 100);
    expect_refused(bad, &TINY, "truncated");
    unsigned char *longer = xmalloc(len + 1);
    memcpy(longer, f, len);
    longer[len] = 0;
    write_bytes(bad, longer, len + 1);
    expect_refused(bad, &TINY, "implies");
    free(longer);
    f[0] = 'X';
    write_bytes(bad, f, len);
    expect_refused(bad, &TINY, "bad magic");
    f[0] = 'R';
    f[8] = 9;
    write_bytes(bad, f, len);
    expect_refused(bad, &TINY, "version 9");
    f[8] = 1;
    expect_refused(path_in(tmpdir, "missing.bin"), &TINY, "cannot open");
    expect_refused(tmpdir, &TINY, "not a regular file");
    ModelSize other = {"other", 1, 32, 2, 64, 16, 64, .pos = POS_LEARNED};
    expect_refused(good, &other, "checkpoint is for size L=2 d=64 h=4 F=256 T=64 V=256 but the "
                   "run is L=1 d=32 h=2 F=64 T=16 V=64");
    free(f);
}

/* Runs find_latest with stderr captured into `captured`. */
static int find_capturing(const char *dir, char *path, size_t pathlen, char *captured, size_t n) {
    const char *log = path_in(tmpdir, "stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    int found = checkpoint_find_latest(dir, path, pathlen);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    size_t len;
    unsigned char *text = read_all(log, &len);
    snprintf(captured, n, "%.*s", (int)len, text ? (char *)text : "");
    free(text);
    return found;
}

static void test_find_latest(Bundle *b) {
    char err[1024], path[512], log[2048];
    char dir[512];
    snprintf(dir, sizeof dir, "%s/find", tmpdir);
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 0, "a missing folder has checkpoints");
    mkdir(dir, 0700);
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 0, "an empty folder has checkpoints");
    for (int64_t s = 10; s <= 30; s += 10) {
        set_step(b, s);
        CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 0, err,
                              sizeof err) == 0, "save %lld: %s", (long long)s, err);
    }
    write_bytes(path_in(dir, "ckpt_00000099.bin.tmp.1234"), (const unsigned char *)"x", 1);
    write_bytes(path_in(dir, "notes.txt"), (const unsigned char *)"x", 1);
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 1 &&
          !strcmp(path, path_in(dir, "ckpt_00000030.bin")), "newest: %s", path);
    const char *newest = path_in(dir, "ckpt_00000030.bin");
    size_t len;
    unsigned char *f = read_all(newest, &len);
    f[len / 3] ^= 1;
    write_bytes(newest, f, len);
    free(f);
    int found = find_capturing(dir, path, sizeof path, log, sizeof log);
    CHECK(found == 1 && !strcmp(path, path_in(dir, "ckpt_00000020.bin")),
          "with the newest damaged: %s", path);
    char want[600];
    snprintf(want, sizeof want, "reluscope: warning: %s: damaged checkpoint (CRC", newest);
    CHECK(strstr(log, want) && strstr(log, "), skipped\n"), "warning: %s", log);
    CHECK(truncate(path_in(dir, "ckpt_00000020.bin"), 50) == 0, "truncate");
    unlink(path_in(dir, "ckpt_00000010.bin"));
    CHECK(find_capturing(dir, path, sizeof path, log, sizeof log) == 0, "only damaged: found %s", path);
}

static void test_failed_save(Bundle *b) {
    char err[1024];
    const char *file = path_in(tmpdir, "plainfile");
    write_bytes(file, (const unsigned char *)"x", 1);
    int before = count_files(tmpdir);
    const char *dir = path_in(tmpdir, "plainfile/sub");
    CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 2, err, sizeof err) == -1,
          "a save under a regular file succeeded");
    CHECK(strstr(err, dir) != NULL, "the error does not name the folder: %s", err);
    CHECK(count_files(tmpdir) == before, "a failed save left files behind");
    /* directly in an unusable place: the temporary is never created or is removed */
    CHECK(checkpoint_save(file, &TINY, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 2, err, sizeof err) == -1,
          "a save into a regular file succeeded");
    CHECK(count_files(tmpdir) == before, "a failed save left files behind");
    /* a write that fails half-way (the file-size limit stands in for a full
     * disk): -1, and the temporary is removed */
    char d3[512];
    snprintf(d3, sizeof d3, "%s/fullish", tmpdir);
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 100000;
    signal(SIGXFSZ, SIG_IGN);   /* get EFBIG instead of being killed */
    setrlimit(RLIMIT_FSIZE, &small);
    int rc = checkpoint_save(d3, &TINY, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 2, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(rc == -1 && strstr(err, "ckpt_") != NULL, "a save past the size limit: rc %d, %s", rc, err);
    CHECK(count_files(d3) == 0, "a failed write left %d files", count_files(d3));
    /* a model whose size disagrees is refused before anything is written */
    ModelSize other = {"other", 1, 32, 2, 64, 16, 64, .pos = POS_LEARNED};
    char d2[512];
    snprintf(d2, sizeof d2, "%s/mismatch", tmpdir);
    CHECK(checkpoint_save(d2, &other, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 2, err, sizeof err) == -1 &&
          count_files(d2) <= 0, "a size/model mismatch was saved");
}

static void test_keep(Bundle *b) {
    char err[1024];
    char dir[512];
    snprintf(dir, sizeof dir, "%s/keep", tmpdir);
    for (int64_t s = 1; s <= 5; s++) {
        set_step(b, s);
        CHECK(checkpoint_save(dir, &TINY, NULL, &b->m, &b->opt, &b->rs, 2, err, sizeof err) == 0,
              "save: %s", err);
    }
    struct stat st;
    CHECK(count_files(dir) == 2 && stat(path_in(dir, "ckpt_00000004.bin"), &st) == 0 &&
          stat(path_in(dir, "ckpt_00000005.bin"), &st) == 0, "keep=2 left %d files", count_files(dir));
    /* resumed from an older point: the abandoned newer ones go */
    set_step(b, 3);
    checkpoint_save(dir, &TINY, NULL, &b->m, &b->opt, &b->rs, 2, err, sizeof err);
    CHECK(count_files(dir) == 1 && stat(path_in(dir, "ckpt_00000003.bin"), &st) == 0,
          "after saving step 3: %d files", count_files(dir));
    set_step(b, 123456789);   /* more than 8 digits still sorts by step */
    checkpoint_save(dir, &TINY, NULL, &b->m, &b->opt, &b->rs, 2, err, sizeof err);
    char path[512];
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 1 &&
          !strcmp(path, path_in(dir, "ckpt_123456789.bin")), "9-digit step: %s", path);
}

/* An odd parameter count exercises the padding before the trackers. */
static void test_odd_size(void) {
    const ModelSize odd = {"odd", 1, 3, 1, 5, 4, 7, .pos = POS_LEARNED};
    char err[1024], dir[512], path[512];
    snprintf(dir, sizeof dir, "%s/odd", tmpdir);
    Bundle a, b;
    build_bundle(&a, &odd, OPT_ADAMW, 3);
    fill_bundle(&a, 9);
    CHECK(a.m.num_params % 2 == 1, "P = %zu is not odd", a.m.num_params);
    CHECK(checkpoint_save(dir, &odd, "x = 1\n", &a.m, &a.opt, &a.rs, 1, err, sizeof err) == 0,
          "save: %s", err);
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 1, "odd size not found");
    struct stat st;
    uint64_t P = a.m.num_params, A = (208 + 6 + 7) / 8 * 8, D = (A + 1024 + 12 * P + 7) / 8 * 8;
    CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == D + 8 + 1 * (16 + 24 * 5) + 4,
          "odd size: %lld bytes, the documented layout gives %llu", (long long)st.st_size,
          (unsigned long long)(D + 8 + 16 + 24 * 5 + 4));
    build_bundle(&b, &odd, OPT_ADAMW, 3);
    CHECK(checkpoint_load(path, &odd, NULL, &b.m, &b.opt, &b.rs, err, sizeof err) == 0, "load: %s", err);
    check_same(&a, &b);
    free_bundle(&a);
    free_bundle(&b);
}

/* A version-1 file (written before the resampling state existed: tracker
 * blocks without born[F]; a 160-byte header without the identity block)
 * still loads, with born = -1 everywhere, but never as a run's own. Made
 * from a version-4 file by dropping the variant and identity blocks and each
 * block's born array. */
static void test_version1(Bundle *src) {
    char err[1024], dir[512], path[512], old[600];
    snprintf(dir, sizeof dir, "%s/v1", tmpdir);
    CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &src->m, &src->opt, &src->rs, 1, err,
                          sizeof err) == 0, "save: %s", err);
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 1, "v4 file not found");
    size_t len;
    unsigned char *f = read_all(path, &len);
    uint64_t P = src->m.num_params, L = 2, F = 256, clen = strlen(CONFIG_TEXT);
    uint64_t table = (160 + clen + 7) / 8 * 8, D = (table + 1024 + 12 * P + 7) / 8 * 8;
    uint64_t table3 = (208 + clen + 7) / 8 * 8, D3 = (table3 + 1024 + 12 * P + 7) / 8 * 8;
    unsigned char *g = calloc(1, len);
    memcpy(g, f, 160);
    memcpy(g + 160, f + 208, clen);
    memcpy(g + table, f + table3, D3 + 8 - table3);
    g[12] = 160; g[13] = g[14] = g[15] = 0;
    size_t n = D + 8;
    f += D3 - D;   /* the tracker blocks below are read at f + D + ... */
    for (uint64_t l = 0; l < L; l++) {   /* copy each block without its born[F] */
        memcpy(g + n, f + D + 8 + l * (16 + 24 * F), 16 + 16 * F);
        n += 16 + 16 * F;
    }
    g[8] = 1; g[9] = g[10] = g[11] = 0;
    uint32_t crc = crc32_update(0, g, n);
    for (int i = 0; i < 4; i++) g[n + i] = (unsigned char)(crc >> (8 * i));
    n += 4;
    snprintf(old, sizeof old, "%s/ckpt_00000001.bin", dir);
    FILE *fp = fopen(old, "wb");
    CHECK(fp && fwrite(g, 1, n, fp) == n && fclose(fp) == 0, "cannot write %s", old);
    Bundle b;
    build_bundle(&b, &TINY, OPT_ADAMW, 100);
    for (int l = 0; l < 2; l++) for (int i = 0; i < 256; i++) b.rs.trackers[l].born[i] = 5;
    CHECK(checkpoint_load(old, &TINY, NULL, &b.m, &b.opt, &b.rs, err, sizeof err) == 0,
          "version-1 load: %s", err);
    int born_ok = 1, last_ok = 1;
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 256; i++) {
            born_ok &= b.rs.trackers[l].born[i] == -1;
            last_ok &= b.rs.trackers[l].last_fire[i] == src->rs.trackers[l].last_fire[i];
        }
    CHECK(born_ok && last_ok, "version 1: born not -1 (%d) or last_fire differs (%d)",
          born_ok, last_ok);
    RunExpect want = {.seed = src->rs.seed, .id = src->rs.id, .tokens_per_step = TOKENS_PER_STEP};
    build_bundle(&b, &TINY, OPT_ADAMW, 100);
    CHECK(checkpoint_load(old, &TINY, &want, &b.m, &b.opt, &b.rs, err, sizeof err) == CKPT_FOREIGN &&
          strstr(err, "format version 1"), "a version-1 file resumed a run: %s", err);
    free_bundle(&b);
    free(f - (D3 - D)); free(g);
}

/* A version-3 file (before the variant block: a 192-byte header) loads as
 * the SPEC §2 model, identity and all. Made from a version-4 file by
 * dropping the variant block. */
static void test_version3(Bundle *src) {
    char err[1024], dir[512], path[512];
    snprintf(dir, sizeof dir, "%s/v3", tmpdir);
    CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &src->m, &src->opt, &src->rs, 1, err,
                          sizeof err) == 0, "save: %s", err);
    CHECK(checkpoint_find_latest(dir, path, sizeof path) == 1, "v4 file not found");
    size_t len;
    unsigned char *f = read_all(path, &len);
    uint64_t clen = strlen(CONFIG_TEXT), A = (192 + clen + 7) / 8 * 8, A4 = (208 + clen + 7) / 8 * 8;
    unsigned char *g = calloc(1, len);
    memcpy(g, f, 192);
    g[8] = 3; g[12] = 192;
    memcpy(g + 192, f + 208, clen);
    size_t n = A + (len - 4 - A4);
    memcpy(g + A, f + A4, len - 4 - A4);
    uint32_t crc = crc32_update(0, g, n);
    for (int i = 0; i < 4; i++) g[n + i] = (unsigned char)(crc >> (8 * i));
    const char *old = path_in(dir, "ckpt_00000001.bin");
    write_bytes(old, g, n + 4);
    Bundle b;
    build_bundle(&b, &TINY, OPT_ADAMW, 100);
    RunExpect want = {.seed = src->rs.seed, .id = src->rs.id, .tokens_per_step = TOKENS_PER_STEP};
    CHECK(checkpoint_load(old, &TINY, &want, &b.m, &b.opt, &b.rs, err, sizeof err) == 0,
          "version-3 load: %s", err);
    check_same(src, &b);
    ModelSize ms;
    CHECK(checkpoint_peek(old, &ms, NULL, NULL, err, sizeof err) == 0 && variant_same(&ms, &TINY),
          "version 3 is not the default variant: %s", err);
    ModelSize rope = TINY;
    rope.pos = POS_ROPE;
    expect_refused(old, &rope, "checkpoint is for the variant pos=learned");
    free_bundle(&b);
    free(f); free(g);
}

/* Rewrites a copy of `good` with n bytes at `at` replaced, CRC recomputed:
 * what a hostile user can craft. */
static void craft(const char *good, const char *bad, size_t at, const void *bytes, size_t n) {
    size_t len;
    unsigned char *f = read_all(good, &len);
    memcpy(f + at, bytes, n);
    uint32_t crc = crc32_update(0, f, len - 4);
    for (int i = 0; i < 4; i++) f[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    write_bytes(bad, f, len);
    free(f);
}

/* CRC-valid files with values no run produces are refused field by field. */
static void test_crafted(const Bundle *b) {
    const char *good = path_in(tmpdir, "rt/ckpt_00000042.bin"), *bad = path_in(tmpdir, "crafted.bin");
    uint64_t P = b->m.num_params, F = 256, clen = strlen(CONFIG_TEXT);
    uint64_t params = (208 + clen + 7) / 8 * 8 + 1024, D = (params + 12 * P + 7) / 8 * 8;
    uint64_t blk = D + 8;                                  /* layer 0's tracker block */
    const int64_t big = INT64_MAX, small = INT64_MIN, beyond = 300000000, t41 = 41, minus2 = -2;
    const int64_t step = 42, neg = -1;
    const float nan = NAN, negv = -1.0f;
    struct { size_t at; const void *v; size_t n; const char *want; } cases[] = {
        {80, &beyond, 8, "counters do not fit"},            /* step beyond the planned steps */
        {80, &big, 8, "counters do not fit"},
        {80, &small, 8, "negative step"},
        {136, &t41, 8, "counters do not fit"},              /* optimizer count != step */
        {88, &small, 8, "negative step"},                   /* tokens seen */
        {184, &neg, 8, "negative step"},                    /* planned steps */
        {params + 7 * 4, &nan, 4, "parameter value 7 is nan"},
        {params + 4 * P + 3 * 4, &nan, 4, "first moment value 3"},
        {params + 8 * P + 5 * 4, &negv, 4, "second moment value 5 is -1"},
        {blk, &neg, 8, "window"},
        {blk + 8, &big, 8, "tokens since the snapshot"},
        {blk + 16 + 8 * 9, &step, 8, "last firing step 42"},   /* fired at the step not yet run */
        {blk + 16 + 8 * 9, &minus2, 8, "last firing step -2"},
        {blk + 16 + 8 * F + 8 * 4, &neg, 8, "-1 firings"},
        {blk + 16 + 16 * F + 8 * 2, &big, 8, "birth step"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        craft(good, bad, cases[i].at, cases[i].v, cases[i].n);
        expect_refused(bad, &TINY, cases[i].want);
    }
}

static int step_verdict(CkptFile *f, int n, int64_t step, char *why, size_t len) {
    for (int i = 0; i < n; i++)
        if (f[i].step == step) { snprintf(why, len, "%s", f[i].why); return (int)f[i].verdict; }
    return -1;
}

/* A resume's view: only the run's own checkpoints (seed, config, corpus);
 * FIFOs refused without blocking; unreadable files told apart from damaged
 * ones; stale temporaries of dead processes removed. */
static void test_identity(Bundle *b) {
    char err[1024], dir[512], why[512];
    snprintf(dir, sizeof dir, "%s/id", tmpdir);
    set_step(b, 42);
    CHECK(checkpoint_save(dir, &TINY, CONFIG_TEXT, &b->m, &b->opt, &b->rs, 0, err, sizeof err) == 0,
          "save: %s", err);
    const char *file = path_in(dir, "ckpt_00000042.bin");
    RunExpect want = {.seed = b->rs.seed, .id = b->rs.id, .tokens_per_step = TOKENS_PER_STEP};
    Bundle d;
    build_bundle(&d, &TINY, OPT_ADAMW, 100);
    CHECK(checkpoint_load(file, &TINY, &want, &d.m, &d.opt, &d.rs, err, sizeof err) == 0,
          "own checkpoint: %s", err);
    struct { RunExpect w; int rc; const char *text; } cases[] = {
        {want, CKPT_FOREIGN, "checkpoint of seed 16045690984503111693, the run's seed is 7"},
        {want, CKPT_FOREIGN, "checkpoint of another config"},
        {want, CKPT_FOREIGN, "another corpus: train_data changed"},
        {want, CKPT_FOREIGN, "another corpus: val_data changed"},
        {want, -1, "172032 tokens seen after 42 steps of 4095 tokens"},
    };
    cases[0].w.seed = 7;
    cases[1].w.id.config ^= 1;
    cases[2].w.id.train_corpus ^= 1;
    cases[3].w.id.val_corpus ^= 1;
    cases[4].w.tokens_per_step = 4095;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = checkpoint_load(file, &TINY, &cases[i].w, &d.m, &d.opt, &d.rs, err, sizeof err);
        CHECK(rc == cases[i].rc && strstr(err, cases[i].text), "case %zu: rc %d, %s", i, rc, err);
    }
    free_bundle(&d);
    /* the scan a resume makes */
    CHECK(link(file, path_in(dir, "ckpt_00000041.bin")) == 0, "link");
    CHECK(mkfifo(path_in(dir, "ckpt_00000050.bin"), 0600) == 0, "mkfifo");
    CHECK(symlink(path_in(dir, "nowhere"), path_in(dir, "ckpt_00000060.bin")) == 0, "symlink");
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);                                /* its pid is now free */
    char dead[64], live[64];
    snprintf(dead, sizeof dead, "ckpt_00000070.bin.tmp.%ld", (long)child);
    snprintf(live, sizeof live, "ckpt_00000071.bin.tmp.%ld", (long)getppid());
    write_bytes(path_in(dir, dead), (const unsigned char *)"x", 1);
    write_bytes(path_in(dir, live), (const unsigned char *)"x", 1);
    alarm(20);                                              /* a blocked FIFO open fails the test */
    CkptFile *f;
    int n = checkpoint_scan(dir, &TINY, &want, &f);
    alarm(0);
    CHECK(n == 4, "scan found %d checkpoints", n);
    CHECK(step_verdict(f, n, 42, why, sizeof why) == CKPT_OK, "own file: %s", why);
    CHECK(step_verdict(f, n, 41, why, sizeof why) == CKPT_DAMAGED &&
          strstr(why, "its name says step 41 but it holds step 42"), "renamed: %s", why);
    CHECK(step_verdict(f, n, 50, why, sizeof why) == CKPT_DAMAGED && strstr(why, "not a regular"),
          "FIFO: %s", why);
    CHECK(step_verdict(f, n, 60, why, sizeof why) == CKPT_UNREADABLE && strstr(why, "cannot open"),
          "unreadable: %s", why);
    free(f);
    want.seed = 9;
    n = checkpoint_scan(dir, &TINY, &want, &f);
    CHECK(step_verdict(f, n, 42, why, sizeof why) == CKPT_OTHER_RUN && strstr(why, "seed"),
          "another seed's: %s", why);
    free(f);
    CHECK(checkpoint_remove_stale_temps(dir) == 1, "stale temporaries");
    struct stat st;
    CHECK(stat(path_in(dir, dead), &st) != 0 && stat(path_in(dir, live), &st) == 0,
          "a dead process's temporary is removed, a live one's kept");
}

/* Every variant round-trips (peek returns it, so `eval` builds the right
 * model) and a checkpoint of one variant is refused for every other. */
static const char *const VARIANTS[] = {"", "pos=none", "pos=rope", "tie=0", "mlp_bias=0",
                                       "act=relu2", "pos=none tie=0 mlp_bias=0"};
enum { N_VARIANTS = sizeof VARIANTS / sizeof *VARIANTS };

static ModelSize variant_size(const char *spec) {
    ModelSize s = {"var", 2, 8, 2, 12, 6, 11, .pos = POS_LEARNED};
    unsigned seen = 0;
    char why[256];
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, " ");
        CHECK(variant_parse(&s, p, len, &seen, why, sizeof why) == 0, "%s", why);
        p += len + (p[len] == ' ');
    }
    return s;
}

static void test_variants(void) {
    char err[1024], dir[512], path[N_VARIANTS][512];
    for (int v = 0; v < N_VARIANTS; v++) {
        ModelSize s = variant_size(VARIANTS[v]);
        Bundle a, b;
        snprintf(dir, sizeof dir, "%s/variant%d", tmpdir, v);
        build_bundle(&a, &s, OPT_ADAMW, 3);
        fill_bundle(&a, 5);
        CHECK(checkpoint_save(dir, &s, "x = 1\n", &a.m, &a.opt, &a.rs, 1, err, sizeof err) == 0,
              "save [%s]: %s", VARIANTS[v], err);
        CHECK(checkpoint_find_latest(dir, path[v], sizeof path[v]) == 1, "[%s] not found", VARIANTS[v]);
        ModelSize peeked;
        CHECK(checkpoint_peek(path[v], &peeked, NULL, NULL, err, sizeof err) == 0 &&
              variant_same(&peeked, &s), "peek [%s]: %s", VARIANTS[v], err);
        build_bundle(&b, &s, OPT_ADAMW, 3);
        CHECK(checkpoint_load(path[v], &s, NULL, &b.m, &b.opt, &b.rs, err, sizeof err) == 0,
              "load [%s]: %s", VARIANTS[v], err);
        check_same(&a, &b);
        free_bundle(&a);
        free_bundle(&b);
    }
    for (int v = 0; v < N_VARIANTS; v++)
        for (int w = 0; w < N_VARIANTS; w++) {
            if (v == w) continue;
            ModelSize s = variant_size(VARIANTS[w]);
            expect_refused(path[v], &s, "checkpoint is for the variant pos=");
        }
    /* the tensor table follows the variant: 14 tensors (no wpe, fcb, fcprojb), lmhead last */
    size_t len;
    unsigned char *f = read_all(path[N_VARIANTS - 1], &len);
    uint64_t table = (208 + 6 + 7) / 8 * 8;
    const unsigned char *last = f + table + 13 * 64;
    CHECK(le32(f + 132) == 14 && le32(f + 192) == POS_NONE && le32(f + 196) == 1 &&
          le32(f + 200) == 1 && le32(f + 204) == 0, "variant header fields");
    CHECK(!strcmp((char *)f + table + 64, "ln1w") && !strcmp((char *)last, "lmhead") &&
          le64(last + 24) == 8 && le64(last + 32) == 11, "variant tensor table");
    /* a variant value no build knows is refused (CRC made right again) */
    f[204] = 7;
    uint32_t crc = crc32_update(0, f, len - 4);
    for (int i = 0; i < 4; i++) f[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    const char *bad = path_in(tmpdir, "badvariant.bin");
    write_bytes(bad, f, len);
    ModelSize s = variant_size(VARIANTS[N_VARIANTS - 1]);
    expect_refused(bad, &s, "unknown variant value 7 of act");
    free(f);
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    Bundle src;
    build_bundle(&src, &TINY, OPT_ADAMW, 100);
    fill_bundle(&src, 42);
    test_round_trip(&src);
    test_rng_state(&src);
    test_damage();
    test_find_latest(&src);
    test_failed_save(&src);
    test_keep(&src);
    test_odd_size();
    test_crafted(&src);
    test_identity(&src);
    test_version1(&src);
    test_version3(&src);
    test_variants();
    free_bundle(&src);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_done("test_checkpoint");
}

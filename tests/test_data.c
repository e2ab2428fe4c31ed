/* test_data.c — token shards and the sampler: a hand-made llm.c shard reads
 * right, every bad shard is refused with a message naming it, the ranks'
 * slices make up the global batch for any rank count, epochs visit every
 * window once, and the window arithmetic holds past 2^31 tokens. */
#include "check.h"
#include "data.h"
#include "rng.h"
#include "util.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_data.XXXXXX";

/* The token at position i of test shard s: distinct across shards. */
static uint16_t tok_at(int s, int64_t i) { return (uint16_t)(s * 7919 + i * 13 + 1); }

/* Write a shard by hand, exactly as llm.c does: 256 int32 then uint16s. */
static void write_raw(const char *path, int32_t magic, int32_t version, int32_t count,
                      const uint16_t *tok, int64_t n_tok, int64_t extra_bytes) {
    FILE *fp = fopen(path, "wb");
    int32_t h[256] = {0};
    h[0] = magic; h[1] = version; h[2] = count;
    fwrite(h, sizeof h, 1, fp);
    if (n_tok) fwrite(tok, 2, (size_t)n_tok, fp);
    for (int64_t i = 0; i < extra_bytes; i++) fputc(0, fp);
    fclose(fp);
}

static void make_shard(const char *name, int s, int64_t n) {
    char path[256], err[512];
    uint16_t *t = xmalloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) t[i] = tok_at(s, i);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(shard_write(path, t, n, err, sizeof err) == 0, "shard_write: %s", err);
    free(t);
}

/* ------------------------------------------------------------ shards */

static void test_handmade(void) {
    char path[256], err[512];
    uint16_t t[1000];
    for (int i = 0; i < 1000; i++) t[i] = (uint16_t)(i * 50 % 50257);
    snprintf(path, sizeof path, "%s/llmc_val_000000.bin", dir);
    write_raw(path, 20240520, 1, 1000, t, 1000, 0);
    TokenSet ts;
    CHECK(tokenset_open(&ts, path, 50257, err, sizeof err) == 0, "hand-made shard: %s", err);
    CHECK(ts.n_shards == 1 && ts.total_tokens == 1000 && ts.shards[0].count == 1000, "count");
    uint16_t back[1000];
    CHECK(shard_read(&ts.shards[0], 0, 1000, back, err, sizeof err) == 0 &&
          memcmp(back, t, sizeof t) == 0, "tokens read back");
    tokenset_close(&ts);
    CHECK(tokenset_open(&ts, path, 49000, err, sizeof err) != 0 && strstr(err, "49000"),
          "GPT-2 tokens >= V=49000 refused");
    unlink(path);

    make_shard("w.bin", 3, 777);                        /* shard_write reads back */
    snprintf(path, sizeof path, "%s/w.bin", dir);
    CHECK(tokenset_open(&ts, path, 65536, err, sizeof err) == 0, "written shard: %s", err);
    int same = ts.shards[0].count == 777 && shard_read(&ts.shards[0], 0, 777, back, err, sizeof err) == 0;
    for (int i = 0; same && i < 777; i++) same = back[i] == tok_at(3, i);
    CHECK(same, "shard_write round trip");
    tokenset_close(&ts);
    unlink(path);
    CHECK(shard_write(path, t, 0, err, sizeof err) != 0 && strstr(err, path), "empty shard_write");
}

static void expect_bad(const char *pattern, const char *named, const char *why, int V) {
    TokenSet ts;
    char err[1024];
    err[0] = 0;
    int rc = tokenset_open(&ts, pattern, V, err, sizeof err);
    char want[600];
    snprintf(want, sizeof want, "%s: ", named);
    CHECK(rc != 0, "%s accepted (%s)", named, why);
    CHECK(strncmp(err, want, strlen(want)) == 0 && strstr(err, why) && !strchr(err, '\n'),
          "error '%s' should name %s and say '%s'", err, named, why);
    CHECK(ts.n_shards == 0 && ts.shards == NULL, "nothing left open");
}

static void test_bad_shards(void) {
    char p[300], g[300];
    uint16_t t[64] = {0};
    t[10] = 300;
    snprintf(p, sizeof p, "%s/missing.bin", dir);
    expect_bad(p, p, "No such file", 0);
    snprintf(g, sizeof g, "%s/nothing_*.bin", dir);
    expect_bad(g, g, "no files match", 0);
    snprintf(p, sizeof p, "%s/empty.bin", dir);
    fclose(fopen(p, "wb"));
    expect_bad(p, p, "empty file", 0);
    unlink(p);
    snprintf(p, sizeof p, "%s/short.bin", dir);
    FILE *fp = fopen(p, "wb");
    fwrite(t, 1, 100, fp);
    fclose(fp);
    expect_bad(p, p, "truncated header", 0);
    unlink(p);
    snprintf(p, sizeof p, "%s/magic.bin", dir);
    write_raw(p, 20240521, 1, 64, t, 64, 0);
    expect_bad(p, p, "bad magic", 0);
    write_raw(p, 20240520, 2, 64, t, 64, 0);
    expect_bad(p, p, "version 2", 0);
    write_raw(p, 20240520, 1, 64, t, 63, 0);            /* count says more than the file */
    expect_bad(p, p, "truncated", 0);
    write_raw(p, 20240520, 1, 64, t, 64, 3);            /* count says less */
    expect_bad(p, p, "trailing data", 0);
    write_raw(p, 20240520, 1, 0, t, 0, 0);
    expect_bad(p, p, "no tokens", 0);
    write_raw(p, 20240520, 1, 64, t, 64, 0);
    expect_bad(p, p, "token 300 at position 10", 256);
    TokenSet ts;
    char err[512];
    CHECK(tokenset_open(&ts, p, 301, err, sizeof err) == 0, "V=301 admits 300: %s", err);
    tokenset_close(&ts);
    unlink(p);

    /* in a set, the bad member is the one named */
    make_shard("set_a.bin", 0, 100);
    snprintf(p, sizeof p, "%s/set_b.bin", dir);
    write_raw(p, 20240520, 1, 64, t, 60, 0);
    snprintf(g, sizeof g, "%s/set_*.bin", dir);
    expect_bad(g, p, "truncated", 0);
    unlink(p);
    snprintf(p, sizeof p, "%s/set_a.bin", dir);
    unlink(p);
}

/* ----------------------------------------------------------- sampler */

enum { T = 8, B = 12 };

/* Every row must be T+1 consecutive tokens of one shard, starting at a
 * multiple of T: recover (shard, offset) from the first two tokens. */
static int row_is_window(const TokenSet *ts, const uint16_t *row, int64_t *which) {
    uint16_t buf[T + 1];
    char err[512];
    for (int s = 0; s < ts->n_shards; s++)
        for (int64_t w = 0; w < shard_windows(ts->shards[s].count, T); w++)
            if (shard_read(&ts->shards[s], w * T, T + 1, buf, err, sizeof err) == 0 &&
                memcmp(buf, row, (T + 1) * 2) == 0) {
                *which = w;
                return s;
            }
    return -1;
}

static void test_rank_slices(const TokenSet *ts, SamplerKind kind) {
    Sampler s;
    char err[512];
    CHECK(build_sampler(&s, ts, T, B, kind, 42, err, sizeof err) == 0, "sampler: %s", err);
    uint16_t global[B * (T + 1)], ranks[B * (T + 1)];
    for (int64_t step = 0; step < 7; step++) {          /* crosses epoch boundaries */
        sampler_fill(&s, step, 0, B, global, err, sizeof err);
        for (int b = 0; b < B; b++) {
            int64_t w;
            CHECK(row_is_window(ts, global + b * (T + 1), &w) >= 0, "step %lld row %d", (long long)step, b);
        }
        for (int R = 1; R <= 4; R++) {
            memset(ranks, 0xff, sizeof ranks);
            for (int r = 0; r < R; r++)
                sampler_fill(&s, step, r * B / R, B / R, ranks + (size_t)(r * B / R) * (T + 1), err, sizeof err);
            CHECK(memcmp(global, ranks, sizeof global) == 0,
                  "kind %d step %lld: the %d ranks' slices differ from the global batch",
                  kind, (long long)step, R);
        }
    }
    free_sampler(&s);
}

static void test_sampler(void) {
    make_shard("tr_0.bin", 0, 100);      /* 12 windows */
    make_shard("tr_1.bin", 1, 5);        /* 0 windows: skipped */
    make_shard("tr_2.bin", 2, 57);       /* 7 windows */
    make_shard("tr_3.bin", 3, 9);        /* 1 window */
    char g[300], err[512];
    snprintf(g, sizeof g, "%s/tr_*.bin", dir);
    TokenSet ts;
    CHECK(tokenset_open(&ts, g, 0, err, sizeof err) == 0, "open: %s", err);
    CHECK(ts.n_shards == 4 && ts.total_tokens == 171 && tokenset_windows(&ts, T) == 20, "windows");

    test_rank_slices(&ts, SAMPLER_RANDOM);
    test_rank_slices(&ts, SAMPLER_SEQUENTIAL);

    Sampler a, b, c, q;
    build_sampler(&a, &ts, T, B, SAMPLER_RANDOM, 1, err, sizeof err);
    build_sampler(&b, &ts, T, B, SAMPLER_RANDOM, 1, err, sizeof err);
    build_sampler(&c, &ts, T, B, SAMPLER_RANDOM, 2, err, sizeof err);
    build_sampler(&q, &ts, T, B, SAMPLER_SEQUENTIAL, 1, err, sizeof err);
    int same_ab = 1, same_ac = 1, epochs_differ = 0, seq_ok = 1;
    for (int64_t e = 0; e < 5; e++) {                   /* each epoch: every window once */
        int seen[20] = {0}, ok = 1;
        for (int64_t i = 0; i < 20; i++) {
            int64_t w = sampler_window(&a, e * 20 + i);
            ok = ok && w >= 0 && w < 20 && !seen[w]++;
            same_ab = same_ab && w == sampler_window(&b, e * 20 + i);
            same_ac = same_ac && w == sampler_window(&c, e * 20 + i);
            epochs_differ |= e > 0 && w != sampler_window(&a, i);
            seq_ok = seq_ok && sampler_window(&q, e * 20 + i) == i;
        }
        CHECK(ok, "epoch %lld visits every window exactly once", (long long)e);
    }
    CHECK(same_ab, "same seed, same order");
    CHECK(!same_ac, "different seeds, different orders");
    CHECK(epochs_differ, "epochs are shuffled differently");
    CHECK(seq_ok, "sequential mode walks the windows in order");
    uint16_t rows[B * (T + 1)], held[B * (T + 1)];
    sampler_fill(&q, 0, 0, B, rows, err, sizeof err);                    /* sequential rows are the windows */
    heldout_fill(&ts, T, B, held, err, sizeof err);
    CHECK(memcmp(rows, held, sizeof rows) == 0, "held-out set = the first windows in order");
    CHECK(held[0] == tok_at(0, 0) && held[T] == tok_at(0, T) && held[T + 1] == tok_at(0, T),
          "windows overlap by one token");
    int64_t w;
    CHECK(row_is_window(&ts, held + 11 * (T + 1), &w) == 0 && w == 11, "window 11 in shard 0");
    sampler_fill(&q, 1, 0, 1, rows, err, sizeof err);                    /* window 12: first of shard tr_2 */
    CHECK(rows[0] == tok_at(2, 0), "window 12 starts shard 2 (empty shard skipped)");
    CHECK(heldout_check(&ts, T, 20, err, sizeof err) == 0, "20 held-out windows fit");
    CHECK(heldout_check(&ts, T, 21, err, sizeof err) != 0 && strstr(err, g) && strstr(err, "21"),
          "21 held-out windows refused: %s", err);
    free_sampler(&a); free_sampler(&b); free_sampler(&c); free_sampler(&q);

    Sampler s;
    CHECK(build_sampler(&s, &ts, T, 21, SAMPLER_RANDOM, 0, err, sizeof err) != 0 &&
          strstr(err, g) && strstr(err, "smaller than one batch") && strstr(err, "20 windows") &&
          strstr(err, "B=21") && !strchr(err, '\n'), "corpus smaller than a batch: %s", err);
    tokenset_close(&ts);
    for (int i = 0; i < 4; i++) {
        snprintf(g, sizeof g, "%s/tr_%d.bin", dir, i);
        unlink(g);
    }
}

static void test_permutations(void) {
    const int64_t sizes[] = { 1, 2, 3, 5, 16, 17, 1000, 4097 };
    char *seen = xmalloc(4097);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t W = sizes[k];
        for (int64_t e = 0; e < 3; e++) {
            memset(seen, 0, 4097);
            int ok = 1;
            for (int64_t i = 0; i < W; i++) {
                int64_t x = sampler_permute(7, e, i, W);
                ok = ok && x >= 0 && x < W && !seen[x]++;
            }
            CHECK(ok, "W=%lld epoch %lld: a bijection", (long long)W, (long long)e);
        }
    }
    free(seen);
}

/* docs/data.md's definition of the permutation, written from the text alone:
 * sampler_permute must agree with it, so the batch order can be reproduced
 * from the docs. */
static uint64_t doc_hash64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int64_t doc_permute(uint64_t seed, int64_t e, int64_t i, int64_t W) {
    if (W <= 1) return 0;
    int b = 2;
    while (((uint64_t)1 << b) < (uint64_t)W) b++;
    int h = (b + 1) / 2;
    uint64_t base = doc_hash64(seed ^ doc_hash64((uint64_t)e + 0x6A09E667F3BCC909ull)), k[6];
    for (int r = 0; r < 6; r++) k[r] = doc_hash64(base + (uint64_t)r * 0x9E3779B97F4A7C15ull);
    uint64_t x = (uint64_t)i, m = ((uint64_t)1 << h) - 1;
    do {
        uint64_t L = x >> h, R = x & m;
        for (int r = 0; r < 6; r++) {
            uint64_t t = R;
            R = L ^ (doc_hash64(R ^ k[r]) & m);
            L = t;
        }
        x = (L << h) | R;
    } while (x >= (uint64_t)W);
    return (int64_t)x;
}

static void test_documented_permutation(void) {
    /* splitmix64's published first output for state 0 */
    CHECK(doc_hash64(0) == 0xE220A8397B1DCDAFull && hash64(0) == doc_hash64(0), "hash64(0)");
    const int64_t sizes[] = { 2, 3, 4, 5, 17, 1000, 4097, 1000003 };
    const uint64_t seeds[] = { 0, 7, 0xDEADBEEFCAFEF00Dull };
    int bad = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (size_t s = 0; s < 3; s++)
            for (int64_t e = 0; e < 3; e++)
                for (int64_t i = 0; i < 200 && i < sizes[k]; i++)
                    bad += sampler_permute(seeds[s], e, i, sizes[k]) !=
                           doc_permute(seeds[s], e, i, sizes[k]);
    CHECK(bad == 0, "sampler_permute differs from docs/data.md in %d cases", bad);
}

/* ------------------------------------------------------ past 2^31 tokens */

/* The arithmetic alone, on a fake set whose shards are never read. */
static void test_large_arithmetic(void) {
    Shard sh[3];
    memset(sh, 0, sizeof sh);
    sh[0].count = 3000000000LL;          /* > 2^31 */
    sh[1].count = 100;
    sh[2].count = 5000000001LL;          /* > 2^32 */
    TokenSet ts = { .n_shards = 3, .shards = sh, .total_tokens = 8000000101LL };
    snprintf(ts.pattern, sizeof ts.pattern, "fake");
    Sampler s;
    char err[256];
    CHECK(build_sampler(&s, &ts, 1024, 16, SAMPLER_RANDOM, 3, err, sizeof err) == 0, "%s", err);
    int64_t w0 = (3000000000LL - 1) / 1024, w2 = 5000000000LL / 1024;
    CHECK(s.n_windows == w0 + 0 + w2, "windows %lld", (long long)s.n_windows);
    int shard;
    int64_t off;
    sampler_locate(&s, w0 - 1, &shard, &off);
    CHECK(shard == 0 && off == (w0 - 1) * 1024 && off + 1025 <= sh[0].count, "last window of shard 0");
    sampler_locate(&s, w0, &shard, &off);
    CHECK(shard == 2 && off == 0, "first window of shard 2 (shard 1 has none)");
    sampler_locate(&s, s.n_windows - 1, &shard, &off);
    CHECK(shard == 2 && off == (w2 - 1) * 1024 && off + 1025 <= sh[2].count && off > 4294967296LL,
          "last window: offset %lld", (long long)off);
    int ok = 1;
    int64_t probes[] = { 0, 1, 2147483647LL, 2147483648LL, s.n_windows - 1, s.n_windows,
                         3 * s.n_windows + 5, 1000000 * s.n_windows };
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        int64_t w = sampler_window(&s, probes[i]);
        ok = ok && w >= 0 && w < s.n_windows;
    }
    CHECK(ok, "windows of far-away sequences are in range");
    /* a bijection cannot repeat: 20000 consecutive indices give distinct windows */
    int64_t *v = xmalloc(20000 * sizeof *v);
    for (int i = 0; i < 20000; i++) v[i] = sampler_permute(3, 1, s.n_windows - 20000 + i, s.n_windows);
    int distinct = 1;
    for (int i = 0; i < 20000 && distinct; i++)
        for (int j = i + 1; j < i + 50 && j < 20000; j++) distinct = distinct && v[i] != v[j];
    CHECK(distinct, "permutation of 7.8M windows: no repeats nearby");
    CHECK(sampler_permute(3, 1, s.n_windows + 5, s.n_windows) == sampler_permute(3, 1, 5, s.n_windows),
          "indices are taken modulo W");
    free(v);
    int64_t big = 3000000000000LL;       /* 3e12 windows: near the 2^42 domain */
    CHECK(sampler_permute(9, 0, big - 1, big) < big && sampler_permute(9, 5, 12345, big) >= 0,
          "huge window counts");
    free_sampler(&s);
}

/* A real shard over 4 GiB with more than 2^31 tokens, as a sparse file:
 * 64-bit sizes, mmap offsets, and the uint32 header count. */
static void test_large_file(void) {
    char path[300], err[512];
    /* tokenset_open reads the whole 4 GiB to fingerprint it: ~10 s of I/O */
    if (getenv("RS_TEST_QUICK")) {
        printf("test_data: skipping the 4 GiB sparse shard (make test-quick)\n");
        return;
    }
    snprintf(path, sizeof path, "%s/big.bin", dir);
    const int64_t n = 2147485001LL;     /* > 2^31 tokens; (n-1) % 1000 == 0 */
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    int32_t h[256] = {0};
    h[0] = SHARD_MAGIC; h[1] = SHARD_VERSION;
    uint32_t n32 = (uint32_t)n;
    memcpy(&h[2], &n32, 4);
    uint16_t mark[4] = { 11, 22, 33, 44 };
    off_t at = 1024 + 2 * (off_t)(n - 4);                /* the last four tokens */
    if (fd < 0 || ftruncate(fd, 1024 + 2 * (off_t)n) != 0 || pwrite(fd, h, sizeof h, 0) != sizeof h ||
        pwrite(fd, mark, sizeof mark, at) != sizeof mark) {
        printf("test_data: skipping the 4 GiB sparse shard (the filesystem refused it)\n");
        if (fd >= 0) close(fd);
        unlink(path);
        return;
    }
    close(fd);
    TokenSet ts;
    CHECK(tokenset_open(&ts, path, 0, err, sizeof err) == 0, "4 GiB shard: %s", err);
    if (ts.n_shards == 1) {
        CHECK(ts.total_tokens == n && ts.shards[0].bytes == 1024 + 2 * n, "count %lld",
              (long long)ts.total_tokens);
        Sampler s;
        CHECK(build_sampler(&s, &ts, 1000, 1, SAMPLER_SEQUENTIAL, 0, err, sizeof err) == 0, "%s", err);
        int64_t last = s.n_windows - 1;                  /* ends at token last*1000+1000 */
        uint16_t row[1001];
        sampler_fill(&s, last, 0, 1, row, err, sizeof err);
        int64_t end = last * 1000 + 1000;
        CHECK(end == n - 1 && row[1000] == 44 && row[999] == 33 && row[997] == 11,
              "last window reads the file's last tokens (end %lld)", (long long)end);
        free_sampler(&s);
        tokenset_close(&ts);
    }
    unlink(path);
}

int main(void) {
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_handmade();
    test_bad_shards();
    test_sampler();
    test_permutations();
    test_documented_permutation();
    test_large_arithmetic();
    test_large_file();
    rmdir(dir);
    return test_done("test_data");
}

/* test_bpe.c — the byte-level BPE tokenizer: UTF-8 checks, pre-splitting,
 * training (against a naive reference trainer), exact round trips on varied
 * text including multi-byte UTF-8, the merges file and its bad cases. */
#include "bpe.h"
#include "check.h"
#include "rng.h"
#include "util.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

static int roundtrip(Bpe *b, const uint8_t *text, size_t len) {
    uint16_t *tok = xmalloc((len + 1) * sizeof *tok);
    size_t n = bpe_encode(b, text, len, tok);
    uint8_t *back = xmalloc(len + 1);
    size_t m = bpe_decode(b, tok, n, back, len);
    int ok = m == len && memcmp(back, text, len) == 0 && n <= len;
    for (size_t i = 0; i < n; i++) ok = ok && tok[i] < bpe_vocab(b);
    free(tok);
    free(back);
    return ok;
}

/* Deterministic varied text: words of ASCII and multi-byte pieces, numbers,
 * punctuation, tabs, newlines and runs of spaces. */
static uint8_t *gen_text(uint64_t seed, size_t want, size_t *len) {
    static const char *pieces[] = {
        "th", "e", "an", "d", "in", "g", "re", "s", "t", "o", "a", "qu", "x",
        "\xc3\xa9", "\xc3\xbc", "\xc3\xb1", "\xc3\x9f",                      /* é ü ñ ß */
        "\xe6\xbc\xa2", "\xe5\xad\x97", "\xe3\x81\x82",                      /* 漢 字 あ */
        "\xd0\xb4", "\xd0\xb0",                                               /* д а */
        "\xf0\x9f\x98\x80", "\xf0\x9f\x8c\x8d",                               /* emoji */
    };
    static const char *seps[] = { " ", " ", " ", " ", ", ", ". ", "\n", "  ", "\t", "! ",
                                  " '", "' ", "\n\n", " (", ") ", " 1999 ", " 3.14 ", "'s " };
    Rng r;
    rng_seed(&r, seed, 7);
    uint8_t *t = xmalloc(want + 64);
    size_t n = 0;
    while (n < want) {
        int wl = 1 + (int)rng_below(&r, 4);
        for (int k = 0; k < wl; k++) {
            const char *p = pieces[rng_below(&r, sizeof pieces / sizeof *pieces)];
            memcpy(t + n, p, strlen(p));
            n += strlen(p);
        }
        const char *s = seps[rng_below(&r, sizeof seps / sizeof *seps)];
        memcpy(t + n, s, strlen(s));
        n += strlen(s);
    }
    *len = n;
    return t;
}

static Bpe *train_on(const uint8_t *text, size_t len, int vocab, BpeTrainStats *st) {
    char err[256];
    BpeCounter *c = bpe_counter_new();
    bpe_counter_add(c, text, len);
    Bpe *b = bpe_train(c, vocab, st, err, sizeof err);
    CHECK(b != NULL, "train: %s", err);
    bpe_counter_free(c);
    return b;
}

/* ----------------------------------------------------------- UTF-8 */

static void test_utf8(void) {
    struct { const char *s; size_t len; int ok; size_t bad; } cases[] = {
        { "plain ascii", 11, 1, 0 },
        { "caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x98\x80", 17, 1, 0 },
        { "ab\x80", 3, 0, 2 },                    /* lone continuation byte */
        { "abc\xc3", 4, 0, 3 },                   /* truncated at the end */
        { "a\xe6\xbc" "b", 4, 0, 1 },             /* truncated before ASCII */
        { "\xc0\x80", 2, 0, 0 },                  /* overlong NUL */
        { "xy\xe0\x80\xaf", 5, 0, 2 },            /* overlong '/' */
        { "\xed\xa0\x80", 3, 0, 0 },              /* surrogate U+D800 */
        { "12345678\xf4\x90\x80\x80", 12, 0, 8 }, /* past U+10FFFF */
        { "\xf5\x80\x80\x80", 4, 0, 0 },          /* invalid lead byte */
        { "\xff", 1, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t bad = 999;
        int rc = utf8_check((const uint8_t *)cases[i].s, cases[i].len, &bad);
        CHECK((rc == 0) == cases[i].ok, "utf8 case %zu: rc %d", i, rc);
        if (!cases[i].ok) CHECK(bad == cases[i].bad, "utf8 case %zu: offset %zu want %zu", i, bad,
                                cases[i].bad);
    }
}

/* -------------------------------------------------------- pre-splitting */

static void expect_chunks(const char *text, const char **want, int n_want) {
    size_t len = strlen(text), p = 0;
    int k = 0;
    while (p < len) {
        size_t e = bpe_next_chunk((const uint8_t *)text, len, p);
        CHECK(e > p, "chunk makes progress");
        if (k < n_want)
            CHECK(e - p == strlen(want[k]) && memcmp(text + p, want[k], e - p) == 0,
                  "chunk %d of '%s': got '%.*s' want '%s'", k, text, (int)(e - p), text + p, want[k]);
        k++;
        p = e;
    }
    CHECK(k == n_want, "'%s': %d chunks, want %d", text, k, n_want);
}

static void test_presplit(void) {
    const char *a[] = { "Hello", " world", ",", " ", " it", "'s", " 2024", "!", "\n\n", "ok" };
    expect_chunks("Hello world,  it's 2024!\n\nok", a, 10);
    const char *b[] = { "caf\xc3\xa9", " \xe6\xbc\xa2\xe5\xad\x97", " \xf0\x9f\x98\x80", "\t", "x" };
    expect_chunks("caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x98\x80\tx", b, 5);
    const char *c[] = { "a", "\n", " b", "   " };
    expect_chunks("a\n b   ", c, 4);
    const char *d[] = { " ", " (", "x", ")." };
    expect_chunks("  (x).", d, 4);

    /* long runs are cut at BPE_MAX_CHUNK bytes, never inside a character */
    size_t n = 3 * 400;
    uint8_t *t = xmalloc(n + 1);
    for (size_t i = 0; i < 400; i++) memcpy(t + 3 * i, "\xe6\xbc\xa2", 3);
    size_t p = 0, total = 0;
    while (p < n) {
        size_t e = bpe_next_chunk(t, n, p);
        CHECK(e - p <= BPE_MAX_CHUNK && (e == n || e - p >= BPE_MAX_CHUNK - 3),
              "long chunk length %zu", e - p);
        CHECK(e == n || (t[e] & 0xC0) != 0x80, "cut inside a character at %zu", e);
        total += e - p;
        p = e;
    }
    CHECK(total == n, "chunks cover the text");
    free(t);
}

/* The old chunker, which scanned every run to its end (quadratic on long
 * runs of one class): the bounded scan must cut exactly the same chunks. */
static int ref_class(uint8_t c) {
    if (c >= 0x80 || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return 1;
    if (c >= '0' && c <= '9') return 2;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return 0;
    return 3;
}
static size_t ref_cap(const uint8_t *t, size_t pos, size_t end) {
    if (end - pos <= BPE_MAX_CHUNK) return end;
    size_t e = pos + BPE_MAX_CHUNK;
    while (e > pos + BPE_MAX_CHUNK - 3 && (t[e] & 0xC0) == 0x80) e--;
    return e;
}
static size_t ref_next_chunk(const uint8_t *t, size_t len, size_t pos) {
    size_t i = pos;
    int c = ref_class(t[i]);
    if (c == 0) {
        if (t[i] == ' ' && i + 1 < len && ref_class(t[i + 1]) != 0) {
            i++;
            c = ref_class(t[i]);
        } else {
            size_t e = i;
            while (e < len && ref_class(t[e]) == 0) e++;
            if (e < len && e - i > 1 && t[e - 1] == ' ') e--;
            return ref_cap(t, pos, e);
        }
    }
    if (t[i] == '\'' && i + 1 < len && ref_class(t[i + 1]) == 1) { i++; c = 1; }
    size_t e = i;
    while (e < len && ref_class(t[e]) == c) e++;
    return ref_cap(t, pos, e);
}

/* Chunks all of t; returns seconds, or -1 past the deadline (seconds). */
static double chunk_all(const uint8_t *t, size_t n, double deadline, size_t *chunks) {
    double t0 = now_seconds();
    size_t p = 0, k = 0;
    *chunks = 0;
    while (p < n) {
        p = bpe_next_chunk(t, n, p);
        if (++k % 16 == 0 && now_seconds() - t0 > deadline) return -1;   /* often: a quadratic scan takes ms a chunk */
    }
    *chunks = k;
    return now_seconds() - t0;
}

/* Long runs of one character class cost what normal text of the same size
 * costs (issue 16: 2.4 MB took 11 s, 9 MB over 120 s), and are cut the same. */
static void test_presplit_linear(void) {
    uint64_t r = 12345;
    for (int trial = 0; trial < 300; trial++) {      /* random texts with long runs */
        const char *pieces[] = {"a", "7", " ", "-", "\n", "'", "\xc3\xa9", "\xe6\xbc\xa2"};
        uint8_t t[2048];
        size_t n = 0;
        while (n < sizeof t - 700) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            const char *pc = pieces[(r >> 33) % 8];
            size_t reps = 1 + (r >> 40) % ((r >> 20) % 4 == 0 ? 600 : 4), pl = strlen(pc);
            for (size_t k = 0; k < reps && n + pl < sizeof t; k++, n += pl) memcpy(t + n, pc, pl);
        }
        for (size_t p = 0; p < n;) {
            size_t e = bpe_next_chunk(t, n, p), want = ref_next_chunk(t, n, p);
            if (e != want) {
                CHECK(0, "trial %d: chunk at %zu ends at %zu, the unbounded scan says %zu",
                      trial, p, e, want);
                break;
            }
            p = e;
        }
    }
    const size_t n = 10u << 20;                      /* 10 MB */
    uint8_t *text = xmalloc(n);
    const char *prose = "The quick brown fox, aged 12, jumps over 3 lazy dogs; it's 2024!\n";
    for (size_t i = 0, m = strlen(prose); i < n; i++) text[i] = (uint8_t)prose[i % m];
    size_t chunks = 0;
    double normal = chunk_all(text, n, 60, &chunks);
    const char *runs[] = {"a", "7", "-", " ", "\xe6\xbc\xa2"};
    for (int i = 0; i < 5; i++) {
        size_t m = strlen(runs[i]);
        for (size_t k = 0; k < n; k++) text[k] = (uint8_t)runs[i][k % m];
        double bound = 10 * normal + 0.5, took = chunk_all(text, n, bound, &chunks);
        CHECK(took >= 0, "10 MB of one class ('%s') took over %.2f s (normal text %.3f s): "
              "the chunker is not linear", runs[i], bound, normal);
        printf("test_bpe: 10 MB of '%s': %.3f s, %zu chunks (normal text %.3f s)\n", runs[i],
               took, chunks, normal);
    }
    free(text);
}

/* ------------------------------------ training against a naive reference */

typedef struct { uint16_t *tok; size_t len; int64_t count; } RefWord;

/* Recount every pair from scratch each merge: slow and obviously right. */
static int ref_train(const BpeCounter *c, int n_merges, uint16_t *out, RefWord **words_out) {
    size_t nw = bpe_counter_unique(c);
    RefWord *w = xcalloc(nw, sizeof *w);
    for (size_t i = 0; i < nw; i++) {
        const uint8_t *s = bpe_counter_chunk(c, i, &w[i].len, &w[i].count);
        w[i].tok = xmalloc(w[i].len * sizeof *w[i].tok + 1);
        for (size_t k = 0; k < w[i].len; k++) w[i].tok[k] = s[k];
    }
    int64_t *cnt = xcalloc((size_t)1 << 20, sizeof *cnt);   /* keys < 2^20 here */
    int m = 0;
    for (; m < n_merges; m++) {
        memset(cnt, 0, ((size_t)1 << 20) * sizeof *cnt);
        for (size_t i = 0; i < nw; i++)
            for (size_t k = 0; k + 1 < w[i].len; k++)
                cnt[(uint32_t)w[i].tok[k] << 10 | w[i].tok[k + 1]] += w[i].count;
        int64_t best = 0;
        uint32_t bk = 0;
        for (uint32_t k = 0; k < (1u << 20); k++)
            if (cnt[k] > best) { best = cnt[k]; bk = k; }
        if (best == 0) break;
        uint16_t l = (uint16_t)(bk >> 10), r = (uint16_t)(bk & 1023), t = (uint16_t)(256 + m);
        out[2 * m] = l;
        out[2 * m + 1] = r;
        for (size_t i = 0; i < nw; i++) {
            size_t j = 0;
            for (size_t k = 0; k < w[i].len;) {
                if (k + 1 < w[i].len && w[i].tok[k] == l && w[i].tok[k + 1] == r) {
                    w[i].tok[j++] = t; k += 2;
                } else w[i].tok[j++] = w[i].tok[k++];
            }
            w[i].len = j;
        }
    }
    free(cnt);
    *words_out = w;
    return m;
}

static void compare_with_reference(const uint8_t *text, size_t len, int vocab, const char *what) {
    BpeCounter *c = bpe_counter_new();
    bpe_counter_add(c, text, len);
    char err[256];
    BpeTrainStats st;
    Bpe *b = bpe_train(c, vocab, &st, err, sizeof err);
    CHECK(b != NULL, "%s: %s", what, err);
    uint16_t *ref = xmalloc(2 * (size_t)vocab * sizeof *ref);
    RefWord *words;
    int m = ref_train(c, vocab - 256, ref, &words);
    CHECK(b && bpe_n_merges(b) == m, "%s: %d merges, reference %d", what, b ? bpe_n_merges(b) : -1, m);
    int first_diff = -1;
    for (int i = 0; b && i < m && i < bpe_n_merges(b); i++) {
        uint16_t l, r;
        bpe_merge_pair(b, i, &l, &r);
        if (first_diff < 0 && (l != ref[2 * i] || r != ref[2 * i + 1])) first_diff = i;
    }
    CHECK(first_diff < 0, "%s: merge %d differs from the reference", what, first_diff);
    /* encoding a training chunk gives exactly its training segmentation */
    int seg_ok = 1;
    uint16_t tok[BPE_MAX_CHUNK];
    for (size_t i = 0; b && i < bpe_counter_unique(c); i++) {
        size_t l;
        int64_t cnt;
        const uint8_t *s = bpe_counter_chunk(c, i, &l, &cnt);
        size_t n = bpe_encode(b, s, l, tok);
        seg_ok = seg_ok && n == words[i].len && memcmp(tok, words[i].tok, n * sizeof *tok) == 0;
        free(words[i].tok);
    }
    CHECK(seg_ok, "%s: encoding reproduces the training segmentation", what);
    free(words);
    free(ref);
    bpe_free(b);
    bpe_counter_free(c);
}

static void test_training(void) {
    size_t len;
    uint8_t *t = gen_text(1, 30000, &len);
    compare_with_reference(t, len, 700, "generated text");
    free(t);
    /* overlapping pairs: aaaa, abab, and l == r merges */
    const char *rep = "aaaaaaa aaa aa abababab ababa bab aaaa bbbb abba aaab baaa "
                      "aaaaaaa aaa abababab ababab aaaaa aaab";
    compare_with_reference((const uint8_t *)rep, strlen(rep), 300, "repetitive text");

    char err[256];
    BpeCounter *c = bpe_counter_new();
    bpe_counter_add(c, (const uint8_t *)"abc", 3);
    CHECK(bpe_train(c, 255, NULL, err, sizeof err) == NULL && strstr(err, "255"), "vocab 255 refused");
    CHECK(bpe_train(c, 65537, NULL, err, sizeof err) == NULL && strstr(err, "65537"),
          "vocab 65537 refused");
    BpeTrainStats st;
    Bpe *b = bpe_train(c, 65536, &st, err, sizeof err);   /* "abc": only 2 merges exist */
    CHECK(b && st.n_merges == 2 && bpe_vocab(b) == 258, "pairs run out: %d merges", st.n_merges);
    bpe_free(b);
    bpe_counter_free(c);
}

/* ------------------------------------------------------------ round trips */

static void test_roundtrips(void) {
    size_t len, len2;
    uint8_t *t = gen_text(2, 200000, &len);
    BpeTrainStats st;
    Bpe *b = train_on(t, len, 2048, &st);
    CHECK(st.n_merges == 2048 - 256, "merges %d", st.n_merges);
    CHECK(roundtrip(b, t, len), "training text round trip");
    uint8_t *u = gen_text(3, 50000, &len2);             /* unseen text */
    CHECK(roundtrip(b, u, len2), "unseen text round trip");
    uint16_t *tok = xmalloc(len2 * sizeof *tok);
    size_t n = bpe_encode(b, u, len2, tok);
    CHECK(n < len2 / 2, "BPE compresses: %zu tokens for %zu bytes", n, len2);
    free(tok);
    const char *edge[] = {
        "", "a", " ", "\n", "\xf0\x9f\x98\x80", "     \n\n\t  ", "''''", "don't 'quote'",
        "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x94 na\xc3\xafve caf\xc3\xa9s",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0\xe3\x80\x82",
        "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb family \xf0\x9f\x87\xa9\xf0\x9f\x87\xaa",
    };
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        CHECK(roundtrip(b, (const uint8_t *)edge[i], strlen(edge[i])), "edge text %zu", i);
    uint8_t all[512];                                   /* every byte, not UTF-8 */
    for (int i = 0; i < 512; i++) all[i] = (uint8_t)(i * 7);
    CHECK(roundtrip(b, all, sizeof all), "arbitrary bytes round trip");
    uint8_t *longrun = xmalloc(5000);
    memset(longrun, 'e', 5000);
    CHECK(roundtrip(b, longrun, 5000), "long run round trip");
    free(longrun);

    /* byte level: tokens are exactly the bytes */
    Bpe *bytes = bpe_new_bytes();
    uint16_t bt[512];
    CHECK(bpe_vocab(bytes) == 256 && bpe_encode(bytes, all, 512, bt) == 512, "byte encode");
    int same = 1;
    for (int i = 0; i < 512; i++) same = same && bt[i] == all[i];
    CHECK(same, "byte tokens equal the bytes");
    CHECK(roundtrip(bytes, t, len) && roundtrip(bytes, all, 512), "byte round trip");
    uint16_t badtok = 300;
    uint8_t out[4];
    CHECK(bpe_decode(bytes, &badtok, 1, out, 4) == SIZE_MAX, "token >= vocab refused by decode");
    bpe_free(bytes);
    bpe_free(b);
    free(t);
    free(u);
}

/* ------------------------------------------------------- the merges file */

static char tmpdir[] = "/tmp/test_bpe.XXXXXX";

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

static void test_file_roundtrip(void) {
    size_t len;
    uint8_t *t = gen_text(4, 40000, &len);
    Bpe *b = train_on(t, len, 600, NULL);
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/tokenizer.bpe", tmpdir);
    CHECK(bpe_save(b, path, err, sizeof err) == 0, "save: %s", err);
    Bpe *c = bpe_load(path, err, sizeof err);
    CHECK(c != NULL, "load: %s", err);
    if (c) {
        int same = bpe_vocab(c) == bpe_vocab(b);
        for (int i = 0; same && i < bpe_n_merges(b); i++) {
            uint16_t l1, r1, l2, r2;
            bpe_merge_pair(b, i, &l1, &r1);
            bpe_merge_pair(c, i, &l2, &r2);
            same = l1 == l2 && r1 == r2;
        }
        CHECK(same, "loaded merges equal the saved ones");
        uint16_t *x = xmalloc(len * sizeof *x), *y = xmalloc(len * sizeof *y);
        size_t nx = bpe_encode(b, t, len, x), ny = bpe_encode(c, t, len, y);
        CHECK(nx == ny && memcmp(x, y, nx * sizeof *x) == 0, "same encoding after load");
        free(x);
        free(y);
        bpe_free(c);
    }
    Bpe *bytes = bpe_new_bytes();                       /* vocab 256, no merge lines */
    CHECK(bpe_save(bytes, path, err, sizeof err) == 0, "save bytes: %s", err);
    c = bpe_load(path, err, sizeof err);
    CHECK(c && bpe_vocab(c) == 256, "byte tokenizer file loads: %s", c ? "" : err);
    bpe_free(c);
    bpe_free(bytes);
    bpe_free(b);
    free(t);
}

static void test_bad_files(void) {
    struct { const char *text; int line; const char *why; } cases[] = {
        { "", 1, "empty" },
        { "hello 1 vocab 258 merges 2\n97 98\n99 100\n", 1, "header" },
        { "reluscope-bpe 2 vocab 258 merges 2\n97 98\n99 100\n", 1, "version" },
        { "reluscope-bpe 1 vocab 300 merges 2\n97 98\n99 100\n", 1, "256 + merges" },
        { "reluscope-bpe 1 vocab 70000 merges 69744\n", 1, "at most" },
        { "reluscope-bpe 1 vocab -3 merges 2\n", 1, "header" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 98\n99\n", 3, "two token ids" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 98\n99 x\n", 3, "two token ids" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 98\n99 100 5\n", 3, "two token ids" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97  98\n99 100\n", 2, "two token ids" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 257\n99 100\n", 2, "not defined" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 98\n97 98\n", 3, "repeats" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 98\n", 3, "ends after 1" },
        { "reluscope-bpe 1 vocab 258 merges 2\n97 98\n99 100\n1 2\n", 4, "more merges" },
        { "reluscope-bpe 1 vocab 265 merges 9\n97 97\n256 256\n257 257\n258 258\n259 259\n"
          "260 260\n261 261\n262 262\n263 263\n", 10, "512 bytes" },
    };
    char path[256], err[1024], want[300];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.bpe", tmpdir, i);
        write_text(path, cases[i].text);
        Bpe *b = bpe_load(path, err, sizeof err);
        snprintf(want, sizeof want, "%s:%d: ", path, cases[i].line);
        CHECK(b == NULL, "bad file %zu accepted", i);
        CHECK(strncmp(err, want, strlen(want)) == 0 && strstr(err, cases[i].why) &&
              !strchr(err, '\n'), "bad file %zu: got '%s', want '%s...%s'", i, err, want,
              cases[i].why);
        bpe_free(b);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/missing.bpe", tmpdir);
    CHECK(bpe_load(path, err, sizeof err) == NULL && strstr(err, path) && strstr(err, "cannot open"),
          "missing file: %s", err);
    /* a hand-written good file with a Windows line ending still loads */
    snprintf(path, sizeof path, "%s/good.bpe", tmpdir);
    write_text(path, "reluscope-bpe 1 vocab 258 merges 2\r\n104 101\n32 256\n");
    Bpe *b = bpe_load(path, err, sizeof err);
    CHECK(b != NULL, "good file: %s", err);
    if (b) {
        uint16_t tok[8];
        size_t n = bpe_encode(b, (const uint8_t *)"the he", 6, tok);
        CHECK(n == 3 && tok[0] == 't' && tok[1] == 256 && tok[2] == 257, "merges applied: %zu", n);
    }
    bpe_free(b);
    unlink(path);
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_utf8();
    test_presplit();
    test_presplit_linear();
    test_training();
    test_roundtrips();
    test_file_roundtrip();
    test_bad_files();
    char path[300];
    snprintf(path, sizeof path, "%s/tokenizer.bpe", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return test_done("test_bpe");
}

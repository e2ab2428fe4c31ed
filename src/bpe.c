/* bpe.c — byte-level BPE: pre-splitting, UTF-8 checks, the tokenizer
 * tables, encoding with a per-chunk cache, decoding, the merges file, and
 * the chunk counter that training reads. Training itself is bpe_train.c. */
#include "bpe.h"
#include "rng.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- UTF-8 */

int utf8_check(const uint8_t *s, size_t len, size_t *bad_offset) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {                /* ASCII fast path, 8 bytes at a time */
            uint64_t w;
            while (i + 8 <= len && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ull) == 0))
                i += 8;
            while (i < len && s[i] < 0x80) i++;
            continue;
        }
        uint8_t c = s[i];
        int n;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0)      { n = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        for (int k = 1; k <= n; k++) {
            if (i + (size_t)k >= len || (s[i + k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += (size_t)n + 1;
    }
    return 0;
bad:
    if (bad_offset) *bad_offset = i;
    return -1;
}

/* ------------------------------------------------------- pre-splitting */

enum { C_SPACE, C_LETTER, C_DIGIT, C_PUNCT };

/* Every non-ASCII byte counts as a letter: a multi-byte character then
 * stays inside one chunk with the word around it, without Unicode tables. */
static inline int byte_class(uint8_t c) {
    if (c >= 0x80 || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return C_LETTER;
    if (c >= '0' && c <= '9') return C_DIGIT;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return C_SPACE;
    return C_PUNCT;
}

/* Cut over-long runs so that encoding a chunk stays cheap; back off to a
 * character boundary so a UTF-8 sequence is not split between chunks. */
static size_t cap_chunk(const uint8_t *t, size_t pos, size_t end) {
    if (end - pos <= BPE_MAX_CHUNK) return end;
    size_t e = pos + BPE_MAX_CHUNK;
    while (e > pos + BPE_MAX_CHUNK - 3 && (t[e] & 0xC0) == 0x80) e--;
    return e;
}

/* Every scan stops one byte past BPE_MAX_CHUNK: cap_chunk cuts there anyway,
 * and scanning a long run to its end once per cut made a run of one class
 * quadratic (9 MB of letters took minutes). The chunks are the same. */
size_t bpe_next_chunk(const uint8_t *t, size_t len, size_t pos) {
    size_t i = pos, limit = len - pos > BPE_MAX_CHUNK + 1 ? pos + BPE_MAX_CHUNK + 1 : len;
    int c = byte_class(t[i]);
    if (c == C_SPACE) {
        if (t[i] == ' ' && i + 1 < len && byte_class(t[i + 1]) != C_SPACE) {
            i++;                          /* a single space leads the next run */
            c = byte_class(t[i]);
        } else {
            size_t e = i;
            while (e < limit && byte_class(t[e]) == C_SPACE) e++;
            /* leave the run's last space to lead the word that follows */
            if (e < len && e - i > 1 && t[e - 1] == ' ') e--;
            return cap_chunk(t, pos, e);
        }
    }
    if (t[i] == '\'' && i + 1 < len && byte_class(t[i + 1]) == C_LETTER) {
        i++;                              /* contractions: 's 't 'll ... */
        c = C_LETTER;
    }
    size_t e = i;
    while (e < limit && byte_class(t[e]) == c) e++;
    return cap_chunk(t, pos, e);
}

/* ---------------------------------------- a map from byte strings to int64 */

typedef struct {
    uint64_t hash;
    size_t off;                 /* into bytes */
    uint32_t len;
    int64_t value;
} ChunkEntry;

typedef struct {
    uint8_t *bytes; size_t nbytes, capbytes;
    ChunkEntry *ent; size_t n, cap;
    uint32_t *slot; size_t nslot;   /* entry index + 1; 0 = empty */
} ChunkMap;

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = hash64(0x243F6A8885A308D3ull ^ n);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = hash64(h ^ w);
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return hash64(h ^ w);
}

static void chunkmap_free(ChunkMap *m) {
    free(m->bytes); free(m->ent); free(m->slot);
    memset(m, 0, sizeof *m);
}

static void chunkmap_rehash(ChunkMap *m, size_t nslot) {
    free(m->slot);
    m->slot = xcalloc(nslot, sizeof *m->slot);
    m->nslot = nslot;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->ent[i].hash & (nslot - 1);
        while (m->slot[j]) j = (j + 1) & (nslot - 1);
        m->slot[j] = (uint32_t)(i + 1);
    }
}

/* Index of the entry for s, adding it (value 0) if absent. */
static size_t chunkmap_get(ChunkMap *m, const uint8_t *s, size_t len, int *added) {
    uint64_t h = hash_bytes(s, len);
    if (m->nslot == 0) chunkmap_rehash(m, 1024);
    size_t j = h & (m->nslot - 1);
    for (; m->slot[j]; j = (j + 1) & (m->nslot - 1)) {
        ChunkEntry *e = &m->ent[m->slot[j] - 1];
        if (e->hash == h && e->len == len && memcmp(m->bytes + e->off, s, len) == 0) {
            *added = 0;
            return m->slot[j] - 1;
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 1024;
        m->ent = realloc(m->ent, m->cap * sizeof *m->ent);
        if (!m->ent) die("out of memory growing the BPE chunk table");
    }
    if (m->nbytes + len > m->capbytes) {
        m->capbytes = 2 * (m->capbytes + len) + 4096;
        m->bytes = realloc(m->bytes, m->capbytes);
        if (!m->bytes) die("out of memory growing the BPE chunk table");
    }
    memcpy(m->bytes + m->nbytes, s, len);
    m->ent[m->n] = (ChunkEntry){ h, m->nbytes, (uint32_t)len, 0 };
    m->nbytes += len;
    m->slot[j] = (uint32_t)(++m->n);
    if (2 * m->n > m->nslot) chunkmap_rehash(m, 2 * m->nslot);
    *added = 1;
    return m->n - 1;
}

/* ------------------------------------------------- pair -> merge rank */

typedef struct { uint32_t *key; int32_t *val; size_t mask; } RankMap;

static inline size_t pair_slot(uint32_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

static int32_t rank_get(const RankMap *r, uint32_t key) {
    for (size_t j = pair_slot(key, r->mask); r->val[j] >= 0; j = (j + 1) & r->mask)
        if (r->key[j] == key) return r->val[j];
    return -1;
}

static void rank_put(RankMap *r, uint32_t key, int32_t val) {
    size_t j = pair_slot(key, r->mask);
    while (r->val[j] >= 0) j = (j + 1) & r->mask;
    r->key[j] = key;
    r->val[j] = val;
}

/* ------------------------------------------------------- the tokenizer */

#define CACHE_MAX_ENTRIES (1u << 22)   /* reset beyond this: bounded memory */

struct Bpe {
    int n_merges;
    uint16_t (*pairs)[2];
    uint32_t *tok_off;          /* [vocab] into tok_bytes */
    uint16_t *tok_len;          /* [vocab] */
    uint8_t *tok_bytes;
    RankMap ranks;
    ChunkMap cache;             /* chunk -> (offset into ctok) << 9 | n tokens */
    uint16_t *ctok; size_t nctok, capctok;
};

static Bpe *build(const uint16_t *pairs, int n, int *bad, char *why, size_t whylen) {
    if (n < 0 || n > BPE_MAX_VOCAB - 256) {
        *bad = 0;
        snprintf(why, whylen, "%d merges (at most %d)", n, BPE_MAX_VOCAB - 256);
        return NULL;
    }
    Bpe *b = xcalloc(1, sizeof *b);
    int V = 256 + n;
    b->n_merges = n;
    b->pairs = xmalloc(((size_t)n + 1) * sizeof *b->pairs);
    if (n) memcpy(b->pairs, pairs, (size_t)n * sizeof *b->pairs);   /* 2n ids */
    b->tok_off = xmalloc((size_t)V * sizeof *b->tok_off);
    b->tok_len = xmalloc((size_t)V * sizeof *b->tok_len);
    b->tok_bytes = xmalloc(256 + (size_t)n * BPE_MAX_CHUNK);
    size_t nslot = 64;
    while (nslot < 2 * (size_t)n + 2) nslot *= 2;
    b->ranks.key = xcalloc(nslot, sizeof *b->ranks.key);
    b->ranks.val = xmalloc(nslot * sizeof *b->ranks.val);
    memset(b->ranks.val, 0xff, nslot * sizeof *b->ranks.val);   /* all -1 */
    b->ranks.mask = nslot - 1;
    for (int t = 0; t < 256; t++) {
        b->tok_off[t] = (uint32_t)t; b->tok_len[t] = 1; b->tok_bytes[t] = (uint8_t)t;
    }
    size_t used = 256;
    for (int i = 0; i < n; i++) {
        int l = pairs[2 * i], r = pairs[2 * i + 1];
        uint32_t key = (uint32_t)l << 16 | (uint32_t)r;
        *bad = i;
        if (l >= 256 + i || r >= 256 + i) {
            snprintf(why, whylen, "merge %d uses token %d, which is not defined before it",
                     i, l >= 256 + i ? l : r);
            goto fail;
        }
        if (rank_get(&b->ranks, key) >= 0) {
            snprintf(why, whylen, "merge %d repeats the pair %d %d of merge %d", i, l, r,
                     rank_get(&b->ranks, key));
            goto fail;
        }
        size_t len = (size_t)b->tok_len[l] + b->tok_len[r];
        if (len > BPE_MAX_CHUNK) {
            snprintf(why, whylen, "merge %d makes a token of %zu bytes (at most %d)",
                     i, len, BPE_MAX_CHUNK);
            goto fail;
        }
        rank_put(&b->ranks, key, i);
        memcpy(b->tok_bytes + used, b->tok_bytes + b->tok_off[l], b->tok_len[l]);
        memcpy(b->tok_bytes + used + b->tok_len[l], b->tok_bytes + b->tok_off[r], b->tok_len[r]);
        b->tok_off[256 + i] = (uint32_t)used;
        b->tok_len[256 + i] = (uint16_t)len;
        used += len;
    }
    return b;
fail:
    bpe_free(b);
    return NULL;
}

Bpe *bpe_from_merges(const uint16_t *pairs, int n_merges, char *err, size_t errlen) {
    char why[256];
    int bad = 0;
    Bpe *b = build(pairs, n_merges, &bad, why, sizeof why);
    if (!b) snprintf(err, errlen, "invalid merge list: %s", why);
    return b;
}

Bpe *bpe_new_bytes(void) {
    char why[64];
    int bad;
    return build(NULL, 0, &bad, why, sizeof why);
}

void bpe_free(Bpe *b) {
    if (!b) return;
    free(b->pairs); free(b->tok_off); free(b->tok_len); free(b->tok_bytes);
    free(b->ranks.key); free(b->ranks.val);
    chunkmap_free(&b->cache);
    free(b->ctok);
    free(b);
}

int bpe_vocab(const Bpe *b) { return 256 + b->n_merges; }
int bpe_n_merges(const Bpe *b) { return b->n_merges; }

void bpe_merge_pair(const Bpe *b, int i, uint16_t *left, uint16_t *right) {
    *left = b->pairs[i][0];
    *right = b->pairs[i][1];
}

size_t bpe_token_bytes(const Bpe *b, uint16_t tok, const uint8_t **bytes) {
    *bytes = b->tok_bytes + b->tok_off[tok];
    return b->tok_len[tok];
}

/* ------------------------------------------------------------ encoding */

/* Apply merges lowest rank first until none applies. Equivalent to
 * applying every merge in order, as training did: a merge can only create
 * pairs whose rank is higher than its own. */
static size_t encode_chunk(const Bpe *b, const uint8_t *s, size_t n, uint16_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = s[i];
    size_t m = n;
    while (m > 1) {
        int32_t best = INT32_MAX;
        for (size_t i = 0; i + 1 < m; i++) {
            int32_t r = rank_get(&b->ranks, (uint32_t)out[i] << 16 | out[i + 1]);
            if (r >= 0 && r < best) best = r;
        }
        if (best == INT32_MAX) break;
        uint16_t l = b->pairs[best][0], r = b->pairs[best][1], t = (uint16_t)(256 + best);
        size_t j = 0;
        for (size_t i = 0; i < m;) {
            if (i + 1 < m && out[i] == l && out[i + 1] == r) { out[j++] = t; i += 2; }
            else out[j++] = out[i++];
        }
        m = j;
    }
    return m;
}

static size_t encode_cached(Bpe *b, const uint8_t *s, size_t n, uint16_t *out) {
    if (b->cache.n >= CACHE_MAX_ENTRIES) {
        chunkmap_free(&b->cache);
        b->nctok = 0;
    }
    int added;
    size_t k = chunkmap_get(&b->cache, s, n, &added);
    if (!added) {
        int64_t v = b->cache.ent[k].value;
        size_t cnt = (size_t)(v & 511);
        memcpy(out, b->ctok + (v >> 9), cnt * sizeof *out);
        return cnt;
    }
    size_t cnt = encode_chunk(b, s, n, out);
    if (b->nctok + cnt > b->capctok) {
        b->capctok = 2 * (b->capctok + cnt) + 4096;
        b->ctok = realloc(b->ctok, b->capctok * sizeof *b->ctok);
        if (!b->ctok) die("out of memory growing the BPE encoding cache");
    }
    memcpy(b->ctok + b->nctok, out, cnt * sizeof *out);
    b->cache.ent[k].value = (int64_t)b->nctok << 9 | (int64_t)cnt;
    b->nctok += cnt;
    return cnt;
}

size_t bpe_encode_some(Bpe *b, const uint8_t *text, size_t len, size_t *pos,
                       uint16_t *out, size_t cap) {
    size_t p = *pos, nout = 0;
    if (b->n_merges == 0) {               /* byte level: tokens are the bytes */
        nout = len - p < cap ? len - p : cap;
        for (size_t i = 0; i < nout; i++) out[i] = text[p + i];
        *pos = p + nout;
        return nout;
    }
    while (p < len) {
        size_t e = bpe_next_chunk(text, len, p);
        if (nout + (e - p) > cap) break;  /* a chunk never has more tokens than bytes */
        nout += encode_cached(b, text + p, e - p, out + nout);
        p = e;
    }
    *pos = p;
    return nout;
}

size_t bpe_encode(Bpe *b, const uint8_t *text, size_t len, uint16_t *out) {
    size_t pos = 0;
    return bpe_encode_some(b, text, len, &pos, out, len);
}

size_t bpe_decode(const Bpe *b, const uint16_t *tokens, size_t n, uint8_t *out, size_t cap) {
    size_t total = 0;
    int V = bpe_vocab(b);
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] >= V) return SIZE_MAX;
        size_t l = b->tok_len[tokens[i]];
        if (total + l <= cap) memcpy(out + total, b->tok_bytes + b->tok_off[tokens[i]], l);
        total += l;
    }
    return total;
}

/* ------------------------------------------------------ the merges file */

int bpe_save(const Bpe *b, const char *path, char *err, size_t errlen) {
    AtomicFile af;
    if (atomic_open(&af, path) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    int bad = fprintf(af.fp, "%s %d vocab %d merges %d\n", BPE_FORMAT, BPE_VERSION,
                      bpe_vocab(b), b->n_merges) < 0;
    for (int i = 0; i < b->n_merges && !bad; i++)
        bad = fprintf(af.fp, "%u %u\n", b->pairs[i][0], b->pairs[i][1]) < 0;
    return atomic_finish(&af, bad, err, errlen);
}

/* Strict decimal: digits only, at most 9 of them. */
static int parse_num(const char **p, long *v) {
    const char *s = *p;
    long x = 0;
    int nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 10) { x = 10 * x + (*s++ - '0'); nd++; }
    if (nd == 0 || nd > 9) return -1;
    *p = s;
    *v = x;
    return 0;
}

static int parse_word(const char **p, const char *w) {
    size_t n = strlen(w);
    if (strncmp(*p, w, n) != 0) return -1;
    *p += n;
    return 0;
}

/* "reluscope-bpe 1 vocab V merges M"; returns M or -1 with why. */
static long parse_header(const char *line, char *why, size_t whylen) {
    const char *p = line;
    long ver, V, M;
    if (parse_word(&p, BPE_FORMAT " ") || parse_num(&p, &ver) || parse_word(&p, " vocab ") ||
        parse_num(&p, &V) || parse_word(&p, " merges ") || parse_num(&p, &M) || *p) {
        snprintf(why, whylen, "expected the header '%s %d vocab V merges M'", BPE_FORMAT,
                 BPE_VERSION);
        return -1;
    }
    if (ver != BPE_VERSION) {
        snprintf(why, whylen, "unsupported format version %ld (expected %d)", ver, BPE_VERSION);
        return -1;
    }
    if (V < 256 || V > BPE_MAX_VOCAB || V != 256 + M) {
        snprintf(why, whylen, "vocab %ld must equal 256 + merges (%ld) and be at most %d",
                 V, M, BPE_MAX_VOCAB);
        return -1;
    }
    return M;
}

/* Reads the merge lines after the header; returns the count read or -1. */
static long read_merges(FILE *fp, long M, uint16_t (*pairs)[2], long *lineno,
                        char *why, size_t whylen) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long i = 0;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        ++*lineno;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        const char *p = line;
        long a, b;
        if (i >= M) {
            snprintf(why, whylen, "more merges than the header's %ld", M);
            goto fail;
        }
        if (parse_num(&p, &a) || parse_word(&p, " ") || parse_num(&p, &b) || *p) {
            snprintf(why, whylen, "expected two token ids 'A B'");
            goto fail;
        }
        if (a >= 256 + i || b >= 256 + i) {
            snprintf(why, whylen, "token %ld is not defined before merge %ld (it makes "
                     "token %ld)", a >= 256 + i ? a : b, i, 256 + i);
            goto fail;
        }
        pairs[i][0] = (uint16_t)a;
        pairs[i][1] = (uint16_t)b;
        i++;
    }
    free(line);
    if (i < M) {
        ++*lineno;
        snprintf(why, whylen, "file ends after %ld of the header's %ld merges", i, M);
        return -1;
    }
    return i;
fail:
    free(line);
    return -1;
}

Bpe *bpe_load(const char *path, char *err, size_t errlen) {
    struct stat st;
    char why[256];
    int fd = open_regular(path, &st, why, sizeof why);   /* a directory or FIFO: said so */
    FILE *fp = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!fp) {
        if (fd >= 0) { snprintf(why, sizeof why, "cannot open: %s", strerror(errno)); close(fd); }
        snprintf(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 1, M = -1;
    ssize_t got = getline(&line, &cap, fp);
    if (got < 0) {
        snprintf(why, sizeof why, "empty file: expected the header '%s %d vocab V merges M'",
                 BPE_FORMAT, BPE_VERSION);
    } else {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        M = parse_header(line, why, sizeof why);
    }
    free(line);
    Bpe *b = NULL;
    if (M >= 0) {
        uint16_t (*pairs)[2] = xmalloc(((size_t)M + 1) * sizeof *pairs);
        if (read_merges(fp, M, pairs, &lineno, why, sizeof why) == M) {
            int bad = 0;
            b = build(&pairs[0][0], (int)M, &bad, why, sizeof why);
            if (!b) lineno = 2 + bad;
        }
        free(pairs);
    }
    fclose(fp);
    if (!b) snprintf(err, errlen, "%s:%ld: %s", path, lineno, why);
    return b;
}

/* ----------------------------------------------------- the chunk counter */

struct BpeCounter { ChunkMap map; int64_t total; };

BpeCounter *bpe_counter_new(void) { return xcalloc(1, sizeof(BpeCounter)); }

void bpe_counter_free(BpeCounter *c) {
    if (!c) return;
    chunkmap_free(&c->map);
    free(c);
}

void bpe_counter_add(BpeCounter *c, const uint8_t *text, size_t len) {
    size_t p = 0;
    while (p < len) {
        size_t e = bpe_next_chunk(text, len, p);
        int added;
        size_t k = chunkmap_get(&c->map, text + p, e - p, &added);  /* may move ent */
        c->map.ent[k].value++;
        c->total++;
        p = e;
    }
}

size_t bpe_counter_unique(const BpeCounter *c) { return c->map.n; }
int64_t bpe_counter_total(const BpeCounter *c) { return c->total; }

const uint8_t *bpe_counter_chunk(const BpeCounter *c, size_t i, size_t *len, int64_t *count) {
    *len = c->map.ent[i].len;
    *count = c->map.ent[i].value;
    return c->map.bytes + c->map.ent[i].off;
}

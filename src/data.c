/* data.c — token shards (llm.c layout) and the global-batch sampler.
 *
 * Shards are read with pread, one window at a time, never held in memory,
 * so a corpus larger than RAM trains; they are not mmap'd, because a shard
 * truncated under a running job would turn a read of the mapping into
 * SIGBUS, and every read checks the file is still the one validated. Every size and offset is
 * 64-bit. The sampler keeps no state: the window of any global sequence is
 * computed from (seed, epoch, index) alone, which is what makes the global
 * batch independent of the rank count and of resumption (docs/data.md). */
#include "data.h"
#include "rng.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES ((int64_t)SHARD_HEADER_INTS * 4)

/* ---------------------------------------------------------------- shards */

/* The header count is read as unsigned 32-bit: llm.c writes non-negative
 * int32 counts, and reading them unsigned lets one shard hold up to
 * 2^32 - 1 tokens (8 GiB) without changing the layout. */
static int check_header(const char *path, const int32_t *h, int64_t file_bytes,
                        int64_t *count, char *err, size_t errlen) {
    if (h[0] != SHARD_MAGIC) {
        snprintf(err, errlen, "%s: bad magic %d (expected %d): not a token shard",
                 path, h[0], SHARD_MAGIC);
        return -1;
    }
    if (h[1] != SHARD_VERSION) {
        snprintf(err, errlen, "%s: unsupported shard version %d (expected %d)",
                 path, h[1], SHARD_VERSION);
        return -1;
    }
    int64_t n = (int64_t)(uint32_t)h[2];
    int64_t want = HEADER_BYTES + 2 * n;
    if (n == 0) {
        snprintf(err, errlen, "%s: shard holds no tokens (header count 0)", path);
        return -1;
    }
    if (file_bytes < want) {
        snprintf(err, errlen, "%s: truncated: header says %lld tokens (%lld bytes) "
                 "but the file has %lld bytes", path, (long long)n, (long long)want,
                 (long long)file_bytes);
        return -1;
    }
    if (file_bytes > want) {
        snprintf(err, errlen, "%s: header says %lld tokens (%lld bytes) but the file "
                 "has %lld bytes: %lld bytes of trailing data", path, (long long)n,
                 (long long)want, (long long)file_bytes, (long long)(file_bytes - want));
        return -1;
    }
    *count = n;
    return 0;
}

/* Find the first token >= V. A branch-free max pass first (vectorises) so
 * that the common, valid case runs at memory speed. `base` is the position
 * of t[0] in the shard (for the message). */
static int check_tokens(const char *path, const uint16_t *t, int64_t n, int64_t base, int V,
                        char *err, size_t errlen) {
    if (V <= 0 || V > 65535) return 0;    /* 0 = skip; 65536 admits every uint16 */
    const int64_t block = 1 << 16;
    for (int64_t start = 0; start < n; start += block) {
        int64_t end = start + block < n ? start + block : n;
        uint16_t mx = 0;
        for (int64_t i = start; i < end; i++) mx = t[i] > mx ? t[i] : mx;
        if (mx < V) continue;
        for (int64_t i = start; i < end; i++) {
            if (t[i] >= V) {
                snprintf(err, errlen, "%s: token %u at position %lld is >= the vocabulary "
                         "size %d", path, t[i], (long long)(base + i), V);
                return -1;
            }
        }
    }
    return 0;
}

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* pread exactly n bytes at off; -1 on error or end of file (errno 0). */
static int pread_full(int fd, void *buf, size_t n, int64_t off) {
    char *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) { if (got == 0) errno = 0; return -1; }
        p += got; n -= (size_t)got; off += got;
    }
    return 0;
}

int shard_read(const Shard *sh, int64_t first, int64_t n, uint16_t *out, char *err, size_t errlen) {
    struct stat st;
    if (fstat(sh->fd, &st) != 0 || (int64_t)st.st_size != sh->bytes || mtime_ns(&st) != sh->mtime_ns)
        return fail_msg(err, errlen, "%s: the shard changed while in use (%lld bytes when opened, "
                        "%lld now, or rewritten in place): restore it or restart the job",
                        sh->path, (long long)sh->bytes, (long long)st.st_size);
    if (first < 0 || n < 0 || first + n > sh->count)
        return fail_msg(err, errlen, "%s: internal error: tokens %lld..%lld of %lld", sh->path,
                        (long long)first, (long long)(first + n), (long long)sh->count);
    if (pread_full(sh->fd, out, (size_t)n * 2, HEADER_BYTES + 2 * first) != 0)
        return fail_msg(err, errlen, "%s: cannot read tokens %lld..%lld: %s", sh->path,
                        (long long)first, (long long)(first + n),
                        errno ? strerror(errno) : "the file is shorter than when it was opened");
    return check_tokens(sh->path, out, n, first, sh->V, err, errlen);
}

/* Every token once: < V, and the CRC that goes into the set's fingerprint. */
static int validate_tokens(Shard *sh, char *err, size_t errlen) {
    const int64_t block = sh->count < (1 << 19) ? sh->count : 1 << 19;
    uint16_t *buf = xmalloc((size_t)block * sizeof *buf);
    uint32_t crc = 0;
    int rc = 0;
    for (int64_t at = 0; at < sh->count && rc == 0; at += block) {
        int64_t n = sh->count - at < block ? sh->count - at : block;
        rc = shard_read(sh, at, n, buf, err, errlen);
        if (rc == 0) crc = crc32_update(crc, buf, (size_t)n * 2);
    }
    free(buf);
    sh->crc = crc;
    return rc;
}

static int shard_open(Shard *sh, const char *path, int V, char *err, size_t errlen) {
    memset(sh, 0, sizeof *sh);
    sh->fd = -1;
    snprintf(sh->path, sizeof sh->path, "%s", path);
    struct stat st;
    char why[256];
    int fd = open_regular(path, &st, why, sizeof why);   /* a FIFO is refused, not waited on */
    if (fd < 0) return fail_msg(err, errlen, "%s: %s", path, why);
    int64_t bytes = (int64_t)st.st_size;
    int32_t header[SHARD_HEADER_INTS];
    int64_t n = 0;
    if (bytes == 0) {
        snprintf(err, errlen, "%s: empty file: not a token shard", path);
    } else if (bytes < HEADER_BYTES) {
        snprintf(err, errlen, "%s: truncated header: %lld bytes, a shard header has %lld",
                 path, (long long)bytes, (long long)HEADER_BYTES);
    } else if (pread_full(fd, header, sizeof header, 0) != 0) {
        snprintf(err, errlen, "%s: cannot read the header: %s", path,
                 errno ? strerror(errno) : "the file shrank");
    } else if (check_header(path, header, bytes, &n, err, errlen) == 0) {
        sh->fd = fd;
        sh->count = n;
        sh->V = V;
        sh->bytes = bytes;
        sh->mtime_ns = mtime_ns(&st);
        if (validate_tokens(sh, err, errlen) == 0) return 0;
        sh->fd = -1;
    }
    close(fd);
    return -1;
}

static int has_glob_chars(const char *s) { return strpbrk(s, "*?[") != NULL; }

int tokenset_open(TokenSet *ts, const char *glob_pattern, int V, char *err, size_t errlen) {
    memset(ts, 0, sizeof *ts);
    snprintf(ts->pattern, sizeof ts->pattern, "%s", glob_pattern);
    glob_t g;
    int rc = glob(glob_pattern, GLOB_ERR, NULL, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        if (has_glob_chars(glob_pattern))
            snprintf(err, errlen, "%s: no files match this pattern", glob_pattern);
        else
            snprintf(err, errlen, "%s: cannot open: %s", glob_pattern, strerror(ENOENT));
        if (rc == 0) globfree(&g);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot list the files of this pattern", glob_pattern);
        return -1;
    }
    ts->shards = xcalloc(g.gl_pathc, sizeof *ts->shards);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (shard_open(&ts->shards[i], g.gl_pathv[i], V, err, errlen) != 0) {
            globfree(&g);
            tokenset_close(ts);
            return -1;
        }
        ts->n_shards++;
        ts->total_tokens += ts->shards[i].count;
        uint64_t h = ts->fingerprint ^ ((uint64_t)ts->shards[i].crc << 32 ^ (uint64_t)ts->shards[i].count);
        ts->fingerprint = hash64(h + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
    }
    globfree(&g);
    return 0;
}

void tokenset_close(TokenSet *ts) {
    for (int i = 0; i < ts->n_shards; i++)
        if (ts->shards[i].fd >= 0) close(ts->shards[i].fd);
    free(ts->shards);
    ts->shards = NULL;
    ts->n_shards = 0;
    ts->total_tokens = 0;
}

int shard_write(const char *path, const uint16_t *tokens, int64_t count, char *err, size_t errlen) {
    if (count <= 0 || count > (int64_t)UINT32_MAX) {
        snprintf(err, errlen, "%s: cannot write a shard of %lld tokens (1 to %u per shard)",
                 path, (long long)count, UINT32_MAX);
        return -1;
    }
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = SHARD_MAGIC;
    header[1] = SHARD_VERSION;
    uint32_t n32 = (uint32_t)count;
    memcpy(&header[2], &n32, sizeof n32);
    AtomicFile af;
    if (atomic_open(&af, path) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    if (write_all(af.fp, header, sizeof header) != 0 ||
        write_all(af.fp, tokens, (size_t)count * sizeof *tokens) != 0)
        return atomic_finish(&af, 1, err, errlen);
    return atomic_finish(&af, 0, err, errlen);
}

/* --------------------------------------------------------------- windows */

int64_t shard_windows(int64_t count, int T) {
    /* window w covers tokens [w*T, w*T + T]; it fits iff w*T + T + 1 <= count */
    if (T <= 0 || count < (int64_t)T + 1) return 0;
    return (count - 1) / T;
}

int64_t tokenset_windows(const TokenSet *ts, int T) {
    int64_t n = 0;
    for (int i = 0; i < ts->n_shards; i++) n += shard_windows(ts->shards[i].count, T);
    return n;
}

int heldout_check(const TokenSet *ts, int T, int n_seq, char *err, size_t errlen) {
    int64_t have = tokenset_windows(ts, T);
    if (n_seq <= 0 || have >= n_seq) return 0;
    snprintf(err, errlen, "%s: the held-out set needs %d windows of %d tokens but the "
             "shards (%lld tokens in %d files) hold %lld", ts->pattern, n_seq, T + 1,
             (long long)ts->total_tokens, ts->n_shards, (long long)have);
    return -1;
}

/* Copies window w of the set (in shard order) by walking the shards; used
 * only by heldout_fill, whose windows are few and consecutive. */
int heldout_fill(const TokenSet *ts, int T, int n_seq, uint16_t *out, char *err, size_t errlen) {
    int64_t total = tokenset_windows(ts, T);
    int shard = 0;
    int64_t local = 0;
    for (int i = 0; i < n_seq; i++) {
        uint16_t *row = out + (size_t)i * (size_t)(T + 1);
        if (total == 0) {                 /* caller skipped heldout_check */
            memset(row, 0, (size_t)(T + 1) * sizeof *row);
            continue;
        }
        if (i > 0 && i % total == 0) { shard = 0; local = 0; }  /* wrap around */
        while (local >= shard_windows(ts->shards[shard].count, T)) { shard++; local = 0; }
        if (shard_read(&ts->shards[shard], local * T, T + 1, row, err, errlen) != 0) return -1;
        local++;
    }
    return 0;
}

/* --------------------------------------------------------------- sampler */

int build_sampler(Sampler *s, const TokenSet *ts, int T, int B, SamplerKind kind,
                  uint64_t seed, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (T <= 0 || B <= 0) {
        snprintf(err, errlen, "%s: invalid sampler shape T=%d B=%d", ts->pattern, T, B);
        return -1;
    }
    s->ts = ts; s->T = T; s->B = B; s->kind = kind; s->seed = seed;
    s->shard_first_window = xcalloc((size_t)ts->n_shards + 1, sizeof(int64_t));
    for (int i = 0; i < ts->n_shards; i++)
        s->shard_first_window[i + 1] = s->shard_first_window[i] +
                                       shard_windows(ts->shards[i].count, T);
    s->n_windows = s->shard_first_window[ts->n_shards];
    if (s->n_windows < B) {
        snprintf(err, errlen, "%s: corpus smaller than one batch: %lld tokens in %d files "
                 "hold %lld windows of %d tokens, a batch needs B=%d", ts->pattern,
                 (long long)ts->total_tokens, ts->n_shards, (long long)s->n_windows,
                 T + 1, B);
        free_sampler(s);
        return -1;
    }
    return 0;
}

void free_sampler(Sampler *s) {
    free(s->shard_first_window);
    s->shard_first_window = NULL;
    s->n_windows = 0;
}

/* A balanced Feistel network on 2*half bits is a bijection of
 * [0, 2^(2*half)) for any round function; cycle walking (re-applying it
 * until the value falls below W) restricts it to a bijection of [0, W).
 * The domain is at most 4W, so the expected walk is under 4 steps. */
#define FEISTEL_ROUNDS 6

static uint64_t feistel(uint64_t x, int half, const uint64_t *keys) {
    uint64_t mask = (half >= 64) ? ~0ull : ((1ull << half) - 1);
    uint64_t L = x >> half, R = x & mask;
    for (int r = 0; r < FEISTEL_ROUNDS; r++) {
        uint64_t F = hash64(R ^ keys[r]) & mask;
        uint64_t nl = R;
        R = L ^ F;
        L = nl;
    }
    return (L << half) | R;
}

int64_t sampler_permute(uint64_t seed, int64_t epoch, int64_t i, int64_t W) {
    if (W <= 1) return 0;
    i %= W;                               /* callers pass g mod W; cycle walking needs i < W */
    if (i < 0) i += W;
    int bits = 2;
    while (bits < 64 && (1ull << bits) < (uint64_t)W) bits++;
    bits += bits & 1;                     /* balanced halves */
    uint64_t keys[FEISTEL_ROUNDS];
    uint64_t base = hash64(seed ^ hash64((uint64_t)epoch + 0x6A09E667F3BCC909ull));
    for (int r = 0; r < FEISTEL_ROUNDS; r++)
        keys[r] = hash64(base + (uint64_t)r * 0x9E3779B97F4A7C15ull);
    uint64_t x = (uint64_t)i;
    do x = feistel(x, bits / 2, keys); while (x >= (uint64_t)W);
    return (int64_t)x;
}

int64_t sampler_window(const Sampler *s, int64_t g) {
    int64_t W = s->n_windows;
    int64_t epoch = g / W, i = g % W;
    if (s->kind == SAMPLER_SEQUENTIAL) return i;
    return sampler_permute(s->seed, epoch, i, W);
}

void sampler_locate(const Sampler *s, int64_t w, int *shard, int64_t *offset) {
    int lo = 0, hi = s->ts->n_shards - 1;  /* last shard whose first window <= w */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (s->shard_first_window[mid] <= w) lo = mid; else hi = mid - 1;
    }
    *shard = lo;
    *offset = (w - s->shard_first_window[lo]) * (int64_t)s->T;
}

int sampler_fill(const Sampler *s, int64_t step, int first, int count, uint16_t *out,
                 char *err, size_t errlen) {
    size_t row_len = (size_t)s->T + 1;
    for (int i = 0; i < count; i++) {
        int64_t g = step * (int64_t)s->B + first + i;
        int shard;
        int64_t off;
        sampler_locate(s, sampler_window(s, g), &shard, &off);
        if (shard_read(&s->ts->shards[shard], off, (int64_t)row_len, out + (size_t)i * row_len,
                       err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* ncout_journal.c — the write-ahead journal of the dataset writer.
 *
 * PATH.journal = header + frames. Header (32 bytes): "RSNCJRN2", version,
 * the dataset's random id (PATH carries the same id, so a journal left over
 * from a replaced dataset is recognised and ignored), CRC-32 of the above.
 * Frame: magic, type, flags (1 = payload deflated), stored and raw payload
 * lengths, sequence number, payload, CRC-32 of all that, zero padding to a
 * multiple of 8 (so decoded arrays stay aligned). PATH records the sequence
 * number of the last frame it holds. Fields are native-endian: a journal is
 * read back by the next open of the same job, on the same architecture.
 * A frame is valid only when complete with a matching CRC; reading stops at
 * the first invalid one (the tail torn by a kill). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "ncout_impl.h"
#include "util.h"

#define FRAME_MAGIC 0x324A5352u      /* "RSJ2" */
#define JOURNAL_MAGIC "RSNCJRN2"
#define JOURNAL_VERSION 1u
#define DEFLATE_MIN 16384            /* smaller payloads are not worth deflating */

/* ---- byte buffers ---- */

static void bytes_reserve(Bytes *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) die("out of memory growing a buffer to %zu bytes", cap);
    b->p = p;
    b->cap = cap;
}

void bytes_put(Bytes *b, const void *src, size_t n) {
    bytes_reserve(b, n);
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}
void bytes_put_u32(Bytes *b, uint32_t v) { bytes_put(b, &v, 4); }
void bytes_put_u64(Bytes *b, uint64_t v) { bytes_put(b, &v, 8); }
void bytes_put_f64(Bytes *b, double v) { bytes_put(b, &v, 8); }
void bytes_pad8(Bytes *b) {
    static const unsigned char zero[8] = {0};
    bytes_put(b, zero, (8 - b->len % 8) % 8);
}
void bytes_free(Bytes *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

const void *cur_take(Cursor *c, size_t n) {
    if (c->bad || n > c->n - c->off) { c->bad = 1; return NULL; }
    const void *p = c->p + c->off;
    c->off += n;
    return p;
}
uint32_t cur_u32(Cursor *c) {
    uint32_t v = 0;
    const void *p = cur_take(c, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}
uint64_t cur_u64(Cursor *c) {
    uint64_t v = 0;
    const void *p = cur_take(c, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}
double cur_f64(Cursor *c) {
    double v = 0;
    const void *p = cur_take(c, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}
/* ---- record codecs (layouts in docs/dataset.md, "Journal") ---- */

static void put_layer_usage(Bytes *o, const LayerMetrics *m) {
    bytes_put_f64(o, m->token_use_mean);
    bytes_put_f64(o, m->seq_use_mean);
    bytes_put_f64(o, m->batch_use);
    bytes_put(o, m->token_use_q, sizeof m->token_use_q);
    bytes_put(o, m->seq_use_q, sizeof m->seq_use_q);
}

static void get_layer_usage(Cursor *c, LayerMetrics *m) {
    m->token_use_mean = cur_f64(c);
    m->seq_use_mean = cur_f64(c);
    m->batch_use = cur_f64(c);
    for (int q = 0; q < NUM_QUANTILES; q++) m->token_use_q[q] = cur_f64(c);
    for (int q = 0; q < NUM_QUANTILES; q++) m->seq_use_q[q] = cur_f64(c);
}

void encode_step(Bytes *o, const StepRecord *r) {
    bytes_put_u32(o, (uint32_t)r->run);
    bytes_put_u32(o, (uint32_t)r->L);
    bytes_put_u64(o, (uint64_t)r->step);
    bytes_put_u64(o, (uint64_t)r->tokens_seen);
    double d[4] = {r->loss, r->lr, r->grad_norm, r->step_time};
    bytes_put(o, d, sizeof d);
    for (int l = 0; l < r->L; l++) {
        const LayerMetrics *m = &r->layers[l];
        put_layer_usage(o, m);
        bytes_put_f64(o, m->dead_frac);
        bytes_put_u32(o, (uint32_t)m->turned_off);
        bytes_put_u32(o, (uint32_t)m->revived);
    }
}

int decode_step(const Frame *f, StepRecord *r) {
    Cursor c = {f->payload, f->len, 0, 0};
    r->run = (int)cur_u32(&c);
    r->L = (int)cur_u32(&c);
    if (r->L < 1 || r->L > MAX_LAYERS) return -1;
    r->step = (int64_t)cur_u64(&c);
    r->tokens_seen = (int64_t)cur_u64(&c);
    r->loss = cur_f64(&c);
    r->lr = cur_f64(&c);
    r->grad_norm = cur_f64(&c);
    r->step_time = cur_f64(&c);
    for (int l = 0; l < r->L; l++) {
        LayerMetrics *m = &r->layers[l];
        get_layer_usage(&c, m);
        m->dead_frac = cur_f64(&c);
        m->turned_off = (int32_t)cur_u32(&c);
        m->revived = (int32_t)cur_u32(&c);
    }
    return c.bad || c.off != c.n ? -1 : 0;
}

void encode_eval(Bytes *o, const EvalRecord *r) {
    int topk = r->singular_values ? r->topk : 0;
    bytes_put_u32(o, (uint32_t)r->run);
    bytes_put_u32(o, (uint32_t)r->L);
    bytes_put_u32(o, (uint32_t)topk);
    bytes_put_u32(o, 0);
    bytes_put_u64(o, (uint64_t)r->step);
    bytes_put_u64(o, (uint64_t)r->tokens);
    bytes_put_f64(o, r->loss);
    for (int l = 0; l < r->L; l++) {
        put_layer_usage(o, &r->layers[l]);
        double s[4] = {r->eff_rank[l], r->participation[l], r->stable_rank_fc[l],
                       r->stable_rank_proj[l]};
        bytes_put(o, s, sizeof s);
    }
    if (topk) bytes_put(o, r->singular_values, (size_t)r->L * topk * sizeof(double));
}

int decode_eval(const Frame *f, EvalRecord *r) {
    Cursor c = {f->payload, f->len, 0, 0};
    r->run = (int)cur_u32(&c);
    r->L = (int)cur_u32(&c);
    r->topk = (int)cur_u32(&c);
    cur_u32(&c);
    if (r->L < 1 || r->L > MAX_LAYERS || r->topk < 0 || r->topk > 65536) return -1;
    r->step = (int64_t)cur_u64(&c);
    r->tokens = (int64_t)cur_u64(&c);
    r->loss = cur_f64(&c);
    for (int l = 0; l < r->L; l++) {
        get_layer_usage(&c, &r->layers[l]);
        r->eff_rank[l] = cur_f64(&c);
        r->participation[l] = cur_f64(&c);
        r->stable_rank_fc[l] = cur_f64(&c);
        r->stable_rank_proj[l] = cur_f64(&c);
    }
    /* 8-aligned: the payload is, and everything before is 8-byte fields */
    r->singular_values = r->topk ? (double *)cur_take(&c, (size_t)r->L * r->topk * 8) : NULL;
    return c.bad || c.off != c.n ? -1 : 0;
}

void encode_snapshot(Bytes *o, const SnapshotRecord *r) {
    size_t n = (size_t)r->L * r->F;
    bytes_put_u32(o, (uint32_t)r->run);
    bytes_put_u32(o, (uint32_t)r->L);
    bytes_put_u32(o, (uint32_t)r->F);
    bytes_put_u32(o, 0);
    bytes_put_u64(o, (uint64_t)r->step);
    bytes_put_u64(o, (uint64_t)r->tokens_since);
    bytes_put(o, r->fires_since, n * 8);
    bytes_put(o, r->last_fire, n * 8);
    const float *f[5] = {r->premax, r->premean, r->b_in, r->fc_norm, r->proj_norm};
    for (int i = 0; i < 5; i++) bytes_put(o, f[i], n * 4);
}

int decode_snapshot(const Frame *f, SnapshotRecord *r) {
    Cursor c = {f->payload, f->len, 0, 0};
    r->run = (int)cur_u32(&c);
    r->L = (int)cur_u32(&c);
    r->F = (int)cur_u32(&c);
    cur_u32(&c);
    if (r->L < 1 || r->L > MAX_LAYERS || r->F < 1) return -1;
    r->step = (int64_t)cur_u64(&c);
    r->tokens_since = (int64_t)cur_u64(&c);
    size_t n = (size_t)r->L * r->F;
    r->fires_since = (int64_t *)cur_take(&c, n * 8);
    r->last_fire = (int64_t *)cur_take(&c, n * 8);
    float **p[5] = {&r->premax, &r->premean, &r->b_in, &r->fc_norm, &r->proj_norm};
    for (int i = 0; i < 5; i++) *p[i] = (float *)cur_take(&c, n * 4);
    return c.bad || c.off != c.n ? -1 : 0;
}

/* ---- frames ---- */

void frame_append(Bytes *b, int type, uint64_t seq, const Bytes *payload) {
    const unsigned char *data = payload->p;
    size_t stored = payload->len;
    unsigned char *packed = NULL;
    uint32_t flags = 0;
    if (payload->len >= DEFLATE_MIN) {
        uLongf cap = compressBound((uLong)payload->len);
        packed = xmalloc(cap);
        /* level 1: a snapshot is deflated in a few ms, about 2x smaller */
        if (compress2(packed, &cap, payload->p, (uLong)payload->len, 1) == Z_OK &&
            cap < payload->len) {
            data = packed;
            stored = cap;
            flags = 1;
        }
    }
    size_t start = b->len;
    uint32_t head[4] = {FRAME_MAGIC, (uint32_t)type | flags << 8, (uint32_t)stored,
                        (uint32_t)payload->len};
    bytes_put(b, head, sizeof head);
    bytes_put_u64(b, seq);
    bytes_put(b, data, stored);
    bytes_put_u32(b, crc32_update(0, b->p + start, b->len - start));
    bytes_pad8(b);
    free(packed);
}

/* One frame at p[0..n): 1 ok (*size = its bytes), 0 incomplete, -1 corrupt. */
static int frame_read(const unsigned char *p, size_t n, Frame *f, size_t *size) {
    uint32_t head[4];
    if (n < FRAME_HEAD) return 0;
    memcpy(head, p, sizeof head);
    int type = (int)(head[1] & 0xff), flags = (int)(head[1] >> 8);
    if (head[0] != FRAME_MAGIC || type < FR_STEP || type > FR_HISTORY || flags > 1 ||
        (!flags && head[2] != head[3]))
        return -1;
    size_t total = ((size_t)FRAME_HEAD + head[2] + 4 + 7) / 8 * 8;
    if (total > n) return 0;
    uint32_t crc;
    memcpy(&crc, p + FRAME_HEAD + head[2], 4);
    if (crc != crc32_update(0, p, FRAME_HEAD + (size_t)head[2])) return -1;
    memset(f, 0, sizeof *f);
    f->type = type;
    memcpy(&f->seq, p + 16, 8);
    f->len = head[3];
    f->payload = p + FRAME_HEAD;
    if (flags) {
        uLongf raw = head[3];
        f->owned = xmalloc(raw ? raw : 1);
        if (uncompress(f->owned, &raw, p + FRAME_HEAD, head[2]) != Z_OK || raw != head[3]) {
            free(f->owned);
            return -1;
        }
        f->payload = f->owned;
    }
    *size = total;
    return 1;
}

int frames_parse(const unsigned char *p, size_t n, Frame **out, size_t *used, int *corrupt) {
    int count = 0, cap = 64;
    Frame *f = xmalloc((size_t)cap * sizeof *f);
    size_t off = 0, size = 0;
    int rc;
    while ((rc = frame_read(p + off, n - off, &f[count], &size)) == 1) {
        off += size;
        if (++count == cap) {
            f = realloc(f, (size_t)(cap *= 2) * sizeof *f);
            if (!f) die("out of memory reading journal frames");
        }
    }
    *out = f;
    *used = off;
    if (corrupt) *corrupt = rc < 0;
    return count;
}

void frames_free(Frame *f, int n) {
    for (int i = 0; i < n; i++) free(f[i].owned);
    free(f);
}

/* ---- the journal file ---- */

static int write_fd_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { if (w == 0) errno = EIO; return -1; }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_fd_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { if (r == 0) errno = EIO; return -1; }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int journal_create(const char *jpath, uint64_t dataset_id, char *err, size_t errlen) {
    unsigned char head[32] = {0};
    uint32_t version = JOURNAL_VERSION;
    memcpy(head, JOURNAL_MAGIC, 8);
    memcpy(head + 8, &version, 4);
    memcpy(head + 16, &dataset_id, 8);
    uint32_t crc = crc32_update(0, head, 24);
    memcpy(head + 24, &crc, 4);
    char tmp[RS_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", jpath, (long)getpid());
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_fd_all(fd, head, sizeof head) != 0 || fsync(fd) != 0 ||
        rename(tmp, jpath) != 0) {
        snprintf(err, errlen, "%s: cannot write the journal: %s", jpath, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        return -1;
    }
    fsync_dir_of(jpath);
    return fd;
}

int journal_read_head(int fd, const char *jpath, uint64_t *dataset_id, uint64_t *data_start,
                      char *err, size_t errlen) {
    unsigned char head[32];
    uint32_t version, crc;
    if (lseek(fd, 0, SEEK_SET) != 0 || read_fd_all(fd, head, sizeof head) != 0 ||
        memcmp(head, JOURNAL_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a reluscope journal (bad or short header)", jpath);
        return -1;
    }
    memcpy(&version, head + 8, 4);
    memcpy(&crc, head + 24, 4);
    if (version != JOURNAL_VERSION || crc != crc32_update(0, head, 24)) {
        snprintf(err, errlen, "%s: damaged journal header (version %u, CRC mismatch)", jpath,
                 version);
        return -1;
    }
    memcpy(dataset_id, head + 16, 8);
    *data_start = sizeof head;
    return 0;
}

int journal_append(int fd, const char *jpath, const Bytes *b, char *err, size_t errlen) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end >= 0 && write_fd_all(fd, b->p, b->len) == 0) return 0;
    int saved = errno;
    /* a partial frame must not sit before the frames of a later attempt */
    if (end >= 0 && ftruncate(fd, end) == 0) lseek(fd, end, SEEK_SET);
    snprintf(err, errlen, "%s: cannot append %zu bytes of records: %s", jpath, b->len,
             strerror(saved));
    return -1;
}

/* ---- whole-file copies (the working copy) ---- */

int copy_file(const char *src, const char *dst, char *err, size_t errlen) {
    char tmp[RS_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dst, (long)getpid());
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", src, strerror(errno));
        return -1;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t cap = 1 << 20;
    unsigned char *buf = xmalloc(cap);
    int read_failed = 0, ok = out >= 0;
    ssize_t r;
    while (ok && (r = read(in, buf, cap)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { read_failed = 1; ok = 0; break; }
        if (write_fd_all(out, buf, (size_t)r) != 0) { ok = 0; break; }
    }
    int saved = errno;
    free(buf);
    close(in);
    if (ok && fsync(out) != 0) { ok = 0; saved = errno; }
    if (out >= 0 && close(out) != 0 && ok) { ok = 0; saved = errno; }
    if (ok && rename(tmp, dst) != 0) { ok = 0; saved = errno; }
    if (!ok) {
        if (read_failed) snprintf(err, errlen, "%s: cannot read: %s", src, strerror(saved));
        else snprintf(err, errlen, "%s: cannot write a copy of %s: %s", dst, src, strerror(saved));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ncout_journal.c — the write-ahead journal of the dataset writer.
 *
 * PATH.journal = header + frames. Header (32 bytes): "RSNCJRN2", version,
 * the fingerprint of the output-variable table the payloads were encoded
 * with (record_table_fingerprint), the dataset's random id (PATH carries the same id, so a journal left over
 * from a replaced dataset is recognised and ignored), CRC-32 of the above.
 * Frame: magic, type, flags (1 = payload deflated), stored and raw payload
 * lengths, sequence number, payload, CRC-32 of all that, zero padding to a
 * multiple of 8 (so decoded arrays stay aligned). PATH records the sequence
 * number of the last frame it holds. Fields are native-endian: a journal is
 * read back by the next open of the same job, on the same architecture.
 * A frame is valid only when complete with a matching CRC. An incomplete
 * last frame is the tail torn by a kill; a damaged frame with valid ones
 * after it is found again by frame_resync (ncout_update.c decides whether
 * to go on). The header is rewritten never; the frames are cut back to
 * none (journal_reset) once the file named PATH holds them all. */
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
#define JOURNAL_VERSION 2u          /* 2: records encoded by record.h, table fingerprint */
#define DEFLATE_MIN 16384            /* smaller payloads are not worth deflating */

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

size_t frame_resync(const unsigned char *p, size_t n, size_t from, int at_eof, int *found) {
    size_t off = from;
    *found = 0;
    for (; off < n; off += 8) {
        Frame f;
        size_t size;
        int r = frame_read(p + off, n - off, &f, &size);
        if (r == 1) {
            free(f.owned);
            *found = 1;
            return off;
        }
        if (r == 0 && !at_eof) return off;      /* may be a frame: wait for its bytes */
    }
    return n - n % 8 < off ? n - n % 8 : off;
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
    unsigned char head[JOURNAL_HEAD] = {0};
    _Static_assert(JOURNAL_HEAD == 32, "the header layout below is 32 bytes");
    uint32_t version = JOURNAL_VERSION;
    memcpy(head, JOURNAL_MAGIC, 8);
    uint32_t table = record_table_fingerprint();
    memcpy(head + 8, &version, 4);
    memcpy(head + 12, &table, 4);
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
    uint32_t version, crc, table;
    if (lseek(fd, 0, SEEK_SET) != 0 || read_fd_all(fd, head, sizeof head) != 0 ||
        memcmp(head, JOURNAL_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: not a reluscope journal (bad or short header)", jpath);
        return -1;
    }
    memcpy(&version, head + 8, 4);
    memcpy(&table, head + 12, 4);
    memcpy(&crc, head + 24, 4);
    if (crc != crc32_update(0, head, 24)) {
        snprintf(err, errlen, "%s: damaged journal header (CRC mismatch)", jpath);
        return -1;
    }
    if (version != JOURNAL_VERSION || table != record_table_fingerprint()) {
        snprintf(err, errlen, "%s: written by a reluscope with other records (journal version "
                 "%u, variable table %08x; this build: %u, %08x): resume with that build",
                 jpath, version, table, JOURNAL_VERSION, record_table_fingerprint());
        return -1;
    }
    memcpy(dataset_id, head + 16, 8);
    *data_start = sizeof head;
    return 0;
}

int journal_reset(int fd, const char *jpath, char *err, size_t errlen) {
    if (ftruncate(fd, JOURNAL_HEAD) == 0 && lseek(fd, JOURNAL_HEAD, SEEK_SET) == JOURNAL_HEAD)
        return 0;
    snprintf(err, errlen, "%s: cannot cut the journal back: %s", jpath, strerror(errno));
    return -1;
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

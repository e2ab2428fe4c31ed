/* prepare.c — `reluscope prepare`: UTF-8 text files -> token shards.
 *
 * Each input file is cut into a training head and a validation tail (the
 * last --val-fraction of its bytes, from the next line start on), so both
 * splits sample every file. The tokenizer (byte level, or BPE trained on the
 * training heads) encodes the heads into DIR/train_NNNNNN.bin and the tails
 * into DIR/val_NNNNNN.bin, in input order, and DIR/tokenizer.bpe and
 * DIR/meta.txt describe them. Everything is written into a hidden staging
 * folder inside DIR first and moved into place only when all of it
 * succeeded, so a failure leaves no partial shards. `--decode` turns shards
 * back into text (docs/data.md). */
#include "bpe.h"
#include "cli.h"
#include "data.h"
#include "util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_VOCAB 4096
#define DEFAULT_SHARD_TOKENS 100000000LL
#define ENCODE_BLOCK (1 << 20)            /* tokens per encode call */

typedef struct {
    const char *out;
    int bpe;                              /* 1 = bpe, 0 = byte */
    int vocab;                            /* -1 = not given */
    double val_fraction;
    int64_t shard_tokens;
    const char *decode;                   /* --decode GLOB */
    const char *tokenizer_file;
    int n_files;
    char **files;
} PrepareOpts;

static void usage(FILE *fp) {
    fprintf(fp,
        "usage: reluscope prepare --out DIR [options] FILE...\n"
        "       reluscope prepare --decode SHARD_GLOB [--tokenizer-file FILE]\n"
        "\n"
        "Turn UTF-8 text files into token shards (llm.c layout) with a train/val split.\n"
        "Writes DIR/train_NNNNNN.bin, DIR/val_NNNNNN.bin, DIR/tokenizer.bpe, DIR/meta.txt.\n"
        "\n"
        "  --out DIR             output folder (created if missing)\n"
        "  --tokenizer byte|bpe  byte level (vocab 256) or BPE trained on the\n"
        "                        training split (default bpe)\n"
        "  --vocab N             BPE vocabulary, 256..65536 (default %d)\n"
        "  --val-fraction F      tail of each file kept for validation, 0 <= F < 1\n"
        "                        (default 0.1; the cut moves to the next line start)\n"
        "  --shard-tokens N      tokens per shard file (default %lld)\n"
        "  --decode GLOB         print the text of these shards to stdout\n"
        "  --tokenizer-file F    merges file for --decode (default: tokenizer.bpe\n"
        "                        beside the first shard)\n"
        "  -h, --help            this help\n"
        "\n"
        "docs/data.md describes the shards, the tokenizer file and the split.\n",
        DEFAULT_VOCAB, (long long)DEFAULT_SHARD_TOKENS);
}

static void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("reluscope: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* -------------------------------------------------------------- options */

/* Value of an option given as "--name VALUE" or "--name=VALUE". */
static const char *opt_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        errorf("prepare: %s needs a value (see reluscope prepare --help)", name);
        exit(2);
    }
    return argv[++*i];
}

static int parse_option(PrepareOpts *o, int argc, char **argv, int *i) {
    const char *v;
    int64_t x;
    if ((v = opt_value(argc, argv, i, "--out"))) o->out = v;
    else if ((v = opt_value(argc, argv, i, "--decode"))) o->decode = v;
    else if ((v = opt_value(argc, argv, i, "--tokenizer-file"))) o->tokenizer_file = v;
    else if ((v = opt_value(argc, argv, i, "--tokenizer"))) {
        if (strcmp(v, "bpe") == 0) o->bpe = 1;
        else if (strcmp(v, "byte") == 0) o->bpe = 0;
        else { errorf("prepare: --tokenizer %s: expected byte or bpe", v); return -1; }
    } else if ((v = opt_value(argc, argv, i, "--vocab"))) {
        if (parse_i64(v, &x) || x < 256 || x > BPE_MAX_VOCAB) {
            errorf("prepare: --vocab %s out of range: 256 to %d (tokens are uint16)", v,
                   BPE_MAX_VOCAB);
            return -1;
        }
        o->vocab = (int)x;
    } else if ((v = opt_value(argc, argv, i, "--val-fraction"))) {
        char *end;
        o->val_fraction = strtod(v, &end);
        if (end == v || *end || !(o->val_fraction >= 0 && o->val_fraction < 1)) {
            errorf("prepare: --val-fraction %s: expected a number with 0 <= F < 1", v);
            return -1;
        }
    } else if ((v = opt_value(argc, argv, i, "--shard-tokens"))) {
        if (parse_i64(v, &x) || x < 1 || x > (int64_t)UINT32_MAX) {
            errorf("prepare: --shard-tokens %s: expected 1 to %u", v, UINT32_MAX);
            return -1;
        }
        o->shard_tokens = x;
    } else {
        errorf("prepare: unknown option %s (see reluscope prepare --help)", argv[*i]);
        return -1;
    }
    return 0;
}

/* argv[0] is the command name ("prepare"). 0 ok, 1 help shown, -1 error. */
static int parse_args(PrepareOpts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->bpe = 1;
    o->vocab = -1;
    o->val_fraction = 0.1;
    o->shard_tokens = DEFAULT_SHARD_TOKENS;
    o->files = xcalloc((size_t)argc + 1, sizeof *o->files);
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        if (only_files || argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
            o->files[o->n_files++] = argv[i];
        else if (strcmp(argv[i], "--") == 0) only_files = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (parse_option(o, argc, argv, &i) != 0) return -1;
    }
    if (o->decode) return 0;
    if (!o->out) { errorf("prepare: --out DIR is required (see reluscope prepare --help)"); return -1; }
    if (o->n_files == 0) { errorf("prepare: no input files (see reluscope prepare --help)"); return -1; }
    if (!o->bpe && o->vocab != -1 && o->vocab != 256) {
        errorf("prepare: --vocab %d needs --tokenizer bpe (the byte tokenizer has 256)", o->vocab);
        return -1;
    }
    if (o->vocab == -1) o->vocab = o->bpe ? DEFAULT_VOCAB : 256;
    return 0;
}

/* ---------------------------------------------------------- input files */

typedef struct { const uint8_t *data; size_t len; } Mapped;

static int map_input(const char *path, Mapped *m) {
    memset(m, 0, sizeof *m);
    struct stat st;
    char why[256];
    int fd = open_regular(path, &st, why, sizeof why);   /* a FIFO is refused, not waited on */
    if (fd < 0) { errorf("%s: %s", path, why); return -1; }
    if (st.st_size == 0) { errorf("%s: empty file", path); close(fd); return -1; }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) { errorf("%s: cannot mmap: %s", path, strerror(errno)); return -1; }
    madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    m->data = p;
    m->len = (size_t)st.st_size;
    return 0;
}

static void unmap_input(Mapped *m) {
    if (m->data) munmap((void *)m->data, m->len);
    m->data = NULL;
}

/* Start of the validation tail: the byte (1 - f) of the way in, moved on to
 * the start of the next line (or, without one, to a character boundary). */
static size_t split_point(const uint8_t *d, size_t n, double f) {
    if (f <= 0) return n;
    size_t s = (size_t)((double)n * (1.0 - f));
    if (s >= n) return n;
    if (s > 0 && d[s - 1] == '\n') return s;
    const uint8_t *nl = memchr(d + s, '\n', n - s);
    if (nl) return (size_t)(nl - d) + 1;
    while (s < n && (d[s] & 0xC0) == 0x80) s++;
    return s;
}

/* Pre-pass: every file exists, is a non-empty regular file, and (for BPE)
 * is valid UTF-8. Nothing is written before all inputs are known good. */
static int check_inputs(const PrepareOpts *o, int64_t *total_bytes) {
    *total_bytes = 0;
    for (int i = 0; i < o->n_files; i++) {
        Mapped m;
        if (map_input(o->files[i], &m) != 0) return -1;
        size_t bad;
        if (o->bpe && utf8_check(m.data, m.len, &bad) != 0) {
            errorf("%s: not valid UTF-8 at byte offset %zu (the BPE tokenizer needs UTF-8 "
                   "text)", o->files[i], bad);
            unmap_input(&m);
            return -1;
        }
        *total_bytes += (int64_t)m.len;
        unmap_input(&m);
    }
    return 0;
}

/* ------------------------------------------------------- shard writing */

typedef struct {
    const char *dir, *prefix;
    int64_t shard_tokens, in_shard, total;
    int n_shards, open;
    AtomicFile af;
} ShardWriter;

static int sw_close(ShardWriter *w) {
    if (!w->open) return 0;
    w->open = 0;
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = SHARD_MAGIC;
    header[1] = SHARD_VERSION;
    uint32_t n32 = (uint32_t)w->in_shard;
    memcpy(&header[2], &n32, sizeof n32);
    if (fseeko(w->af.fp, 0, SEEK_SET) != 0 || write_all(w->af.fp, header, sizeof header) != 0) {
        errorf("%s: write failed: %s", w->af.final_path, strerror(errno));
        atomic_abort(&w->af);
        return -1;
    }
    if (atomic_commit(&w->af) != 0) {
        errorf("%s: cannot commit: %s", w->af.final_path, strerror(errno));
        return -1;
    }
    w->n_shards++;
    return 0;
}

/* Append tokens, starting a new shard whenever one is full. The header is
 * written last, when the shard's count is known. */
static int sw_write(ShardWriter *w, const uint16_t *tok, size_t n) {
    while (n > 0) {
        if (!w->open) {
            char path[RS_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s_%06d.bin", w->dir, w->prefix, w->n_shards);
            int32_t zero[SHARD_HEADER_INTS] = {0};
            if (atomic_open(&w->af, path) != 0 || write_all(w->af.fp, zero, sizeof zero) != 0) {
                errorf("%s: cannot create: %s", path, strerror(errno));
                if (w->af.fp) atomic_abort(&w->af);
                return -1;
            }
            w->open = 1;
            w->in_shard = 0;
        }
        int64_t room = w->shard_tokens - w->in_shard;
        size_t k = (int64_t)n < room ? n : (size_t)room;
        if (write_all(w->af.fp, tok, k * sizeof *tok) != 0) {
            errorf("%s: write failed: %s", w->af.final_path, strerror(errno));
            atomic_abort(&w->af);
            w->open = 0;
            return -1;
        }
        w->in_shard += (int64_t)k;
        w->total += (int64_t)k;
        tok += k;
        n -= k;
        if (w->in_shard == w->shard_tokens && sw_close(w) != 0) return -1;
    }
    return 0;
}

static void sw_abort(ShardWriter *w) {
    if (w->open) atomic_abort(&w->af);
    w->open = 0;
}

static int encode_into(Bpe *b, const uint8_t *text, size_t len, uint16_t *buf, ShardWriter *w) {
    size_t pos = 0;
    while (pos < len) {
        size_t n = bpe_encode_some(b, text, len, &pos, buf, ENCODE_BLOCK);
        if (sw_write(w, buf, n) != 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- the run */

typedef struct {
    BpeTrainStats stats;
    int64_t bytes;
    ShardWriter train, val;
} PrepareResult;

/* BPE learns from the training heads only, so validation text stays unseen. */
static Bpe *make_tokenizer(const PrepareOpts *o, PrepareResult *res) {
    if (!o->bpe) return bpe_new_bytes();
    BpeCounter *c = bpe_counter_new();
    for (int i = 0; i < o->n_files; i++) {
        Mapped m;
        if (map_input(o->files[i], &m) != 0) { bpe_counter_free(c); return NULL; }
        bpe_counter_add(c, m.data, split_point(m.data, m.len, o->val_fraction));
        unmap_input(&m);
    }
    char err[512];
    Bpe *b = bpe_train(c, o->vocab, &res->stats, err, sizeof err);
    bpe_counter_free(c);
    if (!b) errorf("prepare: %s", err);
    return b;
}

static int encode_files(const PrepareOpts *o, Bpe *b, PrepareResult *res) {
    uint16_t *buf = xmalloc((size_t)ENCODE_BLOCK * sizeof *buf);
    int rc = 0;
    for (int i = 0; i < o->n_files && rc == 0; i++) {
        Mapped m;
        if (map_input(o->files[i], &m) != 0) { rc = -1; break; }
        size_t cut = split_point(m.data, m.len, o->val_fraction);
        rc = encode_into(b, m.data, cut, buf, &res->train);
        if (rc == 0) rc = encode_into(b, m.data + cut, m.len - cut, buf, &res->val);
        unmap_input(&m);
    }
    if (rc == 0) rc = sw_close(&res->train);
    if (rc == 0) rc = sw_close(&res->val);
    if (rc != 0) { sw_abort(&res->train); sw_abort(&res->val); }
    free(buf);
    return rc;
}

static int write_meta(const char *stage, const PrepareOpts *o, const Bpe *b,
                      const PrepareResult *r) {
    char path[RS_PATH_MAX];
    snprintf(path, sizeof path, "%s/meta.txt", stage);
    AtomicFile af;
    if (atomic_open(&af, path) != 0) {
        errorf("%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    fprintf(af.fp, "# reluscope prepare: token shards (docs/data.md)\n"
            "tokenizer = %s\nvocab_size = %d\nrequested_vocab = %d\n"
            "tokenizer_file = tokenizer.bpe\nval_fraction = %g\nshard_tokens = %lld\n"
            "files = %d\nbytes = %lld\ntrain_tokens = %lld\ntrain_shards = %d\n"
            "val_tokens = %lld\nval_shards = %d\n",
            o->bpe ? "bpe" : "byte", bpe_vocab(b), o->vocab, o->val_fraction,
            (long long)o->shard_tokens, o->n_files, (long long)r->bytes,
            (long long)r->train.total, r->train.n_shards, (long long)r->val.total,
            r->val.n_shards);
    if (ferror(af.fp) || atomic_commit(&af) != 0) {
        errorf("%s: write failed: %s", path, strerror(errno));
        atomic_abort(&af);
        return -1;
    }
    return 0;
}

/* Tokenize everything into the staging folder. */
static int build_stage(const char *stage, const PrepareOpts *o, PrepareResult *res) {
    Bpe *b = make_tokenizer(o, res);
    if (!b) return -1;
    res->train = (ShardWriter){ .dir = stage, .prefix = "train", .shard_tokens = o->shard_tokens };
    res->val = (ShardWriter){ .dir = stage, .prefix = "val", .shard_tokens = o->shard_tokens };
    int rc = encode_files(o, b, res);
    if (rc == 0 && res->train.total == 0) {
        errorf("%s: no training tokens: the input is too small for --val-fraction %g",
               o->files[0], o->val_fraction);
        rc = -1;
    }
    char err[512], path[RS_PATH_MAX];
    snprintf(path, sizeof path, "%s/tokenizer.bpe", stage);
    if (rc == 0 && bpe_save(b, path, err, sizeof err) != 0) { errorf("%s", err); rc = -1; }
    if (rc == 0) rc = write_meta(stage, o, b, res);
    bpe_free(b);
    return rc;
}

static void remove_stage(const char *stage) {
    DIR *d = opendir(stage);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(stage);
}

/* Move the staged files into DIR, replacing an earlier prepare's outputs,
 * and delete that run's extra shards (a glob must not find stale ones). */
static int publish(const char *stage, const char *dir, const PrepareResult *r) {
    const ShardWriter *ws[2] = { &r->train, &r->val };
    char from[RS_PATH_MAX], to[RS_PATH_MAX];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < ws[k]->n_shards; i++) {
            snprintf(from, sizeof from, "%s/%s_%06d.bin", stage, ws[k]->prefix, i);
            snprintf(to, sizeof to, "%s/%s_%06d.bin", dir, ws[k]->prefix, i);
            if (rename(from, to) != 0) goto fail;
        }
        glob_t g;
        snprintf(to, sizeof to, "%s/%s_[0-9][0-9][0-9][0-9][0-9][0-9].bin", dir, ws[k]->prefix);
        if (glob(to, 0, NULL, &g) == 0) {
            for (size_t i = (size_t)ws[k]->n_shards; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
            globfree(&g);
        }
    }
    const char *names[2] = { "tokenizer.bpe", "meta.txt" };
    for (int k = 0; k < 2; k++) {
        snprintf(from, sizeof from, "%s/%s", stage, names[k]);
        snprintf(to, sizeof to, "%s/%s", dir, names[k]);
        if (rename(from, to) != 0) goto fail;
    }
    fsync_dir_of(to);
    return 0;
fail:
    errorf("%s: cannot move %s into place: %s", to, from, strerror(errno));
    return -1;
}

static void print_summary(const PrepareOpts *o, const PrepareResult *r) {
    printf("prepare: %d file%s, %lld bytes -> %s\n", o->n_files, o->n_files == 1 ? "" : "s",
           (long long)r->bytes, o->out);
    if (o->bpe) {
        printf("prepare: bpe vocab %d (%d merges) trained in %.2f s on %lld chunks "
               "(%zu distinct)\n", 256 + r->stats.n_merges, r->stats.n_merges,
               r->stats.seconds, (long long)r->stats.total_chunks, r->stats.unique_chunks);
        if (r->stats.n_merges < o->vocab - 256)
            warn_msg("prepare: the training text supports only %d of the %d merges asked for; "
                     "vocab is %d", r->stats.n_merges, o->vocab - 256, 256 + r->stats.n_merges);
    } else {
        printf("prepare: byte tokenizer, vocab 256\n");
    }
    printf("prepare: train %lld tokens in %d shard%s, val %lld tokens in %d shard%s "
           "(val fraction %g)\n", (long long)r->train.total, r->train.n_shards,
           r->train.n_shards == 1 ? "" : "s", (long long)r->val.total, r->val.n_shards,
           r->val.n_shards == 1 ? "" : "s", o->val_fraction);
    if (o->val_fraction > 0 && r->val.total == 0)
        warn_msg("prepare: no validation tokens: every file is too short for --val-fraction %g",
                 o->val_fraction);
}

static int run_prepare(const PrepareOpts *o) {
    PrepareResult res;
    memset(&res, 0, sizeof res);
    if (strlen(o->out) > RS_PATH_MAX - 64) {
        errorf("%.64s...: output folder path too long", o->out);
        return 1;
    }
    if (check_inputs(o, &res.bytes) != 0) return 1;
    if (mkdir_p(o->out) != 0) {
        errorf("%s: cannot create the output folder: %s", o->out, strerror(errno));
        return 1;
    }
    /* heap string: paths built from it are bounded by the check above */
    size_t stage_len = strlen(o->out) + 32;
    char *stage = xmalloc(stage_len);
    snprintf(stage, stage_len, "%s/.prepare-XXXXXX", o->out);
    if (!mkdtemp(stage)) {
        errorf("%s: cannot write in the output folder: %s", o->out, strerror(errno));
        free(stage);
        return 1;
    }
    int rc = build_stage(stage, o, &res);
    if (rc == 0) rc = publish(stage, o->out, &res);
    remove_stage(stage);
    free(stage);
    if (rc != 0) return 1;
    print_summary(o, &res);
    return 0;
}

/* ---------------------------------------------------------- --decode */

static int run_decode(const PrepareOpts *o) {
    char err[RS_PATH_MAX + 512], tokfile[RS_PATH_MAX];
    glob_t g;
    if (o->tokenizer_file) {
        snprintf(tokfile, sizeof tokfile, "%s", o->tokenizer_file);
    } else if (glob(o->decode, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        char copy[RS_PATH_MAX];
        snprintf(copy, sizeof copy, "%s", g.gl_pathv[0]);
        snprintf(tokfile, sizeof tokfile, "%s/tokenizer.bpe", dirname(copy));
        globfree(&g);
    } else {
        errorf("%s: no files match this pattern", o->decode);
        return 1;
    }
    Bpe *b = bpe_load(tokfile, err, sizeof err);
    if (!b) { errorf("%s", err); return 1; }
    TokenSet ts;
    if (tokenset_open(&ts, o->decode, bpe_vocab(b), err, sizeof err) != 0) {
        errorf("%s", err);
        bpe_free(b);
        return 1;
    }
    const size_t block = 4096;
    uint8_t *buf = xmalloc(block * BPE_MAX_CHUNK);
    uint16_t *tok = xmalloc(block * sizeof *tok);
    int rc = 0;
    for (int s = 0; s < ts.n_shards && rc == 0; s++) {
        for (int64_t i = 0; i < ts.shards[s].count && rc == 0; i += (int64_t)block) {
            size_t n = ts.shards[s].count - i < (int64_t)block ? (size_t)(ts.shards[s].count - i)
                                                                : block;
            if (shard_read(&ts.shards[s], i, (int64_t)n, tok, err, sizeof err) != 0) {
                errorf("%s", err);
                rc = -2;
                break;
            }
            size_t len = bpe_decode(b, tok, n, buf, block * BPE_MAX_CHUNK);
            if (fwrite(buf, 1, len, stdout) != len) rc = -1;
        }
    }
    if (fflush(stdout) != 0 && rc == 0) rc = -1;
    if (rc == -1) errorf("prepare: --decode: cannot write to stdout: %s", strerror(errno));
    free(buf);
    free(tok);
    tokenset_close(&ts);
    bpe_free(b);
    return rc ? 1 : 0;
}

int cmd_prepare(int argc, char **argv) {
    PrepareOpts o;
    int rc = parse_args(&o, argc, argv);
    if (rc == 0) rc = o.decode ? run_decode(&o) : run_prepare(&o);
    else rc = rc > 0 ? 0 : 2;
    free(o.files);
    return rc;
}

/* checkpoint.c — atomic, checksummed checkpoints of one run.
 *
 * The byte layout is documented in docs/checkpoint.md; layout_of() below is
 * the single place that computes the offsets, so writer and reader cannot
 * disagree. A load maps the file, verifies everything (magic, version,
 * length, CRC, tensor table, size) and only then copies into the model, so a
 * bad file never leaves a half-loaded model behind. */
#include "checkpoint.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "record.h"
#include "rng.h"
#include "util.h"
#include "variant.h"

/* The format is little-endian. Header fields are packed byte by byte, but
 * the bulk arrays (floats, int64 trackers) are written straight from memory,
 * which is only correct on a little-endian host: refuse to build elsewhere
 * rather than write files other machines would misread. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes bulk arrays in host order and needs a little-endian host"
#endif

#define CKPT_MAGIC "RSCKPT01"
/* Written: version 4. Read: 1 (no `born` arrays), 2 (no identity block):
 * `eval` and fork_from read them, a resume refuses them (they cannot show
 * which run they belong to); 3 (no variant block: the SPEC §2 model). */
#define CKPT_VERSION 4u
#define HEADER_BYTES 208u    /* version 4; version 3: 192; versions 1-2: 160 */
#define IDENTITY_AT 160u     /* the run's identity block (version >= 3), see pack_identity */
#define VARIANT_AT 192u      /* the architecture variant (version 4): one u32 per
                              * variant key (variant.h) */
#define TENSOR_ENTRY_BYTES 64u
#define TENSOR_NAME_BYTES 16u
/* Format sanity bounds (not config policy): they keep every size product of
 * a damaged or hostile header far from 64-bit overflow. */
#define FIELD_MAX (1 << 20)
#define VOCAB_MAX 65536


/* ------------------------------------------------------------- layout */

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t pad8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

/* The tensors, their names, shapes and order are the model's parameter
 * table (PARAM_SPECS, model.c): param_tensors / param_shape / param_count. */

/* Byte offsets of every section (docs/checkpoint.md, "Layout"). */
typedef struct { uint64_t table, params, m, v, trackers, crc, total; } Layout;

/* Bytes of one layer's tracker block: version 1 had no born[F]. */
static uint64_t tracker_block(uint64_t F, uint32_t version) {
    return 16 + (version >= 2 ? 24 : 16) * F;
}

static uint32_t header_bytes(uint32_t version) {
    return version >= 4 ? HEADER_BYTES : version == 3 ? 192u : 160u;
}

static Layout layout_of(const ModelSize *s, uint64_t config_len, uint32_t version) {
    Layout o;
    int spec[MAX_PARAM_TENSORS];
    uint64_t P = param_total(s), F = (uint64_t)s->F, ntensors = (uint64_t)param_tensors(s, spec);
    o.table = pad8(header_bytes(version) + config_len);
    o.params = o.table + ntensors * TENSOR_ENTRY_BYTES;
    o.m = o.params + 4 * P;
    o.v = o.m + 4 * P;
    o.trackers = pad8(o.v + 4 * P);
    o.crc = o.trackers + 8 + (uint64_t)s->L * tracker_block(F, version);
    o.total = o.crc + 4;
    return o;
}

/* ----------------------------------------------------------- writing */

typedef struct { FILE *fp; uint32_t crc; int failed, saved_errno; } Writer;

static void w_bytes(Writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (write_all(w->fp, p, n) != 0) { w->failed = 1; w->saved_errno = errno; return; }
    w->crc = crc32_update(w->crc, p, n);
}

static void w_zeros(Writer *w, size_t n) {
    static const uint8_t zeros[8] = {0};
    w_bytes(w, zeros, n);
}

static void pack_header(uint8_t *h, const ModelSize *ms, const Optimizer *opt,
                        const RunState *rs, uint64_t config_len) {
    memset(h, 0, HEADER_BYTES);
    memcpy(h, CKPT_MAGIC, 8);
    put_u32(h + 8, CKPT_VERSION);
    put_u32(h + 12, HEADER_BYTES);
    const int f[6] = {ms->L, ms->d, ms->h, ms->F, ms->T, ms->V};
    for (int i = 0; i < 6; i++) put_u32(h + 16 + 4 * i, (uint32_t)f[i]);
    memcpy(h + 40, ms->name, strnlen(ms->name, SIZE_NAME_MAX - 1));
    put_u64(h + 72, rs->seed);
    put_u64(h + 80, (uint64_t)rs->step);
    put_u64(h + 88, (uint64_t)rs->tokens_seen);
    for (int i = 0; i < 4; i++) put_u64(h + 96 + 8 * i, rs->rng_state[i]);
    int spec[MAX_PARAM_TENSORS];
    put_u32(h + 128, (uint32_t)opt->kind);
    put_u32(h + 132, (uint32_t)param_tensors(ms, spec));
    put_u64(h + 136, (uint64_t)(int64_t)opt->t);
    put_u64(h + 144, param_total(ms));
    put_u64(h + 152, config_len);
    uint32_t variant[NUM_VARIANT_KEYS];
    variant_pack(ms, variant);
    for (int i = 0; i < NUM_VARIANT_KEYS; i++) put_u32(h + VARIANT_AT + 4 * i, variant[i]);
}

/* ---- identity block (format version 2, bytes 160..191 of the header) ----
 * What makes the checkpoint one run's own: the fingerprint of the config
 * keys that change results (with the size), of the training and held-out
 * corpora, and the planned steps. Kept apart from the fields above so that
 * header fields added later do not move it. */
static void pack_identity(uint8_t *h, const RunIdentity *id) {
    put_u64(h + IDENTITY_AT, id->config);
    put_u64(h + IDENTITY_AT + 8, id->train_corpus);
    put_u64(h + IDENTITY_AT + 16, id->val_corpus);
    put_u64(h + IDENTITY_AT + 24, (uint64_t)id->steps);
}

static void parse_identity(const uint8_t *h, RunIdentity *id) {
    id->config = get_u64(h + IDENTITY_AT);
    id->train_corpus = get_u64(h + IDENTITY_AT + 8);
    id->val_corpus = get_u64(h + IDENTITY_AT + 16);
    id->steps = (int64_t)get_u64(h + IDENTITY_AT + 24);
}

static void write_tensor_table(Writer *w, const ModelSize *ms) {
    uint64_t offset = 0;
    int spec[MAX_PARAM_TENSORS], n = param_tensors(ms, spec);
    for (int i = 0; i < n; i++) {
        uint8_t e[TENSOR_ENTRY_BYTES] = {0};
        uint64_t dims[3];
        int nd = param_shape(ms, spec[i], dims);
        const char *name = PARAM_SPECS[spec[i]].name;
        memcpy(e, name, strlen(name));
        put_u32(e + 16, (uint32_t)nd);
        for (int k = 0; k < 3; k++) put_u64(e + 24 + 8 * k, dims[k]);
        put_u64(e + 48, param_count(ms, spec[i]));
        put_u64(e + 56, offset);
        offset += param_count(ms, spec[i]);
        w_bytes(w, e, sizeof e);
    }
}

static void write_trackers(Writer *w, const ModelSize *ms, const RunState *rs) {
    uint8_t head[8];
    put_u32(head, (uint32_t)ms->L);
    put_u32(head + 4, (uint32_t)ms->F);
    w_bytes(w, head, sizeof head);
    for (int l = 0; l < ms->L; l++) {
        const DeathTracker *t = &rs->trackers[l];
        int64_t scalars[2] = {(int64_t)t->window, t->tokens_since_snap};
        w_bytes(w, scalars, sizeof scalars);
        w_bytes(w, t->last_fire, (size_t)ms->F * sizeof(int64_t));
        w_bytes(w, t->fires_since_snap, (size_t)ms->F * sizeof(int64_t));
        w_bytes(w, t->born, (size_t)ms->F * sizeof(int64_t));
    }
}

/* The model must be laid out the way this format expects. */
static int check_model_matches(const ModelSize *ms, const Model *m, char *why, size_t n) {
    int spec[MAX_PARAM_TENSORS], count = param_tensors(ms, spec);
    if (m->num_tensors != count)
        return fail_msg(why, n, "internal error: the model has %d tensors, the size implies %d",
                        m->num_tensors, count);
    for (int i = 0; i < count; i++) {
        const char *name = PARAM_SPECS[spec[i]].name;
        if (m->tensor_spec[i] != spec[i])
            return fail_msg(why, n, "internal error: model tensor %d is '%s', the checkpoint "
                        "layout expects '%s'", i, model_param_name(m, i), name);
        if ((uint64_t)m->param_sizes[i] != param_count(ms, spec[i]))
            return fail_msg(why, n, "internal error: model tensor '%s' has %zu values, the size "
                        "implies %llu", name, m->param_sizes[i],
                        (unsigned long long)param_count(ms, spec[i]));
    }
    if ((uint64_t)m->num_params != param_total(ms))
        return fail_msg(why, n, "internal error: the model has %zu parameters, the size implies %llu",
                    m->num_params, (unsigned long long)param_total(ms));
    return 0;
}

static int check_save_inputs(const ModelSize *ms, const Model *m, const Optimizer *opt,
                             const RunState *rs, char *why, size_t n) {
    if (check_model_matches(ms, m, why, n) != 0) return -1;
    if (opt->n != m->num_params)
        return fail_msg(why, n, "internal error: the optimizer holds %zu values for %zu parameters",
                    opt->n, m->num_params);
    /* a load refuses negative counters, so never write them */
    if (rs->step < 0 || rs->tokens_seen < 0 || opt->t != rs->step || rs->id.steps < rs->step)
        return fail_msg(why, n, "internal error: step %lld, tokens %lld, optimizer count %ld, "
                        "planned steps %lld do not fit together", (long long)rs->step,
                        (long long)rs->tokens_seen, opt->t, (long long)rs->id.steps);
    if (!rs->trackers) return fail_msg(why, n, "internal error: no death trackers to save");
    for (int l = 0; l < ms->L; l++)
        if (rs->trackers[l].F != ms->F)
            return fail_msg(why, n, "internal error: tracker of layer %d has F=%d, the size F=%d",
                        l, rs->trackers[l].F, ms->F);
    return 0;
}

/* Streams every section through the CRC into af (see docs/checkpoint.md). */
static int write_checkpoint(AtomicFile *af, const ModelSize *ms, const char *text,
                            const Model *m, const Optimizer *opt, const RunState *rs) {
    Writer w = {af->fp, 0, 0, 0};
    uint64_t clen = text ? strlen(text) : 0;
    Layout o = layout_of(ms, clen, CKPT_VERSION);
    uint8_t header[HEADER_BYTES];
    pack_header(header, ms, opt, rs, clen);
    pack_identity(header, &rs->id);
    w_bytes(&w, header, sizeof header);
    w_bytes(&w, text, clen);
    w_zeros(&w, (size_t)(o.table - HEADER_BYTES - clen));
    write_tensor_table(&w, ms);
    w_bytes(&w, m->params_memory, m->num_params * sizeof(float));
    w_bytes(&w, opt->m, opt->n * sizeof(float));
    w_bytes(&w, opt->v, opt->n * sizeof(float));
    w_zeros(&w, (size_t)(o.trackers - (o.v + 4 * (uint64_t)opt->n)));
    write_trackers(&w, ms, rs);
    uint8_t crc[4];
    put_u32(crc, w.crc);
    w_bytes(&w, crc, sizeof crc);
    if (w.failed) errno = w.saved_errno;
    return w.failed ? -1 : 0;
}

/* ------------------------------------------------ listing and pruning */

typedef struct { int64_t step; char name[40]; } Entry;

/* "ckpt_<at least 8 digits>.bin" -> step; -1 for any other name (temp files too). */
static int64_t parse_name(const char *name) {
    size_t n = strlen(name);
    if (n < 5 + 8 + 4 || n >= sizeof ((Entry *)0)->name || strncmp(name, "ckpt_", 5) != 0 ||
        strcmp(name + n - 4, ".bin") != 0)
        return -1;
    int64_t step = 0;
    for (size_t i = 5; i < n - 4; i++) {
        if (name[i] < '0' || name[i] > '9' || step > (INT64_MAX - 9) / 10) return -1;
        step = step * 10 + (name[i] - '0');
    }
    return step;
}

static int newest_first(const void *a, const void *b) {
    int64_t x = ((const Entry *)a)->step, y = ((const Entry *)b)->step;
    return x < y ? 1 : x > y ? -1 : strcmp(((const Entry *)a)->name, ((const Entry *)b)->name);
}

/* The checkpoints of dir, newest first (malloc'd); -1 if dir cannot be read. */
static int list_checkpoints(const char *dir, Entry **out) {
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return -1;
    int n = 0, cap = 0;
    Entry *e = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t step = parse_name(de->d_name);
        if (step < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            Entry *grown = realloc(e, (size_t)cap * sizeof *e);
            if (!grown) die("out of memory listing %s", dir);
            e = grown;
        }
        e[n].step = step;
        memcpy(e[n].name, de->d_name, strlen(de->d_name) + 1);   /* parse_name bounds it */
        n++;
    }
    closedir(d);
    if (n > 1) qsort(e, (size_t)n, sizeof *e, newest_first);
    *out = e;
    return n;
}

/* After saving `step`: keep the `keep` newest checkpoints up to it, and drop
 * any with a later step — those belong to a timeline the run abandoned when
 * it resumed from an older checkpoint (the newer ones failed verification). */
static void prune(const char *dir, int64_t step, int keep) {
    Entry *e;
    int n = list_checkpoints(dir, &e);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].step <= step && (keep <= 0 || kept < keep)) { kept++; continue; }
        char path[RS_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
        if (unlink(path) != 0 && errno != ENOENT)
            warn_msg("%s: cannot remove an old checkpoint: %s", path, strerror(errno));
    }
    free(e);
}

void run_state_init(RunState *rs, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed, RUN_RNG_STREAM);
    rs->seed = seed;
    memcpy(rs->rng_state, r.s, sizeof rs->rng_state);
}

int checkpoint_save(const char *dir, const ModelSize *ms, const char *config_text,
                    const Model *m, const Optimizer *opt, const RunState *rs,
                    int keep, char *err, size_t errlen) {
    char path[RS_PATH_MAX], why[512];
    if (snprintf(path, sizeof path, "%s/ckpt_%08lld.bin", dir, (long long)rs->step) >=
        (int)sizeof path - 32)
        return fail_msg(err, errlen, "%s: the checkpoint folder path is too long", dir);
    if (check_save_inputs(ms, m, opt, rs, why, sizeof why) != 0)
        return fail_msg(err, errlen, "%s: %s", path, why);
    if (mkdir_p(dir) != 0)
        return fail_msg(err, errlen, "%s: cannot create the checkpoint folder: %s", dir,
                    strerror(errno));
    AtomicFile af;
    if (atomic_open(&af, path) != 0)
        return fail_msg(err, errlen, "%s: cannot create: %s", path, strerror(errno));
    if (write_checkpoint(&af, ms, config_text, m, opt, rs) != 0) {
        int e = errno;
        atomic_abort(&af);
        return fail_msg(err, errlen, "%s: write failed: %s", path, strerror(e));
    }
    if (atomic_commit(&af) != 0)
        return fail_msg(err, errlen, "%s: cannot complete the write: %s", path, strerror(errno));
    prune(dir, rs->step, keep);
    return 0;
}

/* ----------------------------------------------------------- reading */

typedef struct {
    uint8_t *map;           /* the whole file, read-only */
    size_t len;
    ModelSize size;
    uint64_t seed, rng[4], config_len;
    int64_t step, tokens_seen, opt_t;
    uint32_t opt_kind, version;
    RunIdentity id;             /* zero in versions 1-2 */
    Layout o;
} Ckpt;

static void ckpt_close(Ckpt *k) {
    if (k->map) munmap(k->map, k->len);
    k->map = NULL;
}

/* Header sanity, before any offset derived from it is trusted. */
static int parse_header(Ckpt *k, char *why, size_t n) {
    const uint8_t *h = k->map;
    uint32_t hb = header_bytes(k->version);
    if (get_u32(h + 12) != hb)
        return fail_msg(why, n, "header length %u, expected %u", get_u32(h + 12), hb);
    uint32_t f[6];
    for (int i = 0; i < 6; i++) f[i] = get_u32(h + 16 + 4 * i);
    for (int i = 0; i < 6; i++)
        if (f[i] < 1 || f[i] > (i == 5 ? VOCAB_MAX : i == 0 ? MAX_LAYERS : FIELD_MAX))
            return fail_msg(why, n, "implausible model size field %c=%u", "LdhFTV"[i], f[i]);
    if (f[1] % f[2] != 0)   /* no model can have it: eval would build an impossible one */
        return fail_msg(why, n, "impossible model size: d=%u is not a multiple of h=%u", f[1], f[2]);
    ModelSize *s = &k->size;
    memset(s, 0, sizeof *s);
    s->L = (int)f[0]; s->d = (int)f[1]; s->h = (int)f[2];
    s->F = (int)f[3]; s->T = (int)f[4]; s->V = (int)f[5];
    memcpy(s->name, h + 40, SIZE_NAME_MAX - 1);   /* the last byte stays NUL */
    k->seed = get_u64(h + 72);
    k->step = (int64_t)get_u64(h + 80);
    k->tokens_seen = (int64_t)get_u64(h + 88);
    for (int i = 0; i < 4; i++) k->rng[i] = get_u64(h + 96 + 8 * i);
    k->opt_kind = get_u32(h + 128);
    k->opt_t = (int64_t)get_u64(h + 136);
    k->config_len = get_u64(h + 152);
    uint32_t variant[NUM_VARIANT_KEYS] = {0};   /* before version 4: the SPEC §2 model */
    for (int i = 0; i < NUM_VARIANT_KEYS && k->version >= 4; i++)
        variant[i] = get_u32(h + VARIANT_AT + 4 * i);
    if (variant_unpack(s, variant, why, n) != 0 || variant_check(s, why, n) != 0) return -1;
    int spec[MAX_PARAM_TENSORS], count = param_tensors(s, spec);
    if (get_u32(h + 132) != (uint32_t)count)
        return fail_msg(why, n, "%u tensors, expected %d", get_u32(h + 132), count);
    if (get_u64(h + 144) != param_total(s))
        return fail_msg(why, n, "parameter count %llu does not match the size's %llu",
                    (unsigned long long)get_u64(h + 144), (unsigned long long)param_total(s));
    if (k->opt_kind > OPT_SGD) return fail_msg(why, n, "unknown optimizer kind %u", k->opt_kind);
    if (k->version >= 3) parse_identity(h, &k->id);
    else memset(&k->id, 0, sizeof k->id), k->id.steps = INT64_MAX;   /* no bound known */
    if (k->step < 0 || k->tokens_seen < 0 || k->opt_t < 0 || k->id.steps < 0)
        return fail_msg(why, n, "negative step or counter");
    /* every step adds one optimizer update and at least one token */
    if (k->opt_t != k->step || k->step > k->id.steps || k->tokens_seen < k->step)
        return fail_msg(why, n, "counters do not fit together: step %lld of %lld planned, "
                        "optimizer count %lld, %lld tokens seen", (long long)k->step,
                        (long long)k->id.steps, (long long)k->opt_t, (long long)k->tokens_seen);
    if (k->config_len > k->len) return fail_msg(why, n, "config text longer than the file");
    k->o = layout_of(s, k->config_len, k->version);
    return 0;
}

/* The tensor table and the tracker header must say what the size implies. */
static int check_tables(const Ckpt *k, char *why, size_t n) {
    uint64_t offset = 0;
    int spec[MAX_PARAM_TENSORS], count = param_tensors(&k->size, spec);
    for (int i = 0; i < count; i++) {
        const uint8_t *e = k->map + k->o.table + (uint64_t)i * TENSOR_ENTRY_BYTES;
        const char *name = PARAM_SPECS[spec[i]].name;
        uint64_t dims[3], values = param_count(&k->size, spec[i]);
        uint32_t nd = (uint32_t)param_shape(&k->size, spec[i], dims);
        int ok = strncmp((const char *)e, name, TENSOR_NAME_BYTES) == 0 &&
                 get_u32(e + 16) == nd && get_u64(e + 48) == values && get_u64(e + 56) == offset;
        for (int d = 0; d < 3; d++) ok = ok && get_u64(e + 24 + 8 * d) == dims[d];
        if (!ok) return fail_msg(why, n, "tensor table entry %d does not describe '%s' of this size",
                             i, name);
        offset += values;
    }
    const uint8_t *t = k->map + k->o.trackers;
    if (get_u32(t) != (uint32_t)k->size.L || get_u32(t + 4) != (uint32_t)k->size.F)
        return fail_msg(why, n, "tracker section for %u layers of %u units, expected %d of %d",
                    get_u32(t), get_u32(t + 4), k->size.L, k->size.F);
    return 0;
}

/* Every value a run would use, within what a real run can produce: a file
 * crafted with a valid CRC must not feed NaN moments, negative counts or
 * future firing steps into training (UB and silently wrong numbers). */
static int check_contents(const Ckpt *k, char *why, size_t n) {
    uint64_t P = param_total(&k->size);
    const float *p = (const float *)(k->map + k->o.params);   /* params, m, v back to back */
    for (uint64_t i = 0; i < 3 * P; i++)
        if (!isfinite(p[i]) || (i >= 2 * P && p[i] < 0.0f))
            return fail_msg(why, n, "%s value %llu is %g (not a finite%s number)",
                            i < P ? "parameter" : i < 2 * P ? "first moment" : "second moment",
                            (unsigned long long)(i % P), (double)p[i], i >= 2 * P ? ", >= 0" : "");
    const uint8_t *t = k->map + k->o.trackers + 8;
    uint64_t F = (uint64_t)k->size.F;
    for (int l = 0; l < k->size.L; l++, t += tracker_block(F, k->version)) {
        int64_t window = (int64_t)get_u64(t), since = (int64_t)get_u64(t + 8);
        if (window < 1 || since < 0 || since > k->tokens_seen)
            return fail_msg(why, n, "tracker of layer %d: window %lld or %lld tokens since the "
                            "snapshot out of range", l, (long long)window, (long long)since);
        for (uint64_t f = 0; f < F; f++) {
            int64_t last = (int64_t)get_u64(t + 16 + 8 * f);
            int64_t fires = (int64_t)get_u64(t + 16 + 8 * F + 8 * f);
            int64_t born = k->version >= 2 ? (int64_t)get_u64(t + 16 + 16 * F + 8 * f) : -1;
            if (last < -1 || last >= k->step || fires < 0 || fires > since || born < -1 ||
                born > k->step)
                return fail_msg(why, n, "tracker of layer %d unit %llu: last firing step %lld, "
                                "%lld firings or birth step %lld out of range (step %lld, %lld "
                                "tokens)", l, (unsigned long long)f, (long long)last,
                                (long long)fires, (long long)born, (long long)k->step,
                                (long long)since);
        }
    }
    return 0;
}

/* Is the verified file the run's own? CKPT_FOREIGN + why when it is another
 * run's; -1 + why when its counters cannot be the run's; 0 when it is. */
static int check_run(const Ckpt *k, const RunExpect *w, char *why, size_t n) {
    if (k->version < 3)
        return fail_msg(why, n, "format version %u (an earlier reluscope) does not record which "
                        "config and corpus it belongs to", k->version), CKPT_FOREIGN;
    if (k->seed != w->seed)
        return fail_msg(why, n, "checkpoint of seed %llu, the run's seed is %llu",
                        (unsigned long long)k->seed, (unsigned long long)w->seed), CKPT_FOREIGN;
    if (k->id.config != w->id.config) {
        char what[400] = "a key that changes results, or the size, differs";
        if (w->config_text && k->config_len < (1u << 24)) {   /* name the key */
            char *stored = xmalloc((size_t)k->config_len + 1), d[400];
            memcpy(stored, k->map + header_bytes(k->version), (size_t)k->config_len);
            stored[k->config_len] = '\0';
            if (config_text_diff(stored, w->config_text, 1, d, sizeof d))
                snprintf(what, sizeof what, "%s", d);
            free(stored);
        }
        return fail_msg(why, n, "checkpoint of another config (%s)", what), CKPT_FOREIGN;
    }
    if (k->id.train_corpus != w->id.train_corpus || k->id.val_corpus != w->id.val_corpus)
        return fail_msg(why, n, "checkpoint trained on another corpus: %s changed "
                        "(fingerprint %016llx then, %016llx now)",
                        k->id.train_corpus != w->id.train_corpus ? "train_data" : "val_data",
                        (unsigned long long)(k->id.train_corpus != w->id.train_corpus
                                             ? k->id.train_corpus : k->id.val_corpus),
                        (unsigned long long)(k->id.train_corpus != w->id.train_corpus
                                             ? w->id.train_corpus : w->id.val_corpus)),
               CKPT_FOREIGN;
    if (w->tokens_per_step > 0 &&
        (k->step > INT64_MAX / w->tokens_per_step || k->tokens_seen != k->step * w->tokens_per_step))
        return fail_msg(why, n, "%lld tokens seen after %lld steps of %lld tokens",
                        (long long)k->tokens_seen, (long long)k->step,
                        (long long)w->tokens_per_step);
    return 0;
}

static int map_file(Ckpt *k, const char *path, char *why, size_t n) {
    struct stat st;
    int fd = open_regular(path, &st, why, n);   /* a FIFO is refused, not waited on */
    if (fd < 0) return -1;
    if (st.st_size < (off_t)header_bytes(1) + 4) {   /* the version decides the rest */
        close(fd);
        return fail_msg(why, n, "truncated or not a checkpoint (%lld bytes)", (long long)st.st_size);
    }
    k->len = (size_t)st.st_size;
    void *p = mmap(NULL, k->len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return fail_msg(why, n, "cannot map: %s", strerror(e));
    k->map = p;
    return 0;
}

/* Maps and fully verifies a checkpoint; `why` gets the bare problem. */
static int ckpt_open(Ckpt *k, const char *path, char *why, size_t n) {
    memset(k, 0, sizeof *k);
    if (map_file(k, path, why, n) != 0) return -1;
    int rc = -1;
    if (memcmp(k->map, CKPT_MAGIC, 8) != 0)
        fail_msg(why, n, "not a reluscope checkpoint (bad magic)");
    else if ((k->version = get_u32(k->map + 8)) < 1 || k->version > CKPT_VERSION)
        fail_msg(why, n, "format version %u is not supported (this build reads versions 1 to %u)",
             k->version, CKPT_VERSION);
    else if (k->len < (size_t)header_bytes(k->version) + 4)
        fail_msg(why, n, "truncated: %zu bytes, a version %u header has %u", k->len, k->version,
                 header_bytes(k->version));
    else if (parse_header(k, why, n) != 0)
        ;
    else if (k->o.total != (uint64_t)k->len)
        fail_msg(why, n, "file is %zu bytes, its header implies %llu (truncated or padded)",
             k->len, (unsigned long long)k->o.total);
    else {
        uint32_t stored = get_u32(k->map + k->o.crc);
        uint32_t computed = crc32_update(0, k->map, (size_t)k->o.crc);
        if (stored != computed)
            fail_msg(why, n, "CRC-32 mismatch (stored %08x, computed %08x): the file is damaged",
                 stored, computed);
        else if (check_tables(k, why, n) == 0)
            rc = check_contents(k, why, n);
    }
    if (rc != 0) ckpt_close(k);
    return rc;
}

int checkpoint_peek(const char *path, ModelSize *ms, uint64_t *seed, int64_t *step,
                    char *err, size_t errlen) {
    Ckpt k;
    char why[512];
    if (ckpt_open(&k, path, why, sizeof why) != 0) return fail_msg(err, errlen, "%s: %s", path, why);
    if (ms) *ms = k.size;
    if (seed) *seed = k.seed;
    if (step) *step = k.step;
    ckpt_close(&k);
    return 0;
}

char *checkpoint_config_text(const char *path, char *err, size_t errlen) {
    Ckpt k;
    char why[512];
    if (ckpt_open(&k, path, why, sizeof why) != 0) {
        fail_msg(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    char *text = xmalloc((size_t)k.config_len + 1);
    memcpy(text, k.map + header_bytes(k.version), (size_t)k.config_len);
    text[k.config_len] = '\0';
    ckpt_close(&k);
    return text;
}

static int same_shape(const ModelSize *a, const ModelSize *b) {
    return a->L == b->L && a->d == b->d && a->h == b->h && a->F == b->F && a->T == b->T &&
           a->V == b->V;
}

/* Everything that could refuse the load, before a single byte is copied. */
static int check_destination(const Ckpt *k, const ModelSize *ms, const Model *m,
                             const Optimizer *opt, const RunState *rs, char *why, size_t n) {
    const ModelSize *f = &k->size;
    if (!same_shape(f, ms))
        return fail_msg(why, n, "checkpoint is for size L=%d d=%d h=%d F=%d T=%d V=%d but the run "
                    "is L=%d d=%d h=%d F=%d T=%d V=%d", f->L, f->d, f->h, f->F, f->T, f->V,
                    ms->L, ms->d, ms->h, ms->F, ms->T, ms->V);
    if (!variant_same(f, ms)) {
        char mine[128], theirs[128];
        variant_format(f, 1, theirs, sizeof theirs);
        variant_format(ms, 1, mine, sizeof mine);
        return fail_msg(why, n, "checkpoint is for the variant%s but the run's size '%s' is%s",
                        theirs, ms->name, mine);
    }
    if (check_model_matches(ms, m, why, n) != 0) return -1;
    if (opt && opt->n != m->num_params)
        return fail_msg(why, n, "internal error: the optimizer holds %zu values for %zu parameters",
                    opt->n, m->num_params);
    if (rs && rs->trackers)
        for (int l = 0; l < ms->L; l++)
            if (rs->trackers[l].F != ms->F)
                return fail_msg(why, n, "internal error: tracker of layer %d has F=%d, the size F=%d",
                            l, rs->trackers[l].F, ms->F);
    return 0;
}

static void copy_trackers(const Ckpt *k, RunState *rs) {
    const uint8_t *p = k->map + k->o.trackers + 8;
    size_t F = (size_t)k->size.F;
    for (int l = 0; l < k->size.L; l++) {
        DeathTracker *t = &rs->trackers[l];
        /* the window stays the run's own (from its config): the file's copy
         * at p is a record of what the run used so far */
        t->tokens_since_snap = (int64_t)get_u64(p + 8);
        memcpy(t->last_fire, p + 16, F * sizeof(int64_t));
        memcpy(t->fires_since_snap, p + 16 + 8 * F, F * sizeof(int64_t));
        if (k->version >= 2) memcpy(t->born, p + 16 + 16 * F, F * sizeof(int64_t));
        else for (size_t f = 0; f < F; f++) t->born[f] = -1;   /* no resampling then */
        p += tracker_block(F, k->version);
    }
}

int checkpoint_load(const char *path, const ModelSize *ms, const RunExpect *want, Model *m,
                    Optimizer *opt, RunState *rs, char *err, size_t errlen) {
    Ckpt k;
    char why[512];
    if (ckpt_open(&k, path, why, sizeof why) != 0) return fail_msg(err, errlen, "%s: %s", path, why);
    int rc = want ? check_run(&k, want, why, sizeof why) : 0;
    if (rc == 0) rc = check_destination(&k, ms, m, opt, rs, why, sizeof why);
    if (rc != 0) {
        ckpt_close(&k);
        fail_msg(err, errlen, "%s: %s", path, why);
        return rc;
    }
    size_t bytes = m->num_params * sizeof(float);
    memcpy(m->params_memory, k.map + k.o.params, bytes);
    if (opt) {
        /* the optimizer kind stays the caller's: `eval` loads any checkpoint
         * into an AdamW-shaped Optimizer just to read past it */
        memcpy(opt->m, k.map + k.o.m, bytes);
        memcpy(opt->v, k.map + k.o.v, bytes);
        opt->t = (long)k.opt_t;
    }
    if (rs) {
        rs->step = k.step;
        rs->tokens_seen = k.tokens_seen;
        rs->seed = k.seed;   /* rs->id stays the caller's: the identity of the run it continues */
        memcpy(rs->rng_state, k.rng, sizeof rs->rng_state);
        /* All zero is no xoshiro state: a checkpoint of a build that did not
         * set it. Nothing drew from the run's RNG then, so its state is
         * still the seeded one. */
        if (!(k.rng[0] | k.rng[1] | k.rng[2] | k.rng[3])) run_state_init(rs, k.seed);
        if (rs->trackers) copy_trackers(&k, rs);
    }
    ckpt_close(&k);
    return 0;
}

/* One file's verdict: readable and valid, and (with want) the run's own. */
static CkptVerdict judge(const char *path, const ModelSize *ms, const RunExpect *want,
                         int64_t name_step, char *why, size_t n) {
    Ckpt k;
    if (ckpt_open(&k, path, why, n) != 0)   /* map_file's "cannot open: ..." is not damage */
        return strncmp(why, "cannot open: ", 13) == 0 ? CKPT_UNREADABLE : CKPT_DAMAGED;
    CkptVerdict v = CKPT_OK;
    if (k.step != name_step) {   /* a renamed file would roll the run back or forward */
        fail_msg(why, n, "its name says step %lld but it holds step %lld", (long long)name_step,
                 (long long)k.step);
        v = CKPT_DAMAGED;
    } else if (want) {
        int rc = check_run(&k, want, why, n);
        v = rc == CKPT_FOREIGN ? CKPT_OTHER_RUN : rc != 0 ? CKPT_DAMAGED : CKPT_OK;
        if (v == CKPT_OK && ms && !same_shape(&k.size, ms)) {
            fail_msg(why, n, "checkpoint of another size (L=%d d=%d h=%d F=%d T=%d V=%d)",
                     k.size.L, k.size.d, k.size.h, k.size.F, k.size.T, k.size.V);
            v = CKPT_OTHER_RUN;
        }
    }
    ckpt_close(&k);
    return v;
}

int checkpoint_scan(const char *dir, const ModelSize *ms, const RunExpect *want, CkptFile **files) {
    Entry *e;
    int n = list_checkpoints(dir, &e);
    *files = NULL;
    if (n < 0) return -1;
    CkptFile *f = xcalloc((size_t)n, sizeof *f);
    for (int i = 0; i < n; i++) {
        snprintf(f[i].path, sizeof f[i].path, "%s/%s", dir, e[i].name);
        f[i].step = e[i].step;
        f[i].verdict = judge(f[i].path, ms, want, e[i].step, f[i].why, sizeof f[i].why);
    }
    free(e);
    *files = f;
    return n;
}

int checkpoint_find_latest(const char *dir, char *path, size_t pathlen) {
    CkptFile *f;
    int n = checkpoint_scan(dir, NULL, NULL, &f);
    if (n < 0) {
        if (errno != ENOENT) warn_msg("%s: cannot list checkpoints: %s", dir, strerror(errno));
        return 0;
    }
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        if (f[i].verdict != CKPT_OK) {
            warn_msg("%s: damaged checkpoint (%s), skipped", f[i].path, f[i].why);
            continue;
        }
        if ((size_t)snprintf(path, pathlen, "%s", f[i].path) >= pathlen) {
            warn_msg("%s: path longer than %zu bytes, skipped", f[i].path, pathlen - 1);
            continue;
        }
        found = 1;
    }
    free(f);
    return found;
}

int checkpoint_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *tmp = strstr(de->d_name, ".bin.tmp.");
        if (strncmp(de->d_name, "ckpt_", 5) != 0 || !tmp) continue;
        char *end;
        long pid = strtol(tmp + 9, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive, or not ours to judge */
        char path[RS_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path) continue;
        if (unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}

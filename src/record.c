/* record.c — flat byte buffers for shipping records to job rank 0. The
 * fixed-size part is copied as is (every rank runs the same binary), the
 * arrays follow it. */
#include <stdlib.h>
#include <string.h>
#include "sink.h"
#include "util.h"

void *pack_eval(const EvalRecord *r, size_t *bytes) {
    size_t nsv = r->singular_values ? (size_t)r->L * r->topk : 0;
    *bytes = sizeof *r + nsv * sizeof(double);
    char *buf = xmalloc(*bytes);
    memcpy(buf, r, sizeof *r);
    ((EvalRecord *)buf)->singular_values = NULL;
    if (nsv) memcpy(buf + sizeof *r, r->singular_values, nsv * sizeof(double));
    ((EvalRecord *)buf)->topk = nsv ? r->topk : 0;
    return buf;
}

void unpack_eval(EvalRecord *r, void *buf) {
    memcpy(r, buf, sizeof *r);
    r->singular_values = r->topk ? (double *)((char *)buf + sizeof *r) : NULL;
}

/* int64 arrays first, then float arrays: keeps every array aligned. */
void *pack_snapshot(const SnapshotRecord *r, size_t *bytes) {
    size_t n = (size_t)r->L * r->F;
    *bytes = sizeof *r + 2 * n * sizeof(int64_t) + 5 * n * sizeof(float);
    char *buf = xmalloc(*bytes), *p = buf + sizeof *r;
    memcpy(buf, r, sizeof *r);
    memcpy(p, r->fires_since, n * 8); p += n * 8;
    memcpy(p, r->last_fire, n * 8); p += n * 8;
    const float *arrays[5] = {r->premax, r->premean, r->b_in, r->fc_norm, r->proj_norm};
    for (int i = 0; i < 5; i++) { memcpy(p, arrays[i], n * 4); p += n * 4; }
    return buf;
}

void unpack_snapshot(SnapshotRecord *r, void *buf) {
    memcpy(r, buf, sizeof *r);
    size_t n = (size_t)r->L * r->F;
    char *p = (char *)buf + sizeof *r;
    r->fires_since = (int64_t *)p; p += n * 8;
    r->last_fire = (int64_t *)p; p += n * 8;
    float **arrays[5] = {&r->premax, &r->premean, &r->b_in, &r->fc_norm, &r->proj_norm};
    for (int i = 0; i < 5; i++) { *arrays[i] = (float *)p; p += n * 4; }
}

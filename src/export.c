/* export.c — `reluscope export`: a checkpoint's weights for PyTorch users.
 *
 * Writes OUT/params.bin (every parameter as float32, in checkpoint tensor
 * order, the byte order named in the manifest) and OUT/model.json (the model
 * size, each tensor's name, element offset and count, the run's seed and
 * step). `python3 -m analysis.export OUT` turns them into a PyTorch
 * state_dict (docs/analysis.md, "Checkpoint export"). The checkpoint is
 * loaded with every check of `eval` (CRC, sizes) before anything is written,
 * and both files are written atomically. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "checkpoint.h"
#include "cli.h"
#include "eval.h"
#include "model.h"
#include "util.h"
#include "variant.h"

#define EXPORT_FORMAT 1

static void export_usage(FILE *fp) {
    fprintf(fp,
        "usage: reluscope export --checkpoint FILE --out DIR\n"
        "Writes the checkpoint's parameters for PyTorch: DIR/params.bin (float32,\n"
        "checkpoint tensor order) and DIR/model.json (size, tensor offsets, seed,\n"
        "step). Then: /usr/bin/python3 -m analysis.export DIR writes\n"
        "DIR/state_dict.pt for analysis/torch_model.py (docs/analysis.md).\n");
}

static int little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static int write_params(const char *path, const Model *m, char *err, size_t errlen) {
    AtomicFile af;
    if (atomic_open(&af, path) != 0) return fail_msg(err, errlen, "%s: cannot create: %s", path, strerror(errno));
    int bad = write_all(af.fp, m->params_memory, m->num_params * sizeof(float)) != 0;
    return atomic_finish(&af, bad, err, errlen);
}

static int write_manifest(const char *path, const Model *m, uint64_t seed, int64_t step,
                          char *err, size_t errlen) {
    AtomicFile af;
    if (atomic_open(&af, path) != 0) return fail_msg(err, errlen, "%s: cannot create: %s", path, strerror(errno));
    const ModelSize *s = &m->cfg;
    int bad = fprintf(af.fp,
        "{\"format\": \"reluscope-export\", \"version\": %d,\n"
        " \"size\": {\"L\": %d, \"d\": %d, \"h\": %d, \"F\": %d, \"T\": %d, \"V\": %d, \"name\": ",
        EXPORT_FORMAT, s->L, s->d, s->h, s->F, s->T, s->V) < 0;
    json_string(s->name, af.fp);                  /* config.h */
    /* the architecture variant, every key (docs/model.md "Variants") */
    bad = bad || fprintf(af.fp, "},\n \"variant\": {") < 0;
    for (int i = 0; i < NUM_VARIANT_KEYS && !bad; i++)
        bad = fprintf(af.fp, "%s\"%s\": \"%s\"", i ? ", " : "", variant_key(i),
                      variant_value_name(i, variant_value(s, i))) < 0;
    bad = bad || fprintf(af.fp, "},\n \"seed\": %llu, \"step\": %lld, \"num_params\": %zu,\n"
                         " \"dtype\": \"float32\", \"byte_order\": \"%s\",\n \"tensors\": [",
                         (unsigned long long)seed, (long long)step, m->num_params,
                         little_endian() ? "little" : "big") < 0;
    size_t offset = 0;
    for (int i = 0; i < m->num_tensors && !bad; i++) {
        bad = fprintf(af.fp, "%s\n  {\"name\": \"%s\", \"offset\": %zu, \"count\": %zu}", i ? "," : "",
                      model_param_name(m, i), offset, m->param_sizes[i]) < 0;
        offset += m->param_sizes[i];
    }
    bad = bad || fprintf(af.fp, "]}\n") < 0 || fflush(af.fp) != 0 || ferror(af.fp);
    return atomic_finish(&af, bad, err, errlen);
}

int cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { export_usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else {
            fprintf(stderr, "reluscope: error: export: unknown or incomplete argument '%s' "
                    "(see reluscope export --help)\n", argv[i]);
            return 64;
        }
    }
    if (!ckpt || !out) {
        fprintf(stderr, "reluscope: error: export: --checkpoint FILE and --out DIR are required\n");
        return 64;
    }
    char err[1024], path[RS_PATH_MAX];
    ModelSize ms;
    uint64_t seed;
    int64_t step;
    if (checkpoint_peek(ckpt, &ms, &seed, &step, err, sizeof err) != 0) die("%s", err);
    Model m;
    eval_load_model(ckpt, &m, 1);           /* every check of the checkpoint, or die */
    if (mkdir_p(out) != 0) die("%s: cannot create the export folder: %s", out, strerror(errno));
    snprintf(m.cfg.name, sizeof m.cfg.name, "%s", ms.name);
    if ((size_t)snprintf(path, sizeof path, "%s/params.bin", out) >= sizeof path)
        die("%s: path too long", out);
    if (write_params(path, &m, err, sizeof err) != 0) die("%s", err);
    snprintf(path, sizeof path, "%s/model.json", out);
    if (write_manifest(path, &m, seed, step, err, sizeof err) != 0) die("%s", err);
    printf("export: %s -> %s/params.bin, %s/model.json (%zu parameters, step %lld)\n", ckpt, out,
           out, m.num_params, (long long)step);
    free_model(&m);
    return 0;
}

/* blas.c — detecting OpenBLAS kernels older than the CPU (see blas.h). */
#include "blas.h"
#include <stdlib.h>
#include <strings.h>

/* OpenBLAS's own extension: declared here, since a cblas.h from another
 * BLAS provider would not declare it (we link -lopenblas explicitly). */
char *openblas_get_corename(void);

const char *blas_core_name(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

static int is_one_of(const char *name, const char *const *list) {
    for (; *list; list++)
        if (!strcasecmp(name, *list)) return 1;
    return 0;
}

const char *blas_better_coretype(void) {
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Zen", NULL};
    static const char *const avx2[] = {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids",
                                       "Zen", NULL};
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && *env) return NULL;   /* the user chose */
    const char *core = blas_core_name();
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && !is_one_of(core, avx512)) return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !is_one_of(core, avx2))
        return "Haswell";
    return NULL;
}

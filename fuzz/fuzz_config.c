/* fuzz_config.c — the config parser (config.h: config_load_file, then
 * config_validate). The input is the whole config file. On a file it
 * accepts, the printed form must load again and print the same text
 * (config_print is what checkpoints and the dataset record). */
#include "config.h"
#include "fuzz_common.h"

/* Config errors echo the input: never as raw control bytes (config.h). */
static void check_printable(const char *err) {
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "control byte 0x%02x in the message: %s\n", (unsigned char)*p, err);
            abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128], path2[128], err[RS_PATH_MAX + 1024];
    fz_path(path, sizeof path, "fuzz.conf");
    fz_path(path2, sizeof path2, "printed.conf");
    fz_write(path, data, size);
    static Config c, c2;    /* large (several KiB of paths): keep off the stack */
    config_defaults(&c);
    if (config_load_file(&c, path, err, sizeof err) != 0) {
        fz_check_error(err, path);
        check_printable(err);
        return 0;
    }
    if (config_validate(&c, err, sizeof err) != 0) fz_check_error(err, NULL);
    char *text = config_to_string(&c);
    fz_write(path2, (const uint8_t *)text, strlen(text));
    config_defaults(&c2);
    if (config_load_file(&c2, path2, err, sizeof err) != 0) {
        fprintf(stderr, "the printed config does not load again: %s\n---\n%s---\n", err, text);
        abort();
    }
    char *text2 = config_to_string(&c2);
    if (strcmp(text, text2) != 0) {
        fprintf(stderr, "printed config changes on reload:\n---\n%s---\n%s---\n", text, text2);
        abort();
    }
    free(text);
    free(text2);
    return 0;
}

/* Test helper: load a model with the library and save it untouched.
 * Usage: pare-roundtrip IN OUT [--gzip] [--external-threshold N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/model.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: pare-roundtrip IN OUT [--gzip] [--external-threshold N]\n");
        return 2;
    }
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--gzip") == 0)
            so.gzip = true;
        else if (strcmp(argv[i], "--external-threshold") == 0 && i + 1 < argc)
            so.external_threshold = strtoll(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "pare-roundtrip: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    pare_model *m;
    pare_error err;
    if (pare_model_load(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "pare-roundtrip: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    int rc = 0;
    if (pare_model_save(m, argv[2], &so, &err)) {
        fprintf(stderr, "pare-roundtrip: %s: %s\n", argv[2], err.msg);
        rc = 1;
    }
    pare_model_free(m);
    return rc;
}

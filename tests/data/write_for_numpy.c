/* Writes files for check_with_numpy.py: write_for_numpy DIR makes
 * DIR/stored.npz and DIR/deflated.npz (plain and growing arrays) and
 * DIR/many.npz (70000 members, zip64 end record); write_for_numpy - writes
 * an .npy to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/data.h"

static int fail(const pare_error *err)
{
    fprintf(stderr, "write_for_numpy: %s\n", err->msg);
    return 1;
}

static int write_npz(const char *path, bool compress)
{
    pare_error err;
    pare_npz_writer *w;
    pare_tensor *t;
    if (pare_npz_writer_open(path, compress, &w, &err))
        return fail(&err);
    if (pare_tensor_new("a", PARE_DT_FLOAT, 2, (int64_t[]){3, 4}, &t, &err))
        return fail(&err);
    for (int i = 0; i < 12; i++)
        ((float *)t->data)[i] = (float)i * 0.5f;
    if (pare_npz_writer_add(w, "a", t, &err))
        return fail(&err);
    pare_tensor_free(t);
    /* growing: 100000 rows of 3 int32 (i*3+j), appended in uneven pieces */
    if (pare_npz_writer_begin_array(w, "grow", PARE_DT_INT32, 1, (int64_t[]){3}, &err))
        return fail(&err);
    int32_t *rows = malloc(100000 * 3 * sizeof *rows);
    for (int i = 0; i < 300000; i++)
        rows[i] = i;
    for (int r = 0; r < 100000;) {
        int n = r % 7 == 0 ? 1 : 977;
        if (n > 100000 - r)
            n = 100000 - r;
        if (pare_npz_writer_append(w, rows + 3 * r, (uint64_t)n, &err))
            return fail(&err);
        r += n;
    }
    free(rows);
    if (pare_npz_writer_end_array(w, &err))
        return fail(&err);
    if (pare_npz_writer_begin_array(w, "empty", PARE_DT_BOOL, 0, NULL, &err) ||
        pare_npz_writer_end_array(w, &err))
        return fail(&err);
    if (pare_npz_writer_add(w, "name\xc3\xa9", t = NULL, &err) == PARE_OK)
        return 1;
    if (pare_tensor_new(NULL, PARE_DT_UINT16, 0, NULL, &t, &err))
        return fail(&err);
    *(uint16_t *)t->data = 513;
    if (pare_npz_writer_add(w, "name\xc3\xa9", t, &err))
        return fail(&err);
    pare_tensor_free(t);
    return pare_npz_writer_close(w, &err) ? fail(&err) : 0;
}

static int write_many(const char *path)
{
    pare_error err;
    pare_npz_writer *w;
    pare_tensor *t;
    if (pare_npz_writer_open(path, false, &w, &err) ||
        pare_tensor_new(NULL, PARE_DT_INT64, 0, NULL, &t, &err))
        return fail(&err);
    for (int i = 0; i < 70000; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%d", i);
        *(int64_t *)t->data = i;
        if (pare_npz_writer_add(w, name, t, &err))
            return fail(&err);
    }
    pare_tensor_free(t);
    return pare_npz_writer_close(w, &err) ? fail(&err) : 0;
}

int main(int argc, char **argv)
{
    pare_error err;
    if (argc != 2)
        return 2;
    if (strcmp(argv[1], "-") == 0) {
        pare_tensor *t;
        if (pare_tensor_new(NULL, PARE_DT_INT16, 2, (int64_t[]){2, 5}, &t, &err))
            return fail(&err);
        for (int i = 0; i < 10; i++)
            ((int16_t *)t->data)[i] = (int16_t)(i - 3);
        if (pare_npy_write("-", t, &err))
            return fail(&err);
        pare_tensor_free(t);
        return 0;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/stored.npz", argv[1]);
    if (write_npz(p, false))
        return 1;
    snprintf(p, sizeof p, "%s/deflated.npz", argv[1]);
    if (write_npz(p, true))
        return 1;
    snprintf(p, sizeof p, "%s/many.npz", argv[1]);
    return write_many(p);
}

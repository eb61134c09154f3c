/* pare-distill-export - the teacher's half of offline distillation: soft
 * targets over a dataset into a streaming .npz, and students derived from
 * the teacher (repeated residual blocks dropped, low-rank linear layers,
 * narrower hidden sizes) with a closed-form refit of the final layer.
 *
 * Soft targets are written array by array: while the teacher runs, each
 * array's rows go to its own file in the sidecar folder OUTPUT.partial/
 * (a0.bin, a1.bin, ...) and a small `state` file records after every
 * complete batch how many samples are done and how long each file is; at
 * the end the files are stitched into the .npz through pare_npz_writer (one
 * open array at a time) and the folder is removed. --resume truncates the
 * files to the recorded lengths and continues from the next batch, so the
 * result is byte-identical to an uninterrupted run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include "cli.h"
#include "pare/data.h"
#include "pare/distill.h"
#include "pare/dtype.h"
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/prune.h"
#include "pare/report.h"
#include "pare/stats.h"

static const char *o_output;
static const char *o_data;
static cli_list o_outputs, o_features;
static double o_temperature = NAN;
static int64_t o_top_k;
static int o_dtype;
static int64_t o_batch = 32;
static int64_t o_samples;
static bool o_compress, o_resume;
static bool o_student;
static const char *o_drop;
static const char *o_low_rank;
static double o_width = NAN;
static cli_list o_refit;
static double o_ridge = 1e-3;
static int64_t o_threads;
static bool o_json;

static const char *const dtype_names[] = {"float32", "float16", NULL};

static const cli_option options[] = {
    CLI_GROUP("Soft targets"),
    CLI_STRING(0, "data", &o_data, "DATA",
               ".npz (arrays named after the inputs, samples on axis 0), a folder of .npz files, "
               "or test_data_set folders; with --student: measure agreement on it"),
    CLI_LIST(0, "outputs", &o_outputs, "NAMES", "graph outputs to store (all)"),
    CLI_DOUBLE(0, "temperature", &o_temperature, "T", -1e300, 1e300,
               "store probabilities softmax(logits / T) over the last axis (T > 0) instead of "
               "logits"),
    CLI_INT(0, "top-k", &o_top_k, "K", 1, 1 << 30,
            "store only the K largest values per position, their indices and the tail"),
    CLI_CHOICE(0, "dtype", &o_dtype, "TYPE", dtype_names, "type of stored values (float32)"),
    CLI_LIST(0, "features", &o_features, "NAMES",
             "also store these intermediate tensors (hint layers), as they are"),
    CLI_INT(0, "batch", &o_batch, "N", 1, 1 << 20, "samples per teacher run (32)"),
    CLI_INT(0, "samples", &o_samples, "N", 1, 1e15, "use the first N samples of DATA (all)"),
    CLI_FLAG(0, "compress", &o_compress, "deflate the .npz members (zlib)"),
    CLI_FLAG(0, "resume", &o_resume,
             "continue an interrupted export from its last complete batch (OUTPUT.partial/)"),
    CLI_GROUP("Student"),
    CLI_FLAG(0, "student", &o_student, "derive a student model from the teacher instead"),
    CLI_STRING(0, "drop-layers", &o_drop, "every-2nd|LIST",
               "drop repeated residual blocks: every-2nd keeps 0,2,4,...; LIST gives the block "
               "indices to drop (1,3)"),
    CLI_STRING(0, "low-rank", &o_low_rank, "R|energy=E",
               "factor MatMul/Gemm weights by truncated SVD to rank R, or the smallest rank "
               "keeping share E of the energy"),
    CLI_DOUBLE(0, "width", &o_width, "R", -1e300, 1e300,
               "keep share R of the channels of each layer, in (0, 1] (pare-prune's structured "
               "channel pruning)"),
    CLI_LIST(0, "refit", &o_refit, "DATA|all",
             "refit the final linear layer to the teacher on DATA in closed form; a second "
             "--refit all: every linear layer"),
    CLI_DOUBLE(0, "ridge", &o_ridge, "L", 0, 1e300, "ridge term added to the Gram diagonal (1e-3)"),
    CLI_GROUP("Run"),
    CLI_INT('t', "threads", &o_threads, "N", 0, 4096, "threads of the executor (0: all cores)"),
    CLI_GROUP("Output"),
    CLI_STRING('o', "output", &o_output, "FILE", "the targets .npz, or the student .onnx"),
    CLI_FLAG(0, "json", &o_json, "print the report as JSON on stdout"),
    CLI_END(),
};

static const cli_program prog = {
    .name = "pare-distill-export",
    .usage = "[OPTIONS] TEACHER --data DATA -o TARGETS.npz\n--student [OPTIONS] TEACHER -o "
             "STUDENT.onnx",
    .summary = "The teacher's half of offline knowledge distillation: run the teacher once over "
               "a dataset and store its soft targets (logits, probabilities at a temperature, or "
               "top-k with the tail mass) in a streaming .npz; or derive a smaller student from "
               "the teacher (drop repeated blocks, low-rank factors, narrower layers) and refit "
               "its final layer in closed form. See the man page for the .npz layout and the "
               "loss.",
    .footer = "Exit status: 0 done, 1 bad input or failure, 2 bad usage.",
    .options = options,
    .args_name = "TEACHER",
    .min_args = 1,
    .max_args = 1,
};

/* ---- helpers ---- */


/* cli_fail, without naming the file twice when the message starts with it */
static int fail_at(const char *file, const pare_error *err)
{
    size_t n = file ? strlen(file) : 0;
    if (n && strncmp(err->msg, file, n) == 0 && err->msg[n] == ':')
        return cli_fail(NULL, err);
    return cli_fail(file, err);
}

static int oom(void)
{
    cli_error(NULL, "out of memory");
    return CLI_EXIT_FAIL;
}

/* ---- soft targets ---- */

enum { A_IDS, A_FULL, A_VALUES, A_INDICES, A_TAIL, A_FEATURE };

typedef struct array {
    char *name;          /* member name */
    int kind;
    size_t src;          /* output or feature index */
    int dtype;           /* stored dtype */
    int inner_rank;
    int64_t inner[PARE_MAX_RANK];
    bool shaped;         /* inner dims known */
    FILE *fp;
    char *path;
    uint64_t bytes;      /* bytes written so far (complete batches) */
} array;

typedef struct feat_grab {
    pare_graph *g;
    cli_names *features;
    pare_value **vals;
    pare_tensor **got;
    int fail;
} feat_grab;

static int feat_observer(void *ctx, const pare_node *n, size_t output, const pare_tensor *t)
{
    feat_grab *fg = ctx;
    for (size_t i = 0; i < fg->features->n; i++) {
        if (n->outputs[output] == fg->vals[i] && !fg->got[i]) {
            pare_error e;
            if (pare_tensor_clone(t, &fg->got[i], &e)) {
                fg->fail = 1;
                return 1;
            }
        }
    }
    return 0;
}

static char *dup_printf(const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, fmt, a, b ? b : "");
    return s;
}

static void remove_partial(const char *dir, array *arr, size_t na)
{
    for (size_t i = 0; i < na; i++)
        if (arr[i].path)
            unlink(arr[i].path);
    char *st = dup_printf("%s/state", dir, NULL), *st2 = dup_printf("%s/state.tmp", dir, NULL);
    if (st)
        unlink(st);
    if (st2)
        unlink(st2);
    free(st);
    free(st2);
    /* files of another configuration */
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == 'a' && strstr(e->d_name, ".bin")) {
                char *p = dup_printf("%s/%s", dir, e->d_name);
                if (p)
                    unlink(p);
                free(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

static pare_status write_state(const char *dir, const char *key, int64_t samples, array *arr,
                               size_t na, pare_error *err)
{
    char *tmp = dup_printf("%s/state.tmp", dir, NULL), *fin = dup_printf("%s/state", dir, NULL);
    if (!tmp || !fin) {
        free(tmp);
        free(fin);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    FILE *fp = fopen(tmp, "w");
    pare_status st = PARE_OK;
    if (!fp) {
        st = pare_error_set(err, PARE_ERR_IO, "%s: %s", tmp, strerror(errno));
    } else {
        fprintf(fp, "pare-distill-export state 1\nkey %s\nsamples %lld\n", key,
                (long long)samples);
        for (size_t i = 0; i < na; i++) {
            fprintf(fp, "array %zu %llu %d", i, (unsigned long long)arr[i].bytes,
                    arr[i].inner_rank);
            for (int d = 0; d < arr[i].inner_rank; d++)
                fprintf(fp, " %lld", (long long)arr[i].inner[d]);
            fprintf(fp, "\n");
        }
        if (fclose(fp) != 0 || rename(tmp, fin) != 0)
            st = pare_error_set(err, PARE_ERR_IO, "%s: %s", fin, strerror(errno));
    }
    free(tmp);
    free(fin);
    return st;
}

/* Reads the state; returns samples done, or -1 when there is none usable. */
static int64_t read_state(const char *dir, const char *key, array *arr, size_t na)
{
    char *fin = dup_printf("%s/state", dir, NULL);
    if (!fin)
        return -1;
    FILE *fp = fopen(fin, "r");
    free(fin);
    if (!fp)
        return -1;
    size_t klen = strlen(key) + 64;
    char *line = malloc(klen + 4096);
    int64_t samples = -1;
    if (!line)
        goto out;
    if (!fgets(line, (int)(klen + 4096), fp) || strcmp(line, "pare-distill-export state 1\n"))
        goto out;
    if (!fgets(line, (int)(klen + 4096), fp) || strncmp(line, "key ", 4) ||
        strncmp(line + 4, key, strlen(key)) || line[4 + strlen(key)] != '\n')
        goto out;
    long long s;
    if (fscanf(fp, "samples %lld\n", &s) != 1 || s < 0)
        goto out;
    for (size_t i = 0; i < na; i++) {
        size_t idx;
        unsigned long long bytes;
        int rank;
        if (fscanf(fp, " array %zu %llu %d", &idx, &bytes, &rank) != 3 || idx != i || rank < 0 ||
            rank > 8)
            goto out;
        arr[i].bytes = bytes;
        arr[i].inner_rank = rank;
        for (int d = 0; d < rank; d++) {
            long long v;
            if (fscanf(fp, " %lld", &v) != 1 || v < 0)
                goto out;
            arr[i].inner[d] = v;
        }
        arr[i].shaped = s > 0;
    }
    samples = s;
out:
    free(line);
    fclose(fp);
    return samples;
}

static pare_status append_rows(array *a, const void *data, size_t bytes, pare_error *err)
{
    if (bytes && fwrite(data, 1, bytes, a->fp) != bytes)
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", a->path, strerror(errno));
    return PARE_OK;
}

static pare_status put_value(array *a, double v, unsigned char **cur)
{
    if (a->dtype == PARE_DT_FLOAT16) {
        uint16_t h = pare_f32_to_f16((float)v);
        memcpy(*cur, &h, 2);
        *cur += 2;
    } else {
        float f = (float)v;
        memcpy(*cur, &f, 4);
        *cur += 4;
    }
    return PARE_OK;
}

static int run_targets(const char *teacher_path)
{
    pare_error err;
    int rc = CLI_EXIT_FAIL;
    cli_names outs = {0}, feats = {0};
    if ((rc = cli_split_names(&o_outputs, "outputs", &outs)) != CLI_CONTINUE ||
        (rc = cli_split_names(&o_features, "features", &feats)) != CLI_CONTINUE) {
        cli_names_release(&outs);
        cli_names_release(&feats);
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    bool probs = !isnan(o_temperature);
    int vdtype = o_dtype == 1 ? PARE_DT_FLOAT16 : PARE_DT_FLOAT;
    size_t vsize = vdtype == PARE_DT_FLOAT16 ? 2 : 4;
    pare_model *m = NULL;
    pare_session *s = NULL;
    pare_feed *f = NULL;
    array *arr = NULL;
    size_t na = 0;
    char *dir = NULL, *key = NULL, *meta = NULL;
    pare_value **fvals = NULL;
    pare_tensor **fgot = NULL;
    double *vals = NULL;
    int64_t *idx = NULL;
    void *scratch = NULL;
    unsigned char *buf[3] = {NULL, NULL, NULL};
    cli_progress *bar = NULL;
    bool created_here = false, dir_live = false;
    int64_t batches_run = 0;
    char sha[65];
    pare_json *j = NULL;
    pare_npz_writer *w = NULL;

    if (pare_sha256_file(teacher_path, sha, &err)) {
        rc = fail_at(teacher_path, &err);
        goto done;
    }
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    if (pare_model_load(teacher_path, &lo, &m, &err)) {
        rc = fail_at(teacher_path, &err);
        goto done;
    }
    pare_graph *g = pare_model_graph(m);
    if (outs.n == 0) {
        for (size_t i = 0; i < g->n_outputs; i++) {
            char **p = realloc(outs.v, (outs.n + 1) * sizeof *p);
            if (!p || !(p[outs.n] = strdup(g->outputs[i]->name))) {
                if (p)
                    outs.v = p;
                rc = oom();
                goto done;
            }
            outs.v = p;
            outs.n++;
        }
    }
    for (size_t i = 0; i < outs.n; i++) {
        bool found = false;
        for (size_t k = 0; k < g->n_outputs; k++)
            found |= strcmp(g->outputs[k]->name, outs.v[i]) == 0;
        if (!found) {
            char list[512] = "";
            size_t l = 0;
            for (size_t k = 0; k < g->n_outputs && l < sizeof list - 64; k++)
                l += (size_t)snprintf(list + l, sizeof list - l, "%s'%s'", k ? ", " : "",
                                      g->outputs[k]->name);
            cli_error(teacher_path, "no output named '%s' (outputs: %s%s)", outs.v[i], list,
                      pare_graph_find_value(g, outs.v[i]) ? "; use --features for intermediate "
                      "tensors" : "");
            goto done;
        }
    }
    fvals = calloc(feats.n + 1, sizeof *fvals);
    fgot = calloc(feats.n + 1, sizeof *fgot);
    if (!fvals || !fgot) {
        rc = oom();
        goto done;
    }
    for (size_t i = 0; i < feats.n; i++) {
        fvals[i] = pare_graph_find_value(g, feats.v[i]);
        if (!fvals[i] || fvals[i]->graph != g || !fvals[i]->producer) {
            cli_error(teacher_path, "--features: no tensor named '%s' computed by a node of the "
                      "main graph", feats.v[i]);
            goto done;
        }
    }
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = (int)o_threads;
    if (pare_session_new(m, &so, &s, &err)) {
        rc = fail_at(teacher_path, &err);
        goto done;
    }
    if (pare_feed_open(o_data, s, o_batch, o_samples, &f, &err)) {
        rc = fail_at(o_data, &err);
        goto done;
    }
    feat_grab fg = {.g = g, .features = &feats, .vals = fvals, .got = fgot};
    if (feats.n)
        pare_session_set_observer(s, feat_observer, &fg);

    /* the arrays */
    na = 1 + outs.n * (o_top_k ? 3 : 1) + feats.n;
    arr = calloc(na, sizeof *arr);
    if (!arr) {
        rc = oom();
        goto done;
    }
    {
        size_t k = 0;
        arr[k].name = strdup("sample_id");
        arr[k].kind = A_IDS;
        arr[k++].dtype = PARE_DT_INT64;
        for (size_t i = 0; i < outs.n; i++) {
            if (o_top_k) {
                arr[k] = (array){.name = dup_printf("%s%s", outs.v[i], ".values"),
                                 .kind = A_VALUES, .src = i, .dtype = vdtype};
                k++;
                arr[k] = (array){.name = dup_printf("%s%s", outs.v[i], ".indices"),
                                 .kind = A_INDICES, .src = i, .dtype = PARE_DT_INT64};
                k++;
                arr[k] = (array){.name = dup_printf("%s%s", outs.v[i], ".tail"), .kind = A_TAIL,
                                 .src = i, .dtype = vdtype};
                k++;
            } else {
                arr[k] = (array){.name = strdup(outs.v[i]), .kind = A_FULL, .src = i,
                                 .dtype = vdtype};
                k++;
            }
        }
        for (size_t i = 0; i < feats.n; i++) {
            arr[k] = (array){.name = strdup(feats.v[i]), .kind = A_FEATURE, .src = i,
                             .dtype = vdtype};
            k++;
        }
        for (size_t i = 0; i < na; i++)
            if (!arr[i].name) {
                rc = oom();
                goto done;
            }
    }
    /* the options that decide the bytes, for --resume */
    {
        size_t len = 512 + strlen(o_data);
        for (size_t i = 0; i < na; i++)
            len += strlen(arr[i].name) + 1;
        key = malloc(len);
        if (!key) {
            rc = oom();
            goto done;
        }
        int o = snprintf(key, len, "teacher=%s data=%s batch=%lld samples=%lld T=%.17g k=%lld "
                         "dtype=%s arrays=", sha, o_data, (long long)o_batch,
                         (long long)o_samples, probs ? o_temperature : 0.0, (long long)o_top_k,
                         dtype_names[o_dtype]);
        for (size_t i = 0; i < na && o > 0 && (size_t)o < len; i++)
            o += snprintf(key + o, len - (size_t)o, "%s%s", i ? "," : "", arr[i].name);
        for (char *c = key; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = '?';
    }
    dir = dup_printf("%s%s", o_output, ".partial");
    if (!dir) {
        rc = oom();
        goto done;
    }
    for (size_t i = 0; i < na; i++) {
        char num[32];
        snprintf(num, sizeof num, "/a%zu.bin", i);
        arr[i].path = dup_printf("%s%s", dir, num);
        if (!arr[i].path) {
            rc = oom();
            goto done;
        }
    }
    int64_t done_samples = -1;
    if (o_resume) {
        done_samples = read_state(dir, key, arr, na);
        if (done_samples < 0)
            cli_warning(o_output, "no resumable state in %s for these options; starting over",
                        dir);
        else {
            cli_info(0, "resuming after %lld samples", (long long)done_samples);
            dir_live = true;
        }
    }
    if (done_samples < 0) {
        remove_partial(dir, arr, na);
        for (size_t i = 0; i < na; i++) {
            arr[i].bytes = 0;
            arr[i].shaped = false;
        }
        if (mkdir(dir, 0777) != 0) {
            cli_error(dir, "cannot create the folder for partial results: %s", strerror(errno));
            goto done;
        }
        created_here = dir_live = true;
        done_samples = 0;
    }
    for (size_t i = 0; i < na; i++) {
        arr[i].fp = fopen(arr[i].path, created_here ? "w+b" : "r+b");
        if (!arr[i].fp && !created_here)
            arr[i].fp = fopen(arr[i].path, "w+b");
        if (!arr[i].fp) {
            cli_error(arr[i].path, "%s", strerror(errno));
            goto done;
        }
        struct stat sb;
        if (!created_here && (fstat(fileno(arr[i].fp), &sb) != 0 ||
                              (uint64_t)sb.st_size < arr[i].bytes)) {
            cli_error(dir, "the saved state does not match its files (%s is shorter than "
                      "recorded); remove the folder or run without --resume", arr[i].path);
            goto done;
        }
        if (ftruncate(fileno(arr[i].fp), (off_t)arr[i].bytes) != 0 ||
            fseek(arr[i].fp, (long)arr[i].bytes, SEEK_SET) != 0) {
            cli_error(arr[i].path, "%s", strerror(errno));
            goto done;
        }
    }
    /* skip what is done */
    while (pare_feed_position(f) < done_samples) {
        pare_tensor **ins = NULL;
        int64_t got = 0;
        if (pare_feed_next(f, &ins, &got, &err)) {
            rc = fail_at(o_data, &err);
            goto done;
        }
        pare_tensors_free(ins, pare_session_input_count(s));
        if (!got)
            break;
    }
    if (pare_feed_position(f) != done_samples) {
        cli_error(dir, "the saved state does not match the data (%lld samples done, data has "
                  "%lld); remove the folder or run without --resume", (long long)done_samples,
                  (long long)pare_feed_position(f));
        goto done;
    }
    const char *stop_env = getenv("PARE_DISTILL_STOP_AFTER");
    int64_t stop_after = stop_env ? atoll(stop_env) : 0;
    int64_t total = pare_feed_count(f);
    bar = cli_progress_start("teacher", total > 0 ? (uint64_t)total : 0);
    cli_progress_update(bar, (uint64_t)done_samples);
    for (;;) {
        pare_tensor **ins = NULL, **res = NULL;
        int64_t got = 0;
        size_t nres = 0;
        if (pare_feed_next(f, &ins, &got, &err)) {
            rc = fail_at(o_data, &err);
            goto done;
        }
        if (!ins)
            break;
        int64_t first = pare_feed_position(f) - got;
        pare_status st = pare_session_run(s, ins, pare_session_input_count(s), &res, &nres, &err);
        pare_tensors_free(ins, pare_session_input_count(s));
        if (st || fg.fail) {
            pare_tensors_free(res, nres);
            rc = st ? fail_at(teacher_path, &err) : oom();
            goto done;
        }
        bool bad = false;
        for (size_t ai = 0; ai < na && !bad; ai++) {
            array *a = &arr[ai];
            const pare_tensor *t = NULL;
            const char *tname = NULL;
            if (a->kind == A_IDS) {
                for (int64_t r = 0; r < got && !bad; r++) {
                    int64_t id = first + r;
                    bad = append_rows(a, &id, sizeof id, &err) != PARE_OK;
                }
                if (bad)
                    rc = fail_at(o_output, &err);
                a->shaped = true;
                continue;
            }
            if (a->kind == A_FEATURE) {
                t = fgot[a->src];
                tname = feats.v[a->src];
            } else {
                tname = outs.v[a->src];
                for (size_t k = 0; k < nres; k++)
                    if (res[k]->name && strcmp(res[k]->name, tname) == 0)
                        t = res[k];
            }
            if (!t) {
                cli_error(teacher_path, "tensor '%s' was not computed", tname);
                bad = true;
                break;
            }
            if (t->dtype != PARE_DT_FLOAT && t->dtype != PARE_DT_FLOAT16) {
                cli_error(teacher_path, "tensor '%s' is %s; only float32 and float16 are stored",
                          tname, pare_dtype_name(t->dtype));
                bad = true;
                break;
            }
            if (t->rank < 1 || t->dims[0] != got) {
                cli_error(teacher_path, "tensor '%s' does not have the %lld samples of the batch "
                          "on its first axis", tname, (long long)got);
                bad = true;
                break;
            }
            bool classes = a->kind == A_FULL || a->kind == A_VALUES || a->kind == A_INDICES ||
                           a->kind == A_TAIL;
            int64_t c = t->rank >= 2 ? t->dims[t->rank - 1] : 1;
            if (classes && (probs || o_top_k) && t->rank < 2) {
                cli_error(teacher_path, "output '%s' has no class axis (rank %d): --temperature "
                          "and --top-k need [N, ..., C]", tname, t->rank);
                bad = true;
                break;
            }
            if (classes && o_top_k > c) {
                cli_error(teacher_path, "--top-k %lld is larger than the class axis of '%s' "
                          "(%lld)", (long long)o_top_k, tname, (long long)c);
                bad = true;
                break;
            }
            /* inner dims of the stored array */
            int ir = t->rank - 1;
            int64_t inner[PARE_MAX_RANK];
            for (int d = 0; d < ir; d++)
                inner[d] = t->dims[d + 1];
            if (a->kind == A_VALUES || a->kind == A_INDICES)
                inner[ir - 1] = o_top_k;
            if (a->kind == A_TAIL)
                ir--;
            if (ir > 8) {
                cli_error(teacher_path, "tensor '%s' has rank %d; at most 9 is stored", tname,
                          t->rank);
                bad = true;
                break;
            }
            if (!a->shaped) {
                a->inner_rank = ir;
                memcpy(a->inner, inner, (size_t)ir * sizeof *inner);
                a->shaped = true;
            } else if (a->inner_rank != ir ||
                       memcmp(a->inner, inner, (size_t)ir * sizeof *inner) != 0) {
                cli_error(teacher_path, "tensor '%s' changes shape between batches", tname);
                bad = true;
                break;
            }
            /* rows of C scores */
            uint64_t nrows = pare_tensor_numel(t) / (uint64_t)c;
            float *x = NULL;
            if (t->dtype == PARE_DT_FLOAT16) {
                x = malloc(pare_tensor_numel(t) * sizeof *x + 1);
                if (!x) {
                    rc = oom();
                    bad = true;
                    break;
                }
                const uint16_t *h = t->data;
                for (uint64_t e = 0; e < pare_tensor_numel(t); e++)
                    x[e] = pare_f16_to_f32(h[e]);
            }
            const float *xs = x ? x : t->data;
            if (a->kind == A_FEATURE || (a->kind == A_FULL && !probs)) {
                /* as they are, in the stored dtype */
                size_t n = (size_t)pare_tensor_numel(t);
                unsigned char *ob = malloc(n * vsize + 1), *cur = ob;
                if (!ob) {
                    free(x);
                    rc = oom();
                    bad = true;
                    break;
                }
                for (size_t e = 0; e < n; e++)
                    put_value(a, xs[e], &cur);
                if (append_rows(a, ob, n * vsize, &err)) {
                    rc = fail_at(o_output, &err);
                    bad = true;
                }
                free(ob);
                free(x);
                continue;
            }
            if (a->kind == A_INDICES || a->kind == A_TAIL) { /* written with the values */
                free(x);
                continue;
            }
            free(vals);
            free(idx);
            free(scratch);
            vals = malloc((size_t)c * sizeof *vals);
            idx = malloc((size_t)c * sizeof *idx);
            scratch = malloc((size_t)c * 16);
            size_t per = (size_t)(o_top_k ? o_top_k : c);
            for (int b = 0; b < 3; b++) {
                free(buf[b]);
                buf[b] = malloc(per * 8 + 8);
            }
            if (!vals || !idx || !scratch || !buf[0] || !buf[1] || !buf[2]) {
                free(x);
                rc = oom();
                bad = true;
                break;
            }
            for (uint64_t r = 0; r < nrows && !bad; r++) {
                double tail = 0;
                pare_distill_row(xs + r * (uint64_t)c, c, probs ? o_temperature : 0, o_top_k,
                                 vals, idx, &tail, scratch);
                unsigned char *cur = buf[0];
                for (size_t e = 0; e < per; e++)
                    put_value(a, vals[e], &cur);
                if (append_rows(a, buf[0], per * vsize, &err))
                    bad = true;
                if (!bad && o_top_k) {
                    if (append_rows(a + 1, idx, per * sizeof *idx, &err))
                        bad = true;
                    cur = buf[2];
                    put_value(a + 2, tail, &cur);
                    if (!bad && append_rows(a + 2, buf[2], vsize, &err))
                        bad = true;
                }
                if (bad)
                    rc = fail_at(o_output, &err);
            }
            free(x);
        }
        pare_tensors_free(res, nres);
        for (size_t i = 0; i < feats.n; i++) {
            pare_tensor_free(fgot[i]);
            fgot[i] = NULL;
        }
        if (bad)
            goto done;
        /* the batch is complete: record it */
        for (size_t i = 0; i < na; i++) {
            if (fflush(arr[i].fp) != 0) {
                cli_error(arr[i].path, "%s", strerror(errno));
                goto done;
            }
            long pos = ftell(arr[i].fp);
            arr[i].bytes = pos < 0 ? 0 : (uint64_t)pos;
        }
        if (write_state(dir, key, pare_feed_position(f), arr, na, &err)) {
            rc = fail_at(o_output, &err);
            goto done;
        }
        batches_run++;
        cli_progress_update(bar, (uint64_t)pare_feed_position(f));
        if (stop_after > 0 && batches_run >= stop_after) {
            cli_progress_stop(&bar);
            cli_error(o_output, "stopped after %lld batches (PARE_DISTILL_STOP_AFTER); "
                      "rerun with --resume", (long long)batches_run);
            goto keep;
        }
    }
    cli_progress_stop(&bar);
    int64_t nsamples = pare_feed_position(f);
    if (nsamples == 0) {
        cli_error(o_data, "no samples");
        goto done;
    }
    /* metadata */
    if (pare_json_new(0, &j, &err)) {
        rc = fail_at(o_output, &err);
        goto done;
    }
    pare_json_begin_object(j);
    pare_json_kv_string(j, "format", "pare-distill-targets");
    pare_json_key(j, "version");
    pare_json_int(j, 1);
    pare_json_kv_string(j, "teacher", teacher_path);
    pare_json_kv_string(j, "teacher_sha256", sha);
    pare_json_key(j, "temperature");
    if (probs)
        pare_json_double(j, o_temperature);
    else
        pare_json_null(j);
    pare_json_kv_string(j, "values", probs ? "probabilities" : "logits");
    pare_json_key(j, "top_k");
    pare_json_int(j, o_top_k);
    pare_json_kv_string(j, "tail", !o_top_k ? "none" : probs ? "probability_mass" : "logsumexp");
    pare_json_kv_string(j, "dtype", dtype_names[o_dtype]);
    pare_json_kv_string(j, "index_dtype", "int64");
    pare_json_key(j, "outputs");
    pare_json_begin_array_flat(j);
    for (size_t i = 0; i < outs.n; i++)
        pare_json_string(j, outs.v[i]);
    pare_json_end_array(j);
    pare_json_key(j, "features");
    pare_json_begin_array_flat(j);
    for (size_t i = 0; i < feats.n; i++)
        pare_json_string(j, feats.v[i]);
    pare_json_end_array(j);
    pare_json_kv_string(j, "data", o_data);
    pare_json_key(j, "samples");
    pare_json_int(j, nsamples);
    pare_json_end_object(j);
    const char *mtext;
    size_t mlen;
    if (pare_json_finish(j, &mtext, &mlen, &err)) {
        rc = fail_at(o_output, &err);
        goto done;
    }
    /* stitch */
    if (pare_npz_writer_open(o_output, o_compress, &w, &err)) {
        rc = fail_at(o_output, &err);
        goto keep;
    }
    for (size_t i = 0; i < na; i++) {
        array *a = &arr[i];
        if (pare_npz_writer_begin_array(w, a->name, a->dtype, a->inner_rank, a->inner, &err)) {
            rc = fail_at(o_output, &err);
            goto keep;
        }
        size_t esz = a->dtype == PARE_DT_INT64 ? 8 : vsize;
        uint64_t rowb = esz;
        for (int d = 0; d < a->inner_rank; d++)
            rowb *= (uint64_t)a->inner[d];
        if (rowb == 0 || a->bytes % rowb ||
            (a->kind == A_IDS && a->bytes / rowb != (uint64_t)nsamples)) {
            cli_error(a->path, "partial file has %llu bytes, not whole rows",
                      (unsigned long long)a->bytes);
            goto keep;
        }
        uint64_t chunk_rows = (1u << 20) / rowb + 1;
        unsigned char *cb = malloc(chunk_rows * rowb);
        if (!cb) {
            rc = oom();
            goto keep;
        }
        rewind(a->fp);
        uint64_t left = a->bytes / rowb;
        while (left) {
            uint64_t nr = left < chunk_rows ? left : chunk_rows;
            if (fread(cb, 1, nr * rowb, a->fp) != nr * rowb) {
                free(cb);
                cli_error(a->path, "short read");
                goto keep;
            }
            if (pare_npz_writer_append(w, cb, nr, &err)) {
                free(cb);
                rc = fail_at(o_output, &err);
                goto keep;
            }
            left -= nr;
        }
        free(cb);
        if (pare_npz_writer_end_array(w, &err)) {
            rc = fail_at(o_output, &err);
            goto keep;
        }
    }
    {
        pare_tensor *mt;
        int64_t ml = (int64_t)mlen;
        if (pare_tensor_new("__meta__", PARE_DT_UINT8, 1, &ml, &mt, &err)) {
            rc = fail_at(o_output, &err);
            goto keep;
        }
        memcpy(mt->data, mtext, mlen);
        pare_status st = pare_npz_writer_add(w, "__meta__", mt, &err);
        pare_tensor_free(mt);
        if (st) {
            rc = fail_at(o_output, &err);
            goto keep;
        }
    }
    pare_npz_writer *wc = w;
    w = NULL;
    if (pare_npz_writer_close(wc, &err)) {
        rc = fail_at(o_output, &err);
        goto keep;
    }
    for (size_t i = 0; i < na; i++) {
        fclose(arr[i].fp);
        arr[i].fp = NULL;
    }
    remove_partial(dir, arr, na);
    if (o_json) {
        pare_json *rj = NULL;
        const char *rt;
        size_t rl;
        if (pare_json_new(PARE_JSON_PRETTY, &rj, &err) == PARE_OK) {
            pare_json_begin_object(rj);
            pare_json_kv_string(rj, "schema", "pare-distill-export/targets/1");
            pare_json_kv_string(rj, "output", o_output);
            pare_json_key(rj, "samples");
            pare_json_int(rj, nsamples);
            pare_json_key(rj, "arrays");
            pare_json_uint(rj, na + 1);
            pare_json_key(rj, "peak_rss");
            pare_json_uint(rj, pare_peak_rss());
            pare_json_end_object(rj);
            if (pare_json_finish(rj, &rt, &rl, &err) == PARE_OK)
                fwrite(rt, 1, rl, stdout);
            pare_json_free(rj);
        }
    } else {
        char b1[32];
        cli_info(0, "%s: %lld samples, %zu arrays, peak RSS %s", o_output, (long long)nsamples,
                 na + 1, cli_fmt_bytes(pare_peak_rss(), b1, sizeof b1));
    }
    rc = CLI_EXIT_OK;
    goto done;
keep:
    /* failed after complete batches: keep the partial state for --resume */
    pare_npz_writer_abort(w);
    w = NULL;
    for (size_t i = 0; i < na; i++)
        if (arr[i].fp) {
            fclose(arr[i].fp);
            arr[i].fp = NULL;
        }
    created_here = false;
done:
    cli_progress_stop(&bar);
    pare_npz_writer_abort(w);
    for (size_t i = 0; i < na; i++)
        if (arr[i].fp) {
            fclose(arr[i].fp);
            arr[i].fp = NULL;
        }
    if (rc != CLI_EXIT_OK && dir_live) {
        /* keep resumable state only when batches were recorded */
        if (created_here && batches_run == 0)
            remove_partial(dir, arr, na);
        else
            cli_info(0, "partial results kept in %s (rerun with --resume)", dir);
    }
    for (size_t i = 0; arr && i < na; i++) {
        free(arr[i].name);
        free(arr[i].path);
    }
    free(arr);
    pare_json_free(j);
    free(dir);
    free(key);
    free(meta);
    free(fvals);
    if (fgot)
        for (size_t i = 0; i < feats.n; i++)
            pare_tensor_free(fgot[i]);
    free(fgot);
    free(vals);
    free(idx);
    free(scratch);
    for (int b = 0; b < 3; b++)
        free(buf[b]);
    pare_feed_close(f);
    pare_session_free(s);
    pare_model_free(m);
    cli_names_release(&outs);
    cli_names_release(&feats);
    return rc;
}

/* ---- student ---- */

static void cost_line(const char *what, const pare_model_cost *t, const pare_model_cost *s,
                      bool macs)
{
    char a[32], b[32], c[32], d[32];
    printf("%-8s %14s %14s %8s\n", what, "teacher", "student", "ratio");
    printf("%-8s %14s %14s %8.3f\n", "params", cli_fmt_count(t->params, a, sizeof a),
           cli_fmt_count(s->params, b, sizeof b),
           t->params ? (double)s->params / (double)t->params : 0.0);
    printf("%-8s %14s %14s %8.3f\n", "bytes", cli_fmt_bytes(t->bytes, c, sizeof c),
           cli_fmt_bytes(s->bytes, d, sizeof d),
           t->bytes ? (double)s->bytes / (double)t->bytes : 0.0);
    if (macs)
        printf("%-8s %14s %14s %8.3f\n", "MACs", cli_fmt_si(t->macs, a, sizeof a),
               cli_fmt_si(s->macs, b, sizeof b), t->macs > 0 ? s->macs / t->macs : 0.0);
}

static void json_compare(pare_json *j, const char *key, const pare_compare *c)
{
    pare_json_key(j, key);
    pare_json_begin_object_flat(j);
    pare_json_key(j, "samples");
    pare_json_uint(j, c->samples);
    pare_json_key(j, "top1");
    double t1 = pare_compare_top1(c);
    if (isnan(t1))
        pare_json_null(j);
    else
        pare_json_double_sig(j, t1, 6);
    pare_json_key(j, "cosine");
    pare_json_double_sig(j, pare_compare_cosine(c), 8);
    pare_json_end_object(j);
}

static int run_student(const char *teacher_path)
{
    pare_error err;
    int rc = CLI_EXIT_FAIL;
    pare_model *t = NULL, *m = NULL;
    pare_block_list bl = {0};
    bool *drop = NULL;
    char (*labels)[2][256] = NULL; /* first and last node of each block, before dropping */
    pare_refit_report rr = {0};
    bool refitted = false, have_agree = false;
    pare_compare agree;
    pare_tensor **sample = NULL;
    size_t n_sample = 0;
    pare_json *j = NULL;
    size_t lr_done = 0, lr_skipped = 0;
    const char *refit_data = NULL;
    bool refit_all = false;
    for (size_t i = 0; i < o_refit.n; i++) {
        if (strcmp(o_refit.items[i], "all") == 0)
            refit_all = true;
        else
            refit_data = o_refit.items[i];
    }
    if (refit_all && !refit_data)
        return cli_usage_error("--refit all needs --refit DATA as well");

    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    if (pare_model_load(teacher_path, &lo, &t, &err) ||
        pare_model_load(teacher_path, &lo, &m, &err)) {
        rc = fail_at(teacher_path, &err);
        goto done;
    }
    if (o_drop) {
        if (pare_distill_find_blocks(m, &bl, &err)) {
            rc = fail_at(teacher_path, &err);
            goto done;
        }
        drop = calloc(bl.n + 1, sizeof *drop);
        if (!drop) {
            rc = oom();
            goto done;
        }
        if (strcmp(o_drop, "every-2nd") == 0) {
            for (size_t i = 0; i < bl.n; i++)
                drop[i] = i % 2 == 1;
        } else {
            const char *p = o_drop;
            while (*p) {
                char *e;
                errno = 0;
                long long v = strtoll(p, &e, 10);
                if (e == p || errno || (*e && *e != ',')) {
                    rc = cli_usage_error("--drop-layers '%s': expected every-2nd or block indices "
                                         "like 1,3", o_drop);
                    goto done;
                }
                if (v < 0 || (unsigned long long)v >= bl.n) {
                    cli_error(teacher_path, "--drop-layers: block %lld does not exist (%zu blocks "
                              "found)", v, bl.n);
                    goto done;
                }
                drop[v] = true;
                p = *e ? e + 1 : e;
            }
        }
        labels = calloc(bl.n + 1, sizeof *labels);
        if (!labels) {
            rc = oom();
            goto done;
        }
        for (size_t i = 0; i < bl.n; i++) {
            pare_node_label(bl.items[i].nodes[0], labels[i][0], sizeof labels[i][0]);
            pare_node_label(bl.items[i].nodes[bl.items[i].n_nodes - 1], labels[i][1],
                            sizeof labels[i][1]);
        }
        if (!o_json) {
            printf("repeated blocks: %zu (%zu residual join%s each)\n", bl.n,
                   bl.segments_per_block, bl.segments_per_block == 1 ? "" : "s");
            for (size_t i = 0; i < bl.n; i++) {
                char a[256], b[256], c[32];
                const pare_block *bk = &bl.items[i];
                printf("  block %zu: %s .. %s, %zu nodes, %s params%s\n", i,
                       pare_node_label(bk->nodes[0], a, sizeof a),
                       pare_node_label(bk->nodes[bk->n_nodes - 1], b, sizeof b), bk->n_nodes,
                       cli_fmt_count(bk->params, c, sizeof c), drop[i] ? "  (dropped)" : "");
            }
        }
        if (pare_distill_drop_blocks(m, &bl, drop, &err)) {
            rc = fail_at(teacher_path, &err);
            goto done;
        }
    }
    if (o_low_rank) {
        int64_t rank = 0;
        double energy = 0;
        char *e;
        if (strncmp(o_low_rank, "energy=", 7) == 0) {
            errno = 0;
            energy = strtod(o_low_rank + 7, &e);
            if (e == o_low_rank + 7 || *e || errno || !(energy > 0 && energy <= 1)) {
                rc = cli_usage_error("--low-rank '%s': energy must be in (0, 1]", o_low_rank);
                goto done;
            }
        } else if (!cli_parse_int(o_low_rank, &rank) || rank < 1) {
            rc = cli_usage_error("--low-rank '%s': expected a rank >= 1 or energy=E", o_low_rank);
            goto done;
        }
        if (pare_distill_low_rank(m, rank, energy, &lr_done, &lr_skipped, &err)) {
            rc = fail_at(teacher_path, &err);
            goto done;
        }
        if (!o_json)
            printf("low-rank: %zu layer%s factored, %zu left as they are\n", lr_done,
                   lr_done == 1 ? "" : "s", lr_skipped);
    }
    if (!isnan(o_width)) {
        pare_channel_opts co = PARE_CHANNEL_OPTS_INIT;
        co.ratio = 1.0 - o_width;
        pare_prune_report pr;
        pare_prune_report_init(&pr);
        pare_status st = pare_prune_channels(m, &co, &pr, &err);
        if (!st && !o_json)
            printf("width: %zu layer%s narrowed to %.3g of their channels\n", pr.n_layers,
                   pr.n_layers == 1 ? "" : "s", o_width);
        pare_prune_report_release(&pr);
        if (st) {
            rc = fail_at(teacher_path, &err);
            goto done;
        }
    }
    if (refit_data) {
        pare_refit_opts ro = {.data = refit_data, .batch = 32, .ridge = o_ridge, .all = refit_all,
                              .threads = (int)o_threads};
        if (pare_distill_refit(m, t, &ro, &rr, &err)) {
            rc = fail_at(refit_data, &err);
            goto done;
        }
        refitted = true;
    }
    /* valid? */
    {
        pare_problems pb = {0};
        if (pare_model_validate(m, &pb, &err)) {
            rc = fail_at(teacher_path, &err);
            goto done;
        }
        if (pb.n) {
            cli_error(teacher_path, "the student is not valid: %s: %s", pb.items[0].where,
                      pb.items[0].what);
            pare_problems_release(&pb);
            goto done;
        }
        pare_problems_release(&pb);
    }
    /* costs: MACs from one sample of the data */
    const char *cdata = o_data ? o_data : refit_data;
    if (cdata) {
        pare_dataset *ds;
        if (pare_dataset_open(cdata, &ds, &err)) {
            rc = fail_at(cdata, &err);
            goto done;
        }
        pare_status st = pare_dataset_read(ds, 0, 1, &sample, &err);
        n_sample = pare_dataset_num_arrays(ds);
        pare_dataset_close(ds);
        if (st) {
            sample = NULL;
            rc = fail_at(cdata, &err);
            goto done;
        }
    }
    pare_model_cost ct, cs;
    /* only the arrays that are model inputs, in the dataset's order (matched by name) */
    if (pare_distill_cost(t, sample, n_sample, &ct, &err) ||
        pare_distill_cost(m, sample, n_sample, &cs, &err)) {
        rc = fail_at(cdata ? cdata : teacher_path, &err);
        goto done;
    }
    if (o_data) {
        if (pare_distill_agreement(m, t, o_data, o_batch, o_samples, (int)o_threads, &agree,
                                   &err)) {
            rc = fail_at(o_data, &err);
            goto done;
        }
        have_agree = true;
    }
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    if (pare_model_save(m, o_output, &so, &err)) {
        rc = fail_at(o_output, &err);
        goto done;
    }
    if (o_json) {
        if (pare_json_new(PARE_JSON_PRETTY, &j, &err)) {
            rc = fail_at(o_output, &err);
            goto done;
        }
        pare_json_begin_object(j);
        pare_json_kv_string(j, "schema", "pare-distill-export/student/1");
        pare_json_key(j, "blocks");
        pare_json_begin_array(j);
        for (size_t i = 0; i < bl.n; i++) {
            pare_json_begin_object_flat(j);
            pare_json_key(j, "index");
            pare_json_uint(j, i);
            pare_json_kv_string(j, "first", labels[i][0]);
            pare_json_kv_string(j, "last", labels[i][1]);
            pare_json_key(j, "nodes");
            pare_json_uint(j, bl.items[i].n_nodes);
            pare_json_key(j, "params");
            pare_json_uint(j, bl.items[i].params);
            pare_json_key(j, "dropped");
            pare_json_bool(j, drop[i]);
            pare_json_end_object(j);
        }
        pare_json_end_array(j);
        pare_json_key(j, "low_rank_layers");
        pare_json_uint(j, lr_done);
        const pare_model_cost *cc[2] = {&ct, &cs};
        const char *nm[2] = {"teacher", "student"};
        for (int k = 0; k < 2; k++) {
            pare_json_key(j, nm[k]);
            pare_json_begin_object_flat(j);
            pare_json_key(j, "params");
            pare_json_uint(j, cc[k]->params);
            pare_json_key(j, "bytes");
            pare_json_uint(j, cc[k]->bytes);
            pare_json_key(j, "macs");
            if (sample)
                pare_json_double(j, cc[k]->macs);
            else
                pare_json_null(j);
            pare_json_end_object(j);
        }
        if (refitted) {
            pare_json_key(j, "refit_layers");
            pare_json_uint(j, rr.layers);
            json_compare(j, "refit_before", &rr.before);
            json_compare(j, "refit_after", &rr.after);
        }
        if (have_agree)
            json_compare(j, "agreement", &agree);
        pare_json_end_object(j);
        const char *text;
        size_t len;
        if (pare_json_finish(j, &text, &len, &err)) {
            rc = fail_at(o_output, &err);
            goto done;
        }
        fwrite(text, 1, len, stdout);
    } else {
        cost_line("", &ct, &cs, sample != NULL);
        if (refitted)
            printf("refit %zu layer%s (final %s) on %llu samples: top-1 agreement %.4f -> "
                   "%.4f, cosine %.6f -> %.6f\n", rr.layers, rr.layers == 1 ? "" : "s",
                   rr.final_node, (unsigned long long)rr.before.samples,
                   pare_compare_top1(&rr.before), pare_compare_top1(&rr.after),
                   pare_compare_cosine(&rr.before), pare_compare_cosine(&rr.after));
        if (have_agree)
            printf("agreement with the teacher on %s: top-1 %.4f, cosine %.6f (%llu samples)\n",
                   o_data, pare_compare_top1(&agree), pare_compare_cosine(&agree),
                   (unsigned long long)agree.samples);
    }
    rc = CLI_EXIT_OK;
done:
    pare_json_free(j);
    pare_tensors_free(sample, n_sample);
    pare_refit_report_release(&rr);
    free(drop);
    free(labels);
    pare_block_list_release(&bl);
    pare_model_free(m);
    pare_model_free(t);
    return rc;
}

int main(int argc, char **argv)
{
    cli_args args;
    int rc = cli_parse(&prog, argc, argv, &args);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *teacher = args.argv[0];
    if (!o_output)
        rc = cli_usage_error("-o OUTPUT is required");
    else if (!isnan(o_temperature) && !(o_temperature > 0))
        rc = cli_usage_error("--temperature must be > 0 (got %g)", o_temperature);
    else if (!isnan(o_width) && !(o_width > 0 && o_width <= 1))
        rc = cli_usage_error("--width must be in (0, 1] (got %g)", o_width);
    else if (o_student && (!isnan(o_temperature) || o_top_k || o_dtype || o_features.n ||
                           o_outputs.n || o_compress || o_resume))
        rc = cli_usage_error("--temperature, --top-k, --dtype, --features, --outputs, "
                             "--compress and --resume are for soft targets, not --student");
    else if (!o_student && (o_drop || o_low_rank || !isnan(o_width) || o_refit.n))
        rc = cli_usage_error("--drop-layers, --low-rank, --width and --refit need --student");
    else if (o_student && !o_drop && !o_low_rank && isnan(o_width) && !o_refit.n)
        rc = cli_usage_error("--student needs --drop-layers, --low-rank, --width or --refit");
    else if (!o_student && !o_data)
        rc = cli_usage_error("--data DATA is required for soft targets");
    else if (strcmp(o_output, "-") == 0)
        rc = cli_usage_error("-o -: the output must be a file");
    if (rc == CLI_CONTINUE)
        rc = o_student ? run_student(teacher) : run_targets(teacher);
    cli_args_release(&args);
    cli_list_release(&o_outputs);
    cli_list_release(&o_features);
    cli_list_release(&o_refit);
    return rc;
}

/* Reading models: path or stdin, plain or gzip, then protobuf and the IR. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "internal.h"

static bool is_gzip(const uint8_t *b, size_t n)
{
    return n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

static pare_status gunzip(const uint8_t *in, size_t n, uint64_t limit, uint8_t **out,
                          size_t *out_len, pare_error *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return PARE_NOMEM(err);
    size_t cap = n * 4 < (1u << 20) ? (1u << 20) : n * 4, len = 0;
    if (cap > limit)
        cap = (size_t)limit + 1;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        return PARE_NOMEM(err);
    }
    const uint8_t *p = in;
    size_t left = n;
    int rc = Z_OK;
    for (;;) {
        if (len == cap) {
            if ((uint64_t)len > limit) {
                free(buf);
                inflateEnd(&zs);
                return pare_error_set(err, PARE_ERR_LIMIT,
                                      "gzip stream decompresses to more than the limit of %llu "
                                      "bytes (raise it with --max-decompressed)",
                                      (unsigned long long)limit);
            }
            size_t nc = cap * 2;
            if ((uint64_t)nc > limit + 1)
                nc = (size_t)limit + 1;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                inflateEnd(&zs);
                return PARE_NOMEM(err);
            }
            buf = nb;
            cap = nc;
        }
        uInt chunk_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
        uInt chunk_out = cap - len > UINT_MAX ? UINT_MAX : (uInt)(cap - len);
        zs.next_in = (Bytef *)p;
        zs.avail_in = chunk_in;
        zs.next_out = buf + len;
        zs.avail_out = chunk_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        p += chunk_in - zs.avail_in;
        left -= chunk_in - zs.avail_in;
        len += chunk_out - zs.avail_out;
        /* A real model compresses a few times at most; past 64 MiB a ratio
         * above 100:1 is treated as a decompression bomb. */
        if (len > ((size_t)64 << 20) && len / 100 > (size_t)(p - in) + 1) {
            free(buf);
            inflateEnd(&zs);
            return pare_error_set(err, PARE_ERR_LIMIT,
                                  "gzip stream expands more than 100:1 (%zu bytes from %zu): "
                                  "refusing a likely decompression bomb", len, (size_t)(p - in));
        }
        if (rc == Z_STREAM_END) {
            /* concatenated gzip members: continue with the next one */
            if (left >= 2 && is_gzip(p, left)) {
                inflateReset(&zs);
                continue;
            }
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            inflateEnd(&zs);
            return pare_error_set(err, PARE_ERR_FORMAT, "corrupt gzip stream at byte %zu: %s",
                                  (size_t)(p - in), zs.msg ? zs.msg : "inflate failed");
        }
        if (rc == Z_BUF_ERROR && left == 0 && len < cap) {
            free(buf);
            inflateEnd(&zs);
            return pare_error_set(err, PARE_ERR_FORMAT, "truncated gzip stream");
        }
    }
    inflateEnd(&zs);
    if ((uint64_t)len > limit) {
        free(buf);
        return pare_error_set(err, PARE_ERR_LIMIT,
                              "gzip stream decompresses to more than the limit of %llu bytes "
                              "(raise it with --max-decompressed)", (unsigned long long)limit);
    }
    *out = buf;
    *out_len = len;
    return PARE_OK;
}

/* protobuf-c says only "NULL" when unpacking fails; walk the wire format of
 * the top-level message to say where. */
static void diagnose_wire(const uint8_t *b, size_t n, char *buf, size_t size)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint64_t tag = 0;
        int shift = 0;
        while (i < n && shift < 64) {
            tag |= (uint64_t)(b[i] & 0x7f) << shift;
            shift += 7;
            if (!(b[i++] & 0x80))
                break;
        }
        if (i >= n && (b[i - 1] & 0x80)) {
            snprintf(buf, size, "truncated field tag at byte %zu", start);
            return;
        }
        unsigned wt = tag & 7;
        uint64_t field = tag >> 3;
        if (field == 0) {
            snprintf(buf, size, "invalid field number 0 at byte %zu", start);
            return;
        }
        uint64_t len = 0;
        switch (wt) {
        case 0:
            while (i < n && (b[i] & 0x80))
                i++;
            if (i >= n) {
                snprintf(buf, size, "truncated varint (field %llu) at byte %zu",
                         (unsigned long long)field, start);
                return;
            }
            i++;
            break;
        case 1:
            len = 8;
            goto skip;
        case 5:
            len = 4;
            goto skip;
        case 2:
            shift = 0;
            len = 0;
            while (i < n && shift < 64) {
                len |= (uint64_t)(b[i] & 0x7f) << shift;
                shift += 7;
                if (!(b[i++] & 0x80))
                    break;
            }
        skip:
            if (len > n - i) {
                snprintf(buf, size, "field %llu at byte %zu claims %llu bytes, only %zu remain "
                         "(truncated or corrupt file)", (unsigned long long)field, start,
                         (unsigned long long)len, n - i);
                return;
            }
            i += (size_t)len;
            break;
        default:
            snprintf(buf, size, "invalid wire type %u (field %llu) at byte %zu", wt,
                     (unsigned long long)field, start);
            return;
        }
    }
    snprintf(buf, size, "a nested message is malformed");
}

pare_status pare_model_load_buffer(const void *buf, size_t len, const char *base_dir,
                                   const pare_load_opts *opts, pare_model **out, pare_error *err)
{
    pare_load_opts o = PARE_LOAD_OPTS_INIT;
    if (opts)
        o = *opts;
    if (!o.max_decompressed)
        o.max_decompressed = PARE_DEFAULT_MAX_DECOMPRESSED;
    *out = NULL;
    if (len == 0)
        return pare_error_set(err, PARE_ERR_FORMAT, "empty file (0 bytes)");
    const uint8_t *data = buf;
    uint8_t *plain = NULL;
    size_t plain_len = len;
    if (is_gzip(data, len)) {
        pare_status st = gunzip(data, len, o.max_decompressed, &plain, &plain_len, err);
        if (st)
            return st;
        data = plain;
        if (plain_len == 0) {
            free(plain);
            return pare_error_set(err, PARE_ERR_FORMAT, "gzip stream holds an empty file");
        }
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, plain_len, data);
    if (!mp) {
        char why[256];
        diagnose_wire(data, plain_len, why, sizeof why);
        free(plain);
        return pare_error_set(err, PARE_ERR_FORMAT, "not a valid ONNX protobuf: %s", why);
    }
    free(plain);
    return pare__model_from_proto(mp, base_dir, o.no_external, out, err);
}

static pare_status read_stream(int fd, uint8_t **out, size_t *len, uint64_t limit, pare_error *err)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        return PARE_NOMEM(err);
    for (;;) {
        if (n == cap) {
            if ((uint64_t)cap > limit) {
                free(b);
                return pare_error_set(err, PARE_ERR_LIMIT, "input larger than %llu bytes",
                                      (unsigned long long)limit);
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return PARE_NOMEM(err);
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(b);
            return pare_error_set(err, PARE_ERR_IO, "read: %s", strerror(errno));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = b;
    *len = n;
    return PARE_OK;
}

pare_status pare_model_load(const char *path, const pare_load_opts *opts, pare_model **out,
                            pare_error *err)
{
    *out = NULL;
    pare_load_opts o = PARE_LOAD_OPTS_INIT;
    if (opts)
        o = *opts;
    if (!o.max_decompressed)
        o.max_decompressed = PARE_DEFAULT_MAX_DECOMPRESSED;
    if (strcmp(path, "-") == 0) {
        uint8_t *b;
        size_t n;
        pare_status st = read_stream(STDIN_FILENO, &b, &n, o.max_decompressed, err);
        if (st)
            return st;
        st = pare_model_load_buffer(b, n, NULL, &o, out, err);
        free(b);
        if (!st)
            (*out)->file_size = n;
        return st;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pare_error_set(err, PARE_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return pare_error_set(err, PARE_ERR_IO, "cannot stat: %s", strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return pare_error_set(err, PARE_ERR_IO, "is a directory, not a model file");
    }
    /* base dir for external data: the folder holding the model */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dl = (size_t)(slash - path);
        if (dl >= sizeof dir)
            dl = sizeof dir - 1;
        memcpy(dir, path, dl);
        dir[dl ? dl : 1] = '\0';
        if (dl == 0)
            dir[0] = '/';
    } else {
        strcpy(dir, ".");
    }
    pare_status st;
    if (S_ISREG(sb.st_mode)) {
        size_t n = (size_t)sb.st_size;
        if (n == 0) {
            close(fd);
            return pare_error_set(err, PARE_ERR_FORMAT, "empty file (0 bytes)");
        }
        void *map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
            return pare_error_set(err, PARE_ERR_IO, "mmap: %s", strerror(errno));
        madvise(map, n, MADV_SEQUENTIAL);
        st = pare_model_load_buffer(map, n, dir, &o, out, err);
        munmap(map, n);
        if (!st)
            (*out)->file_size = n;
        return st;
    }
    uint8_t *b;
    size_t n;
    st = read_stream(fd, &b, &n, o.max_decompressed, err);
    close(fd);
    if (st)
        return st;
    st = pare_model_load_buffer(b, n, dir, &o, out, err);
    free(b);
    if (!st)
        (*out)->file_size = n;
    return st;
}

void pare_model_free(pare_model *m)
{
    if (!m)
        return;
    pare__graph_free(m->graph);
    if (m->proto)
        onnx__model_proto__free_unpacked(m->proto, NULL);
    for (size_t i = 0; i < m->n_ext; i++) {
        if (m->ext[i].addr)
            munmap(m->ext[i].addr, m->ext[i].len);
        free(m->ext[i].location);
    }
    free(m->ext);
    for (size_t i = 0; i < m->n_opsets; i++)
        free(m->opsets[i].domain);
    free(m->opsets);
    free(m->base_dir);
    pare_problems_release(&m->load_problems);
    free(m);
}

pare_graph *pare_model_graph(pare_model *m)
{
    return m->graph;
}

static const char *s0(const char *s)
{
    return s ? s : "";
}

int64_t pare_model_ir_version(const pare_model *m)
{
    return m->proto->has_ir_version ? m->proto->ir_version : 0;
}
const char *pare_model_producer(const pare_model *m)
{
    return s0(m->proto->producer_name);
}
const char *pare_model_producer_version(const pare_model *m)
{
    return s0(m->proto->producer_version);
}
const char *pare_model_domain(const pare_model *m)
{
    return s0(m->proto->domain);
}
int64_t pare_model_version(const pare_model *m)
{
    return m->proto->has_model_version ? m->proto->model_version : 0;
}
const char *pare_model_doc(const pare_model *m)
{
    return s0(m->proto->doc_string);
}
size_t pare_model_metadata_count(const pare_model *m)
{
    return m->proto->n_metadata_props;
}
void pare_model_metadata(const pare_model *m, size_t i, const char **key, const char **value)
{
    *key = s0(m->proto->metadata_props[i]->key);
    *value = s0(m->proto->metadata_props[i]->value);
}
size_t pare_model_function_count(const pare_model *m)
{
    return m->proto->n_functions;
}
const char *pare_model_function_name(const pare_model *m, size_t i, const char **domain)
{
    if (domain)
        *domain = s0(m->proto->functions[i]->domain);
    return s0(m->proto->functions[i]->name);
}
bool pare_model_has_training_info(const pare_model *m)
{
    return m->proto->n_training_info > 0;
}
size_t pare_model_opset_count(const pare_model *m)
{
    return m->n_opsets;
}
void pare_model_opset(const pare_model *m, size_t i, const char **domain, int64_t *version)
{
    *domain = m->opsets[i].domain;
    *version = m->opsets[i].version;
}
int64_t pare_model_opset_version(const pare_model *m, const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0)
            return m->opsets[i].version;
    return 0;
}
pare_status pare_model_set_opset(pare_model *m, const char *domain, int64_t version, pare_error *err)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0) {
            if (m->opsets[i].version != version)
                m->opsets_dirty = true;
            m->opsets[i].version = version;
            return PARE_OK;
        }
    pare_opset *no = realloc(m->opsets, (m->n_opsets + 1) * sizeof *no);
    if (!no)
        return PARE_NOMEM(err);
    m->opsets = no;
    if (!(no[m->n_opsets].domain = strdup(domain)))
        return PARE_NOMEM(err);
    no[m->n_opsets].version = version;
    m->n_opsets++;
    m->opsets_dirty = true;
    return PARE_OK;
}
uint64_t pare_model_file_size(const pare_model *m)
{
    return m->file_size;
}
uint64_t pare_model_external_bytes(const pare_model *m)
{
    return m->external_bytes;
}

/* File helpers of lib/data: atomic output, whole-file input, pread, dirs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data_internal.h"

char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    if (slash)
        p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

pare_status out_file_open(out_file *o, const char *path, bool allow_stdout, pare_error *err)
{
    memset(o, 0, sizeof *o);
    if (strcmp(path, "-") == 0) {
        if (!allow_stdout)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                  "-: writing to stdout is not supported for this format");
        if (isatty(STDOUT_FILENO))
            return pare_error_set(err, PARE_ERR_ARG, "-: refusing to write binary data to a terminal");
        o->f = stdout;
        return PARE_OK;
    }
    /* The temporary lives beside the target so that rename() is atomic. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    if (!*base)
        return pare_error_set(err, PARE_ERR_ARG, "%s: not a file name", path);
    size_t cap = strlen(path) + 64;
    char *tmp = malloc(cap);
    char *dup = strdup(path);
    if (!tmp || !dup) {
        free(tmp);
        free(dup);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    int fd = -1;
    for (unsigned attempt = 0; attempt < 1000 && fd < 0; attempt++) {
        snprintf(tmp, cap, "%.*s.%s.tmp%ld.%u", (int)dirlen, path, base, (long)getpid(), attempt);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        free(dup);
        return pare_error_set(err, PARE_ERR_IO, "%s: cannot create a temporary file: %s", path,
                              strerror(e));
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        free(dup);
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(e));
    }
    o->tmp = tmp;
    o->path = dup;
    return PARE_OK;
}

pare_status out_file_write(out_file *o, const void *buf, size_t n, pare_error *err)
{
    if (n && fwrite(buf, 1, n, o->f) != n)
        return pare_error_set(err, PARE_ERR_IO, "%s: write failed: %s", o->path ? o->path : "-",
                              strerror(errno));
    return PARE_OK;
}

static void out_file_release(out_file *o)
{
    free(o->tmp);
    free(o->path);
    memset(o, 0, sizeof *o);
}

pare_status out_file_commit(out_file *o, pare_error *err)
{
    if (!o->tmp) { /* stdout */
        if (fflush(o->f) != 0 || ferror(o->f))
            return pare_error_set(err, PARE_ERR_IO, "-: write failed: %s", strerror(errno));
        out_file_release(o);
        return PARE_OK;
    }
    int bad = fflush(o->f) != 0 || ferror(o->f);
    int e = errno;
    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->f = NULL;
    if (!bad && rename(o->tmp, o->path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(o->tmp);
        pare_error_set(err, PARE_ERR_IO, "%s: write failed: %s", o->path, strerror(e));
        out_file_release(o);
        return PARE_ERR_IO;
    }
    out_file_release(o);
    return PARE_OK;
}

void out_file_abort(out_file *o)
{
    if (o->tmp) {
        if (o->f)
            fclose(o->f);
        unlink(o->tmp);
    } else if (o->f) {
        fflush(o->f);
    }
    out_file_release(o);
}

pare_status pread_full(int fd, void *dst, size_t n, uint64_t off, pare_error *err)
{
    unsigned char *p = dst;
    while (n) {
        size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return pare_error_set(err, PARE_ERR_IO, "read failed: %s", strerror(errno));
        }
        if (r == 0)
            return pare_error_set(err, PARE_ERR_FORMAT, "truncated at byte %llu",
                                  (unsigned long long)off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return PARE_OK;
}

pare_status read_whole_file(const char *path, uint64_t max, void **buf, size_t *len,
                            pare_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    size_t cap = 1 << 16;
    if (fstat(fd, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            if (!is_stdin)
                close(fd);
            return pare_error_set(err, PARE_ERR_IO, "%s: is a directory", path);
        }
        if (S_ISREG(sb.st_mode) && sb.st_size > 0 && (uint64_t)sb.st_size < SIZE_MAX)
            cap = (size_t)sb.st_size + 1;
    }
    unsigned char *b = malloc(cap);
    size_t n = 0;
    pare_status st = PARE_OK;
    if (!b)
        st = pare_error_set(err, PARE_ERR_NOMEM, "%s: out of memory", path);
    while (!st) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                st = pare_error_set(err, PARE_ERR_LIMIT, "%s: file too large", path);
                break;
            }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                st = pare_error_set(err, PARE_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = pare_error_set(err, PARE_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if ((uint64_t)n > max)
            st = pare_error_set(err, PARE_ERR_LIMIT, "%s: larger than %llu bytes", path,
                                (unsigned long long)max);
    }
    if (!is_stdin)
        close(fd);
    if (st) {
        free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return PARE_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void free_names(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

pare_status list_dir(const char *dir, char ***names, size_t *count, pare_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", dir, strerror(errno));
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    pare_status st = PARE_OK;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[n] = strdup(e->d_name))) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (st) {
        free_names(v, n);
        return st;
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_names);
    *names = v;
    *count = n;
    return PARE_OK;
}

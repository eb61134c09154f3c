/* The CPU backend (host memory, the CPU kernel registry) and the list of
 * registered device backends that sessions choose from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exec/backend.h"
#include "pare_config.h"
#include <dlfcn.h>
#include <pthread.h>

static const pare_kernel *cpu_supports(const pare_backend *b, const pare_node *n, int64_t opset,
                                       const int *dtypes, size_t n_in, char *why,
                                       size_t why_size)
{
    (void)b;
    const pare_kreg *r = pare_kreg_cpu();
    if (!r) {
        snprintf(why, why_size, "the CPU kernel registry could not be built");
        return NULL;
    }
    return pare_kreg_select(r, n->domain, n->op_type, opset, dtypes, n_in, why, why_size);
}

static pare_status cpu_alloc(const pare_backend *b, void *sctx, size_t bytes, void **ptr,
                             pare_error *err)
{
    (void)b;
    (void)sctx;
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n < bytes)
        return pare_error_set(err, PARE_ERR_LIMIT, "buffer of %zu bytes is too large", bytes);
    *ptr = aligned_alloc(64, n ? n : 64);
    if (!*ptr)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return PARE_OK;
}

static void cpu_free(const pare_backend *b, void *sctx, void *ptr)
{
    (void)b;
    (void)sctx;
    free(ptr);
}

static pare_status cpu_copy(const pare_backend *b, void *sctx, void *dst, const void *src,
                            size_t bytes, pare_error *err)
{
    (void)b;
    (void)sctx;
    (void)err;
    if (bytes)
        memcpy(dst, src, bytes);
    return PARE_OK;
}

static pare_status cpu_sync(const pare_backend *b, void *sctx, pare_error *err)
{
    (void)b;
    (void)sctx;
    (void)err;
    return PARE_OK;
}

static const pare_backend cpu_backend = {
    .name = "cpu",
    .ctx = NULL,
    .host_memory = true,
    .available = NULL,
    .open = NULL,
    .close = NULL,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .sync = cpu_sync,
};

const pare_backend *pare_backend_cpu(void)
{
    return &cpu_backend;
}

#define MAX_BACKENDS 4
static const pare_backend *registered[MAX_BACKENDS];

pare_status pare_backend_register(const pare_backend *b, pare_error *err)
{
    if (!b || !b->name || !b->supports || !b->alloc || !b->free || !b->to_device ||
        !b->to_host || !b->sync)
        return pare_error_set(err, PARE_ERR_ARG, "backend lacks a name or a function");
    if (strcmp(b->name, "cpu") == 0 || strcmp(b->name, "auto") == 0)
        return pare_error_set(err, PARE_ERR_ARG, "backend name '%s' is reserved", b->name);
    for (int i = 0; i < MAX_BACKENDS; i++)
        if (registered[i] && strcmp(registered[i]->name, b->name) == 0) {
            registered[i] = b;
            return PARE_OK;
        }
    for (int i = 0; i < MAX_BACKENDS; i++)
        if (!registered[i]) {
            registered[i] = b;
            return PARE_OK;
        }
    return pare_error_set(err, PARE_ERR_LIMIT, "more than %d backends", MAX_BACKENDS);
}

void pare_backend_unregister(const char *name)
{
    for (int i = 0; name && i < MAX_BACKENDS; i++)
        if (registered[i] && strcmp(registered[i]->name, name) == 0)
            registered[i] = NULL;
}

static bool usable(const pare_backend *b, int gpu, char *why, size_t why_size)
{
    if (why_size)
        why[0] = 0;
    return !b->available || b->available(b, gpu, why, why_size);
}

/* A CUDA build registers its backend before the first lookup that names a
 * device, unless a test registered a backend of that name first. The
 * backend lives in libpare-cuda.so (lib/meson.build says why), loaded here
 * from PARE_CUDA_LIBRARY when set, else from beside libpare itself, else
 * through the loader's search path; why it could not be loaded is kept for
 * the error of a session that asks for "cuda". A build without CUDA loads
 * only PARE_CUDA_LIBRARY (the emulated backend of tests/cuda/emu). */
static char cuda_load_error[512];

static bool cuda_library_named(void)
{
    const char *env = getenv("PARE_CUDA_LIBRARY");
    return env && *env;
}

static void *open_cuda_library(void)
{
    const char *env = getenv("PARE_CUDA_LIBRARY");
    if (env && *env)
        return dlopen(env, RTLD_NOW | RTLD_LOCAL);
    Dl_info info;
    if (dladdr((void *)&pare_backend_get, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash) {
            char path[4096];
            int n = snprintf(path, sizeof path, "%.*s/libpare-cuda.so",
                             (int)(slash - info.dli_fname), info.dli_fname);
            if (n > 0 && (size_t)n < sizeof path) {
                void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (h)
                    return h;
            }
        }
    }
    return dlopen("libpare-cuda.so", RTLD_NOW | RTLD_LOCAL);
}

static void register_cuda(void)
{
    pare_error err;
    for (int i = 0; i < MAX_BACKENDS; i++)
        if (registered[i] && strcmp(registered[i]->name, "cuda") == 0)
            return;
    if (!PARE_HAVE_CUDA && !cuda_library_named())
        return;
    void *h = open_cuda_library();
    if (!h) {
        const char *e = dlerror();
        snprintf(cuda_load_error, sizeof cuda_load_error, "cannot load libpare-cuda.so: %s",
                 e ? e : "not found");
        return;
    }
    void *sym = dlsym(h, "pare_backend_cuda");
    const pare_backend *(*get)(void) = NULL;
    if (sym)
        memcpy(&get, &sym, sizeof get);
    if (!get) {
        snprintf(cuda_load_error, sizeof cuda_load_error,
                 "libpare-cuda.so has no pare_backend_cuda");
        return;
    }
    if (pare_backend_register(get(), &err))
        snprintf(cuda_load_error, sizeof cuda_load_error, "%s", err.msg);
}
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;

pare_status pare_backend_get(const char *device, int gpu, const pare_backend **out,
                             pare_error *err)
{
    *out = &cpu_backend;
    if (!device || strcmp(device, "cpu") == 0)
        return PARE_OK;
    pthread_once(&cuda_once, register_cuda); /* only when a device is asked for */
    char why[256];
    if (strcmp(device, "auto") == 0) {
        for (int i = 0; i < MAX_BACKENDS; i++)
            if (registered[i] && usable(registered[i], gpu, why, sizeof why)) {
                *out = registered[i];
                return PARE_OK;
            }
        return PARE_OK; /* no device usable: the CPU */
    }
    for (int i = 0; i < MAX_BACKENDS; i++) {
        if (!registered[i] || strcmp(registered[i]->name, device) != 0)
            continue;
        if (!usable(registered[i], gpu, why, sizeof why))
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "device '%s' is not usable: %s",
                                  device, why[0] ? why : "unavailable");
        *out = registered[i];
        return PARE_OK;
    }
    if (strcmp(device, "cuda") == 0 && (PARE_HAVE_CUDA || cuda_library_named()))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "device 'cuda' is not usable: %s",
                              cuda_load_error[0] ? cuda_load_error : "not registered");
    if (strcmp(device, "cuda") == 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "device 'cuda': pare was built without CUDA");
    return pare_error_set(err, PARE_ERR_ARG, "unknown device '%s' (cpu, cuda or auto)", device);
}

/* Kernel registry: the family tables merged into one array sorted by
 * (domain, op_type, since_version) and searched with bsearch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "exec/kernel.h"

static const pare_kernel **sorted;
static size_t n_sorted;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cmp_kernel(const void *a, const void *b)
{
    const pare_kernel *x = *(const pare_kernel *const *)a, *y = *(const pare_kernel *const *)b;
    int c = strcmp(x->domain ? x->domain : "", y->domain ? y->domain : "");
    if (c)
        return c;
    c = strcmp(x->op_type, y->op_type);
    if (c)
        return c;
    return (x->since_version > y->since_version) - (x->since_version < y->since_version);
}

static void build(void)
{
    const pare_kernel *tables[] = {pare_kernels_elementwise, pare_kernels_linalg,
                                   pare_kernels_shape, pare_kernels_quant, pare_kernels_control,
                                   pare_kernels_rnn, pare_kernels_extra};
    size_t n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const pare_kernel *k = tables[t]; k->op_type; k++)
            n++;
    sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return;
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const pare_kernel *k = tables[t]; k->op_type; k++)
            sorted[n_sorted++] = k;
    qsort(sorted, n_sorted, sizeof *sorted, cmp_kernel);
}

const pare_kernel *pare_kernel_find(const char *domain, const char *op_type, int64_t opset)
{
    pthread_once(&once, build);
    if (!sorted)
        return NULL;
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    /* lower bound of (domain, op_type) */
    size_t lo = 0, hi = n_sorted;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const pare_kernel *k = sorted[mid];
        int c = strcmp(k->domain ? k->domain : "", domain);
        if (!c)
            c = strcmp(k->op_type, op_type);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const pare_kernel *best = NULL;
    for (size_t i = lo; i < n_sorted; i++) {
        const pare_kernel *k = sorted[i];
        if (strcmp(k->domain ? k->domain : "", domain) || strcmp(k->op_type, op_type))
            break;
        if (k->since_version <= opset && (k->until_version == 0 || opset <= k->until_version))
            best = k; /* sorted by since_version: the newest that fits wins */
    }
    return best;
}

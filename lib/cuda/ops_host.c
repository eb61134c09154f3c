/* Host-side geometry and parameters of the CUDA dnn and quant kernels; see
 * ops_host.h. Semantics as the ONNX spec and the CPU kernels
 * (lib/exec/kernels_linalg_ops.c, kernels_shape_resize.c, kernels_quant.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda/ops_host.h"
#include "exec/kernel.h"

/* Largest kernel/stride/dilation/pad accepted: far above real models, low
 * enough that the size arithmetic below cannot overflow. */
#define WIN_ATTR_MAX ((int64_t)1 << 30)

static pare_status win_ints(const pare_node *n, const char *name, int64_t *dst, int max,
                            int *count, int64_t minv, pare_error *err)
{
    const int64_t *v;
    size_t c = pare_node_attr_ints(n, name, &v);
    if (c > (size_t)max)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "attribute %s has %zu values (at most %d)",
                              name, c, max);
    for (size_t i = 0; i < c; i++) {
        if (v[i] < minv || v[i] > WIN_ATTR_MAX)
            return pare_error_set(err, PARE_ERR_INVALID, "attribute %s: value %lld out of range",
                                  name, (long long)v[i]);
        dst[i] = v[i];
    }
    *count = (int)c;
    return PARE_OK;
}

pare_status pcu_win_parse(const pare_node *n, pcu_win_attrs *a, pare_error *err)
{
    memset(a, 0, sizeof *a);
    const char *ap = pare_node_attr_string(n, "auto_pad", "NOTSET");
    if (!ap[0] || !strcmp(ap, "NOTSET"))
        a->auto_pad = PCU_PAD_NOTSET;
    else if (!strcmp(ap, "SAME_UPPER"))
        a->auto_pad = PCU_PAD_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER"))
        a->auto_pad = PCU_PAD_SAME_LOWER;
    else if (!strcmp(ap, "VALID"))
        a->auto_pad = PCU_PAD_VALID;
    else
        return pare_error_set(err, PARE_ERR_INVALID, "unknown auto_pad '%s'", ap);
    pare_status st;
    if ((st = win_ints(n, "kernel_shape", a->kernel, PCU_MAXSP, &a->nk, 1, err)) ||
        (st = win_ints(n, "strides", a->strides, PCU_MAXSP, &a->ns, 1, err)) ||
        (st = win_ints(n, "dilations", a->dil, PCU_MAXSP, &a->nd, 1, err)) ||
        (st = win_ints(n, "pads", a->pads, 2 * PCU_MAXSP, &a->np, 0, err)) ||
        (st = win_ints(n, "output_padding", a->out_pad, PCU_MAXSP, &a->nop, 0, err)) ||
        (st = win_ints(n, "output_shape", a->out_shape, PCU_MAXSP + 2, &a->nos, 1, err)))
        return st;
    a->group = pare_node_attr_int(n, "group", 1);
    if (a->group < 1 || a->group > WIN_ATTR_MAX)
        return pare_error_set(err, PARE_ERR_INVALID, "group %lld out of range",
                              (long long)a->group);
    a->ceil_mode = pare_node_attr_int(n, "ceil_mode", 0) != 0;
    a->count_include_pad = pare_node_attr_int(n, "count_include_pad", 0) != 0;
    return PARE_OK;
}

static pare_status win_common(const pcu_win_attrs *a, int nsp, const int64_t *in,
                              const int64_t *kernel, pcu_win_geom *g, pare_error *err)
{
    memset(g, 0, sizeof *g);
    if (nsp < 1 || nsp > PCU_MAXSP)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%d spatial dims (1 to %d supported)", nsp,
                              PCU_MAXSP);
    if ((a->ns && a->ns != nsp) || (a->nd && a->nd != nsp) || (a->np && a->np != 2 * nsp) ||
        (a->nk && a->nk != nsp))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "kernel_shape/strides/dilations/pads do not match %d spatial dims",
                              nsp);
    g->nsp = nsp;
    for (int i = 0; i < nsp; i++) {
        g->in[i] = in[i];
        g->k[i] = a->nk ? a->kernel[i] : kernel[i];
        g->s[i] = a->ns ? a->strides[i] : 1;
        g->d[i] = a->nd ? a->dil[i] : 1;
        if (g->k[i] < 1 || g->k[i] > WIN_ATTR_MAX || in[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "bad kernel or input size in dim %d", i);
    }
    return PARE_OK;
}

static void win_symmetric(pcu_win_geom *g)
{
    g->symmetric = true;
    for (int i = 0; i < g->nsp; i++)
        if (g->pb[i] != g->pe[i])
            g->symmetric = false;
}

pare_status pcu_win_geom_make(const pcu_win_attrs *a, int nsp, const int64_t *in,
                              const int64_t *kernel, bool ceil_mode, pcu_win_geom *g,
                              pare_error *err)
{
    pare_status st = win_common(a, nsp, in, kernel, g, err);
    if (st)
        return st;
    for (int i = 0; i < nsp; i++) {
        int64_t dk = (g->k[i] - 1) * g->d[i] + 1, s = g->s[i];
        switch (a->auto_pad) {
        case PCU_PAD_SAME_UPPER:
        case PCU_PAD_SAME_LOWER: {
            g->out[i] = (in[i] + s - 1) / s;
            int64_t total = (g->out[i] - 1) * s + dk - in[i];
            if (total < 0)
                total = 0;
            if (a->auto_pad == PCU_PAD_SAME_UPPER) {
                g->pb[i] = total / 2;
                g->pe[i] = total - g->pb[i];
            } else {
                g->pe[i] = total / 2;
                g->pb[i] = total - g->pe[i];
            }
            break;
        }
        case PCU_PAD_VALID:
            if (in[i] < dk)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "window %lld larger than input %lld in spatial dim %d",
                                      (long long)dk, (long long)in[i], i);
            g->out[i] = (in[i] - dk) / s + 1;
            break;
        default: {
            g->pb[i] = a->np ? a->pads[i] : 0;
            g->pe[i] = a->np ? a->pads[i + nsp] : 0;
            int64_t num = in[i] + g->pb[i] + g->pe[i] - dk;
            if (num < 0)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "window %lld larger than padded input %lld in spatial dim %d",
                                      (long long)dk, (long long)(in[i] + g->pb[i] + g->pe[i]),
                                      i);
            if (ceil_mode) {
                g->out[i] = (num + s - 1) / s + 1;
                /* the last window must start inside the input or the begin pad */
                if ((g->out[i] - 1) * s >= in[i] + g->pb[i])
                    g->out[i]--;
            } else {
                g->out[i] = num / s + 1;
            }
        }
        }
    }
    win_symmetric(g);
    return PARE_OK;
}

static int64_t floor_div2(int64_t v)
{
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

pare_status pcu_convt_geom_make(const pcu_win_attrs *a, int nsp, const int64_t *in,
                                const int64_t *kernel, pcu_win_geom *g, pare_error *err)
{
    pare_status st = win_common(a, nsp, in, kernel, g, err);
    if (st)
        return st;
    if ((a->nop && a->nop != nsp) || (a->nos && a->nos != nsp && a->nos != nsp + 2))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "output_padding/output_shape do not match %d spatial dims", nsp);
    /* output_shape may list N and C too (as the CPU accepts) */
    const int64_t *os = a->nos == nsp + 2 ? a->out_shape + 2 : a->out_shape;
    for (int i = 0; i < nsp; i++) {
        if (in[i] < 1)
            return pare_error_set(err, PARE_ERR_INVALID, "empty input in spatial dim %d", i);
        int64_t op = a->nop ? a->out_pad[i] : 0;
        int64_t full = (in[i] - 1) * g->s[i] + (g->k[i] - 1) * g->d[i] + 1;
        if (a->nos || a->auto_pad == PCU_PAD_SAME_UPPER || a->auto_pad == PCU_PAD_SAME_LOWER) {
            int64_t out = a->nos ? os[i] : in[i] * g->s[i];
            /* negative when the output is larger: zeros beyond the full result */
            int64_t total = full + op - out;
            if (a->auto_pad == PCU_PAD_SAME_UPPER) {
                g->pb[i] = floor_div2(total);
                g->pe[i] = total - g->pb[i];
            } else {
                g->pe[i] = floor_div2(total);
                g->pb[i] = total - g->pe[i];
            }
            g->out[i] = out;
        } else {
            g->pb[i] = a->np ? a->pads[i] : 0;
            g->pe[i] = a->np ? a->pads[i + nsp] : 0;
            g->out[i] = full + op - g->pb[i] - g->pe[i];
        }
        if (g->out[i] < 1)
            return pare_error_set(err, PARE_ERR_INVALID, "output size %lld in spatial dim %d",
                                  (long long)g->out[i], i);
    }
    win_symmetric(g);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* Resize                                                              */

static int pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
}

/* values of a 1-D float or int64 initializer into dst (at most 4), or -1 */
static int init_values(const pare_value *v, double *dst)
{
    const pare_tensor *t = v->init;
    if (!t || t->rank != 1 || t->dims[0] > 4)
        return -1;
    if (t->dtype != PARE_DT_FLOAT && t->dtype != PARE_DT_INT64 && t->dtype != PARE_DT_FLOAT16 &&
        t->dtype != PARE_DT_DOUBLE)
        return -1;
    for (int64_t i = 0; i < t->dims[0]; i++)
        dst[i] = pare_dtype_get_f64(t->dtype, t->data, (size_t)i);
    return (int)t->dims[0];
}

bool pcu_resize_parse(const pare_node *n, int64_t opset, pcu_resize_attrs *r, char *why,
                      size_t why_size)
{
    memset(r, 0, sizeof *r);
    if (opset < 11) {
        snprintf(why, why_size, "Resize before opset 11 runs on the cpu");
        return false;
    }
    static const char *const modes[] = {"nearest", "linear"};
    const char *m = pare_node_attr_string(n, "mode", "nearest");
    if ((r->mode = pick(m, modes, 2)) < 0) {
        snprintf(why, why_size, "Resize mode '%s' runs on the cpu", m);
        return false;
    }
    static const char *const cts[] = {"half_pixel", "asymmetric", "align_corners",
                                      "pytorch_half_pixel", "half_pixel_symmetric"};
    const char *c = pare_node_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    if ((r->coord = pick(c, cts, 5)) < 0) {
        snprintf(why, why_size, "Resize coordinate_transformation_mode '%s' runs on the cpu", c);
        return false;
    }
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *nm = pare_node_attr_string(n, "nearest_mode", "round_prefer_floor");
    if ((r->nearest = pick(nm, nms, 4)) < 0) {
        snprintf(why, why_size, "Resize nearest_mode '%s' runs on the cpu", nm);
        return false;
    }
    if ((pare_node_attr_int(n, "antialias", 0) && r->mode == PCU_RS_LINEAR) ||
        pare_node_attr_int(n, "exclude_outside", 0) || pare_node_attr(n, "axes") ||
        strcmp(pare_node_attr_string(n, "keep_aspect_ratio_policy", "stretch"), "stretch")) {
        snprintf(why, why_size,
                 "Resize with antialias, exclude_outside, axes or keep_aspect_ratio_policy runs "
                 "on the cpu");
        return false;
    }
    const pare_value *sc = n->n_inputs > 2 ? n->inputs[2] : NULL;
    const pare_value *sz = n->n_inputs > 3 ? n->inputs[3] : NULL;
    const pare_value *given = sz ? sz : sc;
    if (!given) {
        snprintf(why, why_size, "Resize without scales or sizes");
        return false;
    }
    r->has_sizes = sz != NULL;
    r->has_scales = !sz;
    r->rank = 4;
    if (!given->init) { /* computed by the graph: read when the node runs */
        r->dynamic = true;
        return true;
    }
    double v[4];
    int cnt = init_values(given, v);
    pare_error err;
    if (cnt < 0) {
        snprintf(why, why_size, "Resize %s must be a 1-D float or int64 constant of 4 values "
                 "on cuda", sz ? "sizes" : "scales");
        return false;
    }
    if (pcu_resize_values(r, v, cnt, &err)) {
        snprintf(why, why_size, "%s", err.msg);
        return false;
    }
    return true;
}

pare_status pcu_resize_values(pcu_resize_attrs *r, const double *v, int count, pare_error *err)
{
    const char *what = r->has_sizes ? "sizes" : "scales";
    if (count != 4)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Resize %s must have 4 values on cuda "
                              "(has %d)", what, count);
    for (int i = 0; i < 4; i++) {
        if (r->has_sizes)
            r->sizes[i] = (int64_t)v[i];
        else
            r->scales[i] = v[i];
    }
    if (r->has_scales && (v[0] != 1 || v[1] != 1 || !(v[2] > 0) || !(v[3] > 0)))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Resize on cuda scales only H and W");
    return PARE_OK;
}

pare_status pcu_resize_geom_make(const pcu_resize_attrs *r, const int64_t *in_dims,
                                 pcu_resize_geom *g, pare_error *err)
{
    memset(g, 0, sizeof *g);
    for (int i = 0; i < 4; i++) {
        if (r->has_sizes) {
            g->out[i] = r->sizes[i];
        } else {
            double o = floor(r->scales[i] * (double)in_dims[i]);
            if (o > 9e15)
                return pare_error_set(err, PARE_ERR_LIMIT, "resized axis %d too large", i);
            g->out[i] = (int64_t)o;
        }
        if (g->out[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative output size on axis %d", i);
    }
    if (g->out[0] != in_dims[0] || g->out[1] != in_dims[1])
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Resize on cuda keeps N and C");
    for (int i = 0; i < 2; i++) {
        if (r->has_sizes)
            g->scale[i] = in_dims[2 + i] ? (double)g->out[2 + i] / (double)in_dims[2 + i] : 1.0;
        else
            g->scale[i] = r->scales[2 + i];
    }
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* quantization layout                                                 */

pare_status pcu_qlayout_make(int xrank, const int64_t *xdims, int srank, const int64_t *sdims,
                             int64_t axis_attr, int64_t block_size, pcu_qlayout *L,
                             pare_error *err)
{
    memset(L, 0, sizeof *L);
    L->n = 1;
    for (int i = 0; i < xrank; i++)
        L->n *= xdims[i];
    int64_t ns = 1;
    for (int i = 0; i < srank; i++)
        ns *= sdims[i];
    if (ns == 1) { /* one scale: per tensor, whatever block_size says (as the cpu) */
        L->mode = PCU_Q_TENSOR;
        L->axis_len = 1;
        L->inner = L->n;
        return PARE_OK;
    }
    int axis;
    pare_status st = pare_axis(axis_attr, xrank, &axis, err);
    if (st)
        return st;
    L->axis_len = xdims[axis];
    L->inner = 1;
    for (int d = axis + 1; d < xrank; d++)
        L->inner *= xdims[d];
    if (block_size <= 0) {
        if (srank != 1 || sdims[0] != xdims[axis])
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "scale of %lld elements does not match dim %d (%lld) of the "
                                  "input",
                                  (long long)ns, axis, (long long)xdims[axis]);
        L->mode = PCU_Q_AXIS;
        return PARE_OK;
    }
    if (srank != xrank)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "blocked quantization needs a scale of rank %d, got %d", xrank,
                              srank);
    int64_t nblk = (xdims[axis] + block_size - 1) / block_size;
    for (int d = 0; d < xrank; d++) {
        int64_t want = d == axis ? nblk : xdims[d];
        if (sdims[d] != want)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "blocked quantization: scale dim %d is %lld, expected %lld", d,
                                  (long long)sdims[d], (long long)want);
    }
    L->mode = PCU_Q_BLOCK;
    L->bs = block_size;
    L->nblk = nblk;
    return PARE_OK;
}

int64_t pcu_qlayout_index(const pcu_qlayout *L, int64_t e)
{
    return pcu_q_index(L->mode, L->inner, L->axis_len, L->bs, L->nblk, e);
}

/* ------------------------------------------------------------------ */
/* batched matmul shapes                                               */

pare_status pcu_mm_geom_make(int ar, const int64_t *a_dims, int br, const int64_t *b_dims,
                             pcu_mm_geom *g, pare_error *err)
{
    memset(g, 0, sizeof *g);
    if (ar < 1 || br < 1 || ar > PARE_MAX_RANK || br > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "matmul inputs must have rank >= 1");
    int64_t ad[PARE_MAX_RANK + 1], bd[PARE_MAX_RANK + 1];
    int r1 = ar, r2 = br;
    if (ar == 1) {
        ad[0] = 1;
        ad[1] = a_dims[0];
        r1 = 2;
    } else {
        memcpy(ad, a_dims, (size_t)ar * sizeof *ad);
    }
    if (br == 1) {
        bd[0] = b_dims[0];
        bd[1] = 1;
        r2 = 2;
    } else {
        memcpy(bd, b_dims, (size_t)br * sizeof *bd);
    }
    g->M = ad[r1 - 2];
    g->K = ad[r1 - 1];
    g->N = bd[r2 - 1];
    if (bd[r2 - 2] != g->K)
        return pare_error_set(err, PARE_ERR_INVALID, "matmul: inner dims %lld and %lld differ",
                              (long long)g->K, (long long)bd[r2 - 2]);
    int rb;
    int64_t bdims[PARE_MAX_RANK];
    pare_status st = pare_bcast_dims(r1 - 2, ad, r2 - 2, bd, &rb, bdims, err);
    if (st)
        return st;
    if (rb > PCU_MM_MAXB_HOST)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%d batch dims (at most %d on cuda)", rb,
                              PCU_MM_MAXB_HOST);
    int64_t sa[PARE_MAX_RANK], sb[PARE_MAX_RANK];
    pare_bcast_strides(rb, bdims, r1 - 2, ad, sa);
    pare_bcast_strides(rb, bdims, r2 - 2, bd, sb);
    g->batch = g->a_batches = g->b_batches = 1;
    for (int i = 0; i < rb; i++) {
        g->bdims[i] = bdims[i];
        g->sa[i] = sa[i];
        g->sb[i] = sb[i];
        g->batch *= bdims[i];
    }
    for (int i = 0; i < r1 - 2; i++)
        g->a_batches *= ad[i];
    for (int i = 0; i < r2 - 2; i++)
        g->b_batches *= bd[i];
    g->nb = rb;
    int r = 0;
    for (int i = 0; i < rb; i++)
        g->dims[r++] = bdims[i];
    if (ar > 1)
        g->dims[r++] = g->M;
    if (br > 1)
        g->dims[r++] = g->N;
    g->rank = r;
    return PARE_OK;
}

int pcu_mm_param_kind(int64_t n, int64_t len, int64_t batches)
{
    if (n == 1)
        return 0;
    if (n == len)
        return 1;
    if (n == len * batches)
        return 2;
    return -1;
}

/* ------------------------------------------------------------------ */
/* cache keys                                                          */

void pcu_conv_key_make(int dtype, int xrank, const int64_t *xd, int wrank, const int64_t *wd,
                       bool tf32, pcu_conv_key *key)
{
    memset(key, 0, sizeof *key); /* padding too: keys compare field by field anyway */
    key->dtype = dtype;
    key->xrank = xrank < 2 + PCU_MAXSP ? xrank : 2 + PCU_MAXSP;
    key->wrank = wrank < 2 + PCU_MAXSP ? wrank : 2 + PCU_MAXSP;
    for (int i = 0; i < key->xrank; i++)
        key->x[i] = xd[i];
    for (int i = 0; i < key->wrank; i++)
        key->w[i] = wd[i];
    key->tf32 = tf32;
}

bool pcu_conv_key_eq(const pcu_conv_key *a, const pcu_conv_key *b)
{
    if (a->dtype != b->dtype || a->xrank != b->xrank || a->wrank != b->wrank || a->tf32 != b->tf32)
        return false;
    for (int i = 0; i < a->xrank; i++)
        if (a->x[i] != b->x[i])
            return false;
    for (int i = 0; i < a->wrank; i++)
        if (a->w[i] != b->w[i])
            return false;
    return true;
}

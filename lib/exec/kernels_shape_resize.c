/* Included from kernels_shape.c: Resize, Upsample, GridSample, Col2Im.
 *
 * Resize builds, for every axis, the input taps (index, weight) of each output
 * coordinate, following the ONNX reference: the coordinate transform gives
 * x_original; ratio = x - floor(x) (1 when x is an integer, so the left pixel is
 * preferred); n taps start at floor(x) - n/2 + 1 (floor(x) - n/2 for an integer
 * x) and are clamped to the edge. The output is then the product of the
 * per-axis taps, which is what the separable reference computes. */

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TF_CROP };
enum { NM_PREFER_FLOOR, NM_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
enum { KA_STRETCH, KA_NOT_LARGER, KA_NOT_SMALLER };

typedef struct resize_state {
    int mode, ctm, nm, policy;
    double a, extrap;
    bool excl, antialias, upsample;
    const int64_t *axes;
    size_t n_axes;
    bool has_axes;
    const float *scales_attr; /* Upsample-7 */
    size_t n_scales_attr;
    float hs, ws;             /* Upsample-1 */
} resize_state;

static int sh_pick(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static pare_status resize_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    resize_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->upsample = strcmp(n->op_type, "Upsample") == 0;
    bool old = s->upsample || opset < 11;
    const char *m = pare_node_attr_string(n, "mode", "nearest");
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear"};
    s->mode = sh_pick(m, modes, 4);
    if (s->mode == 3)
        s->mode = RS_LINEAR;
    if (s->mode < 0 || (old && s->mode == RS_CUBIC))
        return pare_error_set(err, PARE_ERR_INVALID, "unknown mode '%s'", m);
    static const char *const ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                       "align_corners", "asymmetric", "tf_crop_and_resize"};
    const char *c = pare_node_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    s->ctm = old ? CT_ASYM : sh_pick(c, ctms, 6);
    if (s->ctm < 0)
        return pare_error_set(err, PARE_ERR_INVALID, "unknown coordinate_transformation_mode '%s'",
                              c);
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *nm = pare_node_attr_string(n, "nearest_mode", "round_prefer_floor");
    s->nm = old ? NM_SIMPLE : sh_pick(nm, nms, 4);
    if (s->nm < 0)
        return pare_error_set(err, PARE_ERR_INVALID, "unknown nearest_mode '%s'", nm);
    static const char *const pols[] = {"stretch", "not_larger", "not_smaller"};
    const char *p = pare_node_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    s->policy = sh_pick(p, pols, 3);
    if (s->policy < 0)
        return pare_error_set(err, PARE_ERR_INVALID, "unknown keep_aspect_ratio_policy '%s'", p);
    s->a = pare_node_attr_float(n, "cubic_coeff_a", -0.75f);
    s->extrap = pare_node_attr_float(n, "extrapolation_value", 0.0f);
    s->excl = pare_node_attr_int(n, "exclude_outside", 0) != 0;
    s->antialias = pare_node_attr_int(n, "antialias", 0) != 0;
    if (s->antialias && s->mode == RS_NEAREST)
        s->antialias = false;
    s->has_axes = pare_node_attr(n, "axes") != NULL;
    s->n_axes = pare_node_attr_ints(n, "axes", &s->axes);
    s->n_scales_attr = pare_node_attr_floats(n, "scales", &s->scales_attr);
    s->hs = pare_node_attr_float(n, "height_scale", 1.0f);
    s->ws = pare_node_attr_float(n, "width_scale", 1.0f);
    return PARE_OK;
}

typedef struct rs_axis {
    int64_t in, out;
    int n;          /* taps per output coordinate */
    int64_t *idx;   /* out * n input indices, clamped */
    double *w;      /* out * n weights */
    uint8_t *ext;   /* out flags (tf_crop_and_resize outside the input), or NULL */
} rs_axis;

static double rs_cubic(double x, double A)
{
    x = fabs(x);
    if (x <= 1)
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2)
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

/* Cubic weights the way the ONNX reference computes them: cubic_coeff_a is a
 * float32, so its arithmetic is float32 (results then used in float64). Tap t
 * of 4 for the plain filter; for antialias, the kernel at |x|. */
static double rs_cubic_plain(int t, double ratio, float A)
{
    float r1 = (float)(ratio + 1), r = (float)ratio, q = (float)(1 - ratio);
    float q1 = (float)((1 - ratio) + 1);
    switch (t) {
    case 0: return ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A;
    case 1: return ((A + 2) * r - (A + 3)) * r * r + 1;
    case 2: return ((A + 2) * q - (A + 3)) * q * q + 1;
    default: return ((A * q1 - 5 * A) * q1 + 8 * A) * q1 - 4 * A;
    }
}

static double rs_cubic_aa(double x, float A)
{
    x = fabs(x);
    double x2 = x * x, x3 = x * x2;
    if (x <= 1)
        return (A + 2) * (float)x3 - (A + 3) * (float)x2 + 1;
    if (x < 2)
        return A * (float)x3 - 5 * A * (float)x2 + 8 * A * (float)x - 4 * A;
    return 0;
}

/* Taps of one axis. scale: the axis' scale; owidth: scale * in (maybe fractional). */
static pare_status rs_build_axis(const resize_state *s, rs_axis *a, double scale, double roi0,
                                 double roi1, pare_error *err)
{
    int64_t in = a->in, out = a->out;
    double owidth = scale * (double)in, sc = s->antialias ? (scale < 1 ? scale : 1) : 1;
    int64_t start = 0;
    int n;
    if (s->mode == RS_NEAREST) {
        n = 1;
    } else {
        start = (int64_t)floor((s->mode == RS_LINEAR ? -1.0 : -2.0) / sc) + 1;
        if (2 - 2 * start > 4096)
            return pare_error_set(err, PARE_ERR_LIMIT, "antialias filter too wide (scale %g)",
                                  scale);
        n = (int)(2 - 2 * start);
    }
    a->n = n;
    a->idx = malloc((size_t)(out ? out : 1) * (size_t)n * sizeof *a->idx);
    a->w = malloc((size_t)(out ? out : 1) * (size_t)n * sizeof *a->w);
    if (s->ctm == CT_TF_CROP)
        a->ext = calloc((size_t)(out ? out : 1), 1);
    if (!a->idx || !a->w || (s->ctm == CT_TF_CROP && !a->ext))
        return sh_nomem(err);
    for (int64_t o = 0; o < out; o++) {
        double y = (double)o, x;
        switch (s->ctm) {
        case CT_ALIGN: x = owidth == 1 ? 0 : y * (double)(in - 1) / (owidth - 1); break;
        case CT_ASYM: x = y / scale; break;
        case CT_TF_CROP: {
            /* roi arithmetic in float32 as the reference does (roi is a float tensor) */
            float rd = (float)roi1 - (float)roi0;
            x = owidth == 1 ? (double)(rd * (float)(in - 1) / 2.0f)
                            : y * (double)rd * (double)(in - 1) / (owidth - 1);
            x += (double)((float)roi0 * (float)(in - 1));
            if (x < 0 || x > (double)(in - 1))
                a->ext[o] = 1;
            break;
        }
        case CT_PYTORCH: x = out > 1 ? (y + 0.5) / scale - 0.5 : 0; break;
        case CT_HALF_PIXEL_SYM: {
            double adj = (double)out / owidth, center = (double)in / 2;
            x = center * (1 - adj) + (y + 0.5) / scale - 0.5;
            break;
        }
        default: x = (y + 0.5) / scale - 0.5; break;
        }
        if (!(x > -1e15 && x < 1e15))
            x = 0;
        double fl = floor(x);
        bool is_int = x == fl;
        double ratio = is_int ? 1 : x - fl;
        int64_t *idx = a->idx + o * n;
        double *w = a->w + o * n;
        /* the window of n taps as the reference places it: from x + n/2, so that
         * its rounding (not x's) decides whether x counts as an integer */
        int nw = s->mode == RS_NEAREST ? 2 : n;
        double xp = x + nw / 2;
        double pf = floor(xp);
        int64_t s0 = (int64_t)pf - nw / 2 + (xp == pf ? -(nw / 2) : -(nw / 2) + 1);
        if (s->mode == RS_NEAREST) {
            int pick;
            if (is_int)
                pick = 1;
            else switch (s->nm) {
                case NM_PREFER_FLOOR: pick = ratio > 0.5; break;
                case NM_PREFER_CEIL: pick = ratio >= 0.5; break;
                case NM_FLOOR: pick = 0; break;
                case NM_CEIL: pick = 1; break;
                default: pick = scale < 1; break;
                }
            int64_t v = s0 + pick;
            idx[0] = v < 0 ? 0 : v >= in ? in - 1 : v;
            w[0] = 1;
            continue;
        }
        double sum = 0;
        for (int t = 0; t < n; t++) {
            double d = ((double)(start + t) - ratio) * sc;
            double c;
            if (s->mode == RS_LINEAR)
                c = fabs(d) < 1 ? 1 - fabs(d) : 0;
            else if (s->antialias)
                c = rs_cubic_aa(d, (float)s->a);
            else
                c = rs_cubic_plain(t, ratio, (float)s->a);
            int64_t ii = s0 + t;
            if (s->excl && (ii < 0 || ii >= in))
                c = 0;
            w[t] = c;
            sum += c;
            idx[t] = ii < 0 ? 0 : ii >= in ? in - 1 : ii;
        }
        if ((s->antialias || s->excl) && sum != 0)
            for (int t = 0; t < n; t++)
                w[t] = s->mode == RS_CUBIC ? (double)(float)((float)w[t] / (float)sum) : w[t] / sum;
    }
    return PARE_OK;
}

typedef struct rs_job {
    int r, dtype;
    const void *src;
    void *dst;
    const rs_axis *ax;
    int64_t ist[PARE_MAX_RANK];
    int64_t max_combos;
    double extrap;
    int64_t es;
    unsigned char fill[16];
    bool failed;
} rs_job;

/* Row `row` of the output (all dims but the last): its input taps combined
 * over the leading axes. Returns false when the row is extrapolated. */
static bool rs_row_combos(const rs_job *j, int64_t row, int64_t *off, double *w, int64_t *nc)
{
    int r = j->r;
    int64_t o[PARE_MAX_RANK], rem = row;
    for (int d = r - 2; d >= 0; d--) {
        o[d] = rem % j->ax[d].out;
        rem /= j->ax[d].out;
        if (j->ax[d].ext && j->ax[d].ext[o[d]])
            return false;
    }
    int64_t n = 1;
    off[0] = 0;
    w[0] = 1;
    for (int d = 0; d < r - 1; d++) {
        const rs_axis *a = &j->ax[d];
        const int64_t *ti = a->idx + o[d] * a->n;
        const double *tw = a->w + o[d] * a->n;
        int64_t m = 0;
        /* expand in place from the back so that earlier entries stay readable */
        int64_t base = n * a->n;
        for (int64_t c = n - 1; c >= 0; c--)
            for (int t = a->n - 1; t >= 0; t--) {
                base--;
                off[base] = off[c] + ti[t] * j->ist[d];
                w[base] = w[c] * tw[t];
            }
        n *= a->n;
        /* drop zero weights */
        for (int64_t c = 0; c < n; c++)
            if (w[c] != 0) {
                off[m] = off[c];
                w[m++] = w[c];
            }
        n = m;
    }
    *nc = n;
    return true;
}

#define RS_ROWS(DT, T, ACC, LD, STA, STD, ISF)                                              \
    static void rs_rows_##DT(rs_job *j, int64_t b, int64_t e, int64_t *off, double *cw)     \
    {                                                                                       \
        const rs_axis *la = &j->ax[j->r - 1];                                               \
        const T *src = j->src;                                                              \
        T *dst = j->dst;                                                                    \
        int64_t ls = j->ist[j->r - 1];                                                      \
        T ext = STD(ISF ? j->extrap : nearbyint(j->extrap));                                \
        for (int64_t row = b; row < e; row++) {                                             \
            T *out = dst + row * la->out;                                                   \
            int64_t nc;                                                                     \
            if (!rs_row_combos(j, row, off, cw, &nc)) {                                     \
                for (int64_t o = 0; o < la->out; o++)                                       \
                    out[o] = ext;                                                           \
                continue;                                                                   \
            }                                                                               \
            for (int64_t o = 0; o < la->out; o++) {                                         \
                if (la->ext && la->ext[o]) {                                                \
                    out[o] = ext;                                                           \
                    continue;                                                               \
                }                                                                           \
                const int64_t *ti = la->idx + o * la->n;                                    \
                const double *tw = la->w + o * la->n;                                       \
                double acc = 0;                                                             \
                for (int64_t c = 0; c < nc; c++) {                                          \
                    const T *p = src + off[c];                                              \
                    double part = 0;                                                        \
                    for (int t = 0; t < la->n; t++)                                         \
                        part += tw[t] * (double)LD(p[ti[t] * ls]);                          \
                    acc += cw[c] * part;                                                    \
                }                                                                           \
                out[o] = STD(ISF ? acc : nearbyint(acc));                                   \
            }                                                                               \
        }                                                                                   \
    }
SH_NUM_TYPES(RS_ROWS)
#undef RS_ROWS

static void rs_rows(void *ctx, int64_t b, int64_t e)
{
    rs_job *j = ctx;
    int64_t *off = malloc((size_t)j->max_combos * sizeof *off);
    double *cw = malloc((size_t)j->max_combos * sizeof *cw);
    if (!off || !cw) {
        j->failed = true;
        free(off);
        free(cw);
        return;
    }
    switch (j->dtype) {
#define RS_CALL(DT, ...) case DT: rs_rows_##DT(j, b, e, off, cw); break;
        SH_NUM_TYPES(RS_CALL)
#undef RS_CALL
    default: {
        /* nearest on any dtype: one tap per axis, a plain copy */
        const rs_axis *la = &j->ax[j->r - 1];
        int64_t ls = j->ist[j->r - 1], es = j->es;
        for (int64_t row = b; row < e; row++) {
            char *out = (char *)j->dst + row * la->out * es;
            int64_t nc;
            bool ok = rs_row_combos(j, row, off, cw, &nc);
#define RS_NEAREST_LOOP(NB)                                                        \
    for (int64_t o = 0; o < la->out; o++) {                                        \
        const void *p = j->fill;                                                   \
        if (ok && !(la->ext && la->ext[o]))                                        \
            p = (const char *)j->src + (off[0] + la->idx[o] * ls) * es;            \
        memcpy(out + o * es, p, (NB));                                             \
    }
            switch (es) {
            case 1: RS_NEAREST_LOOP(1); break;
            case 2: RS_NEAREST_LOOP(2); break;
            case 4: RS_NEAREST_LOOP(4); break;
            case 8: RS_NEAREST_LOOP(8); break;
            default: RS_NEAREST_LOOP((size_t)es); break;
            }
#undef RS_NEAREST_LOOP
        }
    }
    }
    free(off);
    free(cw);
}

/* Scales of all r axes into sc (from the op's inputs or attributes). Returns
 * whether sizes were given instead (in sz). */
static pare_status rs_params(pare_kctx *k, const resize_state *s, const pare_tensor *x,
                             const int *axes, int na, double *sc, int64_t *sz, bool *use_sizes,
                             double *roi, pare_error *err)
{
    int r = x->rank;
    pare_status st;
    const pare_tensor *st_t = NULL, *sz_t = NULL, *roi_t = NULL;
    *use_sizes = false;
    for (int i = 0; i < r; i++) {
        sc[i] = 1;
        sz[i] = x->dims[i];
        roi[i] = 0;
        roi[r + i] = 1;
    }
    if (s->upsample && k->opset < 7) {
        if (r != 4)
            return pare_error_set(err, PARE_ERR_INVALID, "Upsample-1 needs a 4-D input");
        sc[2] = s->hs;
        sc[3] = s->ws;
        return PARE_OK;
    }
    if (s->upsample && k->opset < 9) {
        if ((int64_t)s->n_scales_attr != r)
            return pare_error_set(err, PARE_ERR_INVALID, "scales has %zu values for rank %d",
                                  s->n_scales_attr, r);
        for (int i = 0; i < r; i++)
            sc[i] = s->scales_attr[i];
        return PARE_OK;
    }
    if (s->upsample || k->opset < 11) {
        st_t = sh_in(k, 1);
    } else {
        roi_t = sh_in(k, 1);
        st_t = sh_in(k, 2);
        sz_t = sh_in(k, 3);
    }
    if (st_t && sh_numel(st_t) == 0)
        st_t = NULL;
    if (sz_t && sh_numel(sz_t) == 0)
        sz_t = NULL;
    if (!st_t == !sz_t)
        return pare_error_set(err, PARE_ERR_INVALID, "exactly one of scales and sizes is needed");
    if (roi_t && sh_numel(roi_t) > 0 && s->ctm == CT_TF_CROP) {
        if (sh_numel(roi_t) != 2 * na || !pare_dtype_is_float(roi_t->dtype))
            return pare_error_set(err, PARE_ERR_INVALID, "roi must hold %d floats", 2 * na);
        for (int i = 0; i < na; i++) {
            roi[axes[i]] = pare_dtype_get_f64(roi_t->dtype, roi_t->data, (size_t)i);
            roi[r + axes[i]] = pare_dtype_get_f64(roi_t->dtype, roi_t->data, (size_t)(na + i));
        }
    }
    if (st_t) {
        if (sh_numel(st_t) != na || !pare_dtype_is_float(st_t->dtype))
            return pare_error_set(err, PARE_ERR_INVALID, "scales must hold %d floats, not %lld",
                                  na, (long long)sh_numel(st_t));
        for (int i = 0; i < na; i++)
            sc[axes[i]] = pare_dtype_get_f64(st_t->dtype, st_t->data, (size_t)i);
        return PARE_OK;
    }
    int64_t v[PARE_MAX_RANK], n;
    if ((st = sh_ints(sz_t, v, PARE_MAX_RANK, &n, "sizes", err)))
        return st;
    if (n != na)
        return pare_error_set(err, PARE_ERR_INVALID, "sizes has %lld values for %d axes",
                              (long long)n, na);
    *use_sizes = true;
    for (int i = 0; i < na; i++) {
        if (v[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative size %lld", (long long)v[i]);
        sz[axes[i]] = v[i];
    }
    return PARE_OK;
}

static pare_status run_resize(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const resize_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    if (r == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot resize a scalar");
    int axes[PARE_MAX_RANK], na = r;
    bool seen[PARE_MAX_RANK] = {0};
    pare_status st;
    if (s->has_axes && k->opset >= 18 && !s->upsample) {
        if (s->n_axes > (size_t)r)
            return pare_error_set(err, PARE_ERR_INVALID, "more axes than dims");
        na = (int)s->n_axes;
        for (int i = 0; i < na; i++) {
            if ((st = sh_axis(s->axes[i], r, &axes[i], "axis", err)))
                return st;
            if (seen[axes[i]])
                return pare_error_set(err, PARE_ERR_INVALID, "axis %d repeated", axes[i]);
            seen[axes[i]] = true;
        }
    } else {
        for (int i = 0; i < r; i++)
            axes[i] = i, seen[i] = true;
    }
    double sc[PARE_MAX_RANK], roi[2 * PARE_MAX_RANK];
    int64_t sz[PARE_MAX_RANK];
    bool use_sizes;
    if ((st = rs_params(k, s, x, axes, na, sc, sz, &use_sizes, roi, err)))
        return st;
    int64_t odims[PARE_MAX_RANK];
    if (use_sizes) {
        for (int i = 0; i < r; i++)
            sc[i] = x->dims[i] ? (double)sz[i] / (double)x->dims[i] : 1;
        if (s->policy != KA_STRETCH) {
            double m = s->policy == KA_NOT_LARGER ? INFINITY : -INFINITY;
            for (int i = 0; i < na; i++) {
                double v = sc[axes[i]];
                m = s->policy == KA_NOT_LARGER ? (v < m ? v : m) : (v > m ? v : m);
            }
            for (int i = 0; i < na; i++) {
                sc[axes[i]] = m;
                sz[axes[i]] = (int64_t)(m * (double)x->dims[axes[i]] + 0.5);
            }
        }
        memcpy(odims, sz, (size_t)r * sizeof *odims);
    } else {
        for (int i = 0; i < r; i++) {
            if (!(sc[i] > 0 && sc[i] < 1e9))
                return pare_error_set(err, PARE_ERR_INVALID, "scale %g on axis %d must be positive",
                                      sc[i], i);
            double o = floor(sc[i] * (double)x->dims[i]);
            if (o > 9e15)
                return pare_error_set(err, PARE_ERR_LIMIT, "resized axis %d too large", i);
            odims[i] = (int64_t)o;
        }
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, r, odims, &o, err)))
        return st;
    int64_t on = sh_numel(o);
    if (on == 0)
        return PARE_OK;
    if (sh_numel(x) == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot resize an empty tensor to %lld elements",
                              (long long)on);
    bool nearest = s->mode == RS_NEAREST;
    if (x->dtype == PARE_DT_STRING || sh_is4(x->dtype) || (!nearest && !sh_is_num(x->dtype)))
        return sh_bad_dtype(x->dtype, "Resize", err);
    rs_axis ax[PARE_MAX_RANK];
    memset(ax, 0, sizeof ax);
    rs_job j = {.r = r, .dtype = nearest ? -1 : x->dtype, .dst = o->data, .ax = ax,
                .extrap = s->extrap, .es = (int64_t)sh_esize(x->dtype), .max_combos = 1};
    sh_strides(r, x->dims, j.ist);
    if (nearest && x->dtype != PARE_DT_STRING && sh_is_num(x->dtype))
        pare_dtype_set_f64(x->dtype, j.fill, 0, s->extrap);
    void *tmp = NULL;
    for (int d = 0; d < r && !st; d++) {
        ax[d].in = x->dims[d];
        ax[d].out = odims[d];
        bool ident = odims[d] == x->dims[d] && fabs(sc[d] - 1) < 1e-9 &&
                     (s->ctm != CT_TF_CROP || (fabs(roi[d]) < 1e-9 && fabs(roi[r + d] - 1) < 1e-9));
        if (ident || !seen[d]) {
            resize_state id = *s;
            id.mode = RS_NEAREST;
            id.ctm = CT_ASYM;
            id.nm = NM_FLOOR;
            st = rs_build_axis(&id, &ax[d], 1, 0, 1, err);
        } else {
            st = rs_build_axis(s, &ax[d], sc[d], roi[d], roi[r + d], err);
        }
        if (!st && d < r - 1)
            j.max_combos *= ax[d].n;
        if (j.max_combos > (1 << 24))
            st = pare_error_set(err, PARE_ERR_LIMIT, "resize filter too large");
    }
    if (!st && !(j.src = sh_aligned(x, &tmp, err)))
        st = err ? err->status : PARE_ERR_NOMEM;
    if (!st) {
        int64_t last = odims[r - 1], rows = on / last;
        int64_t cost = last * ax[r - 1].n * j.max_combos;
        pare_parallel_for(k->pool, rows, cost >= SH_GRAIN ? 1 : SH_GRAIN / (cost ? cost : 1),
                          rs_rows, &j);
        if (j.failed)
            st = sh_nomem(err);
    }
    for (int d = 0; d < r; d++) {
        free(ax[d].idx);
        free(ax[d].w);
        free(ax[d].ext);
    }
    free(tmp);
    return st;
}

/* ------------------------------------------------------------------ */
/* GridSample                                                           */

enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

typedef struct grid_state {
    int mode, pad;
    bool align;
} grid_state;

static pare_status grid_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    grid_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear", "bicubic"};
    const char *m = pare_node_attr_string(n, "mode", opset < 20 ? "bilinear" : "linear");
    int v = sh_pick(m, modes, 5);
    if (v < 0 || (opset < 20 && (v == 1 || v == 2)) || (opset >= 20 && v >= 3))
        return pare_error_set(err, PARE_ERR_INVALID, "unknown mode '%s'", m);
    s->mode = v == 3 ? RS_LINEAR : v == 4 ? RS_CUBIC : v;
    static const char *const pads[] = {"zeros", "border", "reflection"};
    const char *p = pare_node_attr_string(n, "padding_mode", "zeros");
    if ((s->pad = sh_pick(p, pads, 3)) < 0)
        return pare_error_set(err, PARE_ERR_INVALID, "unknown padding_mode '%s'", p);
    s->align = pare_node_attr_int(n, "align_corners", 0) != 0;
    return PARE_OK;
}

static double gs_reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (rng <= 0)
        return lo;
    if (x < lo) {
        double dx = lo - x;
        double n = floor(dx / rng), rr = dx - n * rng;
        return fmod(n, 2) == 0 ? lo + rr : hi - rr;
    }
    if (x > hi) {
        double dx = x - hi;
        double n = floor(dx / rng), rr = dx - n * rng;
        return fmod(n, 2) == 0 ? hi - rr : lo + rr;
    }
    return x;
}

static pare_status run_grid_sample(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const grid_state *s = k->state;
    const pare_tensor *x = k->in[0], *g = sh_in(k, 1);
    char b1[256], b2[256];
    if (!g)
        return pare_error_set(err, PARE_ERR_INVALID, "GridSample needs a grid");
    int sd = x->rank - 2;
    if (sd < 1 || g->rank != x->rank || g->dims[0] != x->dims[0] || g->dims[g->rank - 1] != sd ||
        (k->opset < 20 && sd != 2))
        return pare_error_set(err, PARE_ERR_INVALID, "grid %s does not fit input %s",
                              sh_dims(g->rank, g->dims, b1, sizeof b1),
                              sh_dims(x->rank, x->dims, b2, sizeof b2));
    if (!sh_is_num(x->dtype) || !pare_dtype_is_float(g->dtype))
        return sh_bad_dtype(sh_is_num(x->dtype) ? g->dtype : x->dtype, "GridSample", err);
    int64_t N = x->dims[0], C = x->dims[1], odims[PARE_MAX_RANK];
    odims[0] = N;
    odims[1] = C;
    for (int i = 0; i < sd; i++)
        odims[2 + i] = g->dims[1 + i];
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, x->dtype, x->rank, odims, &o, err);
    if (st)
        return st;
    int64_t P = sh_prod(odims, 2, x->rank), S = sh_prod(x->dims, 2, x->rank);
    if (sh_numel(o) == 0)
        return PARE_OK;
    int64_t xs[PARE_MAX_RANK];
    sh_strides(sd, x->dims + 2, xs);
    double *vals = malloc((size_t)C * sizeof *vals);
    if (!vals)
        return sh_nomem(err);
    int nt = s->mode == RS_NEAREST ? 1 : s->mode == RS_LINEAR ? 2 : 4;
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < P; p++) {
            int64_t tidx[PARE_MAX_RANK][4];
            double tw[PARE_MAX_RANK][4];
            for (int i = 0; i < sd; i++) {
                int64_t D = x->dims[2 + i];
                double nv = pare_dtype_get_f64(g->dtype, g->data,
                                               (size_t)((n * P + p) * sd + (sd - 1 - i)));
                double xv = s->align ? (nv + 1) / 2 * (double)(D - 1) : ((nv + 1) * (double)D - 1) / 2;
                double lo = s->align ? 0 : -0.5, hi = s->align ? (double)(D - 1) : (double)D - 0.5;
                if (!(xv > -1e15 && xv < 1e15))
                    xv = -1e15;
                if (s->mode == RS_NEAREST)
                    xv = nearbyint(xv);
                if (xv < lo || xv > hi) {
                    if (s->pad == GS_BORDER)
                        xv = xv < 0 ? 0 : xv > (double)(D - 1) ? (double)(D - 1) : xv;
                    else if (s->pad == GS_REFLECTION)
                        xv = gs_reflect(xv, lo, hi);
                }
                double f = floor(xv), t = xv - f;
                int64_t x0 = (int64_t)f;
                for (int q = 0; q < nt; q++) {
                    int64_t ii;
                    double w;
                    if (s->mode == RS_NEAREST) {
                        ii = (int64_t)xv;
                        w = 1;
                    } else if (s->mode == RS_LINEAR) {
                        ii = x0 + q;
                        w = q ? t : 1 - t;
                    } else {
                        ii = x0 - 1 + q;
                        w = rs_cubic(t - (q - 1), -0.75);
                    }
                    if (ii < 0 || ii >= D) {
                        if (s->pad == GS_ZEROS) {
                            w = 0;
                            ii = 0;
                        } else if (s->pad == GS_BORDER) {
                            ii = ii < 0 ? 0 : D - 1;
                        } else {
                            ii = (int64_t)gs_reflect((double)ii, lo, hi);
                            ii = ii < 0 ? 0 : ii >= D ? D - 1 : ii;
                        }
                    }
                    tidx[i][q] = ii;
                    tw[i][q] = w;
                }
            }
            for (int64_t c = 0; c < C; c++)
                vals[c] = 0;
            /* all tap combinations */
            int q[PARE_MAX_RANK] = {0};
            for (;;) {
                double w = 1;
                int64_t off = 0;
                for (int i = 0; i < sd; i++) {
                    w *= tw[i][q[i]];
                    off += tidx[i][q[i]] * xs[i];
                }
                if (w != 0)
                    for (int64_t c = 0; c < C; c++)
                        vals[c] += w * pare_dtype_get_f64(x->dtype, x->data,
                                                          (size_t)((n * C + c) * S + off));
                int i = sd - 1;
                while (i >= 0 && ++q[i] == nt)
                    q[i--] = 0;
                if (i < 0)
                    break;
            }
            for (int64_t c = 0; c < C; c++) {
                double v = pare_dtype_is_float(x->dtype) ? vals[c] : nearbyint(vals[c]);
                pare_dtype_set_f64(x->dtype, o->data, (size_t)((n * C + c) * P + p), v);
            }
        }
    free(vals);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* Col2Im                                                               */

typedef struct col2im_state {
    const int64_t *dil, *pads, *strides;
    size_t n_dil, n_pads, n_strides;
} col2im_state;

static pare_status col2im_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    col2im_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->n_dil = pare_node_attr_ints(n, "dilations", &s->dil);
    s->n_pads = pare_node_attr_ints(n, "pads", &s->pads);
    s->n_strides = pare_node_attr_ints(n, "strides", &s->strides);
    return PARE_OK;
}

static pare_status run_col2im(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const col2im_state *s = k->state;
    const pare_tensor *x = k->in[0], *it = sh_in(k, 1), *bt = sh_in(k, 2);
    if (!it || !bt)
        return pare_error_set(err, PARE_ERR_INVALID, "Col2Im needs image_shape and block_shape");
    int64_t img[PARE_MAX_RANK], blk[PARE_MAX_RANK], ni, nb;
    pare_status st;
    if ((st = sh_ints(it, img, PARE_MAX_RANK - 2, &ni, "image_shape", err)) ||
        (st = sh_ints(bt, blk, PARE_MAX_RANK - 2, &nb, "block_shape", err)))
        return st;
    int sd = (int)ni;
    if (nb != ni || sd < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "image_shape and block_shape differ in length");
    if ((s->n_dil && s->n_dil != (size_t)sd) || (s->n_strides && s->n_strides != (size_t)sd) ||
        (s->n_pads && s->n_pads != 2 * (size_t)sd))
        return pare_error_set(err, PARE_ERR_INVALID, "dilations, strides or pads have wrong length");
    if (x->rank != 3)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be 3-D, got rank %d", x->rank);
    if (!sh_is_num(x->dtype))
        return sh_bad_dtype(x->dtype, "Col2Im", err);
    int64_t kprod = 1, nblk[PARE_MAX_RANK], L = 1;
    int64_t dil[PARE_MAX_RANK], pb[PARE_MAX_RANK], pe[PARE_MAX_RANK], str[PARE_MAX_RANK];
    for (int i = 0; i < sd; i++) {
        dil[i] = s->n_dil ? s->dil[i] : 1;
        str[i] = s->n_strides ? s->strides[i] : 1;
        pb[i] = s->n_pads ? s->pads[i] : 0;
        pe[i] = s->n_pads ? s->pads[sd + i] : 0;
        if (blk[i] <= 0 || img[i] < 0 || dil[i] <= 0 || str[i] <= 0 || pb[i] < 0 || pe[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "bad block, image, dilation, stride or pads");
        int64_t span, room;
        if (__builtin_mul_overflow(kprod, blk[i], &kprod) ||
            __builtin_mul_overflow(dil[i], blk[i] - 1, &span) ||
            __builtin_add_overflow(span, 1, &span) ||
            __builtin_add_overflow(img[i], pb[i], &room) ||
            __builtin_add_overflow(room, pe[i], &room) ||
            __builtin_sub_overflow(room, span, &room))
            return pare_error_set(err, PARE_ERR_LIMIT, "Col2Im block or image sizes overflow");
        nblk[i] = room < 0 ? 0 : room / str[i] + 1;
        if (__builtin_mul_overflow(L, nblk[i], &L))
            return pare_error_set(err, PARE_ERR_LIMIT, "Col2Im block count overflows");
    }
    if (x->dims[1] % kprod || x->dims[2] != L)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "input dims %lld x %lld do not match %lld block elements and %lld "
                              "blocks", (long long)x->dims[1], (long long)x->dims[2],
                              (long long)kprod, (long long)L);
    int64_t N = x->dims[0], C = x->dims[1] / kprod, odims[PARE_MAX_RANK];
    odims[0] = N;
    odims[1] = C;
    memcpy(odims + 2, img, (size_t)sd * sizeof *odims);
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, sd + 2, odims, &o, err)))
        return st;
    int64_t S = sh_prod(img, 0, sd), is[PARE_MAX_RANK];
    sh_strides(sd, img, is);
    double *acc = calloc((size_t)(N * C * S + 1), sizeof *acc);
    if (!acc)
        return sh_nomem(err);
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t kk = 0; kk < kprod; kk++) {
            int64_t kc[PARE_MAX_RANK], rem = kk;
            for (int i = sd - 1; i >= 0; i--) {
                kc[i] = rem % blk[i];
                rem /= blk[i];
            }
            for (int64_t l = 0; l < L; l++) {
                int64_t rl = l, off = 0;
                bool in = true;
                for (int i = sd - 1; i >= 0; i--) {
                    int64_t bpos = rl % nblk[i];
                    rl /= nblk[i];
                    int64_t p = bpos * str[i] - pb[i] + kc[i] * dil[i];
                    if (p < 0 || p >= img[i]) {
                        in = false;
                        break;
                    }
                    off += p * is[i];
                }
                if (!in)
                    continue;
                acc[nc * S + off] += pare_dtype_get_f64(
                    x->dtype, x->data, (size_t)((nc * kprod + kk) * L + l));
            }
        }
    for (int64_t i = 0; i < N * C * S; i++)
        pare_dtype_set_f64(x->dtype, o->data, (size_t)i, acc[i]);
    free(acc);
    return PARE_OK;
}

#define SH_RESIZE_KERNELS                                                             \
    K("Resize", 10, 0, resize_init, run_resize, sh_free_state),                       \
    K("Upsample", 1, 10, resize_init, run_resize, sh_free_state),                     \
    K("GridSample", 16, 0, grid_init, run_grid_sample, sh_free_state),                \
    K("Col2Im", 18, 0, col2im_init, run_col2im, sh_free_state),

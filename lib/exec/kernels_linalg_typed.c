/* Typed bodies of kernels_linalg.c, included once per compute type with
 * S (name suffix), T (the type) and IS_INT defined. Floating-point bodies
 * accumulate in double; the int64 instance (Einsum and integer matrix
 * products only) computes modulo 2^64. Not compiled on its own. */

#define F(name) LCAT(name, LCAT(_, S))

#ifndef POOL8
#define POOL8 0 /* 1: only the 2-D pooling body, for MaxPool on 8-bit data */
#endif

#if !IS_INT && !POOL8

/* ---- pooling --------------------------------------------------------------- */

static void F(pool_range)(void *ctx, int64_t b, int64_t e)
{
    const pool_job *j = ctx;
    const T *x = j->x;
    T *y = j->y;
    int nsp = j->nsp, last = nsp - 1;
    int64_t istr[LIN_MAXSP], cstr[LIN_MAXSP];
    istr[last] = 1;
    for (int i = last - 1; i >= 0; i--)
        istr[i] = istr[i + 1] * j->in[i + 1];
    cstr[0] = 1;
    for (int i = 1; i < nsp; i++)
        cstr[i] = cstr[i - 1] * j->in[i - 1];
    const int64_t *xs = j->storage_order ? cstr : istr; /* index strides */
    for (int64_t pl = b; pl < e; pl++) {
        const T *xp = x + pl * j->in_plane;
        T *yp = y + pl * j->out_plane;
        int64_t *ip = j->ind ? j->ind + pl * j->out_plane : NULL;
        int64_t o[LIN_MAXSP] = {0};
        for (int64_t q = 0; q < j->out_plane; q++) {
            int64_t st[LIN_MAXSP], lo[LIN_MAXSP], hi[LIN_MAXSP];
            bool empty = false;
            double cnt_pad = 1.0;
            for (int i = 0; i < nsp; i++) {
                st[i] = o[i] * j->s[i] - j->pb[i];
                lo[i] = lmax(0, lceil_div(-st[i], j->d[i]));
                hi[i] = lmin(j->k[i], lceil_div(j->in[i] - st[i], j->d[i]));
                if (lo[i] >= hi[i])
                    empty = true;
                if (j->kind != POOL_MAX && j->count_include_pad)
                    cnt_pad *= (double)lmax(
                        0, lmin(j->k[i], lceil_div(j->in[i] + j->pe[i] - st[i], j->d[i])));
            }
            double acc = 0.0;
            int64_t cnt = 0, best_at = -1;
            T best = 0;
            if (!empty) {
                int64_t t[LIN_MAXSP];
                for (int i = 0; i < nsp; i++)
                    t[i] = lo[i];
                for (;;) {
                    int64_t off = 0, ioff = 0;
                    for (int i = 0; i < last; i++) {
                        int64_t pos = st[i] + t[i] * j->d[i];
                        off += pos * istr[i];
                        ioff += pos * xs[i];
                    }
                    int64_t p0 = st[last] + lo[last] * j->d[last];
                    const T *row = xp + off + p0;
                    int64_t n = hi[last] - lo[last], dl = j->d[last];
                    if (j->kind == POOL_MAX) {
                        for (int64_t u = 0; u < n; u++) {
                            T v = row[u * dl];
                            if (best_at < 0 || v > best) {
                                best = v;
                                best_at = ioff + (p0 + u * dl) * xs[last];
                            }
                        }
                    } else if (j->kind == POOL_AVG) {
                        for (int64_t u = 0; u < n; u++)
                            acc += (double)row[u * dl];
                    } else if (j->p == 2.0) {
                        for (int64_t u = 0; u < n; u++)
                            acc += (double)row[u * dl] * (double)row[u * dl];
                    } else if (j->p == 1.0) {
                        for (int64_t u = 0; u < n; u++)
                            acc += fabs((double)row[u * dl]);
                    } else {
                        for (int64_t u = 0; u < n; u++)
                            acc += pow(fabs((double)row[u * dl]), j->p);
                    }
                    cnt += n;
                    int i = last - 1;
                    for (; i >= 0; i--) {
                        if (++t[i] < hi[i])
                            break;
                        t[i] = lo[i];
                    }
                    if (i < 0)
                        break;
                }
            }
            if (j->kind == POOL_MAX) {
                yp[q] = best_at >= 0 ? best : (T)0;
                if (ip)
                    ip[q] = best_at >= 0 ? pl * j->in_plane + best_at : -1;
            } else if (j->kind == POOL_AVG) {
                double den = j->count_include_pad ? cnt_pad : (double)cnt;
                yp[q] = (T)(den > 0 ? acc / den : 0.0);
            } else {
                yp[q] = (T)(j->p == 2.0 ? sqrt(acc) : j->p == 1.0 ? acc : pow(acc, 1.0 / j->p));
            }
            for (int i = last; i >= 0; i--) {
                if (++o[i] < j->out[i])
                    break;
                o[i] = 0;
            }
        }
    }
}

#endif /* !IS_INT && !POOL8 */

#if !IS_INT || POOL8
/* One output row of MaxPool without indices, separably: the rows of the
 * window are first reduced into one row `t` of the input's width (rows of
 * contiguous values, so that loop vectorises), then each output column takes
 * the maximum of its kernel columns in t; the columns whose window lies
 * inside the image ([oxa, oxb)) go kernel column by kernel column, which
 * vectorises too. A comparison keeps the earlier value unless the later one
 * is greater, as the direct loop does. */
static inline __attribute__((always_inline)) void F(maxpool_row)(const pool_job *j, const T *xp, int64_t iw, int64_t ow, int64_t ys,
                           int64_t kylo, int64_t kyhi, int64_t dh, int64_t oxa, int64_t oxb,
                           T *t, T *yr)
{
    int64_t kw = j->k[j->nsp - 1], sw = j->s[j->nsp - 1], dw = j->d[j->nsp - 1];
    int64_t pw = j->pb[j->nsp - 1];
    if (kylo >= kyhi) {
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = 0;
        return;
    }
    const T *r0 = xp + (ys + kylo * dh) * iw;
    const T *row = r0;
    if (kyhi - kylo > 1) {
        for (int64_t c = 0; c < iw; c++)
            t[c] = r0[c];
        for (int64_t ky = kylo + 1; ky < kyhi; ky++) {
            const T *r = xp + (ys + ky * dh) * iw;
            for (int64_t c = 0; c < iw; c++)
                t[c] = r[c] > t[c] ? r[c] : t[c];
        }
        row = t;
    }
    for (int64_t ox = 0; ox < ow; ox++) {
        if (ox == oxa && oxb > oxa) {
            const T *base = row + oxa * sw - pw;
            T *yq = yr + oxa;
            int64_t nq = oxb - oxa;
            /* strides 1 and 2 spelled out, so that the loops vectorise */
            if (sw == 1) {
                for (int64_t q = 0; q < nq; q++)
                    yq[q] = base[q];
                for (int64_t kx = 1; kx < kw; kx++) {
                    const T *bk = base + kx * dw;
                    for (int64_t q = 0; q < nq; q++)
                        yq[q] = bk[q] > yq[q] ? bk[q] : yq[q];
                }
            } else if (sw == 2) {
                bool done = false;
#if POOL8
                if (kw == 3 && dw == 1) { /* 3 wide, stride 2: squeezenet, resnet */
                    int64_t q = max8_w3s2((const uint8_t *)base, (uint8_t *)yq, nq,
                                          (T)-1 < 0 ? 0x80 : 0);
                    for (; q < nq; q++) {
                        T a = base[2 * q], b = base[2 * q + 1], c = base[2 * q + 2];
                        a = b > a ? b : a;
                        yq[q] = c > a ? c : a;
                    }
                    done = true;
                }
#endif
                if (!done) {
                    for (int64_t q = 0; q < nq; q++)
                        yq[q] = base[2 * q];
                    for (int64_t kx = 1; kx < kw; kx++) {
                        const T *bk = base + kx * dw;
                        for (int64_t q = 0; q < nq; q++)
                            yq[q] = bk[2 * q] > yq[q] ? bk[2 * q] : yq[q];
                    }
                }
            } else {
                for (int64_t q = 0; q < nq; q++)
                    yq[q] = base[q * sw];
                for (int64_t kx = 1; kx < kw; kx++) {
                    const T *bk = base + kx * dw;
                    for (int64_t q = 0; q < nq; q++) {
                        T v = bk[q * sw];
                        yq[q] = v > yq[q] ? v : yq[q];
                    }
                }
            }
            ox = oxb - 1;
            continue;
        }
        int64_t xs = ox * sw - pw, lo = j->kxlo[ox], hi = j->kxhi[ox];
        T best = 0;
        if (lo < hi) {
            best = row[xs + lo * dw];
            for (int64_t kx = lo + 1; kx < hi; kx++) {
                T v = row[xs + kx * dw];
                best = v > best ? v : best;
            }
        }
        yr[ox] = best;
    }
}

/* Pooling over 1 or 2 spatial dims (1-D as 2-D with height 1), the column
 * window ranges precomputed by the caller. */
static inline __attribute__((always_inline)) void F(pool2d_range)(void *ctx, int64_t b, int64_t e)
{
    const pool_job *j = ctx;
    bool two = j->nsp == 2;
    int64_t ih = two ? j->in[0] : 1, iw = j->in[j->nsp - 1];
    int64_t oh = two ? j->out[0] : 1, ow = j->out[j->nsp - 1];
    int64_t kh = two ? j->k[0] : 1, sh = two ? j->s[0] : 1, dh = two ? j->d[0] : 1;
    int64_t ph = two ? j->pb[0] : 0, pe_h = two ? j->pe[0] : 0;
    int64_t sw = j->s[j->nsp - 1], dw = j->d[j->nsp - 1], pw = j->pb[j->nsp - 1];
    /* separable MaxPool: a row of scratch, and the output columns whose
     * window is whole ([oxa, oxb), contiguous since the ranges are monotone) */
    T *trow = NULL;
    int64_t oxa = 0, oxb = 0;
    if (j->kind == POOL_MAX && !j->ind && iw > 0 && (uint64_t)iw <= SIZE_MAX / sizeof(T)) {
        trow = pare_scratch(2, (size_t)iw * sizeof(T));
        int64_t kw = j->k[j->nsp - 1];
        while (oxa < ow && !(j->kxlo[oxa] == 0 && j->kxhi[oxa] == kw))
            oxa++;
        oxb = oxa;
        while (oxb < ow && j->kxlo[oxb] == 0 && j->kxhi[oxb] == kw)
            oxb++;
    }
    for (int64_t pl = b; pl < e; pl++) {
        const T *xp = (const T *)j->x + pl * j->in_plane;
        T *yp = (T *)j->y + pl * j->out_plane;
        int64_t *ip = j->ind ? j->ind + pl * j->out_plane : NULL;
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t ys = oy * sh - ph;
            int64_t kylo = lmax(0, lceil_div(-ys, dh)), kyhi = lmin(kh, lceil_div(ih - ys, dh));
            double ypad = (double)lmax(0, lmin(kh, lceil_div(ih + pe_h - ys, dh)));
            T *yr = yp + oy * ow;
            if (trow) {
                F(maxpool_row)(j, xp, iw, ow, ys, kylo, kyhi, dh, oxa, oxb, trow, yr);
                continue;
            }
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t xs = ox * sw - pw, lo = j->kxlo[ox], hi = j->kxhi[ox];
                if (j->kind == POOL_MAX && !ip) {
                    T best = 0;
                    if (kylo < kyhi && lo < hi) {
                        best = xp[(ys + kylo * dh) * iw + xs + lo * dw];
                        for (int64_t ky = kylo; ky < kyhi; ky++) {
                            const T *row = xp + (ys + ky * dh) * iw + xs;
                            for (int64_t kx = lo; kx < hi; kx++) {
                                T v = row[kx * dw];
                                best = v > best ? v : best;
                            }
                        }
                    }
                    yr[ox] = best;
                    continue;
                }
                if (j->kind == POOL_MAX) {
                    T best = 0;
                    int64_t at = -1;
                    for (int64_t ky = kylo; ky < kyhi; ky++) {
                        const T *row = xp + (ys + ky * dh) * iw + xs;
                        for (int64_t kx = lo; kx < hi; kx++) {
                            T v = row[kx * dw];
                            if (at < 0 || v > best) {
                                best = v;
                                at = (ys + ky * dh) * iw + xs + kx * dw;
                            }
                        }
                    }
                    yr[ox] = at >= 0 ? best : (T)0;
                    if (ip) {
                        int64_t q = at;
                        if (at >= 0 && j->storage_order)
                            q = at / iw + (at % iw) * ih;
                        ip[oy * ow + ox] = at >= 0 ? pl * j->in_plane + q : -1;
                    }
                    continue;
                }
                double acc = 0.0;
                for (int64_t ky = kylo; ky < kyhi; ky++) {
                    const T *row = xp + (ys + ky * dh) * iw + xs;
                    if (j->kind == POOL_AVG)
                        for (int64_t kx = lo; kx < hi; kx++)
                            acc += (double)row[kx * dw];
                    else if (j->p == 2.0)
                        for (int64_t kx = lo; kx < hi; kx++)
                            acc += (double)row[kx * dw] * (double)row[kx * dw];
                    else
                        for (int64_t kx = lo; kx < hi; kx++)
                            acc += pow(fabs((double)row[kx * dw]), j->p);
                }
                if (j->kind == POOL_AVG) {
                    double den = j->count_include_pad
                                     ? ypad * (double)j->kxpad[ox]
                                     : (double)(lmax(0, kyhi - kylo) * lmax(0, hi - lo));
                    yr[ox] = (T)(den > 0 ? acc / den : 0.0);
                } else {
                    yr[ox] = (T)(j->p == 2.0 ? sqrt(acc) : pow(acc, 1.0 / j->p));
                }
            }
        }
    }
}

#endif /* !IS_INT || POOL8 */

#if !IS_INT && !POOL8
static void F(gpool_range)(void *ctx, int64_t b, int64_t e)
{
    const gpool_job *j = ctx;
    const T *x = j->x;
    T *y = j->y;
    for (int64_t pl = b; pl < e; pl++) {
        const T *xp = x + pl * j->plane;
        int64_t n = j->plane;
        if (j->kind == POOL_MAX) {
            T best = n > 0 ? xp[0] : (T)0;
            for (int64_t i = 1; i < n; i++)
                if (xp[i] > best)
                    best = xp[i];
            y[pl] = best;
        } else if (j->kind == POOL_AVG) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++)
                s += (double)xp[i];
            y[pl] = (T)(n > 0 ? s / (double)n : 0.0);
        } else {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++)
                s += j->p == 2.0 ? (double)xp[i] * (double)xp[i] : pow(fabs((double)xp[i]), j->p);
            y[pl] = (T)(j->p == 2.0 ? sqrt(s) : pow(s, 1.0 / j->p));
        }
    }
}

/* ---- im2col / col2im for any number of spatial dims ---------------------- */

static void F(im2col_range)(void *ctx, int64_t b, int64_t e)
{
    const im2col_job *j = ctx;
    int nsp = j->nsp, last = nsp - 1;
    int64_t istr[LIN_MAXSP];
    istr[last] = 1;
    for (int i = last - 1; i >= 0; i--)
        istr[i] = istr[i + 1] * j->in[i + 1];
    for (int64_t r = b; r < e; r++) {
        int64_t c = r / j->kprod, kr = r - c * j->kprod;
        int64_t t[LIN_MAXSP];
        for (int i = last; i >= 0; i--) {
            t[i] = kr % j->k[i];
            kr /= j->k[i];
        }
        const T *xc = (const T *)j->x + c * j->in_plane;
        T *dst = (T *)j->col + r * j->out_plane;
        int64_t offl = t[last] * j->d[last] - j->pb[last], sl = j->s[last];
        /* valid range of the last output coordinate */
        int64_t olo = lmax(0, lceil_div(-offl, sl));
        int64_t ohi = lmin(j->out[last], lmax(olo, lceil_div(j->in[last] - offl, sl)));
        int64_t o[LIN_MAXSP] = {0};
        int64_t rows = j->out_plane / j->out[last];
        for (int64_t q = 0; q < rows; q++) {
            T *dr = dst + q * j->out[last];
            bool inside = true;
            int64_t off = 0;
            for (int i = 0; i < last; i++) {
                int64_t pos = o[i] * j->s[i] - j->pb[i] + t[i] * j->d[i];
                if (pos < 0 || pos >= j->in[i]) {
                    inside = false;
                    break;
                }
                off += pos * istr[i];
            }
            if (!inside || olo >= ohi) {
                for (int64_t u = 0; u < j->out[last]; u++)
                    dr[u] = 0;
            } else {
                const T *xr = xc + off + offl;
                for (int64_t u = 0; u < olo; u++)
                    dr[u] = 0;
                for (int64_t u = olo; u < ohi; u++)
                    dr[u] = xr[u * sl];
                for (int64_t u = ohi; u < j->out[last]; u++)
                    dr[u] = 0;
            }
            for (int i = last - 1; i >= 0; i--) {
                if (++o[i] < j->out[i])
                    break;
                o[i] = 0;
            }
        }
    }
}

/* Output channels [b, e) of one group. */
static void F(col2im_range)(void *ctx, int64_t b, int64_t e)
{
    const col2im_job *j = ctx;
    int nsp = j->nsp, last = nsp - 1;
    int64_t ostr[LIN_MAXSP];
    ostr[last] = 1;
    for (int i = last - 1; i >= 0; i--)
        ostr[i] = ostr[i + 1] * j->out[i + 1];
    for (int64_t m = b; m < e; m++) {
        T *ym = (T *)j->y + m * j->out_plane;
        T bv = j->bias ? ((const T *)j->bias)[m] : (T)0;
        for (int64_t q = 0; q < j->out_plane; q++)
            ym[q] = bv;
        for (int64_t kr0 = 0; kr0 < j->kprod; kr0++) {
            int64_t t[LIN_MAXSP], kr = kr0;
            for (int i = last; i >= 0; i--) {
                t[i] = kr % j->k[i];
                kr /= j->k[i];
            }
            const T *cr = (const T *)j->col + (m * j->kprod + kr0) * j->in_plane;
            int64_t offl = t[last] * j->d[last] - j->pb[last], sl = j->s[last];
            /* input coords i of the last dim whose output i*s + offl is inside */
            int64_t ilo = lmax(0, lceil_div(-offl, sl));
            int64_t ihi = lmin(j->in[last], lmax(ilo, lceil_div(j->out[last] - offl, sl)));
            int64_t ic[LIN_MAXSP] = {0};
            int64_t rows = j->in_plane / j->in[last];
            for (int64_t q = 0; q < rows; q++) {
                bool inside = true;
                int64_t off = 0;
                for (int i = 0; i < last; i++) {
                    int64_t pos = ic[i] * j->s[i] - j->pb[i] + t[i] * j->d[i];
                    if (pos < 0 || pos >= j->out[i]) {
                        inside = false;
                        break;
                    }
                    off += pos * ostr[i];
                }
                if (inside) {
                    const T *cq = cr + q * j->in[last];
                    T *yr = ym + off + offl;
                    for (int64_t u = ilo; u < ihi; u++)
                        yr[u * sl] += cq[u];
                }
                for (int i = last - 1; i >= 0; i--) {
                    if (++ic[i] < j->in[i])
                        break;
                    ic[i] = 0;
                }
            }
        }
    }
}

/* ---- normalisations -------------------------------------------------------- */

static void F(affine_range)(void *ctx, int64_t b, int64_t e)
{
    const affine_job *j = ctx;
    const T *a = j->a, *bb = j->b;
    int64_t np = j->plane; /* a local: y could alias *j as far as C knows, and a
                              reload per element keeps the loop from vectorising */
    for (int64_t pl = b; pl < e; pl++) {
        int64_t c = pl % j->C;
        const T *x = (const T *)j->x + pl * np;
        T *y = (T *)j->y + pl * np;
        if (j->per_elem) {
            const T *ac = a + c * np, *bc = bb + c * np;
            for (int64_t i = 0; i < np; i++)
                y[i] = x[i] * ac[i] + bc[i];
        } else {
            T ac = a[c], bc = bb[c];
            for (int64_t i = 0; i < np; i++)
                y[i] = x[i] * ac + bc;
        }
    }
}

/* Channels [b, e): batch mean and (population) variance. */
static void F(bn_stats_range)(void *ctx, int64_t b, int64_t e)
{
    const bn_train_job *j = ctx;
    const T *x = j->x;
    double cnt = (double)(j->N * j->plane);
    for (int64_t c = b; c < e; c++) {
        double s = 0.0;
        for (int64_t n = 0; n < j->N; n++) {
            const T *p = x + (n * j->C + c) * j->plane;
            for (int64_t i = 0; i < j->plane; i++)
                s += (double)p[i];
        }
        double mean = cnt > 0 ? s / cnt : 0.0, v = 0.0;
        for (int64_t n = 0; n < j->N; n++) {
            const T *p = x + (n * j->C + c) * j->plane;
            for (int64_t i = 0; i < j->plane; i++) {
                double dd = (double)p[i] - mean;
                v += dd * dd;
            }
        }
        j->mean[c] = mean;
        j->var[c] = cnt > 0 ? v / cnt : 0.0;
    }
}

static void F(rows_range)(void *ctx, int64_t b, int64_t e)
{
    const rows_job *j = ctx;
    const T *sc = j->scale, *bi = j->bias;
    int64_t D = j->D;
    for (int64_t r = b; r < e; r++) {
        const T *x = (const T *)j->x + r * D;
        T *y = (T *)j->y + r * D;
        double mean = 0.0, var = 0.0;
        if (j->rms) {
            for (int64_t i = 0; i < D; i++)
                var += (double)x[i] * (double)x[i];
        } else {
            for (int64_t i = 0; i < D; i++)
                mean += (double)x[i];
            mean = D > 0 ? mean / (double)D : 0.0;
            for (int64_t i = 0; i < D; i++) {
                double dd = (double)x[i] - mean;
                var += dd * dd;
            }
        }
        var = D > 0 ? var / (double)D : 0.0;
        double inv = 1.0 / sqrt(var + j->eps);
        if (j->mean)
            j->mean[r] = (float)mean;
        if (j->inv)
            j->inv[r] = (float)inv;
        T mt = (T)mean, it = (T)inv;
        if (bi)
            for (int64_t i = 0; i < D; i++)
                y[i] = (x[i] - mt) * it * sc[i] + bi[i];
        else if (sc)
            for (int64_t i = 0; i < D; i++)
                y[i] = (x[i] - mt) * it * sc[i];
        else
            for (int64_t i = 0; i < D; i++)
                y[i] = (x[i] - mt) * it;
    }
}

/* (image, group) pairs [b, e): InstanceNormalization (G == C) and GroupNormalization. */
static void F(group_range)(void *ctx, int64_t b, int64_t e)
{
    const group_job *j = ctx;
    const T *sc = j->scale, *bi = j->bias;
    int64_t Cg = j->C / j->G, len = Cg * j->plane;
    for (int64_t r = b; r < e; r++) {
        int64_t n = r / j->G, g = r - n * j->G;
        const T *x = (const T *)j->x + (n * j->C + g * Cg) * j->plane;
        T *y = (T *)j->y + (n * j->C + g * Cg) * j->plane;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < len; i++)
            mean += (double)x[i];
        mean = len > 0 ? mean / (double)len : 0.0;
        for (int64_t i = 0; i < len; i++) {
            double dd = (double)x[i] - mean;
            var += dd * dd;
        }
        var = len > 0 ? var / (double)len : 0.0;
        double inv = 1.0 / sqrt(var + j->eps);
        for (int64_t c = 0; c < Cg; c++) {
            int64_t ch = g * Cg + c;
            T a = (T)(inv * (double)sc[ch]);
            T bb = (T)((double)bi[ch] - mean * inv * (double)sc[ch]);
            int64_t np = j->plane; /* local: see affine_range */
            const T *xc = x + c * np;
            T *yc = y + c * np;
            for (int64_t i = 0; i < np; i++)
                yc[i] = xc[i] * a + bb;
        }
    }
}

/* y / d^beta for the common betas without pow: 0.75 (AlexNet, GoogLeNet),
 * 0.5 and 1. d > 0 whenever bias > 0. */
static inline double F(lrn_pow)(double d, double beta)
{
    if (beta == 0.75) {
        double q = sqrt(d);
        return q * sqrt(q);
    }
    if (beta == 0.5)
        return sqrt(d);
    if (beta == 1.0)
        return d;
    return pow(d, beta);
}

/* Planes (n, c) in [b, e). The window's sum of squares is built a channel
 * plane at a time in a per-thread row of doubles (contiguous, vectorises),
 * in the same order as the per-element loop it replaces. */
static void F(lrn_range)(void *ctx, int64_t b, int64_t e)
{
    const lrn_job *j = ctx;
    int64_t lo_off = (j->size - 1) / 2, hi_off = j->size - 1 - lo_off;
    double scale = j->alpha / (double)j->size;
    double *acc = j->plane > 0 && (uint64_t)j->plane <= SIZE_MAX / sizeof(double)
                      ? pare_scratch(2, (size_t)j->plane * sizeof(double))
                      : NULL;
    for (int64_t pl = b; pl < e; pl++) {
        int64_t n = pl / j->C, c = pl - n * j->C;
        int64_t c0 = lmax(0, c - lo_off), c1 = lmin(j->C - 1, c + hi_off);
        const T *xn = (const T *)j->x + n * j->C * j->plane;
        const T *xc = xn + c * j->plane;
        T *y = (T *)j->y + pl * j->plane;
        if (acc) {
            int64_t np = j->plane; /* locals: acc could alias *j as far as C knows */
            double bias = j->bias, beta = j->beta;
            for (int64_t i = 0; i < np; i++)
                acc[i] = 0.0;
            for (int64_t cc = c0; cc <= c1; cc++) {
                const T *xr = xn + cc * np;
                for (int64_t i = 0; i < np; i++) {
                    double v = (double)xr[i];
                    acc[i] += v * v;
                }
            }
            if (beta == 0.75) { /* simple passes, each of which vectorises */
                for (int64_t i = 0; i < np; i++)
                    acc[i] = sqrt(bias + scale * acc[i]);
                for (int64_t i = 0; i < np; i++)
                    acc[i] = acc[i] * sqrt(acc[i]);
                for (int64_t i = 0; i < np; i++)
                    y[i] = (T)((double)xc[i] / acc[i]);
            } else {
                for (int64_t i = 0; i < np; i++)
                    y[i] = (T)((double)xc[i] / F(lrn_pow)(bias + scale * acc[i], beta));
            }
            continue;
        }
        for (int64_t i = 0; i < j->plane; i++) {
            double s = 0.0;
            for (int64_t cc = c0; cc <= c1; cc++) {
                double v = (double)xn[cc * j->plane + i];
                s += v * v;
            }
            y[i] = (T)((double)xc[i] / F(lrn_pow)(j->bias + scale * s, j->beta));
        }
    }
}

/* Lines along the normalised axis, [b, e) of outer*inner. */
static void F(lpn_range)(void *ctx, int64_t b, int64_t e)
{
    const lpn_job *j = ctx;
    for (int64_t q = b; q < e; q++) {
        int64_t o = q / j->inner, in = q - o * j->inner;
        const T *x = (const T *)j->x + o * j->len * j->inner + in;
        T *y = (T *)j->y + o * j->len * j->inner + in;
        double s = 0.0;
        for (int64_t t = 0; t < j->len; t++) {
            double v = (double)x[t * j->inner];
            s += j->p == 1 ? fabs(v) : v * v;
        }
        double nrm = j->p == 1 ? s : sqrt(s);
        for (int64_t t = 0; t < j->len; t++)
            y[t * j->inner] = nrm == 0.0 ? (T)0 : (T)((double)x[t * j->inner] / nrm);
    }
}

/* MeanVarianceNormalization over the dims flagged in red. */
static pare_status F(mvn)(const T *x, T *y, int rank, const int64_t *dims, const bool *red,
                          pare_error *err)
{
    int64_t gstr[PARE_MAX_RANK], ng = 1;
    for (int i = rank - 1; i >= 0; i--) {
        gstr[i] = red[i] ? 0 : ng;
        if (!red[i])
            ng *= dims[i];
    }
    int64_t total = prod64(rank, dims);
    double *acc = calloc((size_t)(ng ? ng : 1) * 3, sizeof *acc);
    if (!acc)
        return nomem(err);
    double *s1 = acc, *s2 = acc + ng, *cnt = acc + 2 * ng;
    int64_t c[PARE_MAX_RANK] = {0};
    for (int pass = 0; pass < 2; pass++) {
        memset(c, 0, sizeof c);
        int64_t gi = 0;
        for (int64_t q = 0; q < total; q++) {
            double v = (double)x[q];
            if (pass == 0) {
                s1[gi] += v;
                s2[gi] += v * v;
                cnt[gi] += 1.0;
            } else {
                double m = s1[gi] / cnt[gi];
                double var = s2[gi] / cnt[gi] - m * m;
                y[q] = (T)((v - m) / (sqrt(var > 0 ? var : 0.0) + 1e-9));
            }
            for (int i = rank - 1; i >= 0; i--) {
                gi += gstr[i];
                if (++c[i] < dims[i])
                    break;
                gi -= gstr[i] * dims[i];
                c[i] = 0;
            }
        }
    }
    free(acc);
    return PARE_OK;
}

#endif /* !IS_INT && !POOL8 */

#if !POOL8
/* ---- Einsum: the generic sum-of-products loop ------------------------------ */

#if IS_INT
#define EACC uint64_t
#define EMUL(a, b) ((uint64_t)(a) * (uint64_t)(b))
#define EOUT(v) ((T)(v))
#else
#define EACC double
#define EMUL(a, b) ((double)(a) * (double)(b))
#define EOUT(v) ((T)(v))
#endif

static void F(einsum_range)(void *ctx, int64_t b, int64_t e)
{
    const einsum_job *j = ctx;
    int n = j->n_in, no = j->n_out_l, ns = j->n_sum_l;
    int64_t oc[EIN_MAXL] = {0}, base[EIN_MAXIN] = {0};
    /* coordinates of output element b */
    int64_t rem = b;
    for (int l = no - 1; l >= 0; l--) {
        oc[l] = rem % j->out_size[l];
        rem /= j->out_size[l];
    }
    for (int i = 0; i < n; i++)
        for (int l = 0; l < no; l++)
            base[i] += oc[l] * j->ostr[i][l];
    for (int64_t q = b; q < e; q++) {
        EACC acc = 0;
        int64_t sc[EIN_MAXL] = {0}, off[EIN_MAXIN];
        for (int i = 0; i < n; i++)
            off[i] = base[i];
        for (;;) {
            EACC p = (EACC)((const T *)j->x[0])[off[0]];
            for (int i = 1; i < n; i++)
                p = EMUL(p, ((const T *)j->x[i])[off[i]]);
            acc += p;
            int l = ns - 1;
            for (; l >= 0; l--) {
                for (int i = 0; i < n; i++)
                    off[i] += j->sstr[i][l];
                if (++sc[l] < j->sum_size[l])
                    break;
                for (int i = 0; i < n; i++)
                    off[i] -= j->sstr[i][l] * j->sum_size[l];
                sc[l] = 0;
            }
            if (l < 0)
                break;
        }
        ((T *)j->y)[q] = EOUT(acc);
        for (int l = no - 1; l >= 0; l--) {
            for (int i = 0; i < n; i++)
                base[i] += j->ostr[i][l];
            if (++oc[l] < j->out_size[l])
                break;
            for (int i = 0; i < n; i++)
                base[i] -= j->ostr[i][l] * j->out_size[l];
            oc[l] = 0;
        }
    }
}

#undef EACC
#undef EMUL
#undef EOUT

#if IS_INT
/* Rows [b, e) of C = op(A) op(B), modulo 2^64. */
static void F(intgemm_range)(void *ctx, int64_t b, int64_t e)
{
    const intgemm_job *j = ctx;
    for (int64_t i = b; i < e; i++)
        for (int64_t n = 0; n < j->N; n++) {
            uint64_t s = 0;
            for (int64_t k = 0; k < j->K; k++) {
                uint64_t a = (uint64_t)(j->tA ? j->A[k * j->lda + i] : j->A[i * j->lda + k]);
                uint64_t bb = (uint64_t)(j->tB ? j->B[n * j->ldb + k] : j->B[k * j->ldb + n]);
                s += a * bb;
            }
            j->C[i * j->ldc + n] = (int64_t)s;
        }
}
#endif
#endif /* !POOL8 */

#undef F
#undef S
#undef T
#undef IS_INT
#undef POOL8

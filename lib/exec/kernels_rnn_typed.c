/* Included by kernels_rnn.c once per compute type with
 *   RT      the compute type (float or double)
 *   RS      the name suffix (f32 / f64)
 *   RGEMM   pare_sgemm / pare_dgemm
 *   RTANH, REXP, RFABS, RLOG1P  the math functions of RT
 * It defines the activation helper and the recurrence of RNN, GRU and LSTM
 * over canonical (layout 0) buffers already converted to RT. */

#define RCAT_(a, b) a##_##b
#define RCAT(a, b) RCAT_(a, b)
#define RF(name) RCAT(name, RS)

static void RF(rnn_act_apply)(const rnn_act *a, RT *v, int64_t n)
{
    RT al = (RT)a->alpha, be = (RT)a->beta;
    switch (a->kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? v[i] : 0;
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            v[i] = RTANH(v[i]);
        break;
    case ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            RT e = REXP(-RFABS(v[i]));
            v[i] = v[i] >= 0 ? 1 / (1 + e) : e / (1 + e);
        }
        break;
    case ACT_AFFINE:
        for (int64_t i = 0; i < n; i++)
            v[i] = al * v[i] + be;
        break;
    case ACT_LEAKYRELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] >= 0 ? v[i] : al * v[i];
        break;
    case ACT_THRESHRELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > al ? v[i] : 0;
        break;
    case ACT_SCALEDTANH:
        for (int64_t i = 0; i < n; i++)
            v[i] = al * RTANH(be * v[i]);
        break;
    case ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            RT y = al * v[i] + be;
            v[i] = y < 0 ? 0 : y > 1 ? 1 : y;
        }
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] >= 0 ? v[i] : al * (REXP(v[i]) - 1);
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] / (1 + RFABS(v[i]));
        break;
    case ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? v[i] + RLOG1P(REXP(-v[i])) : RLOG1P(REXP(v[i]));
        break;
    default:
        break;
    }
}

static void RF(rnn_clip)(const rnn_state *S, RT *v, int64_t n)
{
    if (!S->has_clip)
        return;
    RT c = (RT)S->clip;
    for (int64_t i = 0; i < n; i++)
        v[i] = v[i] < -c ? -c : v[i] > c ? c : v[i];
}

/* Runs all directions. Buffers (canonical layout):
 *   X [seq, batch, In], W [dirs, G*H, In], R [dirs, G*H, H], B [dirs, 2*G*H],
 *   lens [batch], h0/c0 [dirs, batch, H], P [dirs, 3*H] (LSTM),
 *   Y [seq, dirs, batch, H], Yh/Yc [dirs, batch, H]. */
static pare_status RF(rnn_core)(pare_kctx *k, const rnn_state *S, int64_t H, int64_t seq,
                                int64_t batch, int64_t In, const RT *X, const RT *W, const RT *R,
                                const RT *B, const int64_t *lens, const RT *h0, const RT *c0,
                                const RT *P, RT *Y, RT *Yh, RT *Yc, pare_error *err)
{
    const int64_t G = S->ngates, GH = G * H, nd = S->ndir;
    const bool gru = S->cell == CELL_GRU, lstm = S->cell == CELL_LSTM;
    size_t nxw = (size_t)(seq * batch * GH), nhr = (size_t)(batch * GH), nh = (size_t)(batch * H);
    RT *XW = malloc((nxw ? nxw : 1) * sizeof *XW);
    RT *HR = malloc((nhr ? nhr : 1) * sizeof *HR);
    RT *tmp = malloc((nh ? nh : 1) * 3 * sizeof *tmp);
    pare_status st = PARE_OK;
    if (!XW || !HR || !tmp) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    RT *Hrh = tmp + nh, *Zb = tmp + 2 * nh; /* GRU: (r*H) R_h^T, z gates */
    for (int64_t d = 0; d < nd; d++) {
        const RT *Wd = W + d * GH * In, *Rd = R + d * GH * H, *Bd = B + d * 2 * GH;
        const rnn_act *act = S->act[d];
        RT *Hc = Yh + d * batch * H, *Cc = lstm ? Yc + d * batch * H : NULL;
        memcpy(Hc, h0 + d * batch * H, nh * sizeof *Hc);
        if (lstm)
            memcpy(Cc, c0 + d * batch * H, nh * sizeof *Cc);
        const RT *Pd = lstm && P ? P + d * 3 * H : NULL;
        if (seq * batch > 0 && GH > 0) {
            if (In > 0)
                st = RGEMM(k->pool, false, true, seq * batch, GH, In, 1, X, In, Wd, In, 0, XW, GH);
            else
                memset(XW, 0, nxw * sizeof *XW);
            if (st) {
                st = pare_error_set(err, st, "gemm failed");
                goto done;
            }
        }
        for (int64_t r = 0; r < seq * batch; r++) {
            RT *row = XW + r * GH;
            for (int64_t g = 0; g < GH; g++)
                row[g] += Bd[g] + (gru && g >= 2 * H ? 0 : Bd[GH + g]);
        }
        bool reverse = S->direction == DIR_REVERSE || d == 1;
        int64_t ncols = gru && !S->lbr ? 2 * H : GH;
        for (int64_t s = 0; s < seq; s++) {
            int64_t t = reverse ? seq - 1 - s : s;
            if (batch > 0 && H > 0) {
                st = RGEMM(k->pool, false, true, batch, ncols, H, 1, Hc, H, Rd, H, 0, HR, GH);
                if (st) {
                    st = pare_error_set(err, st, "gemm failed");
                    goto done;
                }
            }
            if (gru && !S->lbr) {
                for (int64_t b = 0; b < batch; b++) {
                    RT *g = XW + (t * batch + b) * GH, *hr = HR + b * GH;
                    RT *rh = tmp + b * H, *z = Zb + b * H;
                    for (int64_t j = 0; j < 2 * H; j++)
                        g[j] += hr[j];
                    RF(rnn_clip)(S, g, 2 * H);
                    RF(rnn_act_apply)(&act[0], g, 2 * H);
                    memcpy(z, g, (size_t)H * sizeof *z);
                    for (int64_t j = 0; j < H; j++)
                        rh[j] = g[H + j] * Hc[b * H + j];
                }
                if (batch > 0 && H > 0) {
                    st = RGEMM(k->pool, false, true, batch, H, H, 1, tmp, H, Rd + 2 * H * H, H, 0,
                               Hrh, H);
                    if (st) {
                        st = pare_error_set(err, st, "gemm failed");
                        goto done;
                    }
                }
            }
            for (int64_t b = 0; b < batch; b++) {
                RT *hc = Hc + b * H, *y = Y + ((t * nd + d) * batch + b) * H;
                if (t >= lens[b]) {
                    memset(y, 0, (size_t)H * sizeof *y);
                    continue;
                }
                RT *g = XW + (t * batch + b) * GH, *hr = HR + b * GH;
                if (S->cell == CELL_RNN) {
                    for (int64_t j = 0; j < H; j++)
                        g[j] += hr[j];
                    RF(rnn_clip)(S, g, H);
                    RF(rnn_act_apply)(&act[0], g, H);
                    memcpy(hc, g, (size_t)H * sizeof *hc);
                } else if (gru) {
                    RT *z, *h = g + 2 * H;
                    if (S->lbr) {
                        for (int64_t j = 0; j < 2 * H; j++)
                            g[j] += hr[j];
                        RF(rnn_clip)(S, g, 2 * H);
                        RF(rnn_act_apply)(&act[0], g, 2 * H);
                        z = g;
                        const RT *rbh = Bd + GH + 2 * H;
                        for (int64_t j = 0; j < H; j++)
                            h[j] += g[H + j] * (hr[2 * H + j] + rbh[j]);
                    } else {
                        z = Zb + b * H;
                        const RT *rbh = Bd + GH + 2 * H, *hrh = Hrh + b * H;
                        for (int64_t j = 0; j < H; j++)
                            h[j] += hrh[j] + rbh[j];
                    }
                    RF(rnn_clip)(S, h, H);
                    RF(rnn_act_apply)(&act[1], h, H);
                    for (int64_t j = 0; j < H; j++)
                        hc[j] = (1 - z[j]) * h[j] + z[j] * hc[j];
                } else {
                    RT *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
                    RT *cc = Cc + b * H, *th = tmp + b * H;
                    for (int64_t j = 0; j < GH; j++)
                        g[j] += hr[j];
                    if (Pd)
                        for (int64_t j = 0; j < H; j++) {
                            gi[j] += Pd[j] * cc[j];
                            gf[j] += Pd[2 * H + j] * cc[j];
                        }
                    RF(rnn_clip)(S, gi, H);
                    RF(rnn_clip)(S, gf, H);
                    RF(rnn_clip)(S, gc, H);
                    RF(rnn_act_apply)(&act[0], gi, H);
                    RF(rnn_act_apply)(&act[0], gf, H);
                    RF(rnn_act_apply)(&act[1], gc, H);
                    if (S->input_forget)
                        for (int64_t j = 0; j < H; j++)
                            gi[j] = 1 - gf[j];
                    for (int64_t j = 0; j < H; j++)
                        cc[j] = gf[j] * cc[j] + gi[j] * gc[j];
                    if (Pd)
                        for (int64_t j = 0; j < H; j++)
                            go[j] += Pd[H + j] * cc[j];
                    RF(rnn_clip)(S, go, H);
                    RF(rnn_act_apply)(&act[0], go, H);
                    memcpy(th, cc, (size_t)H * sizeof *th);
                    RF(rnn_act_apply)(&act[2], th, H);
                    for (int64_t j = 0; j < H; j++)
                        hc[j] = go[j] * th[j];
                }
                memcpy(y, hc, (size_t)H * sizeof *y);
            }
        }
    }
done:
    free(XW);
    free(HR);
    free(tmp);
    return st;
}

#undef RF
#undef RCAT
#undef RCAT_

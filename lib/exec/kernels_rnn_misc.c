/* Included by kernels_rnn.c: further ops no other family owns:
 * NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss, Attention (opset 23/24)
 * and RotaryEmbedding. Float inputs of any width compute in float64 and
 * round once to the output type. */

/* ------------------------------------------------------------------ */
/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss               */

typedef struct loss_state {
    int reduction; /* 0 none, 1 sum, 2 mean */
    bool has_ignore, softmax;
    int64_t ignore;
} loss_state;

static pare_status loss_init_kind(const pare_node *n, bool softmax, void **state, pare_error *err)
{
    loss_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const char *red = pare_node_attr_string(n, "reduction", "mean");
    s->reduction = !strcmp(red, "none") ? 0 : !strcmp(red, "sum") ? 1 : !strcmp(red, "mean") ? 2
                                                                                          : -1;
    if (s->reduction < 0) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "unknown reduction '%s'", red);
    }
    const pare_attr *a = pare_node_attr(n, "ignore_index");
    if (a && a->type == PARE_ATTR_INT) {
        s->has_ignore = true;
        s->ignore = a->i;
    }
    s->softmax = softmax;
    *state = s;
    return PARE_OK;
}

static pare_status nll_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return loss_init_kind(n, false, s, e);
}

static pare_status sce_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return loss_init_kind(n, true, s, e);
}

static pare_status loss_run(pare_kctx *k, pare_error *err)
{
    const loss_state *S = k->state;
    const pare_tensor *x = k->in[0], *tg = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *wt = k->n_in > 2 ? k->in[2] : NULL;
    if (!x || !tg || x->rank < 2 || !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "input must be a float tensor [N, C, ...]");
    if (tg->rank != x->rank - 1 || tg->dims[0] != x->dims[0] || pare_dtype_is_float(tg->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "target must be integer [N, d1, ...]");
    for (int i = 1; i < tg->rank; i++)
        if (tg->dims[i] != x->dims[i + 1])
            return pare_error_set(err, PARE_ERR_INVALID, "target dims do not match the input");
    int64_t N = x->dims[0], C = x->dims[1], D = 1;
    for (int i = 2; i < x->rank; i++)
        D *= x->dims[i];
    if (wt && (wt->rank != 1 || wt->dims[0] != C))
        return pare_error_set(err, PARE_ERR_INVALID, "weight must have C elements");
    pare_tensor *y, *lp = NULL;
    pare_status st = k->alloc_out(k, 0, x->dtype, S->reduction ? 0 : tg->rank, tg->dims, &y, err);
    if (!st && S->softmax && k->n_out > 1)
        st = k->alloc_out(k, 1, x->dtype, x->rank, x->dims, &lp, err);
    if (st)
        return st;
    double *v = r_convert(x, PARE_DT_DOUBLE, err), *w = NULL, *loss = NULL;
    if (!v)
        return err->status;
    if (wt && !(w = r_convert(wt, PARE_DT_DOUBLE, err))) {
        free(v);
        return err->status;
    }
    loss = malloc((size_t)(N * D > 0 ? N * D : 1) * sizeof *loss);
    if (!loss) {
        st = r_nomem(err);
        goto done;
    }
    if (S->softmax) { /* log-softmax over C, in place */
        for (int64_t n = 0; n < N; n++)
            for (int64_t d = 0; d < D; d++) {
                double *p = v + n * C * D + d, mx = -INFINITY, sum = 0;
                for (int64_t c = 0; c < C; c++)
                    mx = p[c * D] > mx ? p[c * D] : mx;
                for (int64_t c = 0; c < C; c++)
                    sum += exp(p[c * D] - mx);
                double ls = log(sum);
                for (int64_t c = 0; c < C; c++)
                    p[c * D] = p[c * D] - mx - ls;
            }
        if (lp)
            pare_dtype_convert(lp->dtype, lp->data, PARE_DT_DOUBLE, v, (size_t)(N * C * D), true);
    }
    double wsum = 0, lsum = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t t = (int64_t)pare_dtype_get_f64(tg->dtype, tg->data, (size_t)(n * D + d));
            double l = 0, g = 1;
            if (S->has_ignore && t == S->ignore) {
                g = 0;
            } else {
                if (t < 0 || t >= C) {
                    st = pare_error_set(err, PARE_ERR_INVALID,
                                        "target %lld out of range [0, %lld)", (long long)t,
                                        (long long)C);
                    goto done;
                }
                l = -v[(n * C + t) * D + d];
                if (w)
                    g = w[t];
            }
            loss[n * D + d] = g * l;
            lsum += g * l;
            wsum += g;
        }
    if (S->reduction == 0) {
        pare_dtype_convert(y->dtype, y->data, PARE_DT_DOUBLE, loss, (size_t)(N * D), true);
    } else {
        double r = lsum;
        /* the reference divides by the element count when nothing is weighted */
        if (S->reduction == 2)
            r = (w || (S->has_ignore && !(!S->softmax && S->ignore == -1))) ? lsum / wsum
                                                                             : lsum / (double)(N * D);
        pare_dtype_set_f64(y->dtype, y->data, 0, r);
    }
done:
    free(v);
    free(w);
    free(loss);
    return st;
}

/* ------------------------------------------------------------------ */
/* Attention (ai.onnx 23, 24)                                          */

typedef struct attn_state {
    bool causal, has_scale;
    int64_t q_heads, kv_heads, qk_mode;
    float scale, softcap;
} attn_state;

static pare_status attn_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    attn_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->causal = pare_node_attr_int(n, "is_causal", 0) != 0;
    s->q_heads = pare_node_attr_int(n, "q_num_heads", 0);
    s->kv_heads = pare_node_attr_int(n, "kv_num_heads", 0);
    s->qk_mode = pare_node_attr_int(n, "qk_matmul_output_mode", 0);
    const pare_attr *a = pare_node_attr(n, "scale");
    if (a && a->type == PARE_ATTR_FLOAT) {
        s->has_scale = true;
        s->scale = a->f;
    }
    s->softcap = pare_node_attr_float(n, "softcap", 0.0f);
    if (s->qk_mode < 0 || s->qk_mode > 3 || s->q_heads < 0 || s->kv_heads < 0) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "bad Attention attributes");
    }
    *state = s;
    return PARE_OK;
}

/* A [B, heads, S, D] view of a 3-D [B, S, heads*D] or 4-D tensor. */
typedef struct attn_view {
    const double *p;
    int64_t heads, S, D;
    int64_t sb, sh, ss; /* strides of batch, head, seq (D is contiguous) */
} attn_view;

static pare_status attn_view_make(const pare_tensor *t, const double *p, int64_t heads,
                                  attn_view *v, const char *what, pare_error *err)
{
    v->p = p;
    if (t->rank == 4) {
        v->heads = t->dims[1];
        v->S = t->dims[2];
        v->D = t->dims[3];
        v->ss = v->D;
        v->sh = v->S * v->D;
        v->sb = v->heads * v->sh;
    } else if (t->rank == 3) {
        if (heads < 1 || t->dims[2] % heads)
            return pare_error_set(err, PARE_ERR_INVALID, "%s: hidden size %lld not divisible by "
                                  "%lld heads", what, (long long)t->dims[2], (long long)heads);
        v->heads = heads;
        v->S = t->dims[1];
        v->D = t->dims[2] / heads;
        v->ss = t->dims[2];
        v->sh = v->D;
        v->sb = v->S * v->ss;
    } else {
        return pare_error_set(err, PARE_ERR_INVALID, "%s must have rank 3 or 4", what);
    }
    return PARE_OK;
}

typedef struct attn_job {
    const attn_state *S;
    attn_view q;
    const double *K, *V; /* present [B, Hk, T, D] */
    int64_t Hk, T, Dk, Dv, past;
    const double *mask;  /* [m0, m1, m2, m3] broadcast, NULL if none */
    const uint8_t *bmask;
    int64_t md[4];
    const int64_t *nonpad;
    double scale;
    double *Y;  /* [B, Hq, Sq, Dv] */
    double *QK; /* [B, Hq, Sq, T] or NULL */
} attn_job;

static void attn_rows(void *ctx, int64_t r0, int64_t r1)
{
    const attn_job *J = ctx;
    const attn_state *S = J->S;
    int64_t Hq = J->q.heads, Sq = J->q.S, T = J->T;
    double *row = malloc((size_t)(T > 0 ? T : 1) * 2 * sizeof *row);
    if (!row)
        return; /* outputs stay as they were; a NOMEM here cannot be reported */
    double *qk = row + T;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = r % Sq, h = (r / Sq) % Hq, b = r / (Sq * Hq);
        int64_t kh = h / (Hq / J->Hk);
        const double *q = J->q.p + b * J->q.sb + h * J->q.sh + i * J->q.ss;
        const double *Kb = J->K + (b * J->Hk + kh) * T * J->Dk;
        const double *Vb = J->V + (b * J->Hk + kh) * T * J->Dv;
        for (int64_t j = 0; j < T; j++) {
            double s = 0;
            for (int64_t d = 0; d < J->Dk; d++)
                s += q[d] * Kb[j * J->Dk + d];
            s *= J->scale;
            if (S->softcap > 0)
                s = S->softcap * tanh(s / S->softcap);
            qk[j] = s;
            double bias = 0;
            if (J->mask || J->bmask) {
                if (j >= J->md[3]) {
                    bias = -INFINITY;
                } else {
                    int64_t mi = (((J->md[0] == 1 ? 0 : b) * J->md[1] + (J->md[1] == 1 ? 0 : h)) *
                                      J->md[2] +
                                  (J->md[2] == 1 ? 0 : i)) *
                                     J->md[3] +
                                 j;
                    bias = J->mask ? J->mask[mi] : J->bmask[mi] ? 0 : -INFINITY;
                }
            }
            if (S->causal && j > i + J->past)
                bias += -INFINITY;
            if (J->nonpad && j >= J->nonpad[b])
                bias += -INFINITY;
            row[j] = s + bias;
        }
        double *qko = J->QK ? J->QK + r * T : NULL;
        if (qko && S->qk_mode <= 1)
            memcpy(qko, qk, (size_t)T * sizeof *qko);
        else if (qko && S->qk_mode == 2)
            memcpy(qko, row, (size_t)T * sizeof *qko);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < T; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < T; j++) {
            row[j] = exp(row[j] - mx);
            sum += row[j];
        }
        for (int64_t j = 0; j < T; j++)
            row[j] /= sum;
        if (qko && S->qk_mode == 3)
            memcpy(qko, row, (size_t)T * sizeof *qko);
        double *y = J->Y + r * J->Dv;
        for (int64_t d = 0; d < J->Dv; d++)
            y[d] = 0;
        for (int64_t j = 0; j < T; j++) {
            double p = row[j];
            for (int64_t d = 0; d < J->Dv; d++)
                y[d] += p * Vb[j * J->Dv + d];
        }
    }
    free(row);
}

static pare_status attn_run(pare_kctx *k, pare_error *err)
{
    const attn_state *S = k->state;
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "Q, K and V are required");
    const pare_tensor *qt = k->in[0], *kt = k->in[1], *vt = k->in[2];
    const pare_tensor *mt = k->n_in > 3 ? k->in[3] : NULL, *pk = k->n_in > 4 ? k->in[4] : NULL;
    const pare_tensor *pv = k->n_in > 5 ? k->in[5] : NULL, *np = k->n_in > 6 ? k->in[6] : NULL;
    if (qt->rank != kt->rank || qt->rank != vt->rank || !pare_dtype_is_float(qt->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "Q, K, V must be float of the same rank");
    if ((pk == NULL) != (pv == NULL))
        return pare_error_set(err, PARE_ERR_INVALID, "past_key and past_value go together");
    double *Qd = NULL, *Kd = NULL, *Vd = NULL, *PK = NULL, *PV = NULL, *Kp = NULL, *Vp = NULL;
    double *M = NULL, *Y = NULL, *QK = NULL, *Yt = NULL;
    int64_t *nonpad = NULL;
    pare_status st = PARE_OK;
    attn_job J;
    memset(&J, 0, sizeof J);
    J.S = S;
    attn_view kv, vv;
    if (!(Qd = r_convert(qt, PARE_DT_DOUBLE, err)) || !(Kd = r_convert(kt, PARE_DT_DOUBLE, err)) ||
        !(Vd = r_convert(vt, PARE_DT_DOUBLE, err))) {
        st = err->status;
        goto done;
    }
    if ((st = attn_view_make(qt, Qd, S->q_heads, &J.q, "Q", err)) ||
        (st = attn_view_make(kt, Kd, S->kv_heads, &kv, "K", err)) ||
        (st = attn_view_make(vt, Vd, S->kv_heads, &vv, "V", err)))
        goto done;
    int64_t B = qt->dims[0], Hq = J.q.heads, Sq = J.q.S, Hk = kv.heads, Skv = kv.S;
    int64_t Dk = kv.D, Dv = vv.D;
    if (kt->dims[0] != B || vt->dims[0] != B || vv.heads != Hk || vv.S != Skv || Dk != J.q.D ||
        Hk < 1 || Hq % Hk) {
        st = pare_error_set(err, PARE_ERR_INVALID, "inconsistent Q/K/V shapes");
        goto done;
    }
    int64_t P = 0;
    if (pk) {
        if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != B || pk->dims[1] != Hk ||
            pk->dims[3] != Dk || pv->dims[0] != B || pv->dims[1] != Hk ||
            pv->dims[2] != pk->dims[2] || pv->dims[3] != Dv) {
            st = pare_error_set(err, PARE_ERR_INVALID, "past_key/past_value shapes");
            goto done;
        }
        P = pk->dims[2];
        if (!(PK = r_convert(pk, PARE_DT_DOUBLE, err)) ||
            !(PV = r_convert(pv, PARE_DT_DOUBLE, err))) {
            st = err->status;
            goto done;
        }
    }
    int64_t T = P + Skv;
    Kp = malloc((size_t)(B * Hk * T * Dk + 1) * sizeof *Kp);
    Vp = malloc((size_t)(B * Hk * T * Dv + 1) * sizeof *Vp);
    Y = malloc((size_t)(B * Hq * Sq * Dv + 1) * sizeof *Y);
    Yt = malloc((size_t)(B * Hq * Sq * Dv + 1) * sizeof *Yt);
    if (!Kp || !Vp || !Y || !Yt) {
        st = r_nomem(err);
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hk; h++)
            for (int64_t t = 0; t < T; t++) {
                double *kd = Kp + ((b * Hk + h) * T + t) * Dk, *vd = Vp + ((b * Hk + h) * T + t) * Dv;
                if (t < P) {
                    memcpy(kd, PK + ((b * Hk + h) * P + t) * Dk, (size_t)Dk * sizeof *kd);
                    memcpy(vd, PV + ((b * Hk + h) * P + t) * Dv, (size_t)Dv * sizeof *vd);
                } else {
                    memcpy(kd, kv.p + b * kv.sb + h * kv.sh + (t - P) * kv.ss,
                           (size_t)Dk * sizeof *kd);
                    memcpy(vd, vv.p + b * vv.sb + h * vv.sh + (t - P) * vv.ss,
                           (size_t)Dv * sizeof *vd);
                }
            }
    if (mt) {
        if (mt->rank < 1 || mt->rank > 4) {
            st = pare_error_set(err, PARE_ERR_INVALID, "attn_mask rank %d", mt->rank);
            goto done;
        }
        for (int i = 0; i < 4; i++)
            J.md[i] = i < 4 - mt->rank ? 1 : mt->dims[i - (4 - mt->rank)];
        int64_t want[3] = {B, Hq, Sq};
        for (int i = 0; i < 3; i++)
            if (J.md[i] != 1 && J.md[i] != want[i]) {
                st = pare_error_set(err, PARE_ERR_INVALID, "attn_mask does not broadcast");
                goto done;
            }
        if (J.md[3] > T) {
            st = pare_error_set(err, PARE_ERR_INVALID, "attn_mask longer than the total sequence");
            goto done;
        }
        if (mt->dtype == PARE_DT_BOOL)
            J.bmask = mt->data;
        else if (!(M = r_convert(mt, PARE_DT_DOUBLE, err))) {
            st = err->status;
            goto done;
        }
        J.mask = M;
    }
    if (np) {
        if (r_numel(np) != B) {
            st = pare_error_set(err, PARE_ERR_INVALID, "nonpad_kv_seqlen must have B elements");
            goto done;
        }
        nonpad = malloc((size_t)B * sizeof *nonpad);
        if (!nonpad) {
            st = r_nomem(err);
            goto done;
        }
        for (int64_t b = 0; b < B; b++)
            nonpad[b] = (int64_t)pare_dtype_get_f64(np->dtype, np->data, (size_t)b);
        J.nonpad = nonpad;
    }
    bool want_qk = k->n_out > 3 && k->node->outputs[3];
    if (want_qk && !(QK = malloc((size_t)(B * Hq * Sq * T + 1) * sizeof *QK))) {
        st = r_nomem(err);
        goto done;
    }
    J.K = Kp;
    J.V = Vp;
    J.Hk = Hk;
    J.T = T;
    J.Dk = Dk;
    J.Dv = Dv;
    J.past = P;
    J.scale = S->has_scale ? S->scale : 1.0 / sqrt((double)Dk);
    J.Y = Y;
    J.QK = QK;
    int64_t rows = B * Hq * Sq, grain = R_GRAIN / (T * (Dk + Dv) + 1);
    pare_parallel_for(k->pool, rows, grain < 1 ? 1 : grain, attn_rows, &J);
    /* outputs */
    pare_tensor *yo;
    if (qt->rank == 3) { /* [B, Hq, Sq, Dv] -> [B, Sq, Hq*Dv] */
        for (int64_t b = 0; b < B; b++)
            r_swap01(Y + b * Hq * Sq * Dv, Yt + b * Hq * Sq * Dv, Hq, Sq, Dv, sizeof *Y);
        int64_t d3[3] = {B, Sq, Hq * Dv};
        st = k->alloc_out(k, 0, qt->dtype, 3, d3, &yo, err);
        if (!st)
            pare_dtype_convert(qt->dtype, yo->data, PARE_DT_DOUBLE, Yt, (size_t)(B * Hq * Sq * Dv),
                               true);
    } else {
        int64_t d4[4] = {B, Hq, Sq, Dv};
        st = k->alloc_out(k, 0, qt->dtype, 4, d4, &yo, err);
        if (!st)
            pare_dtype_convert(qt->dtype, yo->data, PARE_DT_DOUBLE, Y, (size_t)(B * Hq * Sq * Dv),
                               true);
    }
    if (st)
        goto done;
    for (int o = 1; o <= 2 && (size_t)o < k->n_out; o++) {
        int64_t d4[4] = {B, Hk, T, o == 1 ? Dk : Dv};
        pare_tensor *pt;
        if ((st = k->alloc_out(k, (size_t)o, o == 1 ? kt->dtype : vt->dtype, 4, d4, &pt, err)))
            goto done;
        pare_dtype_convert(pt->dtype, pt->data, PARE_DT_DOUBLE, o == 1 ? Kp : Vp,
                           (size_t)(B * Hk * T * d4[3]), true);
    }
    if (want_qk) {
        int64_t d4[4] = {B, Hq, Sq, T};
        pare_tensor *pt;
        if ((st = k->alloc_out(k, 3, qt->dtype, 4, d4, &pt, err)))
            goto done;
        pare_dtype_convert(pt->dtype, pt->data, PARE_DT_DOUBLE, QK, (size_t)(B * Hq * Sq * T),
                           true);
    }
done:
    free(Qd);
    free(Kd);
    free(Vd);
    free(PK);
    free(PV);
    free(Kp);
    free(Vp);
    free(M);
    free(Y);
    free(Yt);
    free(QK);
    free(nonpad);
    return st;
}

/* ------------------------------------------------------------------ */
/* RotaryEmbedding (ai.onnx 23)                                        */

typedef struct rope_state {
    bool interleaved;
    int64_t dim, heads;
} rope_state;

static pare_status rope_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    rope_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->interleaved = pare_node_attr_int(n, "interleaved", 0) != 0;
    s->dim = pare_node_attr_int(n, "rotary_embedding_dim", 0);
    s->heads = pare_node_attr_int(n, "num_heads", 0);
    *state = s;
    return PARE_OK;
}

static pare_status rope_run(pare_kctx *k, pare_error *err)
{
    const rope_state *S = k->state;
    const pare_tensor *x = k->in[0], *ct = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *stt = k->n_in > 2 ? k->in[2] : NULL, *pt = k->n_in > 3 ? k->in[3] : NULL;
    if (!x || !ct || !stt || !pare_dtype_is_float(x->dtype) || (x->rank != 3 && x->rank != 4))
        return pare_error_set(err, PARE_ERR_INVALID, "input (rank 3/4), cos and sin are required");
    int64_t B = x->dims[0], H, Sl, D;
    int64_t sb, sh, ss; /* element strides of the [B, H, S, D] view */
    if (x->rank == 4) {
        H = x->dims[1];
        Sl = x->dims[2];
        D = x->dims[3];
        ss = D;
        sh = Sl * D;
        sb = H * sh;
    } else {
        H = S->heads;
        if (H < 1 || x->dims[2] % H)
            return pare_error_set(err, PARE_ERR_INVALID, "num_heads must divide the hidden size");
        Sl = x->dims[1];
        D = x->dims[2] / H;
        ss = x->dims[2];
        sh = D;
        sb = Sl * ss;
    }
    int64_t rd = S->dim ? S->dim : D, half = rd / 2;
    if (rd > D || rd % 2)
        return pare_error_set(err, PARE_ERR_INVALID, "rotary_embedding_dim %lld", (long long)rd);
    if (ct->dims[ct->rank - 1] != half || stt->dims[stt->rank - 1] != half ||
        r_numel(ct) != r_numel(stt))
        return pare_error_set(err, PARE_ERR_INVALID, "cos/sin caches must end in %lld",
                              (long long)half);
    int64_t maxpos = 0;
    if (pt) {
        if (ct->rank != 2 || r_numel(pt) != B * Sl)
            return pare_error_set(err, PARE_ERR_INVALID, "position_ids must be [batch, seq]");
        maxpos = ct->dims[0];
    } else if (ct->rank != 3 || ct->dims[0] != B || ct->dims[1] != Sl) {
        return pare_error_set(err, PARE_ERR_INVALID, "caches must be [batch, seq, dim/2]");
    }
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err);
    if (st)
        return st;
    double *X = r_convert(x, PARE_DT_DOUBLE, err), *C = NULL, *Sn = NULL;
    if (!X || !(C = r_convert(ct, PARE_DT_DOUBLE, err)) || !(Sn = r_convert(stt, PARE_DT_DOUBLE, err))) {
        st = err->status;
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < Sl; s++) {
            int64_t row = b * Sl + s;
            if (pt) {
                row = (int64_t)pare_dtype_get_f64(pt->dtype, pt->data, (size_t)(b * Sl + s));
                if (row < 0 || row >= maxpos) {
                    st = pare_error_set(err, PARE_ERR_INVALID, "position id %lld out of range [0, "
                                        "%lld)", (long long)row, (long long)maxpos);
                    goto done;
                }
            }
            const double *c = C + row * half, *sn = Sn + row * half;
            for (int64_t h = 0; h < H; h++) {
                double *v = X + b * sb + h * sh + s * ss;
                for (int64_t j = 0; j < half; j++) {
                    int64_t i1 = S->interleaved ? 2 * j : j, i2 = S->interleaved ? 2 * j + 1 : j + half;
                    double x1 = v[i1], x2 = v[i2];
                    v[i1] = c[j] * x1 - sn[j] * x2;
                    v[i2] = sn[j] * x1 + c[j] * x2;
                }
            }
        }
    pare_dtype_convert(y->dtype, y->data, PARE_DT_DOUBLE, X, (size_t)r_numel(x), true);
done:
    free(X);
    free(C);
    free(Sn);
    return st;
}

#define RNN_MISC_KERNELS                                                                      \
    {"", "NegativeLogLikelihoodLoss", 12, 0, nll_init, loss_run, r_free_state},               \
    {"", "SoftmaxCrossEntropyLoss", 12, 0, sce_init, loss_run, r_free_state},                 \
    {"", "Attention", 23, 0, attn_init, attn_run, r_free_state},                              \
    {"", "RotaryEmbedding", 23, 0, rope_init, rope_run, r_free_state},

/* Included by kernels_rnn.c: further ops no other family owns:
 * NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss, Attention (opset 23/24),
 * RotaryEmbedding, LinearAttention, CausalConvWithState, FlexAttention
 * (ai.onnx.preview), StringConcat, StringSplit, TfIdfVectorizer, the
 * ai.onnx.preview.training optimisers (Adagrad, Adam, Momentum) and the
 * ai.onnx.ml Binarizer, ArrayFeatureExtractor, LabelEncoder and TreeEnsemble,
 * BitCast and DeformConv (2-D). Float inputs of any width compute in float64 and
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

/* ------------------------------------------------------------------ */
/* LinearAttention (ai.onnx 27)                                        */

typedef struct linattn_state {
    int64_t q_heads, kv_heads;
    float scale;
    bool gating, delta;
} linattn_state;

static pare_status linattn_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    linattn_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->q_heads = pare_node_attr_int(n, "q_num_heads", 0);
    s->kv_heads = pare_node_attr_int(n, "kv_num_heads", 0);
    s->scale = pare_node_attr_float(n, "scale", 0.0f);
    const char *rule = pare_node_attr_string(n, "update_rule", "gated_delta");
    s->gating = !strcmp(rule, "gated") || !strcmp(rule, "gated_delta");
    s->delta = !strcmp(rule, "delta") || !strcmp(rule, "gated_delta");
    if ((strcmp(rule, "linear") && !s->gating && !s->delta) || s->q_heads < 1 ||
        s->kv_heads < 1 || s->q_heads % s->kv_heads) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID,
                              "bad LinearAttention attributes (update_rule '%s', heads)", rule);
    }
    *state = s;
    return PARE_OK;
}

static pare_status linattn_run(pare_kctx *k, pare_error *err)
{
    const linattn_state *S = k->state;
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "query, key and value are required");
    const pare_tensor *qt = k->in[0], *kt = k->in[1], *vt = k->in[2];
    const pare_tensor *pst = k->n_in > 3 ? k->in[3] : NULL, *dt = k->n_in > 4 ? k->in[4] : NULL;
    const pare_tensor *bt = k->n_in > 5 ? k->in[5] : NULL;
    if (qt->rank != 3 || kt->rank != 3 || vt->rank != 3 || !pare_dtype_is_float(qt->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "query, key, value must be float [B, T, H*D]");
    if (S->gating != (dt != NULL) || S->delta != (bt != NULL))
        return pare_error_set(err, PARE_ERR_INVALID, "decay/beta do not match update_rule");
    int64_t B = qt->dims[0], T = qt->dims[1], Hq = S->q_heads, Hk = S->kv_heads;
    if (qt->dims[2] % Hq || kt->dims[2] % Hk || vt->dims[2] % Hk)
        return pare_error_set(err, PARE_ERR_INVALID, "hidden sizes not divisible by heads");
    int64_t dk = qt->dims[2] / Hq, dv = vt->dims[2] / Hk, grp = Hq / Hk;
    if (kt->dims[0] != B || vt->dims[0] != B || kt->dims[1] != T || vt->dims[1] != T ||
        kt->dims[2] / Hk != dk)
        return pare_error_set(err, PARE_ERR_INVALID, "inconsistent query/key/value shapes");
    int64_t sd[4] = {B, Hk, dk, dv};
    if (pst && !r_dims_are(pst, 4, sd))
        return pare_error_set(err, PARE_ERR_INVALID, "past_state must be [B, Hkv, dk, dv]");
    int64_t dlast = dt ? dt->dims[dt->rank - 1] : 0, blast = bt ? bt->dims[bt->rank - 1] : 0;
    if (dt && (dt->rank != 3 || dt->dims[0] != B || dt->dims[1] != T ||
               (dlast != Hk && dlast != Hk * dk)))
        return pare_error_set(err, PARE_ERR_INVALID, "decay must be [B, T, Hkv or Hkv*dk]");
    if (bt && (bt->rank != 3 || bt->dims[0] != B || bt->dims[1] != T ||
               (blast != Hk && blast != 1)))
        return pare_error_set(err, PARE_ERR_INVALID, "beta must be [B, T, Hkv or 1]");
    int64_t od[3] = {B, T, Hq * dv};
    pare_tensor *out, *ps;
    pare_status st = k->alloc_out(k, 0, qt->dtype, 3, od, &out, err);
    if (!st)
        st = k->alloc_out(k, 1, pst ? pst->dtype : qt->dtype, 4, sd, &ps, err);
    if (st)
        return st;
    double *Q = r_convert(qt, PARE_DT_DOUBLE, err), *K = NULL, *V = NULL, *D = NULL, *Bt = NULL;
    double *St = NULL, *Y = NULL, *vtmp = NULL;
    if (!Q || !(K = r_convert(kt, PARE_DT_DOUBLE, err)) || !(V = r_convert(vt, PARE_DT_DOUBLE, err)) ||
        (dt && !(D = r_convert(dt, PARE_DT_DOUBLE, err))) ||
        (bt && !(Bt = r_convert(bt, PARE_DT_DOUBLE, err)))) {
        st = err->status;
        goto done;
    }
    size_t nst = (size_t)(B * Hk * dk * dv);
    St = pst ? r_convert(pst, PARE_DT_DOUBLE, err) : calloc(nst ? nst : 1, sizeof *St);
    Y = malloc((size_t)(B * T * Hq * dv + 1) * sizeof *Y);
    vtmp = malloc((size_t)(dv + 1) * sizeof *vtmp);
    if (!St || !Y || !vtmp) {
        st = err->status ? err->status : r_nomem(err);
        goto done;
    }
    double scale = S->scale != 0.0f ? (double)S->scale : 1.0 / sqrt((double)dk);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            for (int64_t h = 0; h < Hk; h++) {
                double *s = St + (b * Hk + h) * dk * dv;
                const double *kv = K + (b * T + t) * Hk * dk + h * dk;
                const double *vv = V + (b * T + t) * Hk * dv + h * dv;
                if (D) {
                    const double *g = D + (b * T + t) * dlast;
                    for (int64_t d = 0; d < dk; d++) {
                        double e = exp(dlast == Hk ? g[h] : g[h * dk + d]);
                        for (int64_t m = 0; m < dv; m++)
                            s[d * dv + m] *= e;
                    }
                }
                if (Bt) {
                    double beta = Bt[(b * T + t) * blast + (blast == 1 ? 0 : h)];
                    for (int64_t m = 0; m < dv; m++) {
                        double r = 0;
                        for (int64_t d = 0; d < dk; d++)
                            r += s[d * dv + m] * kv[d];
                        vtmp[m] = beta * (vv[m] - r);
                    }
                } else {
                    memcpy(vtmp, vv, (size_t)dv * sizeof *vtmp);
                }
                for (int64_t d = 0; d < dk; d++)
                    for (int64_t m = 0; m < dv; m++)
                        s[d * dv + m] += kv[d] * vtmp[m];
            }
            for (int64_t h = 0; h < Hq; h++) {
                const double *s = St + (b * Hk + h / grp) * dk * dv;
                const double *qv = Q + (b * T + t) * Hq * dk + h * dk;
                double *y = Y + (b * T + t) * Hq * dv + h * dv;
                for (int64_t m = 0; m < dv; m++) {
                    double acc = 0;
                    for (int64_t d = 0; d < dk; d++)
                        acc += qv[d] * s[d * dv + m];
                    y[m] = scale * acc;
                }
            }
        }
    pare_dtype_convert(out->dtype, out->data, PARE_DT_DOUBLE, Y, (size_t)(B * T * Hq * dv), true);
    pare_dtype_convert(ps->dtype, ps->data, PARE_DT_DOUBLE, St, nst, true);
done:
    free(Q);
    free(K);
    free(V);
    free(D);
    free(Bt);
    free(St);
    free(Y);
    free(vtmp);
    return st;
}

/* ------------------------------------------------------------------ */
/* CausalConvWithState (ai.onnx 27)                                    */

static pare_status ccs_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    bool *silu = malloc(sizeof *silu);
    if (!silu)
        return r_nomem(err);
    const char *a = pare_node_attr_string(n, "activation", "none");
    *silu = !strcmp(a, "silu") || !strcmp(a, "swish");
    if (!*silu && strcmp(a, "none")) {
        free(silu);
        return pare_error_set(err, PARE_ERR_INVALID, "unknown activation '%s'", a);
    }
    *state = silu;
    return PARE_OK;
}

static pare_status ccs_run(pare_kctx *k, pare_error *err)
{
    bool silu = *(const bool *)k->state;
    const pare_tensor *x = k->in[0], *w = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *bias = k->n_in > 2 ? k->in[2] : NULL, *past = k->n_in > 3 ? k->in[3] : NULL;
    if (!x || !w || x->rank != 3 || w->rank != 3 || !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "input [B, C, L] and weight [C, 1, k] needed");
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2], K = w->dims[2];
    if (w->dims[0] != C || w->dims[1] != 1 || K < 1)
        return pare_error_set(err, PARE_ERR_INVALID, "weight must be [C, 1, k]");
    int64_t pd[3] = {B, C, K - 1};
    if (bias && r_numel(bias) != C)
        return pare_error_set(err, PARE_ERR_INVALID, "bias must have C elements");
    if (past && !r_dims_are(past, 3, pd))
        return pare_error_set(err, PARE_ERR_INVALID, "past_state must be [B, C, k-1]");
    pare_tensor *y, *ps;
    pare_status st = k->alloc_out(k, 0, x->dtype, 3, x->dims, &y, err);
    if (!st)
        st = k->alloc_out(k, 1, x->dtype, 3, pd, &ps, err);
    if (st)
        return st;
    double *X = r_convert(x, PARE_DT_DOUBLE, err), *W = NULL, *Bv = NULL, *P = NULL;
    double *pad = NULL, *Y = NULL;
    if (!X || !(W = r_convert(w, PARE_DT_DOUBLE, err)) ||
        (bias && !(Bv = r_convert(bias, PARE_DT_DOUBLE, err))) ||
        (past && !(P = r_convert(past, PARE_DT_DOUBLE, err)))) {
        st = err->status;
        goto done;
    }
    int64_t PL = K - 1 + L;
    pad = malloc((size_t)(B * C * PL + 1) * sizeof *pad);
    Y = malloc((size_t)(B * C * L + 1) * sizeof *Y);
    if (!pad || !Y) {
        st = r_nomem(err);
        goto done;
    }
    for (int64_t bc = 0; bc < B * C; bc++) {
        double *p = pad + bc * PL;
        for (int64_t i = 0; i < K - 1; i++)
            p[i] = P ? P[bc * (K - 1) + i] : 0.0;
        memcpy(p + K - 1, X + bc * L, (size_t)L * sizeof *p);
        const double *wc = W + (bc % C) * K;
        for (int64_t t = 0; t < L; t++) {
            double s = Bv ? Bv[bc % C] : 0.0;
            for (int64_t j = 0; j < K; j++)
                s += wc[j] * p[t + j];
            Y[bc * L + t] = s;
        }
    }
    if (silu) {
        int64_t n = B * C * L;
        pare_dtype_convert(x->dtype, y->data, PARE_DT_DOUBLE, Y, (size_t)n, true);
        for (int64_t i = 0; i < n; i++) {
            double v = pare_dtype_get_f64(x->dtype, y->data, (size_t)i);
            Y[i] = v / (1.0 + exp(-v));
        }
    }
    pare_dtype_convert(x->dtype, y->data, PARE_DT_DOUBLE, Y, (size_t)(B * C * L), true);
    for (int64_t bc = 0; bc < B * C; bc++)
        for (int64_t i = 0; i < K - 1; i++)
            pare_dtype_set_f64(x->dtype, ps->data, (size_t)(bc * (K - 1) + i),
                               pad[bc * PL + L + i]);
done:
    free(X);
    free(W);
    free(Bv);
    free(P);
    free(pad);
    free(Y);
    return st;
}

/* ------------------------------------------------------------------ */
/* FlexAttention (ai.onnx.preview 1)                                   */

typedef struct flex_state {
    bool has_scale;
    float scale;
    int64_t precision;
    const pare_graph *score_mod, *prob_mod;
} flex_state;

static pare_status flex_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    flex_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const pare_attr *a = pare_node_attr(n, "scale");
    if (a && a->type == PARE_ATTR_FLOAT) {
        s->has_scale = true;
        s->scale = a->f;
    }
    s->precision = pare_node_attr_int(n, "softmax_precision", 0);
    a = pare_node_attr(n, "score_mod");
    s->score_mod = a && a->type == PARE_ATTR_GRAPH ? a->g : NULL;
    a = pare_node_attr(n, "prob_mod");
    s->prob_mod = a && a->type == PARE_ATTR_GRAPH ? a->g : NULL;
    *state = s;
    return PARE_OK;
}

/* Runs a score/prob modifier graph on v (n values, dims d4) in dtype cdt and
 * replaces v with its output. */
static pare_status flex_mod(pare_kctx *k, const pare_graph *g, double *v, const int64_t *d4,
                            int cdt, pare_error *err)
{
    size_t n = (size_t)(d4[0] * d4[1] * d4[2] * d4[3]);
    pare_tensor *t;
    pare_status st = pare_tensor_new(NULL, cdt, 4, d4, &t, err);
    if (st)
        return st;
    pare_dtype_convert(cdt, t->data, PARE_DT_DOUBLE, v, n, true);
    const pare_tensor *in[1] = {t};
    pare_tensor **outs = NULL;
    size_t n_outs = 0;
    st = k->run_graph(k, g, in, 1, &outs, &n_outs, err);
    pare_tensor_free(t);
    if (st)
        return st;
    if (n_outs != 1 || !outs[0] || pare_tensor_numel(outs[0]) != n ||
        !pare_dtype_is_float(outs[0]->dtype))
        st = pare_error_set(err, PARE_ERR_INVALID, "modifier graph must return one tensor of "
                            "the scores' shape");
    else
        pare_dtype_convert(PARE_DT_DOUBLE, v, outs[0]->dtype, outs[0]->data, n, true);
    pare_tensors_free(outs, n_outs);
    return st;
}

static pare_status flex_run(pare_kctx *k, pare_error *err)
{
    const flex_state *S = k->state;
    if (k->n_in < 3 || !k->in[0] || !k->in[1] || !k->in[2])
        return pare_error_set(err, PARE_ERR_INVALID, "Q, K and V are required");
    const pare_tensor *qt = k->in[0], *kt = k->in[1], *vt = k->in[2];
    if (qt->rank != 4 || kt->rank != 4 || vt->rank != 4 || !pare_dtype_is_float(qt->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "Q, K, V must be float rank 4");
    int64_t B = qt->dims[0], Hq = qt->dims[1], L = qt->dims[2], E = qt->dims[3];
    int64_t Hk = kt->dims[1], Sn = kt->dims[2], Ev = vt->dims[3];
    if (kt->dims[0] != B || vt->dims[0] != B || vt->dims[1] != Hk || vt->dims[2] != Sn ||
        kt->dims[3] != E || Hk < 1 || Hq % Hk)
        return pare_error_set(err, PARE_ERR_INVALID, "inconsistent Q/K/V shapes");
    int cdt = S->precision ? (int)S->precision
                           : qt->dtype == PARE_DT_DOUBLE ? PARE_DT_DOUBLE : PARE_DT_FLOAT;
    int64_t od[4] = {B, Hq, L, Ev}, sd[4] = {B, Hq, L, Sn};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, vt->dtype, 4, od, &y, err);
    if (st)
        return st;
    double *Q = r_convert(qt, PARE_DT_DOUBLE, err), *K = NULL, *V = NULL, *Sc = NULL, *Y = NULL;
    if (!Q || !(K = r_convert(kt, PARE_DT_DOUBLE, err)) || !(V = r_convert(vt, PARE_DT_DOUBLE, err))) {
        st = err->status;
        goto done;
    }
    size_t ns = (size_t)(B * Hq * L * Sn);
    Sc = malloc((ns ? ns : 1) * sizeof *Sc);
    Y = malloc((size_t)(B * Hq * L * Ev + 1) * sizeof *Y);
    if (!Sc || !Y) {
        st = r_nomem(err);
        goto done;
    }
    double scale = S->has_scale ? S->scale : 1.0 / sqrt((double)E);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < L; i++)
                for (int64_t j = 0; j < Sn; j++) {
                    const double *q = Q + ((b * Hq + h) * L + i) * E;
                    const double *kk = K + ((b * Hk + h / (Hq / Hk)) * Sn + j) * E;
                    double s = 0;
                    for (int64_t d = 0; d < E; d++)
                        s += q[d] * kk[d];
                    Sc[((b * Hq + h) * L + i) * Sn + j] = s * scale;
                }
    if (S->score_mod && (st = flex_mod(k, S->score_mod, Sc, sd, cdt, err)))
        goto done;
    for (size_t r = 0; r < ns / (Sn ? (size_t)Sn : 1); r++) {
        double *row = Sc + r * (size_t)Sn, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < Sn; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < Sn; j++) {
            row[j] = exp(row[j] - mx);
            sum += row[j];
        }
        for (int64_t j = 0; j < Sn; j++)
            row[j] /= sum;
    }
    if (S->prob_mod && (st = flex_mod(k, S->prob_mod, Sc, sd, cdt, err)))
        goto done;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t i = 0; i < L; i++) {
                double *yy = Y + ((b * Hq + h) * L + i) * Ev;
                const double *p = Sc + ((b * Hq + h) * L + i) * Sn;
                const double *vv = V + (b * Hk + h / (Hq / Hk)) * Sn * Ev;
                for (int64_t m = 0; m < Ev; m++)
                    yy[m] = 0;
                for (int64_t j = 0; j < Sn; j++)
                    for (int64_t m = 0; m < Ev; m++)
                        yy[m] += p[j] * vv[j * Ev + m];
            }
    pare_dtype_convert(y->dtype, y->data, PARE_DT_DOUBLE, Y, (size_t)(B * Hq * L * Ev), true);
done:
    free(Q);
    free(K);
    free(V);
    free(Sc);
    free(Y);
    return st;
}

/* ------------------------------------------------------------------ */
/* string ops: StringConcat, StringSplit                               */

static pare_status r_str_set(pare_string *s, const char *p, size_t n, pare_error *err)
{
    s->data = malloc(n + 1);
    if (!s->data)
        return r_nomem(err);
    if (n)
        memcpy(s->data, p, n);
    s->data[n] = 0;
    s->len = n;
    return PARE_OK;
}

static pare_status strconcat_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *a = k->in[0], *b = k->n_in > 1 ? k->in[1] : NULL;
    if (!a || !b || a->dtype != PARE_DT_STRING || b->dtype != PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_INVALID, "inputs must be string tensors");
    int rank;
    int64_t dims[PARE_MAX_RANK], sa[PARE_MAX_RANK], sb[PARE_MAX_RANK];
    pare_status st = pare_bcast_dims(a->rank, a->dims, b->rank, b->dims, &rank, dims, err);
    if (st)
        return st;
    pare_bcast_strides(rank, dims, a->rank, a->dims, sa);
    pare_bcast_strides(rank, dims, b->rank, b->dims, sb);
    pare_tensor *y;
    if ((st = k->alloc_out(k, 0, PARE_DT_STRING, rank, dims, &y, err)))
        return st;
    const pare_string *x1 = a->data, *x2 = b->data;
    pare_string *out = y->data;
    int64_t n = r_numel(y);
    for (int64_t i = 0; i < n; i++) {
        int64_t r = i, ia = 0, ib = 0;
        for (int d = rank - 1; d >= 0; d--) {
            int64_t idx = r % dims[d];
            r /= dims[d];
            ia += idx * sa[d];
            ib += idx * sb[d];
        }
        const pare_string *p = &x1[ia], *q = &x2[ib];
        out[i].data = malloc(p->len + q->len + 1);
        if (!out[i].data)
            return r_nomem(err);
        if (p->len)
            memcpy(out[i].data, p->data, p->len);
        if (q->len)
            memcpy(out[i].data + p->len, q->data, q->len);
        out[i].len = p->len + q->len;
        out[i].data[out[i].len] = 0;
    }
    return PARE_OK;
}

typedef struct strsplit_state {
    char *delim; /* NULL: runs of whitespace */
    size_t dlen;
    int64_t maxsplit; /* < 0: unlimited */
} strsplit_state;

static pare_status strsplit_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    strsplit_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const pare_attr *a = pare_node_attr(n, "delimiter");
    if (a && a->type == PARE_ATTR_STRING && a->s.len > 0) {
        s->delim = a->s.data;
        s->dlen = a->s.len;
    }
    s->maxsplit = pare_node_attr_int(n, "maxsplit", -1);
    *state = s;
    return PARE_OK;
}

static bool r_is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Splits s as Python's str.split(delim, maxsplit); calls emit for each part
 * (emit may be NULL to count). Returns the part count. */
static int64_t strsplit_one(const strsplit_state *S, const pare_string *s, pare_string *emit,
                            pare_error *err, pare_status *st)
{
    int64_t cnt = 0, splits = 0;
    const char *p = s->data ? s->data : "";
    size_t n = s->len, i = 0;
#define EMIT(b, l)                                                                             \
    do {                                                                                       \
        if (emit && !*st)                                                                      \
            *st = r_str_set(&emit[cnt], p + (b), (l), err);                                    \
        cnt++;                                                                                 \
    } while (0)
    if (S->delim) {
        size_t start = 0;
        while (i + S->dlen <= n) {
            if ((S->maxsplit < 0 || splits < S->maxsplit) && !memcmp(p + i, S->delim, S->dlen)) {
                EMIT(start, i - start);
                splits++;
                i += S->dlen;
                start = i;
            } else {
                i++;
            }
        }
        EMIT(start, n - start);
    } else {
        while (i < n) {
            while (i < n && r_is_space((unsigned char)p[i]))
                i++;
            if (i >= n)
                break;
            size_t start = i;
            if (S->maxsplit >= 0 && splits >= S->maxsplit) {
                size_t end = n; /* the rest, trailing whitespace stripped */
                while (end > start && r_is_space((unsigned char)p[end - 1]))
                    end--;
                EMIT(start, end - start);
                break;
            }
            while (i < n && !r_is_space((unsigned char)p[i]))
                i++;
            EMIT(start, i - start);
            splits++;
        }
    }
#undef EMIT
    return cnt;
}

static pare_status strsplit_run(pare_kctx *k, pare_error *err)
{
    const strsplit_state *S = k->state;
    const pare_tensor *x = k->in[0];
    if (!x || x->dtype != PARE_DT_STRING || x->rank >= PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be a string tensor");
    int64_t n = r_numel(x), mx = 0;
    const pare_string *in = x->data;
    pare_status st = PARE_OK;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = strsplit_one(S, &in[i], NULL, err, &st);
        mx = c > mx ? c : mx;
    }
    int64_t dims[PARE_MAX_RANK];
    if (x->rank)
        memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
    dims[x->rank] = mx;
    pare_tensor *y, *z;
    if ((st = k->alloc_out(k, 0, PARE_DT_STRING, x->rank + 1, dims, &y, err)) ||
        (st = k->alloc_out(k, 1, PARE_DT_INT64, x->rank, x->dims, &z, err)))
        return st;
    pare_string *out = y->data;
    for (int64_t i = 0; i < n && !st; i++) {
        int64_t c = strsplit_one(S, &in[i], out + i * mx, err, &st);
        ((int64_t *)z->data)[i] = c;
        for (int64_t j = c; j < mx && !st; j++)
            st = r_str_set(&out[i * mx + j], "", 0, err);
    }
    return st;
}

/* ------------------------------------------------------------------ */
/* TfIdfVectorizer                                                     */

typedef struct tfidf_state {
    int mode; /* 1 TF, 2 IDF, 3 TFIDF */
    int64_t min_n, max_n, max_skip, out_size;
    size_t n_grams;
    int64_t *gram_len;   /* per n-gram (pool order) */
    int64_t *gram_start; /* offset in the pool */
    const int64_t *pool_i, *indexes;
    const pare_string *pool_s;
    size_t n_index;
    const float *weights;
    size_t n_weights;
} tfidf_state;

static void tfidf_free(void *p)
{
    tfidf_state *s = p;
    if (s) {
        free(s->gram_len);
        free(s->gram_start);
    }
    free(s);
}

static pare_status tfidf_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    tfidf_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    const char *mode = pare_node_attr_string(n, "mode", "");
    s->mode = !strcmp(mode, "TF") ? 1 : !strcmp(mode, "IDF") ? 2 : !strcmp(mode, "TFIDF") ? 3 : 0;
    s->min_n = pare_node_attr_int(n, "min_gram_length", 1);
    s->max_n = pare_node_attr_int(n, "max_gram_length", 1);
    s->max_skip = pare_node_attr_int(n, "max_skip_count", 0);
    const int64_t *counts;
    size_t nc = pare_node_attr_ints(n, "ngram_counts", &counts);
    s->n_index = pare_node_attr_ints(n, "ngram_indexes", &s->indexes);
    s->n_weights = pare_node_attr_floats(n, "weights", &s->weights);
    size_t total = pare_node_attr_ints(n, "pool_int64s", &s->pool_i);
    const pare_attr *ps = pare_node_attr(n, "pool_strings");
    if (ps && ps->type == PARE_ATTR_STRINGS && ps->n) {
        s->pool_s = ps->strings;
        s->pool_i = NULL;
        total = ps->n;
    }
    pare_status st = PARE_OK;
    if (!s->mode || s->min_n < 1 || s->max_n < s->min_n || s->max_skip < 0 || !s->n_index)
        st = pare_error_set(err, PARE_ERR_INVALID, "bad TfIdfVectorizer attributes");
    /* one entry per n-gram of the pool, in pool order (ids are 1-based) */
    size_t cap = total + 1;
    s->gram_len = malloc(cap * sizeof *s->gram_len);
    s->gram_start = malloc(cap * sizeof *s->gram_start);
    if (!st && (!s->gram_len || !s->gram_start))
        st = r_nomem(err);
    for (size_t i = 0; i < nc && !st; i++) {
        int64_t b = counts[i], e = i + 1 < nc ? counts[i + 1] : (int64_t)total;
        int64_t len = (int64_t)i + 1;
        if (b < 0 || e < b || e > (int64_t)total) {
            st = pare_error_set(err, PARE_ERR_INVALID, "bad ngram_counts");
            break;
        }
        for (int64_t p = b; p + len <= e; p += len) {
            s->gram_len[s->n_grams] = len;
            s->gram_start[s->n_grams] = p;
            s->n_grams++;
        }
    }
    int64_t mx = -1;
    for (size_t i = 0; i < s->n_index && !st; i++)
        mx = s->indexes[i] > mx ? s->indexes[i] : mx;
    if (!st && mx == INT64_MAX)
        st = pare_error_set(err, PARE_ERR_INVALID, "ngram index %lld too large", (long long)mx);
    s->out_size = mx + (mx < INT64_MAX);
    if (!st && s->n_index < s->n_grams)
        st = pare_error_set(err, PARE_ERR_INVALID, "fewer ngram_indexes than n-grams");
    if (st) {
        tfidf_free(s);
        return st;
    }
    *state = s;
    return PARE_OK;
}

/* Whether an n-gram of n items, skip apart, starting at s0 runs past C items. */
static bool tfidf_past(int64_t s0, int64_t skip, int64_t n, int64_t C)
{
    int64_t last;
    return __builtin_mul_overflow(skip, n - 1, &last) || __builtin_add_overflow(last, s0, &last) ||
           last >= C;
}

static pare_status tfidf_run(pare_kctx *k, pare_error *err)
{
    const tfidf_state *S = k->state;
    const pare_tensor *x = k->in[0];
    bool strs = S->pool_s != NULL;
    if (!x || (x->rank != 1 && x->rank != 2) ||
        (strs ? x->dtype != PARE_DT_STRING
              : (x->dtype != PARE_DT_INT32 && x->dtype != PARE_DT_INT64)))
        return pare_error_set(err, PARE_ERR_INVALID, "input must be [C] or [N, C] of the pool type");
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, C = x->dims[x->rank - 1];
    int64_t dims[2] = {rows, S->out_size};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, PARE_DT_FLOAT, x->rank, x->rank == 2 ? dims : dims + 1,
                                  &y, err);
    if (st)
        return st;
    int64_t no = rows * S->out_size;
    int64_t *freq = calloc((size_t)(no > 0 ? no : 1), sizeof *freq);
    if (!freq)
        return r_nomem(err);
    const pare_string *xs = x->data;
    /* a gap of C or more leaves no room for a second item */
    int64_t max_skip = S->max_skip < C ? S->max_skip : C;
    for (int64_t r = 0; r < rows; r++) {
        int64_t start_n = S->min_n;
        for (int64_t skip = 1; skip <= max_skip + 1; skip++) {
            for (int64_t s0 = 0; s0 < C; s0++) {
                if (tfidf_past(s0, skip, start_n, C))
                    break;
                for (size_t g = 0; g < S->n_grams; g++) {
                    int64_t len = S->gram_len[g];
                    if (len < start_n || len < S->min_n || len > S->max_n ||
                        tfidf_past(s0, skip, len, C))
                        continue;
                    bool match = true;
                    for (int64_t j = 0; j < len && match; j++) {
                        int64_t xi = r * C + s0 + j * skip, pi = S->gram_start[g] + j;
                        if (strs)
                            match = xs[xi].len == S->pool_s[pi].len &&
                                    !memcmp(xs[xi].data, S->pool_s[pi].data, xs[xi].len);
                        else
                            match = (int64_t)pare_dtype_get_f64(x->dtype, x->data, (size_t)xi) ==
                                    S->pool_i[pi];
                    }
                    if (!match)
                        continue;
                    /* the first n-gram of the pool with these items wins */
                    bool first = true;
                    for (size_t g2 = 0; g2 < g && first; g2++) {
                        if (S->gram_len[g2] != len)
                            continue;
                        bool same = true;
                        for (int64_t j = 0; j < len && same; j++) {
                            int64_t a = S->gram_start[g] + j, b = S->gram_start[g2] + j;
                            same = strs ? S->pool_s[a].len == S->pool_s[b].len &&
                                              !memcmp(S->pool_s[a].data, S->pool_s[b].data,
                                                      S->pool_s[a].len)
                                        : S->pool_i[a] == S->pool_i[b];
                        }
                        first = !same;
                    }
                    if (!first)
                        continue;
                    int64_t oi = S->indexes[g];
                    if (oi < 0 || oi >= S->out_size) {
                        free(freq);
                        return pare_error_set(err, PARE_ERR_INVALID, "bad ngram index");
                    }
                    freq[r * S->out_size + oi]++;
                }
            }
            if (start_n == 1) {
                start_n++;
                if (start_n > S->max_n)
                    break;
            }
        }
    }
    float *out = y->data;
    for (int64_t p = 0; p < no; p++) {
        int64_t i = p % S->out_size;
        float w = (size_t)i < S->n_weights ? S->weights[i] : 1.0f;
        if (S->mode == 1)
            out[p] = (float)freq[p];
        else if (S->mode == 2)
            out[p] = freq[p] > 0 ? (S->n_weights ? w : 1.0f) : 0.0f;
        else
            out[p] = S->n_weights ? w * (float)freq[p] : (float)freq[p];
    }
    free(freq);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* ai.onnx.preview.training: Adagrad, Adam, Momentum                   */

typedef struct optim_state {
    int kind; /* 0 Adagrad, 1 Adam, 2 Momentum, 3 Nesterov momentum */
    double alpha, beta, epsilon, decay, norm, norm_post;
} optim_state;

static pare_status optim_init_kind(const pare_node *n, int kind, void **state, pare_error *err)
{
    optim_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->kind = kind;
    s->alpha = pare_node_attr_float(n, "alpha", kind == 1 ? 0.9f : 0.0f);
    s->beta = pare_node_attr_float(n, "beta", kind == 1 ? 0.999f : 0.0f);
    s->epsilon = pare_node_attr_float(n, "epsilon", kind == 1 ? 0.0f : 0.0f);
    s->decay = pare_node_attr_float(n, "decay_factor", 0.0f);
    s->norm = pare_node_attr_float(n, "norm_coefficient", 0.0f);
    s->norm_post = pare_node_attr_float(n, "norm_coefficient_post", 0.0f);
    if (kind == 2) {
        const char *mode = pare_node_attr_string(n, "mode", "standard");
        if (!strcmp(mode, "nesterov"))
            s->kind = 3;
        else if (strcmp(mode, "standard")) {
            free(s);
            return pare_error_set(err, PARE_ERR_INVALID, "unknown Momentum mode '%s'", mode);
        }
    }
    *state = s;
    return PARE_OK;
}

static pare_status adagrad_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return optim_init_kind(n, 0, s, e);
}

static pare_status adam_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return optim_init_kind(n, 1, s, e);
}

static pare_status momentum_init(const pare_node *n, int64_t o, void **s, pare_error *e)
{
    (void)o;
    return optim_init_kind(n, 2, s, e);
}

static pare_status optim_run(pare_kctx *k, pare_error *err)
{
    const optim_state *S = k->state;
    size_t per = S->kind == 1 ? 4 : 3; /* tensors per optimised input */
    if (k->n_in < 2 + per || (k->n_in - 2) % per || !k->in[0] || !k->in[1])
        return pare_error_set(err, PARE_ERR_INVALID, "expected R, T and groups of %zu inputs",
                              per);
    size_t n = (k->n_in - 2) / per;
    double r = r_scalar(k->in[0]), t = r_scalar(k->in[1]);
    for (size_t i = 0; i < n; i++) {
        const pare_tensor *x = k->in[2 + i], *g = k->in[2 + n + i], *v = k->in[2 + 2 * n + i];
        const pare_tensor *h = per == 4 ? k->in[2 + 3 * n + i] : NULL;
        if (!x || !g || !v || (per == 4 && !h) || r_numel(g) != r_numel(x) ||
            r_numel(v) != r_numel(x) || (h && r_numel(h) != r_numel(x)) ||
            !pare_dtype_is_float(x->dtype))
            return pare_error_set(err, PARE_ERR_INVALID, "optimiser inputs of group %zu differ",
                                  i);
        size_t per_out = per - 1; /* outputs per group: X_new and the state(s) */
        pare_tensor *o[3] = {NULL, NULL, NULL};
        for (size_t j = 0; j < per_out; j++) {
            const pare_tensor *like = j == 0 ? x : k->in[2 + (j + 1) * n + i];
            pare_status st = k->alloc_out(k, j * n + i, like->dtype, like->rank, like->dims,
                                          &o[j], err);
            if (st)
                return st;
        }
        int64_t m = r_numel(x);
        for (int64_t e = 0; e < m; e++) {
            double xv = pare_dtype_get_f64(x->dtype, x->data, (size_t)e);
            double gv = pare_dtype_get_f64(g->dtype, g->data, (size_t)e);
            double vv = pare_dtype_get_f64(v->dtype, v->data, (size_t)e);
            double gr = S->norm * xv + gv, xn, s1, s2 = 0;
            if (S->kind == 0) { /* v is H */
                double rr = r / (1 + t * S->decay);
                s1 = vv + gr * gr;
                xn = xv - rr * gr / (sqrt(s1) + S->epsilon);
            } else if (S->kind == 1) {
                double hv = pare_dtype_get_f64(h->dtype, h->data, (size_t)e);
                s1 = S->alpha * vv + (1 - S->alpha) * gr;
                s2 = S->beta * hv + (1 - S->beta) * (gr * gr);
                double ra = t > 0 ? r * sqrt(1 - pow(S->beta, t)) / (1 - pow(S->alpha, t)) : r;
                xn = (1 - S->norm_post) * (xv - ra * (s1 / (sqrt(s2) + S->epsilon)));
            } else {
                double ba = t > 0 ? S->beta : 1;
                s1 = S->alpha * vv + ba * gr;
                xn = S->kind == 2 ? xv - r * s1 : xv - r * (gr + S->alpha * s1);
            }
            pare_dtype_set_f64(o[0]->dtype, o[0]->data, (size_t)e, xn);
            pare_dtype_set_f64(o[1]->dtype, o[1]->data, (size_t)e, s1);
            if (o[2])
                pare_dtype_set_f64(o[2]->dtype, o[2]->data, (size_t)e, s2);
        }
    }
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* ai.onnx.ml: Binarizer, ArrayFeatureExtractor, LabelEncoder,         */
/* TreeEnsemble                                                        */

static pare_status binarizer_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    float *t = malloc(sizeof *t);
    if (!t)
        return r_nomem(err);
    *t = pare_node_attr_float(n, "threshold", 0.0f);
    *state = t;
    return PARE_OK;
}

static pare_status binarizer_run(pare_kctx *k, pare_error *err)
{
    float thr = *(const float *)k->state;
    const pare_tensor *x = k->in[0];
    if (!x || x->dtype == PARE_DT_STRING || pare_dtype_bits(x->dtype) < 8)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be numeric");
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err);
    if (st)
        return st;
    int64_t n = r_numel(x);
    for (int64_t i = 0; i < n; i++)
        pare_dtype_set_f64(y->dtype, y->data, (size_t)i,
                           pare_dtype_get_f64(x->dtype, x->data, (size_t)i) > thr ? 1.0 : 0.0);
    return PARE_OK;
}

static pare_status afe_run(pare_kctx *k, pare_error *err)
{
    const pare_tensor *x = k->in[0], *idx = k->n_in > 1 ? k->in[1] : NULL;
    if (!x || !idx || x->rank < 1 || pare_dtype_is_float(idx->dtype) ||
        x->rank >= PARE_MAX_RANK || pare_dtype_bits(x->dtype) < 8)
        return pare_error_set(err, PARE_ERR_INVALID, "data and integer indices are required");
    int64_t ni = r_numel(idx), C = x->dims[x->rank - 1], rows = C ? r_numel(x) / C : 0;
    int64_t dims[PARE_MAX_RANK];
    int rank;
    if (x->rank == 1) {
        dims[0] = 1;
        dims[1] = ni;
        rank = 2;
    } else {
        memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
        dims[x->rank - 1] = ni;
        rank = x->rank;
    }
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, rank, dims, &y, err);
    if (st)
        return st;
    size_t es = pare_elem_size(x->dtype);
    for (int64_t j = 0; j < ni; j++) {
        int64_t c = (int64_t)pare_dtype_get_f64(idx->dtype, idx->data, (size_t)j);
        if (c < 0 || c >= C)
            return pare_error_set(err, PARE_ERR_INVALID, "index %lld out of range [0, %lld)",
                                  (long long)c, (long long)C);
        for (int64_t r = 0; r < rows; r++) {
            char *dst = (char *)y->data + (size_t)(r * ni + j) * es;
            const char *src = (const char *)x->data + (size_t)(r * C + c) * es;
            if (x->dtype == PARE_DT_STRING) {
                const pare_string *s = (const pare_string *)src;
                if ((st = r_str_set((pare_string *)dst, s->data, s->len, err)))
                    return st;
            } else {
                memcpy(dst, src, es);
            }
        }
    }
    return PARE_OK;
}

/* LabelEncoder keys and values: int64, double or string lists, from the
 * *_int64s / *_floats / *_strings attributes or the *_tensor ones. */
typedef struct le_list {
    int kind; /* 0 int64, 1 float, 2 string */
    int dtype; /* output dtype for values */
    size_t n;
    const int64_t *i;
    const float *f;
    const pare_string *s;
    const pare_tensor *t; /* tensor form (any numeric dtype or string) */
} le_list;

typedef struct le_state {
    le_list keys, vals;
    double def_num;
    pare_string def_str;
} le_state;

static bool le_list_get(const pare_node *n, const char *pre, le_list *l)
{
    char name[64];
    const pare_attr *a;
    memset(l, 0, sizeof *l);
    snprintf(name, sizeof name, "%s_int64s", pre);
    if ((a = pare_node_attr(n, name)) && a->type == PARE_ATTR_INTS) {
        l->kind = 0;
        l->dtype = PARE_DT_INT64;
        l->n = a->n;
        l->i = a->ints;
        return true;
    }
    snprintf(name, sizeof name, "%s_floats", pre);
    if ((a = pare_node_attr(n, name)) && a->type == PARE_ATTR_FLOATS) {
        l->kind = 1;
        l->dtype = PARE_DT_FLOAT;
        l->n = a->n;
        l->f = a->floats;
        return true;
    }
    snprintf(name, sizeof name, "%s_strings", pre);
    if ((a = pare_node_attr(n, name)) && a->type == PARE_ATTR_STRINGS) {
        l->kind = 2;
        l->dtype = PARE_DT_STRING;
        l->n = a->n;
        l->s = a->strings;
        return true;
    }
    snprintf(name, sizeof name, "%s_tensor", pre);
    if ((a = pare_node_attr(n, name)) && a->type == PARE_ATTR_TENSOR && a->t) {
        l->t = a->t;
        l->dtype = a->t->dtype;
        l->kind = a->t->dtype == PARE_DT_STRING ? 2 : pare_dtype_is_float(a->t->dtype) ? 1 : 0;
        l->n = (size_t)pare_tensor_numel(a->t);
        if (l->kind == 2)
            l->s = a->t->data;
        return true;
    }
    return false;
}

static double le_num(const le_list *l, size_t i)
{
    if (l->t)
        return pare_dtype_get_f64(l->t->dtype, l->t->data, i);
    return l->kind == 0 ? (double)l->i[i] : (double)l->f[i];
}

static pare_status le_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    le_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    if (!le_list_get(n, "keys", &s->keys) || !le_list_get(n, "values", &s->vals) ||
        s->keys.n != s->vals.n) {
        free(s);
        return pare_error_set(err, PARE_ERR_INVALID, "LabelEncoder needs keys and values of "
                              "equal length");
    }
    const pare_attr *dt = pare_node_attr(n, "default_tensor");
    if (s->vals.t && dt && dt->type == PARE_ATTR_TENSOR && dt->t && pare_tensor_numel(dt->t)) {
        if (dt->t->dtype == PARE_DT_STRING)
            s->def_str = *(const pare_string *)dt->t->data;
        else
            s->def_num = pare_dtype_get_f64(dt->t->dtype, dt->t->data, 0);
    } else if (s->vals.kind == 0) {
        s->def_num = (double)pare_node_attr_int(n, "default_int64", -1);
    } else if (s->vals.kind == 1) {
        s->def_num = pare_node_attr_float(n, "default_float", -0.0f);
    } else {
        const pare_attr *a = pare_node_attr(n, "default_string");
        if (a && a->type == PARE_ATTR_STRING)
            s->def_str = a->s;
        else {
            s->def_str.data = (char *)"_Unused";
            s->def_str.len = 7;
        }
    }
    *state = s;
    return PARE_OK;
}

static pare_status le_run(pare_kctx *k, pare_error *err)
{
    const le_state *S = k->state;
    const pare_tensor *x = k->in[0];
    if (!x || (S->keys.kind == 2) != (x->dtype == PARE_DT_STRING))
        return pare_error_set(err, PARE_ERR_INVALID, "input type does not match the keys");
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, S->vals.dtype, x->rank, x->dims, &y, err);
    if (st)
        return st;
    int64_t n = r_numel(x);
    for (int64_t i = 0; i < n && !st; i++) {
        size_t hit = S->keys.n;
        if (S->keys.kind == 2) {
            const pare_string *v = (const pare_string *)x->data + i;
            for (size_t j = 0; j < S->keys.n && hit == S->keys.n; j++)
                if (S->keys.s[j].len == v->len && !memcmp(S->keys.s[j].data, v->data, v->len))
                    hit = j;
        } else {
            double v = pare_dtype_get_f64(x->dtype, x->data, (size_t)i);
            for (size_t j = 0; j < S->keys.n && hit == S->keys.n; j++) {
                double key = le_num(&S->keys, j);
                if (key == v || (isnan(key) && isnan(v)))
                    hit = j;
            }
        }
        if (S->vals.kind == 2) {
            const pare_string *src = hit < S->vals.n ? &S->vals.s[hit] : &S->def_str;
            st = r_str_set((pare_string *)y->data + i, src->data, src->len, err);
        } else {
            pare_dtype_set_f64(y->dtype, y->data, (size_t)i,
                               hit < S->vals.n ? le_num(&S->vals, hit) : S->def_num);
        }
    }
    return st;
}

typedef struct tree_state {
    size_t n_nodes, n_leaves, n_roots;
    int64_t *feat, *mode, *tnode, *fnode, *tleaf, *fleaf, *ltarget, *roots, *missing_true;
    double *split, *lweight;
    double **members; /* per node: NaN-terminated member list or NULL */
    int64_t n_targets;
    int agg, post;
} tree_state;

static void tree_free(void *p)
{
    tree_state *s = p;
    if (!s)
        return;
    int64_t **iv[] = {&s->feat, &s->mode, &s->tnode, &s->fnode, &s->tleaf, &s->fleaf,
                      &s->ltarget, &s->roots, &s->missing_true};
    for (size_t i = 0; i < sizeof iv / sizeof *iv; i++)
        free(*iv[i]);
    free(s->split);
    free(s->lweight);
    if (s->members)
        for (size_t i = 0; i < s->n_nodes; i++)
            free(s->members[i]);
    free(s->members);
    free(s);
}

/* A numeric list attribute (ints or a tensor) as malloc'd int64 / double. */
static int64_t *tree_ints(const pare_node *n, const char *name, size_t *count)
{
    const pare_attr *a = pare_node_attr(n, name);
    size_t c = 0;
    if (a && a->type == PARE_ATTR_INTS)
        c = a->n;
    else if (a && a->type == PARE_ATTR_TENSOR && a->t)
        c = (size_t)pare_tensor_numel(a->t);
    int64_t *v = malloc((c ? c : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < c; i++)
        v[i] = a->type == PARE_ATTR_INTS ? a->ints[i]
                                         : (int64_t)pare_dtype_get_f64(a->t->dtype, a->t->data, i);
    *count = c;
    return v;
}

static double *tree_reals(const pare_node *n, const char *name, size_t *count)
{
    const pare_attr *a = pare_node_attr(n, name);
    size_t c = 0;
    if (a && a->type == PARE_ATTR_FLOATS)
        c = a->n;
    else if (a && a->type == PARE_ATTR_TENSOR && a->t)
        c = (size_t)pare_tensor_numel(a->t);
    double *v = malloc((c ? c : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < c; i++)
        v[i] = a->type == PARE_ATTR_FLOATS ? a->floats[i]
                                           : pare_dtype_get_f64(a->t->dtype, a->t->data, i);
    *count = c;
    return v;
}

static pare_status tree_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    tree_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    size_t c[12] = {0}, nm = 0, nmt = 0;
    s->feat = tree_ints(n, "nodes_featureids", &c[0]);
    s->mode = tree_ints(n, "nodes_modes", &c[1]);
    s->tnode = tree_ints(n, "nodes_truenodeids", &c[2]);
    s->fnode = tree_ints(n, "nodes_falsenodeids", &c[3]);
    s->tleaf = tree_ints(n, "nodes_trueleafs", &c[4]);
    s->fleaf = tree_ints(n, "nodes_falseleafs", &c[5]);
    s->split = tree_reals(n, "nodes_splits", &c[6]);
    s->ltarget = tree_ints(n, "leaf_targetids", &c[7]);
    s->lweight = tree_reals(n, "leaf_weights", &c[8]);
    s->roots = tree_ints(n, "tree_roots", &c[9]);
    s->missing_true = tree_ints(n, "nodes_missing_value_tracks_true", &nmt);
    double *mem = tree_reals(n, "membership_values", &nm);
    s->n_nodes = c[0];
    s->n_leaves = c[7];
    s->n_roots = c[9];
    s->n_targets = pare_node_attr_int(n, "n_targets", 1);
    s->agg = (int)pare_node_attr_int(n, "aggregate_function", 1);
    s->post = (int)pare_node_attr_int(n, "post_transform", 0);
    pare_status st = PARE_OK;
    if (!s->feat || !s->mode || !s->tnode || !s->fnode || !s->tleaf || !s->fleaf || !s->split ||
        !s->ltarget || !s->lweight || !s->roots || !s->missing_true || !mem)
        st = r_nomem(err);
    else if (c[1] != c[0] || c[2] != c[0] || c[3] != c[0] || c[4] != c[0] || c[5] != c[0] ||
             c[6] != c[0] || c[8] != c[7] || (nmt && nmt != c[0]) || s->n_targets < 1 ||
             s->agg < 0 || s->agg > 3)
        st = pare_error_set(err, PARE_ERR_INVALID, "inconsistent TreeEnsemble attributes");
    if (!st && !nmt) {
        free(s->missing_true);
        s->missing_true = NULL;
    }
    for (size_t i = 0; i < s->n_nodes && !st; i++) {
        bool ok = s->tnode[i] >= 0 && s->fnode[i] >= 0 &&
                  (size_t)s->tnode[i] < (s->tleaf[i] ? s->n_leaves : s->n_nodes) &&
                  (size_t)s->fnode[i] < (s->fleaf[i] ? s->n_leaves : s->n_nodes) &&
                  s->feat[i] >= 0 && s->mode[i] >= 0 && s->mode[i] <= 6;
        if (!ok)
            st = pare_error_set(err, PARE_ERR_INVALID, "bad tree node %zu", i);
    }
    for (size_t i = 0; i < s->n_leaves && !st; i++)
        if (s->ltarget[i] < 0 || s->ltarget[i] >= s->n_targets)
            st = pare_error_set(err, PARE_ERR_INVALID, "leaf target out of range");
    for (size_t i = 0; i < s->n_roots && !st; i++)
        if (s->roots[i] < 0 || (size_t)s->roots[i] >= (s->n_nodes > s->n_leaves ? s->n_nodes
                                                                                : s->n_leaves))
            st = pare_error_set(err, PARE_ERR_INVALID, "tree root out of range");
    if (!st) {
        /* member lists in the order BRANCH_MEMBER nodes appear, NaN-delimited */
        s->members = calloc(s->n_nodes ? s->n_nodes : 1, sizeof *s->members);
        size_t pos = 0;
        for (size_t i = 0; i < s->n_nodes && !st && s->members; i++) {
            if (s->mode[i] != 6)
                continue;
            size_t b = pos;
            while (pos < nm && !isnan(mem[pos]))
                pos++;
            s->members[i] = malloc((pos - b + 1) * sizeof **s->members);
            if (!s->members[i]) {
                st = r_nomem(err);
                break;
            }
            memcpy(s->members[i], mem + b, (pos - b) * sizeof *mem);
            s->members[i][pos - b] = NAN;
            pos++;
        }
        if (!s->members && !st)
            st = r_nomem(err);
    }
    free(mem);
    if (st) {
        tree_free(s);
        return st;
    }
    *state = s;
    return PARE_OK;
}

static bool tree_cmp(const tree_state *S, size_t nd, double x)
{
    double v = S->split[nd];
    if (isnan(x) && S->missing_true && S->missing_true[nd])
        return true;
    switch (S->mode[nd]) {
    case 0: return x <= v;
    case 1: return x < v;
    case 2: return x >= v;
    case 3: return x > v;
    case 4: return x == v;
    case 5: return x != v;
    default:
        for (const double *m = S->members[nd]; m && !isnan(*m); m++)
            if (*m == x)
                return true;
        return false;
    }
}

/* Inverse error function (Giles' single-precision approximation, refined
 * with two Newton steps on erf). */
static double r_erfinv(double x)
{
    if (x <= -1)
        return -INFINITY;
    if (x >= 1)
        return INFINITY;
    double w = -log((1.0 - x) * (1.0 + x)), p;
    if (w < 5.0) {
        w -= 2.5;
        p = 2.81022636e-08;
        p = 3.43273939e-07 + p * w;
        p = -3.5233877e-06 + p * w;
        p = -4.39150654e-06 + p * w;
        p = 0.00021858087 + p * w;
        p = -0.00125372503 + p * w;
        p = -0.00417768164 + p * w;
        p = 0.246640727 + p * w;
        p = 1.50140941 + p * w;
    } else {
        w = sqrt(w) - 3.0;
        p = -0.000200214257;
        p = 0.000100950558 + p * w;
        p = 0.00134934322 + p * w;
        p = -0.00367342844 + p * w;
        p = 0.00573950773 + p * w;
        p = -0.0076224613 + p * w;
        p = 0.00943887047 + p * w;
        p = 1.00167406 + p * w;
        p = 2.83297682 + p * w;
    }
    double y = p * x;
    for (int i = 0; i < 2; i++)
        y -= (erf(y) - x) / (2.0 / sqrt(3.14159265358979323846) * exp(-y * y));
    return y;
}

static pare_status tree_run(pare_kctx *k, pare_error *err)
{
    const tree_state *S = k->state;
    const pare_tensor *x = k->in[0];
    if (!x || x->rank != 2 || !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "X must be a float matrix");
    int64_t N = x->dims[0], F = x->dims[1], T = S->n_targets;
    for (size_t i = 0; i < S->n_nodes; i++)
        if (S->feat[i] >= F)
            return pare_error_set(err, PARE_ERR_INVALID, "feature id %lld out of range",
                                  (long long)S->feat[i]);
    int64_t dims[2] = {N, T};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, 2, dims, &y, err);
    if (st)
        return st;
    double *res = malloc((size_t)(T > 0 ? T : 1) * sizeof *res);
    if (!res)
        return r_nomem(err);
    for (int64_t r = 0; r < N; r++) {
        for (int64_t t = 0; t < T; t++)
            res[t] = S->agg == 2 ? INFINITY : S->agg == 3 ? -INFINITY : 0.0;
        for (size_t ti = 0; ti < S->n_roots; ti++) {
            size_t nd = (size_t)S->roots[ti];
            size_t leaf;
            if (nd < S->n_nodes && !(S->tleaf[nd] && S->fleaf[nd] && S->tnode[nd] == S->fnode[nd])) {
                size_t steps = 0;
                for (;;) {
                    if (++steps > S->n_nodes) {
                        free(res);
                        return pare_error_set(err, PARE_ERR_INVALID, "cycle in tree %zu", ti);
                    }
                    double xv = pare_dtype_get_f64(x->dtype, x->data, (size_t)(r * F + S->feat[nd]));
                    bool tb = tree_cmp(S, nd, xv);
                    int64_t next = tb ? S->tnode[nd] : S->fnode[nd];
                    if (tb ? S->tleaf[nd] : S->fleaf[nd]) {
                        leaf = (size_t)next;
                        break;
                    }
                    nd = (size_t)next;
                }
            } else {
                leaf = nd;
            }
            if (leaf >= S->n_leaves) {
                free(res);
                return pare_error_set(err, PARE_ERR_INVALID, "leaf index out of range");
            }
            double w = S->lweight[leaf];
            int64_t t = S->ltarget[leaf];
            if (S->agg == 1 || S->agg == 0)
                res[t] += S->agg == 0 ? w / (double)S->n_roots : w;
            else if (S->agg == 2)
                res[t] = w < res[t] ? w : res[t];
            else
                res[t] = w > res[t] ? w : res[t];
        }
        if (S->post == 1 || S->post == 3) {
            double mx = -INFINITY, sum = 0;
            for (int64_t t = 0; t < T; t++)
                mx = res[t] > mx ? res[t] : mx;
            for (int64_t t = 0; t < T; t++) {
                res[t] = S->post == 3 && res[t] == 0 ? 0 : exp(res[t] - mx);
                sum += res[t];
            }
            for (int64_t t = 0; t < T; t++)
                res[t] = sum > 0 ? res[t] / sum : 0;
        } else if (S->post == 2) {
            for (int64_t t = 0; t < T; t++)
                res[t] = 1 / (1 + exp(-res[t]));
        } else if (S->post == 4) {
            for (int64_t t = 0; t < T; t++) /* probit: sqrt(2) * erfinv(2p - 1) */
                res[t] = r_erfinv(2 * res[t] - 1) * 1.4142135623730951;
        }
        for (int64_t t = 0; t < T; t++)
            pare_dtype_set_f64(y->dtype, y->data, (size_t)(r * T + t), res[t]);
    }
    free(res);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* BitCast (ai.onnx 26) and DeformConv (ai.onnx 19, 2-D)               */

static pare_status bitcast_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    int *to = malloc(sizeof *to);
    if (!to)
        return r_nomem(err);
    *to = (int)pare_node_attr_int(n, "to", 0);
    if (!pare_dtype_valid(*to) || *to == PARE_DT_STRING) {
        free(to);
        return pare_error_set(err, PARE_ERR_INVALID, "bad 'to' dtype");
    }
    *state = to;
    return PARE_OK;
}

static pare_status bitcast_run(pare_kctx *k, pare_error *err)
{
    int to = *(const int *)k->state;
    const pare_tensor *x = k->in[0];
    if (!x || x->dtype == PARE_DT_STRING || pare_dtype_bits(x->dtype) != pare_dtype_bits(to))
        return pare_error_set(err, PARE_ERR_INVALID, "BitCast needs types of equal width, got "
                              "%s to %s", x ? pare_dtype_name(x->dtype) : "none",
                              pare_dtype_name(to));
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, to, x->rank, x->dims, &y, err);
    if (!st && x->nbytes)
        memcpy(y->data, x->data, x->nbytes < y->nbytes ? x->nbytes : y->nbytes);
    return st;
}

typedef struct deform_state {
    int64_t group, offset_group;
    int n_k, n_p, n_s, n_d;
    int64_t kernel[2], pads[4], strides[2], dil[2];
} deform_state;

static bool deform_ints(const pare_node *n, const char *name, size_t want, int64_t *dst, int *cnt)
{
    const int64_t *v = NULL;
    size_t c = pare_node_attr_ints(n, name, &v);
    *cnt = (int)c;
    if (c && c != want)
        return false;
    if (c)
        memcpy(dst, v, c * sizeof *dst);
    return true;
}

static pare_status deform_init(const pare_node *n, int64_t o, void **state, pare_error *err)
{
    (void)o;
    deform_state *s = calloc(1, sizeof *s);
    if (!s)
        return r_nomem(err);
    s->group = pare_node_attr_int(n, "group", 1);
    s->offset_group = pare_node_attr_int(n, "offset_group", 1);
    if (!deform_ints(n, "kernel_shape", 2, s->kernel, &s->n_k) ||
        !deform_ints(n, "pads", 4, s->pads, &s->n_p) ||
        !deform_ints(n, "strides", 2, s->strides, &s->n_s) ||
        !deform_ints(n, "dilations", 2, s->dil, &s->n_d) || s->group < 1 || s->offset_group < 1) {
        free(s);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "DeformConv: 2-D only, bad attributes");
    }
    *state = s;
    return PARE_OK;
}

/* Bilinear sample of img (h x w) at (y, x); points outside read 0. */
static double deform_sample(const double *img, int64_t h, int64_t w, double y, double x)
{
    double y0 = floor(y), x0 = floor(x), v = 0;
    if (!(y > -1 && y < (double)h && x > -1 && x < (double)w))
        return 0;
    double ly = y - y0, lx = x - x0;
    int64_t yi = (int64_t)y0, xi = (int64_t)x0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int64_t yy = yi + dy, xx = xi + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                continue;
            v += (dy ? ly : 1 - ly) * (dx ? lx : 1 - lx) * img[yy * w + xx];
        }
    return v;
}

static pare_status deform_run(pare_kctx *k, pare_error *err)
{
    const deform_state *S = k->state;
    const pare_tensor *x = k->in[0], *w = k->n_in > 1 ? k->in[1] : NULL;
    const pare_tensor *off = k->n_in > 2 ? k->in[2] : NULL, *b = k->n_in > 3 ? k->in[3] : NULL;
    const pare_tensor *mask = k->n_in > 4 ? k->in[4] : NULL;
    if (!x || !w || !off || x->rank != 4 || w->rank != 4 || off->rank != 4 ||
        !pare_dtype_is_float(x->dtype))
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "DeformConv supports 2-D float input");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], Wd = x->dims[3];
    int64_t M = w->dims[0], kh = w->dims[2], kw = w->dims[3], G = S->group, OG = S->offset_group;
    int64_t oh = off->dims[2], ow = off->dims[3], wc, noff;
    if ((S->n_k && (S->kernel[0] != kh || S->kernel[1] != kw)) ||
        __builtin_mul_overflow(w->dims[1], G, &wc) || wc != C || M % G || C % OG ||
        off->dims[0] != N || kh < 1 || kw < 1 || __builtin_mul_overflow(OG, kh, &noff) ||
        __builtin_mul_overflow(noff, kw, &noff) || __builtin_mul_overflow(noff, 2, &noff) ||
        off->dims[1] != noff)
        return pare_error_set(err, PARE_ERR_INVALID, "inconsistent DeformConv shapes");
    int64_t sh = S->n_s ? S->strides[0] : 1, sw = S->n_s ? S->strides[1] : 1;
    int64_t dh = S->n_d ? S->dil[0] : 1, dw = S->n_d ? S->dil[1] : 1;
    int64_t ph = S->n_p ? S->pads[0] : 0, pw = S->n_p ? S->pads[1] : 0;
    int64_t pe_h = S->n_p ? S->pads[2] : 0, pe_w = S->n_p ? S->pads[3] : 0;
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || ph < 0 || pw < 0 || pe_h < 0 || pe_w < 0)
        return pare_error_set(err, PARE_ERR_INVALID, "DeformConv: bad strides, dilations or pads");
    /* room = size + pads - ((k - 1) * dilation + 1) on each axis */
    int64_t room_h, room_w, span_h, span_w;
    if (__builtin_mul_overflow(kh - 1, dh, &span_h) || __builtin_mul_overflow(kw - 1, dw, &span_w) ||
        __builtin_add_overflow(H, ph, &room_h) || __builtin_add_overflow(room_h, pe_h, &room_h) ||
        __builtin_add_overflow(Wd, pw, &room_w) || __builtin_add_overflow(room_w, pe_w, &room_w) ||
        oh != (room_h - span_h - 1) / sh + 1 || ow != (room_w - span_w - 1) / sw + 1)
        return pare_error_set(err, PARE_ERR_INVALID, "offset's spatial shape does not match the "
                              "convolution output");
    int64_t md[4] = {N, OG * kh * kw, oh, ow};
    if (mask && !r_dims_are(mask, 4, md))
        return pare_error_set(err, PARE_ERR_INVALID, "mask shape");
    if (b && r_numel(b) != M)
        return pare_error_set(err, PARE_ERR_INVALID, "bias must have M elements");
    int64_t yd[4] = {N, M, oh, ow};
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, 4, yd, &y, err);
    if (st)
        return st;
    double *X = r_convert(x, PARE_DT_DOUBLE, err), *Wv = NULL, *O = NULL, *Bv = NULL;
    double *Mk = NULL, *Y = NULL;
    if (!X || !(Wv = r_convert(w, PARE_DT_DOUBLE, err)) || !(O = r_convert(off, PARE_DT_DOUBLE, err)) ||
        (b && !(Bv = r_convert(b, PARE_DT_DOUBLE, err))) ||
        (mask && !(Mk = r_convert(mask, PARE_DT_DOUBLE, err)))) {
        st = err->status;
        goto done;
    }
    Y = calloc((size_t)(N * M * oh * ow + 1), sizeof *Y);
    if (!Y) {
        st = r_nomem(err);
        goto done;
    }
    int64_t Cg = C / G, Mg = M / G, Cog = C / OG;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = Bv ? Bv[m] : 0;
                    int64_t g = m / Mg;
                    for (int64_t c = g * Cg; c < (g + 1) * Cg; c++) {
                        int64_t og = c / Cog;
                        const double *img = X + (n * C + c) * H * Wd;
                        for (int64_t ky = 0; ky < kh; ky++)
                            for (int64_t kx = 0; kx < kw; kx++) {
                                int64_t kk = (og * kh + ky) * kw + kx;
                                double oy = O[(((n * OG * kh * kw + kk) * 2) * oh + i) * ow + j];
                                double ox = O[(((n * OG * kh * kw + kk) * 2 + 1) * oh + i) * ow + j];
                                double py = (double)(i * sh - ph + ky * dh) + oy;
                                double px = (double)(j * sw - pw + kx * dw) + ox;
                                double v = deform_sample(img, H, Wd, py, px);
                                if (Mk)
                                    v *= Mk[((n * OG * kh * kw + kk) * oh + i) * ow + j];
                                acc += v * Wv[((m * Cg + (c - g * Cg)) * kh + ky) * kw + kx];
                            }
                    }
                    Y[((n * M + m) * oh + i) * ow + j] = acc;
                }
    pare_dtype_convert(y->dtype, y->data, PARE_DT_DOUBLE, Y, (size_t)(N * M * oh * ow), true);
done:
    free(X);
    free(Wv);
    free(O);
    free(Bv);
    free(Mk);
    free(Y);
    return st;
}

#define RNN_MISC_KERNELS                                                                      \
    {"", "NegativeLogLikelihoodLoss", 12, 0, nll_init, loss_run, r_free_state, NULL},         \
    {"", "SoftmaxCrossEntropyLoss", 12, 0, sce_init, loss_run, r_free_state, NULL},           \
    {"", "Attention", 23, 0, attn_init, attn_run, r_free_state, NULL},                        \
    {"", "RotaryEmbedding", 23, 0, rope_init, rope_run, r_free_state, NULL},                  \
    {"", "LinearAttention", 27, 0, linattn_init, linattn_run, r_free_state, NULL},            \
    {"", "CausalConvWithState", 27, 0, ccs_init, ccs_run, r_free_state, NULL},                \
    {"ai.onnx.preview", "FlexAttention", 1, 0, flex_init, flex_run, r_free_state, NULL},      \
    {"", "StringConcat", 20, 0, NULL, strconcat_run, NULL, NULL},                             \
    {"", "StringSplit", 20, 0, strsplit_init, strsplit_run, r_free_state, NULL},              \
    {"", "TfIdfVectorizer", 9, 0, tfidf_init, tfidf_run, tfidf_free, NULL},                   \
    {"ai.onnx.preview.training", "Adagrad", 1, 0, adagrad_init, optim_run, r_free_state, NULL}, \
    {"ai.onnx.preview.training", "Adam", 1, 0, adam_init, optim_run, r_free_state, NULL},     \
    {"ai.onnx.preview.training", "Momentum", 1, 0, momentum_init, optim_run, r_free_state, NULL}, \
    {"ai.onnx.ml", "Binarizer", 1, 0, binarizer_init, binarizer_run, r_free_state, NULL},     \
    {"ai.onnx.ml", "ArrayFeatureExtractor", 1, 0, NULL, afe_run, NULL, NULL},                 \
    {"ai.onnx.ml", "LabelEncoder", 2, 0, le_init, le_run, r_free_state, NULL},                \
    {"ai.onnx.ml", "TreeEnsemble", 5, 0, tree_init, tree_run, tree_free, NULL},               \
    {"", "BitCast", 26, 0, bitcast_init, bitcast_run, r_free_state, NULL},                    \
    {"", "DeformConv", 19, 0, deform_init, deform_run, r_free_state, NULL},

/* Control flow (If, Loop, Scan) through the executor's run_graph callback. */
#include <string.h>
#include "exec/kernel.h"

static pare_status copy_out(pare_kctx *k, size_t i, const pare_tensor *src, pare_error *err)
{
    pare_tensor *t;
    pare_status st = k->alloc_out(k, i, src->dtype, src->rank, src->dims, &t, err);
    if (st)
        return st;
    if (src->dtype == PARE_DT_STRING) {
        size_t n = src->nbytes / sizeof(pare_string);
        const pare_string *s = src->data;
        pare_string *d = t->data;
        for (size_t j = 0; j < n; j++) {
            d[j].data = malloc(s[j].len + 1);
            if (!d[j].data)
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            memcpy(d[j].data, s[j].data, s[j].len);
            d[j].len = s[j].len;
        }
    } else if (src->nbytes) {
        memcpy(t->data, src->data, src->nbytes);
    }
    return PARE_OK;
}

static bool truthy(const pare_tensor *t)
{
    if (!t || pare_tensor_numel(t) < 1)
        return false;
    return pare_dtype_get_f64(t->dtype, t->data, 0) != 0;
}

/* ---- If ---- */

static pare_status if_run(pare_kctx *k, pare_error *err)
{
    const pare_attr *a = pare_node_attr(k->node, truthy(k->in[0]) ? "then_branch" : "else_branch");
    if (!a || a->type != PARE_ATTR_GRAPH || !a->g)
        return pare_error_set(err, PARE_ERR_INVALID, "missing branch graph");
    pare_tensor **outs;
    size_t n;
    pare_status st = k->run_graph(k, a->g, NULL, 0, &outs, &n, err);
    if (st)
        return st;
    if (n < k->n_out) {
        pare_tensors_free(outs, n);
        return pare_error_set(err, PARE_ERR_INVALID, "branch gives %zu outputs, node has %zu", n,
                              k->n_out);
    }
    for (size_t i = 0; i < k->n_out && !st; i++)
        st = copy_out(k, i, outs[i], err);
    pare_tensors_free(outs, n);
    return st;
}

/* ---- growing stacks for scan outputs ---- */

typedef struct stack {
    int dtype, rank;
    int64_t dims[PARE_MAX_RANK];
    uint8_t *data;
    size_t elem_bytes, count, cap; /* count: slices */
} stack;

static pare_status stack_push(stack *s, const pare_tensor *t, pare_error *err)
{
    if (t->dtype == PARE_DT_STRING || pare_dtype_bits(t->dtype) < 8)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "scan outputs of %s are not supported",
                              pare_dtype_name(t->dtype));
    if (s->count == 0 && !s->data) {
        s->dtype = t->dtype;
        s->rank = t->rank;
        if (t->rank)
            memcpy(s->dims, t->dims, (size_t)t->rank * sizeof *t->dims);
        s->elem_bytes = t->nbytes;
    } else if (t->dtype != s->dtype || t->rank != s->rank ||
               (t->rank && memcmp(t->dims, s->dims, (size_t)t->rank * sizeof *t->dims) != 0)) {
        return pare_error_set(err, PARE_ERR_INVALID, "scan output changes shape between "
                              "iterations");
    }
    if (s->count == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        uint8_t *nd = realloc(s->data, nc * (s->elem_bytes ? s->elem_bytes : 1));
        if (!nd)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        s->data = nd;
        s->cap = nc;
    }
    memcpy(s->data + s->count * s->elem_bytes, t->data, s->elem_bytes);
    s->count++;
    return PARE_OK;
}

/* ---- Loop ---- */

static pare_status loop_run(pare_kctx *k, pare_error *err)
{
    const pare_attr *a = pare_node_attr(k->node, "body");
    if (!a || !a->g)
        return pare_error_set(err, PARE_ERR_INVALID, "missing body graph");
    const pare_graph *body = a->g;
    int64_t max_trip = INT64_MAX;
    bool cond = true;
    if (k->n_in > 0 && k->in[0]) {
        int64_t v;
        if (pare_tensor_ints(k->in[0], &v, 1) != 1)
            return pare_error_set(err, PARE_ERR_INVALID, "M must be one int64");
        max_trip = v;
    }
    if (k->n_in > 1 && k->in[1])
        cond = truthy(k->in[1]);
    size_t n_carried = k->n_in > 2 ? k->n_in - 2 : 0;
    size_t n_scan = k->n_out > n_carried ? k->n_out - n_carried : 0;
    if (body->n_inputs != n_carried + 2 || body->n_outputs != 1 + n_carried + n_scan)
        return pare_error_set(err, PARE_ERR_INVALID, "body has %zu inputs and %zu outputs, the "
                              "node needs %zu and %zu", body->n_inputs, body->n_outputs,
                              n_carried + 2, 1 + n_carried + n_scan);
    pare_tensor **carried = calloc(n_carried ? n_carried : 1, sizeof *carried);
    stack *stacks = calloc(n_scan ? n_scan : 1, sizeof *stacks);
    const pare_tensor **ins = calloc(n_carried + 2, sizeof *ins);
    pare_tensor *iter_t = NULL, *cond_t = NULL;
    pare_status st = PARE_OK;
    if (!carried || !stacks || !ins) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_carried; i++) {
        if (!k->in[2 + i]) {
            st = pare_error_set(err, PARE_ERR_INVALID, "loop-carried input %zu is missing", i);
            goto out;
        }
        if ((st = pare_tensor_clone(k->in[2 + i], &carried[i], err)))
            goto out;
    }
    int64_t none[1] = {0};
    if ((st = pare_tensor_new(NULL, PARE_DT_INT64, 0, none, &iter_t, err)) ||
        (st = pare_tensor_new(NULL, PARE_DT_BOOL, 0, none, &cond_t, err)))
        goto out;
    for (int64_t it = 0; it < max_trip && cond; it++) {
        memcpy(iter_t->data, &it, 8);
        *(uint8_t *)cond_t->data = cond;
        ins[0] = iter_t;
        ins[1] = cond_t;
        for (size_t i = 0; i < n_carried; i++)
            ins[2 + i] = carried[i];
        pare_tensor **outs;
        size_t n;
        if ((st = k->run_graph(k, body, ins, n_carried + 2, &outs, &n, err)))
            goto out;
        cond = truthy(outs[0]);
        for (size_t i = 0; i < n_carried; i++) {
            pare_tensor_free(carried[i]);
            carried[i] = outs[1 + i];
            outs[1 + i] = NULL;
        }
        for (size_t i = 0; i < n_scan && !st; i++)
            st = stack_push(&stacks[i], outs[1 + n_carried + i], err);
        pare_tensors_free(outs, n);
        if (st)
            goto out;
    }
    for (size_t i = 0; i < n_carried && !st; i++)
        st = copy_out(k, i, carried[i], err);
    for (size_t i = 0; i < n_scan && !st; i++) {
        stack *s = &stacks[i];
        int64_t dims[PARE_MAX_RANK + 1];
        int rank = s->rank + 1;
        dims[0] = (int64_t)s->count;
        memcpy(dims + 1, s->dims, (size_t)s->rank * sizeof *dims);
        int dtype = s->dtype;
        if (!s->data) { /* zero iterations: shape from the body output if known */
            const pare_value *bv = body->outputs[1 + n_carried + i];
            dtype = bv->dtype ? bv->dtype : PARE_DT_FLOAT;
            rank = 1;
            if (bv->shape.rank >= 0) {
                rank = bv->shape.rank + 1;
                for (int d = 0; d < bv->shape.rank; d++)
                    dims[1 + d] = bv->shape.dims[d].value > 0 ? bv->shape.dims[d].value : 0;
            }
        }
        pare_tensor *t;
        if ((st = k->alloc_out(k, n_carried + i, dtype, rank, dims, &t, err)))
            break;
        if (s->count)
            memcpy(t->data, s->data, s->count * s->elem_bytes);
    }
out:
    if (carried)
        for (size_t i = 0; i < n_carried; i++)
            pare_tensor_free(carried[i]);
    if (stacks)
        for (size_t i = 0; i < n_scan; i++)
            free(stacks[i].data);
    free(carried);
    free(stacks);
    free(ins);
    pare_tensor_free(iter_t);
    pare_tensor_free(cond_t);
    return st;
}

/* ---- Scan (opset 9+) ---- */

static pare_status take_slice(const pare_tensor *t, int axis, int64_t idx, pare_tensor **out,
                              pare_error *err)
{
    int64_t dims[PARE_MAX_RANK];
    int r = 0;
    for (int d = 0; d < t->rank; d++)
        if (d != axis)
            dims[r++] = t->dims[d];
    pare_status st = pare_tensor_new(NULL, t->dtype, r, dims, out, err);
    if (st)
        return st;
    size_t es = pare_elem_size(t->dtype);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= t->dims[d];
    for (int d = axis + 1; d < t->rank; d++)
        inner *= t->dims[d];
    const uint8_t *src = t->data;
    uint8_t *dst = (*out)->data;
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + (size_t)(o * inner) * es,
               src + (size_t)((o * t->dims[axis] + idx) * inner) * es, (size_t)inner * es);
    return PARE_OK;
}

static pare_status scan_run(pare_kctx *k, pare_error *err)
{
    const pare_node *n = k->node;
    const pare_attr *a = pare_node_attr(n, "body");
    if (!a || !a->g)
        return pare_error_set(err, PARE_ERR_INVALID, "missing body graph");
    if (k->opset < 9)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Scan before opset 9 is not supported");
    const pare_graph *body = a->g;
    int64_t m = pare_node_attr_int(n, "num_scan_inputs", -1);
    if (m < 0 || (size_t)m > k->n_in)
        return pare_error_set(err, PARE_ERR_INVALID, "num_scan_inputs %lld invalid", (long long)m);
    size_t n_state = k->n_in - (size_t)m;
    size_t n_scan_out = k->n_out > n_state ? k->n_out - n_state : 0;
    const int64_t *in_axes = NULL, *in_dirs = NULL, *out_axes = NULL, *out_dirs = NULL;
    size_t n_in_axes = pare_node_attr_ints(n, "scan_input_axes", &in_axes);
    size_t n_in_dirs = pare_node_attr_ints(n, "scan_input_directions", &in_dirs);
    size_t n_out_axes = pare_node_attr_ints(n, "scan_output_axes", &out_axes);
    size_t n_out_dirs = pare_node_attr_ints(n, "scan_output_directions", &out_dirs);
    if (body->n_inputs != k->n_in || body->n_outputs != k->n_out)
        return pare_error_set(err, PARE_ERR_INVALID, "body signature does not match the node");
    for (size_t i = 0; i < k->n_in; i++)
        if (!k->in[i])
            return pare_error_set(err, PARE_ERR_INVALID, "input %zu is missing", i);
    int64_t len = -1;
    int axes[64];
    if (m > 64)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "too many scan inputs");
    for (int64_t i = 0; i < m; i++) {
        const pare_tensor *t = k->in[n_state + (size_t)i];
        pare_status st = pare_axis((size_t)i < n_in_axes ? in_axes[i] : 0, t->rank, &axes[i], err);
        if (st)
            return st;
        if (len >= 0 && t->dims[axes[i]] != len)
            return pare_error_set(err, PARE_ERR_INVALID, "scan inputs differ in length");
        len = t->dims[axes[i]];
    }
    if (len < 0)
        len = 0;
    pare_tensor **state = calloc(n_state ? n_state : 1, sizeof *state);
    stack *stacks = calloc(n_scan_out ? n_scan_out : 1, sizeof *stacks);
    const pare_tensor **ins = calloc(k->n_in ? k->n_in : 1, sizeof *ins);
    pare_tensor **slices = calloc((size_t)m ? (size_t)m : 1, sizeof *slices);
    pare_status st = PARE_OK;
    if (!state || !stacks || !ins || !slices) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_state; i++)
        if ((st = pare_tensor_clone(k->in[i], &state[i], err)))
            goto out;
    for (int64_t it = 0; it < len; it++) {
        for (size_t i = 0; i < n_state; i++)
            ins[i] = state[i];
        for (int64_t j = 0; j < m; j++) {
            bool rev = (size_t)j < n_in_dirs && in_dirs[j] == 1;
            pare_tensor_free(slices[j]);
            slices[j] = NULL;
            if ((st = take_slice(k->in[n_state + (size_t)j], axes[j], rev ? len - 1 - it : it,
                                 &slices[j], err)))
                goto out;
            ins[n_state + (size_t)j] = slices[j];
        }
        pare_tensor **outs;
        size_t no;
        if ((st = k->run_graph(k, body, ins, k->n_in, &outs, &no, err)))
            goto out;
        for (size_t i = 0; i < n_state; i++) {
            pare_tensor_free(state[i]);
            state[i] = outs[i];
            outs[i] = NULL;
        }
        for (size_t i = 0; i < n_scan_out && !st; i++)
            st = stack_push(&stacks[i], outs[n_state + i], err);
        pare_tensors_free(outs, no);
        if (st)
            goto out;
    }
    for (size_t i = 0; i < n_state && !st; i++)
        st = copy_out(k, i, state[i], err);
    for (size_t i = 0; i < n_scan_out && !st; i++) {
        stack *s = &stacks[i];
        int r = s->rank + 1, ax;
        if ((st = pare_axis(i < n_out_axes ? out_axes[i] : 0, r, &ax, err)))
            break;
        bool rev = i < n_out_dirs && out_dirs[i] == 1;
        int64_t dims[PARE_MAX_RANK + 1];
        for (int d = 0, sd = 0; d < r; d++)
            dims[d] = d == ax ? (int64_t)s->count : s->dims[sd++];
        pare_tensor *t;
        if ((st = k->alloc_out(k, n_state + i, s->data ? s->dtype : PARE_DT_FLOAT, r, dims, &t,
                               err)))
            break;
        size_t es = pare_elem_size(s->dtype ? s->dtype : PARE_DT_FLOAT);
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < ax; d++)
            outer *= dims[d];
        for (int d = ax + 1; d < r; d++)
            inner *= dims[d];
        /* slice c of the stack is [outer][inner] laid out at position c on axis ax */
        for (size_t c = 0; c < s->count; c++) {
            size_t pos = rev ? s->count - 1 - c : c;
            for (int64_t o = 0; o < outer; o++)
                memcpy((uint8_t *)t->data + (size_t)((o * (int64_t)s->count + (int64_t)pos) *
                                                     inner) * es,
                       s->data + c * s->elem_bytes + (size_t)(o * inner) * es,
                       (size_t)inner * es);
        }
    }
out:
    if (state)
        for (size_t i = 0; i < n_state; i++)
            pare_tensor_free(state[i]);
    if (stacks)
        for (size_t i = 0; i < n_scan_out; i++)
            free(stacks[i].data);
    if (slices)
        for (int64_t j = 0; j < m; j++)
            pare_tensor_free(slices[j]);
    free(state);
    free(stacks);
    free(ins);
    free(slices);
    return st;
}

const pare_kernel pare_kernels_control[] = {
    {"", "If", 1, 0, NULL, if_run, NULL, NULL},
    {"", "Loop", 1, 0, NULL, loop_run, NULL, NULL},
    {"", "Scan", 9, 0, NULL, scan_run, NULL, NULL},
    {0},
};

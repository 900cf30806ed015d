// Pair-based STDP with lazily decayed traces (workbench/snn/stdp.py has the rule).
//
// A trace is (value at its neuron's last spike, that step): at step t it is
// tr * exp(-(t - last) * k), k = dt / tau. Tunables: MULT (1: multiplicative, soft bounds),
// NEAREST (1: nearest-spike traces, = 1 at a spike instead of += 1).
#include "snn.h"

#ifndef MULT
#define MULT 0
#endif
#ifndef NEAREST
#define NEAREST 0
#endif

inline float trace_at(__global const float *tr, __global const int *last, uint i, int t, float k) {
    return tr[i] * exp(-(float)(t - last[i]) * k);
}

inline void trace_spike(__global float *tr, __global int *last, uint i, int t, float k) {
#if NEAREST
    tr[i] = 1.0f;
#else
    tr[i] = trace_at(tr, last, i, t, k) + 1.0f;
#endif
    last[i] = t;
}

inline float depress(float w, float x, float a_minus, float w_min, float w_max) {
#if MULT
    w -= a_minus * x * (w - w_min);
#else
    w -= a_minus * x;
#endif
    return clamp(w, w_min, w_max);
}

inline float potentiate(float w, float x, float a_plus, float w_min, float w_max) {
#if MULT
    w += a_plus * x * (w_max - w);
#else
    w += a_plus * x;
#endif
    return clamp(w, w_min, w_max);
}

// Presynaptic spikes of this step: depress their out-going synapses by the post traces, then
// bump their own trace. A work-item per spike (rows belong to one spike each: no races).
__kernel void stdp_pre_csr(
    __global const uint *list, const uint cap, __global const uint *ends, DYN_U(end_idx),
    __global const uint *cnt, DYN_U(t_local),
    __global const uint *indptr, __global const uint *indices, __global float *w,
    __global const float *tr_post, __global const int *last_post,
    __global float *tr_pre, __global int *last_pre,
    DYN_I(t), const float k_plus, const float k_minus,
    const float a_minus, const float w_min, const float w_max CLK_ARG)
{
    LOAD_U(end_idx) LOAD_U(t_local) LOAD_I(t)
    SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)
    for (uint q = get_global_id(0); q < nspk; q += get_global_size(0)) {
        const uint i = SNN_SPIKE(list, cap, q);
        for (uint s = indptr[i]; s < indptr[i + 1]; ++s)
            w[s] = depress(w[s], trace_at(tr_post, last_post, indices[s], t, k_minus), a_minus, w_min, w_max);
        trace_spike(tr_pre, last_pre, i, t, k_plus);
    }
}

// Postsynaptic spikes: potentiate their in-coming synapses (CSC view: col_ptr over post,
// col_pre the pre neuron, col_syn the synapse's CSR position) by the pre traces.
__kernel void stdp_post_csr(
    __global const uint *list, const uint cap, __global const uint *ends, DYN_U(end_idx),
    __global const uint *cnt, DYN_U(t_local),
    __global const uint *col_ptr, __global const uint *col_pre, __global const uint *col_syn,
    __global float *w,
    __global const float *tr_pre, __global const int *last_pre,
    __global float *tr_post, __global int *last_post,
    DYN_I(t), const float k_plus, const float k_minus,
    const float a_plus, const float w_min, const float w_max CLK_ARG)
{
    LOAD_U(end_idx) LOAD_U(t_local) LOAD_I(t)
    SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)
    for (uint q = get_global_id(0); q < nspk; q += get_global_size(0)) {
        const uint j = SNN_SPIKE(list, cap, q);
        for (uint c = col_ptr[j]; c < col_ptr[j + 1]; ++c) {
            const uint s = col_syn[c];
            w[s] = potentiate(w[s], trace_at(tr_pre, last_pre, col_pre[c], t, k_plus), a_plus, w_min, w_max);
        }
        trace_spike(tr_post, last_post, j, t, k_minus);
    }
}

// Dense weights (n_pre, n_post): a work-item per (pre spike, post neuron).
__kernel void stdp_pre_dense(
    __global const uint *list, const uint cap, __global const uint *ends, DYN_U(end_idx),
    __global const uint *cnt, DYN_U(t_local),
    __global float *w, const uint n_post,
    __global const float *tr_post, __global const int *last_post,
    __global float *tr_pre, __global int *last_pre,
    DYN_I(t), const float k_plus, const float k_minus,
    const float a_minus, const float w_min, const float w_max CLK_ARG)
{
    LOAD_U(end_idx) LOAD_U(t_local) LOAD_I(t)
    SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)
    const uint total = nspk * n_post;
    for (uint g = get_global_id(0); g < total; g += get_global_size(0)) {
        const uint i = SNN_SPIKE(list, cap, g / n_post), j = g % n_post;
        const size_t s = (size_t)i * n_post + j;
        w[s] = depress(w[s], trace_at(tr_post, last_post, j, t, k_minus), a_minus, w_min, w_max);
        if (j == 0) trace_spike(tr_pre, last_pre, i, t, k_plus);
    }
}

// A work-item per (post spike, pre neuron).
__kernel void stdp_post_dense(
    __global const uint *list, const uint cap, __global const uint *ends, DYN_U(end_idx),
    __global const uint *cnt, DYN_U(t_local),
    __global float *w, const uint n_pre, const uint n_post,
    __global const float *tr_pre, __global const int *last_pre,
    __global float *tr_post, __global int *last_post,
    DYN_I(t), const float k_plus, const float k_minus,
    const float a_plus, const float w_min, const float w_max CLK_ARG)
{
    LOAD_U(end_idx) LOAD_U(t_local) LOAD_I(t)
    SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)
    const uint total = nspk * n_pre;
    for (uint g = get_global_id(0); g < total; g += get_global_size(0)) {
        const uint j = SNN_SPIKE(list, cap, g / n_pre), i = g % n_pre;
        const size_t s = (size_t)i * n_post + j;
        w[s] = potentiate(w[s], trace_at(tr_pre, last_pre, i, t, k_plus), a_plus, w_min, w_max);
        if (i == 0) trace_spike(tr_post, last_post, j, t, k_minus);
    }
}

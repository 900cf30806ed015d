// Leaky integrate-and-fire populations and event-driven spike propagation (workbench/snn).
//
// Tunables: WG (see snn.h), BIAS_ARRAY (1: v_inf per neuron, 0: one value), ADAPT (1: adaptive
// threshold theta), DELAYS (1: one delay per synapse, 0: one per projection), BLOCK and FUSE
// (lif_block, for CPUs).
#include "snn.h"

#ifndef BIAS_ARRAY
#define BIAS_ARRAY 1
#endif
#ifndef ADAPT
#define ADAPT 0
#endif
#ifndef DELAYS
#define DELAYS 0
#endif
#ifndef FUSE
#define FUSE 0  // lif_block also delivers through one out-going CSR projection
#endif

// One step of n LIF neurons: the exact update v <- v_inf + (v - v_inf) decay + syn outside the
// refractory period, threshold (v_th + theta), reset, refractory count, spike list.
// `ring` holds the delayed synaptic input; this step's slot starts at `slot` and is cleared.
__kernel void lif_step(
    const uint n, __global float *v, __global int *ref, __global float *theta,
    __global const float *v_inf_arr, const float v_inf_one,
    __global float *ring, DYN_U(slot),
    const float decay, const float v_th, const float v_reset, const int ref_steps,
    const float theta_decay, const float theta_plus,
    __global uint *list, const uint cap, volatile __global uint *ctr, volatile __global uint *cnt,
    DYN_U(t_local), __global uint *count CLK_ARG)
{
    LOAD_U(slot) LOAD_U(t_local)
    __local uint l_n, l_base;
    const uint i = get_global_id(0);
    int spiked = 0;
    if (i < n) {
        const float syn = ring[slot + i];
        if (syn != 0.0f) ring[slot + i] = 0.0f;
        const int r = ref[i];
#if ADAPT
        float th = theta[i] * theta_decay;
#else
        float th = 0.0f;
#endif
        if (r > 0) {
            ref[i] = r - 1;  // held at v_reset, input ignored
        } else {
#if BIAS_ARRAY
            const float vinf = v_inf_arr[i];
#else
            const float vinf = v_inf_one;
#endif
            float vi = vinf + (v[i] - vinf) * decay + syn;
            if (vi >= v_th + th) {
                spiked = 1;
                vi = v_reset;
                ref[i] = ref_steps;
                th += theta_plus;
                count[i] += 1;
            }
            v[i] = vi;
        }
#if ADAPT
        theta[i] = th;
#endif
    }
    snn_append(spiked, i, list, cap, ctr, cnt, t_local, &l_n, &l_base);
}

#ifndef BLOCK
#define BLOCK 1024
#endif

// The same step for CPUs: a work-item per BLOCK neurons. The update loop has no branches (so the
// compiler vectorizes it) and marks spikes in a private array; a second pass, almost always
// empty-handed, reserves list positions with one atomic per block and appends the spikes.
__kernel void lif_block(
    const uint n, __global float *v, __global int *ref, __global float *theta,
    __global const float *v_inf_arr, const float v_inf_one,
    __global float *ring, DYN_U(slot),
    const float decay, const float v_th, const float v_reset, const int ref_steps,
    const float theta_decay, const float theta_plus,
    __global uint *list, const uint cap, volatile __global uint *ctr, volatile __global uint *cnt,
    DYN_U(t_local), __global uint *count
#if FUSE
    // the layer's one out-going CSR projection, delivered here (see below)
    , __global const uint *indptr, __global const uint *indices, __global const float *w,
    __global const uchar *delays, const uint delay_one, const float scale,
    __global float *ring_post, const uint n_post, const uint n_slots, DYN_U(t)
#endif
    CLK_ARG
    )
{
    LOAD_U(slot) LOAD_U(t_local)
#if FUSE
    LOAD_U(t)
#endif
    const uint start = get_global_id(0) * BLOCK;
    if (start >= n) return;
    const uint len = min((uint)BLOCK, n - start);
    uchar fired[BLOCK];
    uint nspk = 0;
    for (uint k = 0; k < len; ++k) {
        const uint i = start + k;
        const float syn = ring[slot + i];
        if (syn != 0.0f) ring[slot + i] = 0.0f;  // most slots are empty: skip the store
        const int r = ref[i];
        const float vi = v[i];
#if BIAS_ARRAY
        const float vinf = v_inf_arr[i];
#else
        const float vinf = v_inf_one;
#endif
        const float vn = vinf + (vi - vinf) * decay + syn;
#if ADAPT
        const float th = theta[i] * theta_decay;
#else
        const float th = 0.0f;
#endif
        const int held = r > 0;
        const int spk = !held && vn >= v_th + th;
        v[i] = held ? vi : (spk ? v_reset : vn);
        if (held | spk) ref[i] = held ? r - 1 : ref_steps;
#if ADAPT
        theta[i] = spk ? th + theta_plus : th;
#endif
        fired[k] = (uchar)spk;
        nspk += (uint)spk;
    }
    if (nspk == 0) return;
    uint pos = atomic_add(ctr, nspk);
    atomic_add(cnt + t_local, nspk);
    for (uint k = 0; k < len; ++k) {
        if (fired[k]) {
            const uint i = start + k;
            list[pos++ % cap] = i;
            count[i] += 1;
#if FUSE
            // Delivering here is race-free: this step reads only slot t % n_slots, and a delay
            // of d >= 1 steps writes slot (t + d) % n_slots, never that one.
            for (uint s = indptr[i]; s < indptr[i + 1]; ++s) {
#if DELAYS
                const uint d = delays[s];
#else
                const uint d = delay_one;
#endif
                snn_atomic_add(ring_post + ((t + d) % n_slots) * n_post + indices[s], scale * w[s]);
            }
#endif
        }
    }
}

// Poisson sources: neuron i fires at step `step` when uniform(seed, step, i) < p_i.
__kernel void poisson_step(
    const uint n, __global const float *p_arr, const float p_one, const uint seed, DYN_U(step),
    __global uint *list, const uint cap, volatile __global uint *ctr, volatile __global uint *cnt,
    DYN_U(t_local), __global uint *count CLK_ARG)
{
    LOAD_U(step) LOAD_U(t_local)
    __local uint l_n, l_base;
    const uint i = get_global_id(0);
    int spiked = 0;
    if (i < n) {
#if BIAS_ARRAY
        const float p = p_arr[i];
#else
        const float p = p_one;
#endif
        spiked = snn_uniform(seed, step, i) < p;
        if (spiked) count[i] += 1;
    }
    snn_append(spiked, i, list, cap, ctr, cnt, t_local, &l_n, &l_base);
}

#ifndef VEC
#define VEC 1  // lanes per spike in propagate_csr (a warp on GPUs)
#endif

// Event-driven delivery through CSR synapses: VEC lanes per spike of this step walk the
// out-going synapses of that neuron only, adding scale * w into the ring slot `delay` steps on.
__kernel void propagate_csr(
    __global const uint *list, const uint cap, __global const uint *ends, DYN_U(end_idx),
    __global const uint *cnt, DYN_U(t_local),
    __global const uint *indptr, __global const uint *indices, __global const float *w,
    __global const uchar *delays, const uint delay_one, const float scale,
    __global float *ring, const uint n_post, const uint n_slots, DYN_U(t) CLK_ARG)
{
    LOAD_U(end_idx) LOAD_U(t_local) LOAD_U(t)
    SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)
    const uint lane = get_global_id(0) % VEC, groups = get_global_size(0) / VEC;
    for (uint k = get_global_id(0) / VEC; k < nspk; k += groups) {
        const uint i = SNN_SPIKE(list, cap, k);
        const uint end = indptr[i + 1];
        for (uint s = indptr[i] + lane; s < end; s += VEC) {
#if DELAYS
            const uint d = delays[s];
#else
            const uint d = delay_one;
#endif
            snn_atomic_add(ring + ((t + d) % n_slots) * n_post + indices[s], scale * w[s]);
        }
    }
}

// Delivery through dense weights (n_pre, n_post): a work-item per post neuron sums the rows of
// this step's spikes (no atomics: each post neuron has one writer).
__kernel void propagate_dense(
    __global const uint *list, const uint cap, __global const uint *ends, DYN_U(end_idx),
    __global const uint *cnt, DYN_U(t_local),
    __global const float *w, const uint delay_one, const float scale,
    __global float *ring, const uint n_post, const uint n_slots, DYN_U(t) CLK_ARG)
{
    LOAD_U(end_idx) LOAD_U(t_local) LOAD_U(t)
    SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)
    const uint j = get_global_id(0);
    if (j >= n_post || nspk == 0) return;
    float acc = 0.0f;
    for (uint k = 0; k < nspk; ++k) acc += w[SNN_SPIKE(list, cap, k) * n_post + j];
    ring[((t + delay_one) % n_slots) * n_post + j] += scale * acc;
}

// Membrane traces of chosen neurons: out[offset + q] = v[ids[q]].
__kernel void gather_v(__global const float *v, __global const uint *ids, const uint k,
                       __global float *out, DYN_U(offset) CLK_ARG)
{
    LOAD_U(offset)
    const uint q = get_global_id(0);
    if (q < k) out[offset + q] = v[ids[q]];
}

// CLOCK: the device's step counter, advanced after every step (see snn.h).
__kernel void tick(__global uint *clk)
{
    if (get_global_id(0) == 0) clk[0] += 1;
}

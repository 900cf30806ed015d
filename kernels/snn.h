// Shared by lif.cl and stdp.cl: spike lists, the counter-based uniform, float atomics.
//
// A population's spikes of one step go to `list` at positions [end - cnt[t_local], end), taken
// modulo `cap`, where `end` is the running counter ctr[0] after the step (LIF and Poisson
// populations) or a host-written cumulative count (spike-array sources): `ends[end_idx]`.
#pragma OPENCL FP_CONTRACT OFF

#ifndef WG
#define WG 0  // > 0: work-group size of the LIF / Poisson launches (spikes counted locally first)
#endif

// MurmurHash3's 32-bit finalizer; two rounds over (seed, step, index): workbench/snn/rng.py.
inline uint snn_fmix(uint h) {
    h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
    return h;
}

inline float snn_uniform(uint seed, uint step, uint idx) {
    uint h = snn_fmix(seed ^ (step * 0x9E3779B1u));
    h = snn_fmix(h ^ (idx * 0x27D4EB2Fu));
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

// OpenCL 1.2 has no float atomic add: compare-and-swap on the bits.
inline void snn_atomic_add(volatile __global float *p, float x) {
    union { uint u; float f; } old, upd;
    old.f = *p;
    for (;;) {
        upd.f = old.f + x;
        uint prev = atomic_cmpxchg((volatile __global uint *)p, old.u, upd.u);
        if (prev == old.u) break;
        old.u = prev;
    }
}

// Every work-item of the work-group calls this (it has barriers when WG > 0).
inline void snn_append(int spiked, uint id, __global uint *list, uint cap, volatile __global uint *ctr,
                       volatile __global uint *cnt, uint t_local,
                       volatile __local uint *l_n, volatile __local uint *l_base) {
#if WG
    uint lid = get_local_id(0);
    if (lid == 0) *l_n = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    uint pos = spiked ? atomic_inc(l_n) : 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0 && *l_n) {
        *l_base = atomic_add(ctr, *l_n);
        atomic_add(cnt + t_local, *l_n);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (spiked) list[(*l_base + pos) % cap] = id;
#else
    if (spiked) {
        uint pos = atomic_inc(ctr);
        atomic_inc(cnt + t_local);
        list[pos % cap] = id;
    }
#endif
}

// CLOCK: the values that change every step (the step t, its index in the chunk, the ring slot,
// ...) are not kernel arguments but tables over the chunk's steps, indexed by a step counter on
// the device (clk[0]) that tick() advances after each step. NVIDIA's driver charges about 15 us
// per clSetKernelArg (PoCL a few), several times a small network's whole step; with tables a step
// is only enqueues, one more of them the tick. Without CLOCK they are scalar arguments.
#ifndef CLOCK
#define CLOCK 0
#endif
#if CLOCK
#define DYN_U(x) __global const uint *x##_tab
#define DYN_I(x) __global const uint *x##_tab
#define CLK_ARG , __global const uint *clk
#define LOAD_U(x) const uint x = x##_tab[clk[0]];
#define LOAD_I(x) const int x = (int)x##_tab[clk[0]];
#else
#define DYN_U(x) const uint x
#define DYN_I(x) const int x
#define CLK_ARG
#define LOAD_U(x)
#define LOAD_I(x)
#endif

// The k-th spike of this step's list.
#define SNN_SPIKES(list, cap, ends, end_idx, cnt, t_local)  \
    const uint nspk = (cnt)[t_local];                        \
    const uint begin = (ends)[end_idx] - nspk;
#define SNN_SPIKE(list, cap, k) ((list)[(begin + (k)) % (cap)])

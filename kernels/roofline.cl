// roofline.cl - microbenchmarks that measure a device's ceilings (workbench/roofline.py).
//
// Kernels:
//   copy_1 .. copy_16  dst[i] = src[i] for float, float2, float4, float8, float16: global-memory
//                      bandwidth (bytes = 2 x buffer size per launch) at several vector widths.
//   triad              a[i] = b[i] + s c[i] on float4 (STREAM triad, bytes = 3 x buffer size).
//   fp32_fma           CHAINS independent chains of x = fma(x, a, b) on floatVW vectors, ITERS
//                      times: 2 * CHAINS * VW * iters flops per work-item. a and b are kernel
//                      arguments so nothing folds at compile time, and the result is stored when
//                      the run-time flag `sink` is set (the host passes 0), so nothing is dead
//                      code either. (A compile-time-impossible sentinel is not enough: a compiler
//                      that bounds the result deletes the whole loop.)
//   int32_mad          the same with x = x * a + b on uintVW (wrapping, defined for unsigned).
//   int8_mad           the same on ucharVW8 lanes (16 or 4 x more lanes than int32).
//   int8_dot           CHAINS chains of acc = dot4(a, b, acc), 8 ops each (4 multiplies, 4 adds):
//                      NVIDIA's dp4a through inline PTX (USE_DP4A) or cl_khr_integer_dot_product
//                      (USE_KHR_DOT). Only built where the device has one of them.
//   empty              does nothing: launch latency.
//
// Tunables: VW (float/uint vector width, 4 on GPUs, the native width on CPUs), VW8 (uchar vector
// width), CHAINS (independent dependency chains per work-item).

#ifndef VW
#define VW 4
#endif
#ifndef VW8
#define VW8 16
#endif
#ifndef CHAINS
#define CHAINS 8
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define floatV CAT(float, VW)
#define uintV CAT(uint, VW)
#define ucharV CAT(uchar, VW8)

#define COPY_KERNEL(T, name)                                                   \
    kernel void name(const global T* restrict src, global T* restrict dst)    \
    {                                                                          \
        const size_t i = get_global_id(0);                                     \
        dst[i] = src[i];                                                       \
    }
COPY_KERNEL(float, copy_1)
COPY_KERNEL(float2, copy_2)
COPY_KERNEL(float4, copy_4)
COPY_KERNEL(float8, copy_8)
COPY_KERNEL(float16, copy_16)

kernel void triad(global float4* restrict a, const global float4* restrict b,
                  const global float4* restrict c, const float s)
{
    const size_t i = get_global_id(0);
    a[i] = b[i] + s * c[i];
}

// The chains start from distinct values so no two are the same computation.
#define CHAIN_BODY(T, STEP)                                                    \
    T x[CHAINS];                                                               \
    for (int c = 0; c < CHAINS; ++c)                                           \
        x[c] = seed + (T)(c + 1);                                              \
    for (int it = 0; it < iters; ++it) {                                       \
        _Pragma("unroll")                                                      \
        for (int c = 0; c < CHAINS; ++c)                                       \
            x[c] = STEP;                                                       \
    }                                                                          \
    T s = x[0];                                                                \
    for (int c = 1; c < CHAINS; ++c)                                           \
        s += x[c];

kernel void fp32_fma(global float* out, const float a, const float b, const int iters,
                     const int sink)
{
    const floatV seed = (floatV)((float)get_global_id(0) * 1e-7f);
    CHAIN_BODY(floatV, fma(x[c], (floatV)(a), (floatV)(b)))
    float r = 0.0f;
    for (int l = 0; l < VW; ++l)
        r += ((float*)&s)[l];
    if (sink)
        out[get_global_id(0)] = r;
}

kernel void int32_mad(global uint* out, const uint a, const uint b, const int iters,
                      const int sink)
{
    const uintV seed = (uintV)((uint)get_global_id(0));
    CHAIN_BODY(uintV, x[c] * (uintV)(a) + (uintV)(b))
    uint r = 0;
    for (int l = 0; l < VW; ++l)
        r ^= ((uint*)&s)[l];
    if (sink)
        out[get_global_id(0)] = r;
}

kernel void int8_mad(global uint* out, const uchar a, const uchar b, const int iters,
                     const int sink)
{
    const ucharV seed = (ucharV)((uchar)get_global_id(0));
    CHAIN_BODY(ucharV, x[c] * (ucharV)(a) + (ucharV)(b))
    uint r = 0;
    for (int l = 0; l < VW8; ++l)
        r += ((uchar*)&s)[l];
    if (sink)
        out[get_global_id(0)] = r;
}

#if defined(USE_DP4A) || defined(USE_KHR_DOT)
#include "dot4.h"

kernel void int8_dot(global int* out, const int a, const int b, const int iters,
                     const int sink)
{
    int acc[CHAINS];
    for (int c = 0; c < CHAINS; ++c)
        acc[c] = (int)get_global_id(0) + c;
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int c = 0; c < CHAINS; ++c)
            acc[c] = dot4(a ^ c, b, acc[c]);
    }
    int s = 0;
    for (int c = 0; c < CHAINS; ++c)
        s ^= acc[c];
    if (sink)
        out[get_global_id(0)] = s;
}
#endif

kernel void empty(global int* out)
{
}

// dot4.h: a 4-way int8 dot product with accumulate, d = c + sum_i a.byte[i] * b.byte[i]
// (bytes as signed char), on the fastest path the device has.
//
//   USE_DP4A      NVIDIA dp4a through inline PTX (compute capability >= 6.1)
//   USE_KHR_DOT   cl_khr_integer_dot_product (not saturating: dot_4x8packed_ss_int + c)
//   neither       four multiply-adds on unpacked chars
//
// dot4 wraps modulo 2^32 on overflow on every path; callers bound K so it never happens.
#ifndef WORKBENCH_DOT4_H
#define WORKBENCH_DOT4_H

#if defined(USE_DP4A)
inline int dot4(int a, int b, int c)
{
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
#elif defined(USE_KHR_DOT)
#pragma OPENCL EXTENSION cl_khr_integer_dot_product : enable
inline int dot4(int a, int b, int c)
{
    return c + dot_4x8packed_ss_int((uint)a, (uint)b);
}
#else
inline int dot4(int a, int b, int c)
{
    const char4 x = as_char4(a), y = as_char4(b);
    return c + (int)x.s0 * (int)y.s0 + (int)x.s1 * (int)y.s1
             + (int)x.s2 * (int)y.s2 + (int)x.s3 * (int)y.s3;
}
#endif

#endif

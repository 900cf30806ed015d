// quant.cl: quantization and integer matrix kernels.
//
// Conventions (the same as workbench/quant/params.py, which is the reference):
//   q = clamp(rint(x / scale) + zero_point, qmin, qmax)      rint: round half to even
//   x_hat = (q - zero_point) * scale
// Division is correctly rounded (the host builds with -cl-fp32-correctly-rounded-divide-sqrt)
// and contraction is off, so every kernel here matches its NumPy reference bit for bit.
//
// Kernels
//   quantize, dequantize, fake_quantize   elementwise, per tensor or per channel (channel index
//                                         c = (i / inner) % channels)
//   quantize_pad        float (M, K) -> int8 (Mp, Kp), per tensor, zeros in the padding
//   pack_int4 / unpack_int4               two's complement nibbles, element 2i in the low nibble
//   i8gemm_tiled        GPU: C = A B^T on int8 words (4 per int), BM x BN tiles in local memory
//                       double-buffered, TM x TN accumulators per work-item, dot4 (dot4.h)
//   pack_a_pairs, i8gemm_pmadd  x86 CPUs (PoCL): vpmaddwd through inline assembly, MR rows x
//                       8 NB columns per work-item (USE_X86_PMADDWD, set by the host)
//   pack_a_i8, i8gemm_packed   any CPU: MR rows x NV*16 columns per work-item; exact FP32 FMA
//                       blocks of 1024 steps summed into int32 (see the section's comment)
//   int4_gemv           y = x W^T with W packed int4 (N rows of K nibbles), per-row scales, float x
//   int4_gemv_rows      the same, one work-item per ROWS outputs (CPUs)
//   int4_prepare_x      int4_gemv's x operand from the raw x: zero-padded rows and, for the
//                       subnormal unpack, the per-element scaling and per-row (sum x, S)
//
// Every GEMM ends in the same epilogue (mode): 0 int32 accumulators; 1 float
//   y = (acc - za * colsum_b[n]) * (sa * sb[n]) + bias[n], optional ReLU; 2 the same then
//   requantized to int8 with (so, zo).
//
// Tunables: BM, BN, BKW (k in 4-byte words per tile), TM, TN (i8gemm_tiled); MR, NV (i8gemm_packed);
// MR, NB (i8gemm_pmadd);
// WG, ROWS, UNPACK_DENORMAL (int4_gemv); PREP_WG (int4_prepare_x); USE_DP4A / USE_KHR_DOT select
// dot4's path.

#pragma OPENCL FP_CONTRACT OFF
#include "dot4.h"

#ifndef BM
#define BM 128
#endif
#ifndef BN
#define BN 128
#endif
#ifndef BKW
#define BKW 8
#endif
#ifndef TM
#define TM 8
#endif
#ifndef TN
#define TN 8
#endif
#ifndef MR
#define MR 8
#endif
#ifndef NV
#define NV 2
#endif
#ifndef WG
#define WG 128
#endif
#ifndef ROWS
#define ROWS 4
#endif

inline char quantize_one(const float x, const float scale, const int zp, const int qmin, const int qmax)
{
    const float q = rint(x / scale) + (float)zp;
    return (char)clamp(q, (float)qmin, (float)qmax);
}

// ---------------------------------------------------------------------------------------------
// elementwise
// ---------------------------------------------------------------------------------------------
kernel void quantize(const global float* restrict x, global char* restrict q,
                     const global float* restrict scale, const global int* restrict zp,
                     const int n, const int channels, const int inner, const int qmin, const int qmax)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int c = (i / inner) % channels;
    q[i] = quantize_one(x[i], scale[c], zp[c], qmin, qmax);
}

kernel void dequantize(const global char* restrict q, global float* restrict x,
                       const global float* restrict scale, const global int* restrict zp,
                       const int n, const int channels, const int inner)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int c = (i / inner) % channels;
    x[i] = (float)((int)q[i] - zp[c]) * scale[c];
}

kernel void fake_quantize(const global float* restrict x, global float* restrict y,
                          const global float* restrict scale, const global int* restrict zp,
                          const int n, const int channels, const int inner, const int qmin, const int qmax)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int c = (i / inner) % channels;
    y[i] = (float)((int)quantize_one(x[i], scale[c], zp[c], qmin, qmax) - zp[c]) * scale[c];
}

// Global size (Kp, Mp).
kernel void quantize_pad(const global float* restrict x, global char* restrict q,
                         const float scale, const int zp, const int qmin, const int qmax,
                         const int M, const int K, const int Kp)
{
    const int k = get_global_id(0), m = get_global_id(1);
    q[(size_t)m * Kp + k] = (m < M && k < K) ? quantize_one(x[(size_t)m * K + k], scale, zp, qmin, qmax) : 0;
}

// Row-wise: each row of K values becomes (K + 1) / 2 bytes. Global size (bytes per row, rows).
kernel void pack_int4(const global char* restrict q, global uchar* restrict p, const int K)
{
    const int j = get_global_id(0), r = get_global_id(1);
    const int k = 2 * j;
    const int lo = q[(size_t)r * K + k] & 0xF;
    const int hi = k + 1 < K ? q[(size_t)r * K + k + 1] & 0xF : 0;
    p[(size_t)r * ((K + 1) / 2) + j] = (uchar)(lo | (hi << 4));
}

kernel void unpack_int4(const global uchar* restrict p, global char* restrict q, const int K)
{
    const int k = get_global_id(0), r = get_global_id(1);
    const int b = p[(size_t)r * ((K + 1) / 2) + k / 2];
    const int nib = (k & 1) ? (b >> 4) : (b & 0xF);
    q[(size_t)r * K + k] = (char)(nib >= 8 ? nib - 16 : nib);
}

// ---------------------------------------------------------------------------------------------
// GEMM epilogue
// ---------------------------------------------------------------------------------------------
inline void epilogue(global int* restrict C, const int row, const int col, const int ldc, int acc,
                     const int mode, const int za, const float sa, const global float* restrict sb,
                     const global int* restrict colsum, const global float* restrict bias,
                     const int relu, const float so, const int zo)
{
    if (mode == 0) {
        C[(size_t)row * ldc + col] = acc;
        return;
    }
    acc -= za * colsum[col];
    float y = (float)acc * (sa * sb[col]) + bias[col];
    if (relu)
        y = fmax(y, 0.0f);
    if (mode == 1)
        ((global float*)C)[(size_t)row * ldc + col] = y;
    else
        ((global char*)C)[(size_t)row * ldc + col] = quantize_one(y, so, zo, -128, 127);
}

#define EPILOGUE_ARGS const int mode, const int za, const float sa, const global float* restrict sb, \
    const global int* restrict colsum, const global float* restrict bias, const int relu,           \
    const float so, const int zo
#define EPILOGUE_PASS mode, za, sa, sb, colsum, bias, relu, so, zo

// ---------------------------------------------------------------------------------------------
// i8gemm_tiled (GPU)
// ---------------------------------------------------------------------------------------------
// A: (Mp, Kw) int words (4 int8 along K each), B: (Np, Kw) the same for B^T. Mp, Np multiples of
// BM, BN; Kw a multiple of BKW. Local size (BN / TN, BM / TM); global (Np / TN, Mp / TM).
#define DIM_N (BN / TN)
#define DIM_M (BM / TM)
#define THREADS (DIM_N * DIM_M)
#define LDS_M (BM + 4) // +4 words: conflict-free transposing stores, int4-aligned rows
#define LDS_N (BN + 4)
#define VA (BM * BKW / 4 / THREADS) // int4 loads per thread per tile
#define VB (BN * BKW / 4 / THREADS)
#if VA < 1 || VB < 1 || (BM * BKW / 4) % THREADS || (BN * BKW / 4) % THREADS
#error "i8gemm_tiled: every thread must load whole int4s of each tile (BM*BKW/4 and BN*BKW/4 multiples of the thread count)"
#endif

__attribute__((reqd_work_group_size(DIM_N, DIM_M, 1)))
kernel void i8gemm_tiled(const global int4* restrict A, const global int4* restrict B,
                         global int* restrict C, const int M, const int N, const int Kw,
                         const int ldc, EPILOGUE_ARGS)
{
    local int As[2][BKW][LDS_M] __attribute__((aligned(16)));
    local int Bs[2][BKW][LDS_N] __attribute__((aligned(16)));
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * DIM_N + tx;
    const int bm = get_group_id(1) * BM, bn = get_group_id(0) * BN;
    const int Kw4 = Kw / 4;
    const int nk = Kw / BKW;
    int4 ra[VA], rb[VB];

#define LOAD_TILE(kt)                                                                   \
    for (int l = 0; l < VA; ++l) {                                                      \
        const int idx = tid + l * THREADS, r = idx / (BKW / 4), c = idx % (BKW / 4);    \
        ra[l] = A[(size_t)(bm + r) * Kw4 + (kt) * (BKW / 4) + c];                        \
    }                                                                                   \
    for (int l = 0; l < VB; ++l) {                                                      \
        const int idx = tid + l * THREADS, r = idx / (BKW / 4), c = idx % (BKW / 4);    \
        rb[l] = B[(size_t)(bn + r) * Kw4 + (kt) * (BKW / 4) + c];                        \
    }
#define STORE_TILE(buf)                                                                 \
    for (int l = 0; l < VA; ++l) {                                                      \
        const int idx = tid + l * THREADS, r = idx / (BKW / 4), c = 4 * (idx % (BKW / 4)); \
        As[buf][c][r] = ra[l].x; As[buf][c + 1][r] = ra[l].y;                           \
        As[buf][c + 2][r] = ra[l].z; As[buf][c + 3][r] = ra[l].w;                       \
    }                                                                                   \
    for (int l = 0; l < VB; ++l) {                                                      \
        const int idx = tid + l * THREADS, r = idx / (BKW / 4), c = 4 * (idx % (BKW / 4)); \
        Bs[buf][c][r] = rb[l].x; Bs[buf][c + 1][r] = rb[l].y;                           \
        Bs[buf][c + 2][r] = rb[l].z; Bs[buf][c + 3][r] = rb[l].w;                       \
    }

    int acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
            acc[i][j] = 0;

    LOAD_TILE(0)
    STORE_TILE(0)
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kt = 0; kt < nk; ++kt) {
        const int buf = kt & 1;
        if (kt + 1 < nk) {
            LOAD_TILE(kt + 1)
        }
#pragma unroll
        for (int kw = 0; kw < BKW; ++kw) {
            int a[TM], b[TN];
#pragma unroll
            for (int q = 0; q < TM / 4; ++q) {
                const int4 t = *(local const int4*)&As[buf][kw][ty * TM + 4 * q];
                a[4 * q] = t.x; a[4 * q + 1] = t.y; a[4 * q + 2] = t.z; a[4 * q + 3] = t.w;
            }
#pragma unroll
            for (int j = 0; j < TN; ++j)
                b[j] = Bs[buf][kw][tx + j * DIM_N];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j)
                    acc[i][j] = dot4(a[i], b[j], acc[i][j]);
        }
        if (kt + 1 < nk) {
            STORE_TILE(buf ^ 1)
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int row = bm + ty * TM + i;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int col = bn + tx + j * DIM_N;
            if (row < M && col < N)
                epilogue(C, row, col, ldc, acc[i][j], EPILOGUE_PASS);
        }
    }
#undef LOAD_TILE
#undef STORE_TILE
}

// ---------------------------------------------------------------------------------------------
// i8gemm_packed (CPU)
// ---------------------------------------------------------------------------------------------
// x86 as PoCL targets it has no int8 dot product, and its compiler does not form pmaddwd from
// OpenCL C, so the fastest exact multiply-add is the FP32 FMA: every int8 x int8 product
// (|p| <= 2^14) and every partial sum of at most KB = 1024 of them (|s| <= 2^24) is an integer
// that float32 holds exactly. Each block of KB steps is summed in float32, then added to int32
// accumulators, so the result is exact for any K <= 131,071. B stays int8 in memory (a quarter
// of SGEMM's traffic) and is widened in registers; A is widened once while packing.
#define NR (NV * 16)
#define KB 1024

// Ap[ip][k][r] = (float)A[ip*MR + r][k], zero past M. Global size (Kp, Mp / MR).
kernel void pack_a_i8(const global char* restrict A, global float* restrict Ap, const int M,
                      const int K, const int Kp)
{
    const int k = get_global_id(0), ip = get_global_id(1);
    global float* dst = Ap + ((size_t)ip * Kp + k) * MR;
    for (int r = 0; r < MR; ++r) {
        const int i = ip * MR + r;
        dst[r] = (i < M && k < K) ? (float)A[(size_t)i * K + k] : 0.0f;
    }
}

// Ap from pack_a_i8; Bp[jp][k][c] = B[k][jp*NR + c] int8 (host-packed, zero padded).
// Global size (Np / NR, Mp / MR), local size (1, LM).
kernel void i8gemm_packed(const global float* restrict Ap, const global char* restrict Bp,
                          global int* restrict C, const int M, const int N, const int Kp,
                          const int ldc, EPILOGUE_ARGS)
{
    const int jp = get_global_id(0), ip = get_global_id(1);
    const global float* a = Ap + (size_t)ip * Kp * MR;
    const global char16* b = (const global char16*)(Bp + (size_t)jp * Kp * NR);
    int16 total[MR][NV];
#pragma unroll
    for (int r = 0; r < MR; ++r)
#pragma unroll
        for (int v = 0; v < NV; ++v)
            total[r][v] = (int16)(0);

    for (int k0 = 0; k0 < Kp; k0 += KB) {
        const int k1 = min(k0 + KB, Kp);
        float16 acc[MR][NV];
#pragma unroll
        for (int r = 0; r < MR; ++r)
#pragma unroll
            for (int v = 0; v < NV; ++v)
                acc[r][v] = (float16)(0.0f);
        for (int k = k0; k < k1; ++k) {
            float16 bv[NV];
#pragma unroll
            for (int v = 0; v < NV; ++v)
                bv[v] = convert_float16(b[k * NV + v]);
#pragma unroll
            for (int r = 0; r < MR; ++r) {
                const float16 av = (float16)(a[k * MR + r]);
#pragma unroll
                for (int v = 0; v < NV; ++v)
                    acc[r][v] = fma(av, bv[v], acc[r][v]);
            }
        }
#pragma unroll
        for (int r = 0; r < MR; ++r)
#pragma unroll
            for (int v = 0; v < NV; ++v)
                total[r][v] += convert_int16(acc[r][v]);
    }

    for (int r = 0; r < MR; ++r) {
        const int row = ip * MR + r;
        if (row >= M)
            break;
        for (int v = 0; v < NV; ++v) {
            int t[16];
            vstore16(total[r][v], 0, t);
            for (int c = 0; c < 16; ++c) {
                const int col = jp * NR + v * 16 + c;
                if (col < N)
                    epilogue(C, row, col, ldc, t[c], EPILOGUE_PASS);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// i8gemm_pmadd (x86 CPUs through PoCL, USE_X86_PMADDWD)
// ---------------------------------------------------------------------------------------------
// The integer path the compiler would not find on its own, written as inline assembly: each
// vpmaddwd multiplies 16 pairs of int16 lanes and adds neighbours into 8 int32 lanes (16 exact
// multiply-adds per instruction, twice an FP32 FMA's 8). (The fused VNNI vpdpwssd measured slower
// here: its read-modify-write operand serializes the accumulators.) A holds (a[k], a[k+1]) pairs as one int each, broadcast to all lanes; B holds,
// per k-pair, 8 NB columns as (b[k][c], b[k+1][c]) bytes, widened to int16 in registers.
#ifdef USE_X86_PMADDWD
#ifndef NB
#define NB 3
#endif

// Ap[ip][k2][r] = (short)A[i][2 k2] | (short)A[i][2 k2 + 1] << 16, i = ip MR + r, zero padded.
// Global size (Kp / 2, Mp / MR).
kernel void pack_a_pairs(const global char* restrict A, global int* restrict Ap, const int M,
                         const int K, const int Kp)
{
    const int k2 = get_global_id(0), ip = get_global_id(1);
    global int* dst = Ap + ((size_t)ip * (Kp / 2) + k2) * MR;
    for (int r = 0; r < MR; ++r) {
        const int i = ip * MR + r, k = 2 * k2;
        const int lo = (i < M && k < K) ? A[(size_t)i * K + k] : 0;
        const int hi = (i < M && k + 1 < K) ? A[(size_t)i * K + k + 1] : 0;
        dst[r] = (lo & 0xFFFF) | (hi << 16);
    }
}

// Global size (Np / (8 NB), Mp / MR), local size (1, LM).
kernel void i8gemm_pmadd(const global int* restrict Ap, const global char16* restrict Bp,
                         global int* restrict C, const int M, const int N, const int Kp,
                         const int ldc, EPILOGUE_ARGS)
{
    const int jp = get_global_id(0), ip = get_global_id(1);
    const global int* a = Ap + (size_t)ip * (Kp / 2) * MR;
    const global char16* b = Bp + (size_t)jp * (Kp / 2) * NB;
    int8 acc[MR][NB];
#pragma unroll
    for (int r = 0; r < MR; ++r)
#pragma unroll
        for (int v = 0; v < NB; ++v)
            acc[r][v] = (int8)(0);
    for (int k2 = 0; k2 < Kp / 2; ++k2) {
        short16 bv[NB];
#pragma unroll
        for (int v = 0; v < NB; ++v)
            bv[v] = convert_short16(b[k2 * NB + v]);
#pragma unroll
        for (int r = 0; r < MR; ++r) {
            const short16 av = as_short16((int8)(a[k2 * MR + r]));
#pragma unroll
            for (int v = 0; v < NB; ++v) {
                int8 p;
                __asm__("vpmaddwd %2, %1, %0" : "=x"(p) : "x"(av), "x"(bv[v]));
                acc[r][v] += p;
            }
        }
    }
    for (int r = 0; r < MR; ++r) {
        const int row = ip * MR + r;
        if (row >= M)
            break;
        for (int v = 0; v < NB; ++v) {
            int t[8];
            vstore8(acc[r][v], 0, t);
            for (int c = 0; c < 8; ++c) {
                const int col = jp * 8 * NB + v * 8 + c;
                if (col < N)
                    epilogue(C, row, col, ldc, t[c], EPILOGUE_PASS);
            }
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// int4_gemv
// ---------------------------------------------------------------------------------------------
// W: N rows of Kq uint4 words (32 nibbles each, element k of a row in nibble k, low first),
// x: M rows of ldx >= 32 Kq floats (zero past K). y[m, n] = scale[n] * sum_k W[n, k] x[m, k]
// (+ bias[n]). Work-group: WG threads over ROWS rows; global size (WG * ceil(N / ROWS), M).
//
// Two ways to turn a nibble into a float without an int-to-float conversion (a quarter-rate
// instruction on NVIDIA GPUs), both after v = w ^ 0x88888888, which turns each two's complement
// nibble q into offset binary u = q + 8:
//  * magic (default): the float with bits 0x4B000000 | u is 2^23 + u exactly; subtract 2^23 + 8.
//    A shift, an and-or and an fsub per nibble before the fma.
//  * UNPACK_DENORMAL: the float with bits v & (0xF << 4j) is the subnormal u 2^(4j - 149) exactly
//    (j = 0..4; nibbles 5..7 the same from v >> 20). With x pre-scaled (int4_prepare_x below;
//    its NumPy reference is quant/int4.py's subnormal_prescale) to x_k 2^(149 - 4j - S), the fma
//    accumulates 2^-S sum u x,
//    and y = 2^S acc - 8 sum x, with info[m] = (sum x, S). One and per nibble before the fma.
//    int4_prepare_x does that scaling on the device in the same call.
//    Needs subnormal floats (CL_FP_DENORM), which the host checks before setting the macro;
//    the CPU kernel keeps the magic path.
inline float8 unpack8_nibbles(const uint w)
{
    const uint8 u = ((uint8)(w ^ 0x88888888u) >> (uint8)(0, 4, 8, 12, 16, 20, 24, 28)) & (uint8)(0xFu);
    return as_float8(u | (uint8)(0x4B000000u)) - (float8)(8388616.0f);
}

inline float8 unpack8_subnormal(const uint w)
{
    const uint v = w ^ 0x88888888u, h = v >> 20;
    return as_float8((uint8)(v & 0xFu, v & 0xF0u, v & 0xF00u, v & 0xF000u, v & 0xF0000u,
                             h & 0xFu, h & 0xF0u, h & 0xF00u));
}

inline float dot8(const float8 a, const float8 b, float acc)
{
    acc = fma(a.s0, b.s0, acc); acc = fma(a.s1, b.s1, acc);
    acc = fma(a.s2, b.s2, acc); acc = fma(a.s3, b.s3, acc);
    acc = fma(a.s4, b.s4, acc); acc = fma(a.s5, b.s5, acc);
    acc = fma(a.s6, b.s6, acc); acc = fma(a.s7, b.s7, acc);
    return acc;
}

#ifdef UNPACK_DENORMAL
#define UNPACK8 unpack8_subnormal
#else
#define UNPACK8 unpack8_nibbles
#endif

// Each work-item loads its ROWS words first (ROWS x 16 bytes in flight), then reads the 32 x
// values once for all ROWS rows; scalar accumulators leave registers for more rows. Rows past
// N read row N - 1 (no branch in the loop) and are not stored.
__attribute__((reqd_work_group_size(WG, 1, 1)))
kernel void int4_gemv(const global uint4* restrict W, const global float* restrict scale,
                      const global float* restrict bias, const global float* restrict X,
                      const global float2* restrict info, global float* restrict Y, const int N,
                      const int Kq, const int ldx, const int ldy, const int has_bias)
{
    local float red[ROWS][WG];
    const int lid = get_local_id(0), n0 = get_group_id(0) * ROWS, m = get_global_id(1);
    const global float8* x = (const global float8*)(X + (size_t)m * ldx);
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
        acc[r] = 0.0f;
    for (int kq = lid; kq < Kq; kq += WG) {
        uint4 w[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
            w[r] = W[(size_t)min(n0 + r, N - 1) * Kq + kq];
        const float8 x0 = x[4 * kq], x1 = x[4 * kq + 1], x2 = x[4 * kq + 2], x3 = x[4 * kq + 3];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            float a = acc[r];
            a = dot8(UNPACK8(w[r].x), x0, a);
            a = dot8(UNPACK8(w[r].y), x1, a);
            a = dot8(UNPACK8(w[r].z), x2, a);
            a = dot8(UNPACK8(w[r].w), x3, a);
            acc[r] = a;
        }
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
        red[r][lid] = acc[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            for (int r = 0; r < ROWS; ++r)
                red[r][lid] += red[r][lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid < ROWS && n0 + lid < N) {
        const int n = n0 + lid;
#ifdef UNPACK_DENORMAL
        const float2 mi = info[m];
        const float dot = ldexp(red[lid][0], (int)mi.y) - 8.0f * mi.x;
#else
        const float dot = red[lid][0];
#endif
        Y[(size_t)m * ldy + n] = dot * scale[n] + (has_bias ? bias[n] : 0.0f);
    }
}

// int4_prepare_x: from x (M rows of K floats) the int4_gemv operand Xp (M rows of ldx >= K
// floats, zero past K). With UNPACK_DENORMAL, element k is scaled by 2^(149 - 4j - S), j its
// nibble position in its 32-bit word (k mod 8, less 5 from 5 up), S = ilogb(max_k |x_k|) + 24
// (0 for an all-zero row), so no value exceeds 2^126; and info[m] = (sum_k x_k, S), the sum
// compensated (Neumaier within a work-item, TwoSum through the tree) because the epilogue's
// 8 sum x cancels against the offset-binary accumulator. One work-group of PREP_WG work-items
// per row: global (PREP_WG, M), local (PREP_WG, 1).
#ifndef PREP_WG
#define PREP_WG 256
#endif

inline float2 two_sum(const float a, const float b)  // (a + b rounded, its exact error)
{
    const float s = a + b, bb = s - a;
    return (float2)(s, (a - (s - bb)) + (b - bb));
}

__attribute__((reqd_work_group_size(PREP_WG, 1, 1)))
kernel void int4_prepare_x(const global float* restrict X, global float* restrict Xp,
                           global float2* restrict info, const int K, const int ldx)
{
    const int lid = get_local_id(0), m = get_group_id(1);
    const global float* x = X + (size_t)m * K;
    global float* xp = Xp + (size_t)m * ldx;
#ifdef UNPACK_DENORMAL
    local float peak[PREP_WG], hi[PREP_WG], lo[PREP_WG];
    float p = 0.0f, s = 0.0f, c = 0.0f;
    for (int k = lid; k < K; k += PREP_WG) {
        const float v = x[k];
        p = fmax(p, fabs(v));
        const float2 t = two_sum(s, v);
        s = t.x;
        c += t.y;
    }
    peak[lid] = p;
    hi[lid] = s;
    lo[lid] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = PREP_WG / 2; w > 0; w >>= 1) {
        if (lid < w) {
            peak[lid] = fmax(peak[lid], peak[lid + w]);
            const float2 t = two_sum(hi[lid], hi[lid + w]);
            hi[lid] = t.x;
            lo[lid] += lo[lid + w] + t.y;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float top = peak[0];
    const int S = top > 0.0f ? ilogb(top) + 24 : 0;
    if (lid == 0)
        info[m] = (float2)(hi[0] + lo[0], (float)S);
    for (int k = lid; k < ldx; k += PREP_WG) {
        const int j = k & 7, shift = 4 * (j < 5 ? j : j - 5);
        xp[k] = k < K ? ldexp(x[k], 149 - shift - S) : 0.0f;
    }
#else
    for (int k = lid; k < ldx; k += PREP_WG)
        xp[k] = k < K ? x[k] : 0.0f;
#endif
}

// int4_gemv_rows (CPU): one work-item computes ROWS outputs over the whole of K, with no
// work-group reduction (barriers are costly on CPU runtimes). Same arguments as int4_gemv;
// global size (ceil(N / ROWS), M), any local size.
kernel void int4_gemv_rows(const global uint4* restrict W, const global float* restrict scale,
                           const global float* restrict bias, const global float* restrict X,
                           const global float2* restrict info, global float* restrict Y,
                           const int N, const int Kq, const int ldx, const int ldy, const int has_bias)
{
    const int n0 = get_global_id(0) * ROWS, m = get_global_id(1);
    const global float8* x = (const global float8*)(X + (size_t)m * ldx);
    const int rows = min(ROWS, N - n0);
    float8 acc[ROWS]; // lane sums, reduced once at the end
    for (int r = 0; r < ROWS; ++r)
        acc[r] = (float8)(0.0f);
    for (int kq = 0; kq < Kq; ++kq) {
        const float8 x0 = x[4 * kq], x1 = x[4 * kq + 1], x2 = x[4 * kq + 2], x3 = x[4 * kq + 3];
        for (int r = 0; r < rows; ++r) {
            const uint4 w = W[(size_t)(n0 + r) * Kq + kq];
            acc[r] = fma(unpack8_nibbles(w.x), x0, acc[r]);
            acc[r] = fma(unpack8_nibbles(w.y), x1, acc[r]);
            acc[r] = fma(unpack8_nibbles(w.z), x2, acc[r]);
            acc[r] = fma(unpack8_nibbles(w.w), x3, acc[r]);
        }
    }
    for (int r = 0; r < rows; ++r) {
        const float8 a = acc[r];
        const float sum = ((a.s0 + a.s1) + (a.s2 + a.s3)) + ((a.s4 + a.s5) + (a.s6 + a.s7));
        Y[(size_t)m * ldy + n0 + r] = sum * scale[n0 + r] + (has_bias ? bias[n0 + r] : 0.0f);
    }
}

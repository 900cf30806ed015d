// gemm.cl - single-precision matrix product C = A B (row-major, float32).
//
// Shapes: A is M x K, B is K x N, C is M x N, all row-major and dense.
//
// Variants (the host picks by device type and shape, see workbench/ops.py):
//   sgemm_direct   any M, N, K; bounds-checked 16x16 tiles in local memory, one output per
//                  work-item. For small or very thin products where the others do not pay.
//   sgemm_tiled    GPU. A work-group computes a BM x BN block of C with DIM_N x DIM_M work-items,
//                  each owning TM x TN outputs laid out as float4 quads strided by 4*DIM so that
//                  neighbouring work-items read neighbouring float4s from local memory (128-bit
//                  accesses, no bank conflicts). The A and B tiles of depth BK are double-buffered in local memory
//                  and the next tile is prefetched into registers while the current one is used,
//                  so there is one barrier per BK step. Needs M % BM == 0, N % BN == 0,
//                  K % BK == 0: the host pads other shapes with zeros.
//   pad_copy       dst[i][j] = src[i][j] for i < rows, j < cols, else 0, over the global size
//                  (dst's columns, dst's rows): pads A and B up to tile multiples before
//                  sgemm_tiled, and with a smaller dst crops the padded C back.
//   pack_a, pack_b, sgemm_packed
//                  CPU (PoCL and other CPU drivers). The BLIS idea: A is packed into row panels
//                  Ap[M/MR][K][MR], B into column panels Bp[N/NR][K][NR] (zero-padded edges), and
//                  each work-item runs a register-blocked micro-kernel that keeps an MR x NR block
//                  of C in MR*NV vector registers (NR = NV*16 floats, float16 vectors), reading
//                  both panels contiguously. Work-groups of (1, LM) work-items share one B panel,
//                  which stays in L2 while LM row panels stream past it.
//
// Tunables (upper-case macros; the host prepends values from gemm.tuning.json):
//   BM, BN, BK, TM, TN    sgemm_tiled block and per-work-item sizes (TM, TN multiples of 4)
//   MR, NV                sgemm_packed micro-kernel: MR rows by NV float16 vectors of columns
//   (LM, the packed kernel's work-group height, is a launch parameter, not a macro)

#ifndef BM
#define BM 128
#endif
#ifndef BN
#define BN 128
#endif
#ifndef BK
#define BK 16
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

// ---------------------------------------------------------------------------------------------
// sgemm_direct
// ---------------------------------------------------------------------------------------------
#define TSD 16

__attribute__((reqd_work_group_size(TSD, TSD, 1)))
kernel void sgemm_direct(const global float* restrict A, const global float* restrict B,
                         global float* restrict C, const int M, const int N, const int K)
{
    local float As[TSD][TSD];
    local float Bs[TSD][TSD + 1];  // +1: the column reads below would otherwise hit one bank
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int col = get_group_id(0) * TSD + tx;
    const int row = get_group_id(1) * TSD + ty;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TSD) {
        As[ty][tx] = (row < M && k0 + tx < K) ? A[(size_t)row * K + k0 + tx] : 0.0f;
        Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(size_t)(k0 + ty) * N + col] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TSD; ++k)
            acc = fma(As[ty][k], Bs[k][tx], acc);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (row < M && col < N)
        C[(size_t)row * N + col] = acc;
}

// ---------------------------------------------------------------------------------------------
// sgemm_tiled
// ---------------------------------------------------------------------------------------------
#define DIM_M (BM / TM)             // work-items along M (local id 1)
#define DIM_N (BN / TN)             // work-items along N (local id 0)
#define NTHREADS (DIM_M * DIM_N)
#define QM (TM / 4)                 // float4 quads per work-item along M
#define QN (TN / 4)                 // and along N
#define LA (BM * BK / 4 / NTHREADS) // float4 loads of the A tile per work-item
#define LB (BK * BN / 4 / NTHREADS) // and of the B tile

#if (BM * BK / 4) % NTHREADS != 0 || (BK * BN / 4) % NTHREADS != 0 || TM % 4 != 0 || TN % 4 != 0 || BK % 4 != 0
#error "sgemm_tiled: tile loads must divide evenly among work-items; TM, TN, BK multiples of 4"
#endif

__attribute__((reqd_work_group_size(DIM_N, DIM_M, 1)))
kernel void sgemm_tiled(const global float4* restrict A, const global float4* restrict B,
                        global float4* restrict C, const int M, const int N, const int K)
{
    // Tiles are float4-typed so that every local read is one 128-bit access. The A tile is
    // stored transposed (k-major), so that a k-row of it is contiguous along M.
    local float4 As[2][BK][BM / 4];
    local float4 Bs[2][BK][BN / 4];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * DIM_N + tx;
    const int bm = get_group_id(1) * BM;
    const int bn = get_group_id(0) * BN;
    const int K4 = K / 4, N4 = N / 4;
    const int nk = K / BK;

    float4 ra[LA], rb[LB];
    float4 acc[TM][QN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int q = 0; q < QN; ++q)
            acc[i][q] = (float4)(0.0f);

#define LOAD_TILE(kt)                                                                   \
    _Pragma("unroll") for (int l = 0; l < LA; ++l) {                                    \
        const int idx = tid + l * NTHREADS;                                             \
        ra[l] = A[(size_t)(bm + idx / (BK / 4)) * K4 + (kt) * (BK / 4) + idx % (BK / 4)]; \
    }                                                                                   \
    _Pragma("unroll") for (int l = 0; l < LB; ++l) {                                    \
        const int idx = tid + l * NTHREADS;                                             \
        rb[l] = B[(size_t)((kt) * BK + idx / (BN / 4)) * N4 + bn / 4 + idx % (BN / 4)]; \
    }

#define STORE_TILE(buf)                                                                 \
    _Pragma("unroll") for (int l = 0; l < LA; ++l) {                                    \
        const int idx = tid + l * NTHREADS;                                             \
        const int r = idx / (BK / 4), c = (idx % (BK / 4)) * 4;                         \
        ((local float*)As[buf][c + 0])[r] = ra[l].x;                                    \
        ((local float*)As[buf][c + 1])[r] = ra[l].y;                                    \
        ((local float*)As[buf][c + 2])[r] = ra[l].z;                                    \
        ((local float*)As[buf][c + 3])[r] = ra[l].w;                                    \
    }                                                                                   \
    _Pragma("unroll") for (int l = 0; l < LB; ++l) {                                    \
        const int idx = tid + l * NTHREADS;                                             \
        Bs[buf][idx / (BN / 4)][idx % (BN / 4)] = rb[l];                                \
    }

    LOAD_TILE(0)
    STORE_TILE(0)
    barrier(CLK_LOCAL_MEM_FENCE);

    for (int kt = 0; kt < nk; ++kt) {
        const int buf = kt & 1;
        if (kt + 1 < nk) {
            LOAD_TILE(kt + 1)  // global loads in flight while the FMAs below run
        }
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            float a[TM];
            float4 b[QN];
#pragma unroll
            for (int q = 0; q < QM; ++q) {
                const float4 t = As[buf][k][q * DIM_M + ty];
                a[q * 4 + 0] = t.x;
                a[q * 4 + 1] = t.y;
                a[q * 4 + 2] = t.z;
                a[q * 4 + 3] = t.w;
            }
#pragma unroll
            for (int q = 0; q < QN; ++q)
                b[q] = Bs[buf][k][q * DIM_N + tx];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int q = 0; q < QN; ++q)
                    acc[i][q] = fma((float4)(a[i]), b[q], acc[i][q]);
        }
        if (kt + 1 < nk) {
            STORE_TILE(buf ^ 1)
        }
        // One barrier per step: the other buffer was last read before the previous barrier.
        barrier(CLK_LOCAL_MEM_FENCE);
    }

#pragma unroll
    for (int qm = 0; qm < QM; ++qm)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int row = bm + qm * DIM_M * 4 + ty * 4 + i;
#pragma unroll
            for (int q = 0; q < QN; ++q)
                C[(size_t)row * N4 + bn / 4 + q * DIM_N + tx] = acc[qm * 4 + i][q];
        }
#undef LOAD_TILE
#undef STORE_TILE
}

// ---------------------------------------------------------------------------------------------
// pad_copy
// ---------------------------------------------------------------------------------------------
// dst is rows_d x cols_d; ld_src and ld_dst are the row strides in floats. Global size: dst's
// columns and rows rounded up to 16x16 work-groups (the host fixes the local size: left to the
// driver, odd sizes such as 1000 got tiny work-groups and the pads cost more than the product).
__attribute__((reqd_work_group_size(16, 16, 1)))
kernel void pad_copy(const global float* restrict src, global float* restrict dst,
                     const int rows, const int cols, const int ld_src, const int ld_dst,
                     const int rows_d, const int cols_d)
{
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= rows_d || j >= cols_d)
        return;
    dst[(size_t)i * ld_dst + j] = (i < rows && j < cols) ? src[(size_t)i * ld_src + j] : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// pack_a, pack_b, sgemm_packed (CPU)
// ---------------------------------------------------------------------------------------------
#define NR (NV * 16)

// Ap[ip][k][r] = A[ip*MR + r][k], zero past M. Global size (K, Mp/MR).
kernel void pack_a(const global float* restrict A, global float* restrict Ap,
                   const int M, const int K)
{
    const int k = get_global_id(0), ip = get_global_id(1);
    global float* dst = Ap + ((size_t)ip * K + k) * MR;
    for (int r = 0; r < MR; ++r) {
        const int i = ip * MR + r;
        dst[r] = i < M ? A[(size_t)i * K + k] : 0.0f;
    }
}

// Bp[jp][k][c] = B[k][jp*NR + c], zero past N. Global size (K, Np/NR).
kernel void pack_b(const global float* restrict B, global float* restrict Bp,
                   const int N, const int K)
{
    const int k = get_global_id(0), jp = get_global_id(1);
    global float* dst = Bp + ((size_t)jp * K + k) * NR;
    const global float* src = B + (size_t)k * N + jp * NR;
    if (jp * NR + NR <= N) {
        for (int v = 0; v < NV; ++v)
            vstore16(vload16(v, src), v, dst);
    } else {
        for (int c = 0; c < NR; ++c)
            dst[c] = jp * NR + c < N ? src[c] : 0.0f;
    }
}

// Global size (Np/NR, Mp/MR), local size (1, LM).
kernel void sgemm_packed(const global float* restrict Ap, const global float* restrict Bp,
                         global float* restrict C, const int M, const int N, const int K)
{
    const int jp = get_global_id(0), ip = get_global_id(1);
    const global float* a = Ap + (size_t)ip * K * MR;
    const global float16* b = (const global float16*)(Bp + (size_t)jp * K * NR);
    float16 acc[MR][NV];
#pragma unroll
    for (int r = 0; r < MR; ++r)
#pragma unroll
        for (int v = 0; v < NV; ++v)
            acc[r][v] = (float16)(0.0f);

    for (int k = 0; k < K; ++k) {
        float16 bv[NV];
#pragma unroll
        for (int v = 0; v < NV; ++v)
            bv[v] = b[k * NV + v];
#pragma unroll
        for (int r = 0; r < MR; ++r) {
            const float16 av = (float16)(a[k * MR + r]);
#pragma unroll
            for (int v = 0; v < NV; ++v)
                acc[r][v] = fma(av, bv[v], acc[r][v]);
        }
    }

    const int i0 = ip * MR, j0 = jp * NR;
#pragma unroll
    for (int r = 0; r < MR; ++r) {
        if (i0 + r >= M)
            break;
        global float* crow = C + (size_t)(i0 + r) * N;
#pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int j = j0 + v * 16;
            if (j + 16 <= N) {
                vstore16(acc[r][v], 0, crow + j);
            } else {
                float t[16];
                vstore16(acc[r][v], 0, t);
                for (int c = 0; c < 16 && j + c < N; ++c)
                    crow[j + c] = t[c];
            }
        }
    }
}

// bsr.cl: block-sparse (BSR) times dense.
//
// A: Mb block rows of BR x BC blocks; block row I's blocks are blocks[ptr[I] .. ptr[I + 1]),
// block b at block column idx[b], stored row-major (BR * BC floats). B: dense, row-major,
// (Kb BC) x Np with ldb >= Np, zero rows past K. C: (Mb BR) x Np, ldc.
//
// bsr_matmul: a work-group computes one block row's BR x TW tile of C. For each stored block
// of the row it stages the block (transposed) and the BC x TW slice of B it meets in local
// memory, then every work-item adds the rank-BC update of its TM x TN outputs. The zero blocks
// are never touched: the work is nblocks BR BC TW multiply-adds per column tile, the dense
// product's times (1 - block sparsity).
// Global size (TW / TN * Np / TW, BR / TM * Mb), local (TW / TN, BR / TM); Np a multiple of TW.
//
// Tunables: BR, BC (the block shape), TW, TM, TN.

#ifndef BR
#define BR 32
#endif
#ifndef BC
#define BC 32
#endif
#ifndef TW
#define TW 128
#endif
#ifndef TM
#define TM 4
#endif
#ifndef TN
#define TN 4
#endif

#define TX (TW / TN)
#define TY (BR / TM)

__attribute__((reqd_work_group_size(TX, TY, 1)))
kernel void bsr_matmul(const global int* restrict ptr, const global int* restrict idx,
                       const global float* restrict blocks, const global float* restrict B,
                       global float* restrict C, const int ldb, const int ldc)
{
    local float As[BC][BR + 1]; // transposed: As[k][r]; +1 keeps the transposing stores apart
    local float Bs[BC][TW];
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int brow = get_group_id(1), col0 = get_group_id(0) * TW;
    float acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j)
            acc[i][j] = 0.0f;
    for (int b = ptr[brow]; b < ptr[brow + 1]; ++b) {
        const global float* blk = blocks + (size_t)b * (BR * BC);
        const global float* Bk = B + (size_t)idx[b] * BC * ldb + col0;
        for (int e = tid; e < BR * BC; e += TX * TY)
            As[e % BC][e / BC] = blk[e];
        for (int e = tid; e < BC * TW; e += TX * TY)
            Bs[e / TW][e % TW] = Bk[(size_t)(e / TW) * ldb + e % TW];
        barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll 4
        for (int k = 0; k < BC; ++k) {
            float a[TM], bv[TN];
            for (int i = 0; i < TM; ++i)
                a[i] = As[k][ty * TM + i];
            for (int j = 0; j < TN; ++j)
                bv[j] = Bs[k][tx + j * TX];
            for (int i = 0; i < TM; ++i)
                for (int j = 0; j < TN; ++j)
                    acc[i][j] = fma(a[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j)
            C[(size_t)(brow * BR + ty * TM + i) * ldc + col0 + tx + j * TX] = acc[i][j];
}

// bsr_matmul4: the same product with float4 local-memory reads, TM x TN register tiles (TM and
// TN multiples of 4) and the next block prefetched into registers while the current one is
// multiplied, so the global loads overlap the arithmetic. Blocks come pre-transposed (blocksT:
// block b is BC x BR, column k of the block contiguous), so staging them is a straight copy.
// Work-item (tx, ty) owns rows ty TM .. +TM and the float4 columns tx + j TX (j < TN / 4) of
// the tile: neighbouring work-items read neighbouring float4s, without bank conflicts.
// Global size as bsr_matmul; ldb and ldc multiples of 4.
#define NT (TX * TY)
#define NA4 (BR * BC / 4 / NT) // float4s of a block each work-item stages
#define NB4 (BC * TW / 4 / NT) // float4s of the B slice each work-item stages

__attribute__((reqd_work_group_size(TX, TY, 1)))
kernel void bsr_matmul4(const global int* restrict ptr, const global int* restrict idx,
                        const global float4* restrict blocksT, const global float4* restrict B,
                        global float4* restrict C, const int ldb, const int ldc)
{
    local float4 As[BC * BR / 4]; // As[k * BR / 4 + r / 4]: column k of the block
    local float4 Bs[BC * TW / 4]; // Bs[k * TW / 4 + c / 4]
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * TX + tx;
    const int brow = get_group_id(1), col4 = get_group_id(0) * (TW / 4);
    const int ldb4 = ldb / 4, ldc4 = ldc / 4;
    const int b0 = ptr[brow], b1 = ptr[brow + 1];
    float4 ra[NA4], rb[NB4];
    float acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j)
            acc[i][j] = 0.0f;
#define LOAD(b)                                                                                  \
    do {                                                                                         \
        const global float4* blk = blocksT + (size_t)(b) * (BR * BC / 4);                       \
        const global float4* Bk = B + (size_t)idx[b] * BC * ldb4 + col4;                         \
        for (int i = 0; i < NA4; ++i)                                                            \
            ra[i] = blk[tid + i * NT];                                                           \
        for (int i = 0; i < NB4; ++i) {                                                          \
            const int e = tid + i * NT;                                                          \
            rb[i] = Bk[(size_t)(e / (TW / 4)) * ldb4 + e % (TW / 4)];                            \
        }                                                                                        \
    } while (0)
    if (b0 < b1)
        LOAD(b0);
    for (int b = b0; b < b1; ++b) {
        barrier(CLK_LOCAL_MEM_FENCE); // the previous block's products are done
        for (int i = 0; i < NA4; ++i)
            As[tid + i * NT] = ra[i];
        for (int i = 0; i < NB4; ++i)
            Bs[tid + i * NT] = rb[i];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (b + 1 < b1)
            LOAD(b + 1); // in flight while this block is multiplied
#pragma unroll 4
        for (int k = 0; k < BC; ++k) {
            float a[TM], bv[TN];
            for (int i = 0; i < TM / 4; ++i) {
                const float4 v = As[k * (BR / 4) + ty * (TM / 4) + i];
                a[4 * i] = v.x; a[4 * i + 1] = v.y; a[4 * i + 2] = v.z; a[4 * i + 3] = v.w;
            }
            for (int j = 0; j < TN / 4; ++j) {
                const float4 v = Bs[k * (TW / 4) + tx + j * TX];
                bv[4 * j] = v.x; bv[4 * j + 1] = v.y; bv[4 * j + 2] = v.z; bv[4 * j + 3] = v.w;
            }
            for (int i = 0; i < TM; ++i)
                for (int j = 0; j < TN; ++j)
                    acc[i][j] = fma(a[i], bv[j], acc[i][j]);
        }
    }
#undef LOAD
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN / 4; ++j)
            C[(size_t)(brow * BR + ty * TM + i) * ldc4 + col4 + tx + j * TX] =
                (float4)(acc[i][4 * j], acc[i][4 * j + 1], acc[i][4 * j + 2], acc[i][4 * j + 3]);
}

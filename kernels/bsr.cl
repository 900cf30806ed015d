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

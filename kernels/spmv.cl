// spmv.cl: sparse (CSR) times dense kernels.
//
// A is M x K in CSR: row i's non-zeros are val[ptr[i] .. ptr[i + 1]) at columns idx[...].
//
// Kernels
//   spmv_scalar     y = A x, one work-item per row. Best for short rows, and on CPUs, where a
//                   work-item is a thread's loop iteration and rows are contiguous per work-group.
//   spmv_vector     y = A x, VEC work-items per row (a SIMD group, e.g. an NVIDIA warp), lanes
//                   stride the row (coalesced reads), a local-memory tree sums the lanes.
//   spmv_split      load-balanced row splitting for skewed row lengths (power-law graphs): the
//                   host cuts every row into units of at most CHUNK non-zeros (at least one unit
//                   per row); VEC lanes sum a unit. A row of one unit is written straight to y,
//                   longer rows leave a partial sum per unit that spmv_split_sum adds up. No
//                   work-item is stuck with a row of 10^5 non-zeros while the rest idle.
//   spmv_adaptive   CSR-Adaptive (Greathouse & Daga 2014): the host packs consecutive rows into
//                   blocks of about NNZ non-zeros (at most 2 NNZ); a work-group streams a block's
//                   products val * x into local memory with coalesced loads, then L = WG / rows
//                   lanes (a power of two) sum each row from local memory. Rows longer than NNZ
//                   are cut into chunks of LONG non-zeros that whole work-groups sum into
//                   partial[]; spmv_split_sum adds them. Short and long rows alike keep every
//                   lane busy, which row-per-lane-group kernels cannot on power-law matrices.
//   spmm_csr_rows   the same product for CPUs: one work-item per row of C, which it builds as the
//                   sum of val * (row idx of B), streaming whole rows of B and C in order (SIMD
//                   loops, prefetch-friendly) instead of one scattered element per work-item.
//   spmm_csr        C = A B with B dense K x N (row-major, ldb), C M x N (ldc): one work-item per
//                   (row, column), the column index fastest, so the reads of a row of B coalesce.
//
// Tunables: WG (work-group size), VEC (lanes per row or unit, a power of two dividing WG), CHUNK,
// NNZ (non-zeros per adaptive block; the block's local buffer holds 2 NNZ floats).
// IDX_T: the column index type, ushort for K <= 65536 (2 bytes a non-zero less to stream), else int.

#ifndef WG
#define WG 256
#endif
#ifndef VEC
#define VEC 32
#endif
#ifndef IDX_T
#define IDX_T int
#endif
#ifndef NNZ
#define NNZ 1024
#endif

kernel void spmv_scalar(const global int* restrict ptr, const global IDX_T* restrict idx,
                        const global float* restrict val, const global float* restrict x,
                        global float* restrict y, const int M)
{
    const int i = get_global_id(0);
    if (i >= M)
        return;
    float sum = 0.0f;
    for (int j = ptr[i]; j < ptr[i + 1]; ++j)
        sum = fma(val[j], x[idx[j]], sum);
    y[i] = sum;
}

// Sum VEC lanes' values in red[] (lanes of a group are consecutive); lane 0 ends with the total.
// Every work-item of the group must call it (it holds barriers).
inline float lanes_sum(local float* red, const int lid, const int lane, const float v)
{
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = VEC / 2; s > 0; s >>= 1) {
        if (lane < s)
            red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return red[lid];
}

// Global size: ceil(M / (WG / VEC)) * WG.
__attribute__((reqd_work_group_size(WG, 1, 1)))
kernel void spmv_vector(const global int* restrict ptr, const global IDX_T* restrict idx,
                        const global float* restrict val, const global float* restrict x,
                        global float* restrict y, const int M)
{
    local float red[WG];
    const int lid = get_local_id(0), lane = lid % VEC;
    const int row = get_group_id(0) * (WG / VEC) + lid / VEC;
    float sum = 0.0f;
    if (row < M)
        for (int j = ptr[row] + lane; j < ptr[row + 1]; j += VEC)
            sum = fma(val[j], x[idx[j]], sum);
    sum = lanes_sum(red, lid, lane, sum);
    if (lane == 0 && row < M)
        y[row] = sum;
}

// units: U of them, unit u sums row unit_row[u] from non-zero unit_start[u] to at most CHUNK
// further (and never past the row's end). Global size: ceil(U / (WG / VEC)) * WG.
__attribute__((reqd_work_group_size(WG, 1, 1)))
kernel void spmv_split(const global int* restrict ptr, const global IDX_T* restrict idx,
                       const global float* restrict val, const global float* restrict x,
                       global float* restrict y, const global int* restrict unit_row,
                       const global int* restrict unit_start, global float* restrict partial,
                       const int U, const int chunk)
{
    local float red[WG];
    const int lid = get_local_id(0), lane = lid % VEC;
    const int u = get_group_id(0) * (WG / VEC) + lid / VEC;
    float sum = 0.0f;
    int row = 0, start = 0, end = 0;
    if (u < U) {
        row = unit_row[u];
        start = unit_start[u];
        end = min(start + chunk, ptr[row + 1]);
        for (int j = start + lane; j < end; j += VEC)
            sum = fma(val[j], x[idx[j]], sum);
    }
    sum = lanes_sum(red, lid, lane, sum);
    if (lane == 0 && u < U) {
        if (start == ptr[row] && end == ptr[row + 1])
            y[row] = sum; // the whole row in one unit
        else
            partial[u] = sum;
    }
}

// blk[b] = (first row, rows, lo, hi) of a stream block, whose non-zeros are lo .. hi (at most
// 2 NNZ); or (row, -1 - slot, lo, hi) for a chunk of a long row, summed into partial[slot].
// Global size: (number of blocks) * WG.
__attribute__((reqd_work_group_size(WG, 1, 1)))
kernel void spmv_adaptive(const global int* restrict ptr, const global IDX_T* restrict idx,
                          const global float* restrict val, const global float* restrict x,
                          global float* restrict y, const global int4* restrict blk,
                          global float* restrict partial)
{
    local float prod[2 * NNZ];
    local float red[WG];
    const int lid = get_local_id(0);
    const int4 d = blk[get_group_id(0)];
    const int lo = d.z, hi = d.w;
    if (d.y < 0) { // a chunk of a long row: the whole group strides it
        float sum = 0.0f;
        for (int j = lo + lid; j < hi; j += WG)
            sum = fma(val[j], x[idx[j]], sum);
        red[lid] = sum;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int s = WG / 2; s > 0; s >>= 1) {
            if (lid < s)
                red[lid] += red[lid + s];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lid == 0)
            partial[-1 - d.y] = red[0];
        return;
    }
    const int r0 = d.x, rows = d.y;
    for (int j = lo + lid; j < hi; j += WG)
        prod[j - lo] = val[j] * x[idx[j]];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (rows > WG) { // many (mostly empty) rows: one work-item per row
        for (int r = lid; r < rows; r += WG) {
            float sum = 0.0f;
            for (int j = ptr[r0 + r] - lo; j < ptr[r0 + r + 1] - lo; ++j)
                sum += prod[j];
            y[r0 + r] = sum;
        }
        return;
    }
    int lanes = 1; // the same in the whole group, so the barriers below are uniform
    while (lanes * 2 * rows <= WG)
        lanes *= 2;
    const int r = lid / lanes, lane = lid % lanes;
    float sum = 0.0f;
    if (r < rows)
        for (int j = ptr[r0 + r] - lo + lane; j < ptr[r0 + r + 1] - lo; j += lanes)
            sum += prod[j];
    red[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = lanes / 2; s > 0; s >>= 1) {
        if (lane < s)
            red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && r < rows)
        y[r0 + r] = red[lid];
}

// One work-item per split row: y[rows[i]] = sum of partial[first[i] .. first[i] + count[i]).
kernel void spmv_split_sum(const global int* restrict rows, const global int* restrict first,
                           const global int* restrict count, const global float* restrict partial,
                           global float* restrict y, const int L)
{
    const int i = get_global_id(0);
    if (i >= L)
        return;
    float sum = 0.0f;
    for (int u = first[i]; u < first[i] + count[i]; ++u)
        sum += partial[u];
    y[rows[i]] = sum;
}

// Global size (ceil(N / WG) * WG, M) with local (WG, 1) on GPUs.
kernel void spmm_csr(const global int* restrict ptr, const global IDX_T* restrict idx,
                     const global float* restrict val, const global float* restrict B,
                     global float* restrict C, const int M, const int N, const int ldb, const int ldc)
{
    const int n = get_global_id(0), i = get_global_id(1);
    if (n >= N || i >= M)
        return;
    float sum = 0.0f;
    for (int j = ptr[i]; j < ptr[i + 1]; ++j)
        sum = fma(val[j], B[(size_t)idx[j] * ldb + n], sum);
    C[(size_t)i * ldc + n] = sum;
}

// Global size (M). Row i of C = sum over the row's non-zeros of val[j] * B[idx[j], :].
kernel void spmm_csr_rows(const global int* restrict ptr, const global IDX_T* restrict idx,
                          const global float* restrict val, const global float* restrict B,
                          global float* restrict C, const int M, const int N, const int ldb, const int ldc)
{
    const int i = get_global_id(0);
    if (i >= M)
        return;
    global float* c = C + (size_t)i * ldc;
    for (int n = 0; n < N; ++n)
        c[n] = 0.0f;
    for (int j = ptr[i]; j < ptr[i + 1]; ++j) {
        const float v = val[j];
        const global float* b = B + (size_t)idx[j] * ldb;
        for (int n = 0; n < N; ++n)
            c[n] = fma(v, b[n], c[n]);
    }
}

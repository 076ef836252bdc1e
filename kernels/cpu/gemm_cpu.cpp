// CPU GEMM: OpenBLAS, row-major, C cut into fixed tiles.
//
// OpenBLAS's threaded sgemm splits C among its threads, and where a thread's
// share ends off the micro-kernel's tile the edge kernel sums in another
// order, so its bits move with the thread count (measured with OpenBLAS
// 0.3.21: the head's [512, 50277, 64] differs in 848 elements between 1 and 2
// threads, [256, 257, 128] in 448; square multiples of 64 agree). Here C is
// cut into tiles of kGemmTileRows x kGemmTileCols fixed by the shape alone,
// each one single-threaded OpenBLAS call, the tiles spread over the OpenMP
// threads: every element is the same call's sum in the same order whatever
// the thread count, and no sum is split over K, so none depends on timing.
#include <cblas.h>

#include <algorithm>

#include "core/threads.h"
#include "kernels/cpu/cpu_ops.h"

namespace rwkv::cpu {

namespace {

// Large enough that each call runs near the single-core peak (packing is
// O(K (rows + cols)) beside 2 rows cols K flops), small enough that the
// 169M shapes give every thread several tiles.
constexpr int kGemmTileRows = 256;
constexpr int kGemmTileCols = 512;

// c [m, n] (row-major, leading dimension n) <- alpha op(a) op(b) + beta c
// with op(a) [m, k] and op(b) [k, n], tile by tile.
template <typename T, typename Gemm>
void tiled_gemm(Gemm gemm, bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda,
                const T* b, int ldb, T beta, T* c) {
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  const int row_tiles = (m + kGemmTileRows - 1) / kGemmTileRows;
  const int col_tiles = (n + kGemmTileCols - 1) / kGemmTileCols;
  for_each_blas_block(row_tiles * col_tiles, [&](int tile) {
    const int i0 = tile / col_tiles * kGemmTileRows, j0 = tile % col_tiles * kGemmTileCols;
    const int rows = std::min(kGemmTileRows, m - i0), cols = std::min(kGemmTileCols, n - j0);
    // Rows i0.. of op(a): rows of a, or its columns when transposed; columns
    // j0.. of op(b): columns of b, or its rows when transposed.
    const T* a_tile = a + (transpose_a ? static_cast<size_t>(i0) : static_cast<size_t>(i0) * lda);
    const T* b_tile = b + (transpose_b ? static_cast<size_t>(j0) * ldb : static_cast<size_t>(j0));
    gemm(CblasRowMajor, ta, tb, rows, cols, k, alpha, a_tile, lda, b_tile, ldb, beta,
         c + static_cast<size_t>(i0) * n + j0, n);
  });
}

}  // namespace

void matmul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c, float alpha,
            float beta) {
  const int m = static_cast<int>(c.dim(0));
  const int n = static_cast<int>(c.dim(1));
  const int k = static_cast<int>(transpose_a ? a.dim(0) : a.dim(1));
  const int lda = static_cast<int>(a.dim(1));
  const int ldb = static_cast<int>(b.dim(1));
  if (m == 0 || n == 0) return;
  if (a.dtype() == DType::F64) {
    tiled_gemm<double>(cblas_dgemm, transpose_a, transpose_b, m, n, k, alpha, a.data<double>(), lda,
                       b.data<double>(), ldb, beta, c.data<double>());
  } else {
    tiled_gemm<float>(cblas_sgemm, transpose_a, transpose_b, m, n, k, alpha, a.data<float>(), lda, b.data<float>(),
                      ldb, beta, c.data<float>());
  }
}

}  // namespace rwkv::cpu

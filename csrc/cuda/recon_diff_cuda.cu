// Kernel A on the GPU: one thread per output pixel and channel. Per-sample
// sums and pooled cells are reduced with atomics (order-dependent in the last
// float bits, as usual for CUDA reductions); view gradients are scattered
// with atomics into zeroed buffers.
#include <algorithm>

#include "cuda_check.h"
#include "pycrl/kernels.h"
#include "pycrl/recon_diff.h"

namespace pycrl {
namespace {

template <typename T>
__device__ T pixel_diff(const ReconDiffArgs<T>& a, int64_t plane, int y, int x, T xv) {
  T acc = T(0);
  for (int v = 0; v < a.V; ++v) {
    const T* r = a.views[v] + plane * static_cast<int64_t>(a.vh[v]) * a.vw[v];
    Tap<T> ty = bilinear_tap<T>(y, a.H, a.vh[v], a.align_corners);
    Tap<T> tx = bilinear_tap<T>(x, a.W, a.vw[v], a.align_corners);
    T d = bilinear_sample(r, a.vw[v], ty, tx) - xv;
    acc += a.weight[v] * (d < T(0) ? -d : d);
  }
  return acc;
}

// Sums over (c, y, x) per sample (into sums[b]) and over cells (into cells).
// blockIdx.y walks planes (b, c), so each block reduces its pixels first and
// issues one atomic per block for the per-sample sum.
template <typename T>
__global__ void forward_kernel(ReconDiffArgs<T> a, double* sums, double* cells) {
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  for (int64_t plane = blockIdx.y; plane < a.B * a.C; plane += gridDim.y) {
    const int64_t b = plane / a.C;
    double acc = 0.0;
    for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < hw;
         k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const int y = static_cast<int>(k / a.W), x = static_cast<int>(k % a.W);
      const double d = static_cast<double>(pixel_diff(a, plane, y, x, a.x[plane * hw + k]));
      acc += d;
      if (cells == nullptr) continue;
      for (int i = pool_first_cell(y, a.H, a.Ph); i <= pool_last_cell(y, a.H, a.Ph); ++i)
        for (int j = pool_first_cell(x, a.W, a.Pw); j <= pool_last_cell(x, a.W, a.Pw); ++j)
          atomicAdd(cells + (b * a.Ph + i) * a.Pw + j, d);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) atomicAdd(sums + b, acc);
  }
}

template <typename T>
__global__ void finish_kernel(ReconDiffArgs<T> a, const double* sums, const double* cells, ReconDiffOut<T> o) {
  const double inv_chw = 1.0 / (static_cast<double>(a.C) * a.H * a.W);
  double num = 0.0, den = 0.0;
  for (int64_t b = threadIdx.x; b < a.B; b += blockDim.x) {
    const double l = sums[b] * inv_chw;
    o.per_sample[b] = static_cast<T>(l);
    num += static_cast<double>(a.mask[b]) * l;
    den += static_cast<double>(a.mask[b]);
  }
  num = block_sum(num);
  den = block_sum(den);
  if (threadIdx.x == 0) o.loss[0] = static_cast<T>(num / (den > 1.0 ? den : 1.0));
  if (cells == nullptr) return;
  const int64_t n = a.B * a.Ph * a.Pw;
  for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
    const int i = static_cast<int>((k / a.Pw) % a.Ph), j = static_cast<int>(k % a.Pw);
    const double area = static_cast<double>(pool_end(i, a.H, a.Ph) - pool_start(i, a.H, a.Ph)) *
                        (pool_end(j, a.W, a.Pw) - pool_start(j, a.W, a.Pw));
    o.pooled[k] = static_cast<T>(cells[k] / (a.C * area));
  }
}

template <typename T>
__global__ void backward_kernel(ReconDiffArgs<T> a, ReconDiffGrads<T> g, const double* mask_sum) {
  const double den = *mask_sum > 1.0 ? *mask_sum : 1.0;
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const int64_t n = a.B * a.C * hw;
  const T inv_chw = static_cast<T>(1.0 / (static_cast<double>(a.C) * hw));
  const T inv_c = static_cast<T>(1.0 / a.C);
  const double gl = g.grad_loss ? static_cast<double>(g.grad_loss[0]) : 0.0;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t plane = k / hw;
    const int y = static_cast<int>((k % hw) / a.W), x = static_cast<int>(k % a.W);
    const int64_t b = plane / a.C;
    const double gs = g.grad_per_sample ? static_cast<double>(g.grad_per_sample[b]) : 0.0;
    const T base = static_cast<T>(gl * static_cast<double>(a.mask[b]) / den + gs) * inv_chw;
    const T* gp = g.grad_pooled ? g.grad_pooled + b * a.Ph * a.Pw : nullptr;
    const T up = pixel_upstream(base, gp, y, x, a.H, a.W, a.Ph, a.Pw, inv_c);
    const T xv = a.x[k];
    T gx = T(0);
    for (int v = 0; v < a.V; ++v) {
      const int64_t plane_size = static_cast<int64_t>(a.vh[v]) * a.vw[v];
      Tap<T> ty = bilinear_tap<T>(y, a.H, a.vh[v], a.align_corners);
      Tap<T> tx = bilinear_tap<T>(x, a.W, a.vw[v], a.align_corners);
      const T s = a.weight[v] * abs_grad(bilinear_sample(a.views[v] + plane * plane_size, a.vw[v], ty, tx) - xv) * up;
      gx -= s;
      T* gr = g.grad_views[v];
      if (gr == nullptr) continue;
      gr += plane * plane_size;
      const T s0 = s * (T(1) - ty.l1), s1 = s * ty.l1;
      atomicAdd(gr + ty.i0 * a.vw[v] + tx.i0, s0 * (T(1) - tx.l1));
      atomicAdd(gr + ty.i0 * a.vw[v] + tx.i1, s0 * tx.l1);
      atomicAdd(gr + ty.i1 * a.vw[v] + tx.i0, s1 * (T(1) - tx.l1));
      atomicAdd(gr + ty.i1 * a.vw[v] + tx.i1, s1 * tx.l1);
    }
    if (g.grad_x) g.grad_x[k] = gx;
  }
}

template <typename T> __global__ void mask_sum_kernel(const T* mask, int64_t B, double* out) {
  double s = 0.0;
  for (int64_t b = threadIdx.x; b < B; b += blockDim.x) s += static_cast<double>(mask[b]);
  s = block_sum(s);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

template <typename T>
void recon_diff_forward_cuda(const ReconDiffArgs<T>& a, const ReconDiffOut<T>& o, void* stream_ptr) {
  cudaStream_t stream = as_stream(stream_ptr);
  const bool pool = o.pooled != nullptr && a.Ph > 0;
  const int64_t n_cells = pool ? a.B * a.Ph * a.Pw : 0;
  double* scratch = nullptr;
  const size_t bytes = sizeof(double) * static_cast<size_t>(a.B + n_cells + 1);
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&scratch), bytes, stream), "recon_diff_forward alloc");
  cuda_check(cudaMemsetAsync(scratch, 0, bytes, stream), "recon_diff_forward memset");
  double* cells = pool ? scratch + a.B : nullptr;
  const int64_t n = a.B * a.C * static_cast<int64_t>(a.H) * a.W;
  if (n > 0) {
    const int64_t hw = static_cast<int64_t>(a.H) * a.W;
    const int64_t planes = a.B * a.C;
    dim3 grid(static_cast<unsigned>(std::min<int64_t>((hw + kThreads - 1) / kThreads, 1024)),
              static_cast<unsigned>(std::min<int64_t>(planes, 65535)));
    forward_kernel<T><<<grid, kThreads, 0, stream>>>(a, scratch, cells);
  }
  finish_kernel<T><<<1, kThreads, 0, stream>>>(a, scratch, cells, o);
  cuda_check(cudaGetLastError(), "recon_diff_forward launch");
  cuda_check(cudaFreeAsync(scratch, stream), "recon_diff_forward free");
}

template <typename T>
void recon_diff_backward_cuda(const ReconDiffArgs<T>& a, const ReconDiffGrads<T>& g, void* stream_ptr) {
  cudaStream_t stream = as_stream(stream_ptr);
  for (int v = 0; v < a.V; ++v)
    if (g.grad_views[v])
      cuda_check(cudaMemsetAsync(g.grad_views[v], 0, sizeof(T) * a.B * a.C * a.vh[v] * a.vw[v], stream),
                 "recon_diff_backward memset");
  // The masked-mean denominator stays on the device: no host sync.
  double* mask_sum = nullptr;
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&mask_sum), sizeof(double), stream), "recon_diff_backward alloc");
  mask_sum_kernel<T><<<1, kThreads, 0, stream>>>(a.mask, a.B, mask_sum);
  const int64_t n = a.B * a.C * static_cast<int64_t>(a.H) * a.W;
  if (n > 0) backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(a, g, mask_sum);
  cuda_check(cudaGetLastError(), "recon_diff_backward launch");
  cuda_check(cudaFreeAsync(mask_sum, stream), "recon_diff_backward free");
}

template void recon_diff_forward_cuda<float>(const ReconDiffArgs<float>&, const ReconDiffOut<float>&, void*);
template void recon_diff_forward_cuda<double>(const ReconDiffArgs<double>&, const ReconDiffOut<double>&, void*);
template void recon_diff_backward_cuda<float>(const ReconDiffArgs<float>&, const ReconDiffGrads<float>&, void*);
template void recon_diff_backward_cuda<double>(const ReconDiffArgs<double>&, const ReconDiffGrads<double>&, void*);

}  // namespace pycrl

// Kernel B on the GPU: pool+normalise one sample per block, class sums one
// component per thread, then a single block finishes the scalars.
#include "cuda_check.h"
#include "pycrl/compactness.h"
#include "pycrl/kernels.h"

namespace pycrl {
namespace {

// Scratch layout (doubles): sR[D], sF[D], c_hat[D], counts {n_r, n_f}.
struct Scratch {
  double *sR, *sF, *c, *counts;
};

__device__ inline double warp_sum(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return __shfl_sync(0xffffffffu, v, 0);
}

// One block per sample; each warp pools whole rows (b, d) so that its lanes
// read consecutive addresses.
template <typename T> __global__ void pool_normalise_kernel(const T* feats, int64_t D, int64_t HW, T* out, T* norms) {
  const int64_t b = blockIdx.x;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const T* f = feats + b * D * HW;
  double sq = 0.0;
  for (int64_t d = warp; d < D; d += warps) {
    double s = 0.0;
    for (int64_t k = lane; k < HW; k += 32) s += static_cast<double>(f[d * HW + k]);
    s = warp_sum(s) / static_cast<double>(HW);
    if (lane == 0) {
      out[b * D + d] = static_cast<T>(s);
      sq += s * s;
    }
  }
  const double n = sqrt(block_sum(sq));
  if (norms != nullptr && threadIdx.x == 0) norms[b] = static_cast<T>(n);
  const double scale = 1.0 / (n > kNormEps ? n : kNormEps);
  __syncthreads();  // all rows of this sample are written before rescaling
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) out[b * D + d] = static_cast<T>(out[b * D + d] * scale);
}

template <typename T> __global__ void centre_kernel(const T* centre, int64_t D, double* c_hat) {
  double sq = 0.0;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) sq += static_cast<double>(centre[d]) * centre[d];
  const double n = sqrt(block_sum(sq));
  const double scale = 1.0 / (n > kNormEps ? n : kNormEps);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) c_hat[d] = centre[d] * scale;
}

template <typename T> __global__ void class_sums_kernel(const T* normed, const T* mask, int64_t B, int64_t D, Scratch s) {
  const int64_t d = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (d < D) {
    double r = 0.0, f = 0.0;
    for (int64_t b = 0; b < B; ++b) (static_cast<double>(mask[b]) > 0.5 ? r : f) += normed[b * D + d];
    s.sR[d] = r;
    s.sF[d] = f;
  }
  if (d == 0) {
    double n_r = 0.0;
    for (int64_t b = 0; b < B; ++b) n_r += static_cast<double>(mask[b]) > 0.5 ? 1.0 : 0.0;
    s.counts[0] = n_r;
    s.counts[1] = static_cast<double>(B) - n_r;
  }
}

template <typename T> __global__ void stats_kernel(CompactnessArgs<T> a, const T* normed, Scratch s, T* stats) {
  double rr = 0.0, rf = 0.0, self = 0.0, cent = 0.0;
  for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x) {
    rr += s.sR[d] * s.sR[d];
    rf += s.sR[d] * s.sF[d];
  }
  for (int64_t k = threadIdx.x; k < a.B * a.D; k += blockDim.x) {
    if (!(static_cast<double>(a.mask[k / a.D]) > 0.5)) continue;
    const double f = normed[k], e = f - s.c[k % a.D];
    self += f * f;
    cent += e * e;
  }
  rr = block_sum(rr);
  rf = block_sum(rf);
  self = block_sum(self);
  cent = block_sum(cent);
  if (threadIdx.x != 0) return;
  const double n_r = s.counts[0], n_rr = n_r * (n_r - 1), n_rf = n_r * s.counts[1];
  stats[0] = static_cast<T>(n_rr > 0 ? ((rr - self) / n_rr + 1.0) / 2.0 : 0.0);
  stats[1] = static_cast<T>(n_rf > 0 ? (rf / n_rf + 1.0) / 2.0 : 0.0);
  stats[2] = static_cast<T>(a.centre && n_r > 0 ? cent / n_r : 0.0);
}

// One block per sample: gradient wrt f_hat, through the normalisation, then
// spread evenly over the pooled map.
template <typename T>
__global__ void backward_kernel(CompactnessArgs<T> a, CompactnessGrads<T> g, Scratch s) {
  const int64_t b = blockIdx.x;
  const bool real = static_cast<double>(a.mask[b]) > 0.5;
  const double n_r = s.counts[0], n_rr = n_r * (n_r - 1), n_rf = n_r * s.counts[1];
  const double gs = g.grad_stats[0], gd = g.grad_stats[1], gc = a.centre ? static_cast<double>(g.grad_stats[2]) : 0.0;
  const T* f = g.normed + b * a.D;
  double dot = 0.0;
  for (int64_t d = threadIdx.x; d < a.D; d += blockDim.x)
    dot += f[d] * compactness_grad_component<double>(real, f[d], s.sR[d], s.sF[d], s.c[d], gs, gd, gc, n_rr, n_rf, n_r);
  dot = block_sum(dot);
  const double n = g.norms[b];
  const bool clamped = n < kNormEps;
  const double scale = 1.0 / ((n > kNormEps ? n : kNormEps) * static_cast<double>(a.HW));
  // Per-component values first (shared memory would cap D), then coalesced
  // row writes by whole warps.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int64_t d = warp; d < a.D; d += warps) {
    const double gf =
        compactness_grad_component<double>(real, f[d], s.sR[d], s.sF[d], s.c[d], gs, gd, gc, n_rr, n_rf, n_r);
    const T v = static_cast<T>((clamped ? gf : gf - f[d] * dot) * scale);
    T* out = g.grad_feats + (b * a.D + d) * a.HW;
    for (int64_t k = lane; k < a.HW; k += 32) out[k] = v;
  }
}

template <typename T> __global__ void nearest_kernel(PrototypeArgs<T> a, const T* f, const T* p) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= a.B) return;
  double best = 1e300;
  int64_t arg = -1;
  for (int64_t k = 0; k < a.K; ++k) {
    double dist = 0.0;
    for (int64_t d = 0; d < a.D; ++d) {
      const double e = static_cast<double>(f[b * a.D + d]) - p[k * a.D + d];
      dist += e * e;
    }
    if (dist < best) best = dist, arg = k;
  }
  a.dist[b] = static_cast<T>(best);
  a.index[b] = arg;
}

struct ScratchBuffer {
  double* base = nullptr;
  cudaStream_t stream;
  ScratchBuffer(int64_t D, cudaStream_t st) : stream(st) {
    const size_t bytes = sizeof(double) * static_cast<size_t>(3 * D + 2);
    cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&base), bytes, stream), "compactness alloc");
    cuda_check(cudaMemsetAsync(base, 0, bytes, stream), "compactness memset");
  }
  ~ScratchBuffer() { cudaFreeAsync(base, stream); }
  Scratch view(int64_t D) const { return {base, base + D, base + 2 * D, base + 3 * D}; }
};

template <typename T> Scratch prepare(const CompactnessArgs<T>& a, const T* normed, const ScratchBuffer& buf) {
  Scratch s = buf.view(a.D);
  if (a.centre) centre_kernel<T><<<1, kThreads, 0, buf.stream>>>(a.centre, a.D, s.c);
  class_sums_kernel<T><<<blocks_for(a.D), kThreads, 0, buf.stream>>>(normed, a.mask, a.B, a.D, s);
  return s;
}

}  // namespace

template <typename T>
void compactness_forward_cuda(const CompactnessArgs<T>& a, const CompactnessOut<T>& o, void* stream_ptr) {
  cudaStream_t stream = as_stream(stream_ptr);
  if (a.B > 0) pool_normalise_kernel<T><<<static_cast<unsigned>(a.B), kThreads, 0, stream>>>(a.feats, a.D, a.HW, o.normed, o.norms);
  ScratchBuffer buf(a.D, stream);
  Scratch s = prepare(a, o.normed, buf);
  stats_kernel<T><<<1, kThreads, 0, stream>>>(a, o.normed, s, o.stats);
  cuda_check(cudaGetLastError(), "compactness_forward launch");
}

template <typename T>
void compactness_backward_cuda(const CompactnessArgs<T>& a, const CompactnessGrads<T>& g, void* stream_ptr) {
  cudaStream_t stream = as_stream(stream_ptr);
  if (a.B == 0) return;
  ScratchBuffer buf(a.D, stream);
  Scratch s = prepare(a, g.normed, buf);
  backward_kernel<T><<<static_cast<unsigned>(a.B), kThreads, 0, stream>>>(a, g, s);
  cuda_check(cudaGetLastError(), "compactness_backward launch");
}

template <typename T> void prototype_distance_cuda(const PrototypeArgs<T>& a, void* stream_ptr) {
  cudaStream_t stream = as_stream(stream_ptr);
  if (a.B == 0) return;
  T* scratch = nullptr;
  const size_t bytes = sizeof(T) * static_cast<size_t>((a.B + a.K) * a.D);
  cuda_check(cudaMallocAsync(reinterpret_cast<void**>(&scratch), bytes, stream), "prototype_distance alloc");
  T* f = scratch;
  T* p = scratch + a.B * a.D;
  pool_normalise_kernel<T><<<static_cast<unsigned>(a.B), kThreads, 0, stream>>>(a.feats, a.D, a.HW, f, nullptr);
  pool_normalise_kernel<T><<<static_cast<unsigned>(a.K), kThreads, 0, stream>>>(a.protos, a.D, 1, p, nullptr);
  nearest_kernel<T><<<blocks_for(a.B), kThreads, 0, stream>>>(a, f, p);
  cuda_check(cudaGetLastError(), "prototype_distance launch");
  cuda_check(cudaFreeAsync(scratch, stream), "prototype_distance free");
}

#define PYCRL_INSTANTIATE(T)                                                                                 \
  template void compactness_forward_cuda<T>(const CompactnessArgs<T>&, const CompactnessOut<T>&, void*);   \
  template void compactness_backward_cuda<T>(const CompactnessArgs<T>&, const CompactnessGrads<T>&, void*); \
  template void prototype_distance_cuda<T>(const PrototypeArgs<T>&, void*);
PYCRL_INSTANTIATE(float)
PYCRL_INSTANTIATE(double)
#undef PYCRL_INSTANTIATE

}  // namespace pycrl

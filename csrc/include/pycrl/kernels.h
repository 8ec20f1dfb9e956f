// Entry points of the fused kernels. Every function exists for float and
// double; the *_cpu versions are in cpu/, the *_cuda versions in cuda/ (only
// when the extension was built with CUDA). Outputs are written, never
// accumulated into: callers need not zero them.
#pragma once

#include <cstdint>
#include <string>

namespace pycrl {

constexpr int kMaxViews = 8;

template <typename T> struct ReconDiffArgs {
  const T* x = nullptr;  // (B,C,H,W)
  int64_t B = 0;
  int C = 0, H = 0, W = 0;
  int V = 0;
  const T* views[kMaxViews] = {};  // (B,C,vh,vw) each
  int vh[kMaxViews] = {}, vw[kMaxViews] = {};
  T weight[kMaxViews] = {};
  const T* mask = nullptr;  // (B,) per-sample weights, 1 = real
  bool align_corners = false;
  int Ph = 0, Pw = 0;  // pooled map size; 0 = not requested
};

template <typename T> struct ReconDiffOut {
  T* per_sample = nullptr;  // (B,)
  T* loss = nullptr;        // (1,)
  T* pooled = nullptr;      // (B,Ph,Pw) or null
};

template <typename T> struct ReconDiffGrads {
  const T* grad_loss = nullptr;        // (1,) or null
  const T* grad_per_sample = nullptr;  // (B,) or null
  const T* grad_pooled = nullptr;      // (B,Ph,Pw) or null
  T* grad_x = nullptr;                 // (B,C,H,W) or null
  T* grad_views[kMaxViews] = {};       // each (B,C,vh,vw) or null
};

template <typename T> struct CompactnessArgs {
  const T* feats = nullptr;  // (B,D,hw) contiguous; hw = 1 for (B,D)
  int64_t B = 0, D = 0, HW = 1;
  const T* mask = nullptr;    // (B,) > 0.5 means real
  const T* centre = nullptr;  // (D,) or null (centroid term is then 0)
};

template <typename T> struct CompactnessOut {
  T* normed = nullptr;  // (B,D) L2-normalised pooled features
  T* norms = nullptr;   // (B,) norms before normalisation
  T* stats = nullptr;   // (3,) sim, diff, centroid
};

template <typename T> struct CompactnessGrads {
  const T* normed = nullptr;      // saved forward outputs
  const T* norms = nullptr;
  const T* grad_stats = nullptr;  // (3,) upstream gradients of sim, diff, centroid
  T* grad_feats = nullptr;        // (B,D,hw)
};

template <typename T> struct PrototypeArgs {
  const T* feats = nullptr;  // (B,D,hw)
  int64_t B = 0, D = 0, HW = 1;
  const T* protos = nullptr;  // (K,D)
  int64_t K = 0;
  T* dist = nullptr;       // (B,) squared distance of normalised vectors
  int64_t* index = nullptr;  // (B,) nearest prototype
};

template <typename T> void recon_diff_forward_cpu(const ReconDiffArgs<T>&, const ReconDiffOut<T>&);
template <typename T> void recon_diff_backward_cpu(const ReconDiffArgs<T>&, const ReconDiffGrads<T>&);
template <typename T> void compactness_forward_cpu(const CompactnessArgs<T>&, const CompactnessOut<T>&);
template <typename T>
void compactness_backward_cpu(const CompactnessArgs<T>&, const CompactnessGrads<T>&);
template <typename T> void prototype_distance_cpu(const PrototypeArgs<T>&);

// CUDA launchers take the stream as an opaque handle (cudaStream_t).
template <typename T>
void recon_diff_forward_cuda(const ReconDiffArgs<T>&, const ReconDiffOut<T>&, void* stream);
template <typename T>
void recon_diff_backward_cuda(const ReconDiffArgs<T>&, const ReconDiffGrads<T>&, void* stream);
template <typename T>
void compactness_forward_cuda(const CompactnessArgs<T>&, const CompactnessOut<T>&, void* stream);
template <typename T>
void compactness_backward_cuda(const CompactnessArgs<T>&, const CompactnessGrads<T>&, void* stream);
template <typename T> void prototype_distance_cuda(const PrototypeArgs<T>&, void* stream);

// Runtime facts of the CUDA build (cuda/runtime.cu), or of its absence.
struct CudaStatus {
  bool available = false;
  int device_count = 0;
  std::string reason;
};

}  // namespace pycrl

// Kernel A: multi-view reconstruction difference.
//
// For an input x (B,C,H,W) and V reconstructions r_v (B,C,h_v,w_v), each
// bilinearly upsampled on the fly to (H,W):
//   D[b,y,x]  = sum_v w_v * mean_c |up(r_v)[b,c,y,x] - x[b,c,y,x]|
//   l[b]      = mean_{y,x} D[b]                         (per-sample loss)
//   loss      = sum_b m_b l_b / max(sum_b m_b, 1)       (masked mean)
//   pooled[b] = adaptive_avg_pool(D[b], (Ph,Pw))        (heatmap / guidance)
// This header holds the element maths both builds share; the loops live in
// cpu/recon_diff_cpu.cpp and cuda/recon_diff_cuda.cu.
#pragma once

#include "pycrl/common.h"

namespace pycrl {

// Source taps of one output coordinate under bilinear resizing, following
// torch.nn.functional.interpolate(mode="bilinear") for both corner modes.
template <typename T> struct Tap {
  int i0, i1;
  T l1;  // weight of i1; i0 gets (1 - l1)
};

template <typename T>
PYCRL_HD Tap<T> bilinear_tap(int dst, int dst_size, int src_size, bool align_corners) {
  Tap<T> t;
  T real;
  if (align_corners) {
    T scale = dst_size > 1 ? static_cast<T>(src_size - 1) / static_cast<T>(dst_size - 1) : T(0);
    real = scale * static_cast<T>(dst);
  } else {
    T scale = static_cast<T>(src_size) / static_cast<T>(dst_size);
    real = scale * (static_cast<T>(dst) + T(0.5)) - T(0.5);
    if (real < T(0)) real = T(0);
  }
  int i0 = static_cast<int>(real);
  if (i0 > src_size - 1) i0 = src_size - 1;
  t.i0 = i0;
  t.i1 = i0 < src_size - 1 ? i0 + 1 : i0;
  t.l1 = real - static_cast<T>(i0);
  return t;
}

template <typename T> PYCRL_HD T lerp(T a, T b, T l) { return a + (b - a) * l; }

// Value of the upsampled view at one output pixel: vertical, then horizontal
// interpolation. The CPU build runs the same two steps row-wise (a whole
// vertically interpolated row, then the horizontal taps), so both builds
// compute identical values.
template <typename T>
PYCRL_HD T bilinear_sample(const T* plane, int w, const Tap<T>& ty, const Tap<T>& tx) {
  const T* r0 = plane + static_cast<int64_t>(ty.i0) * w;
  const T* r1 = plane + static_cast<int64_t>(ty.i1) * w;
  return lerp(lerp(r0[tx.i0], r1[tx.i0], ty.l1), lerp(r0[tx.i1], r1[tx.i1], ty.l1), tx.l1);
}

// Adaptive average pooling cells, as torch.nn.functional.adaptive_avg_pool2d:
// cell i covers [floor(i*n/p), ceil((i+1)*n/p)).
PYCRL_HD int pool_start(int i, int n, int p) { return static_cast<int>((static_cast<int64_t>(i) * n) / p); }
PYCRL_HD int pool_end(int i, int n, int p) {
  return static_cast<int>(((static_cast<int64_t>(i) + 1) * n + p - 1) / p);
}
// First and last cell that contain coordinate y (cells may overlap when p
// does not divide n).
PYCRL_HD int pool_first_cell(int y, int n, int p) {
  int i = static_cast<int>((static_cast<int64_t>(y) * p) / n);
  while (i > 0 && pool_end(i - 1, n, p) > y) --i;
  return i;
}
PYCRL_HD int pool_last_cell(int y, int n, int p) {
  int i = static_cast<int>((static_cast<int64_t>(y) * p) / n);
  while (i + 1 < p && pool_start(i + 1, n, p) <= y) ++i;
  return i;
}

// d|d|/dd with torch's convention sign(0) = 0.
// (Branch-free so that the CPU loops vectorise.)
template <typename T> PYCRL_HD T abs_grad(T d) { return static_cast<T>(d > T(0)) - static_cast<T>(d < T(0)); }

// Upstream gradient reaching one pixel of D, given the gradients of the loss,
// the per-sample losses and the pooled map. `plane_norm` = 1 / (C*H*W).
template <typename T>
PYCRL_HD T pixel_upstream(T base, const T* grad_pooled_b, int y, int x, int H, int W, int Ph, int Pw,
                          T inv_c) {
  T g = base;
  if (grad_pooled_b != nullptr) {
    int i0 = pool_first_cell(y, H, Ph), i1 = pool_last_cell(y, H, Ph);
    int j0 = pool_first_cell(x, W, Pw), j1 = pool_last_cell(x, W, Pw);
    for (int i = i0; i <= i1; ++i) {
      int rows = pool_end(i, H, Ph) - pool_start(i, H, Ph);
      for (int j = j0; j <= j1; ++j) {
        int cols = pool_end(j, W, Pw) - pool_start(j, W, Pw);
        g += grad_pooled_b[i * Pw + j] * inv_c / static_cast<T>(rows * cols);
      }
    }
  }
  return g;
}

}  // namespace pycrl

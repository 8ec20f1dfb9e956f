// Kernel B: compactness distance of L2-normalised embeddings.
//
// f (B,D) or feature maps (B,D,h,w) are globally average pooled (fused) to g,
// then f_hat_i = g_i / max(||g_i||, eps). With S_ij = (f_hat_i . f_hat_j + 1)/2,
// R reals and F fakes:
//   sim      = mean of S_ij over ordered real-real pairs i != j   (0 if R < 2)
//   diff     = mean of S_ij over real-fake pairs                  (0 if R*F == 0)
//   centroid = mean over reals of ||f_hat_i - c_hat||^2            (0 if R == 0)
// Both pair means reduce to sums of the real and fake embeddings
// (s_R, s_F), so no B x B matrix is formed:
//   sum_{i!=j real} f_i.f_j = ||s_R||^2 - sum_real ||f_i||^2,
//   sum_{i real, j fake} f_i.f_j = s_R . s_F.
#pragma once

#include "pycrl/common.h"

namespace pycrl {

constexpr double kNormEps = 1e-12;  // as torch.nn.functional.normalize

// Gradient with respect to f_hat_i of sim, diff and centroid, combined with
// their upstream gradients (gs, gd, gc), for one component d.
template <typename T>
PYCRL_HD T compactness_grad_component(bool real, T f, T sR, T sF, T c, T gs, T gd, T gc, T n_rr, T n_rf,
                                      T n_r) {
  T g = T(0);
  if (real) {
    if (n_rr > T(0)) g += gs * (sR - f) / n_rr;
    if (n_rf > T(0)) g += gd * sF / (T(2) * n_rf);
    if (n_r > T(0)) g += gc * T(2) * (f - c) / n_r;
  } else if (n_rf > T(0)) {
    g += gd * sR / (T(2) * n_rf);
  }
  return g;
}

}  // namespace pycrl

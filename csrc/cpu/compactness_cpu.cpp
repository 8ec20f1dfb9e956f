// Kernel B on the CPU: pooling + normalisation are parallel over samples; the
// pair terms need only the class sums s_R and s_F (see compactness.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "parallel.h"
#include "pycrl/compactness.h"
#include "pycrl/kernels.h"

namespace pycrl {
namespace {

bool is_real(const double m) { return m > 0.5; }

// Sum of a row with independent partial sums, so the loop vectorises (a
// single running sum is a dependency chain the compiler may not reorder).
template <typename T> double row_sum(const T* row, int64_t n) {
  constexpr int kLanes = 16;
  T part[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += row[k + l];
  double s = 0.0;
  for (int l = 0; l < kLanes; ++l) s += part[l];
  for (; k < n; ++k) s += row[k];
  return s;
}

// Global average pool of sample b's (D,HW) maps, then L2-normalise. The
// pooled values stay in double (`tmp`, D entries) until the single final
// rounding, so a float f_hat has unit norm to float precision.
template <typename T>
void pool_normalise(const T* f, int64_t D, int64_t HW, T* out, T* norm_out, std::vector<double>& tmp) {
  tmp.resize(static_cast<size_t>(D));
  double sq = 0.0;
  const double inv = 1.0 / static_cast<double>(HW);
  for (int64_t d = 0; d < D; ++d) {
    const double s = row_sum(f + d * HW, HW) * inv;
    tmp[d] = s;
    sq += s * s;
  }
  const double n = std::sqrt(sq);
  if (norm_out) *norm_out = static_cast<T>(n);
  const double scale = 1.0 / std::max(n, kNormEps);
  for (int64_t d = 0; d < D; ++d) out[d] = static_cast<T>(tmp[d] * scale);
}

// Class sums and counts of normalised features, plus the unit centre.
template <typename T> struct ClassSums {
  std::vector<double> sR, sF, c;
  double n_r = 0, n_f = 0;
};

template <typename T> ClassSums<T> class_sums(const CompactnessArgs<T>& a, const T* normed) {
  ClassSums<T> s;
  s.sR.assign(a.D, 0.0);
  s.sF.assign(a.D, 0.0);
  s.c.assign(a.D, 0.0);
  for (int64_t b = 0; b < a.B; ++b) {
    const bool r = is_real(a.mask[b]);
    (r ? s.n_r : s.n_f) += 1;
    auto& acc = r ? s.sR : s.sF;
    for (int64_t d = 0; d < a.D; ++d) acc[d] += normed[b * a.D + d];
  }
  if (a.centre) {
    double sq = 0.0;
    for (int64_t d = 0; d < a.D; ++d) sq += static_cast<double>(a.centre[d]) * a.centre[d];
    const double scale = 1.0 / std::max(std::sqrt(sq), kNormEps);
    for (int64_t d = 0; d < a.D; ++d) s.c[d] = a.centre[d] * scale;
  }
  return s;
}

}  // namespace

template <typename T> void compactness_forward_cpu(const CompactnessArgs<T>& a, const CompactnessOut<T>& o) {
  parallel_for(a.B, [&](int64_t begin, int64_t end) {
    std::vector<double> tmp;
    for (int64_t b = begin; b < end; ++b)
      pool_normalise(a.feats + b * a.D * a.HW, a.D, a.HW, o.normed + b * a.D, o.norms + b, tmp);
  });
  const auto s = class_sums(a, o.normed);
  double rr = 0.0, rf = 0.0, self = 0.0, cent = 0.0;
  for (int64_t d = 0; d < a.D; ++d) {
    rr += s.sR[d] * s.sR[d];
    rf += s.sR[d] * s.sF[d];
  }
  for (int64_t b = 0; b < a.B; ++b) {
    if (!is_real(a.mask[b])) continue;
    for (int64_t d = 0; d < a.D; ++d) {
      const double f = o.normed[b * a.D + d];
      self += f * f;
      cent += (f - s.c[d]) * (f - s.c[d]);
    }
  }
  const double n_rr = s.n_r * (s.n_r - 1), n_rf = s.n_r * s.n_f;
  o.stats[0] = static_cast<T>(n_rr > 0 ? ((rr - self) / n_rr + 1.0) / 2.0 : 0.0);
  o.stats[1] = static_cast<T>(n_rf > 0 ? (rf / n_rf + 1.0) / 2.0 : 0.0);
  o.stats[2] = static_cast<T>(a.centre && s.n_r > 0 ? cent / s.n_r : 0.0);
}

template <typename T>
void compactness_backward_cpu(const CompactnessArgs<T>& a, const CompactnessGrads<T>& g) {
  const auto s = class_sums(a, g.normed);
  const double n_rr = s.n_r * (s.n_r - 1), n_rf = s.n_r * s.n_f;
  const double gs = g.grad_stats[0], gd = g.grad_stats[1], gc = a.centre ? g.grad_stats[2] : 0.0;
  const double inv_hw = 1.0 / static_cast<double>(a.HW);
  parallel_for(a.B, [&](int64_t begin, int64_t end) {
    std::vector<double> gf(a.D);
    for (int64_t b = begin; b < end; ++b) {
      const bool real = is_real(a.mask[b]);
      const T* f = g.normed + b * a.D;
      double dot = 0.0;
      for (int64_t d = 0; d < a.D; ++d) {
        gf[d] = compactness_grad_component<double>(real, f[d], s.sR[d], s.sF[d], s.c[d], gs, gd, gc, n_rr,
                                                   n_rf, s.n_r);
        dot += gf[d] * f[d];
      }
      // Through f_hat = g / max(||g||, eps): the clamp passes no gradient to the norm.
      const double n = g.norms[b];
      const bool clamped = n < kNormEps;
      const double scale = inv_hw / std::max(n, kNormEps);
      for (int64_t d = 0; d < a.D; ++d) {
        const T v = static_cast<T>((clamped ? gf[d] : gf[d] - f[d] * dot) * scale);
        T* out = g.grad_feats + (b * a.D + d) * a.HW;
        std::fill(out, out + a.HW, v);
      }
    }
  });
}

template <typename T> void prototype_distance_cpu(const PrototypeArgs<T>& a) {
  std::vector<T> protos(a.K * a.D);
  std::vector<double> tmp;
  for (int64_t k = 0; k < a.K; ++k)
    pool_normalise<T>(a.protos + k * a.D, a.D, 1, protos.data() + k * a.D, nullptr, tmp);
  parallel_for(a.B, [&](int64_t begin, int64_t end) {
    std::vector<T> f(a.D);
    std::vector<double> scratch;
    for (int64_t b = begin; b < end; ++b) {
      pool_normalise(a.feats + b * a.D * a.HW, a.D, a.HW, f.data(), static_cast<T*>(nullptr), scratch);
      double best = std::numeric_limits<double>::infinity();
      int64_t arg = -1;
      for (int64_t k = 0; k < a.K; ++k) {
        double dist = 0.0;
        for (int64_t d = 0; d < a.D; ++d) {
          const double e = static_cast<double>(f[d]) - protos[k * a.D + d];
          dist += e * e;
        }
        if (dist < best) best = dist, arg = k;
      }
      a.dist[b] = static_cast<T>(best);
      a.index[b] = arg;
    }
  });
}

#define PYCRL_INSTANTIATE(T)                                                                        \
  template void compactness_forward_cpu<T>(const CompactnessArgs<T>&, const CompactnessOut<T>&);   \
  template void compactness_backward_cpu<T>(const CompactnessArgs<T>&, const CompactnessGrads<T>&); \
  template void prototype_distance_cpu<T>(const PrototypeArgs<T>&);
PYCRL_INSTANTIATE(float)
PYCRL_INSTANTIATE(double)
#undef PYCRL_INSTANTIATE

}  // namespace pycrl

// Kernel A on the CPU. Work is split over (sample, channel) planes: each plane
// owns its slice of every output and gradient, so no two threads ever write
// the same element and the result does not depend on the thread count.
#include <cmath>
#include <cstring>
#include <vector>

#include "parallel.h"
#include "pycrl/kernels.h"
#include "pycrl/recon_diff.h"

namespace pycrl {
namespace {

// Bilinear taps of every output row and column, per view (computed once).
template <typename T> struct ViewTaps {
  std::vector<Tap<T>> y, x;
  bool identity = false;  // same size as the input: read directly
};

template <typename T> std::vector<ViewTaps<T>> make_taps(const ReconDiffArgs<T>& a) {
  std::vector<ViewTaps<T>> taps(a.V);
  for (int v = 0; v < a.V; ++v) {
    auto& t = taps[v];
    t.identity = a.vh[v] == a.H && a.vw[v] == a.W;
    t.y.resize(a.H);
    t.x.resize(a.W);
    for (int y = 0; y < a.H; ++y) t.y[y] = bilinear_tap<T>(y, a.H, a.vh[v], a.align_corners);
    for (int x = 0; x < a.W; ++x) t.x[x] = bilinear_tap<T>(x, a.W, a.vw[v], a.align_corners);
  }
  return taps;
}

template <typename T> const T* view_plane(const ReconDiffArgs<T>& a, int v, int64_t plane) {
  return a.views[v] + plane * static_cast<int64_t>(a.vh[v]) * a.vw[v];
}

// One row of sum_v w_v |up(r_v) - x| for plane p, written to `row`.
template <typename T>
void diff_row(const ReconDiffArgs<T>& a, const std::vector<ViewTaps<T>>& taps, int64_t p, int y,
              const T* xrow, T* row) {
  for (int x = 0; x < a.W; ++x) row[x] = T(0);
  for (int v = 0; v < a.V; ++v) {
    const T* r = view_plane(a, v, p);
    const T w = a.weight[v];
    if (taps[v].identity) {
      const T* rrow = r + static_cast<int64_t>(y) * a.W;
      for (int x = 0; x < a.W; ++x) row[x] += w * std::abs(rrow[x] - xrow[x]);
    } else {
      const Tap<T>& ty = taps[v].y[y];
      for (int x = 0; x < a.W; ++x) row[x] += w * std::abs(bilinear_sample(r, a.vw[v], ty, taps[v].x[x]) - xrow[x]);
    }
  }
}

}  // namespace

template <typename T> void recon_diff_forward_cpu(const ReconDiffArgs<T>& a, const ReconDiffOut<T>& o) {
  const int64_t planes = a.B * a.C;
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const bool pool = o.pooled != nullptr && a.Ph > 0 && a.Pw > 0;
  const int64_t pool_size = static_cast<int64_t>(a.Ph) * a.Pw;
  auto taps = make_taps(a);
  std::vector<double> plane_sum(planes, 0.0);
  std::vector<double> plane_pool(pool ? planes * pool_size : 0, 0.0);

  parallel_for(planes, [&](int64_t begin, int64_t end) {
    std::vector<T> row(a.W);
    std::vector<double> colsum(pool ? a.Pw : 0);
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = a.x + p * hw;
      double total = 0.0;
      for (int y = 0; y < a.H; ++y) {
        diff_row(a, taps, p, y, xp + static_cast<int64_t>(y) * a.W, row.data());
        double rs = 0.0;
        for (int x = 0; x < a.W; ++x) rs += row[x];
        total += rs;
        if (!pool) continue;
        for (int j = 0; j < a.Pw; ++j) {
          double s = 0.0;
          for (int x = pool_start(j, a.W, a.Pw); x < pool_end(j, a.W, a.Pw); ++x) s += row[x];
          colsum[j] = s;
        }
        double* cell = plane_pool.data() + p * pool_size;
        for (int i = pool_first_cell(y, a.H, a.Ph); i <= pool_last_cell(y, a.H, a.Ph); ++i)
          for (int j = 0; j < a.Pw; ++j) cell[i * a.Pw + j] += colsum[j];
      }
      plane_sum[p] = total;
    }
  });

  // Reduce over channels (sequential, tiny): per-sample loss, masked mean, pooled map.
  const double inv_chw = 1.0 / (static_cast<double>(a.C) * hw);
  double num = 0.0, den = 0.0;
  for (int64_t b = 0; b < a.B; ++b) {
    double s = 0.0;
    for (int c = 0; c < a.C; ++c) s += plane_sum[b * a.C + c];
    const double l = s * inv_chw;
    o.per_sample[b] = static_cast<T>(l);
    const double m = a.mask ? static_cast<double>(a.mask[b]) : 1.0;
    num += m * l;
    den += m;
  }
  o.loss[0] = static_cast<T>(num / std::max(den, 1.0));
  if (!pool) return;
  for (int64_t b = 0; b < a.B; ++b)
    for (int i = 0; i < a.Ph; ++i)
      for (int j = 0; j < a.Pw; ++j) {
        double s = 0.0;
        for (int c = 0; c < a.C; ++c) s += plane_pool[(b * a.C + c) * pool_size + i * a.Pw + j];
        const double area = static_cast<double>(pool_end(i, a.H, a.Ph) - pool_start(i, a.H, a.Ph)) *
                            (pool_end(j, a.W, a.Pw) - pool_start(j, a.W, a.Pw));
        o.pooled[b * pool_size + i * a.Pw + j] = static_cast<T>(s / (a.C * area));
      }
}

template <typename T> void recon_diff_backward_cpu(const ReconDiffArgs<T>& a, const ReconDiffGrads<T>& g) {
  const int64_t planes = a.B * a.C;
  const int64_t hw = static_cast<int64_t>(a.H) * a.W;
  const bool pool = g.grad_pooled != nullptr && a.Ph > 0 && a.Pw > 0;
  const int64_t pool_size = static_cast<int64_t>(a.Ph) * a.Pw;
  auto taps = make_taps(a);
  double den = 0.0;
  for (int64_t b = 0; b < a.B; ++b) den += a.mask ? static_cast<double>(a.mask[b]) : 1.0;
  den = std::max(den, 1.0);
  const double gl = g.grad_loss ? static_cast<double>(g.grad_loss[0]) : 0.0;
  const T inv_chw = static_cast<T>(1.0 / (static_cast<double>(a.C) * hw));
  const T inv_c = static_cast<T>(1.0 / a.C);

  parallel_for(planes, [&](int64_t begin, int64_t end) {
    std::vector<T> up(a.W), gx(a.W);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / a.C;
      const double m = a.mask ? static_cast<double>(a.mask[b]) : 1.0;
      const double gs = g.grad_per_sample ? static_cast<double>(g.grad_per_sample[b]) : 0.0;
      const T base = static_cast<T>(gl * m / den + gs) * inv_chw;
      const T* gp = pool ? g.grad_pooled + b * pool_size : nullptr;
      for (int v = 0; v < a.V; ++v)
        if (g.grad_views[v])
          std::memset(g.grad_views[v] + p * a.vh[v] * a.vw[v], 0, sizeof(T) * a.vh[v] * a.vw[v]);
      const T* xp = a.x + p * hw;
      for (int y = 0; y < a.H; ++y) {
        const T* xrow = xp + static_cast<int64_t>(y) * a.W;
        for (int x = 0; x < a.W; ++x) {
          up[x] = pool ? pixel_upstream(base, gp, y, x, a.H, a.W, a.Ph, a.Pw, inv_c) : base;
          gx[x] = T(0);
        }
        for (int v = 0; v < a.V; ++v) {
          const T* r = view_plane(a, v, p);
          T* gr = g.grad_views[v] ? g.grad_views[v] + p * a.vh[v] * a.vw[v] : nullptr;
          const T w = a.weight[v];
          const Tap<T>& ty = taps[v].y[y];
          for (int x = 0; x < a.W; ++x) {
            const Tap<T>& tx = taps[v].x[x];
            const T s = w * abs_grad(bilinear_sample(r, a.vw[v], ty, tx) - xrow[x]) * up[x];
            gx[x] -= s;
            if (!gr) continue;
            T* r0 = gr + static_cast<int64_t>(ty.i0) * a.vw[v];
            T* r1 = gr + static_cast<int64_t>(ty.i1) * a.vw[v];
            const T s0 = s * (T(1) - ty.l1), s1 = s * ty.l1;
            r0[tx.i0] += s0 * (T(1) - tx.l1);
            r0[tx.i1] += s0 * tx.l1;
            r1[tx.i0] += s1 * (T(1) - tx.l1);
            r1[tx.i1] += s1 * tx.l1;
          }
        }
        if (g.grad_x) std::memcpy(g.grad_x + p * hw + static_cast<int64_t>(y) * a.W, gx.data(), sizeof(T) * a.W);
      }
    }
  });
}

template void recon_diff_forward_cpu<float>(const ReconDiffArgs<float>&, const ReconDiffOut<float>&);
template void recon_diff_forward_cpu<double>(const ReconDiffArgs<double>&, const ReconDiffOut<double>&);
template void recon_diff_backward_cpu<float>(const ReconDiffArgs<float>&, const ReconDiffGrads<float>&);
template void recon_diff_backward_cpu<double>(const ReconDiffArgs<double>&, const ReconDiffGrads<double>&);

}  // namespace pycrl

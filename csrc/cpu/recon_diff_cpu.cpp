// Kernel A on the CPU. Work is split over (sample, channel) planes: each plane
// owns its slice of every output and gradient, so no two threads ever write
// the same element and the result does not depend on the thread count.
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "parallel.h"
#include "pycrl/kernels.h"
#include "pycrl/recon_diff.h"

namespace pycrl {
namespace {

// Bilinear taps of every output row and column, per view (computed once).
// `from_*` is the transpose of the column taps: for source column j, the
// output columns x in [from_start[j], from_start[j+1]) with weights, so the
// backward pass gathers instead of scattering.
template <typename T> struct ViewTaps {
  std::vector<Tap<T>> y, x;
  std::vector<int> from_start, from_x;
  std::vector<T> from_w;
  bool identity = false;  // same size as the input: read directly
};

template <typename T> void transpose_taps(ViewTaps<T>& t, int w) {
  std::vector<std::vector<std::pair<int, T>>> lists(w);
  for (int x = 0; x < static_cast<int>(t.x.size()); ++x) {
    const Tap<T>& tx = t.x[x];
    lists[tx.i0].emplace_back(x, T(1) - tx.l1);
    lists[tx.i1].emplace_back(x, tx.l1);  // i1 == i0 at the border: weights add up
  }
  t.from_start.assign(1, 0);
  for (int j = 0; j < w; ++j) {
    for (auto& e : lists[j]) {
      t.from_x.push_back(e.first);
      t.from_w.push_back(e.second);
    }
    t.from_start.push_back(static_cast<int>(t.from_x.size()));
  }
}

template <typename T> std::vector<ViewTaps<T>> make_taps(const ReconDiffArgs<T>& a) {
  std::vector<ViewTaps<T>> taps(a.V);
  for (int v = 0; v < a.V; ++v) {
    auto& t = taps[v];
    t.identity = a.vh[v] == a.H && a.vw[v] == a.W;
    t.y.resize(a.H);
    t.x.resize(a.W);
    for (int y = 0; y < a.H; ++y) t.y[y] = bilinear_tap<T>(y, a.H, a.vh[v], a.align_corners);
    for (int x = 0; x < a.W; ++x) t.x[x] = bilinear_tap<T>(x, a.W, a.vw[v], a.align_corners);
    if (!t.identity) transpose_taps(t, a.vw[v]);
  }
  return taps;
}

template <typename T> const T* view_plane(const ReconDiffArgs<T>& a, int v, int64_t plane) {
  return a.views[v] + plane * static_cast<int64_t>(a.vh[v]) * a.vw[v];
}

// Row y of view v upsampled to the input width: the vertical interpolation of
// two source rows into `vrow` (w_v values), then the horizontal taps into `up`.
template <typename T>
const T* upsampled_row(const ReconDiffArgs<T>& a, const ViewTaps<T>& t, int v, const T* r, int y, T* vrow, T* up) {
  const int w = a.vw[v];
  if (t.identity) return r + static_cast<int64_t>(y) * w;
  const Tap<T>& ty = t.y[y];
  const T* r0 = r + static_cast<int64_t>(ty.i0) * w;
  const T* r1 = r + static_cast<int64_t>(ty.i1) * w;
  for (int j = 0; j < w; ++j) vrow[j] = lerp(r0[j], r1[j], ty.l1);
  for (int x = 0; x < a.W; ++x) up[x] = lerp(vrow[t.x[x].i0], vrow[t.x[x].i1], t.x[x].l1);
  return up;
}

// Per-thread row buffers.
template <typename T> struct RowBuffers {
  std::vector<T> vrow, up, acc, grad, tmp;
  explicit RowBuffers(int W) : vrow(W), up(W), acc(W), grad(W), tmp(W) {}
};

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
    RowBuffers<T> buf(a.W);
    T* row = buf.acc.data();
    std::vector<double> colsum(pool ? a.Pw : 0);
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = a.x + p * hw;
      double total = 0.0;
      for (int y = 0; y < a.H; ++y) {
        const T* xrow = xp + static_cast<int64_t>(y) * a.W;
        for (int x = 0; x < a.W; ++x) row[x] = T(0);
        for (int v = 0; v < a.V; ++v) {
          const T* up = upsampled_row(a, taps[v], v, view_plane(a, v, p), y, buf.vrow.data(), buf.up.data());
          const T w = a.weight[v];
          for (int x = 0; x < a.W; ++x) row[x] += w * std::abs(up[x] - xrow[x]);
        }
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
    const double m = static_cast<double>(a.mask[b]);
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
  for (int64_t b = 0; b < a.B; ++b) den += static_cast<double>(a.mask[b]);
  den = std::max(den, 1.0);
  const double gl = g.grad_loss ? static_cast<double>(g.grad_loss[0]) : 0.0;
  const T inv_chw = static_cast<T>(1.0 / (static_cast<double>(a.C) * hw));
  const T inv_c = static_cast<T>(1.0 / a.C);

  parallel_for(planes, [&](int64_t begin, int64_t end) {
    RowBuffers<T> buf(a.W);
    T* upstream = buf.acc.data();
    T* gx = buf.grad.data();
    T* s = buf.tmp.data();  // d loss / d up(r_v) along one row
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / a.C;
      const double gs = g.grad_per_sample ? static_cast<double>(g.grad_per_sample[b]) : 0.0;
      const T base = static_cast<T>(gl * static_cast<double>(a.mask[b]) / den + gs) * inv_chw;
      const T* gp = pool ? g.grad_pooled + b * pool_size : nullptr;
      const bool silent = !pool && base == T(0);  // e.g. a fake sample under the real-only loss
      for (int v = 0; v < a.V; ++v)
        if (g.grad_views[v] && (silent || !taps[v].identity))
          std::memset(g.grad_views[v] + p * a.vh[v] * a.vw[v], 0, sizeof(T) * a.vh[v] * a.vw[v]);
      if (silent) {
        if (g.grad_x) std::memset(g.grad_x + p * hw, 0, sizeof(T) * hw);
        continue;
      }
      const T* xp = a.x + p * hw;
      for (int y = 0; y < a.H; ++y) {
        const T* xrow = xp + static_cast<int64_t>(y) * a.W;
        for (int x = 0; x < a.W; ++x) {
          upstream[x] = pool ? pixel_upstream(base, gp, y, x, a.H, a.W, a.Ph, a.Pw, inv_c) : base;
          gx[x] = T(0);
        }
        for (int v = 0; v < a.V; ++v) {
          const int w = a.vw[v];
          const T* up = upsampled_row(a, taps[v], v, view_plane(a, v, p), y, buf.vrow.data(), buf.up.data());
          const T wv = a.weight[v];
          for (int x = 0; x < a.W; ++x) {
            s[x] = wv * abs_grad(up[x] - xrow[x]) * upstream[x];
            gx[x] -= s[x];
          }
          if (!g.grad_views[v]) continue;
          T* gr = g.grad_views[v] + p * a.vh[v] * w;
          if (taps[v].identity) {
            std::memcpy(gr + static_cast<int64_t>(y) * w, s, sizeof(T) * w);
            continue;
          }
          // Transpose of upsampled_row: horizontal taps into a source-width
          // row, then split between the two source rows.
          T* h = buf.vrow.data();
          const ViewTaps<T>& t = taps[v];
          for (int j = 0; j < w; ++j) {
            T acc = T(0);
            for (int k = t.from_start[j]; k < t.from_start[j + 1]; ++k) acc += s[t.from_x[k]] * t.from_w[k];
            h[j] = acc;
          }
          const Tap<T>& ty = taps[v].y[y];
          T* g0 = gr + static_cast<int64_t>(ty.i0) * w;
          T* g1 = gr + static_cast<int64_t>(ty.i1) * w;
          const T l0 = T(1) - ty.l1, l1 = ty.l1;
          for (int j = 0; j < w; ++j) g0[j] += h[j] * l0;
          for (int j = 0; j < w; ++j) g1[j] += h[j] * l1;
        }
        if (g.grad_x) std::memcpy(g.grad_x + p * hw + static_cast<int64_t>(y) * a.W, gx, sizeof(T) * a.W);
      }
    }
  });
}

template void recon_diff_forward_cpu<float>(const ReconDiffArgs<float>&, const ReconDiffOut<float>&);
template void recon_diff_forward_cpu<double>(const ReconDiffArgs<double>&, const ReconDiffOut<double>&);
template void recon_diff_backward_cpu<float>(const ReconDiffArgs<float>&, const ReconDiffGrads<float>&);
template void recon_diff_backward_cpu<double>(const ReconDiffArgs<double>&, const ReconDiffGrads<double>&);

}  // namespace pycrl

// pycrl._C: the fused kernels behind a validating, zero-copy interface.
// Callers (pycrl.ops) allocate the outputs with the input's dtype and device;
// each function checks every argument, then runs the CPU or CUDA build with
// the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <sstream>

#include "cpu/parallel.h"
#include "pycrl/kernels.h"
#include "tensor_view.h"

namespace py = pybind11;
using namespace pycrl;

namespace pycrl {
CudaStatus cuda_status();  // cuda/runtime.cu, or the stub below
}

#ifndef PYCRL_WITH_CUDA
namespace pycrl {
CudaStatus cuda_status() { return {false, 0, "pycrl._C was built without CUDA (nvcc was not found at build time)"}; }
#define PYCRL_NO_CUDA_KERNEL(fn, ...)                                              \
  template <typename T> void fn(__VA_ARGS__) { throw std::logic_error("unreachable"); }
PYCRL_NO_CUDA_KERNEL(recon_diff_forward_cuda, const ReconDiffArgs<T>&, const ReconDiffOut<T>&, void*)
PYCRL_NO_CUDA_KERNEL(recon_diff_backward_cuda, const ReconDiffArgs<T>&, const ReconDiffGrads<T>&, void*)
PYCRL_NO_CUDA_KERNEL(compactness_forward_cuda, const CompactnessArgs<T>&, const CompactnessOut<T>&, void*)
PYCRL_NO_CUDA_KERNEL(compactness_backward_cuda, const CompactnessArgs<T>&, const CompactnessGrads<T>&, void*)
PYCRL_NO_CUDA_KERNEL(prototype_distance_cuda, const PrototypeArgs<T>&, void*)
#undef PYCRL_NO_CUDA_KERNEL
}  // namespace pycrl
#endif

namespace {

using Opt = std::optional<py::object>;

bool given(const Opt& o) { return o.has_value() && !o->is_none(); }

// Reads an optional argument as a view checked against a reference tensor.
std::optional<View> optional_like(const Opt& o, const std::string& name, const View& ref, const std::string& ref_name,
                                  bool writable, uintptr_t stream) {
  if (!given(o)) return std::nullopt;
  View v = as_view(*o, name, writable, stream);
  expect_same_dtype(v, name, ref, ref_name);
  expect_same_device(v, name, ref, ref_name);
  return v;
}

View required_like(py::handle o, const std::string& name, const View& ref, const std::string& ref_name,
                   bool writable, uintptr_t stream) {
  View v = as_view(o, name, writable, stream);
  expect_same_dtype(v, name, ref, ref_name);
  expect_same_device(v, name, ref, ref_name);
  return v;
}

void check_cuda_build(const View& ref, const std::string& name) {
#ifndef PYCRL_WITH_CUDA
  if (ref.device == Device::cuda) throw py::value_error(name + ": is a CUDA tensor, but " + cuda_status().reason);
#else
  (void)ref;
  (void)name;
#endif
}

template <typename F> void run_typed(DType dt, F&& f) {
  if (dt == DType::f32) f(float{});
  else f(double{});
}

// ---- Kernel A -------------------------------------------------------------

struct ReconInputs {
  View x, mask;
  std::vector<View> views;
  std::vector<double> weights;
  int Ph = 0, Pw = 0;
};

ReconInputs recon_inputs(py::handle x_obj, const py::sequence& views, const std::vector<double>& weights,
                         py::handle mask_obj, uintptr_t stream) {
  ReconInputs in;
  in.x = as_view(x_obj, "x", false, stream);
  expect_ndim(in.x, "x", {4}, "(B, C, H, W)");
  expect_float(in.x, "x");
  const int64_t B = in.x.dim(0), C = in.x.dim(1), H = in.x.dim(2), W = in.x.dim(3);
  if (C < 1 || H < 1 || W < 1) throw py::value_error("x: expected C, H, W >= 1, got shape " + in.x.shape_str());
  if (H > (1 << 20) || W > (1 << 20)) throw py::value_error("x: spatial size " + in.x.shape_str() + " is too large");
  const size_t V = py::len(views);
  if (V < 1 || V > static_cast<size_t>(kMaxViews))
    throw py::value_error("views: expected 1 to " + std::to_string(kMaxViews) + " reconstructions, got " +
                          std::to_string(V));
  if (weights.size() != V)
    throw py::value_error("weights: expected one weight per view (" + std::to_string(V) + "), got " +
                          std::to_string(weights.size()));
  for (size_t v = 0; v < V; ++v) {
    const std::string name = "views[" + std::to_string(v) + "]";
    View r = required_like(views[v], name, in.x, "x", false, stream);
    expect_ndim(r, name, {4}, "(B, C, h, w)");
    if (r.dim(0) != B || r.dim(1) != C)
      throw py::value_error(name + ": expected batch and channels (" + std::to_string(B) + ", " + std::to_string(C) +
                            ") like x, got shape " + r.shape_str());
    if (r.dim(2) < 1 || r.dim(3) < 1 || r.dim(2) > H || r.dim(3) > W)
      throw py::value_error(name + ": expected a resolution between 1x1 and the input's " + std::to_string(H) + "x" +
                            std::to_string(W) + ", got " + std::to_string(r.dim(2)) + "x" + std::to_string(r.dim(3)));
    in.views.push_back(std::move(r));
  }
  in.weights = weights;
  in.mask = required_like(mask_obj, "mask", in.x, "x", false, stream);
  expect_shape(in.mask, "mask", {B});
  return in;
}

template <typename T> ReconDiffArgs<T> recon_args(const ReconInputs& in, bool align_corners) {
  ReconDiffArgs<T> a;
  a.x = in.x.ptr<T>();
  a.B = in.x.dim(0);
  a.C = static_cast<int>(in.x.dim(1));
  a.H = static_cast<int>(in.x.dim(2));
  a.W = static_cast<int>(in.x.dim(3));
  a.V = static_cast<int>(in.views.size());
  for (int v = 0; v < a.V; ++v) {
    a.views[v] = in.views[v].ptr<T>();
    a.vh[v] = static_cast<int>(in.views[v].dim(2));
    a.vw[v] = static_cast<int>(in.views[v].dim(3));
    a.weight[v] = static_cast<T>(in.weights[v]);
  }
  a.mask = in.mask.ptr<T>();
  a.align_corners = align_corners;
  a.Ph = in.Ph;
  a.Pw = in.Pw;
  return a;
}

void recon_diff_forward(py::handle x, const py::sequence& views, const std::vector<double>& weights, py::handle mask,
                        py::handle per_sample, py::handle loss, const Opt& pooled, bool align_corners,
                        uintptr_t stream) {
  ReconInputs in = recon_inputs(x, views, weights, mask, stream);
  View ps = required_like(per_sample, "per_sample", in.x, "x", true, stream);
  expect_shape(ps, "per_sample", {in.x.dim(0)});
  View lo = required_like(loss, "loss", in.x, "x", true, stream);
  expect_shape(lo, "loss", {});
  auto pv = optional_like(pooled, "pooled", in.x, "x", true, stream);
  if (pv) {
    expect_ndim(*pv, "pooled", {3}, "(B, Ph, Pw)");
    if (pv->dim(0) != in.x.dim(0) || pv->dim(1) < 1 || pv->dim(2) < 1 || pv->dim(1) > in.x.dim(2) ||
        pv->dim(2) > in.x.dim(3))
      throw py::value_error("pooled: expected (B, Ph, Pw) with 1 <= Ph <= H and 1 <= Pw <= W, got " + pv->shape_str() +
                            " for x of shape " + in.x.shape_str());
    in.Ph = static_cast<int>(pv->dim(1));
    in.Pw = static_cast<int>(pv->dim(2));
  }
  check_cuda_build(in.x, "x");
  run_typed(in.x.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto a = recon_args<T>(in, align_corners);
    ReconDiffOut<T> o{ps.ptr<T>(), lo.ptr<T>(), pv ? pv->ptr<T>() : nullptr};
    py::gil_scoped_release nogil;
    if (in.x.device == Device::cuda) recon_diff_forward_cuda(a, o, reinterpret_cast<void*>(stream));
    else recon_diff_forward_cpu(a, o);
  });
}

void recon_diff_backward(py::handle x, const py::sequence& views, const std::vector<double>& weights, py::handle mask,
                         const Opt& grad_loss, const Opt& grad_per_sample, const Opt& grad_pooled, const Opt& grad_x,
                         const std::optional<py::sequence>& grad_views, bool align_corners, uintptr_t stream) {
  ReconInputs in = recon_inputs(x, views, weights, mask, stream);
  const int64_t B = in.x.dim(0);
  auto gl = optional_like(grad_loss, "grad_loss", in.x, "x", false, stream);
  if (gl) expect_shape(*gl, "grad_loss", {});
  auto gs = optional_like(grad_per_sample, "grad_per_sample", in.x, "x", false, stream);
  if (gs) expect_shape(*gs, "grad_per_sample", {B});
  auto gp = optional_like(grad_pooled, "grad_pooled", in.x, "x", false, stream);
  if (gp) {
    expect_ndim(*gp, "grad_pooled", {3}, "(B, Ph, Pw)");
    if (gp->dim(0) != B || gp->dim(1) < 1 || gp->dim(2) < 1 || gp->dim(1) > in.x.dim(2) || gp->dim(2) > in.x.dim(3))
      throw py::value_error("grad_pooled: expected (B, Ph, Pw) within the input size, got " + gp->shape_str());
    in.Ph = static_cast<int>(gp->dim(1));
    in.Pw = static_cast<int>(gp->dim(2));
  }
  auto gx = optional_like(grad_x, "grad_x", in.x, "x", true, stream);
  if (gx) expect_shape(*gx, "grad_x", in.x.shape);
  std::vector<std::optional<View>> gv(in.views.size());
  if (grad_views) {
    if (py::len(*grad_views) != in.views.size())
      throw py::value_error("grad_views: expected " + std::to_string(in.views.size()) + " entries (None allowed), got " +
                            std::to_string(py::len(*grad_views)));
    for (size_t v = 0; v < in.views.size(); ++v) {
      const std::string name = "grad_views[" + std::to_string(v) + "]";
      gv[v] = optional_like(py::object((*grad_views)[v]), name, in.x, "x", true, stream);
      if (gv[v]) expect_shape(*gv[v], name, in.views[v].shape);
    }
  }
  check_cuda_build(in.x, "x");
  run_typed(in.x.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto a = recon_args<T>(in, align_corners);
    ReconDiffGrads<T> g;
    g.grad_loss = gl ? gl->ptr<T>() : nullptr;
    g.grad_per_sample = gs ? gs->ptr<T>() : nullptr;
    g.grad_pooled = gp ? gp->ptr<T>() : nullptr;
    g.grad_x = gx ? gx->ptr<T>() : nullptr;
    for (size_t v = 0; v < gv.size(); ++v) g.grad_views[v] = gv[v] ? gv[v]->ptr<T>() : nullptr;
    py::gil_scoped_release nogil;
    if (in.x.device == Device::cuda) recon_diff_backward_cuda(a, g, reinterpret_cast<void*>(stream));
    else recon_diff_backward_cpu(a, g);
  });
}

// ---- Kernel B -------------------------------------------------------------

struct CompactInputs {
  View feats, mask;
  std::optional<View> centre;
  int64_t B = 0, D = 0, HW = 1;
};

CompactInputs compact_inputs(py::handle feats, py::handle mask, const Opt& centre, uintptr_t stream) {
  CompactInputs in;
  in.feats = as_view(feats, "features", false, stream);
  expect_ndim(in.feats, "features", {2, 4}, "(B, D) or (B, D, h, w)");
  expect_float(in.feats, "features");
  in.B = in.feats.dim(0);
  in.D = in.feats.dim(1);
  in.HW = in.feats.ndim() == 4 ? in.feats.dim(2) * in.feats.dim(3) : 1;
  if (in.D < 1 || in.HW < 1)
    throw py::value_error("features: expected D >= 1 and a non-empty map, got shape " + in.feats.shape_str());
  in.mask = required_like(mask, "is_real", in.feats, "features", false, stream);
  expect_shape(in.mask, "is_real", {in.B});
  in.centre = optional_like(centre, "centre", in.feats, "features", false, stream);
  if (in.centre) expect_shape(*in.centre, "centre", {in.D});
  return in;
}

template <typename T> CompactnessArgs<T> compact_args(const CompactInputs& in) {
  CompactnessArgs<T> a;
  a.feats = in.feats.ptr<T>();
  a.B = in.B;
  a.D = in.D;
  a.HW = in.HW;
  a.mask = in.mask.ptr<T>();
  a.centre = in.centre ? in.centre->ptr<T>() : nullptr;
  return a;
}

void compactness_forward(py::handle feats, py::handle mask, py::handle normed, py::handle norms, py::handle stats,
                         const Opt& centre, uintptr_t stream) {
  CompactInputs in = compact_inputs(feats, mask, centre, stream);
  View n = required_like(normed, "normed", in.feats, "features", true, stream);
  expect_shape(n, "normed", {in.B, in.D});
  View nr = required_like(norms, "norms", in.feats, "features", true, stream);
  expect_shape(nr, "norms", {in.B});
  View st = required_like(stats, "stats", in.feats, "features", true, stream);
  expect_shape(st, "stats", {3});
  check_cuda_build(in.feats, "features");
  run_typed(in.feats.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto a = compact_args<T>(in);
    CompactnessOut<T> o{n.ptr<T>(), nr.ptr<T>(), st.ptr<T>()};
    py::gil_scoped_release nogil;
    if (in.feats.device == Device::cuda) compactness_forward_cuda(a, o, reinterpret_cast<void*>(stream));
    else compactness_forward_cpu(a, o);
  });
}

void compactness_backward(py::handle grad_feats, py::handle mask, py::handle normed, py::handle norms,
                          py::handle grad_stats, const Opt& centre, uintptr_t stream) {
  // grad_feats has the features' shape; it stands in for them in the checks.
  CompactInputs in = compact_inputs(grad_feats, mask, centre, stream);
  View gf = as_view(grad_feats, "grad_features", true, stream);
  View n = required_like(normed, "normed", in.feats, "grad_features", false, stream);
  expect_shape(n, "normed", {in.B, in.D});
  View nr = required_like(norms, "norms", in.feats, "grad_features", false, stream);
  expect_shape(nr, "norms", {in.B});
  View gs = required_like(grad_stats, "grad_stats", in.feats, "grad_features", false, stream);
  expect_shape(gs, "grad_stats", {3});
  check_cuda_build(in.feats, "grad_features");
  run_typed(in.feats.dtype, [&](auto tag) {
    using T = decltype(tag);
    auto a = compact_args<T>(in);
    CompactnessGrads<T> g{n.ptr<T>(), nr.ptr<T>(), gs.ptr<T>(), gf.ptr<T>()};
    py::gil_scoped_release nogil;
    if (in.feats.device == Device::cuda) compactness_backward_cuda(a, g, reinterpret_cast<void*>(stream));
    else compactness_backward_cpu(a, g);
  });
}

void prototype_distance(py::handle feats, py::handle protos, py::handle dist, py::handle index, uintptr_t stream) {
  View f = as_view(feats, "features", false, stream);
  expect_ndim(f, "features", {2, 4}, "(B, D) or (B, D, h, w)");
  expect_float(f, "features");
  View p = required_like(protos, "prototypes", f, "features", false, stream);
  expect_ndim(p, "prototypes", {2}, "(K, D)");
  if (p.dim(0) < 1) throw py::value_error("prototypes: expected at least one prototype, got shape " + p.shape_str());
  if (p.dim(1) != f.dim(1))
    throw py::value_error("prototypes: expected D = " + std::to_string(f.dim(1)) + " like features, got shape " +
                          p.shape_str());
  View d = required_like(dist, "dist", f, "features", true, stream);
  expect_shape(d, "dist", {f.dim(0)});
  View ix = as_view(index, "index", true, stream);
  if (ix.dtype != DType::i64) throw py::type_error("index: expected int64, got " + std::string(dtype_name(ix.dtype)));
  expect_same_device(ix, "index", f, "features");
  expect_shape(ix, "index", {f.dim(0)});
  check_cuda_build(f, "features");
  run_typed(f.dtype, [&](auto tag) {
    using T = decltype(tag);
    PrototypeArgs<T> a;
    a.feats = f.ptr<T>();
    a.B = f.dim(0);
    a.D = f.dim(1);
    a.HW = f.ndim() == 4 ? f.dim(2) * f.dim(3) : 1;
    a.protos = p.ptr<T>();
    a.K = p.dim(0);
    a.dist = d.ptr<T>();
    a.index = ix.ptr<int64_t>();
    py::gil_scoped_release nogil;
    if (f.device == Device::cuda) prototype_distance_cuda(a, reinterpret_cast<void*>(stream));
    else prototype_distance_cpu(a);
  });
}

py::dict build_info() {
  py::dict d;
#if defined(__clang__)
  d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  d["compiler"] = std::string("gcc ") + __VERSION__;
#else
  d["compiler"] = "unknown";
#endif
#ifdef PYCRL_WITH_CUDA
  d["cuda"] = true;
  d["cuda_version"] = PYCRL_CUDA_VERSION;
  d["cuda_architectures"] = std::string(PYCRL_CUDA_ARCHS);
#else
  d["cuda"] = false;
  d["cuda_version"] = py::none();
  d["cuda_architectures"] = py::none();
#endif
  d["parallelism"] = "std::thread";
  d["num_threads"] = num_threads();
  d["dtypes"] = py::make_tuple("float32", "float64");
  d["max_views"] = kMaxViews;
  d["input_protocols"] = py::make_tuple("dlpack", "buffer");
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pycrl's fused kernels (multi-view reconstruction difference, compactness distance); see pycrl.ops";

  py::class_<CudaStatus>(m, "CudaStatus", "Whether CUDA kernels can run here; false with the reason when not.")
      .def_readonly("available", &CudaStatus::available)
      .def_readonly("device_count", &CudaStatus::device_count)
      .def_readonly("reason", &CudaStatus::reason)
      .def("__bool__", [](const CudaStatus& s) { return s.available; })
      .def("__repr__", [](const CudaStatus& s) {
        std::ostringstream o;
        o << "CudaStatus(available=" << (s.available ? "True" : "False") << ", device_count=" << s.device_count
          << ", reason='" << s.reason << "')";
        return o.str();
      });

  m.def("build_info", &build_info, "How this extension was built: compiler, CUDA and architectures, threads, dtypes.");
  m.def("cuda_available", &cuda_status,
        "CudaStatus: truthy when the CUDA kernels were compiled and a device is usable; otherwise falsy, with "
        "`.reason` (not built with CUDA, no driver, no device). Never raises.");
  m.def("num_threads", &num_threads, "Threads the CPU kernels use (PYCRL_NUM_THREADS or the core count).");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the CPU kernels' thread count; n <= 0 resets it.");

  m.def("recon_diff_forward", &recon_diff_forward, py::arg("x"), py::arg("views"), py::arg("weights"), py::arg("mask"),
        py::arg("per_sample"), py::arg("loss"), py::arg("pooled") = py::none(), py::arg("align_corners") = false,
        py::arg("stream") = 0);
  m.def("recon_diff_backward", &recon_diff_backward, py::arg("x"), py::arg("views"), py::arg("weights"),
        py::arg("mask"), py::arg("grad_loss") = py::none(), py::arg("grad_per_sample") = py::none(),
        py::arg("grad_pooled") = py::none(), py::arg("grad_x") = py::none(), py::arg("grad_views") = py::none(),
        py::arg("align_corners") = false, py::arg("stream") = 0);
  m.def("compactness_forward", &compactness_forward, py::arg("features"), py::arg("is_real"), py::arg("normed"),
        py::arg("norms"), py::arg("stats"), py::arg("centre") = py::none(), py::arg("stream") = 0);
  m.def("compactness_backward", &compactness_backward, py::arg("grad_features"), py::arg("is_real"),
        py::arg("normed"), py::arg("norms"), py::arg("grad_stats"), py::arg("centre") = py::none(),
        py::arg("stream") = 0);
  m.def("prototype_distance", &prototype_distance, py::arg("features"), py::arg("prototypes"), py::arg("dist"),
        py::arg("index"), py::arg("stream") = 0);
}

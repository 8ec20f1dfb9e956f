// Zero-copy views of Python arrays for the bindings: any object with
// __dlpack__ (numpy, torch, cupy, jax, ...) or the buffer protocol. Every
// check raises TypeError / ValueError naming the argument.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pycrl {

namespace py = pybind11;

enum class DType { f32, f64, i64, other };
enum class Device { cpu, cuda };

struct View {
  void* data = nullptr;
  DType dtype = DType::other;
  std::vector<int64_t> shape;
  Device device = Device::cpu;
  int device_id = 0;
  py::object keepalive;  // the DLPack capsule or buffer that owns `data`

  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  int ndim() const { return static_cast<int>(shape.size()); }
  int64_t numel() const;
  std::string shape_str() const;
  template <typename T> T* ptr() const { return static_cast<T*>(data); }
};

const char* dtype_name(DType d);

// `stream` is the CUDA stream the kernel will run on (0 = legacy default);
// DLPack producers use it to order their pending work before ours.
View as_view(py::handle obj, const std::string& name, bool writable, uintptr_t stream);

// Argument checks shared by the bindings.
void expect_ndim(const View& v, const std::string& name, std::initializer_list<int> ndims, const char* layout);
void expect_shape(const View& v, const std::string& name, const std::vector<int64_t>& shape);
void expect_same_dtype(const View& v, const std::string& name, const View& ref, const std::string& ref_name);
void expect_same_device(const View& v, const std::string& name, const View& ref, const std::string& ref_name);
void expect_float(const View& v, const std::string& name);

}  // namespace pycrl

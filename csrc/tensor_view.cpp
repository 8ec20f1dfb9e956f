#include "tensor_view.h"

#include <sstream>

namespace pycrl {
namespace {

// The DLPack ABI (v0.8 "dltensor" capsules), declared here to avoid a
// vendored header: only the fields pycrl reads.
struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
constexpr int32_t kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLCUDAManaged = 13;
constexpr uint8_t kDLInt = 0, kDLFloat = 2;

[[noreturn]] void type_error(const std::string& msg) { throw py::type_error(msg); }
[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

std::string join(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  if (s.size() == 1) o << ",";
  o << ")";
  return o.str();
}

void check_contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides_elems,
                      const std::string& name) {
  for (auto s : shape)
    if (s == 0) return;  // an empty array has no memory to lay out
  int64_t expected = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides_elems[i] != expected)
      value_error(name + ": expected C-contiguous memory, got strides " + join(strides_elems) + " for shape " +
                  join(shape) + " (call .contiguous() / np.ascontiguousarray first)");
    expected *= shape[i];
  }
}

DType dtype_of(uint8_t code, uint8_t bits, uint16_t lanes) {
  if (lanes != 1) return DType::other;
  if (code == kDLFloat && bits == 32) return DType::f32;
  if (code == kDLFloat && bits == 64) return DType::f64;
  if (code == kDLInt && bits == 64) return DType::i64;
  return DType::other;
}

View from_dlpack(py::handle obj, const std::string& name, uintptr_t stream) {
  py::tuple dev = obj.attr("__dlpack_device__")();
  const int dev_type = dev[0].cast<int>();
  py::object capsule;
  if (dev_type == kDLCUDA || dev_type == kDLCUDAManaged)
    capsule = obj.attr("__dlpack__")(py::arg("stream") = stream == 0 ? 1 : stream);  // 1 = legacy default
  else
    capsule = obj.attr("__dlpack__")();
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (m == nullptr) {
    PyErr_Clear();
    type_error(name + ": __dlpack__ did not return a 'dltensor' capsule");
  }
  const DLTensor& t = m->dl_tensor;
  View v;
  v.keepalive = capsule;  // the producer's capsule destructor frees the tensor
  v.data = static_cast<char*>(t.data) + t.byte_offset;
  v.dtype = dtype_of(t.dtype.code, t.dtype.bits, t.dtype.lanes);
  v.shape.assign(t.shape, t.shape + t.ndim);
  switch (t.device.device_type) {
    case kDLCPU:
    case kDLCUDAHost: v.device = Device::cpu; break;
    case kDLCUDA:
    case kDLCUDAManaged: v.device = Device::cuda; break;
    default: value_error(name + ": unsupported DLPack device type " + std::to_string(t.device.device_type));
  }
  v.device_id = t.device.device_id;
  if (t.strides != nullptr) check_contiguous(v.shape, std::vector<int64_t>(t.strides, t.strides + t.ndim), name);
  return v;
}

View from_buffer(py::handle obj, const std::string& name, bool writable) {
  py::buffer buf = py::reinterpret_borrow<py::buffer>(obj);
  py::buffer_info info = buf.request(writable);
  View v;
  v.keepalive = py::reinterpret_borrow<py::object>(obj);
  v.data = info.ptr;
  v.shape.assign(info.shape.begin(), info.shape.end());
  if (info.format == py::format_descriptor<float>::format()) v.dtype = DType::f32;
  else if (info.format == py::format_descriptor<double>::format()) v.dtype = DType::f64;
  else if (info.itemsize == 8 && (info.format == "q" || info.format == "l")) v.dtype = DType::i64;
  std::vector<int64_t> strides;
  for (auto s : info.strides) strides.push_back(s / static_cast<int64_t>(info.itemsize));
  for (size_t i = 0; i < info.strides.size(); ++i)
    if (info.strides[i] % static_cast<int64_t>(info.itemsize) != 0)
      value_error(name + ": expected C-contiguous memory, got a misaligned stride");
  check_contiguous(v.shape, strides, name);
  return v;
}

}  // namespace

int64_t View::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::string View::shape_str() const { return join(shape); }

const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    default: return "an unsupported dtype";
  }
}

View as_view(py::handle obj, const std::string& name, bool writable, uintptr_t stream) {
  if (obj.is_none()) type_error(name + ": expected an array, got None");
  if (py::hasattr(obj, "__dlpack__") && py::hasattr(obj, "__dlpack_device__")) {
    try {
      return from_dlpack(obj, name, stream);
    } catch (py::error_already_set& e) {
      // numpy refuses to export read-only arrays through DLPack; the buffer
      // protocol still gives a (read-only) view of them.
      if (!e.matches(PyExc_BufferError) || !PyObject_CheckBuffer(obj.ptr())) {
        if (e.matches(PyExc_BufferError) || e.matches(PyExc_RuntimeError))
          value_error(name + ": cannot be shared without a copy: " + std::string(py::str(e.value())));
        throw;
      }
    }
  }
  if (PyObject_CheckBuffer(obj.ptr())) {
    try {
      return from_buffer(obj, name, writable);
    } catch (py::error_already_set& e) {
      if (e.matches(PyExc_BufferError) || e.matches(PyExc_ValueError))
        value_error(name + ": " + std::string(py::str(e.value())) + (writable ? " (an output must be writable)" : ""));
      throw;
    }
  }
  type_error(name + ": expected an array (numpy array, torch tensor, or any object with __dlpack__ or the "
                    "buffer protocol), got " +
             std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
}

void expect_ndim(const View& v, const std::string& name, std::initializer_list<int> ndims, const char* layout) {
  for (int n : ndims)
    if (v.ndim() == n) return;
  value_error(name + ": expected shape " + layout + ", got " + std::to_string(v.ndim()) + "-D shape " +
              v.shape_str());
}

void expect_shape(const View& v, const std::string& name, const std::vector<int64_t>& shape) {
  if (v.shape != shape) value_error(name + ": expected shape " + join(shape) + ", got " + v.shape_str());
}

void expect_float(const View& v, const std::string& name) {
  if (v.dtype != DType::f32 && v.dtype != DType::f64)
    type_error(name + ": expected float32 or float64, got " + dtype_name(v.dtype));
}

void expect_same_dtype(const View& v, const std::string& name, const View& ref, const std::string& ref_name) {
  if (v.dtype != ref.dtype)
    type_error(name + ": expected " + dtype_name(ref.dtype) + " like " + ref_name + ", got " + dtype_name(v.dtype));
}

void expect_same_device(const View& v, const std::string& name, const View& ref, const std::string& ref_name) {
  if (v.device != ref.device || v.device_id != ref.device_id) {
    auto where = [](const View& t) {
      return t.device == Device::cpu ? std::string("cpu") : "cuda:" + std::to_string(t.device_id);
    };
    value_error(name + ": expected a tensor on " + where(ref) + " like " + ref_name + ", got one on " + where(v));
  }
}

}  // namespace pycrl

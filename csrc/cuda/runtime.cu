// CUDA runtime facts for pycrl._C.cuda_available(): never throws.
#include <cuda_runtime.h>

#include "pycrl/kernels.h"

namespace pycrl {

CudaStatus cuda_status() {
  CudaStatus s;
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    if (err == cudaErrorInsufficientDriver)
      s.reason = "no usable NVIDIA driver: none is installed, or it is older than the CUDA " PYCRL_CUDA_VERSION
                 " runtime this build uses (cudaErrorInsufficientDriver)";
    else if (err == cudaErrorNoDevice)
      s.reason = "the NVIDIA driver reports no CUDA device (cudaErrorNoDevice)";
    else
      s.reason = std::string("CUDA runtime error: ") + cudaGetErrorString(err);
    return s;
  }
  s.device_count = n;
  if (n == 0) {
    s.reason = "CUDA runtime: no CUDA device is visible";
    return s;
  }
  s.available = true;
  s.reason = "ok";
  return s;
}

}  // namespace pycrl

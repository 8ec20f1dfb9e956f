// Shared definitions for the CPU and CUDA builds of pycrl's fused kernels.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define PYCRL_HD __host__ __device__ __forceinline__
#else
#define PYCRL_HD inline
#endif

namespace pycrl {

// Accumulation type: sums over a whole image or batch run in double, so the
// float kernels stay within float rounding of a double reference.
template <typename T> struct Acc { using type = double; };

}  // namespace pycrl

// A minimal parallel loop over std::thread: the kernels split a batch into a
// few large independent items, so a static split with no pool is enough and
// keeps the extension free of an OpenMP runtime that could clash with torch's.
#pragma once

#include <cstdint>
#include <functional>

namespace pycrl {

int num_threads();
void set_num_threads(int n);  // n <= 0 restores the default

// Calls fn(begin, end) on contiguous chunks of [0, n), one per thread.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace pycrl

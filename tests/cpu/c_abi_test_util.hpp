// What the C ABI suites share (tests/cpu/test_c_abi.cpp, tests/gpu/test_c_abi_gpu.cu): DLPack
// dtypes, a compact tensor view and the thread's last error message.
#pragma once

#include <cstdint>
#include <string>

#include "qmoe.h"

namespace qmoe::c_abi_test {

constexpr DLDataType kF32{kDLFloat, 32, 1};
constexpr DLDataType kF64{kDLFloat, 64, 1};
constexpr DLDataType kBF16{kDLBfloat, 16, 1};
constexpr DLDataType kFP16{kDLFloat, 16, 1};
constexpr DLDataType kI32{kDLInt, 32, 1};

/// A compact row-major view (strides NULL) of `data` with the caller's shape array.
inline DLTensor tensor(void* data, int64_t* shape, int ndim, DLDataType dtype,
                       DLDevice device = DLDevice{kDLCPU, 0}) {
  DLTensor t{};
  t.data = data;
  t.device = device;
  t.ndim = ndim;
  t.dtype = dtype;
  t.shape = shape;
  return t;
}

inline std::string last_error() {
  return qmoe_last_error();
}

}  // namespace qmoe::c_abi_test

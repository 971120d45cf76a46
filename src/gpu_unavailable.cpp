// Built instead of cuda/*.cu when qmoe is configured without CUDA: every GPU entry point
// exists and returns kUnsupported, so callers link and fall back cleanly.
#include "qmoe/gpu.hpp"

namespace qmoe {

namespace {
Status no_cuda() {
  return unsupported("qmoe was built without CUDA (no nvcc at configure time)");
}
}  // namespace

bool gpu_available() {
  return false;
}

bool has_device_decoder(const FormatSpec&) {
  return false;
}

Status current_device(int*) {
  return no_cuda();
}

DeviceExpertBank::~DeviceExpertBank() = default;
DeviceExpertBank::DeviceExpertBank(DeviceExpertBank&&) noexcept = default;
DeviceExpertBank& DeviceExpertBank::operator=(DeviceExpertBank&&) noexcept = default;
void DeviceExpertBank::release() {}
Status DeviceExpertBank::upload(const ExpertBank&, DeviceExpertBank*) {
  return no_cuda();
}

Status grouped_gemm(const GroupedGemmArgs&, void*, size_t*, cudaStream_t) {
  return no_cuda();
}
Status prepare_workspace(void*, size_t, cudaStream_t) {
  return no_cuda();
}
Status silu_mul_interleaved(ConstMatrixView, MatrixView, cudaStream_t) {
  return no_cuda();
}
Status dequantize_bank(const DeviceBankView&, DType, void*, cudaStream_t) {
  return no_cuda();
}

}  // namespace qmoe

// Public API plumbing that needs no GPU: tensor views and the GPU entry points' behaviour
// in a build or on a machine without a device.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "qmoe/gpu.hpp"
#include "qmoe/tensor.hpp"

namespace qmoe {
namespace {

TEST(TensorView, ContiguousViewHasStrideEqualToCols) {
  std::vector<uint16_t> buf(6 * 10);
  const MatrixView v = matrix_view(buf.data(), 6, 10, DType::kFP16);
  EXPECT_EQ(v.row_stride, 10);
  EXPECT_EQ(v.dtype, DType::kFP16);
  const ConstMatrixView c = v;  // writable views are readable
  EXPECT_EQ(c.data, buf.data());
  EXPECT_EQ(c.rows, 6);
  EXPECT_EQ(c.cols, 10);
  EXPECT_EQ(c.row_stride, 10);
}

/// A well-formed grouped_gemm call on host buffers (x [4, 128], y [4, 32], two experts of a bank
/// view whose pointers are never read: the calls below stop at their checks); *y_out = y.
GroupedGemmArgs host_call(uint16_t** y_out) {
  DeviceBankView bank;
  bank.blob = reinterpret_cast<const uint8_t*>(16);
  bank.descs = reinterpret_cast<const ExpertDesc*>(16);
  bank.num_experts = 2;
  bank.n = 32;
  bank.k = 128;
  bank.format_mask = 1u << 4;
  alignas(16) static uint16_t x[4 * 128], y[4 * 32];
  static int32_t offsets[3] = {0, 2, 4};
  GroupedGemmArgs a;
  a.bank = bank;
  a.x = matrix_view(static_cast<const void*>(x), 4, 128, DType::kBF16);
  a.y = matrix_view(y, 4, 32, DType::kBF16);
  a.expert_offsets = offsets;
  *y_out = y;
  return a;
}

TEST(GpuEntryPoints, WithoutADeviceReportUnsupportedNotACrash) {
  if (gpu_available()) GTEST_SKIP() << "a CUDA device is visible";
  // A well-formed call (the CUB size query has passed) reaches the device check and says
  // unsupported; nothing is written.
  uint16_t* y = nullptr;
  GroupedGemmArgs a = host_call(&y);
  const void* x = a.x.data;
  alignas(16) static unsigned char ws[256];
  size_t bytes = sizeof(ws);
  y[0] = 0x1234;
  EXPECT_EQ(grouped_gemm(a, ws, &bytes, nullptr).code(), StatusCode::kUnsupported);
  EXPECT_EQ(y[0], 0x1234);
  // The gated epilogue too (n = 32: y [4, 16]), and its activation kernel alone.
  a.epilogue = Epilogue::kSiluMulInterleaved;
  a.y = matrix_view(y, 4, 16, DType::kBF16);
  EXPECT_EQ(grouped_gemm(a, ws, &bytes, nullptr).code(), StatusCode::kUnsupported);
  EXPECT_EQ(silu_mul_interleaved(matrix_view(static_cast<const void*>(x), 4, 32, DType::kBF16),
                                 matrix_view(y, 4, 16, DType::kBF16), nullptr)
                .code(),
            StatusCode::kUnsupported);
  EXPECT_EQ(y[0], 0x1234);
  ws[0] = 0x77;
  EXPECT_EQ(prepare_workspace(ws, sizeof(ws), nullptr).code(), StatusCode::kUnsupported);
  EXPECT_EQ(ws[0], 0x77);
  PackedMatrix m;
  m.format = FormatSpec::integer(4, 128, false);
  ASSERT_TRUE(packed_layout(m.format, 32, 128, &m.layout).is_ok());
  m.blob.assign(static_cast<size_t>(m.layout.total_bytes), 0);
  std::vector<PackedMatrix> experts;
  experts.push_back(m);
  ExpertBank host;
  ASSERT_TRUE(ExpertBank::create(std::move(experts), &host).is_ok());
  DeviceExpertBank dbank;
  EXPECT_EQ(DeviceExpertBank::upload(host, &dbank).code(), StatusCode::kUnsupported);
  EXPECT_EQ(dbank.device_bytes(), 0);
}

// The workspace's alignment is checked with the other arguments, before the device: a
// misaligned one is kInvalidArgument on any machine of a CUDA build (the kernels read its parts
// by 8- and 16-byte accesses), and nothing is written.
TEST(GpuEntryPoints, AMisalignedWorkspaceIsAnInvalidArgument) {
#if defined(QMOE_WITH_CUDA)
  const StatusCode want = StatusCode::kInvalidArgument;
#else
  const StatusCode want = StatusCode::kUnsupported;  // no CUDA: every entry point says so
#endif
  uint16_t* y = nullptr;
  const GroupedGemmArgs a = host_call(&y);
  alignas(16) static unsigned char ws[512];
  for (size_t off : {size_t{8}, size_t{4}, size_t{1}}) {
    SCOPED_TRACE(off);
    size_t bytes = sizeof(ws) - off;
    ws[off] = 0x77;
    const Status st = grouped_gemm(a, ws + off, &bytes, nullptr);
    EXPECT_EQ(st.code(), want) << st.to_string();
    EXPECT_EQ(prepare_workspace(ws + off, sizeof(ws) - off, nullptr).code(), want);
    EXPECT_EQ(ws[off], 0x77);
  }
}

// Every registered format has a device decoder in a CUDA build (the trellis formats run on the
// decode kernel and the tile kernels); none without CUDA, and an invalid spec never.
TEST(GpuApi, EveryFormatHasADeviceDecoderInACudaBuild) {
#if defined(QMOE_WITH_CUDA)
  const bool cuda_built = true;
#else
  const bool cuda_built = false;
#endif
  for (const FormatSpec& f : all_formats()) {
    SCOPED_TRACE(f.to_string());
    EXPECT_EQ(has_device_decoder(f), cuda_built);
  }
  FormatSpec bad = FormatSpec::lut(5);  // invalid spec: no decoder either
  EXPECT_FALSE(has_device_decoder(bad));
}

}  // namespace
}  // namespace qmoe

// Host entry points of the GPU path: argument checks (CUTLASS-style: kInvalidArgument for a
// malformed problem, kUnsupported for a well-formed one no kernel here runs) and the kernel
// launches. Never allocates, never synchronises: capturable in a CUDA graph.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <string>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/kernel_split.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/x_digits.cuh"
#include "cuda/kernels/x_rotate.cuh"
#include "qmoe/gpu.hpp"

namespace qmoe {

namespace {

/// Scratch memory every call asks for: a non-zero size keeps the CUB convention usable (null
/// workspace = size query) without a zero-byte allocation, which yields null; x's digits for the
/// decode kernel's integer decode follow it (digits_bytes).
constexpr size_t kWorkspaceBytes = 256;
constexpr int64_t kMaxDim = int64_t{1} << 24;  // as packed_layout
constexpr uintptr_t kRowAlign = 16;

Status cuda_failure(const std::string& what, cudaError_t err) {
  (void)cudaGetLastError();  // a failed call must not surface as a later launch error
  return Status(StatusCode::kCudaError, what + ": " + cudaGetErrorString(err));
}

Status check_bank(const DeviceBankView& b, const std::string& fn) {
  if (b.blob == nullptr || b.descs == nullptr)
    return invalid_argument(fn + ": bank has a null blob or descriptor table");
  if (b.num_experts < 1) return invalid_argument(fn + ": bank has no experts");
  if (b.n < 1 || b.k < 1 || b.n > kMaxDim || b.k > kMaxDim)
    return invalid_argument(fn + ": bank dims [" + std::to_string(b.n) + ", " +
                            std::to_string(b.k) + "] must be in [1, 2^24]");
  if (b.format_mask == 0)
    return invalid_argument(fn + ": bank format_mask is empty (use DeviceExpertBank::view())");
  if ((b.format_mask >> dev::kNumDecoders) != 0)
    return unsupported(fn + ": bank format_mask names decoders this build lacks");
  // Trellis codes are rotated per 128-input block (x_rotate.cuh): their matrices' K is whole
  // blocks (docs/formats.md), so a bank that names them with another K is malformed.
  if ((b.format_mask & dev::kTrellisDecoderMask) != 0 && b.k % kTileCols != 0)
    return invalid_argument(fn + ": bank names trellis experts but k = " + std::to_string(b.k) +
                            " is not a multiple of " + std::to_string(kTileCols));
  if (b.num_experts > dev::kMaxExperts)
    return unsupported(fn + ": " + std::to_string(b.num_experts) + " experts; at most " +
                       std::to_string(dev::kMaxExperts) + " per launch");
  return Status::ok();
}

Status check_dtype(DType t, const std::string& fn) {
  if (t != DType::kBF16 && t != DType::kFP16) return invalid_argument(fn + ": unknown dtype");
  return Status::ok();
}

/// The current device runs the kernels (mma.sync bf16, cp.async, ldmatrix: sm_80+).
Status check_device(const std::string& fn) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return unsupported(fn + ": no CUDA device (" + cudaGetErrorString(err) + ")");
  }
  int major = 0;
  err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err != cudaSuccess) return cuda_failure(fn + ": cudaDeviceGetAttribute", err);
  if (major < 8) return unsupported(fn + ": needs compute capability 8.0 or newer");
  return Status::ok();
}

/// Whether the current device runs the wgmma tile kernel for the activation type (asked once
/// per device and type, then cached: grouped_gemm_wgmma_available).
cudaError_t wgmma_available(DType act, bool* available) {
  return act == DType::kBF16 ? dev::grouped_gemm_wgmma_available<__nv_bfloat16>(available)
                             : dev::grouped_gemm_wgmma_available<__half>(available);
}

/// The call's split between the kernels on the current device, and which tile kernel takes
/// which experts (kernel_split.cuh); wgmma_runs: wgmma_available's answer for the call.
cudaError_t call_split(const GroupedGemmArgs& a, bool wgmma_runs, dev::TileLaunches* tiles,
                       dev::KernelSplit* split) {
  int device = 0, sms = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  // TileKernel::kMmaSync: the call runs as on a device without the wgmma kernel.
  const bool wgmma = wgmma_runs && a.tile_kernel != TileKernel::kMmaSync;
  *split = dev::split_kernels(a, wgmma, sms);
  *tiles = dev::tile_launches(a, *split, wgmma);
  return cudaSuccess;
}

/// Workspace the call needs beyond kWorkspaceBytes: x as digits (x_digits.cuh) for every row,
/// where the decode kernel runs and takes the integer-mma decode (decode_imma).
size_t digits_bytes(const GroupedGemmArgs& a, const dev::KernelSplit& split) {
  if (split.decode_max == 0 || !dev::decode_imma(a, split.decode_max)) return 0;
  return dev::xdig::workspace_bytes(a.x.rows, dev::ceil_div(static_cast<int>(a.bank.k), kTileCols));
}

/// Whether the call launches the tile kernel (for experts above split.decode_max tokens).
bool runs_tile_kernel(const GroupedGemmArgs& a, const dev::KernelSplit& split) {
  return a.x.rows > split.decode_max;
}

/// Bytes of x's digits rounded up to the 256-byte alignment of what follows them.
size_t aligned_digits_bytes(const GroupedGemmArgs& a, const dev::KernelSplit& split) {
  return (digits_bytes(a, split) + 255) / 256 * 256;
}

/// Workspace for the trellis decoders' rotated x (x_rotate.cuh), [m, k] fp16, where the bank
/// holds trellis experts, rounded up to 256 bytes.
size_t rotated_bytes(const GroupedGemmArgs& a) {
  if ((a.bank.format_mask & dev::kTrellisDecoderMask) == 0) return 0;
  return (dev::xrot::workspace_bytes(a.x.rows, a.bank.k) + 255) / 256 * 256;
}

/// Workspace for the [m, n] product where the gated-SiLU epilogue meets a tile-kernel launch
/// (the tile kernels write their product; a kernel then applies the activation).
size_t product_bytes(const GroupedGemmArgs& a, const dev::KernelSplit& split) {
  if (a.epilogue != Epilogue::kSiluMulInterleaved || !runs_tile_kernel(a, split)) return 0;
  return static_cast<size_t>(a.x.rows) * static_cast<size_t>(a.bank.n) * 2;
}

/// p (whose tile_decoders are the bank's format_mask) as a tile launch of the experts whose
/// decoders are in `decoders` (one of tiles' masks): its code slots, kernel form and x are sized
/// and chosen for those alone.
dev::GemmProblem tile_problem(dev::GemmProblem p, const dev::TileLaunches& tiles,
                              uint32_t decoders) {
  p.tile_decoders = dev::tile_item_decoders(tiles, decoders, p.tile_decoders);
  p.a_slot_bytes = dev::max_tile_bytes(decoders);
  p.formed = (decoders & dev::kFormedDecoderMask) != 0 ? 1 : 0;
  if ((decoders & dev::kTrellisDecoderMask) == 0) p.x_rotated = nullptr;
  return p;
}

/// The call's launches: the decode kernel for the experts with 1..split.decode_max tokens,
/// then the tile kernels for the others (on sm_90a wgmma, in a launch of their own for the
/// trellis experts where their mean is high enough, else mma.sync: tile_launches), each skipped
/// when it has no expert (kernel_split.cuh).
template <class Act>
cudaError_t launch_grouped(const dev::KernelSplit& split, const dev::TileLaunches& tiles,
                           dev::GemmProblem p, cudaStream_t stream) {
  cudaError_t err = cudaSuccess;
  if (split.decode_max > 0) {
    p.min_tokens = 1;
    p.max_tokens = split.decode_max;
    err = dev::launch_grouped_gemv<Act>(p, stream);
    // No expert holds more than m tokens: with m <= decode_max the tile kernel has no work.
    if (err != cudaSuccess || p.m <= split.decode_max) return err;
  } else if (p.x_rotated != nullptr) {
    // No decode launch rotated x for the trellis experts: the tile launch's own rotation.
    err = dev::launch_rotate_x<Act>(p, stream);
    if (err != cudaSuccess) return err;
  }
  // The tile kernels write [m, n] (grouped_gemm routes a gated epilogue around them).
  if (p.epilogue != 0) return cudaErrorInvalidValue;
  p.min_tokens = split.decode_max + 1;
  p.max_tokens = INT_MAX;
  p.x_digits = nullptr;
  p.x_info = nullptr;
  for (const uint32_t decoders : {tiles.wgmma, tiles.wgmma_trellis}) {
    if (decoders == 0) continue;
    err = dev::launch_grouped_gemm_wgmma<Act>(tile_problem(p, tiles, decoders), stream);
    if (err != cudaSuccess) return err;
  }
  if (tiles.mma_sync != 0)
    err = dev::launch_grouped_gemm_tc<Act>(tile_problem(p, tiles, tiles.mma_sync), stream);
  return err;
}

}  // namespace

Status grouped_gemm(const GroupedGemmArgs& args, void* workspace, size_t* workspace_bytes,
                    cudaStream_t stream) {
  const std::string fn = "grouped_gemm";
  if (workspace_bytes == nullptr) return invalid_argument(fn + ": workspace_bytes is null");
  QMOE_RETURN_IF_ERROR(check_bank(args.bank, fn));
  QMOE_RETURN_IF_ERROR(check_dtype(args.x.dtype, fn));
  // The decode kernel, the mma.sync tile kernel and the two-block and 256-token wgmma tiles index
  // an expert's scales and zeros with 32-bit integers: an expert may have at most
  // n_pad * k_pad / 32 (its scale count at g32) < 2^30; a matrix needs ~2^35 weights to reach it.
  // (The other wgmma tiles and the dequantize kernel index with 64 bits.)
  const int64_t n_pad = (args.bank.n + kTileRows - 1) / kTileRows * kTileRows;
  const int64_t k_pad = (args.bank.k + kTileCols - 1) / kTileCols * kTileCols;
  if (n_pad * (k_pad / 32) >= (int64_t{1} << 30))
    return unsupported(fn + ": bank dims [" + std::to_string(args.bank.n) + ", " +
                       std::to_string(args.bank.k) +
                       "] allow 2^30 or more scales per expert (n_pad * k_pad / 32)");
  const int64_t m = args.x.rows;
  if (m < 0 || m > INT_MAX)
    return invalid_argument(fn + ": m = x.rows = " + std::to_string(m) +
                            " must be in [0, 2^31) (offsets are int32)");
  if (args.kernel != KernelChoice::kAuto && args.kernel != KernelChoice::kDecode &&
      args.kernel != KernelChoice::kPrefill)
    return invalid_argument(fn + ": unknown kernel choice");
  if (args.integer_decode != IntegerDecode::kAuto && args.integer_decode != IntegerDecode::kOff &&
      args.integer_decode != IntegerDecode::kOn)
    return invalid_argument(fn + ": unknown integer_decode");
  if (args.tile_kernel != TileKernel::kAuto && args.tile_kernel != TileKernel::kMmaSync &&
      args.tile_kernel != TileKernel::kWgmma)
    return invalid_argument(fn + ": unknown tile_kernel");
  if (args.decode_max_tokens < 0 || args.decode_max_tokens > kMaxDecodeMaxTokens)
    return invalid_argument(fn + ": decode_max_tokens = " + std::to_string(args.decode_max_tokens) +
                            " must be in [0, " + std::to_string(kMaxDecodeMaxTokens) +
                            "] (0: chosen per call)");
  if (args.epilogue != Epilogue::kNone && args.epilogue != Epilogue::kSiluMulInterleaved)
    return invalid_argument(fn + ": unknown epilogue");
  const bool gated = args.epilogue == Epilogue::kSiluMulInterleaved;
  if (gated && args.bank.n % 16 != 0)
    return invalid_argument(fn +
                            ": the gated-SiLU epilogue needs bank.n a multiple of 16 (gate "
                            "and up interleaved by 8 rows), got " +
                            std::to_string(args.bank.n));
  if (workspace == nullptr) {
    // Without a usable device (the call itself would fail), the size for a decode launch.
    dev::TileLaunches tiles{};
    dev::KernelSplit split{INT_MAX};
    bool wgmma = false;
    cudaError_t err = wgmma_available(args.x.dtype, &wgmma);
    if (err == cudaSuccess) err = call_split(args, wgmma, &tiles, &split);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      split = dev::KernelSplit{INT_MAX};
    }
    *workspace_bytes = kWorkspaceBytes + aligned_digits_bytes(args, split) + rotated_bytes(args) +
                       product_bytes(args, split);
    return Status::ok();
  }
  const ConstMatrixView& x = args.x;
  const MatrixView& y = args.y;
  // An empty batch may come with null x and y (frameworks leave an empty tensor's data null):
  // nothing is read or written then.
  if (((x.data == nullptr || y.data == nullptr) && m > 0) || args.expert_offsets == nullptr)
    return invalid_argument(fn + ": x, y and expert_offsets must be device pointers, not null");
  if (reinterpret_cast<uintptr_t>(x.data) % kRowAlign != 0 ||
      reinterpret_cast<uintptr_t>(y.data) % kRowAlign != 0)
    return invalid_argument(fn + ": x and y must be 16-byte aligned");
  // The kernels read and write the workspace's parts (work counters, x's digits, x rotated, the
  // product) by 8- and 16-byte accesses and TMA, at 256-byte offsets from its start.
  if (reinterpret_cast<uintptr_t>(workspace) % kRowAlign != 0)
    return invalid_argument(fn + ": workspace must be 16-byte aligned");
  if (y.dtype != x.dtype) return invalid_argument(fn + ": x and y have different dtypes");
  const int64_t y_cols = gated ? args.bank.n / 2 : args.bank.n;
  if (x.cols != args.bank.k || y.cols != y_cols || y.rows != x.rows)
    return invalid_argument(fn + ": x is [" + std::to_string(x.rows) + ", " +
                            std::to_string(x.cols) + "], y is [" + std::to_string(y.rows) + ", " +
                            std::to_string(y.cols) + "]; the bank needs x [m, " +
                            std::to_string(args.bank.k) + "] and y [m, " + std::to_string(y_cols) +
                            "]" + (gated ? " (gated-SiLU epilogue: n / 2 columns)" : ""));
  if (x.row_stride != x.cols || y.row_stride != y.cols)
    return unsupported(fn + ": strided rows (row_stride != cols) are not supported yet");
  QMOE_RETURN_IF_ERROR(check_device(fn));
  bool wgmma = false;
  cudaError_t err = wgmma_available(x.dtype, &wgmma);
  if (err != cudaSuccess) return cuda_failure(fn + ": device query", err);
  if (args.tile_kernel == TileKernel::kWgmma && !wgmma)
    return unsupported(fn +
                       ": tile_kernel kWgmma needs the wgmma kernel's sm_90a code, which "
                       "this device or build does not run");
  if (m == 0) return Status::ok();

  const DeviceBankView& b = args.bank;
  dev::GemmProblem p{};
  p.blob = b.blob;
  p.descs = b.descs;
  p.num_experts = b.num_experts;
  p.n = static_cast<int>(b.n);
  p.k = static_cast<int>(b.k);
  p.n_strips = dev::ceil_div(p.n, kTileRows);
  p.k_tiles = dev::ceil_div(p.k, kTileCols);
  p.x = x.data;
  p.y = y.data;
  p.m = m;
  p.offsets = args.expert_offsets;
  p.early_schedule = args.offsets_precede_previous_kernel ? 1 : 0;
  p.a_slot_bytes = dev::max_tile_bytes(b.format_mask);
  p.min_strip_bytes = dev::mask_bytes<dev::decoder_strip_bytes>(b.format_mask, false);
  p.max_strip_bytes = dev::mask_bytes<dev::decoder_strip_bytes>(b.format_mask, true);
  p.formed = (b.format_mask & dev::kFormedDecoderMask) != 0 ? 1 : 0;
  p.tile_decoders = b.format_mask;
  dev::TileLaunches tiles{};
  dev::KernelSplit split{};
  err = call_split(args, wgmma, &tiles, &split);
  if (err != cudaSuccess) return cuda_failure(fn + ": device query", err);
  const size_t digits = aligned_digits_bytes(args, split);
  const size_t rotated = rotated_bytes(args);
  const size_t product = product_bytes(args, split);
  const size_t needed = kWorkspaceBytes + digits + rotated + product;
  if (*workspace_bytes < needed)
    return invalid_argument(fn + ": workspace of " + std::to_string(*workspace_bytes) + " bytes; " +
                            std::to_string(needed) + " needed");
  if (digits > 0) {
    // Records first (kRecordBytes per row and k-tile), then TileInfo; both 256-byte aligned.
    auto* base = static_cast<uint8_t*>(workspace) + kWorkspaceBytes;
    p.x_digits = base;
    p.x_info =
        base + static_cast<size_t>(m) * static_cast<size_t>(p.k_tiles) * dev::xdig::kRecordBytes;
  }
  if (rotated > 0)
    p.x_rotated = reinterpret_cast<unsigned short*>(static_cast<uint8_t*>(workspace) +
                                                    kWorkspaceBytes + digits);
  p.work = static_cast<dev::WorkCounters*>(workspace);
  // The gated-SiLU epilogue: fused in the decode kernel where it runs alone; otherwise every
  // launch writes the product to the workspace and the activation follows as a kernel.
  p.epilogue = gated && product == 0 ? 1 : 0;
  if (product > 0) p.y = static_cast<uint8_t*>(workspace) + kWorkspaceBytes + digits + rotated;
  if (runs_tile_kernel(args, split) && tiles.mma_sync != 0) {
    // Before any launch: a failing tile launch after the decode one would leave y half written.
    const dev::GemmProblem tp = tile_problem(p, tiles, tiles.mma_sync);
    size_t smem = 0, room = 0;
    err = x.dtype == DType::kBF16 ? dev::grouped_gemm_tc_smem<__nv_bfloat16>(tp, &smem, &room)
                                  : dev::grouped_gemm_tc_smem<__half>(tp, &smem, &room);
    if (err != cudaSuccess) return cuda_failure(fn + ": device query", err);
    if (smem > room)
      return unsupported(fn + ": the mma.sync tile kernel needs " + std::to_string(smem) +
                         " bytes of shared memory per block for this bank (" +
                         std::to_string(tp.num_experts) + " experts, " +
                         std::to_string(tp.a_slot_bytes) +
                         "-byte code tiles); the device leaves it " + std::to_string(room));
  }
  err = x.dtype == DType::kBF16 ? launch_grouped<__nv_bfloat16>(split, tiles, p, stream)
                                : launch_grouped<__half>(split, tiles, p, stream);
  if (err == cudaSuccess && product > 0) {
    // The rows the GEMM kernels wrote to the product: [offsets[0], offsets[E]).
    err = x.dtype == DType::kBF16
              ? dev::launch_silu_mul_interleaved<__nv_bfloat16>(
                    p.y, y.data, m, p.n / 16, args.expert_offsets, b.num_experts, stream)
              : dev::launch_silu_mul_interleaved<__half>(
                    p.y, y.data, m, p.n / 16, args.expert_offsets, b.num_experts, stream);
  }
  if (err != cudaSuccess) return cuda_failure(fn + ": kernel launch", err);
  return Status::ok();
}

Status prepare_workspace(void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const std::string fn = "prepare_workspace";
  static_assert(sizeof(dev::WorkCounters) == 16 && sizeof(dev::WorkCounters) <= kWorkspaceBytes,
                "the counters fit the reserved bytes");
  if (workspace == nullptr) return invalid_argument(fn + ": workspace is null");
  if (reinterpret_cast<uintptr_t>(workspace) % kRowAlign != 0)
    return invalid_argument(fn + ": workspace must be 16-byte aligned");
  if (workspace_bytes < kWorkspaceBytes)
    return invalid_argument(fn + ": workspace of " + std::to_string(workspace_bytes) +
                            " bytes; grouped_gemm needs at least " +
                            std::to_string(kWorkspaceBytes));
  QMOE_RETURN_IF_ERROR(check_device(fn));
  // tickets and exits zero, then the armed word (kArmed is one byte repeated).
  auto* counters = static_cast<unsigned char*>(workspace);
  cudaError_t err = cudaMemsetAsync(counters, 0, offsetof(dev::WorkCounters, armed), stream);
  if (err == cudaSuccess)
    err = cudaMemsetAsync(counters + offsetof(dev::WorkCounters, armed), dev::kArmedByte,
                          sizeof(dev::WorkCounters::armed), stream);
  if (err != cudaSuccess) return cuda_failure(fn + ": cudaMemsetAsync", err);
  return Status::ok();
}

Status silu_mul_interleaved(ConstMatrixView h, MatrixView y, cudaStream_t stream) {
  const std::string fn = "silu_mul_interleaved";
  QMOE_RETURN_IF_ERROR(check_dtype(h.dtype, fn));
  if (y.dtype != h.dtype) return invalid_argument(fn + ": h and y have different dtypes");
  if (h.rows < 0 || h.rows > INT_MAX || h.cols < 16 || h.cols % 16 != 0 || h.cols > kMaxDim ||
      y.rows != h.rows || y.cols != h.cols / 2)
    return invalid_argument(fn + ": h is [" + std::to_string(h.rows) + ", " +
                            std::to_string(h.cols) + "], y is [" + std::to_string(y.rows) + ", " +
                            std::to_string(y.cols) +
                            "]; needs h [m, 2I] with 2I a multiple of 16 and y [m, I], m < 2^31");
  if (h.data == nullptr || y.data == nullptr)
    return invalid_argument(fn + ": h and y must be device pointers, not null");
  if (reinterpret_cast<uintptr_t>(h.data) % kRowAlign != 0 ||
      reinterpret_cast<uintptr_t>(y.data) % kRowAlign != 0)
    return invalid_argument(fn + ": h and y must be 16-byte aligned");
  if (h.row_stride != h.cols || y.row_stride != y.cols)
    return unsupported(fn + ": strided rows (row_stride != cols) are not supported yet");
  QMOE_RETURN_IF_ERROR(check_device(fn));
  if (h.rows == 0) return Status::ok();
  const int strips = static_cast<int>(h.cols / 16);
  const cudaError_t err = h.dtype == DType::kBF16
                              ? dev::launch_silu_mul_interleaved<__nv_bfloat16>(
                                    h.data, y.data, h.rows, strips, nullptr, 0, stream)
                              : dev::launch_silu_mul_interleaved<__half>(
                                    h.data, y.data, h.rows, strips, nullptr, 0, stream);
  if (err != cudaSuccess) return cuda_failure(fn + ": kernel launch", err);
  return Status::ok();
}

Status dequantize_bank(const DeviceBankView& bank, DType dtype, void* w, cudaStream_t stream) {
  const std::string fn = "dequantize_bank";
  QMOE_RETURN_IF_ERROR(check_bank(bank, fn));
  QMOE_RETURN_IF_ERROR(check_dtype(dtype, fn));
  if (w == nullptr || reinterpret_cast<uintptr_t>(w) % 2 != 0)
    return invalid_argument(fn + ": w must be a non-null, 2-byte aligned device pointer");
  QMOE_RETURN_IF_ERROR(check_device(fn));
  const int n = static_cast<int>(bank.n), k = static_cast<int>(bank.k);
  const cudaError_t err = dtype == DType::kBF16
                              ? dev::launch_dequantize_bank<__nv_bfloat16>(
                                    bank.blob, bank.descs, bank.num_experts, n, k, w, stream)
                              : dev::launch_dequantize_bank<__half>(
                                    bank.blob, bank.descs, bank.num_experts, n, k, w, stream);
  if (err != cudaSuccess) return cuda_failure(fn + ": kernel launch", err);
  return Status::ok();
}

}  // namespace qmoe

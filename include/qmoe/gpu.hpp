// qmoe/gpu.hpp — device expert banks and the grouped expert GEMM. Plain C++17: no CUDA
// headers leak; cudaStream_t is forward-declared exactly as the CUDA runtime declares it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "qmoe/packed.hpp"
#include "qmoe/tensor.hpp"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;  // NOLINT: identical to <driver_types.h>

namespace qmoe {

/// True when the library was built with CUDA and a device is visible.
bool gpu_available();

/// True when this build's kernels decode format f: false without CUDA (and for a format no
/// decoder handles). Every format has a device decoder; the trellis formats "tcq<r>" run on the
/// decode kernel and the tile kernels, in tile launches of their own (on sm_90a the wgmma
/// kernel's trellis launch from a mean of 50 tokens per expert, else the mma.sync kernel).
bool has_device_decoder(const FormatSpec& f);

/// The calling thread's current CUDA device (cudaGetDevice). Errors: kUnsupported without
/// CUDA or a device.
Status current_device(int* device);

/// Non-owning view of a bank on the device: what the kernels take.
struct DeviceBankView {
  const uint8_t* blob = nullptr;      ///< device image (ExpertBank::build_image)
  const ExpertDesc* descs = nullptr;  ///< device, num_experts entries
  int32_t num_experts = 0;
  int64_t n = 0, k = 0;  ///< every expert is W[n, k]
  /// Bit i set: some expert uses decoder i (host-known; DeviceExpertBank::view sets it). The
  /// kernels are chosen and sized from it: it must name every expert's decoder (a view whose
  /// mask lacks an expert's bit runs kernels that trap on that expert, a sticky CUDA error:
  /// kernels without its decoder, or tile kernels whose code slots were sized without it).
  uint32_t format_mask = 0;
};

/// Owning device copy of an ExpertBank (allocates; not for the hot path). Its memory is on the
/// device current at the upload (device()), and its view's pointers mean nothing elsewhere:
/// grouped_gemm does not check the device of a view (a view does not hold it; the C ABI checks
/// its banks'), so run it with that device current. The destructor frees on that device,
/// whatever device is current, and leaves the current device as it was (by cudaSetDevice: a
/// driver-API context the caller had made current comes back as that device's primary one).
class DeviceExpertBank {
 public:
  DeviceExpertBank() = default;
  ~DeviceExpertBank();
  DeviceExpertBank(const DeviceExpertBank&) = delete;
  DeviceExpertBank& operator=(const DeviceExpertBank&) = delete;
  DeviceExpertBank(DeviceExpertBank&& o) noexcept;
  DeviceExpertBank& operator=(DeviceExpertBank&& o) noexcept;

  /// Upload (synchronous). Errors: kUnsupported without CUDA, kCudaError.
  static Status upload(const ExpertBank& bank, DeviceExpertBank* out);
  const DeviceBankView& view() const { return view_; }
  int64_t device_bytes() const { return bytes_; }
  /// The CUDA device that holds the bank's memory (current at the upload).
  int device() const { return device_; }

 private:
  void release();
  DeviceBankView view_;
  void* blob_ = nullptr;
  void* descs_ = nullptr;
  int64_t bytes_ = 0;
  int device_ = 0;
};

/// Which kernel runs an expert's tokens.
enum class KernelChoice : uint8_t {
  kAuto = 0,     ///< by decode_max_tokens: per call (0, the default) or per expert on device
  kDecode = 1,   ///< weight-streaming kernel for every expert
  kPrefill = 2,  ///< tensor-core tile kernel for every expert
};

/// Which tile kernel takes the experts above the decode kernel's share (docs/dispatch.md §4).
enum class TileKernel : uint8_t {
  /// On sm_90a (where the wgmma kernel runs): the wgmma kernel for int, dense, LUT and vector
  /// experts; for trellis experts its trellis launch where the tile launch's mean is at least
  /// 50 tokens per expert, else the mma.sync kernel. Elsewhere the mma.sync kernel.
  kAuto = 0,
  /// The mma.sync kernel (the sm_80 path) for every expert, on every device.
  kMmaSync = 1,
  /// The wgmma kernel for every expert (trellis experts in a launch of their own) at any mean;
  /// kUnsupported where the device does not run its sm_90a code.
  kWgmma = 2,
};

/// How the decode kernel multiplies the codes of int experts (docs/dispatch.md §5).
enum class IntegerDecode : uint8_t {
  /// kOn for banks of int3 experts alone; for banks of int8 experts alone where the decode
  /// launch has 16-token items (a mean above 8 tokens per active expert) or streams enough codes
  /// to repay converting x (the active experts' (min(E, m)) at 40 MiB or more); where it has
  /// 8-token items, for banks of int experts in several bit widths with int2 or int3 among them,
  /// for banks of int2 experts alone from 32 MiB of codes and for banks of int4 g32 experts
  /// alone from 24 MiB; otherwise kOff (measured no gain at kAuto's level of knowledge).
  kAuto = 0,
  /// Codes as biased bf16 / fp16 values in bf16 / fp16 mma, each group's scale and zero applied
  /// to the fp32 partial sums (the only decode of dense experts).
  kOff = 1,
  /// Codes as u8 in integer mma (m16n8k32) and x as 16-bit fixed point per 128-wide k-tile of a
  /// row (two 8-bit digits; each value within 2^-15 of the tile's largest), sums exact in int32,
  /// then scaled in fp32. Costs a kernel before the decode launch and workspace of m *
  /// ceil(k / 128) * 544 bytes. Launches of 16-token items (a mean above 8 tokens per active
  /// expert) take it at one strip per warp (int2 / int4 banks then run 1.03-1.17x slower than
  /// kOff there, int8 0.89-0.99x: docs/dispatch.md §5).
  kOn = 2,
};

/// What grouped_gemm writes to y (docs/dispatch.md §8).
enum class Epilogue : uint8_t {
  kNone = 0,  ///< y [m, n] = x W^T, rounded to the activation type
  /// The gated SiLU of an FFN's gate/up projection, fused: the bank's rows interleave the gate
  /// and up projections by 8 (interleave_gate_up: row 16 s + j is gate row 8 s + j, row
  /// 16 s + 8 + j up row 8 s + j, j < 8), n a multiple of 16, and y [m, n / 2] gets
  /// y[r, 8 s + j] = RNE(SiLU(g) * u) with g, u the fp32 sums of rows 16 s + j and 16 s + 8 + j
  /// (ref::silu_and_mul of the de-interleaved product). The decode kernel applies it to its sums
  /// before they leave the SM; where a call runs the tile kernel, its product goes to the
  /// workspace ([m, n] in the activation type) and a small kernel applies the activation.
  kSiluMulInterleaved = 1,
};

/// Largest GroupedGemmArgs::decode_max_tokens (beyond it the tile kernel always wins).
constexpr int kMaxDecodeMaxTokens = 64;

struct GroupedGemmArgs {
  DeviceBankView bank;
  ConstMatrixView x;  ///< [m, k] tokens sorted by expert, device, bf16 or fp16
  MatrixView y;       ///< [m, n] device, same dtype as x (output rounded to it)
  const int32_t* expert_offsets = nullptr;  ///< device, E+1 entries, read on device only
  KernelChoice kernel = KernelChoice::kAuto;
  /// kAuto only (checked always), 0..kMaxDecodeMaxTokens.
  /// 0 (default): one kernel for every expert, chosen per call from what the host knows (the
  /// mean tokens per active expert m / min(E, m), N, the bank's formats; docs/dispatch.md §4):
  /// integer formats run the decode kernel up to a mean of 10 tokens (8 where the wgmma kernel
  /// would run 2/3/4-bit experts two blocks per SM, 12 for banks of int8 experts alone unless
  /// integer_decode is kOff), the tile kernel above;
  /// dense banks the wgmma kernel above that mean or where its items fill 3/4 of the SMs. No
  /// launch for the unused kernel.
  /// Without the wgmma kernel (the sm_80 path, mma.sync tile kernel): the decode kernel up to
  /// a mean of 12, the per-expert threshold 16 (two launches) up to 16, the tile kernel above,
  /// for every bank (measured on an H200 running the compute_80 PTX, not on an A100).
  /// Banks with trellis experts, on every device: the decode kernel up to a mean of 13, the
  /// tile kernels above (measured on an H100, kernel_split.cuh). Their tile launch is the wgmma
  /// kernel's trellis launch on sm_90a from a mean of 50 tokens per expert, else the mma.sync
  /// kernel.
  /// 1..64: per expert, on device: the decode kernel for experts with at most this many tokens,
  /// the tile kernel for the others (two launches; the second is skipped when m is at most
  /// the threshold). For routing far from uniform (a few hot experts).
  /// On sm_90a a tile-kernel launch of the 128- or 256-token tile is itself two launches for
  /// banks of 2/3/4-bit experts: the experts' short last token blocks run in a narrower tile
  /// (docs/dispatch.md §4).
  int decode_max_tokens = 0;
  /// The decode kernel's arithmetic for int experts (IntegerDecode).
  IntegerDecode integer_decode = IntegerDecode::kAuto;
  /// The tile kernel for the experts the decode kernel leaves (TileKernel).
  TileKernel tile_kernel = TileKernel::kAuto;
  /// A promise that lets the decode kernel start before the previous kernel in the stream has
  /// completed (sm_90+, programmatic dependent launch): expert_offsets and the bank are not
  /// written by that kernel, and were final when it started (or, where it was itself launched
  /// early, as grouped_gemm's kernels are, when it waited for its predecessor). True for a
  /// layer's down projection called right after its gate/up projection on the same offsets.
  /// The decode kernel's blocks then build their work schedule and issue their first weight
  /// copies while that kernel's last blocks run, and wait for it before reading x (H200:
  /// docs/dispatch.md §7). false (default): nothing is read before the previous kernel has
  /// completed. A false promise is a race between the two kernels: results are unspecified.
  bool offsets_precede_previous_kernel = false;
  /// What y receives (Epilogue; y is [m, n / 2] with kSiluMulInterleaved).
  Epilogue epilogue = Epilogue::kNone;
};

/// y[offsets[e]:offsets[e+1]] = x[same rows] * W_e^T for every expert e, fp32 accumulation,
/// output rounded to the activation type. m = x.rows (an upper bound of offsets[E]); offsets[0]
/// need not be 0 (rows before it belong to no expert). Offsets are read on the device only, so
/// they are not validated: each expert's rows are clamped into [0, m] (a decreasing pair gives
/// no rows), so bad offsets never make the kernels touch memory outside x and y; where the
/// table is not non-decreasing, the results of its experts, and of any expert whose rows another
/// one's overlap, are unspecified. Rows of x outside [offsets[0], offsets[E]) are not read, so a
/// caller need not write them (x.rows may be a capacity, as in a graph replayed for any batch),
/// with one exception: on Hopper the tile kernel's TMA copies of x span whole token tiles and may
/// read up to 255 rows past offsets[E] (within x.rows; their products are dropped).
/// CUB-style: with workspace == nullptr only *workspace_bytes is set (from bank, x.rows,
/// x.dtype, the kernel options and the current device: 256 bytes, plus x's digits where the
/// decode kernel takes the integer decode, IntegerDecode; plus x rotated, [m, k] fp16, where the
/// bank holds trellis experts; plus the [m, n] product where Epilogue::kSiluMulInterleaved meets
/// a tile-kernel launch). The size is not monotone in x.rows (x's digits at few tokens per
/// expert, the product at many): a workspace shared by calls of several x.rows takes the
/// largest of their sizes. The workspace is used by the call's
/// kernels only; calls on one stream may share one. Prepare it once (prepare_workspace): its
/// first 16 bytes then carry the decode kernel's work counter from call to call. Never
/// allocates, never synchronises; capturable in a CUDA graph. The workspace must be 16-byte
/// aligned (as cudaMalloc's are). Rows of y outside [offsets[0], offsets[E]) are not written
/// (where the offsets table is non-decreasing; see above for one that is not).
/// Stream order holds as for any launch; where the device and the build's code are sm_90+, the
/// kernels are launched with programmatic dependent launch, so their launch overlaps the previous
/// kernel's tail (they wait for it to complete before reading expert_offsets or x or writing y).
/// Numerics: the prefill kernel multiplies the weights of docs/formats.md §1 (rounded to the
/// activation type); the decode kernel, for the int formats whose biased codes are exact in the
/// activation type (all but int8 with bf16), multiplies the codes and applies each group's scale
/// and zero to the fp32 partial sums, i.e. it uses (q - z) * s unrounded; with the integer decode
/// (int formats, IntegerDecode) it multiplies the codes by x as 16-bit fixed point per 128-wide
/// k-tile of a row (within 2^-15 of the tile's largest value); for the trellis formats it
/// multiplies the codes' values by x rotated per 128-input block in fp16 and applies each block's
/// scale to the fp32 sums, and the tile kernels (their trellis experts' launch) multiply RNE_fp16(v
/// s) by that rotated x (docs/formats.md §1). All stay within the tests' normalised error of the
/// float64 reference; results of the two kernels for one expert may differ in the last bits.
/// Range: the decode kernel's fp32 sums of biased codes (up to 255) times x overflow where a bf16
/// |x| exceeds ~1e36 (FLT_MAX / 255; the result is then inf or NaN where the exact one is
/// finite), and trellis experts take x rotated into fp16 (x~ = H (sigma . x) / 128, |x~| <=
/// max |x|), so a bf16 |x| beyond 65504 overflows there as an fp16 x would.
/// With x.rows == 0 nothing is launched, and x.data and y.data may be null.
/// Errors: kInvalidArgument (null pointers, workspace_bytes null, x / y / workspace not 16-byte
/// aligned, a workspace smaller than the size query's, x.rows outside [0, 2^31), x.cols != bank.k,
/// y.cols != bank.n (bank.n / 2 with kSiluMulInterleaved, which needs bank.n % 16 == 0), x.rows !=
/// y.rows, dtypes differ, bad options, a bank view with an empty format_mask, no experts, dims
/// outside [1, 2^24] or trellis experts and k % 128 != 0), kUnsupported (no CUDA / no device /
/// compute capability below 8.0, row strides other than cols, n_pad * k_pad / 32 >= 2^30: n * k
/// beyond ~2^35, more than 1024 experts, format_mask bits of decoders this build lacks,
/// TileKernel::kWgmma without the wgmma kernel, a tile launch that needs more shared memory per
/// block than the device leaves: the mma.sync tile kernel on devices of ~100 KB per block, e.g.
/// sm_86 / sm_89, with dense experts, or int8 experts in banks of 45 or more; checked before
/// anything is launched), kCudaError (launch failure).
Status grouped_gemm(const GroupedGemmArgs& args, void* workspace, size_t* workspace_bytes,
                    cudaStream_t stream);

/// Arms a grouped_gemm workspace (at least the 256 bytes every call asks for) for the decode
/// kernel's on-demand item hand-out: writes its first 16 bytes on `stream` (two
/// cudaMemsetAsync; capturable). Call it once after allocating the workspace, and again after
/// anything but grouped_gemm wrote those bytes: calls keep a work counter there between them
/// (each launch leaves it ready for the next; graph replays included). Calls on a workspace that
/// was not prepared give the same results with the work items dealt round-robin to the blocks,
/// which leaves one of a SM's two blocks to run its last items alone (H200: multi-round decode
/// launches up to ~1.13x the time; docs/dispatch.md §6).
/// Errors: kInvalidArgument (null or not 16-byte aligned workspace, workspace_bytes < 256),
/// kUnsupported (no CUDA), kCudaError.
Status prepare_workspace(void* workspace, size_t workspace_bytes, cudaStream_t stream);

/// The gated SiLU of Epilogue::kSiluMulInterleaved as a kernel of its own, for a product that
/// did not fuse it: y[r, 8 s + j] = RNE(SiLU(h[r, 16 s + j]) * h[r, 16 s + 8 + j]) for every row,
/// h [m, 2I] and y [m, I] of one dtype (bf16 or fp16), 2I a multiple of 16, both 16-byte aligned
/// with row_stride == cols. Never allocates, never synchronises; launched like grouped_gemm's
/// kernels (programmatic dependent launch on sm_90+). Errors: kInvalidArgument (null or
/// misaligned pointers, shapes), kUnsupported (no CUDA / no device, strided rows), kCudaError.
Status silu_mul_interleaved(ConstMatrixView h, MatrixView y, cudaStream_t stream);

/// Decode-only kernel: dequantize every expert of the bank to `dtype` into w ([E, n, k],
/// device). Used to prove GPU decode is bit-identical to ref::dequantize_to.
Status dequantize_bank(const DeviceBankView& bank, DType dtype, void* w, cudaStream_t stream);

}  // namespace qmoe

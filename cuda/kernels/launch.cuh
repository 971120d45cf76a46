// cuda/kernels/launch.cuh — what the host entry points (grouped_gemm.cu, device_bank.cu) and
// the kernel instantiation units (grouped_*_{bf16,fp16}.cu, dequantize_*.cu) share: the
// problem description the kernels take by value and the launcher declarations.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cuda/kernels/work_queue.cuh"
#include "qmoe/packed.hpp"

namespace qmoe::dev {

/// Experts per bank the kernels' shared-memory schedule holds.
constexpr int kMaxExperts = 1024;
/// Threads per block of every grouped kernel: 8 warps.
constexpr int kBlockThreads = 256;
constexpr int kBlockWarps = kBlockThreads / 32;
/// Tokens per mma n8 chunk of the decode kernel; an item holds one or two chunks
/// (grouped_gemv.cuh: each chunk costs the registers of one more strip, so a launch trades
/// strips per warp for chunks; two above a mean of kChunkTokens tokens per active expert).
constexpr int kChunkTokens = 8;

/// Mean tokens per active expert of a decode launch, as the host sees it: m rows over at most
/// min(E, m) experts with tokens, rounded up, at most max_tokens (the launch's bound); 1 for no
/// rows. Items take two chunks above kChunkTokens (choose_variant, and decode_imma's rules).
inline long long decode_mean_tokens(long long m, long long num_experts, long long max_tokens) {
  const long long active = m < num_experts ? m : num_experts;
  const long long mean = active > 0 ? (m + active - 1) / active : 1;
  return mean < max_tokens ? mean : max_tokens;
}
/// Experts of a tile launch as the host estimates them: at most min(E, m / min_tokens) experts
/// take min_tokens tokens or more (at least one). Spreading all m rows over that many gives the
/// launch's mean, ceil(m / experts): exact under even routing where all m rows come here, never
/// below min_tokens (the wgmma launcher's token tile, token_tile, and tile_launches).
inline int64_t tile_launch_experts(int64_t m, int64_t num_experts, int64_t min_tokens) {
  const int64_t floor_tokens = min_tokens > 1 ? min_tokens : 1;
  const int64_t fit = m / floor_tokens > 1 ? m / floor_tokens : 1;
  return fit < num_experts ? fit : num_experts;
}

/// Weight rows per work item of the wgmma tile kernel (grouped_gemm_wgmma.cuh).
constexpr int kWgmmaItemRows = 256;
/// K-tiles per item from which a wgmma tile launch (grouped_gemm_wgmma.cuh) hands its items
/// out on demand (work_queue.cuh), below which it deals them round-robin. H200, three calls of
/// 4 rounds each against round-robin (bench/results/s27-2026-12-04, call2-call4): with the
/// queue in every launch, Mixtral (K = 4096 and 14336) ran T = 64 and 128 at 0.89-0.95x the
/// time for int2/3/4, T = 1024 0.93-1.00x, T = 4096 int3 0.95x, but T = 256 (96-token tile)
/// 0.97-1.07x and int8 1.00-1.06x (mostly 1.01-1.02); the shapes whose every K is 2048 or less
/// (OLMoE, Qwen3, DeepSeek-V2-Lite) 1.00-1.04x at T >= 128, so their launches keep round-robin.
/// With this bound, their rows ran 0.99-1.02x in call 4 (same code path as round-robin, but the
/// kernel's item loop is the queue's: OLMoE int2 1.04-1.09x in call 3, not reproduced).
constexpr int kWgmmaQueueMinKTiles = 32;

/// Largest code tile of the wgmma kernel's two-blocks-per-SM variants (32 and 64 tokens;
/// 2/3/4-bit).
constexpr int kWgmmaTwoBlockMaxSlotBytes = 1024;
/// The same for the two-block tile with one strip per warp (32 tokens; int8 too).
constexpr int kWgmmaHalfRowMaxSlotBytes = 2048;
/// Largest code tile of any format (dense: 16 x 128 x 2 bytes).
constexpr int kMaxTileBytes = kTileRows * kTileCols * 2;

/// Which rows of an expert a launch takes (GemmProblem::rows_part; the wgmma kernel's split
/// of short last token blocks into a launch of a narrower tile, launch_grouped_gemm_wgmma).
enum RowsPart : int {
  kAllRows = 0,   ///< every row
  kHeadRows = 1,  ///< all but a short last block (tail_rows)
  kTailRows = 2,  ///< only a short last block
};

/// Rows [first, first + count) of an expert's `tokens` that a launch with rows_part `part`
/// takes. With token blocks of `block` (a power of two), the last block holds
/// r = tokens % block; where 1 <= r <= tail (a short last block), kHeadRows takes the first
/// tokens - r rows and kTailRows the last r; otherwise kHeadRows takes all of them and
/// kTailRows none.
struct RowRange {
  int first, count;
};
__host__ __device__ constexpr RowRange expert_rows(int tokens, int part, int block, int tail) {
  const int r = part == kAllRows || block <= 0 ? 0 : tokens & (block - 1);
  const bool short_tail = r >= 1 && r <= tail;
  if (part == kHeadRows) return {0, short_tail ? tokens - r : tokens};
  if (part == kTailRows) return short_tail ? RowRange{tokens - r, r} : RowRange{0, 0};
  return {0, tokens};
}

/// One grouped GEMM launch. A kernel takes the experts whose token count lies in
/// [min_tokens, max_tokens] (the others cost it one comparison), and of their rows those
/// expert_rows(tokens, rows_part, rows_block, tail_rows) gives.
struct GemmProblem {
  const uint8_t* blob;
  const ExpertDesc* descs;
  int num_experts;
  int n, k;               ///< W[n, k] for every expert
  int n_strips, k_tiles;  ///< ceil(n / 16), ceil(k / 128)
  const void* x;          ///< [m, k] activations
  void* y;                ///< [m, n]
  int64_t m;
  const int32_t* offsets;  ///< [num_experts + 1], device
  int min_tokens, max_tokens;
  int a_slot_bytes;  ///< largest code tile among the bank's formats (tile kernel's slots)
  /// Decode kernel's model: the smallest and largest code tile + parameter block among the
  /// bank's formats (decoder_strip_bytes; what its ring stages per strip and k-tile).
  int min_strip_bytes, max_strip_bytes;
  /// Every GEMM kernel: 1 where the bank holds experts with formed-weight decoders
  /// (kFormedDecoderMask: LUT, vector), whose kernel instantiations alone hold them
  /// (with_decoder); 0 otherwise.
  int formed;
  /// Tile kernels: the decoders (bit i = decoder i) whose experts this launch takes; the others'
  /// experts get no items (another tile launch of the call takes them: tile_launches,
  /// tile_item_decoders).
  uint32_t tile_decoders;
  int group_warps;  ///< decode kernel: warps sharing a strip group's k-tiles (set by its launcher)
  int x_tma;  ///< wgmma kernel: x tiles come by TMA through its tensor map (set by its launcher)
  int rows_part;   ///< RowsPart (kAllRows unless the wgmma launcher splits the call)
  int rows_block;  ///< token block of rows_part's split (a power of two)
  int tail_rows;   ///< most rows of a short last block
  /// Decode kernel, banks with integer-mma decoders (IntDecoder::kImmaMap): x as digits
  /// (x_digits.cuh) in the workspace, [m][k_tiles] records and TileInfo; the launcher fills
  /// them before the kernel runs. Null where the bank has no such decoder.
  uint8_t* x_digits;
  void* x_info;
  /// Decode and tile kernels, banks with trellis experts: x~ = H (sigma . x) / 128 in fp16,
  /// [m, k] (x_rotate.cuh), in the workspace; a launch before the call's first kernel fills it
  /// (launch_rotate_x). Null otherwise.
  unsigned short* x_rotated;
  /// Decode kernel: the work counters at the front of the call's workspace (work_queue.cuh).
  WorkCounters* work;
  /// Decode kernel: offsets and the bank were final before the previous kernel in the stream
  /// passed its own wait for its predecessor, and that kernel does not write them (grouped_gemm
  /// sets it after its own x_digits launch, and where the caller promises it:
  /// GroupedGemmArgs::offsets_precede_previous_kernel). The blocks then build their schedule
  /// and issue their first item's weight copies before waiting for that kernel (run_item).
  int early_schedule;
  /// Decode kernel: 1 = Epilogue::kSiluMulInterleaved (y is [m, n / 2], n % 16 == 0), 0 = none.
  /// The tile kernels take 0 only (grouped_gemm routes their product through the workspace).
  int epilogue;
};

/// Weight-streaming kernel (few tokens per expert; any count works, 16 per work item).
template <class Act>
cudaError_t launch_grouped_gemv(const GemmProblem& p, cudaStream_t stream);

/// Tensor-core tile kernel (many tokens per expert).
template <class Act>
cudaError_t launch_grouped_gemm_tc(const GemmProblem& p, cudaStream_t stream);
/// The dynamic shared memory per block its launch of p takes (*needed) and the current device
/// leaves it (*room); a launch with *needed > *room would fail.
template <class Act>
cudaError_t grouped_gemm_tc_smem(const GemmProblem& p, size_t* needed, size_t* room);

/// Hopper warpgroup-MMA tile kernel (many tokens per expert; sm_90a only). Launch it only
/// where grouped_gemm_wgmma_available says so. A launch with p.x_rotated set runs the trellis
/// experts' kernel (fp16 wgmmas against it), one without the kernel of the other decoders;
/// each traps on items of decoders it lacks (tile_launches keeps the two families apart).
template <class Act>
cudaError_t launch_grouped_gemm_wgmma(const GemmProblem& p, cudaStream_t stream);
/// *available = the current device would run the sm_90a code of the wgmma kernel (compute
/// capability 9.0 and a 90a build, not PTX JIT-compiled from an older target). Cached per
/// device; no allocation, no synchronisation (safe during graph capture).
template <class Act>
cudaError_t grouped_gemm_wgmma_available(bool* available);

/// The gated SiLU of Epilogue::kSiluMulInterleaved as a kernel (gated_silu.cuh): y [rows,
/// 8 strips] from h [rows, 16 strips], both contiguous and 16-byte aligned; where offsets is not
/// null, only rows [offsets[0], offsets[num_experts]) (device memory, clamped into [0, rows]).
template <class Act>
cudaError_t launch_silu_mul_interleaved(const void* h, void* y, int64_t rows, int strips,
                                        const int32_t* offsets, int num_experts,
                                        cudaStream_t stream);

/// Decode-only kernel: w[e][row][col] = the weight in Act (docs/formats.md §1) for every
/// expert, [E, n, k].
template <class Act>
cudaError_t launch_dequantize_bank(const uint8_t* blob, const ExpertDesc* descs, int num_experts,
                                   int n, int k, void* w, cudaStream_t stream);

/// Persistent-grid size of a kernel on the current device: SMs x blocks resident with
/// smem_bytes of dynamic shared memory. Also opts the kernel in to smem_limit bytes (the most
/// any launch of it uses). Computed once per (device, size_class) and cached in `cache`; no
/// allocation, no synchronisation.
/// Also records whether launches of the kernel on that device may use programmatic dependent
/// launch: compute capability 9.0+ and code built for it (not JIT-compiled from compute_80
/// PTX, which lacks the kernel side of it).
struct GridCache {
  static constexpr int kMaxDevices = 64;
  static constexpr int kSizeClasses = 16;
  std::atomic<int> blocks[kMaxDevices][kSizeClasses] = {};
  std::atomic<int> pdl[kMaxDevices] = {};  ///< 0 = not asked yet, 1 = no, 2 = yes
};
struct GridSize {
  int blocks = 0;
  bool pdl = false;
};
cudaError_t persistent_grid(const void* kernel, size_t smem_limit, size_t smem_bytes,
                            int size_class, GridCache* cache, GridSize* grid);

/// Dynamic shared memory one block of `kernel` may take on the current device: the device's
/// opt-in maximum per block less the kernel's static shared memory. Asked once per device and
/// cached in `cache`; no allocation, no synchronisation.
struct SmemRoomCache {
  std::atomic<int> room[GridCache::kMaxDevices] = {};  ///< bytes + 1; 0 = not asked yet
};
cudaError_t kernel_smem_room(const void* kernel, SmemRoomCache* cache, size_t* room);

/// kernel<<<grid.blocks, kBlockThreads, smem_bytes, stream>>>(p), with programmatic dependent
/// launch where grid.pdl says so: the grid's launch overlaps the previous kernel's tail
/// (kernels wait in build_item_list). Returns the launch error.
cudaError_t launch_grouped_kernel(const void* kernel, const GridSize& grid, size_t smem_bytes,
                                  const GemmProblem& p, cudaStream_t stream);
/// The same for a kernel whose parameters are `args` (pointers to each, in order).
cudaError_t launch_grouped_kernel_args(const void* kernel, const GridSize& grid, size_t smem_bytes,
                                       void** args, cudaStream_t stream);
/// A kernel of one warp per unit (the conversions of x before a grouped launch: x_digits.cuh,
/// x_rotate.cuh) over `warps` units, kBlockWarps a block, no dynamic shared memory, with
/// programmatic dependent launch where pdl; cudaErrorInvalidValue for more than 2^31 - 1 blocks.
cudaError_t launch_warp_kernel(const void* kernel, int64_t warps, bool pdl, void** args,
                               cudaStream_t stream);

/// The trellis decoders' rotated x (x_rotate.cuh): p.x_rotated from p.x, for the grouped launch
/// that follows (it may start early where the device has programmatic dependent launch: the
/// rotation lets it launch once its own wait for its predecessor is done).
template <class Act>
cudaError_t launch_rotate_x(const GemmProblem& p, cudaStream_t stream);
/// Rows past the experts' span (offsets_span) whose x~ launch_rotate_x zeroes (it neither
/// reads nor writes the others outside it): the trellis experts' wgmma launch takes items of
/// up to this many tokens whose TMA boxes of x~ run past an item's last token (their products
/// are not stored, but the reads must find written memory).
constexpr int kRotatedXZeroedRows = 128;

/// Occupancy classes by expert count: the block schedule's shared memory grows with E, and a
/// grid sized for kMaxExperts (16 KB of schedule) would halve the blocks per SM of the
/// 2-block kernels on an A100 (164 KB per SM) for the usual 8..256 experts.
constexpr int kExpertBuckets = 3;
inline int expert_bucket(int num_experts) {
  return num_experts <= 64 ? 0 : num_experts <= 256 ? 1 : 2;
}
/// The most experts of a bucket (what its occupancy is computed for).
inline int bucket_experts(int bucket) {
  return bucket == 0 ? 64 : bucket == 1 ? 256 : kMaxExperts;
}

/// Bytes of the block schedule in dynamic shared memory for num_experts experts.
constexpr size_t schedule_smem_bytes(int num_experts) {
  // item_start [E + 1] int64, row_begin [E] int32, row_count [E] int32; 16-byte aligned parts.
  return (static_cast<size_t>(num_experts + 1) * 8 + 15) / 16 * 16 +
         2 * ((static_cast<size_t>(num_experts) * 4 + 15) / 16 * 16);
}

/// Bytes of the experts' decoder ids (int8, build_item_list's `decoders`; the decode kernel
/// keeps them after its rings).
constexpr size_t decoder_ids_smem_bytes(int num_experts) {
  return (static_cast<size_t>(num_experts) + 15) / 16 * 16;
}

}  // namespace qmoe::dev

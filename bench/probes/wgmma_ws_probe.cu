// bench/probes/wgmma_ws_probe.cu — a diagnostic, not a qmoe kernel: where the prefill tile
// kernel's tensor-pipe cycles go (decode in a separate warpgroup or in the wgmma warpgroups,
// the ring's barriers and drains, item boundaries), one piece at a time.
//
// Session 11 (docs/results.md) found that the prefill tile kernel's decode, issued by the same
// warps that issue the register-A wgmmas, costs tensor throughput by its instruction count even
// at ~25 % issue-slot use, and left open whether the same ALU work in *another* warpgroup
// costs the same (notes/wgmma_ws_plan.md). Modes 0-5 answer that with every operand in shared
// memory, so the tensor pipe and the issue slots are all that is measured; modes 6-12 add the
// kernel's ring (x and codes streamed from L2 by bulk copies), its barriers and its items. One
// block per SM, kRows = 128 weight rows x kTokens = 256 tokens per block (the 256-token tile's
// geometry: one m64n256k16 block per consumer warpgroup), k-tiles of 64 (one 128-byte swizzled
// row per weight row and token), a ring of kStages A tiles (modes 0-5).
//
// Reported per mode: time, TFLOP/s, block 0's SM clock and its SM cycles per k-tile of 64 (1024
// at the tensor pipe's peak). Modes 0-5 multiply the same operands; modes 2 and 3 are checked
// against each other (NMSE, expected 0). Modes:
//  0 ss-only    two consumer warpgroups, SS wgmmas on a fixed A ring, no barriers (ceiling);
//  1 ws-sync    plus a third warpgroup that hands the ring stages over by full/empty mbarriers
//               but writes nothing (what the synchronisation costs);
//  2 ws-decode  the third warpgroup decodes int4 codes (SHF, LOP3 with the bf16 magic 128,
//               HSUB2 of 128 + z, HMUL2 by the scale: the int decoders' four instructions a
//               pair) into A fragments and stores them with stmatrix into the swizzled A stage
//               the consumers' SS wgmmas read (the transform-warpgroup design);
//  3 rs-decode  no third warpgroup: each consumer warp decodes its own strip's A fragments and
//               issues register-A wgmmas, three A buffers, drained every 128 k (the k-loop of
//               grouped_gemm_wgmma.cuh before session 45).
//  4 ws-store   mode 2 without the decode: the third warpgroup stores fixed fragments;
//  5 ws-alu     mode 2 without the stores: the decode's result folded into a register sink.
//  6 rs-stream  mode 3 fed like the kernel's 256-token tile: a ring of three 72 KB stages (k128: x
//               256 tokens x 128 k, 64 KB, and the 8 strips' 1 KB code tiles), each refilled
//               by thread 0 with bulk copies on the stage's mbarrier after the block barrier
//               that ends a k-tile (x from an L2-resident 2 MB buffer shared by all blocks,
//               codes from 34 MB of per-block tiles), every k-tile drained before the barrier;
//  7 rs-ring    mode 6 without the copies: the same barriers and mbarrier phases, no bytes;
//  8 rs-overlap mode 6 with no drain: four A buffers, three wgmmas left in flight across the
//               barrier, which refills the stage of the k-tile before (the kernel's 256-token
//               tile since session 45);
//  9 rs-mbar    mode 6 with no block barrier: each warp counts its release of a stage on a
//               shared counter, and the eighth to release it refills it (a producer warp
//               instead, in a block of 288 threads, left ptxas too few registers: C7512);
// 10 rs-mbar-overlap  both: no drain, no block barrier;
// 11 rs-items   mode 8 cut into items of 32 k-tiles of 128 (K = 4096, Mixtral's gate/up): at an
//               item's end the kernel's epilogue (drain, accumulators to bf16 through the
//               ring, 64 KB of y to global memory) and its prologue (the next item's first
//               stages are issued only then);
// 12 rs-items-drain  mode 6 (drained k-tiles) cut into the same items;
// 13 rs-items-prefetch  mode 11 with the next item's first stages issued before the epilogue,
//               which stages its y tile in the third stage (the last k-tile's, drained).
// 14 rs-items-kepi  mode 11 with the kernel's epilogue as it was until session 45 (y staged at
//               its padded stride by 2-byte stores, then store_y_tile's 16-byte rows into y rows
//               strided by N = 128 x blocks) and items staggered across blocks, as items on
//               demand are (block b's item boundaries 32 b / blocks k-tiles later);
// 15 rs-items-stm  mode 14 with the kernel's epilogue since session 46 (stage_y_strip:
//               transposing stmatrix). Checked: both run twice on 96 k-tiles; their final
//               accumulators agree exactly and mode 15's y repeats bit for bit, but mode 14's
//               y does not repeat from run to run (0.75 M of 4.3 M elements differ, H100;
//               cause not found), so the y comparison of 14 and 15 reports a mismatch.
// 16 rs-items-stm-prefetch  mode 15 with mode 13's prefetch: the next item's first stages are
//               issued before the epilogue, which stages y in the last k-tile's stage.
// (Modes 6-12 step through k-tiles of 128, but count 64-k units, like the others, for the
// cycles column.)
// Reported: TFLOP/s of each mode, median of kReps launches, alternating modes, next to a bf16
// cuBLAS GEMM of the same run.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/probes/probe_util.cuh"
#include "cuda/decode/common.cuh"
#include "cuda/kernels/grouped_gemm_wgmma.cuh"

namespace {

using namespace qmoe::dev;

constexpr int kRows = 128;                       ///< weight rows per block (2 m64 blocks)
constexpr int kTokens = 256;                     ///< wgmma N
constexpr int kRowBytes = 128;                   ///< 64 k of bf16: one swizzled row
constexpr int kAStageBytes = kRows * kRowBytes;  ///< 16 KB
constexpr int kXBytes = kTokens * kRowBytes;     ///< 32 KB
constexpr int kStages = 4;
constexpr int kStrips = kRows / 16;
constexpr int kCodeBytes = kStrips * 32 * 16;  ///< one uint4 per lane and strip: 16 x 64 int4
constexpr int kSmemBytes = kXBytes + kStages * kAStageBytes + kCodeBytes + 1024 + 256;
constexpr int kAcc = kTokens / 2;

enum Mode {
  kSsOnly = 0,
  kWsSync = 1,
  kWsDecode = 2,
  kRsDecode = 3,
  kWsStore = 4,
  kWsAlu = 5,
  kRsStream = 6,
  kRsRing = 7,
  kRsOverlap = 8,
  kRsMbar = 9,
  kRsMbarOverlap = 10,
  kRsItems = 11,
  kRsItemsDrain = 12,
  kRsItemsPrefetch = 13,
  kRsItemsKernelEpilogue = 14,
  kRsItemsStmatrix = 15,
  kRsItemsStmatrixPrefetch = 16
};
constexpr int kModes = 17;
constexpr const char* kModeNames[] = {"ss-only",
                                      "ws-sync",
                                      "ws-decode",
                                      "rs-decode",
                                      "ws-store",
                                      "ws-alu",
                                      "rs-stream",
                                      "rs-ring",
                                      "rs-overlap",
                                      "rs-mbar",
                                      "rs-mbar-overlap",
                                      "rs-items",
                                      "rs-items-drain",
                                      "rs-items-prefetch",
                                      "rs-items-kepi",
                                      "rs-items-stm",
                                      "rs-items-stm-prefetch"};
/// Modes 3 and 6-10 have no third warpgroup (ss-only's returns at once).
constexpr int threads_of(int mode) {
  return mode == kRsDecode || mode >= kRsStream ? 256 : 384;
}
// Modes 6 and 7: the ring of today's 256-token tile.
constexpr int kRingStages = 3;
constexpr int kRingXBytes = 2 * kXBytes;                       ///< k128: two swizzled 64-k halves
constexpr int kRingStageBytes = kRingXBytes + kStrips * 1024;  ///< 72 KB
constexpr int kRingSmemBytes = kRingStages * kRingStageBytes + 1024 + 128;
constexpr int kStreamXTiles = 32;     ///< k128 tiles in the x buffer (K = 4096)
constexpr int kStreamCodeTiles = 32;  ///< k128 tiles of codes per block
constexpr int smem_of(int mode) {
  return mode >= kRsStream ? kRingSmemBytes : kSmemBytes;
}

__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// The kernel's wgmma helpers; its x descriptor (K-major, 128-byte swizzle, 1024 bytes from one
// 8-row group to the next) serves the A tiles of the SS modes as well.
using wg::wgmma_commit;
using wg::wgmma_fence;
using wg::wgmma_wait;
__device__ __forceinline__ uint64_t descriptor(uint32_t addr) {
  return wg::x_descriptor(addr);
}

#define PROBE_ACC_LIST                                                             \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, "    \
  "%17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "    \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, "    \
  "%47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "    \
  "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, "    \
  "%77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, "    \
  "%92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, "   \
  "%106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, " \
  "%119, %120, %121, %122, %123, %124, %125, %126, %127"
#define PROBE_ACC_OPERANDS                                                                        \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),  \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),  \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),  \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),  \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),  \
      "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]),  \
      "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]),  \
      "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]),  \
      "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]),  \
      "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]),  \
      "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]),          \
      "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]),         \
      "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]),         \
      "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]),         \
      "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

/// d[64 x 256] (+)= A[64 x 16] (shared, desc_a) * B[16 x 256] (shared, desc_b).
__device__ __forceinline__ void wgmma_ss(float (&d)[kAcc], uint64_t desc_a, uint64_t desc_b,
                                         int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {" PROBE_ACC_LIST
      "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : PROBE_ACC_OPERANDS
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, const uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr),
               "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
}

/// The A fragment of sub-tile j (k 16j .. 16j + 15) of a 16 x 64 int4 strip whose lane words
/// are w: pair r of word j holds codes at bits 4r and 16 + 4r. (128 + q) as bf16 by OR-ing
/// the magic 0x4300 exponent, minus (128 + z), times the row's scale.
__device__ __forceinline__ void decode_subtile(const uint32_t (&w)[4], int j, uint32_t zz,
                                               uint32_t s_lo, uint32_t s_hi, uint32_t (&a)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const uint32_t v = ((w[j] >> (4 * r)) & 0x000F000Fu) | 0x43004300u;
    __nv_bfloat162 h = __hsub2(bit_cast<__nv_bfloat162>(v), bit_cast<__nv_bfloat162>(zz));
    h = __hmul2(h, bit_cast<__nv_bfloat162>(r % 2 == 0 ? s_lo : s_hi));
    a[r] = bit_cast<uint32_t>(h);
  }
}

/// Decodes the four sub-tiles of 64-k half h of the warp's strip (its lane's 16 bytes c) and
/// issues their register-A wgmmas against the x half at desc_x: wgmma 4h + j of the k-tile reads
/// a[(4h + j) % kBuffers] and leaves kBuffers - 1 in flight. accumulate: false for the loop's
/// first half (its first wgmma overwrites d).
template <int kBuffers>
__device__ __forceinline__ void multiply_half(const uint4& c, int h, uint64_t desc_x, uint32_t zz,
                                              uint32_t s_lo, uint32_t s_hi, bool accumulate,
                                              uint32_t (&a)[kBuffers][4], float (&d)[kAcc]) {
  const uint32_t w[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    uint32_t(&buf)[4] = a[(4 * h + j) % kBuffers];
    decode_subtile(w, j, zz, s_lo, s_hi, buf);
    wgmma_fence();
    wg::wgmma_m64nNk16<__nv_bfloat16, kTokens>(d, buf, desc_x + 2 * j, accumulate || j > 0);
    wgmma_commit();
    wgmma_wait<kBuffers - 1>();
  }
}

/// Block 0's SM cycles and nanoseconds over the measured loop (its thread 0).
struct LoopClock {
  unsigned long long c0 = 0, t0 = 0;
  __device__ void start() {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      t0 = probe_global_ns();
      c0 = clock64();
    }
  }
  __device__ void stop(unsigned long long* timing) const {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      timing[0] = clock64() - c0;
      timing[1] = probe_global_ns() - t0;
    }
  }
};

/// The thread's accumulators to out (the consumer threads of every block, in order).
__device__ __forceinline__ void store_accumulators(const float (&d)[kAcc], float* out) {
  float* o = out + (static_cast<size_t>(blockIdx.x) * 256 + threadIdx.x) * kAcc;
#pragma unroll
  for (int i = 0; i < kAcc; ++i) o[i] = d[i];
}

/// The end of a kernel's timed loop: its wgmmas retired (no read of d moves above the wait),
/// block 0's clock stopped, the accumulators stored.
__device__ __forceinline__ void finish_loop(float (&d)[kAcc], const LoopClock& clock,
                                            unsigned long long* timing, float* out) {
  wgmma_wait<0>();
  wg::fence_accumulators(d);
  clock.stop(timing);
  store_accumulators(d, out);
}

/// Shared address of row `row`, 16-byte unit `unit` of a 128-byte-swizzled tile at base.
__device__ __forceinline__ uint32_t swizzled(uint32_t base, int row, int unit) {
  return base + row * kRowBytes + ((unit ^ (row & 7)) << 4);
}

template <int kMode>
__global__ void __launch_bounds__(threads_of(kMode), 1)
    probe_kernel(int k_tiles, const uint4* codes, const __nv_bfloat16* x, const uint32_t* scales,
                 float* out, unsigned long long* timing) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  const uint32_t x_s = smem_addr(smem);
  const uint32_t a_s = x_s + kXBytes;
  uint4* codes_s = reinterpret_cast<uint4*>(smem + kXBytes + kStages * kAStageBytes);
  const uint32_t bars = smem_addr(codes_s) + kCodeBytes;  // full[s] at 8s, empty[s] at 64 + 8s
  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;

  // x (swizzle irrelevant: any fixed layout, the same for every mode), codes, a fixed A ring.
  for (int i = tid; i < kXBytes / 2; i += blockDim.x)
    reinterpret_cast<__nv_bfloat16*>(smem)[i] = x[i];
  for (int i = tid; i < kCodeBytes / 16; i += blockDim.x) codes_s[i] = codes[i];
  for (int i = tid; i < kStages * kAStageBytes / 2; i += blockDim.x)
    reinterpret_cast<__nv_bfloat16*>(smem + kXBytes)[i] = x[i % (kXBytes / 2)];
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(bars + 8 * s, 4);       // the transform warps
      mbarrier_init(bars + 64 + 8 * s, 8);  // the consumer warps
    }
    mbarrier_init_fence();
  }
  fence_proxy_async();
  __syncthreads();
  LoopClock clock;  // block 0's thread 0, a consumer: the cycles and the clock of the loop
  clock.start();

  const uint32_t zz = 0x43084308u;  // bf16 (136, 136): 128 + z with z = 8
  if (warp >= 8) {
    // Transform warpgroup: strips 2t and 2t + 1 of each k-tile into ring stage kt % kStages.
    if constexpr (kMode != kSsOnly && kMode != kRsDecode) {
      const int t = warp - 8;
      uint32_t sink = 0;
      for (int kt = 0; kt < k_tiles; ++kt) {
        const int s = kt % kStages;
        if (kt >= kStages) mbarrier_wait(bars + 64 + 8 * s, ((kt / kStages) - 1) & 1);
        if constexpr (kMode != kWsSync) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int strip = 2 * t + h;
            const uint4 c = codes_s[strip * 32 + lane];
            const uint32_t w[4] = {c.x, c.y, c.z, c.w};
            const uint32_t s_lo = scales[strip * 16 + lane / 4];
            const uint32_t s_hi = scales[strip * 16 + 8 + lane / 4];
            // stmatrix: lane l gives row l % 8 (+ 8 for matrices 1 and 3) of matrix l / 8,
            // whose columns are k unit 2j (matrices 0, 1) or 2j + 1 (2, 3): a0..a3's places.
            const int row = strip * 16 + lane % 8 + 8 * ((lane / 8) & 1);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
              uint32_t a[4] = {w[0], w[1], w[2], w[3]};
              if constexpr (kMode != kWsStore) decode_subtile(w, j, zz, s_lo, s_hi, a);
              if constexpr (kMode == kWsAlu) {
                sink ^= a[0] ^ a[1] ^ a[2] ^ a[3];
              } else {
                stmatrix_x4(swizzled(a_s + s * kAStageBytes, row, 2 * j + lane / 16), a);
              }
            }
          }
          // stmatrix writes, read next by wgmma (async proxy)
          if constexpr (kMode != kWsAlu) fence_proxy_async();
        }
        __syncwarp();
        if (lane == 0) mbarrier_arrive(bars + 8 * s);
      }
      if (sink == 0x9E3779B9u) out[0] = 1.f;  // keeps ws-alu's decode alive
    }
    return;
  }

  // Consumer warpgroup g: m64 block g (rows 64g .. 64g + 63), all 256 tokens.
  const int g = warp / 4;
  float d[kAcc];
  const uint64_t desc_x = descriptor(x_s);
  if constexpr (kMode == kRsDecode) {
    const int strip = 4 * g + warp % 4;
    const uint32_t s_lo = scales[strip * 16 + lane / 4];
    const uint32_t s_hi = scales[strip * 16 + 8 + lane / 4];
    uint32_t a[3][4];
    for (int kt = 0; kt < k_tiles; kt += 2) {
#pragma unroll
      for (int h = 0; h < 2; ++h)
        multiply_half(codes_s[strip * 32 + lane], h, desc_x, zz, s_lo, s_hi, kt > 0 || h > 0, a, d);
      wgmma_wait<0>();
    }
  } else {
    for (int kt = 0; kt < k_tiles; ++kt) {
      const int s = kt % kStages;
      if constexpr (kMode != kSsOnly) mbarrier_wait(bars + 8 * s, (kt / kStages) & 1);
      const uint64_t desc_a = descriptor(a_s + s * kAStageBytes + g * (kAStageBytes / 2));
      wgmma_fence();
#pragma unroll
      for (int j = 0; j < 4; ++j) wgmma_ss(d, desc_a + 2 * j, desc_x + 2 * j, kt > 0 || j > 0);
      wgmma_commit();
      wgmma_wait<1>();  // k-tile kt - 1's wgmmas have read their stage
      if constexpr (kMode != kSsOnly) {
        if (kt > 0 && lane == 0) mbarrier_arrive(bars + 64 + 8 * ((kt - 1) % kStages));
      }
    }
  }
  finish_loop(d, clock, timing, out);
#else
  (void)k_tiles, (void)codes, (void)x, (void)scales, (void)out, (void)timing;
  __trap();
#endif
}

/// The kernel's epilogue for the probe's items (whole block, ring idle): the accumulators as bf16
/// into shared memory (token-major, as the kernel stages its y tile), then 16-byte rows of y.
__device__ __forceinline__ void epilogue(const float (&d)[kAcc], unsigned char* smem, uint4* y) {
  __syncthreads();  // every warp's wgmmas (drained before the call) are done with the ring
  auto* ys = reinterpret_cast<__nv_bfloat16*>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = 64 * (warp / 4) + 16 * (warp % 4) + lane / 4;  // d[4c + r]'s row: + 8 (r / 2)
#pragma unroll
  for (int c = 0; c < kAcc / 4; ++c)
#pragma unroll
    for (int r = 0; r < 4; ++r)
      ys[(8 * c + 2 * (lane % 4) + r % 2) * kRows + row + 8 * (r / 2)] =
          __float2bfloat16(d[4 * c + r]);
  __syncthreads();
  const uint4* src = reinterpret_cast<const uint4*>(smem);
  for (int i = threadIdx.x; i < kTokens * kRows * 2 / 16; i += blockDim.x) y[i] = src[i];
  __syncthreads();
}

/// Modes 14 and 15: the kernel's epilogue (whole block, ring idle): the y tile staged token-major
/// at the kernel's padded stride, by 2-byte stores (the kernel until session 45) or by its
/// stage_y_strip, then the kernel's store_y_tile into y[token][128 x blocks], the block's 128
/// rows at 128 blockIdx.x.
template <bool kStmatrix>
__device__ __forceinline__ void kernel_epilogue(const float (&d)[kAcc], unsigned char* smem,
                                                unsigned short* y) {
  __syncthreads();  // every warp's wgmmas (drained before the call) are done with the ring
  constexpr int kStride = wg::TokenTile<kTokens>::kYStride;
  static_assert(kStride == kRows + 8, "the 256-token tile's staging stride");
  auto* ys = reinterpret_cast<unsigned short*>(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if constexpr (kStmatrix) {
    wg::stage_y_strip<__nv_bfloat16>(d, ys, kStride, 16 * warp, kAcc / 4, lane,
                                     [](float v) { return v; });
  } else {
#pragma unroll
    for (int c = 0; c < kAcc / 4; ++c)
#pragma unroll
      for (int r = 0; r < 4; ++r)
        ys[(8 * c + 2 * (lane % 4) + r % 2) * kStride + 16 * warp + lane / 4 + 8 * (r / 2)] =
            __bfloat16_as_ushort(__float2bfloat16_rn(d[4 * c + r]));
  }
  __syncthreads();
  store_y_tile<kRows>(ys, kStride, kTokens, blockIdx.x * kRows, gridDim.x * kRows, y);
  // As at the kernel's item start: the ring's generic accesses before the next bulk copies.
  fence_proxy_async();
  __syncthreads();
}

/// Modes 6-10: rs-decode's k-loop (two 64-k halves per k-tile of 128) on the 256-token tile's
/// ring. codes: kStreamCodeTiles k128 tiles of 8 strips x 1 KB per block; x: kStreamXTiles
/// tiles of 64 KB (any layout: the probe times, it does not check these modes). kLag: the
/// stage a k-tile's end releases is its own (0: drained) or the one before (1: three wgmmas
/// still in flight). kBarrier: released by a block barrier and refilled by thread 0, else
/// counted per warp on a shared counter and refilled by the last warp to release it.
/// kItemTiles: k-tiles per item (0: one item), each ending in an epilogue (kBarrier only);
/// kPrefetch: the next item's first stages are issued before that epilogue (kLag = 1).
/// kEpilogue: the probe's (0) or the kernel's, by 2-byte stores (1) or stmatrix (2), with the
/// items staggered across blocks (modes 14 and 15).
template <bool kCopy, int kLag, bool kBarrier, int kItemTiles = 0, bool kPrefetch = false,
          int kEpilogue = 0>
__global__ void __launch_bounds__(256, 1)
    ring_kernel(int k_tiles, const uint4* codes, const __nv_bfloat16* x, const uint32_t* scales,
                float* out, unsigned long long* timing) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  const uint32_t ring = smem_addr(smem);
  const uint32_t full = ring + kRingStages * kRingStageBytes;  // full[s] at 8s
  unsigned* released = reinterpret_cast<unsigned*>(smem + kRingStages * kRingStageBytes + 64);
  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int tiles = k_tiles / 2;
  const unsigned char* block_codes =
      reinterpret_cast<const unsigned char*>(codes) +
      static_cast<size_t>(blockIdx.x) * kStreamCodeTiles * (kStrips * 1024);
  const auto refill = [&](int n) {  // one thread: k-tile n into stage n % kRingStages
    const int s = n % kRingStages;
    const uint32_t bar = full + 8 * s;
    if constexpr (kCopy) {
      mbarrier_arrive_expect_tx(bar, kRingStageBytes);
      bulk_copy_g2s(ring + s * kRingStageBytes,
                    reinterpret_cast<const unsigned char*>(x) +
                        static_cast<size_t>(n % kStreamXTiles) * kRingXBytes,
                    kRingXBytes, bar);
      bulk_copy_g2s(ring + s * kRingStageBytes + kRingXBytes,
                    block_codes + static_cast<size_t>(n % kStreamCodeTiles) * (kStrips * 1024),
                    kStrips * 1024, bar);
    } else {
      mbarrier_arrive(bar);
    }
  };
  constexpr int kPrefill = kRingStages - kLag;
  // Item boundaries: every kItemTiles k-tiles, block b's shifted by kItemTiles b / blocks (the
  // first item is that much shorter, and its fills stop at its end like any item's).
  const int stagger = kEpilogue > 0 ? kItemTiles * static_cast<int>(blockIdx.x) / gridDim.x : 0;
  const int first_end = kItemTiles > 0 ? kItemTiles - stagger : tiles;
  if (tid == 0) {
    for (int s = 0; s < kRingStages; ++s) {
      mbarrier_init(full + 8 * s, 1);
      released[s] = 0;
    }
    mbarrier_init_fence();
    for (int n = 0; n < kPrefill && n < tiles && n < first_end; ++n) refill(n);
  }
  __syncthreads();
  LoopClock clock;
  clock.start();
  const int g = warp / 4;
  const int strip = 4 * g + warp % 4;
  const uint32_t zz = 0x43084308u;
  const uint32_t s_lo = scales[strip * 16 + lane / 4];
  const uint32_t s_hi = scales[strip * 16 + 8 + lane / 4];
  constexpr int kBuffers = kLag == 0 ? 3 : 4;  // with a lag, 4 divides 8: fixed indices
  float d[kAcc];
  uint32_t a[kBuffers][4];
  for (int kt = 0; kt < tiles; ++kt) {
    const int s = kt % kRingStages;
    mbarrier_wait(full + 8 * s, (kt / kRingStages) & 1);
    // An item starts at k-tile 0 (the first, shortened by the stagger) and at its boundaries.
    bool item_start = kt == 0;
    if constexpr (kItemTiles > 0) item_start = item_start || (kt + stagger) % kItemTiles == 0;
    const uint32_t stage = ring + s * kRingStageBytes;
    const uint4* codes_s = reinterpret_cast<const uint4*>(smem + s * kRingStageBytes + kRingXBytes);
#pragma unroll
    for (int h = 0; h < 2; ++h)
      multiply_half(codes_s[strip * 64 + h * 32 + lane], h, descriptor(stage + h * kXBytes), zz,
                    s_lo, s_hi, !item_start || h > 0, a, d);
    if constexpr (kLag == 0) wgmma_wait<0>();
    // Released now: the stage of k-tile kt - kLag (for kLag = 1 and kt = 0, the unfilled one).
    const int next = kt + kRingStages - kLag;
    if constexpr (kItemTiles > 0) {
      static_assert(kBarrier, "items run with the block barrier");
      // The item's fills stop at its end; the next item's start after its epilogue.
      const int item_end = ((kt + stagger) / kItemTiles + 1) * kItemTiles - stagger;
      __syncthreads();
      if (tid == 0 && next < item_end && next < tiles) refill(next);
      if (kt + 1 == item_end) {
        // With the lag, the next item's first kPrefill stages are free here (their k-tiles' wgmmas
        // retired); the third, the last k-tile's, holds the y tile once drained.
        static_assert(!kPrefetch || kLag == 1, "prefetch leaves the epilogue the third stage");
        if (kPrefetch && tid == 0)
          for (int n = item_end; n < item_end + kPrefill && n < tiles; ++n) refill(n);
        wgmma_wait<0>();
        wg::fence_accumulators(d);  // no read of d moves above the wait
        float* y = out + static_cast<size_t>(gridDim.x) * 256 * kAcc;
        unsigned char* ys = smem + (kPrefetch ? kt % kRingStages : 0) * kRingStageBytes;
        if constexpr (kEpilogue > 0)
          kernel_epilogue<kEpilogue == 2>(d, ys, reinterpret_cast<unsigned short*>(y));
        else
          epilogue(d, ys,
                   reinterpret_cast<uint4*>(y) +
                       static_cast<size_t>(blockIdx.x) * (kTokens * kRows * 2 / 16));
        if (!kPrefetch && tid == 0)
          for (int n = item_end; n < item_end + kPrefill && n < tiles; ++n) refill(n);
      }
    } else if constexpr (kBarrier) {
      __syncthreads();
      if (tid == 0 && next < tiles) refill(next);
    } else {
      __syncwarp();
      if (lane == 0) {
        unsigned* count = released + next % kRingStages;
        if (atomicAdd(count, 1u) == 7u) {  // the eighth warp: the stage is free
          *count = 0;
          if (next < tiles) refill(next);
        }
      }
    }
  }
  finish_loop(d, clock, timing, out);
#else
  (void)k_tiles, (void)codes, (void)x, (void)scales, (void)out, (void)timing;
  __trap();
#endif
}

using KernelFn = void (*)(int, const uint4*, const __nv_bfloat16*, const uint32_t*, float*,
                          unsigned long long*);
constexpr KernelFn kKernels[kModes] = {probe_kernel<kSsOnly>,
                                       probe_kernel<kWsSync>,
                                       probe_kernel<kWsDecode>,
                                       probe_kernel<kRsDecode>,
                                       probe_kernel<kWsStore>,
                                       probe_kernel<kWsAlu>,
                                       ring_kernel<true, 0, true>,
                                       ring_kernel<false, 0, true>,
                                       ring_kernel<true, 1, true>,
                                       ring_kernel<true, 0, false>,
                                       ring_kernel<true, 1, false>,
                                       ring_kernel<true, 1, true, 32>,
                                       ring_kernel<true, 0, true, 32>,
                                       ring_kernel<true, 1, true, 32, true>,
                                       ring_kernel<true, 1, true, 32, false, 1>,
                                       ring_kernel<true, 1, true, 32, false, 2>,
                                       ring_kernel<true, 1, true, 32, true, 2>};

float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// TFLOP/s of a bf16 cuBLAS GEMM (m x n x k, fp32 accumulation), median of reps.
float cublas_tflops(int m, int n, int k, int reps) {
  __nv_bfloat16 *a, *b, *c;
  PROBE_CHECK(cudaMalloc(&a, sizeof(__nv_bfloat16) * m * k));
  PROBE_CHECK(cudaMalloc(&b, sizeof(__nv_bfloat16) * n * k));
  PROBE_CHECK(cudaMalloc(&c, sizeof(__nv_bfloat16) * m * n));
  PROBE_CHECK(cudaMemset(a, 0x3c, sizeof(__nv_bfloat16) * m * k));
  PROBE_CHECK(cudaMemset(b, 0x3c, sizeof(__nv_bfloat16) * n * k));
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) std::exit(1);
  const float one = 1.f, zero = 0.f;
  cudaEvent_t e0, e1;
  PROBE_CHECK(cudaEventCreate(&e0));
  PROBE_CHECK(cudaEventCreate(&e1));
  std::vector<float> t;
  for (int r = 0; r < reps + 1; ++r) {
    PROBE_CHECK(cudaEventRecord(e0));
    if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_16BF, k, b, CUDA_R_16BF,
                     k, &zero, c, CUDA_R_16BF, m, CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
      std::exit(1);
    PROBE_CHECK(cudaEventRecord(e1));
    PROBE_CHECK(cudaEventSynchronize(e1));
    float ms;
    PROBE_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (r > 0) t.push_back(ms);
  }
  cublasDestroy(h);
  PROBE_CHECK(cudaFree(a));
  PROBE_CHECK(cudaFree(b));
  PROBE_CHECK(cudaFree(c));
  return static_cast<float>(2.0 * m * n * k / (median(t) * 1e-3) / 1e12);
}

}  // namespace

int main(int argc, char** argv) {
  const int k_tiles = argc > 1 ? std::atoi(argv[1]) : 4096;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  if (k_tiles < 2 || k_tiles % 2 != 0 || reps < 1) {
    std::fprintf(stderr, "usage: wgmma_ws_probe [k_tiles (even, >= 2)] [reps]\n");
    return 2;
  }
  cudaDeviceProp prop;
  PROBE_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int grid = prop.multiProcessorCount;

  std::srand(12345);
  // Codes and x large enough for modes 6 and 7; the others read their first kCodeBytes / kXBytes.
  const size_t code_bytes = static_cast<size_t>(grid) * kStreamCodeTiles * kStrips * 1024;
  const size_t x_bytes = static_cast<size_t>(kStreamXTiles) * kRingXBytes;
  std::vector<uint32_t> codes(code_bytes / 4), scales(kRows);
  for (auto& c : codes) c = static_cast<uint32_t>(std::rand()) * 2654435761u ^ std::rand();
  for (auto& s : scales) {
    const __nv_bfloat16 v = __float2bfloat16(0.01f + 0.02f * (std::rand() / float(RAND_MAX)));
    const uint16_t bits = *reinterpret_cast<const uint16_t*>(&v);
    s = bits * 0x10001u;
  }
  std::vector<__nv_bfloat16> x(x_bytes / 2);
  for (auto& v : x) v = __float2bfloat16(std::rand() / float(RAND_MAX) - 0.5f);

  uint4* codes_d;
  uint32_t* scales_d;
  __nv_bfloat16* x_d;
  float* out_d[kModes];
  const size_t out_floats = static_cast<size_t>(grid) * 256 * kAcc;
  // Modes 11-15 write their items' y tiles (64 KB a block) after the accumulators.
  const size_t out_alloc_floats = out_floats + static_cast<size_t>(grid) * kTokens * kRows / 2;
  unsigned long long* timing_d;
  PROBE_CHECK(cudaMalloc(&timing_d, 2 * sizeof(unsigned long long)));
  PROBE_CHECK(cudaMalloc(&codes_d, code_bytes));
  PROBE_CHECK(cudaMalloc(&scales_d, kRows * 4));
  PROBE_CHECK(cudaMalloc(&x_d, x_bytes));
  PROBE_CHECK(cudaMemcpy(codes_d, codes.data(), code_bytes, cudaMemcpyHostToDevice));
  PROBE_CHECK(cudaMemcpy(scales_d, scales.data(), kRows * 4, cudaMemcpyHostToDevice));
  PROBE_CHECK(cudaMemcpy(x_d, x.data(), x_bytes, cudaMemcpyHostToDevice));
  for (int m = 0; m < kModes; ++m) {
    PROBE_CHECK(cudaMalloc(&out_d[m], out_alloc_floats * 4));
    PROBE_CHECK(cudaMemset(out_d[m], 0xFF, out_alloc_floats * 4));  // NaN poison
    PROBE_CHECK(
        cudaFuncSetAttribute(kKernels[m], cudaFuncAttributeMaxDynamicSharedMemorySize, smem_of(m)));
  }

  // Correctness of the transform layout: ws-decode against rs-decode over a short run.
  const int check_tiles = 8;
  for (int m : {kWsDecode, kRsDecode}) {
    kKernels[m]<<<grid, threads_of(m), smem_of(m)>>>(check_tiles, codes_d, x_d, scales_d, out_d[m],
                                                     timing_d);
    PROBE_CHECK(cudaGetLastError());
  }
  PROBE_CHECK(cudaDeviceSynchronize());
  std::vector<float> ws(out_floats), rs(out_floats);
  PROBE_CHECK(cudaMemcpy(ws.data(), out_d[kWsDecode], out_floats * 4, cudaMemcpyDeviceToHost));
  PROBE_CHECK(cudaMemcpy(rs.data(), out_d[kRsDecode], out_floats * 4, cudaMemcpyDeviceToHost));
  double err = 0, ref = 0;
  for (size_t i = 0; i < out_floats; ++i) {
    err += (double(ws[i]) - rs[i]) * (double(ws[i]) - rs[i]);
    ref += double(rs[i]) * rs[i];
  }
  const double nmse = err / ref;
  std::printf("check ws-decode vs rs-decode: nmse %.3g (%s)\n", nmse,
              nmse < 1e-10 && std::isfinite(nmse) ? "ok" : "MISMATCH");

  // The kernel's epilogue both ways (modes 14 and 15, 96 k-tiles: items of every length the
  // stagger gives, then a partial one): the accumulators, and the y tiles bit for bit (none
  // left poisoned); each mode twice, to tell a layout error from sums that do not repeat.
  const size_t y_halves = static_cast<size_t>(grid) * kTokens * kRows;
  auto run_once = [&](int m, std::vector<float>& acc, std::vector<uint16_t>& y) {
    PROBE_CHECK(cudaMemset(out_d[m], 0xFF, out_alloc_floats * 4));
    kKernels[m]<<<grid, threads_of(m), smem_of(m)>>>(96, codes_d, x_d, scales_d, out_d[m],
                                                     timing_d);
    PROBE_CHECK(cudaGetLastError());
    PROBE_CHECK(cudaDeviceSynchronize());
    acc.resize(out_floats);
    y.resize(y_halves);
    PROBE_CHECK(cudaMemcpy(acc.data(), out_d[m], out_floats * 4, cudaMemcpyDeviceToHost));
    PROBE_CHECK(cudaMemcpy(y.data(), out_d[m] + out_floats, y_halves * 2, cudaMemcpyDeviceToHost));
  };
  auto differ = [](const auto& a, const auto& b) {
    size_t n = 0;
    for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(a[i])) != 0;
    return n;
  };
  std::vector<float> acc_k1, acc_k2, acc_s1, acc_s2;
  std::vector<uint16_t> y_k1, y_k2, y_s1, y_s2;
  run_once(kRsItemsKernelEpilogue, acc_k1, y_k1);
  run_once(kRsItemsStmatrix, acc_s1, y_s1);
  run_once(kRsItemsKernelEpilogue, acc_k2, y_k2);
  run_once(kRsItemsStmatrix, acc_s2, y_s2);
  const size_t y_poisoned = std::count(y_s1.begin(), y_s1.end(), 0xFFFF);
  const size_t y_differ = differ(y_k1, y_s1);
  const bool y_same = y_differ == 0 && y_poisoned == 0;
  std::printf(
      "check rs-items-stm y vs rs-items-kepi y: %s (%zu of %zu differ, %zu poisoned); "
      "accumulators differing: stm vs kepi %zu, kepi vs kepi %zu, stm vs stm %zu of %zu; "
      "y differing: kepi vs kepi %zu, stm vs stm %zu\n",
      y_same ? "identical" : "MISMATCH", y_differ, y_halves, y_poisoned, differ(acc_k1, acc_s1),
      differ(acc_k1, acc_k2), differ(acc_s1, acc_s2), out_floats, differ(y_k1, y_k2),
      differ(y_s1, y_s2));

  cudaEvent_t e0, e1;
  PROBE_CHECK(cudaEventCreate(&e0));
  PROBE_CHECK(cudaEventCreate(&e1));
  std::vector<float> times[kModes], mhz[kModes], cycles[kModes];
  for (int r = 0; r < reps + 1; ++r) {
    for (int m = 0; m < kModes; ++m) {
      PROBE_CHECK(cudaEventRecord(e0));
      kKernels[m]<<<grid, threads_of(m), smem_of(m)>>>(k_tiles, codes_d, x_d, scales_d, out_d[m],
                                                       timing_d);
      PROBE_CHECK(cudaGetLastError());
      PROBE_CHECK(cudaEventRecord(e1));
      PROBE_CHECK(cudaEventSynchronize(e1));
      float ms;
      PROBE_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      unsigned long long timing[2];
      PROBE_CHECK(cudaMemcpy(timing, timing_d, sizeof(timing), cudaMemcpyDeviceToHost));
      if (r > 0) {
        times[m].push_back(ms);
        mhz[m].push_back(1e3f * timing[0] / timing[1]);
        cycles[m].push_back(static_cast<float>(timing[0]) / k_tiles);
      }
    }
  }
  const double flops = 2.0 * grid * k_tiles * kRows * kTokens * 64;
  const float cublas_square = cublas_tflops(8192, 8192, 8192, reps);
  const float cublas_w13 = cublas_tflops(28672, 1024, 4096, reps);
  std::printf("device %s, %d SMs, %d k-tiles of 64 per block\n", prop.name, grid, k_tiles);
  // cycles / k-tile: block 0's SM cycles per k-tile (1024 at the tensor pipe's peak: 128 x 256
  // x 64 multiply-adds at 2048 a cycle); MHz: its clock over the loop.
  std::printf("%-17s %9s %9s %9s %14s\n", "mode", "ms", "TFLOP/s", "MHz", "cycles/k-tile");
  for (int m = 0; m < kModes; ++m) {
    const float ms = median(times[m]);
    std::printf("%-17s %9.3f %9.1f %9.0f %14.0f\n", kModeNames[m], ms, flops / (ms * 1e-3) / 1e12,
                median(mhz[m]), median(cycles[m]));
  }
  std::printf(
      "cublas bf16 8192^3: %.1f TFLOP/s; 28672x1024x4096 (Mixtral w13, 1024 tokens): "
      "%.1f TFLOP/s\n",
      cublas_square, cublas_w13);
  return nmse < 1e-10 && std::isfinite(nmse) && y_same ? 0 : 1;
}

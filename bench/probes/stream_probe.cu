// bench/probes/stream_probe.cu — a diagnostic, not a qmoe kernel: the decode kernel's memory
// side alone, to find which of its shapes limits a launch's read rate.
//
// Sessions 14, 21 and 29 found deeper rings slower in the decode kernel (grouped_gemv.cuh),
// session 20 found its copies alone (multiplications removed) at 63-70 % of the read rate, and
// session 52 found the one-token launches of the small shapes streaming at ~40 % of it with
// ~0.8 us per k-tile and warp. This probe streams with the decode kernel's geometry and
// nothing else: blocks of 8 warps at two per SM (the kernel's ring shared memory per warp), each
// warp a run of `tiles` stages; a stage is R tiles of `tile` bytes from R strips, copied by bulk
// copies (lane 0, one per tile, on the slot's mbarrier) or by the lanes' 16-byte cp.async, with
// kAhead stages in flight while one is read (the kernel: kAhead = 1). Per stage the lanes read
// the stage from shared memory and may spin `work` SM cycles (the decode's time, without its
// instructions). Only the first `busy` blocks stream (a one-item launch with fewer items than
// blocks); the others exit.
//
// Patterns: runs — each warp's strips are contiguous runs of `tiles` tiles, one after another
// in block and warp order (the bank's layout: a strip's k-tiles adjacent); window — at stage i
// every warp of the grid reads adjacent tiles (a grid-wide sliding window, as the read-rate
// kernel of bench/timing.cu does).
//
// Timing: a CUDA graph of kLaunches launches, each from its own base offset in a buffer of
// 4 GiB (no reuse from L2), replayed kReps times; the reported time per launch is the median
// replay over kLaunches, and the span from the grid's first block entry to its last block
// exit (%globaltimer) is the median of those launches' spans. The empty launch (no busy
// block) gives the per-launch overhead.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/probes/probe_util.cuh"
#include "cuda/decode/common.cuh"

namespace {
using namespace qmoe::dev;

constexpr int kWarps = 8;
constexpr int kRingBytes = 9728;  // the decode kernel's ring per warp (grouped_gemv.cuh)
constexpr int kMaxSlots = 8;
constexpr int kLaunches = 20;
constexpr int kReps = 7;
constexpr size_t kBufferBytes = size_t{4} << 30;

enum class Copy { kBulk, kLanes };
enum class Pattern { kRuns, kWindow };

struct Params {
  const uint8_t* src;
  int tiles;   // stages per warp
  int strips;  // R: tiles per stage
  int tile;    // bytes per tile (a multiple of 512)
  int busy;    // blocks that stream
  Pattern pattern;
  long long work;  // SM cycles spun per stage
  uint32_t* sink;
  unsigned long long* span;  // [2]: first entry (min), last exit (max)
};

template <Copy kCopy, int kAhead>
__global__ void __launch_bounds__(kWarps * 32, 2) stream_kernel(const Params p) {
  constexpr int kSlots = kAhead + 1;
  extern __shared__ __align__(16) unsigned char smem[];
  if (threadIdx.x == 0) atomicMin(p.span, probe_global_ns());
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  uint8_t* ring = smem + warp * kRingBytes;
  const uint32_t bars = smem_addr(smem + kWarps * kRingBytes + warp * 8 * kMaxSlots);
  const int stage_bytes = p.strips * p.tile;
  uint32_t fold = 0;
  if (static_cast<int>(blockIdx.x) < p.busy) {
    if (lane == 0) {
      for (int s = 0; s < kSlots; ++s) mbarrier_init(bars + 8 * s, 1);
      mbarrier_init_fence();
    }
    __syncwarp();
    const long long runs = static_cast<long long>(p.busy) * kWarps * p.strips;
    const long long run0 = (static_cast<long long>(blockIdx.x) * kWarps + warp) * p.strips;
    auto tile_src = [&](int i, int r) {
      const long long run = run0 + r;
      const long long index = p.pattern == Pattern::kRuns ? run * p.tiles + i : i * runs + run;
      return p.src + index * p.tile;
    };
    auto issue = [&](int i) {
      uint8_t* stage = ring + (i % kSlots) * stage_bytes;
      if constexpr (kCopy == Copy::kBulk) {
        if (lane == 0) {
          const uint32_t bar = bars + 8 * (i % kSlots);
          mbarrier_arrive_expect_tx(bar, stage_bytes);
          for (int r = 0; r < p.strips; ++r)
            bulk_copy_g2s(smem_addr(stage + r * p.tile), tile_src(i, r), p.tile, bar);
        }
      } else {
        for (int r = 0; r < p.strips; ++r)
          for (int c = lane * 16; c < p.tile; c += 32 * 16)
            cp_async_16(smem_addr(stage + r * p.tile + c), tile_src(i, r) + c);
      }
    };
    for (int i = 0; i < kAhead; ++i) {
      if (i < p.tiles) issue(i);
      cp_async_commit();
    }
    uint32_t phases = 0;
    for (int i = 0; i < p.tiles; ++i) {
      // The kernel's advance(): wait for stage i, then refill the slot of stage i - 1.
      cp_async_wait<kAhead - 1>();
      if constexpr (kCopy == Copy::kBulk) {
        const int slot = i % kSlots;
        mbarrier_wait(bars + 8 * slot, (phases >> slot) & 1u);
        phases ^= 1u << slot;
      }
      __syncwarp();
      if (i + kAhead < p.tiles) issue(i + kAhead);
      cp_async_commit();
      const uint8_t* stage = ring + (i % kSlots) * stage_bytes;
      for (int c = lane * 16; c < stage_bytes; c += 32 * 16) {
        const uint4 v = *reinterpret_cast<const uint4*>(stage + c);
        fold ^= v.x ^ v.y ^ v.z ^ v.w;
      }
      if (p.work > 0) {
        const long long t0 = clock64();
        while (clock64() - t0 < p.work) {
        }
      }
      // Every lane has read stage i before the next iteration's refill overwrites its slot.
      __syncwarp();
    }
  }
  if (fold == 0x9e3779b9u) p.sink[0] = fold;  // keeps the reads; practically never stores
  __syncthreads();
  if (threadIdx.x == 0) atomicMax(p.span + 1, probe_global_ns());
}

struct Config {
  const char* name;
  Copy copy;
  int ahead;
  Pattern pattern;
  int busy, tiles, strips, tile;
  long long work;
};

using KernelPtr = void (*)(Params);
template <Copy kCopy>
KernelPtr kernel_for(int ahead) {
  switch (ahead) {
    case 1:
      return stream_kernel<kCopy, 1>;
    case 2:
      return stream_kernel<kCopy, 2>;
    case 3:
      return stream_kernel<kCopy, 3>;
    case 7:
      return stream_kernel<kCopy, 7>;
    default:
      return nullptr;
  }
}
KernelPtr kernel_of(Copy copy, int ahead) {
  return copy == Copy::kBulk ? kernel_for<Copy::kBulk>(ahead) : kernel_for<Copy::kLanes>(ahead);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  cudaDeviceProp prop;
  PROBE_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int grid = 2 * prop.multiProcessorCount;
  const size_t smem = kWarps * (kRingBytes + 8 * kMaxSlots);
  uint8_t* buffer;
  uint32_t* sink;
  unsigned long long* spans;
  PROBE_CHECK(cudaMalloc(&buffer, kBufferBytes));
  PROBE_CHECK(cudaMalloc(&sink, 4));
  PROBE_CHECK(cudaMalloc(&spans, 2 * kLaunches * sizeof(unsigned long long)));
  // Non-zero, varied bytes (no transparent compression of uniform pages).
  std::vector<uint32_t> pattern(1 << 20);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint32_t>(i) * 2654435761u;
  for (size_t off = 0; off < kBufferBytes; off += pattern.size() * 4)
    PROBE_CHECK(
        cudaMemcpy(buffer + off, pattern.data(), pattern.size() * 4, cudaMemcpyHostToDevice));
  for (Copy c : {Copy::kBulk, Copy::kLanes})
    for (int a : {1, 2, 3, 7})
      PROBE_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel_of(c, a)),
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)));
  cudaStream_t stream;
  PROBE_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t start, stop;
  PROBE_CHECK(cudaEventCreate(&start));
  PROBE_CHECK(cudaEventCreate(&stop));

  std::vector<Config> configs;
  const int small_busy = 192;  // Qwen3's gate/up at T = 1: 192 items on 264 blocks
  for (long long work : {0LL, 600LL, 1200LL})
    for (Copy c : {Copy::kBulk, Copy::kLanes})
      for (int a : {1, 2, 3, 7})
        for (Pattern pt : {Pattern::kRuns, Pattern::kWindow})
          configs.push_back({"one-item 1KBx1", c, a, pt, small_busy, 8, 1, 1024, work});
  for (long long work : {0LL, 600LL})
    for (int a : {1, 2})
      for (Pattern pt : {Pattern::kRuns, Pattern::kWindow}) {
        configs.push_back({"large 1KBx4", Copy::kBulk, a, pt, grid, 32, 4, 1024, work});
        configs.push_back({"large 512Bx8", Copy::kLanes, a, pt, grid, 32, 8, 512, work});
      }
  // Every block with an item (DS-V2-Lite's gate/up at T = 1: 264 items).
  for (int a : {1, 2, 3, 7})
    configs.push_back({"one-item all", Copy::kBulk, a, Pattern::kRuns, grid, 8, 1, 1024, 600});
  configs.push_back({"empty", Copy::kBulk, 1, Pattern::kRuns, 0, 8, 1, 1024, 0});

  std::printf("device %s, %d SMs, grid %d x %d threads, %zu B shared memory per block\n", prop.name,
              prop.multiProcessorCount, grid, kWarps * 32, smem);
  std::printf("%-15s %-5s %5s %-6s %5s %5s %6s %9s %9s %9s %9s\n", "config", "copy", "ahead",
              "order", "busy", "work", "MB", "us/launch", "span_us", "GB/s", "GB/s_span");
  for (const Config& cf : configs) {
    if ((cf.ahead + 1) * cf.strips * cf.tile > kRingBytes) continue;
    const size_t bytes = static_cast<size_t>(cf.busy) * kWarps * cf.tiles * cf.strips * cf.tile;
    const size_t footprint = std::max<size_t>(bytes, 4096);
    const KernelPtr kernel = kernel_of(cf.copy, cf.ahead);
    cudaGraph_t graph;
    PROBE_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    const size_t slots = (kBufferBytes - footprint) / footprint;
    for (int l = 0; l < kLaunches; ++l) {
      const size_t base = (static_cast<size_t>(l) * 7 % std::max<size_t>(slots, 1)) * footprint;
      Params p{buffer + base, cf.tiles, cf.strips, cf.tile,      cf.busy,
               cf.pattern,    cf.work,  sink,      spans + 2 * l};
      kernel<<<grid, kWarps * 32, smem, stream>>>(p);
      PROBE_CHECK(cudaGetLastError());
    }
    PROBE_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec;
    PROBE_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    std::vector<double> per_launch, span_us;
    std::vector<unsigned long long> init(2 * kLaunches);
    for (int l = 0; l < kLaunches; ++l) init[2 * l] = ~0ull, init[2 * l + 1] = 0;
    for (int rep = 0; rep < kReps + 1; ++rep) {
      PROBE_CHECK(
          cudaMemcpyAsync(spans, init.data(), init.size() * 8, cudaMemcpyHostToDevice, stream));
      PROBE_CHECK(cudaEventRecord(start, stream));
      PROBE_CHECK(cudaGraphLaunch(exec, stream));
      PROBE_CHECK(cudaEventRecord(stop, stream));
      PROBE_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      PROBE_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (rep == 0) continue;  // warm-up
      per_launch.push_back(1e3 * ms / kLaunches);
      std::vector<unsigned long long> got(2 * kLaunches);
      PROBE_CHECK(cudaMemcpy(got.data(), spans, got.size() * 8, cudaMemcpyDeviceToHost));
      for (int l = 0; l < kLaunches; ++l) span_us.push_back(1e-3 * (got[2 * l + 1] - got[2 * l]));
    }
    const double us = median(per_launch), span = median(span_us);
    std::printf("%-15s %-5s %5d %-6s %5d %5lld %6.1f %9.2f %9.2f %9.0f %9.0f\n", cf.name,
                cf.copy == Copy::kBulk ? "bulk" : "lanes", cf.ahead,
                cf.pattern == Pattern::kRuns ? "runs" : "window", cf.busy, cf.work, bytes / 1e6, us,
                span, bytes / (us * 1e3), bytes / (span * 1e3));
    PROBE_CHECK(cudaGraphExecDestroy(exec));
    PROBE_CHECK(cudaGraphDestroy(graph));
  }
  PROBE_CHECK(cudaFree(buffer));
  return 0;
}

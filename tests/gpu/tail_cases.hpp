// tests/gpu/tail_cases.hpp — the calls of the GPU test
// GpuKernels.GroupedGemmShortLastBlocksRunInTheTailTileSmall (test_gpu_kernels.cu), which cannot
// see which launches ran: WgmmaTailSplit.TheGpuTestOfTheTailLaunchRunsEachForm
// (test_kernel_split.cu) checks on the host which tail launch each takes on a 132-SM device (an
// H100). One list for both, so that the two cannot drift apart.
#pragma once
#include <cstdint>
#include <vector>

/// launch_with_tail's launches (grouped_gemm_wgmma.cuh).
enum class TailLaunch {
  kNone,      ///< one unsplit launch of the main tile
  kOneStrip,  ///< head, then the one-strip tail tile (128-row items)
  kTwoBlock,  ///< head, then the two-block tail tile (256-row items)
};

struct TailCase {
  const char* what;                  ///< what the case covers
  std::vector<const char*> formats;  ///< cycled over the experts
  int experts;
  std::vector<int32_t> counts;  ///< tokens per expert, cycled over the experts
  int64_t n, k;
  unsigned seed;
  int tile;         ///< the main token tile: 128 or 256
  TailLaunch tail;  ///< what launch_with_tail runs on a 132-SM device
};

/// At 128 and 256 tokens the wgmma launcher runs each expert's short last token block (a quarter
/// of the tile or less) in a second launch of the 32- or 64-token tile: the two-block tile where
/// the estimated tail items (half the experts x 256-row blocks) reach its grid (264 blocks),
/// else the one-strip tile where twice as many 128-row items fill 3/4 of the SMs (99), else
/// none. Banks whose code slots the tail tiles do not take (int8) keep one launch. The counts
/// of the 128-token cases (mean 150 at K = 640): 20 tokens (the tail launch alone), 300 = 256 +
/// 44 and 100 (the head launch alone), 260 = 256 + 4, 140 = 128 + 12 and 129 = 128 + 1 (both),
/// 250 = 128 + 122 (head). N = 2830: 12 row blocks of 256, 177 strips.
inline const std::vector<TailCase>& tail_cases() {
  static const std::vector<TailCase> cases = {
      {"48 experts x 12 row blocks / 2 = 288 >= 264 tail items: the two-block tail tile",
       {"int4:g64", "int3:g32:sym", "int2:g128", "int4:pc"},
       48,
       {20, 300, 0, 260, 140, 129, 100, 250},
       2830,
       640,
       6801,
       128,
       TailLaunch::kTwoBlock},
      {"int8 experts (2 KB slots) beside them: one launch",
       {"int4:g64", "int3:g32:sym", "int2:g128", "int4:pc", "int4:g64", "int8:g128"},
       48,
       {20, 300, 0, 260, 140, 129, 100, 250},
       2830,
       640,
       6802,
       128,
       TailLaunch::kNone},
      {"24 experts: 144 tail items < 264, 288 of 128 rows: the one-strip 32-token tail tile",
       {"int4:g64", "int3:g32:sym", "int2:g128", "int4:pc"},
       24,
       {20, 300, 0, 260, 140, 129, 100, 250},
       2830,
       640,
       6901,
       128,
       TailLaunch::kOneStrip},
      {"256-token tile (mean 271 at K = 4224, N = 3330: 14 row blocks): 56 tail items, 112 of 128 "
       "rows: the one-strip 64-token tail tile; last blocks of 44, 1, 4, 34, 4, 24, 2 and 6",
       {"int4:g64", "int3:g32:sym", "int2:g128", "int4:pc"},
       8,
       {300, 257, 260, 290, 260, 280, 258, 262},
       3330,
       4224,
       6902,
       256,
       TailLaunch::kOneStrip},
      {"LUT and vector experts (the formed kernels): the one-strip 32-token tail tile",
       {"nuq4", "vq2", "int4:g64", "vq3", "nuq3", "vq1.5"},
       24,
       {20, 300, 0, 260, 140, 129, 100, 250},
       2830,
       640,
       6903,
       128,
       TailLaunch::kOneStrip},
      {"LUT and vector experts: the two-block 32-token tail tile",
       {"nuq2", "vq2.5", "int3:g32:sym", "vq2", "nuq4", "vq3"},
       48,
       {20, 300, 0, 260, 140, 129, 100, 250},
       2830,
       640,
       6904,
       128,
       TailLaunch::kTwoBlock},
      {"LUT and vector experts on the 256-token tile: the one-strip 64-token tail tile",
       {"nuq4", "vq2", "int4:g64", "vq3", "nuq3", "vq1.5", "vq2.5", "nuq2"},
       8,
       {300, 257, 260, 290, 260, 280, 258, 262},
       3330,
       4224,
       6905,
       256,
       TailLaunch::kOneStrip},
  };
  return cases;
}

// tests/gpu/tile256_cases.hpp — the calls of
// GpuKernels.GroupedGemm256TokenTileMatchesReferenceSmall (test_gpu_kernels.cu), which cannot see
// which token tile ran: WgmmaTokenTile.TheGpuTestOfThe256- TokenTileRunsIt (test_kernel_split.cu)
// checks on the host that each takes the 256-token tile. One list for both, so that the two cannot
// drift apart.
#pragma once
#include <cstdint>
#include <vector>

struct Tile256Case {
  const char* what;                  ///< what the case covers
  std::vector<const char*> formats;  ///< one per expert (4 experts)
  int64_t n, k;
  std::vector<int32_t> counts;  ///< tokens per expert
  unsigned seed;
};

/// Banks of 2/3/4-bit experts take the tile at a mean of >= 256 tokens per expert where
/// K >= 4096 and from a mean of 1536 at any K; banks with int8 experts in a kernel of their own.
/// N = 200 is not a multiple of the 128 rows of an item (the last holds 72).
inline const std::vector<Tile256Case>& tile256_cases() {
  static const std::vector<Tile256Case> cases = {
      {"K = 4160 (33 k-tiles, the last half empty: a multiple of 64 and 32, not of 128), mean 270: "
       "last blocks of 44, 1 and 8 tokens",
       {"int4:g32", "int3:g64:sym", "int2:g32", "int4:pc"},
       200,
       4160,
       {300, 0, 257, 520},
       6601},
      {"K = 640, mean 1560: last blocks of 64, 1 and 28",
       {"int4:g32", "int3:g64:sym", "int2:g32", "int4:pc"},
       200,
       640,
       {1600, 0, 1537, 3100},
       6602},
      {"last blocks of 100, 128 and 65 tokens",
       {"int4:g32", "int3:g64:sym", "int2:g32", "int4:pc"},
       200,
       4160,
       {356, 0, 384, 321},
       6607},
      {"int2/int3 only: three stages with smaller slots",
       {"int2:g64", "int3:pc", "int2:pc:sym", "int3:g32"},
       200,
       4160,
       {300, 0, 257, 520},
       6603},
      {"K = 4099 (x rows not 16-byte multiples: no TMA, element loads), N = 203 (element stores)",
       {"int4:pc", "int3:pc:sym", "int2:pc", "int4:pc:sym"},
       203,
       4099,
       {300, 0, 257, 520},
       6604},
      {"int8 experts: the tile's own kernel (two ring stages, drained k-tiles), K = 4224",
       {"int8:g128", "int4:g32", "int8:g32:sym", "int2:pc"},
       200,
       4224,
       {300, 0, 257, 520},
       6605},
      {"int8 kernel, last blocks of 100, 128 and 65 tokens",
       {"int8:g128", "int4:g32", "int8:g32:sym", "int2:pc"},
       200,
       4224,
       {356, 0, 384, 321},
       6608},
      {"int8 kernel, per-channel formats at K = 4099 (no TMA)",
       {"int8:pc", "int4:pc", "int8:pc:sym", "int2:pc"},
       203,
       4099,
       {520, 257, 0, 300},
       6606},
  };
  return cases;
}

// Diagnostic only (session 21, never on main): per-block phase timestamps of the decode kernel's
// last two launches, read by the benchmark after a row's timed graph.
#pragma once
#include <cstdio>
namespace qmoe::dev::diag {
constexpr int kMaxBlocks = 1024;
constexpr int kFields = 8;  // entry, wait, sched, fill, item1, exit, items, smid
static __device__ unsigned long long g_rec[2][kMaxBlocks][kFields];
static __device__ unsigned long long g_hdr[2][4];  // grid, total items, halved, R*1000+gw
static __device__ unsigned int g_seq, g_exits;
constexpr int kTrace = 17;  // item start, then the end of k-tiles 0..15 (block's thread 0)
static __device__ unsigned long long g_kt[2][kMaxBlocks][2][8][kTrace];
__device__ __forceinline__ unsigned long long gtime() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ unsigned int smid() {
  unsigned int s;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
  return s;
}
}  // namespace qmoe::dev::diag
#include <algorithm>
#include <vector>
namespace qmoe::dev::diag {
// Prints the last two launches (older first): phases in us relative to the older launch's first
// block entry; per-launch percentiles over its blocks.
static void dump(const char* label) {
  static unsigned long long rec[2][kMaxBlocks][kFields], hdr[2][4];
  unsigned int seq = 0;
  if (cudaMemcpyFromSymbol(rec, g_rec, sizeof(rec)) != cudaSuccess ||
      cudaMemcpyFromSymbol(hdr, g_hdr, sizeof(hdr)) != cudaSuccess ||
      cudaMemcpyFromSymbol(&seq, g_seq, sizeof(seq)) != cudaSuccess) {
    std::printf("diag: copy failed\n");
    return;
  }
  const int last = static_cast<int>((seq - 1) & 1u), prev = 1 - last;
  const int order[2] = {prev, last};
  unsigned long long base = ~0ull;
  for (int b = 0; b < static_cast<int>(std::min<unsigned long long>(hdr[prev][0], kMaxBlocks)); ++b)
    base = std::min(base, rec[prev][b][0]);
  double prev_exit_max = 0;
  for (int o = 0; o < 2; ++o) {
    const int s = order[o];
    const int grid = static_cast<int>(std::min<unsigned long long>(hdr[s][0], kMaxBlocks));
    auto stat = [&](auto f, double* mn, double* md, double* mx) {
      std::vector<double> v;
      for (int b = 0; b < grid; ++b) {
        const double x = f(rec[s][b]);
        if (x == x) v.push_back(x);
      }
      if (v.empty()) { *mn = *md = *mx = -1; return; }
      std::sort(v.begin(), v.end());
      *mn = v.front(); *md = v[v.size() / 2]; *mx = v.back();
    };
    auto rel = [&](unsigned long long t) { return (static_cast<double>(t) - static_cast<double>(base)) * 1e-3; };
    double a, b, c;
    std::printf("diag %s launch%d grid=%d items=%llu halved=%llu R*1000+gw=%llu\n", label, o, grid,
                hdr[s][1], hdr[s][2], hdr[s][3]);
    stat([&](const unsigned long long* r) { return rel(r[0]); }, &a, &b, &c);
    std::printf("diag   entry      min %8.2f med %8.2f max %8.2f\n", a, b, c);
    stat([&](const unsigned long long* r) { return rel(r[1]); }, &a, &b, &c);
    std::printf("diag   wait-done  min %8.2f med %8.2f max %8.2f   (gap after prev last exit %.2f)\n", a, b, c, o ? a - prev_exit_max : 0.0);
    stat([&](const unsigned long long* r) { return (static_cast<double>(r[2]) - r[1]) * 1e-3; }, &a, &b, &c);
    std::printf("diag   sched dur  min %8.2f med %8.2f max %8.2f\n", a, b, c);
    stat([&](const unsigned long long* r) { return r[6] ? (static_cast<double>(r[3]) - r[2]) * 1e-3 : 0.0 / 0.0; }, &a, &b, &c);
    std::printf("diag   fill dur   min %8.2f med %8.2f max %8.2f\n", a, b, c);
    stat([&](const unsigned long long* r) { return r[6] ? (static_cast<double>(r[4]) - r[2]) * 1e-3 : 0.0 / 0.0; }, &a, &b, &c);
    std::printf("diag   item1 dur  min %8.2f med %8.2f max %8.2f\n", a, b, c);
    stat([&](const unsigned long long* r) { return r[6] > 1 ? (static_cast<double>(r[5]) - r[4]) * 1e-3 / (r[6] - 1) : 0.0 / 0.0; }, &a, &b, &c);
    std::printf("diag   later/item min %8.2f med %8.2f max %8.2f\n", a, b, c);
    stat([&](const unsigned long long* r) { return static_cast<double>(r[6]); }, &a, &b, &c);
    std::printf("diag   items/blk  min %8.0f med %8.0f max %8.0f\n", a, b, c);
    stat([&](const unsigned long long* r) { return rel(r[5]); }, &a, &b, &c);
    std::printf("diag   exit       min %8.2f med %8.2f max %8.2f\n", a, b, c);
    prev_exit_max = c;
    {
      static unsigned long long kt[2][kMaxBlocks][2][8][kTrace];
      if (cudaMemcpyFromSymbol(kt, g_kt, sizeof(kt)) == cudaSuccess) {
        for (int it = 0; it < 2; ++it) {
          std::printf("diag   warp end item%d (from item start; median over blocks, ktiles):", it);
          for (int w = 0; w < 8; ++w) {
            std::vector<double> v;
            int n = 0;
            for (int b = 0; b < grid; ++b) {
              if (kt[s][b][it][w][0] == 0) continue;
              int last = 0;
              for (int j = 1; j < kTrace; ++j) if (kt[s][b][it][w][j] != 0) last = j;
              if (last == 0) continue;
              n = last;
              v.push_back((static_cast<double>(kt[s][b][it][w][last]) - kt[s][b][it][w][0]) * 1e-3);
            }
            if (v.empty()) { std::printf(" w%d -", w); continue; }
            std::sort(v.begin(), v.end());
            std::printf(" w%d %5.1f(%d)", w, v[v.size() / 2], n);
          }
          std::printf("\n");
        }
      }
    }
  }
}
}  // namespace qmoe::dev::diag

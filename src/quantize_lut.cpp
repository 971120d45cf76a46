// Non-uniform (LUT) formats: each row's table fitted by weighted Lloyd (1-D k-means), the codes
// by nearest table value (docs/formats.md §1). In one dimension a cluster is an interval of the
// sorted values, so an iteration is a binary search per boundary over prefix sums, and the
// quantile start puts every centroid where the data are; SqueezeLLM's per-channel non-uniform
// quantizer fits its tables the same way (with sensitivity weights, as GPTQ's diag(H) here).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "qmoe/numeric.hpp"
#include "src/quantize_internal.hpp"

namespace qmoe::quant {

namespace {

// Lloyd stops when no centroid moves, or after this many iterations (Gaussian rows of 4096
// values settle in ~20-60; the cap only bounds pathological inputs).
constexpr int kMaxLloydIterations = 200;

}  // namespace

void TableScratch::reserve(int64_t len) {
  sorted.resize(static_cast<size_t>(len));
  cum_w.resize(static_cast<size_t>(len + 1));
  cum_wx.resize(static_cast<size_t>(len + 1));
}

bool fit_row_table(const double* x, const double* weight, int64_t len, int bits,
                   TableScratch* scratch, RowTable* table) {
  const int entries = 1 << bits;
  std::pair<double, double>* v = scratch->sorted.data();  // (value, weight), ascending value
  for (int64_t i = 0; i < len; ++i) v[i] = {x[i], weight == nullptr ? 1.0 : weight[i]};
  std::sort(v, v + len);
  double* cw = scratch->cum_w.data();  // cw[i] = sum of the first i weights
  double* cwx = scratch->cum_wx.data();
  cw[0] = cwx[0] = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    cw[i + 1] = cw[i] + v[i].second;
    cwx[i + 1] = cwx[i] + v[i].second * v[i].first;
  }
  const double total = cw[len];
  // Without weight anywhere every value counts alike.
  if (!(total > 0.0)) {
    for (int64_t i = 0; i <= len; ++i) cw[i] = static_cast<double>(i);
    for (int64_t i = 0; i < len; ++i) cwx[i + 1] = cwx[i] + v[i].first;
  }
  // Start: the weighted quantiles (c + 1/2) / entries.
  double c[RowTable::kMaxEntries];
  for (int e = 0; e < entries; ++e) {
    const double target = (e + 0.5) / entries * cw[len];
    const int64_t at = std::lower_bound(cw + 1, cw + len + 1, target) - (cw + 1);
    c[e] = v[std::min(at, len - 1)].first;
  }
  // Lloyd: cluster e holds the values in (mid[e-1], mid[e]] (ties to the lower entry, as
  // nearest_entry breaks them); an empty cluster keeps its centroid.
  for (int it = 0; it < kMaxLloydIterations; ++it) {
    bool moved = false;
    int64_t begin = 0;
    for (int e = 0; e < entries; ++e) {
      int64_t end = len;
      if (e + 1 < entries) {
        const double mid = 0.5 * (c[e] + c[e + 1]);
        end = std::upper_bound(
                  v + begin, v + len, mid,
                  [](double m, const std::pair<double, double>& p) { return m < p.first; }) -
              v;
      }
      const double w_sum = cw[end] - cw[begin];
      if (end > begin && w_sum > 0.0) {
        const double centroid = (cwx[end] - cwx[begin]) / w_sum;
        if (centroid != c[e]) {
          c[e] = centroid;
          moved = true;
        }
      }
      begin = end;
    }
    if (!moved) break;
    std::sort(c, c + entries);  // rounding can swap two nearly equal centroids
  }
  // The stored table is fp16: round, then check it stayed finite. Rounding is monotonic, so
  // the table stays sorted and the midpoints below stay ordered.
  table->entries = entries;
  for (int e = 0; e < entries; ++e) {
    table->bits[e] = float_to_fp16(static_cast<float>(c[e]));
    if ((table->bits[e] & 0x7c00u) == 0x7c00u) return false;
    table->value[e] = fp16_to_float(table->bits[e]);
  }
  for (int e = 0; e + 1 < entries; ++e)
    table->mid[e] = 0.5 * (static_cast<double>(table->value[e]) + table->value[e + 1]);
  return true;
}

int nearest_entry(double w, const RowTable& table) {
  // Entries below w's slot: midpoints strictly below w (a tie goes to the lower entry), then
  // the first of equal entries.
  int e =
      static_cast<int>(std::lower_bound(table.mid, table.mid + table.entries - 1, w) - table.mid);
  while (e > 0 && table.value[e - 1] == table.value[e]) --e;
  return e;
}

Status quantize_lut_rtn(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                        LogicalMatrix* out) {
  LogicalMatrix m = LogicalMatrix::sized(f, n, k);
  const int entries = f.lut_entries();
  std::atomic<int64_t> overflow_row{-1};
  // Scratch per thread, allocated here: a throw inside the region would terminate.
  std::vector<TableScratch> scratch(static_cast<size_t>(omp_get_max_threads()));
  std::vector<double> rows(static_cast<size_t>(omp_get_max_threads() * k));
  for (TableScratch& s : scratch) s.reserve(k);
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    double* x = rows.data() + t * k;
#pragma omp for schedule(dynamic, 16)
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < k; ++i) x[i] = w[r * k + i];
      RowTable table;
      if (!fit_row_table(x, nullptr, k, f.bits, &scratch[static_cast<size_t>(t)], &table)) {
        keep_first(&overflow_row, r);
        continue;
      }
      std::copy(table.bits, table.bits + entries, m.scales.begin() + r * entries);
      for (int64_t i = 0; i < k; ++i)
        m.codes[static_cast<size_t>(r * k + i)] = static_cast<uint16_t>(nearest_entry(x[i], table));
    }
  }
  if (overflow_row.load() >= 0)
    return out_of_range("quantize: the table of row " + std::to_string(overflow_row.load()) +
                        " overflows fp16 (weights too large for " + f.to_string() + ")");
  *out = std::move(m);
  return Status::ok();
}

}  // namespace qmoe::quant

// Generates the fixed codebook of the vector format vq2 (docs/formats.md §1): 16 magnitude
// vectors in the positive orthant of R^4, which with 4 sign bits give 256 codewords, fitted by
// Lloyd (k-means) to |x| for x ~ N(0, I_4). The committed table (docs/formats/vq2_codebook.inc)
// is normative; this program records how it was made and compares it with an unconstrained
// 256-word codebook on the same samples. It is not part of the build:
//
//   g++ -O3 -fopenmp -std=c++17 -Iinclude scripts/gen_vq_codebook.cpp -o /tmp/gen_vq_codebook
//   /tmp/gen_vq_codebook > docs/formats/vq2_codebook.inc   # the report goes to stderr
//
// Samples come from a fixed 64-bit generator (splitmix64) through Box-Muller, so the run is
// deterministic up to the platform's log/cos.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "qmoe/numeric.hpp"

namespace {

using Vec = std::array<double, 4>;

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double uniform(uint64_t* state) {  // (0, 1)
  return (static_cast<double>(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53;
}

std::vector<Vec> gaussian_samples(int64_t count, uint64_t seed) {
  std::vector<Vec> x(static_cast<size_t>(count));
  uint64_t state = seed;
  for (Vec& v : x) {
    for (int d = 0; d < 4; d += 2) {
      const double r = std::sqrt(-2.0 * std::log(uniform(&state)));
      const double a = 2.0 * M_PI * uniform(&state);
      v[d] = r * std::cos(a);
      v[d + 1] = r * std::sin(a);
    }
  }
  return x;
}

double dist2(const Vec& a, const Vec& b) {
  double s = 0;
  for (int d = 0; d < 4; ++d) s += (a[d] - b[d]) * (a[d] - b[d]);
  return s;
}

int nearest(const Vec& x, const std::vector<Vec>& c) {
  int best = 0;
  double best_d = dist2(x, c[0]);
  for (int i = 1; i < static_cast<int>(c.size()); ++i) {
    const double d = dist2(x, c[i]);
    if (d < best_d) best_d = d, best = i;
  }
  return best;
}

/// Lloyd from the first `k` samples (they are random already); returns the mean squared error
/// per dimension of the last assignment.
double lloyd(const std::vector<Vec>& x, int k, int iterations, std::vector<Vec>* c) {
  c->assign(x.begin(), x.begin() + k);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<int> assign(static_cast<size_t>(n), -1);
  double mse = 0;
  for (int it = 0; it < iterations; ++it) {
    int64_t changed = 0;
    double err = 0;
#pragma omp parallel for reduction(+ : changed, err) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const int a = nearest(x[i], *c);
      changed += a != assign[i];
      assign[i] = a;
      err += dist2(x[i], (*c)[a]);
    }
    mse = err / (4.0 * static_cast<double>(n));
    std::vector<Vec> sum(static_cast<size_t>(k), Vec{});
    std::vector<int64_t> count(static_cast<size_t>(k), 0);
    for (int64_t i = 0; i < n; ++i) {
      for (int d = 0; d < 4; ++d) sum[assign[i]][d] += x[i][d];
      ++count[assign[i]];
    }
    for (int j = 0; j < k; ++j)
      if (count[j] > 0)
        for (int d = 0; d < 4; ++d) (*c)[j][d] = sum[j][d] / static_cast<double>(count[j]);
    if (changed == 0) break;
  }
  return mse;
}

}  // namespace

int main() {
  const std::vector<Vec> x = gaussian_samples(int64_t{1} << 20, 0x7651u);
  std::vector<Vec> folded = x;
  for (Vec& v : folded)
    for (double& e : v) e = std::fabs(e);

  std::vector<Vec> magnitudes, full;
  const double mse_sym = lloyd(folded, 16, 500, &magnitudes);
  const double mse_full = lloyd(x, 256, 200, &full);
  // Canonical order: by squared length, then coordinates.
  std::sort(magnitudes.begin(), magnitudes.end(), [](const Vec& a, const Vec& b) {
    const double la = dist2(a, Vec{}), lb = dist2(b, Vec{});
    return la != lb ? la < lb : a < b;
  });
  // The table as stored: fp16, and its error on the samples at those values.
  std::vector<Vec> stored = magnitudes;
  for (Vec& v : stored)
    for (double& e : v) e = qmoe::fp16_to_float(qmoe::float_to_fp16(static_cast<float>(e)));
  double err = 0;
  for (const Vec& v : folded) err += dist2(v, stored[nearest(v, stored)]);
  std::fprintf(stderr,
               "mean squared error per dimension on 2^20 N(0,1)^4 samples:\n"
               "  16 magnitudes x 16 sign patterns: %.5f (fp16 table %.5f)\n"
               "  256 free codewords:               %.5f\n"
               "  scalar Lloyd-Max 2-bit:           0.11750\n",
               mse_sym, err / (4.0 * static_cast<double>(folded.size())), mse_full);
  std::printf(
      "// vq2 magnitude table (docs/formats.md §1): 16 entries x 4 dims, fp16 bits.\n"
      "// Made by scripts/gen_vq_codebook.cpp; this table, not the program, is normative.\n");
  for (const Vec& v : magnitudes) {
    for (int d = 0; d < 4; ++d)
      std::printf("0x%04X,%s", qmoe::float_to_fp16(static_cast<float>(v[d])), d == 3 ? "\n" : " ");
  }
  return 0;
}

// Generates the fixed codebooks of the vector formats vq<r> (docs/formats.md §1): 2^(4r - 4)
// magnitude vectors in the positive orthant of R^4, which with 4 sign bits give 2^(4r) codewords,
// fitted by Lloyd (k-means) to |x| for x ~ N(0, I_4). The committed tables
// (docs/formats/vq*_codebook.inc) are normative; this program records how it was made (and can
// compare it with an unconstrained codebook of as many words on the same samples). It is not part
// of the build:
//
//   g++ -O3 -fopenmp -std=c++17 -Iinclude scripts/gen_vq_codebook.cpp -o /tmp/gen_vq_codebook
//   /tmp/gen_vq_codebook 16 > docs/formats/vq2_codebook.inc   # the report goes to stderr
//   (4, 64, 256 magnitudes: vq1.5, vq2.5, vq3; a second argument "free" also fits 16 times as
//   many unconstrained codewords for comparison)
//
// Samples come from a fixed 64-bit generator (splitmix64) through Box-Muller, so the run is
// deterministic up to the platform's log/cos.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
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

/// Lloyd from samples [start, start + k) (they are random already); returns the mean squared
/// error per dimension of the last assignment.
double lloyd(const std::vector<Vec>& x, int k, int iterations, std::vector<Vec>* c,
             int64_t start = 0) {
  c->assign(x.begin() + start, x.begin() + start + k);
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

int main(int argc, char** argv) {
  // argv[1]: magnitude vectors (4, 16, 64, 256 for vq1.5, vq2, vq2.5, vq3); argv[2] == "free":
  // also fit 16 * that many unconstrained codewords, for comparison.
  const int count = argc > 1 ? std::atoi(argv[1]) : 16;
  const bool compare = argc > 2 && std::string(argv[2]) == "free";
  const std::vector<Vec> x = gaussian_samples(int64_t{1} << 20, 0x7651u);
  std::vector<Vec> folded = x;
  for (Vec& v : folded)
    for (double& e : v) e = std::fabs(e);

  std::vector<Vec> magnitudes, full;
  // Lloyd finds local optima: the best of several starts (fewer for the larger tables).
  double mse_sym = 0;
  const int starts = count <= 16 ? 16 : count <= 64 ? 4 : 1;
  for (int start = 0; start < starts; ++start) {
    std::vector<Vec> trial;
    const double e = lloyd(folded, count, 300, &trial, int64_t{start} * count);
    if (start == 0 || e < mse_sym) mse_sym = e, magnitudes = trial;
  }
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
               "  %d magnitudes x 16 sign patterns: %.5f (fp16 table %.5f)\n",
               count, mse_sym, err / (4.0 * static_cast<double>(folded.size())));
  if (compare)
    std::fprintf(stderr, "  %d free codewords: %.5f\n", 16 * count,
                 lloyd(x, 16 * count, 200, &full));
  std::printf(
      "// vq%s magnitude table (docs/formats.md §1): %d entries x 4 dims, fp16 bits.\n"
      "// Made by scripts/gen_vq_codebook.cpp; this table, not the program, is normative.\n",
      count == 4    ? "1.5"
      : count == 16 ? "2"
      : count == 64 ? "2.5"
                    : "3",
      count);
  for (const Vec& v : magnitudes) {
    for (int d = 0; d < 4; ++d)
      std::printf("0x%04X,%s", qmoe::float_to_fp16(static_cast<float>(v[d])), d == 3 ? "\n" : " ");
  }
  return 0;
}

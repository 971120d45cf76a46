// Session 37 (notes/cpu_only_formats.md, Next item 2): a CPU simulation, not built by CMake.
// g++ -O2 -std=c++17 -fopenmp -I. -Iinclude -Itests/cpu THIS_FILE build/libqmoe.a -lgtest -lpthread
// Numerics of a rotated-x tcq GEMV: y = sum_b s_b sum_j u_j xt_j, xt = H D x (per 128 block),
// with u and xt rounded to the activation type, fp32 accumulation, against exact W x.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "qmoe/numeric.hpp"
#include "qmoe/quantize.hpp"
#include "src/quantize_internal.hpp"
#include "test_util.hpp"
using namespace qmoe;
using namespace qmoe::test;
static void hadamard(double* v) {
  for (int h = 1; h < 128; h *= 2)
    for (int i = 0; i < 128; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        double a = v[j], b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
}
int main() {
  const int64_t n = 256, k = 2048, T = 8;
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.f, 0.02f);
  std::uniform_real_distribution<float> u01(0.f, 1.f);
  std::vector<float> w(n * k);
  for (auto& v : w) {
    v = g(rng);
    if (u01(rng) < 0.002f) v *= 8;
  }
  for (const char* fmt : {"tcq2", "tcq3", "tcq4"}) {
    LogicalMatrix m;
    if (!quantize_logical(w.data(), n, k, parse_format(fmt), QuantizeOptions{}, &m).is_ok())
      return 1;
    std::vector<float> wd = decoded(m);  // exact weights (float32)
    // u per block: H (sign * w / s) / 128, rounded.
    std::vector<double> U(n * k);
    int64_t over256 = 0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t b = 0; b < k / 128; ++b) {
        const double s = fp16_to_float(m.scales[r * (k / 128) + b]);
        double v[128];
        for (int t = 0; t < 128; ++t) v[t] = quant::trellis_sign(t) * wd[r * k + b * 128 + t] / s;
        hadamard(v);
        for (int t = 0; t < 128; ++t) {
          U[r * k + b * 128 + t] = std::nearbyint(v[t] / 128);
          over256 += std::fabs(U[r * k + b * 128 + t]) > 256;
        }
      }
    for (int act = 0; act < 3;
         ++act) {  // 0 bf16, 1 fp16, 2 bf16 x with an fp16 product (x~/128 and u in fp16)
      auto rnd_act = [&](double v) {
        float f = static_cast<float>(v);
        return act != 1 ? bf16_to_float(float_to_bf16(f)) : fp16_to_float(float_to_fp16(f));
      };
      auto rnd_mma = [&](double v) {
        float f = static_cast<float>(v);
        return act == 0 ? bf16_to_float(float_to_bf16(f)) : fp16_to_float(float_to_fp16(f));
      };
      const double xs = act == 2 ? 1.0 / 128 : 1.0;
      double num_rot = 0, num_ref = 0, den = 0;
      for (int tok = 0; tok < T; ++tok) {
        std::vector<double> x(k);
        for (auto& v : x) {
          v = rnd_act(g(rng) * 50);
          if (u01(rng) < 0.01f) v = rnd_act(v * 20);
        }
        std::vector<double> xt(k);
        for (int64_t b = 0; b < k / 128; ++b) {
          double v[128];
          for (int t = 0; t < 128; ++t) v[t] = quant::trellis_sign(t) * x[b * 128 + t];
          hadamard(v);
          for (int t = 0; t < 128; ++t)
            xt[b * 128 + t] = rnd_mma(static_cast<float>(v[t] * xs));  // fp32 then Act
        }
        for (int64_t r = 0; r < n; ++r) {
          double exact = 0, ref = 0;
          float rot = 0;
          for (int64_t c = 0; c < k; ++c) {
            exact += double(wd[r * k + c]) * x[c];
            ref += rnd_act(wd[r * k + c]) * x[c];
          }
          for (int64_t b = 0; b < k / 128; ++b) {
            float part = 0;
            for (int t = 0; t < 128; ++t)
              part += static_cast<float>(rnd_mma(U[r * k + b * 128 + t]) * xt[b * 128 + t]);
            rot += part * fp16_to_float(m.scales[r * (k / 128) + b]) / xs;
          }
          num_rot += (rot - exact) * (rot - exact);
          num_ref += (ref - exact) * (ref - exact);
          den += exact * exact;
        }
      }
      printf("%s %s: |u|>256 %.1f%%  NMSE rotated path %.2e, formed-weights path %.2e\n", fmt,
             act == 0   ? "bf16"
             : act == 1 ? "fp16"
                        : "bf16 x, fp16 mma",
             100.0 * over256 / (n * k), num_rot / den, num_ref / den);
    }
  }
}

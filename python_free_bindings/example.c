/* example.c — qmoe from plain C: quantize two expert matrices, check the dequantization
 * error, build a 2-expert bank and run the CPU reference grouped GEMM, checking it against
 * a product computed here from the dequantized (bf16) weights. Exits nonzero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmoe.h"

enum { N = 64, K = 256, M = 5, E = 2 };

/* int4 with one fp16 scale per 128 weights: uniform [-1, 1] data loses about 0.5% of its
 * energy (step^2/12 over 1/3), so 1% is a safe bound that still catches a broken decoder. */
static const double kMaxInt4Nmse = 1e-2;
/* The reference accumulates in float64 in the same order as below; only the rounding of the
 * last bits may differ between compilers. */
static const double kMaxGemmRelError = 1e-12;

static int check(qmoe_status_t status, const char* what) {
  if (status == QMOE_STATUS_OK) return 1;
  fprintf(stderr, "%s failed: %s (%s)\n", what, qmoe_status_name(status), qmoe_last_error());
  return 0;
}

static DLTensor cpu_tensor(void* data, int64_t* shape, int ndim, uint8_t code, uint8_t bits) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = ndim;
  t.dtype.code = code;
  t.dtype.bits = bits;
  t.dtype.lanes = 1;
  t.shape = shape;
  return t; /* strides NULL: compact row-major */
}

/* Uniform in [-1, 1) from a fixed-seed LCG: the same matrix on every run. */
static float next_uniform(uint32_t* state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)(*state >> 8) / 8388608.0f - 1.0f;
}

/* bf16 is the high half of a float32; the inputs below are exact in bf16. */
static uint16_t bf16_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (uint16_t)(u >> 16);
}
static double bf16_value(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

int main(void) {
  static float w[E][N * K], back[N * K];
  static uint16_t w_bf16[E][N * K], x[M * K];
  static double y[M * N];
  const char* formats[E] = {"int4:g128", "int8:g64"};
  const int32_t offsets[E + 1] = {0, 2, M}; /* expert 0: rows 0-1, expert 1: rows 2-4 */
  int64_t w_shape[2] = {N, K}, x_shape[2] = {M, K}, y_shape[2] = {M, N};
  qmoe_packed_t* experts[E] = {NULL, NULL};
  qmoe_bank_t* bank = NULL;
  uint32_t seed = 12345u;
  int ok = 1, e;
  double bits = 0.0;

  printf("qmoe %s (C ABI %d)\n", qmoe_version(), qmoe_abi_version());
  if (qmoe_abi_version() != QMOE_ABI_VERSION) {
    fprintf(stderr, "header ABI %d, library ABI %d\n", QMOE_ABI_VERSION, qmoe_abi_version());
    return 1;
  }
  for (e = 0; e < E; ++e) {
    int i;
    for (i = 0; i < N * K; ++i) w[e][i] = next_uniform(&seed);
  }

  for (e = 0; e < E && ok; ++e) {
    DLTensor wt = cpu_tensor(w[e], w_shape, 2, kDLFloat, 32);
    DLTensor exact = cpu_tensor(back, w_shape, 2, kDLFloat, 32);
    DLTensor rounded = cpu_tensor(w_bf16[e], w_shape, 2, kDLBfloat, 16);
    int64_t bytes = 0;
    double err = 0.0, energy = 0.0;
    int i;
    ok =
        check(qmoe_format_bits_per_weight(formats[e], K, &bits), "qmoe_format_bits_per_weight") &&
        check(qmoe_quantize(&wt, formats[e], QMOE_QUANT_RTN, NULL, &experts[e]), "qmoe_quantize") &&
        check(qmoe_packed_bytes(experts[e], &bytes), "qmoe_packed_bytes") &&
        check(qmoe_dequantize(experts[e], &exact), "qmoe_dequantize (float32)") &&
        check(qmoe_dequantize(experts[e], &rounded), "qmoe_dequantize (bf16)");
    if (!ok) break;
    for (i = 0; i < N * K; ++i) {
      const double d = (double)w[e][i] - back[i];
      err += d * d;
      energy += (double)w[e][i] * w[e][i];
    }
    printf("expert %d: %s, %.4f bits/weight, %lld packed bytes, normalised MSE %.3e\n", e,
           formats[e], bits, (long long)bytes, err / energy);
    if (e == 0 && !(err / energy < kMaxInt4Nmse)) {
      fprintf(stderr, "int4:g128 normalised MSE %.3e exceeds %.0e\n", err / energy, kMaxInt4Nmse);
      ok = 0;
    }
  }

  /* The bank copies the experts, so the handles can go right away. */
  if (ok) ok = check(qmoe_bank_create(experts, E, &bank), "qmoe_bank_create");
  for (e = 0; e < E; ++e) qmoe_packed_destroy(experts[e]);

  if (ok) {
    DLTensor xt = cpu_tensor(x, x_shape, 2, kDLBfloat, 16);
    DLTensor yt = cpu_tensor(y, y_shape, 2, kDLFloat, 64);
    double worst = 0.0;
    int i, c, kk;
    for (i = 0; i < M * K; ++i) x[i] = bf16_bits((float)((i * 7) % 17 - 8) / 8.0f);
    ok = check(qmoe_ref_grouped_gemm(bank, &xt, offsets, &yt), "qmoe_ref_grouped_gemm");
    for (i = 0; ok && i < M; ++i) {
      const int expert = i < offsets[1] ? 0 : 1;
      for (c = 0; c < N; ++c) {
        double expect = 0.0, scale = 0.0, rel;
        for (kk = 0; kk < K; ++kk) {
          const double p = bf16_value(x[i * K + kk]) * bf16_value(w_bf16[expert][c * K + kk]);
          expect += p;
          scale += fabs(p);
        }
        rel = fabs(y[i * N + c] - expect) / (scale > 0.0 ? scale : 1.0);
        if (rel > worst) worst = rel;
      }
    }
    printf(
        "grouped GEMM [%d x %d] x 2 experts [%d x %d]: y[0][0] = %.6f, y[%d][%d] = %.6f, "
        "max relative error %.3e\n",
        M, K, N, K, y[0], M - 1, N - 1, y[M * N - 1], worst);
    if (ok && !(worst <= kMaxGemmRelError)) {
      fprintf(stderr, "grouped GEMM error %.3e exceeds %.0e\n", worst, kMaxGemmRelError);
      ok = 0;
    }
  }
  qmoe_bank_destroy(bank);
  printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

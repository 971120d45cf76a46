// A downstream project: parse a format, quantize a small matrix, decode it on the CPU.
#include <cmath>
#include <cstdio>
#include <qmoe/cpu_ref.hpp>
#include <qmoe/gpu.hpp>
#include <qmoe/quantize.hpp>
#include <vector>

int main() {
  qmoe::FormatSpec f;
  if (!qmoe::FormatSpec::parse("int4:g128", &f).is_ok()) return 1;
  std::vector<float> w(32 * 256);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i));
  qmoe::PackedMatrix m;
  qmoe::Status st = qmoe::quantize(w.data(), 32, 256, f, qmoe::QuantizeOptions{}, &m);
  if (!st.is_ok()) return 2;
  std::vector<float> back;
  if (!qmoe::ref::dequantize(m, &back).is_ok()) return 3;
  double err = 0;
  for (size_t i = 0; i < w.size(); ++i) err = std::fmax(err, std::fabs(w[i] - back[i]));
  std::printf("consumer: %s max|err| = %g gpu=%d\n", f.to_string().c_str(), err,
              qmoe::gpu_available() ? 1 : 0);
  return err < 0.2 ? 0 : 4;
}

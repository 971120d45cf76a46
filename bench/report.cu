// JSON / CSV writers and the stdout table of the benchmark results.
#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>

#include "bench/report.hpp"

namespace qmoe::bench {

namespace {

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

Status open_for_write(const std::string& path, File* out) {
  File f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) return invalid_argument("cannot open '" + path + "' for writing");
  *out = std::move(f);
  return Status::ok();
}

Status finish(const std::string& path, File f) {
  const bool write_failed = std::ferror(f.get()) != 0;
  const bool close_failed = std::fclose(f.release()) != 0;
  if (write_failed || close_failed) return {StatusCode::kInternal, "writing '" + path + "' failed"};
  return Status::ok();
}

// Names and format strings are ASCII from our own tables; the device name comes from the
// driver, so escape what JSON requires anyway.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out + "\"";
}

}  // namespace

std::string device_slug(const std::string& name) {
  std::string slug;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      slug += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!slug.empty() && slug.back() != '-')
      slug += '-';
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "unknown-device" : slug;
}

std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &utc);
  return buf;
}

Status write_json(const std::string& path, const RunInfo& info,
                  const std::vector<ResultRow>& rows) {
  File f(nullptr, &std::fclose);
  QMOE_RETURN_IF_ERROR(open_for_write(path, &f));
  std::FILE* o = f.get();
  std::fprintf(o, "{\n  \"device\": %s,\n  \"date\": %s,\n  \"commit\": %s,\n",
               json_string(info.device).c_str(), json_string(info.date).c_str(),
               json_string(info.commit).c_str());
  std::fprintf(o,
               "  \"copy_GBps\": %.1f,\n  \"read_GBps\": %.1f,\n  \"bf16_TFLOPs\": %.1f,\n"
               "  \"rows\": [",
               info.copy_gb_per_s, info.read_gb_per_s, info.bf16_tflop_per_s);
  for (size_t i = 0; i < rows.size(); ++i) {
    const ResultRow& r = rows[i];
    char baseline[32] = "null", sm_mhz[16] = "null";
    if (r.has_baseline()) std::snprintf(baseline, sizeof baseline, "%.3f", r.baseline_us);
    if (r.sm_mhz >= 0) std::snprintf(sm_mhz, sizeof sm_mhz, "%d", r.sm_mhz);
    std::fprintf(o,
                 "%s\n    {\"op\": %s, \"shape\": %s, \"tokens\": %lld, \"format\": %s, "
                 "\"kernel\": %s, \"time_us\": %.3f, \"floor_us\": %.3f, \"baseline_us\": %s, "
                 "\"bytes\": %lld, \"flops\": %lld, \"sm_mhz\": %s, \"clock_reasons\": %llu}",
                 i == 0 ? "" : ",", json_string(r.op).c_str(), json_string(r.shape).c_str(),
                 static_cast<long long>(r.tokens), json_string(r.format).c_str(),
                 json_string(r.kernel).c_str(), r.time_us, r.floor_us, baseline,
                 static_cast<long long>(r.bytes), static_cast<long long>(r.flops), sm_mhz,
                 static_cast<unsigned long long>(r.clock_reasons));
  }
  std::fprintf(o, "\n  ]\n}\n");
  return finish(path, std::move(f));
}

Status write_csv(const std::string& path, const std::vector<ResultRow>& rows) {
  File f(nullptr, &std::fclose);
  QMOE_RETURN_IF_ERROR(open_for_write(path, &f));
  std::FILE* o = f.get();
  std::fprintf(o,
               "op,shape,tokens,format,kernel,time_us,floor_us,baseline_us,bytes,flops,"
               "pct_of_floor,speedup_vs_bf16,sm_mhz,clock_reasons\n");
  for (const ResultRow& r : rows) {
    std::fprintf(o, "%s,%s,%lld,%s,%s,%.3f,%.3f,", r.op.c_str(), r.shape.c_str(),
                 static_cast<long long>(r.tokens), r.format.c_str(), r.kernel.c_str(), r.time_us,
                 r.floor_us);
    if (r.has_baseline()) std::fprintf(o, "%.3f", r.baseline_us);
    std::fprintf(o, ",%lld,%lld,%.2f,", static_cast<long long>(r.bytes),
                 static_cast<long long>(r.flops), r.pct_of_floor());
    if (r.has_baseline()) std::fprintf(o, "%.3f", r.speedup_vs_bf16());
    std::fprintf(o, ",");
    if (r.sm_mhz >= 0) std::fprintf(o, "%d", r.sm_mhz);
    std::fprintf(o, ",%llu\n", static_cast<unsigned long long>(r.clock_reasons));
  }
  return finish(path, std::move(f));
}

void print_table(const std::vector<ResultRow>& rows) {
  std::printf("\n%-17s %6s %-10s %10s %10s %7s %11s %8s\n", "shape", "T", "format", "time_us",
              "floor_us", "%floor", "baseline_us", "speedup");
  for (const ResultRow& r : rows) {
    std::printf("%-17s %6lld %-10s %10.1f %10.1f %6.1f%%", r.shape.c_str(),
                static_cast<long long>(r.tokens), r.format.c_str(), r.time_us, r.floor_us,
                r.pct_of_floor());
    if (r.has_baseline())
      std::printf(" %11.1f %7.2fx\n", r.baseline_us, r.speedup_vs_bf16());
    else
      std::printf(" %11s %8s\n", "-", "-");
  }
}

}  // namespace qmoe::bench

// qmoe/status.hpp — errors as values. No exception ever escapes the qmoe API.
#pragma once
#include <string>
#include <utility>

namespace qmoe {

/// Status codes. `kInvalidArgument` means "this problem is malformed" (bad shape, null
/// pointer, NaN weight); `kUnsupported` means "well-formed, but no kernel/format exists for
/// it here" (e.g. no CUDA device, an architecture without a kernel). The split follows
/// CUTLASS's can_implement: a caller can tell its own bug from a missing feature.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,
  kUnsupported = 2,
  kOutOfRange = 3,  ///< value not representable (e.g. weight beyond fp16 range)
  kCudaError = 4,   ///< a CUDA runtime call failed; message holds cudaGetErrorString
  kInternal = 5,
};

/// A status: code + human-readable message. Cheap when ok (empty string).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "ok" or "<code name>: <message>".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status unsupported(std::string m) {
  return {StatusCode::kUnsupported, std::move(m)};
}
inline Status out_of_range(std::string m) {
  return {StatusCode::kOutOfRange, std::move(m)};
}

/// Human-readable name of a code ("invalid argument", ...), as Status::to_string prints it.
const char* status_code_name(StatusCode code);

}  // namespace qmoe

/// Propagate a non-ok Status from the current function.
#define QMOE_RETURN_IF_ERROR(expr)                  \
  do {                                              \
    ::qmoe::Status qmoe_status_ = (expr);           \
    if (!qmoe_status_.is_ok()) return qmoe_status_; \
  } while (0)

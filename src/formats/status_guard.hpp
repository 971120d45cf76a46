// The boundary between the library's C++ internals (std::vector, std::string: they throw)
// and its API, where errors are Status values and no exception escapes (status.hpp).
#pragma once
#include <exception>
#include <initializer_list>
#include <new>
#include <string>
#include <utility>

#include "qmoe/status.hpp"

namespace qmoe::detail {

/// Status `code` whose message is `parts` joined. When even that string cannot be allocated,
/// the code alone: an empty message allocates nothing.
inline Status exception_status(StatusCode code, std::initializer_list<const char*> parts) noexcept {
  try {
    std::string message;
    for (const char* p : parts) message += p;
    return Status(code, std::move(message));
  } catch (...) {
    return Status(code, std::string());
  }
}

/// Runs body(), which returns a Status, for the public entry point `where`: std::bad_alloc
/// becomes kOutOfRange "out of memory: ...", any other exception kInternal with its what().
/// Exceptions thrown inside an OpenMP parallel region never get here (they terminate), so
/// bodies allocate their per-thread buffers before such regions.
template <typename Body>
Status run_catching(const char* where, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return exception_status(StatusCode::kOutOfRange,
                            {"out of memory: ", where, " could not allocate its working memory"});
  } catch (const std::exception& e) {
    return exception_status(StatusCode::kInternal, {where, ": ", e.what()});
  } catch (...) {
    return exception_status(StatusCode::kInternal, {where, ": unknown exception"});
  }
}

}  // namespace qmoe::detail

// cpu_ref/no_throw.hpp — the wall at every public cpu_ref entry point. status.hpp promises
// that no exception crosses the qmoe API, but every std::vector the reference allocates can
// throw std::bad_alloc on large shapes.
#pragma once
#include <exception>
#include <new>
#include <string>

#include "qmoe/status.hpp"

namespace qmoe::ref::detail {

/// Runs body() (a callable returning Status) and turns any exception it throws into a
/// Status: std::bad_alloc -> kOutOfRange "out of memory", anything else -> kInternal.
template <typename Body>
Status no_throw(const char* entry, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc& e) {
    return out_of_range(std::string(entry) + ": out of memory (" + e.what() + ")");
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string(entry) + ": " + e.what());
  } catch (...) {
    return Status(StatusCode::kInternal, std::string(entry) + ": unknown exception");
  }
}

}  // namespace qmoe::ref::detail

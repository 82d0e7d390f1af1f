// The emulator's clock: system time plus an offset that the control endpoint can advance, so
// replay retention (24 h / 72 h) and session expiry can be tested without waiting.
#pragma once

#include <chrono>

namespace sfstream::emulator {

/// System time shifted by an offset that only grows. Thread-compatible (the emulator uses it
/// from its single executor; tests that touch it from another thread must synchronise).
class clock {
 public:
  using time_point = std::chrono::system_clock::time_point;

  /// System time plus every advance() so far.
  time_point now() const;
  /// Moves the emulator's time forward by `by` (negative values are ignored: time never goes
  /// back, so stored events never become younger).
  void advance(std::chrono::milliseconds by);
  /// Total advance applied so far.
  std::chrono::milliseconds offset() const noexcept { return offset_; }

 private:
  std::chrono::milliseconds offset_{0};
};

}  // namespace sfstream::emulator

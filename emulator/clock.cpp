#include "emulator/clock.hpp"

namespace sfstream::emulator {

clock::time_point clock::now() const {
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::system_clock::now() + offset_);
}

void clock::advance(std::chrono::milliseconds by) {
  if (by.count() > 0) {
    offset_ += by;
  }
}

}  // namespace sfstream::emulator

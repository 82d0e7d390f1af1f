// A value or an error_info: what bayeux/'s fallible pure functions return.
#pragma once

#include <utility>
#include <variant>

#include "sfstream/error.hpp"

namespace sfstream::bayeux {

/// Either a `T` or the error_info that explains why there is none. Never throws on access
/// misuse checks beyond what std::get does; callers test has_value() first.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(error_info error) : v_(std::move(error)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error_info& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, error_info> v_;
};

}  // namespace sfstream::bayeux

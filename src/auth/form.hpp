// application/x-www-form-urlencoded encoding for OAuth token requests. Pure.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sfstream::auth {

/// Percent-encodes everything but the RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~);
/// a space becomes %20, which every form decoder reads as a space.
std::string encode_form_component(std::string_view text);

/// "k1=v1&k2=v2" with each key and value encoded by encode_form_component, in the given order.
std::string encode_form(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

}  // namespace sfstream::auth

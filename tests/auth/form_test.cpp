#include <doctest/doctest.h>

#include <ostream>

#include "src/auth/form.hpp"

using namespace sfstream::auth;

TEST_CASE("form encoding keeps unreserved characters and percent-encodes everything else") {
  CHECK(encode_form_component("AZaz09-._~") == "AZaz09-._~");
  CHECK(encode_form_component("a b&c=d+e/f?g%h") == "a%20b%26c%3Dd%2Be%2Ff%3Fg%25h");
  CHECK(encode_form_component("p&<>\"'\xC3\x9F;x") == "p%26%3C%3E%22%27%C3%9F%3Bx");
  CHECK(encode_form_component(std::string("\0\x7f", 2)) == "%00%7F");
}

TEST_CASE("form fields are joined in order with & and =") {
  CHECK(encode_form({{"grant_type", "password"}, {"username", "u@x.com"}, {"password", "a&b=c"}}) ==
        "grant_type=password&username=u%40x.com&password=a%26b%3Dc");
  CHECK(encode_form({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}}) ==
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
  CHECK(encode_form({{"empty", ""}}) == "empty=");
}

#include "serve/event_line.hpp"

#include "cli/json_line.hpp"

namespace sfstream::serve {

bool append_event_line(std::string& out, std::string_view connection, const event& e) {
  out.reserve(out.size() + e.json().size() + connection.size() + 64);
  cli::json_line_fix fix;
  cli::append_event_json(out, e, &fix, {}, connection);
  out.push_back('\n');
  return fix.replaced_utf8 || fix.escaped_control;
}

}  // namespace sfstream::serve

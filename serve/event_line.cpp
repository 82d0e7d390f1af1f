#include "serve/event_line.hpp"

#include "cli/json_line.hpp"
#include "sfstream/detail/json_text.hpp"

namespace sfstream::serve {

bool append_event_line(std::string& out, std::string_view connection, const event& e) {
  const std::string_view data = e.data_json();
  out.reserve(out.size() + data.size() + e.channel().size() + connection.size() + 64);
  out += "{\"connection\":";
  detail::append_json_string(out, connection);
  out += ",\"channel\":";
  detail::append_json_string(out, cli::valid_utf8(e.channel()));
  out += ",\"replayId\":";
  out += e.replay_id() ? std::to_string(*e.replay_id()) : std::string("null");
  out += ",\"data\":";
  bool repaired = false;
  if (data.empty()) {
    out += "null";
  } else {
    const cli::json_line_fix fix = cli::append_json_line(out, data);
    repaired = fix.replaced_utf8 || fix.escaped_control;
  }
  out += "}\n";
  return repaired;
}

}  // namespace sfstream::serve

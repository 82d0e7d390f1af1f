// The JSON line a stdout or file sink writes for one event: the line `sfstream subscribe`
// prints, with the connection's name first.
#pragma once

#include <string>
#include <string_view>

#include "sfstream/event.hpp"

namespace sfstream::serve {

/// Appends {"connection":…,"channel":…,"replayId":…,"data":{…}} and a newline to `out`. The data
/// is copied as received unless it would not make one line of valid JSON (pretty-printed, raw
/// control characters, invalid UTF-8): then it is compacted and repaired. replayId is null when
/// the server sent none. Returns true when the data had to be repaired.
bool append_event_line(std::string& out, std::string_view connection, const event& e);

}  // namespace sfstream::serve

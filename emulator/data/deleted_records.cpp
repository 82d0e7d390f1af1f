// The "get deleted" resource: GET /services/data/vXX.X/sobjects/<Obj>/deleted/?start=&end=
//   {"deletedRecords":[{"id":"001…","deletedDate":"2026-12-02T00:31:05.000+0000"}],
//    "earliestDateAvailable":"…+0000","latestDateCovered":"…+0000"}
// Records in the recycle bin deleted inside [start, end]; their deletedDate is the time of the
// delete (its SystemModstamp). Salesforce covers up to the last whole minute before `end`, so
// latestDateCovered is `end` (or now, when earlier) floored to the minute; earliestDateAvailable
// is the oldest delete the emulator remembers (it never empties the recycle bin), or `start`
// when there is none. Bad dates are the emulator's choice of Salesforce's error codes.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>

namespace sfstream::emulator::data {

transport::http_response rest_api_impl::get_deleted(const object_def& object,
                                                    const std::map<std::string, std::string>& params) {
  const auto start_text = params.find("start");
  const auto end_text = params.find("end");
  if (start_text == params.end() || end_text == params.end())
    return error_response(400, {"MISSING_ARGUMENT", "Both start and end dates are required", {}});
  const auto start = parse_datetime(start_text->second);
  const auto end = parse_datetime(end_text->second);
  if (!start || !end)
    return error_response(400, {"INVALID_REPLICATION_DATE",
                                "start and end must be dates like 2013-05-05T00:00:00+00:00", {}});
  const std::int64_t from = epoch_ms(*start);
  const std::int64_t until = epoch_ms(*end);
  if (until - from < 60'000)
    return error_response(400, {"INVALID_REPLICATION_DATE",
                                "startDate must chronologically precede endDate by more than one minute", {}});
  const std::int64_t now_ms = epoch_ms(now());
  const std::int64_t covered = std::min(until, now_ms) / 60'000 * 60'000;
  std::int64_t earliest = from;
  bool any = false;
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("deletedRecords");
  w.StartArray();
  for (const auto& [id, r] : store_.of(object.name)) {
    if (!r.deleted) continue;
    const auto* stamp = std::get_if<std::string>(&value_of(r.fields, "SystemModstamp"));
    if (!stamp) continue;
    const std::int64_t at = epoch_ms(*stamp);
    earliest = any ? std::min(earliest, at) : at;
    any = true;
    if (at < from || at > covered) continue;
    w.StartObject();
    w.Key("id");
    w.String(id);
    w.Key("deletedDate");
    w.String(rest_datetime(*stamp));
    w.EndObject();
  }
  w.EndArray();
  auto text_of = [](std::int64_t ms) {
    return rest_datetime(format_datetime(std::chrono::system_clock::time_point(std::chrono::milliseconds(ms))));
  };
  w.Key("earliestDateAvailable");
  w.String(text_of(any ? earliest : from));
  w.Key("latestDateCovered");
  w.String(text_of(covered));
  w.EndObject();
  return json_response(200, buffer.GetString());
}

}  // namespace sfstream::emulator::data

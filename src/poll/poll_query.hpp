// What the polling source asks and what it makes of the answer: the SOQL of one poll, and a
// returned record turned into a PushTopic-shaped event. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sfstream/error.hpp"
#include "sfstream/rest.hpp"
#include "src/poll/poll_cursor.hpp"

namespace sfstream::poll_detail {

/// The fields every poll selects besides the user's: the cursor, the change kind.
inline constexpr const char* system_fields[] = {"Id", "SystemModstamp", "CreatedDate", "IsDeleted"};

/// SELECT <system fields, fields> FROM <object> [WHERE SystemModstamp >= <lower> [AND (where)]]
/// ORDER BY SystemModstamp, Id. A field named twice (in any case) is selected once.
std::string build_poll_soql(const std::string& object, const std::vector<std::string>& fields,
                            const std::string& where, std::optional<std::int64_t> lower);

/// The newest record version: SELECT Id, SystemModstamp FROM <object> [WHERE (where)]
/// ORDER BY SystemModstamp DESC, Id DESC LIMIT 1.
std::string build_newest_soql(const std::string& object, const std::string& where);

/// One returned record, read.
struct polled_record {
  stamp version;             ///< SystemModstamp and Id.
  std::string type;          ///< "created", "updated" or "deleted".
  std::string sobject_json;  ///< Id and the asked fields (deleted: Id only), in asked order.
};

/// Reads a record of a poll reply; errc::protocol_error when Id, SystemModstamp or CreatedDate
/// is missing or malformed. A record is `created` when its CreatedDate equals its
/// SystemModstamp (its first write), `deleted` when IsDeleted is true, else `updated`.
std::optional<polled_record> read_polled_record(const sobject_record& record,
                                                const std::vector<std::string>& fields,
                                                error_info& why);

/// {"channel":"<channel>","data":{"event":{"type":…,"createdDate":"<SystemModstamp>"},
/// "sobject":{…}}}: the shape of a PushTopic notification, without a replayId.
std::string build_poll_event(const std::string& channel, const polled_record& record);

}  // namespace sfstream::poll_detail

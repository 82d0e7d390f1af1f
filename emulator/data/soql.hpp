// The SOQL subset of the emulator: SELECT fields | COUNT() FROM object [WHERE cond]
// [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n].
// Conditions: = != <> < <= > >= LIKE IN NOT IN, = null / != null, AND / OR / NOT with
// parentheses (AND and OR may not be mixed without parentheses, as in Salesforce). Literals:
// strings with escapes, numbers, true/false, null, dates, datetimes, TODAY, YESTERDAY,
// TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n. Errors carry Salesforce's MALFORMED_QUERY /
// INVALID_FIELD / INVALID_TYPE shapes. Pure: the caller passes the current time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "emulator/data/record_store.hpp"

namespace sfstream::emulator::data {

/// A literal of a condition.
struct soql_literal {
  enum class kind { null, boolean, number, string, date, datetime, relative_date };
  kind type = kind::null;
  field_value value;
  /// relative_date: days relative to today of the first and one past the last day covered.
  std::int64_t first_day = 0;
  std::int64_t end_day = 0;
};

/// A node of the WHERE tree.
struct soql_condition {
  enum class kind { all_of, any_of, negation, compare, in, not_in, like };
  enum class op { eq, ne, lt, le, gt, ge };
  kind type = kind::compare;
  op comparison = op::eq;
  std::vector<soql_condition> children;
  const field_def* field = nullptr;
  std::vector<soql_literal> values;
};

struct soql_order {
  const field_def* field = nullptr;
  bool descending = false;
  bool nulls_first = true;
};

/// A parsed query, bound to the schema.
struct soql_query {
  std::string text;
  const object_def* object = nullptr;
  std::vector<const field_def*> select;  ///< In SELECT order, without duplicates.
  bool count_only = false;               ///< SELECT COUNT() …
  std::optional<soql_condition> where;
  std::vector<soql_order> order;
  std::optional<std::size_t> limit;
  std::size_t offset = 0;

  /// Canonical names of the fields the WHERE clause references.
  std::vector<std::string> where_fields() const;
  /// Whether a record's fields satisfy WHERE (true without WHERE). `now` is canonical datetime.
  bool matches(const field_map& fields, const std::string& now) const;
};

/// Parses and binds a query; on failure returns nullopt and fills `error`.
std::optional<soql_query> parse_soql(std::string_view text, const schema& objects, api_error& error);

/// Runs a query: matching records (deleted ones only when `include_deleted`), ordered
/// (ORDER BY, then id), after OFFSET, up to LIMIT.
std::vector<const record*> run_soql(const soql_query& query, const record_store& store, bool include_deleted,
                                    const std::string& now);

}  // namespace sfstream::emulator::data

// SOQL query and queryAll with paging: query locators kept per org (at most 50), batch sizes.
#include "emulator/data/rest_api_impl.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include <rapidjson/error/en.h>

namespace sfstream::emulator::data {

std::size_t rest_api_impl::batch_size(const transport::http_request& req) const {
  std::size_t size = options_.query_batch_size;
  if (const std::string* h = transport::find_header(req.headers, "Sforce-Query-Options")) {
    const std::size_t at = h->find("batchSize=");
    if (at != std::string::npos) {
      const long n = std::strtol(h->c_str() + at + 10, nullptr, 10);
      if (n >= 200 && n <= 2000) size = std::min(size, static_cast<std::size_t>(n));
    }
  }
  return size;
}

transport::http_response rest_api_impl::run_query(int version, const std::string& text, bool all, std::size_t batch) {
  api_error error;
  auto query = parse_soql(text, schema_, error);
  if (!query) return error_response(400, error);
  const auto matches = run_soql(*query, store_, all, now());
  if (query->count_only) return json_response(200, page_json(matches.size(), true, {}, {}, 0, 0));
  query_cursor cursor;
  cursor.version = version_text(version);
  cursor.all = all;
  cursor.records.reserve(matches.size());
  for (const record* r : matches) cursor.records.push_back(render_record(version, *r, &query->select));
  if (cursor.records.size() <= batch) return json_response(200, page_json(cursor.records.size(), true, {}, cursor.records, 0, cursor.records.size()));
  const std::string locator = ids_.next("01g");
  cursors_[locator] = std::move(cursor);
  cursor_batch_[locator] = batch;
  cursor_order_.push_back(locator);
  while (cursor_order_.size() > 50) {
    cursors_.erase(cursor_order_.front());
    cursor_batch_.erase(cursor_order_.front());
    cursor_order_.pop_front();
  }
  return page(locator, 0);
}

transport::http_response rest_api_impl::page(const std::string& locator, std::size_t start) {
  const query_cursor& c = cursors_.at(locator);
  const std::size_t batch = cursor_batch_.at(locator);
  const std::size_t end = std::min(c.records.size(), start + batch);
  const bool done = end >= c.records.size();
  std::string next;
  if (!done) next = "/services/data/v" + c.version + (c.all ? "/queryAll/" : "/query/") + locator + "-" + std::to_string(end);
  return json_response(200, page_json(c.records.size(), done, next, c.records, start, end));
}

transport::http_response rest_api_impl::next_page(int, const std::string& token) {
  const std::size_t dash = token.rfind('-');
  const api_error invalid{"INVALID_QUERY_LOCATOR", "invalid query locator", {}};
  if (dash == std::string::npos) return error_response(400, invalid);
  const std::string locator = token.substr(0, dash);
  const std::string offset = token.substr(dash + 1);
  if (offset.empty() || offset.size() > 9 ||
      !std::all_of(offset.begin(), offset.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }))
    return error_response(400, invalid);
  auto it = cursors_.find(locator);
  const std::size_t start = static_cast<std::size_t>(std::stoul(offset));
  if (it == cursors_.end() || start >= it->second.records.size()) return error_response(400, invalid);
  return page(locator, start);
}

std::string rest_api_impl::page_json(std::size_t total, bool done, const std::string& next, const std::vector<std::string>& records,
                             std::size_t start, std::size_t end) {
  std::string out = "{\"totalSize\":" + std::to_string(total) + ",\"done\":" + (done ? "true" : "false");
  if (!next.empty()) out += ",\"nextRecordsUrl\":\"" + next + "\"";
  out += ",\"records\":[";
  for (std::size_t i = start; i < end; ++i) {
    if (i > start) out += ',';
    out += records[i];
  }
  out += "]}";
  return out;
}

}  // namespace sfstream::emulator::data

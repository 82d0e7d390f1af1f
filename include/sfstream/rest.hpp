// A small Salesforce REST client: SOQL query / queryAll with paging, sObject get and create,
// with the same credentials as the streaming client.
//
//   sfstream::rest_client rest{io.get_executor(), {provider, "59.0"}};
//   rest.async_query("SELECT Id, Name FROM Account", true,
//                    [](sfstream::error_info e, sfstream::query_page page) { ... });
//
// Every call asks the credentials provider for a token; a 401 makes it ask once more with
// force_refresh and retry. Salesforce's error array [{"message":…,"errorCode":…}] becomes an
// error_info (errorCode → diagnostics.server_code, message → server_text). Tokens never appear
// in errors or logs.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "sfstream/change_event.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/error.hpp"
#include "sfstream/network.hpp"

namespace sfstream {

/// Where and how REST calls go.
struct rest_options {
  /// Token and instance URL source (required); usually the streaming client's provider.
  std::shared_ptr<credentials_provider> credentials;
  /// REST API version, the N.N of /services/data/vN.N.
  std::string api_version = "59.0";
  /// CA file, timeouts (request_timeout bounds each call), body limit, proxy.
  network_options network;
  /// Records per query page asked through `Sforce-Query-Options: batchSize=N` (200–2000 on
  /// Salesforce); 0 leaves the server default (2,000).
  std::size_t batch_size = 0;
};

/// One record as REST returns it, without its "attributes".
struct sobject_record {
  std::string type;   ///< attributes.type when present, else the object asked for.
  std::string id;     ///< The Id field ("" when not selected).
  field_list fields;  ///< Every field returned, in order, Id included.

  const field_value* field(std::string_view name) const noexcept {
    return find_field(fields, name);
  }
  /// The fields as one JSON object.
  std::string to_json() const { return sfstream::to_json(fields); }
};

/// One page of a query result.
struct query_page {
  std::size_t total_size = 0;    ///< totalSize of the whole result.
  bool done = true;              ///< False when nextRecordsUrl leads to more records.
  std::string next_records_url;  ///< Path of the next page ("" when done).
  std::vector<sobject_record> records;
};

/// Percent-encodes `text` for a URL query value (RFC 3986 unreserved characters stay).
std::string url_encode(std::string_view text);

/// Parses a query reply body {"totalSize":…,"done":…,"nextRecordsUrl":…,"records":[…]}.
/// Fails with errc::protocol_error for anything else. Never throws.
std::optional<query_page> parse_query_page(std::string_view json, error_info* why = nullptr);

/// Turns a REST error reply into an error_info: errc::auth_rejected for 401, errc::http_status
/// otherwise, with the first element of Salesforce's [{message, errorCode}] array (or the
/// status line) in the diagnostics and `context` as the context.
error_info parse_rest_error(unsigned status, std::string_view body, std::string context);

/// The asynchronous REST client. Handlers run on `executor`. Safe to use from one thread at a
/// time (calls may overlap: each has its own connection).
class rest_client {
 public:
  using query_handler = std::function<void(error_info, query_page)>;
  using record_handler = std::function<void(error_info, sobject_record)>;
  using id_handler = std::function<void(error_info, std::string id)>;
  /// Raw reply: status and body of a 2xx response; any other status arrives as an error.
  using raw_handler = std::function<void(error_info, unsigned status, std::string body)>;

  rest_client(boost::asio::any_io_executor executor, rest_options options);
  ~rest_client();
  rest_client(const rest_client&) = delete;
  rest_client& operator=(const rest_client&) = delete;

  /// The first page of a SOQL query; `include_deleted` uses queryAll (deleted and archived
  /// records too, with IsDeleted = true).
  void async_query(const std::string& soql, bool include_deleted, query_handler done);
  /// The page at `next_records_url` (a query_page::next_records_url).
  void async_next_page(const std::string& next_records_url, query_handler done);
  /// GET sobjects/<sobject>/<id>[?fields=a,b]; a deleted or unknown record is an error
  /// (NOT_FOUND, errc::http_status).
  void async_get(const std::string& sobject, const std::string& id,
                 const std::vector<std::string>& fields, record_handler done);
  /// POST sobjects/<sobject> with a JSON object of fields; hands back the new id.
  void async_create(const std::string& sobject, const std::string& fields_json, id_handler done);
  /// Any call: `path` starts with "/services/…" (the instance URL is prepended).
  void async_request(std::string method, std::string path, std::string body, raw_handler done);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// The REST client for synchronous code, e.g. inside a stream handler: each call runs a private
/// io_context until it completes. The credentials provider must not run on the calling thread's
/// executor (its answer would never come): a token not received within the request timeout
/// fails with errc::timeout.
class sync_rest_client {
 public:
  explicit sync_rest_client(rest_options options);
  ~sync_rest_client();
  sync_rest_client(const sync_rest_client&) = delete;
  sync_rest_client& operator=(const sync_rest_client&) = delete;

  /// First page of a query (queryAll when `include_deleted`).
  query_page query(const std::string& soql, bool include_deleted, error_info& error);
  query_page next_page(const std::string& next_records_url, error_info& error);
  /// Every record of a query, page after page, handed to `each` in order. Returns the first
  /// error; records already handed over stay handed over.
  error_info for_each_record(const std::string& soql, bool include_deleted,
                             const std::function<void(const sobject_record&)>& each);
  sobject_record get(const std::string& sobject, const std::string& id,
                     const std::vector<std::string>& fields, error_info& error);
  std::string create(const std::string& sobject, const std::string& fields_json, error_info& error);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sfstream

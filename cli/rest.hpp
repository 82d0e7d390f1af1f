// REST calls of the `sfstream` command, made through the library's sfstream::rest_client
// (include/sfstream/rest.hpp): same credentials, TLS, CA file and proxy as the streaming client;
// a 401 refreshes the token once; Salesforce's error array becomes an error_info.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include <optional>
#include <string_view>

#include "cli/options.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/error.hpp"
#include "sfstream/network.hpp"
#include "sfstream/rest.hpp"

namespace sfstream::cli {

/// A 2xx REST reply.
struct rest_reply {
  unsigned status = 0;
  std::string body;
};

/// "/services/data/v<api_version>" + `path`: the full path the REST client wants.
std::string data_path(const std::string& api_version, const std::string& path);

/// For the one-shot commands (topic, publish): logs in, then makes REST calls one at a time,
/// running `io` until each completes (each is bounded by the request timeout).
class blocking_rest {
 public:
  blocking_rest(boost::asio::io_context& io, std::shared_ptr<credentials_provider> credentials,
                network_options network, std::string api_version);
  /// Gets the token (logs in); the error when that fails.
  error_info login();
  /// One call; `path` is relative to /services/data/vXX.X (e.g. "/sobjects/PushTopic"). A
  /// status other than 2xx is an error (errc::auth_rejected for 401, errc::http_status otherwise,
  /// Salesforce's errorCode and message in the diagnostics).
  error_info call(std::string method, const std::string& path, std::string body, rest_reply& reply);

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<credentials_provider> credentials_;
  std::string api_version_;
  rest_client rest_;
};

/// Sets up the logged-in REST session of a one-shot `command` (topic, publish) from its
/// options: secrets registered for redaction, --ca-file/--proxy/--timeout, credentials, login.
/// Returns the exit code when that fails (the reason already printed), else nullopt.
std::optional<int> open_rest_session(std::string_view command, const parsed_args& args,
                                     boost::asio::io_context& io, std::unique_ptr<blocking_rest>& out);

/// The "id" member of a JSON object reply (a create's result), or "".
std::string json_id(const std::string& body);

/// The "Id" of the first record of a query reply, or "".
std::string first_record_id(const std::string& body);

}  // namespace sfstream::cli

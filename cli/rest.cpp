#include "cli/rest.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"

#include <optional>
#include <utility>

#include <rapidjson/document.h>

namespace sfstream::cli {

std::string data_path(const std::string& api_version, const std::string& path) {
  return "/services/data/v" + api_version + path;
}

blocking_rest::blocking_rest(boost::asio::io_context& io,
                             std::shared_ptr<credentials_provider> credentials,
                             network_options network, std::string api_version)
    : io_(io),
      credentials_(credentials),
      api_version_(api_version),
      rest_(io.get_executor(),
            rest_options{std::move(credentials), std::move(api_version), std::move(network), 0}) {}

error_info blocking_rest::login() {
  std::optional<error_info> result;
  credentials_->async_token(
      false, [&result](error_info why, access_token) { result.emplace(std::move(why)); });
  if (io_.stopped()) io_.restart();  // an io_context that ran out of work stays stopped
  while (!result && io_.run_one() > 0) {
  }
  if (!result) return {make_error_code(errc::timeout), {"", "", "logging in"}};
  return *result;
}

error_info blocking_rest::call(std::string method, const std::string& path, std::string body,
                               rest_reply& reply) {
  std::optional<error_info> result;
  rest_.async_request(std::move(method), data_path(api_version_, path), std::move(body),
                      [&result, &reply](error_info why, unsigned status, std::string text) {
                        reply = rest_reply{status, std::move(text)};
                        result.emplace(std::move(why));
                      });
  if (io_.stopped()) io_.restart();  // an io_context that ran out of work stays stopped
  while (!result && io_.run_one() > 0) {
  }
  if (!result) return {make_error_code(errc::timeout), {"", "", "calling " + path}};
  return *result;
}

std::string json_id(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject()) return {};
  auto it = d.FindMember("id");
  if (it == d.MemberEnd() || !it->value.IsString()) return {};
  return it->value.GetString();
}

std::string first_record_id(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject()) return {};
  auto records = d.FindMember("records");
  if (records == d.MemberEnd() || !records->value.IsArray() || records->value.Empty() ||
      !records->value[0].IsObject()) {
    return {};
  }
  auto it = records->value[0].FindMember("Id");
  if (it == records->value[0].MemberEnd() || !it->value.IsString()) return {};
  return it->value.GetString();
}

std::optional<int> open_rest_session(std::string_view command, const parsed_args& args,
                                     boost::asio::io_context& io,
                                     std::unique_ptr<blocking_rest>& out) {
  register_secrets(args);
  std::string error;
  if (auto v = args.value("api-version")) {
    if (auto bad = check_api_version(*v); !bad.empty()) return usage_error(command, bad);
  }
  auto network = network_from(args, error);
  if (!network) return usage_error(command, error);
  if (auto t = args.value("timeout")) {
    auto v = parse_seconds(*t);
    if (!v || v->count() == 0)
      return usage_error(command, "--timeout needs a positive number of seconds");
    network->request_timeout = *v;
  }
  const logger log = stderr_logger(args.given("verbose"));
  auto credentials = credentials_from(args, io.get_executor(), *network, log, error);
  if (!credentials) return usage_error(command, error);
  out = std::make_unique<blocking_rest>(io, credentials, *network,
                                        args.value("api-version").value_or("59.0"));
  if (auto why = out->login()) return report_failure("login failed", why);
  return std::nullopt;
}

}  // namespace sfstream::cli

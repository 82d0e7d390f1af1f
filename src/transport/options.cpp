#include "src/transport/options.hpp"

#include "src/transport/proxy.hpp"

namespace sfstream::transport {

transport_options make_transport_options(const network_options& network, error_info* why) {
  transport_options out;
  out.ca_file = network.ca_file;
  out.connect_timeout = network.connect_timeout;
  out.request_timeout = network.request_timeout;
  out.body_limit = network.max_body_bytes;
  out.proxy_from_environment = network.proxy_from_environment;
  if (network.proxy && !network.proxy->url.empty()) {
    // parse_proxy_url also takes "http://user:pass@host:port" (the HTTPS_PROXY form) and
    // refuses https:// proxies, which the CONNECT tunnel does not speak.
    error_info bad;
    auto proxy = parse_proxy_url(network.proxy->url, &bad);
    if (!proxy) {
      if (why) {
        *why = bad;
        why->code = make_error_code(errc::invalid_url);
        why->diag.context = "reading the proxy URL";
      }
      return out;
    }
    if (!network.proxy->username.empty()) {
      proxy->username = network.proxy->username;
      proxy->password = network.proxy->password;
    }
    out.proxy = std::move(*proxy);
  }
  return out;
}

}  // namespace sfstream::transport

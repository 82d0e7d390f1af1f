#include "src/transport/options.hpp"

namespace sfstream::transport {

transport_options make_transport_options(const network_options& network, error_info* why) {
  transport_options out;
  out.ca_file = network.ca_file;
  out.connect_timeout = network.connect_timeout;
  out.request_timeout = network.request_timeout;
  out.body_limit = network.max_body_bytes;
  out.proxy_from_environment = network.proxy_from_environment;
  if (network.proxy && !network.proxy->url.empty()) {
    error_info bad;
    auto address = url::parse(network.proxy->url, &bad);
    if (!address) {
      if (why) {
        *why = bad;
        why->diag.context = "reading the proxy URL";
      }
      return out;
    }
    out.proxy = proxy_config{*address, network.proxy->username, network.proxy->password};
  }
  return out;
}

}  // namespace sfstream::transport

// Converts the public network settings into the transport's options.
#pragma once

#include "sfstream/network.hpp"
#include "src/transport/http_client.hpp"

namespace sfstream::transport {

/// The transport options for `network`; fails with errc::invalid_url for a bad proxy URL.
transport_options make_transport_options(const network_options& network, error_info* why = nullptr);

}  // namespace sfstream::transport

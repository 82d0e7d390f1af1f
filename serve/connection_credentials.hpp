// The credentials provider a connection's [connection.auth] table describes.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "serve/config.hpp"
#include "sfstream/credentials.hpp"

namespace sfstream::serve {

/// One provider per connection: it caches that org's token and logs in again only when asked.
std::shared_ptr<credentials_provider> make_credentials(boost::asio::any_io_executor executor,
                                                       const auth_config& auth,
                                                       const network_options& network,
                                                       const logger& log);

}  // namespace sfstream::serve

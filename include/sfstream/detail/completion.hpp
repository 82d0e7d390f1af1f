// The completion of an asynchronous operation of the public API (client::async_run,
// poller::async_run), held as a std::function: calling it runs the caller's handler on the
// handler's associated executor (a strand given through bind_executor, for instance), never
// on whatever thread happens to finish the operation.
#pragma once

#include <functional>
#include <memory>
#include <system_error>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>

namespace sfstream::detail {

template <typename Handler>
std::function<void(std::error_code)> make_completion(Handler handler) {
  auto h = std::make_shared<Handler>(std::move(handler));
  return [h](std::error_code ec) {
    auto executor = boost::asio::get_associated_executor(*h);
    boost::asio::dispatch(executor, [h, ec]() mutable { std::move(*h)(ec); });
  };
}

}  // namespace sfstream::detail

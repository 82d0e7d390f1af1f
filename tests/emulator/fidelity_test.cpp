// Conformance of the replies where Salesforce's shape is easy to get wrong: the exact texts
// of too-busy failures, limits and final unknown-client replies, the cookies of a handshake,
// two clients sharing one browser, an unanswered disconnect.
#include <doctest/doctest.h>

#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;
using sfstream::emulator::fault_kind;

namespace {

constexpr const char* handshake_body = R"([{"channel":"/meta/handshake","id":"1","version":"1.0"}])";

std::string connect_body(const std::string& cid, const std::string& id) {
  return R"([{"channel":"/meta/connect","clientId":")" + cid + R"(","connectionType":"long-polling","id":")" + id + "\"}]";
}

}  // namespace

TEST_CASE("too busy: a handshake is denied with the 503 text as failureReason and advice none") {
  harness h;
  h.run([&] { h.org().make_too_busy(1); });
  auto r = h.cometd(handshake_body, h.token());
  CHECK(r.body ==
        R"([{"ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1","error":"403::Handshake denied","successful":false}])");
}

TEST_CASE("too busy: a connect fails with 401::Authentication invalid and the 503 text as failureReason") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.run([&] { h.org().make_too_busy(1); });
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body ==
        "[{\"clientId\":\"" + cid +
            R"(","channel":"/meta/connect","id":"2","ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."}},"error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
}

TEST_CASE("too busy: a subscribe fails with 401::Authentication invalid and the 503 text as failureReason") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.run([&] {
    h.org().rest().create_streaming_channel("/u/Busy");
    h.org().make_too_busy(1);
  });
  auto r = h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":"/u/Busy","id":"3"}])", token);
  CHECK(r.body ==
        "[{\"clientId\":\"" + cid +
            R"(","channel":"/meta/subscribe","id":"3","subscription":"/u/Busy","ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."}},"error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
}

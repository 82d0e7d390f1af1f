#include <doctest/doctest.h>

#include <ostream>

#include <array>
#include <string>

#include "bayeux/message.hpp"

using namespace sfstream;
using namespace sfstream::bayeux;

TEST_CASE("a reply array is parsed into messages with typed fields and raw JSON kept") {
  const std::string body =
      R"([{"data":{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":13,"type":"created"},"sobject":{"Name":"INV-0001","Id":"a00D0000008o6y8IAA"}},"channel":"/topic/InvoiceStatementUpdates"},)"
      R"( {"clientId":"hbx1v2cxebbeder11s99dqkxmasre","advice":{"interval":0,"timeout":110000,"reconnect":"retry"},"channel":"/meta/connect","id":"85","successful":true}])";
  auto r = parse_reply(body);
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 2);
  const auto& ev = r.value()[0];
  CHECK(ev.channel == "/topic/InvoiceStatementUpdates");
  CHECK(ev.has_data);
  CHECK(ev.replay_id == 13);
  CHECK_FALSE(ev.is_meta());
  CHECK(
      ev.json ==
      R"({"data":{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":13,"type":"created"},"sobject":{"Name":"INV-0001","Id":"a00D0000008o6y8IAA"}},"channel":"/topic/InvoiceStatementUpdates"})");
  const auto& c = r.value()[1];
  CHECK(c.is_meta());
  CHECK(c.id == "85");
  CHECK(c.client_id == "hbx1v2cxebbeder11s99dqkxmasre");
  CHECK(c.successful == true);
  REQUIRE(c.advice.has_value());
  CHECK(c.advice->reconnect == reconnect_advice::retry);
  CHECK(c.advice->interval == 0);
  CHECK(c.advice->timeout == 110000);
  CHECK_FALSE(c.advice->multiple_clients.has_value());
}

TEST_CASE("a single object body is accepted as one message") {
  auto r = parse_reply(
      R"({"ext":{"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","error":"403::Handshake denied","successful":false})");
  REQUIRE(r.has_value());
  REQUIRE(r->size() == 1);
  const auto& m = r.value()[0];
  CHECK(m.error == "403::Handshake denied");
  CHECK(m.failure_reason == "401::Authentication invalid");
  CHECK(m.successful == false);
  CHECK(m.advice->reconnect == reconnect_advice::none);
  CHECK_FALSE(m.advice->interval.has_value());
  CHECK(
      m.ext ==
      R"({"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true,"payload.format":true})");
  CHECK_FALSE(m.id.has_value());
}

TEST_CASE("a numeric id is kept as its decimal text") {
  auto r = parse_reply(R"([{"channel":"/meta/connect","id":42,"successful":true}])");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].id == "42");
}

TEST_CASE("a failed subscribe without a subscription field is parsed with an empty subscription") {
  auto r = parse_reply(
      R"([{"clientId":"x","channel":"/meta/subscribe","id":"3","error":"404::Unknown channel","successful":false}])");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].subscription.empty());
  CHECK(r.value()[0].error == "404::Unknown channel");
}

TEST_CASE("multiple-clients advice is read") {
  auto r = parse_reply(
      R"([{"advice":{"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":110000},"channel":"/meta/connect","id":"9","successful":true}])");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].advice->multiple_clients == true);
  CHECK(r.value()[0].advice->interval == 2000);
}

TEST_CASE("64-bit replay ids are read exactly and a missing replay id is empty") {
  auto r = parse_reply(
      R"([{"data":{"event":{"replayId":9223372036854775807}},"channel":"/event/A__e"},{"data":{"payload":"x"},"channel":"/u/a"}])");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].replay_id == INT64_MAX);
  CHECK(r.value()[1].has_data);
  CHECK_FALSE(r.value()[1].replay_id.has_value());
}

TEST_CASE("raw message slices survive braces and escaped quotes inside strings") {
  const std::string first = R"({"data":{"payload":"a } ] \" { [ \\"},"channel":"/u/x"})";
  const std::string second = R"({"channel":"/meta/connect","id":"1","successful":true})";
  auto r = parse_reply("[ " + first + " ,\n" + second + " ]");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].json == first);
  CHECK(r.value()[1].json == second);
}

TEST_CASE("unknown fields are kept in the raw JSON") {
  const std::string m =
      R"({"channel":"/meta/connect","id":"1","successful":true,"x-new":{"a":[1,2]}})";
  auto r = parse_reply("[" + m + "]");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].json == m);
}

TEST_CASE("malformed replies give a protocol error that says what is wrong") {
  for (const char* body :
       {"", "[", "{", "[1]", "\"x\"", "[{\"channel\":5}]", "[{}]x", "[{\"successful\":\"yes\"}]",
        "[{\"advice\":3}]", "null", "[{\"id\":[1]}]"}) {
    CAPTURE(body);
    auto r = parse_reply(body);
    if (std::string_view(body) == "[{}]x") {
      REQUIRE_FALSE(r.has_value());
    }
    if (!r.has_value()) {
      CHECK(r.error().code == errc::protocol_error);
      CHECK_FALSE(r.error().diag.server_text.empty());
    } else {
      FAIL("accepted a malformed body");
    }
  }
  std::string deep(100000, '[');
  auto r = parse_reply(deep);
  CHECK_FALSE(r.has_value());
}

TEST_CASE("an empty array is a valid reply with no messages") {
  auto r = parse_reply("[]");
  REQUIRE(r.has_value());
  CHECK(r->empty());
}

TEST_CASE("the handshake request is encoded compactly with replay and long-polling") {
  CHECK(
      encode_handshake("1") ==
      R"({"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"replay":true},"id":"1"})");
}

TEST_CASE("the connect request carries advice timeout 0 only when asked") {
  CHECK(
      encode_connect("abc", "2", true) ==
      R"({"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","advice":{"timeout":0},"id":"2"})");
  CHECK(encode_connect("abc", "3", false) ==
        R"({"channel":"/meta/connect","clientId":"abc","connectionType":"long-polling","id":"3"})");
}

TEST_CASE("subscribe carries ext.replay keyed by the channel without filter as a 64-bit integer") {
  CHECK(
      encode_subscribe("c", "/topic/T?Name='a\"b'", "/topic/T", 9223372036854775807LL, "4") ==
      R"({"channel":"/meta/subscribe","clientId":"c","subscription":"/topic/T?Name='a\"b'","ext":{"replay":{"/topic/T":9223372036854775807}},"id":"4"})");
  CHECK(
      encode_subscribe("c", "/event/E__e", "/event/E__e", -2, "5") ==
      R"({"channel":"/meta/subscribe","clientId":"c","subscription":"/event/E__e","ext":{"replay":{"/event/E__e":-2}},"id":"5"})");
}

TEST_CASE("unsubscribe, disconnect and batches are encoded compactly") {
  CHECK(encode_unsubscribe("c", "/u/x", "6") ==
        R"({"channel":"/meta/unsubscribe","clientId":"c","subscription":"/u/x","id":"6"})");
  CHECK(encode_disconnect("c", "7") == R"({"channel":"/meta/disconnect","clientId":"c","id":"7"})");
  std::array<std::string, 2> parts{"{\"a\":1}", "{\"b\":2}"};
  CHECK(encode_batch(parts) == R"([{"a":1},{"b":2}])");
}

TEST_CASE("strings are escaped properly") {
  std::string out;
  append_json_string(out, std::string("a\"b\\c\n\x01", 7));
  CHECK(out == R"("a\"b\\c\n\u0001")");
  auto r = parse_reply("[" + encode_unsubscribe("c", std::string("q\"\\\t\x1f", 5), "1") + "]");
  REQUIRE(r.has_value());
  CHECK(r.value()[0].subscription == std::string("q\"\\\t\x1f", 5));
}

#include <doctest/doctest.h>

#include <ostream>

#include "bayeux/channel.hpp"

using namespace sfstream;
using namespace sfstream::bayeux;
using namespace std::chrono_literals;

namespace {
channel_kind kind(const char* name) {
  auto c = parse_channel(name);
  REQUIRE_MESSAGE(c.has_value(), name << ": " << c.error().to_string());
  return c->kind;
}
std::string why(const char* name) {
  auto c = parse_channel(name);
  REQUIRE_MESSAGE(!c.has_value(), name << " was accepted");
  CHECK(c.error().code == errc::invalid_channel);
  return c.error().diag.server_text;
}
}  // namespace

TEST_CASE("every Salesforce channel kind is recognised") {
  CHECK(kind("/meta/handshake") == channel_kind::meta);
  CHECK(kind("/topic/InvoiceStatementUpdates") == channel_kind::topic);
  CHECK(kind("/topic/TestContact1?LastName='Smith'") == channel_kind::topic);
  CHECK(kind("/u/notifications/ExampleUserChannel") == channel_kind::generic);
  CHECK(kind("/event/Low_Ink__e") == channel_kind::platform_event);
  CHECK(kind("/event/My_Channel__chn") == channel_kind::custom_platform_channel);
  CHECK(kind("/data/ChangeEvents") == channel_kind::cdc_all);
  CHECK(kind("/data/AccountChangeEvent") == channel_kind::cdc_standard);
  CHECK(kind("/data/Employee__ChangeEvent") == channel_kind::cdc_custom);
  CHECK(kind("/data/SalesEvents__chn") == channel_kind::cdc_custom_channel);
}

TEST_CASE("invalid channels are refused with a message that says what is wrong") {
  CHECK(why("/event/Low_Ink") == "platform event channels end in __e or __chn");
  CHECK(why("") == "channel name is empty");
  CHECK(why("topic/X") == "channel names start with '/'");
  CHECK(why("/event/A__e?x=1") == "only PushTopic channels (/topic/...) accept a ?filter query");
  CHECK(why("/data/Account").find("change data capture channels") == 0);
  CHECK(why("/foo/bar").find("unknown channel prefix") == 0);
  CHECK(why("/topic/a b").find("spaces") != std::string::npos);
  CHECK(why("/topic/").find("empty segments") != std::string::npos);
  CHECK(why("/topic/A/B").find("PushTopic channels are") == 0);
  CHECK(why("/u/a//b").find("empty segments") != std::string::npos);
  CHECK(why("/topic/*").find("wildcard") != std::string::npos);
  CHECK(why("/topic/A?").find("filter") != std::string::npos);
  CHECK(why("/data/X_ChangeEvent").find("change data capture") == 0);
}

TEST_CASE("the replay key is the channel without its filter") {
  auto c = parse_channel("/topic/TestContact1?LastName='Smith'");
  REQUIRE(c.has_value());
  CHECK(c->replay_key() == "/topic/TestContact1");
  CHECK(c->filter == "LastName='Smith'");
  CHECK(replay_key_of("/event/A__e") == "/event/A__e");
}

TEST_CASE(
    "retention is 24 hours for PushTopic and generic channels and 72 hours for events and CDC") {
  CHECK(parse_channel("/topic/A")->retention() == 24h);
  CHECK(parse_channel("/u/a")->retention() == 24h);
  CHECK(parse_channel("/event/A__e")->retention() == 72h);
  CHECK(parse_channel("/event/A__chn")->retention() == 72h);
  CHECK(parse_channel("/data/ChangeEvents")->retention() == 72h);
  CHECK(parse_channel("/data/AccountChangeEvent")->retention() == 72h);
  CHECK(parse_channel("/data/A__ChangeEvent")->retention() == 72h);
  CHECK(parse_channel("/data/A__chn")->retention() == 72h);
}

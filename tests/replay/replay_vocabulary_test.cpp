#include <doctest/doctest.h>

#include <chrono>

#include "sfstream/replay.hpp"

using namespace std::chrono_literals;

TEST_CASE("parse_replay_id accepts -1, -2 and every non-negative 64-bit integer") {
  CHECK(sfstream::parse_replay_id("-1") == sfstream::replay_new);
  CHECK(sfstream::parse_replay_id("-2") == sfstream::replay_all);
  CHECK(sfstream::parse_replay_id("0") == 0);
  CHECK(sfstream::parse_replay_id("13") == 13);
  CHECK(sfstream::parse_replay_id("9007199254740993") == 9007199254740993LL);
  CHECK(sfstream::parse_replay_id("9223372036854775807") == INT64_MAX);
}

TEST_CASE("parse_replay_id refuses other negatives, signs, spaces, exponents and overflow") {
  for (const char* text :
       {"", "-", "-3", "-0", "-10", "+5", " 5", "5 ", "1e3", "1.0", "0x10", "abc", "5a",
        "9223372036854775808", "99999999999999999999999", "--1", "−1"}) {
    INFO("text: " << text);
    CHECK_FALSE(sfstream::parse_replay_id(text).has_value());
  }
}

TEST_CASE("replay policies round trip through their names and unknown names are refused") {
  using sfstream::replay_policy;
  for (const auto policy : {replay_policy::earliest, replay_policy::tip, replay_policy::fail}) {
    CHECK(sfstream::parse_replay_policy(sfstream::to_string(policy)) == policy);
  }
  CHECK(sfstream::to_string(replay_policy::earliest) == "earliest");
  CHECK(sfstream::to_string(replay_policy::tip) == "tip");
  CHECK(sfstream::to_string(replay_policy::fail) == "fail");
  CHECK_FALSE(sfstream::parse_replay_policy("Earliest").has_value());
  CHECK_FALSE(sfstream::parse_replay_policy("").has_value());
  CHECK_FALSE(sfstream::parse_replay_policy("latest").has_value());
}

TEST_CASE("a gap record prints channel, last id, event time, cause, policy and resume point") {
  sfstream::gap_record gap;
  gap.channel = "/topic/InvoiceStatementUpdates";
  gap.last_replay_id = 9007199254740993LL;
  // 2016-03-29T16:40:08.208Z
  gap.last_event_time = std::chrono::system_clock::time_point{1459269608208ms};
  gap.cause = sfstream::gap_cause::expired;
  gap.policy_taken = sfstream::replay_policy::earliest;
  gap.resumed_from = sfstream::replay_all;
  const std::string line = gap.to_string();
  CHECK(line ==
        "/topic/InvoiceStatementUpdates: last replayId 9007199254740993 (event time "
        "2016-03-29T16:40:08.208Z) is older than the channel's retention; policy earliest resumed "
        "from -2 (all retained events)");
  CHECK(line.find("/topic/InvoiceStatementUpdates") != std::string::npos);
  CHECK(line.find("9007199254740993") != std::string::npos);
  CHECK(line.find("2016-03-29T16:40:08.208Z") != std::string::npos);
  CHECK(line.find("retention") != std::string::npos);
  CHECK(line.find("earliest") != std::string::npos);
  CHECK(line.find("resumed from -2") != std::string::npos);
  CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("a gap record without id or time and with policy fail says so instead of resuming") {
  sfstream::gap_record gap;
  gap.channel = "/event/Low_Ink__e";
  gap.cause = sfstream::gap_cause::refused;
  gap.policy_taken = sfstream::replay_policy::fail;
  const std::string line = gap.to_string();
  CHECK(line.find("/event/Low_Ink__e") != std::string::npos);
  CHECK(line.find("unknown") != std::string::npos);
  CHECK(line.find("refused") != std::string::npos);
  CHECK(line.find("policy fail stopped the subscription") != std::string::npos);
  CHECK(line.find("resumed") == std::string::npos);
}

TEST_CASE("a gap record resuming from -1 names the tip policy") {
  sfstream::gap_record gap;
  gap.channel = "/data/AccountChangeEvent";
  gap.last_replay_id = 37904280;
  gap.policy_taken = sfstream::replay_policy::tip;
  gap.resumed_from = sfstream::replay_new;
  const std::string line = gap.to_string();
  CHECK(line.find("tip") != std::string::npos);
  CHECK(line.find("resumed from -1") != std::string::npos);
}

// The JSON scanner that reads Bayeux replies first: it takes the replies Salesforce sends
// without falling back, hands the same events and texts as RapidJSON's reader, and the reply
// parser built on it agrees with the RapidJSON-only parser on valid, broken and mutated replies.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "bayeux/json_scan.hpp"
#include "bayeux/message.hpp"

namespace {

using sfstream::bayeux::json_scanner;
using sfstream::bayeux::scan_result;

/// Records every event as one line of text, and its Tell() offset.
struct recorder {
  const json_scanner* scanner = nullptr;
  std::vector<std::string> events;

  bool note(std::string what) {
    events.push_back(what + "@" + std::to_string(scanner->Tell()));
    return true;
  }
  bool Null() { return note("null"); }
  bool Bool(bool b) { return note(b ? "true" : "false"); }
  bool RawNumber(const char* t, unsigned n, bool) { return note("num " + std::string(t, n)); }
  bool String(const char* t, unsigned n, bool) { return note("str " + std::string(t, n)); }
  bool Key(const char* t, unsigned n, bool) { return note("key " + std::string(t, n)); }
  bool StartObject() {
    ++depth;
    return note("{");
  }
  bool EndObject(unsigned) {
    --depth;
    return note("}");
  }
  bool StartArray() {
    ++depth;
    return note("[");
  }
  bool EndArray(unsigned) {
    --depth;
    return note("]");
  }
  /// Containers opened at this depth or deeper are skipped (0: none).
  std::size_t skip_from = 0;
  std::size_t depth = 0;
  bool skip_children() const { return skip_from != 0 && depth >= skip_from; }
};

scan_result scan(const std::string& text, std::vector<std::string>* events = nullptr,
                 std::size_t skip_from = 0) {
  json_scanner scanner(text);
  recorder r;
  r.scanner = &scanner;
  r.skip_from = skip_from;
  const auto result = scanner.scan(r);
  if (events != nullptr) *events = r.events;
  return result;
}

/// The same verdict and the same messages (every field, every span) from both parsers.
void check_agree(const std::string& body) {
  CAPTURE(body);
  const auto fast = sfstream::bayeux::parse_reply(body);
  const auto reference = sfstream::bayeux::parse_reply_with_rapidjson(body);
  REQUIRE(fast.has_value() == reference.has_value());
  if (!fast.has_value()) {
    CHECK(fast.error().diag.server_text == reference.error().diag.server_text);
    return;
  }
  REQUIRE(fast->size() == reference->size());
  for (std::size_t i = 0; i < fast->size(); ++i) {
    const auto& a = fast.value()[i];
    const auto& b = reference.value()[i];
    CHECK(a.channel == b.channel);
    CHECK(a.id == b.id);
    CHECK(a.client_id == b.client_id);
    CHECK(a.successful == b.successful);
    CHECK(a.error == b.error);
    CHECK(a.subscription == b.subscription);
    CHECK(a.ext == b.ext);
    CHECK(a.failure_reason == b.failure_reason);
    CHECK(a.has_data == b.has_data);
    CHECK(a.replay_id == b.replay_id);
    CHECK(a.has_replay_id == b.has_replay_id);
    CHECK(a.object == b.object);
    CHECK(a.data == b.data);
    CHECK(a.json == b.json);
    REQUIRE(a.advice.has_value() == b.advice.has_value());
    if (a.advice) {
      CHECK(a.advice->reconnect == b.advice->reconnect);
      CHECK(a.advice->interval == b.advice->interval);
      CHECK(a.advice->timeout == b.advice->timeout);
      CHECK(a.advice->multiple_clients == b.advice->multiple_clients);
    }
  }
}

const std::vector<std::string>& replies() {
  static const std::vector<std::string> all = {
      R"([{"clientId":"4f1b2c","channel":"/meta/connect","id":"7","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":110000}}])",
      R"([{"data":{"schema":"dffQ2QLzDNHqwB8_sHMxdA","payload":{"CreatedDate":"2026-12-02T01:00:00.000Z","CreatedById":"005xx000001Sv6AAAS","Body__c":"plain text with \"quotes\", a \\ backslash, \u00e9, \ud83d\ude00 and \n newline"},"event":{"EventUuid":"5f1c2b1e-8e07-4d5a-9b4f-0a1d1c1f9b2e","replayId":42}},"channel":"/event/Bench__e"},{"clientId":"4f1b2c","channel":"/meta/connect","id":"8","successful":true}])",
      R"( [ { "channel" : "/topic/AccountUpdates" , "data" : { "event" : { "type" : "updated" , "createdDate" : "2026-12-02T01:00:00.000Z" , "replayId" : 7 } , "sobject" : { "Id" : "001xx" , "Amount" : -12.50 , "Active" : true , "Parent" : null , "Tags" : [ ] , "Meta" : { } } } } ] )",
      R"([{"channel":"/meta/handshake","successful":false,"error":"403::Handshake denied","ext":{"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true},"advice":{"reconnect":"none"}}])",
      R"({"channel":"/meta/subscribe","successful":true,"subscription":"/data/AccountChangeEvent","id":12345678901234567890})",
      R"([{"channel":"/meta/connect","successful":false,"error":{"code":403,"text":"Unknown client"},"id":-0}])",
      R"([{"channel":"/u/notify","data":"a string payload","id":"\u0031"},{"channel":"/u/notify","data":[1,2,[3,{"a":[]}]]}])",
      R"([{"channel":"/event/X__e","data":{"event":{"replayId":"17"},"payload":{}}},{"channel":"/event/X__e","data":{"event":{"replayId":1.5}}}])",
      "[]",
      "{}",
  };
  return all;
}

}  // namespace

TEST_CASE("the scanner reads the replies Salesforce sends without falling back") {
  for (const auto& reply : replies()) {
    CAPTURE(reply);
    CHECK(scan(reply) == scan_result::ok);
  }
}

TEST_CASE("the scanner reports keys, strings, numbers and brackets at RapidJSON's offsets") {
  std::vector<std::string> events;
  REQUIRE(scan(R"( {"a" : "x\"y", "b":[1, -2.5,true ,null]} )", &events) == scan_result::ok);
  CHECK(events == std::vector<std::string>{"{@1", "key a@5", "str x\"y@14", "key b@19", "[@20",
                                           "num 1@22", "num -2.5@28", "true@33", "null@39",
                                           "]@39", "}@40"});
}

TEST_CASE("a skipped container hands only its brackets, at the same offsets, and is still checked") {
  std::vector<std::string> events;
  REQUIRE(scan(R"({"a":{"b":[1,{"c":"\u00e9"}],"d":null},"e":2})", &events, 2) == scan_result::ok);
  CHECK(events == std::vector<std::string>{"{@0", "key a@4", "{@5", "}@37", "key e@42",
                                           "num 2@44", "}@44"});
  for (const std::string bad : {R"({"a":{"b":[1,]}})", R"({"a":{"b" 1}})", R"({"a":{"b":"\q"}})",
                                R"({"a":[1 2]})", R"({"a":{"b":1])", R"({"a":{"b":"x)"}) {
    CAPTURE(bad);
    CHECK(scan(bad, nullptr, 2) == scan_result::unsure);
  }
}

TEST_CASE("the scanner leaves invalid JSON and exponents to RapidJSON") {
  for (const std::string bad : {"", " ", "[", "[1,]", "{\"a\"}", "{\"a\":1,}", "[01]", "[1.]",
                                "[-]", "[tru]", "[\"a\x01\"]", "[\"\\x\"]", "[\"\\ud800\"]",
                                "[\"\\ud800\\u0041\"]", "[\"\\u12\"]", "[1] [2]", "[\"abc",
                                "[1e5]", "[2E-3]", "{\"a\":1]", "[1}"}) {
    CAPTURE(bad);
    CHECK(scan(bad) == scan_result::unsure);
  }
  // A lone low surrogate is taken, as RapidJSON takes it.
  CHECK(scan("[\"\\udc00\"]") == scan_result::ok);
}

TEST_CASE("replies parse the same with the scanner as with RapidJSON alone") {
  for (const auto& reply : replies()) check_agree(reply);
  for (const std::string odd : {"[\"\\udc00\"]", "[1e5]", "[{\"channel\":\"/a\",\"id\":1e2}]",
                                "[1] [2]", "", "[{\"channel\":5}]", "[3]"}) {
    check_agree(odd);
  }
}

TEST_CASE("mutated replies parse the same with the scanner as with RapidJSON alone") {
  // Seeded mutations of every sample: bytes replaced by JSON's special characters or random
  // bytes, cut short, bytes inserted or removed. 20,000 inputs in all.
  std::mt19937 rng(20261202);
  const std::string specials = "{}[]\":,\\ \n\tu0123456789.-+eEtrufalsn\x01\x7f\x80\xff";
  int checked = 0;
  for (const auto& reply : replies()) {
    for (int round = 0; round < 2000; ++round) {
      std::string m = reply;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const std::size_t at = rng() % m.size();
        switch (rng() % 4) {
          case 0:
            m[at] = specials[rng() % specials.size()];
            break;
          case 1:
            m[at] = static_cast<char>(rng() % 256);
            break;
          case 2:
            m.insert(at, 1, specials[rng() % specials.size()]);
            break;
          default:
            m.erase(at, 1 + rng() % 3);
            break;
        }
      }
      if (rng() % 8 == 0 && !m.empty()) m.resize(rng() % m.size());
      check_agree(m);
      ++checked;
    }
  }
  CHECK(checked == 20'000);
}

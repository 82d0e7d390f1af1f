// The webhook sink against a real receiver on loopback: order, bounds, signatures,
// idempotency keys, retries (500, 429/503 with Retry-After, closed connections, timeouts),
// dead letters, stop() during a retry wait, TLS with a custom CA, no secret anywhere.
#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <ctime>
#include <map>
#include <random>
#include <thread>
#include <set>

#include "serve/signature.hpp"
#include "tests/serve/webhook_fixture.hpp"

using namespace webhook_test;
using sfstream::errc;
using sfstream::make_error_code;

namespace {

/// Every replay id the receiver saw, counted (a multiset: a repeat shows as a 2).
std::multiset<std::int64_t> ids_received(const std::vector<sfstream::testing::webhook_request>& rs) {
  std::multiset<std::int64_t> out;
  for (const auto& r : rs) {
    for (const auto id : ids_in(r.body)) out.insert(id);
  }
  return out;
}

std::vector<std::int64_t> ids_in_order(const std::vector<sfstream::testing::webhook_request>& rs) {
  std::vector<std::int64_t> out;
  for (const auto& r : rs) {
    for (const auto id : ids_in(r.body)) out.push_back(id);
  }
  return out;
}

std::size_t confirmed_count(
    const std::map<std::string, std::vector<sfstream::testing::webhook_request>>& by_channel) {
  std::size_t n = 0;
  for (const auto& [channel, requests] : by_channel) n += requests.size();
  return n;
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t count) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

std::string imf_fixdate(std::time_t when) {
  char text[64];
  std::tm tm{};
  gmtime_r(&when, &tm);
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

}  // namespace

TEST_CASE("a delivery larger than the bounds goes out as several requests in order, each within both bounds") {
  fixture f;
  f.options.max_batch_events = 100;
  f.options.max_batch_bytes = 1'000'000;
  f.start();
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 250));
  CHECK(result.calls == 1);
  CHECK(result.handled == 250);
  CHECK_FALSE(result.error);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 3);
  CHECK(ids_in(requests[0].body).size() == 100);
  CHECK(ids_in(requests[1].body).size() == 100);
  CHECK(ids_in(requests[2].body).size() == 50);
  CHECK(ids_in_order(requests) == range(1, 250));

  SUBCASE("the byte bound splits too, and an event larger than it goes alone") {
    fixture g;
    g.options.max_batch_events = 1000;
    g.options.max_batch_bytes = 2'000;
    g.start();
    auto events = make_events("/event/Big__e", 1, 30, 300);  // about 420 bytes each
    auto huge = make_events("/event/Big__e", 31, 1, 5'000);
    events.push_back(huge[0]);
    for (auto& e : make_events("/event/Big__e", 32, 5, 300)) events.push_back(e);
    auto r = g.deliver("/event/Big__e", events);
    CHECK(r.handled == events.size());
    const auto got = g.receiver.requests();
    CHECK(ids_in_order(got) == range(1, 36));
    bool saw_alone = false;
    for (const auto& req : got) {
      const auto ids = ids_in(req.body);
      if (std::find(ids.begin(), ids.end(), 31) != ids.end()) {
        CHECK(ids.size() == 1);
        saw_alone = true;
      } else {
        CHECK(req.body.size() <= 2'000);
      }
    }
    CHECK(saw_alone);
  }
}

TEST_CASE("the request body is the connection, the channel and each event's JSON as received") {
  fixture f;
  f.start();
  auto events = make_events("/topic/Orders", 7, 2);
  // A message exactly as a server may send it: spaces, unicode, key order kept byte for byte.
  events.emplace_back("/topic/Orders", 9,
                      "{ \"data\": {\"event\": {\"replayId\": 9}, \"sobject\": {\"Name\": "
                      "\"caf\xc3\xa9 \\\"q\\\"\"}}, \"channel\": \"/topic/Orders\" }");
  CHECK(f.deliver("/topic/Orders", events).handled == 3);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 1);
  const auto& body = requests[0].body;
  CHECK(body.find(std::string(events[2].json())) != std::string::npos);
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["connection"].GetString()) == "acme");
  CHECK(std::string(doc["channel"].GetString()) == "/topic/Orders");
  CHECK(doc["events"].Size() == 3);
  CHECK(requests[0].header("Content-Type") == "application/json");
  CHECK(requests[0].target == "/hook");
}

TEST_CASE("every request is signed over timestamp.body and a tampered body, timestamp or key fails") {
  fixture f;
  f.start();
  CHECK(f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 3)).handled == 3);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 1);
  const auto& r = requests[0];
  CHECK(r.signature_valid);
  CHECK(r.timestamp_fresh);
  CHECK(r.signature.rfind("v1=", 0) == 0);
  CHECK(r.signature.size() == 3 + 64);
  using sfstream::testing::receiver_verifies;
  CHECK(receiver_verifies(signing_key, r.timestamp, r.body, r.signature));
  std::string tampered = r.body;
  tampered[tampered.size() / 2] ^= 1;
  CHECK_FALSE(receiver_verifies(signing_key, r.timestamp, tampered, r.signature));
  CHECK_FALSE(receiver_verifies(signing_key, std::to_string(std::stoll(r.timestamp) + 1), r.body,
                                r.signature));
  CHECK_FALSE(receiver_verifies("another-key-0123456789", r.timestamp, r.body, r.signature));
  // The sink's own verifier agrees with the receiver's independent one.
  CHECK(sfstream::serve::verify_webhook(signing_key, r.timestamp, r.body, r.signature));
  CHECK_FALSE(sfstream::serve::verify_webhook(signing_key, r.timestamp, tampered, r.signature));
  CHECK(sfstream::serve::verify_webhook(signing_key, r.timestamp, r.body,
                                        "v1=" + std::string(64, '0') + ", " + r.signature));
  CHECK_FALSE(sfstream::serve::verify_webhook(signing_key, r.timestamp, r.body,
                                              "v0=" + r.signature.substr(3)));
}

TEST_CASE("the signature is HMAC-SHA256 of timestamp.body in lower-case hex") {
  // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac Jefe
  CHECK(sfstream::serve::sign_webhook("Jefe", 1700000000, "{\"a\":1}") ==
        "fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a");
  CHECK(sfstream::serve::signature_header_value("Jefe", 1700000000, "{\"a\":1}") ==
        "v1=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a");
  CHECK(sfstream::serve::constant_time_equal("abc", "abc"));
  CHECK_FALSE(sfstream::serve::constant_time_equal("abc", "abd"));
  CHECK_FALSE(sfstream::serve::constant_time_equal("abc", "abcd"));
}

TEST_CASE("the idempotency key names the connection, the channel and the first and last replay id") {
  fixture f;
  f.options.max_batch_events = 4;
  f.start();
  CHECK(f.deliver("/data/AccountChangeEvent", make_events("/data/AccountChangeEvent", 41, 6),
                  "west org")
            .handled == 6);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].idempotency_key == "west%20org:/data/AccountChangeEvent:41-44");
  CHECK(requests[1].idempotency_key == "west%20org:/data/AccountChangeEvent:45-46");
  // The separator cannot occur inside a part.
  CHECK(f.deliver("/topic/X?Name=a:b", make_events("/topic/X?Name=a:b", 7, 1), "n:1%").handled == 1);
  CHECK(f.receiver.requests().back().idempotency_key == "n%3A1%25:/topic/X?Name=a%3Ab:7-7");
}

TEST_CASE("500 is retried with backoff until it succeeds and the batch is done once") {
  fixture f;
  f.start();
  f.receiver.fail_next(3, 500);
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 5));
  CHECK(result.calls == 1);
  CHECK(result.handled == 5);
  CHECK_FALSE(result.error);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 4);
  for (const auto& r : requests) {
    CHECK(r.idempotency_key == requests[0].idempotency_key);
    CHECK(r.body == requests[0].body);
    CHECK(r.signature_valid);
  }
  CHECK(requests[3].header("X-Sfstream-Attempt") == "4");
  const auto figures = f.sink->figures();
  CHECK(figures.retries == 3);
  CHECK(figures.failures == 3);
  CHECK(figures.batches == 1);
  CHECK(figures.events == 5);
  CHECK(figures.bytes == requests[0].body.size());
  CHECK(figures.backlog == 0);
  CHECK(figures.latency_count == 1);
  CHECK(figures.latency_buckets.rbegin()->second == 1);
  REQUIRE(figures.last_error);
  CHECK(figures.last_error->find("HTTP 500") != std::string::npos);
}

TEST_CASE("408 and every 5xx are retried like 500") {
  fixture f;
  f.start();
  f.receiver.fail_next(1, 408);
  f.receiver.fail_next(1, 502);
  f.receiver.fail_next(1, 504);
  CHECK(f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 2)).handled == 2);
  CHECK(f.receiver.requests().size() == 4);
  CHECK(f.sink->figures().dead_letters == 0);
}

TEST_CASE("429 with Retry-After in seconds is not retried before the receiver asked") {
  fixture f;
  f.start();
  f.receiver.fail_next(1, 429, "1");
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 2));
  CHECK(result.handled == 2);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 2);
  const auto gap = requests[1].arrived - requests[0].arrived;
  // The backoff alone would be at most 50 ms here.
  CHECK(gap >= 1000ms);
  CHECK(gap < 5000ms);
}

TEST_CASE("503 with Retry-After as an HTTP date is not retried before that date") {
  fixture f;
  f.start();
  const std::time_t now = std::time(nullptr);
  f.receiver.fail_next(1, 503, imf_fixdate(now + 2));
  const auto wall_before = std::chrono::system_clock::now();
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 2));
  CHECK(result.handled == 2);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 2);
  // The date has one-second resolution: the retry comes at or after now + 2 s (whole seconds).
  const auto date = std::chrono::system_clock::from_time_t(now + 2);
  const auto retried_at = wall_before + (requests[1].arrived - requests[0].arrived);
  CHECK(requests[1].arrived - requests[0].arrived >= 900ms);
  CHECK(retried_at + 150ms >= date);
}

TEST_CASE("Retry-After parses as delay-seconds and as the three HTTP-date forms") {
  using sfstream::serve::parse_retry_after;
  const auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37
  CHECK(parse_retry_after("120", now) == std::chrono::milliseconds(120'000));
  CHECK(parse_retry_after(" 0 ", now) == std::chrono::milliseconds(0));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now) == std::chrono::milliseconds(10'000));
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now) == std::chrono::milliseconds(60'000));
  CHECK(parse_retry_after("Sun Nov  6 08:49:38 1994", now) == std::chrono::milliseconds(1'000));
  CHECK(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now) == std::chrono::milliseconds(0));
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("-5", now));
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK_FALSE(parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now));
  CHECK_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", now));
}

TEST_CASE("a Retry-After beyond retry_after_max waits only retry_after_max") {
  fixture f;
  f.options.retry_after_max = 200ms;
  f.start();
  f.receiver.fail_next(1, 429, "86400");
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 1));
  CHECK(result.handled == 1);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].arrived - requests[0].arrived >= 200ms);
  CHECK(result.elapsed < 5s);
}

TEST_CASE("a connection closed before or during the answer is retried") {
  fixture f;
  f.start();
  f.receiver.close_next(2);
  sfstream::testing::webhook_behaviour half;
  half.what = sfstream::testing::webhook_behaviour::kind::partial;
  half.status = 200;
  half.body = "accepted, thank you very much";
  f.receiver.plan(1, half);
  auto result = f.deliver("/u/notifications", make_events("/u/notifications", 1, 3));
  CHECK(result.handled == 3);
  CHECK_FALSE(result.error);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 4);
  CHECK(requests[3].answered == 200);
  // The receiver got the events four times; only the last request was confirmed.
  const auto ids = ids_received(requests);
  for (std::int64_t id = 1; id <= 3; ++id) CHECK(ids.count(id) == 4);
  CHECK(f.sink->figures().retries == 3);
}

TEST_CASE("400 sends the request's events to the dead-letter file at once and the batch is done") {
  fixture f;
  f.options.dead_letter_path = f.dir / "dead.jsonl";
  f.options.max_batch_events = 2;
  f.start();
  // The second request (events 3 and 4) is refused; its answer echoes a token and the key.
  sfstream::testing::webhook_behaviour ok;
  f.receiver.plan(1, ok);
  f.receiver.fail_next(1, 400, std::nullopt,
                       std::string("bad event\naccess_token=00Dxx!AQ0secretsecret key=") +
                           signing_key);
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 6));
  CHECK(result.calls == 1);
  CHECK(result.handled == 6);
  CHECK_FALSE(result.error);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 3);  // no retry of the refused one
  CHECK(ids_in_order(f.receiver.accepted()) == std::vector<std::int64_t>{1, 2, 5, 6});
  const auto lines = read_lines(f.options.dead_letter_path);
  REQUIRE(lines.size() == 2);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    rapidjson::Document doc;
    doc.Parse(lines[i].data(), lines[i].size());
    REQUIRE_FALSE(doc.HasParseError());
    CHECK(doc["status"].GetUint() == 400);
    CHECK(doc["replayId"].GetInt64() == static_cast<std::int64_t>(3 + i));
    CHECK(std::string(doc["connection"].GetString()) == "acme");
    CHECK(std::string(doc["channel"].GetString()) == "/topic/Orders");
    CHECK(doc["event"]["data"]["event"]["replayId"].GetInt64() == static_cast<std::int64_t>(3 + i));
    const std::string response = doc["response"].GetString();
    CHECK(response.find("bad event") != std::string::npos);
    CHECK(response.find('\n') == std::string::npos);
    CHECK(lines[i].find(signing_key) == std::string::npos);
    CHECK(lines[i].find("AQ0secretsecret") == std::string::npos);
  }
  const auto figures = f.sink->figures();
  CHECK(figures.dead_letters == 2);
  CHECK(figures.events == 4);
  CHECK(figures.retries == 0);
  CHECK(figures.failures == 1);
  CHECK((std::filesystem::status(f.options.dead_letter_path).permissions() &
         std::filesystem::perms::others_read) == std::filesystem::perms::none);
}

TEST_CASE("bounded retries end in the dead-letter file, then the batch goes on") {
  fixture f;
  f.options.dead_letter_path = f.dir / "dead.jsonl";
  f.options.max_retries = 2;
  f.options.max_batch_events = 3;
  f.start();
  f.receiver.fail_next(3, 500);
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 5));
  CHECK(result.handled == 5);
  CHECK_FALSE(result.error);
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 4);  // 1 + 2 retries of events 1-3, then events 4-5
  CHECK(ids_in(requests[3].body) == std::vector<std::int64_t>{4, 5});
  const auto lines = read_lines(f.options.dead_letter_path);
  REQUIRE(lines.size() == 3);
  rapidjson::Document doc;
  doc.Parse(lines[0].data(), lines[0].size());
  CHECK(doc["status"].GetUint() == 500);
  CHECK(doc["attempts"].GetUint() == 3);
  CHECK(f.sink->figures().dead_letters == 3);
}

TEST_CASE("without a dead-letter file a refused request fails the batch after the confirmed events") {
  fixture f;
  f.options.max_batch_events = 2;
  f.start();
  sfstream::testing::webhook_behaviour ok;
  f.receiver.plan(1, ok);
  f.receiver.fail_next(1, 422);
  auto result = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 6));
  CHECK(result.calls == 1);
  CHECK(result.handled == 2);
  CHECK(result.error.code == make_error_code(errc::http_status));
  CHECK(result.error.cause == sfstream::make_http_status_code(422));
  CHECK_FALSE(sfstream::is_retryable(result.error));
  CHECK(f.receiver.requests().size() == 2);
  CHECK(f.sink->figures().backlog == 0);

  SUBCASE("and out of retries it is retries_exhausted") {
    fixture g;
    g.options.max_retries = 1;
    g.start();
    g.receiver.fail_next(5, 500);
    auto r = g.deliver("/topic/Orders", make_events("/topic/Orders", 1, 2));
    CHECK(r.handled == 0);
    CHECK(r.error.code == make_error_code(errc::retries_exhausted));
    CHECK(g.receiver.requests().size() == 2);
  }
}

TEST_CASE("stop during a retry wait ends the batch at once with the confirmed count") {
  fixture f;
  f.options.backoff_initial = 60s;
  f.options.backoff_max = 60s;
  f.options.max_batch_events = 2;
  f.start();
  sfstream::testing::webhook_behaviour ok;
  f.receiver.plan(1, ok);
  f.receiver.fail_next(1, 429, "3600");
  delivery d(*f.sink, "acme", "/topic/Orders", make_events("/topic/Orders", 1, 4));
  REQUIRE(f.receiver.wait_for(2));
  CHECK_FALSE(d.finished_within(200ms));  // waiting for the retry
  const auto stopped_at = std::chrono::steady_clock::now();
  f.sink->stop();
  REQUIRE(d.finished_within(2s));
  CHECK(std::chrono::steady_clock::now() - stopped_at < 1s);
  const auto result = d.wait();
  CHECK(result.calls == 1);
  CHECK(result.handled == 2);
  CHECK(result.error.code == make_error_code(errc::cancelled));
  CHECK(f.receiver.requests().size() == 2);

  SUBCASE("a delivery after stop is tried once and never waits for a retry") {
    f.receiver.fail_next(1, 500);
    auto r = f.deliver("/topic/Orders", make_events("/topic/Orders", 3, 2));
    CHECK(r.handled == 0);
    CHECK(r.error.code == make_error_code(errc::cancelled));
    CHECK(r.elapsed < 2s);
    auto healthy = f.deliver("/topic/Orders", make_events("/topic/Orders", 3, 2));
    CHECK(healthy.handled == 2);
    CHECK_FALSE(healthy.error);
  }
}

TEST_CASE("an event reaches the receiver twice only after a request that was not confirmed") {
  fixture f;
  f.options.request_timeout = 300ms;
  f.options.max_batch_events = 5;
  f.start();
  // The third request is answered too late: the sink gave up on it and sent it again.
  sfstream::testing::webhook_behaviour ok;
  f.receiver.plan(2, ok);
  f.receiver.slow_next(1, 1500ms);
  auto result = f.deliver("/event/Order__e", make_events("/event/Order__e", 1, 20));
  CHECK(result.handled == 20);
  REQUIRE(f.receiver.wait_for(f.receiver.requests().size(), 5s));
  const auto requests = f.receiver.requests();
  REQUIRE(requests.size() == 5);
  const auto ids = ids_received(requests);
  for (std::int64_t id = 1; id <= 20; ++id) {
    CAPTURE(id);
    CHECK(ids.count(id) == (id >= 11 && id <= 15 ? 2u : 1u));
  }
  CHECK(requests[2].idempotency_key == requests[3].idempotency_key);
  // What the receiver confirmed covers every event in order, the late one included.
  CHECK(f.sink->figures().retries == 1);
}

TEST_CASE("channels post in parallel while each channel keeps one request in flight, in order") {
  fixture f;
  f.options.max_batch_events = 1;
  f.start();
  f.receiver.slow_next(1, 800ms);  // the first request to arrive is slow
  delivery slow(*f.sink, "acme", "/topic/A", make_events("/topic/A", 1, 3));
  REQUIRE(f.receiver.wait_for(0, 1s));
  std::this_thread::sleep_for(100ms);
  delivery fast(*f.sink, "acme", "/topic/B", make_events("/topic/B", 100, 3));
  const auto b = fast.wait(5s);
  CHECK(b.handled == 3);
  CHECK(b.elapsed < 700ms);  // not held behind /topic/A's slow request
  CHECK(slow.wait(5s).handled == 3);
  // Per channel: strictly in order, and a request starts only after the previous was answered.
  std::map<std::string, std::vector<sfstream::testing::webhook_request>> by_channel;
  for (const auto& r : f.receiver.requests()) {
    rapidjson::Document doc;
    doc.Parse(r.body.data(), r.body.size());
    by_channel[doc["channel"].GetString()].push_back(r);
  }
  CHECK(ids_in_order(by_channel["/topic/A"]) == range(1, 3));
  CHECK(ids_in_order(by_channel["/topic/B"]) == range(100, 3));
  const auto& a = by_channel["/topic/A"];
  REQUIRE(a.size() == 3);
  CHECK(a[1].arrived - a[0].arrived >= 800ms);
}

TEST_CASE("HTTPS with a custom CA is verified, and a certificate from an unknown CA fails") {
  const auto certs = sfstream::emulator::net::make_certificates({"127.0.0.1"});
  const sfstream::emulator::net::server_tls tls{certs.certificate_pem, certs.private_key_pem};
  fixture f(tls);
  const auto ca = f.dir / "ca.pem";
  std::ofstream(ca) << certs.ca_certificate_pem;
  f.options.network.ca_file = ca.string();
  REQUIRE(f.options.url.rfind("https://", 0) == 0);
  f.start();
  CHECK(f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 2)).handled == 2);
  CHECK(f.receiver.accepted().size() == 1);

  fixture g(tls);
  g.options.max_retries = 1;
  g.start();
  auto r = g.deliver("/topic/Orders", make_events("/topic/Orders", 1, 2));
  CHECK(r.handled == 0);
  CHECK(r.error.code == make_error_code(errc::retries_exhausted));
  CHECK(g.receiver.requests().empty());
  REQUIRE(g.sink->figures().last_error);
  CHECK(g.sink->figures().last_error->find("certificate") != std::string::npos);
}

TEST_CASE("the signing key appears in no log line, error, figure or dead letter") {
  fixture f;
  f.options.dead_letter_path = f.dir / "dead.jsonl";
  f.options.max_retries = 1;
  f.start();
  const std::string echo = std::string("your key is ") + signing_key;
  f.receiver.fail_next(2, 500, std::nullopt, echo);
  f.receiver.fail_next(1, 403, std::nullopt, echo);
  CHECK(f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 1)).handled == 1);
  CHECK(f.deliver("/topic/Orders", make_events("/topic/Orders", 2, 1)).handled == 1);
  fixture g;
  g.options.max_retries = 0;
  g.start();
  g.receiver.fail_next(1, 401, std::nullopt, echo);
  auto failed = g.deliver("/topic/Orders", make_events("/topic/Orders", 1, 1));
  REQUIRE(failed.error);
  CHECK(failed.error.to_string().find(signing_key) == std::string::npos);
  CHECK(failed.error.to_string().find("401") != std::string::npos);
  std::vector<std::string> texts = f.logs();
  for (const auto& l : g.logs()) texts.push_back(l);
  for (const auto& l : read_lines(f.options.dead_letter_path)) texts.push_back(l);
  if (auto e = f.sink->figures().last_error) texts.push_back(*e);
  if (auto e = g.sink->figures().last_error) texts.push_back(*e);
  CHECK(texts.size() >= 5);
  for (const auto& t : texts) {
    CAPTURE(t);
    CHECK(t.find(signing_key) == std::string::npos);
  }
}

TEST_CASE("webhook options are validated before anything is sent") {
  boost::asio::thread_pool pool{1};
  auto make = [&](const webhook_options& o) {
    sfstream::error_info why;
    auto sink = webhook_sink::create(pool.get_executor(), o, &why);
    CHECK_FALSE(sink);
    CHECK(why.to_string().find("0123456789") == std::string::npos);
    return why.code;
  };
  webhook_options o;
  o.signing_key = "0123456789abcdef";
  o.url = "not a url";
  CHECK(make(o) == make_error_code(errc::invalid_url));
  o.url = "http://example.com/hook";
  CHECK(make(o) == make_error_code(errc::insecure_url));
  o.url = "https://example.com/hook";
  o.max_batch_events = 0;
  CHECK(make(o) == make_error_code(errc::invalid_config));
  o.max_batch_events = 10;
  o.max_batch_bytes = 0;
  CHECK(make(o) == make_error_code(errc::invalid_config));
  o.max_batch_bytes = 10;
  o.signing_key.clear();
  CHECK(make(o) == make_error_code(errc::invalid_config));
  o.signing_key = "0123456789abcdef";
  o.network.proxy = sfstream::proxy_options{"https://proxy.example.com:3128", "", ""};
  CHECK(make(o) == make_error_code(errc::invalid_url));
  o.network.proxy.reset();
  CHECK_FALSE(sfstream::serve::validate(o));
  pool.join();
}

TEST_CASE("an empty delivery is done at once with nothing sent") {
  fixture f;
  f.start();
  auto result = f.deliver("/topic/Orders", {});
  CHECK(result.calls == 1);
  CHECK(result.handled == 0);
  CHECK_FALSE(result.error);
  CHECK(f.receiver.requests().empty());
}

TEST_CASE("a dead letter is one parseable line for a pretty-printed event and for text that is not JSON") {
  fixture f;
  f.options.dead_letter_path = f.dir / "dead.jsonl";
  f.start();
  f.receiver.fail_next(1, 400, std::nullopt, std::string(199, 'x') + "\xc3\xa9 and more");
  std::vector<event> events;
  events.emplace_back("/topic/Orders", 1,
                      "{\n  \"channel\": \"/topic/Orders\",\n  \"data\": {\"event\": {\"replayId\": 1}}\n}");
  events.emplace_back("/topic/Orders", 2, "not json {");
  CHECK(f.deliver("/topic/Orders", events).handled == 2);
  const auto lines = read_lines(f.options.dead_letter_path);
  REQUIRE(lines.size() == 2);
  rapidjson::Document first;
  first.Parse(lines[0].data(), lines[0].size());
  REQUIRE_FALSE(first.HasParseError());
  CHECK(first["event"]["data"]["event"]["replayId"].GetInt64() == 1);
  // The excerpt stops before a character it would cut in two.
  const std::string response = first["response"].GetString();
  CHECK(response == std::string(199, 'x') + "...");
  rapidjson::Document second;
  second.Parse(lines[1].data(), lines[1].size());
  REQUIRE_FALSE(second.HasParseError());
  CHECK(std::string(second["event"].GetString()) == "not json {");
}

TEST_CASE("a receiver that is not listening is a network failure, retried up to the bound") {
  fixture f;
  // A port that was free a moment ago: nothing listens there.
  std::uint16_t port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  f.options.url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  f.options.max_retries = 2;
  f.start();
  auto r = f.deliver("/topic/Orders", make_events("/topic/Orders", 1, 3));
  CHECK(r.handled == 0);
  CHECK(r.error.code == make_error_code(errc::retries_exhausted));
  CHECK(r.error.cause == make_error_code(errc::connection_failed));
  const auto figures = f.sink->figures();
  CHECK(figures.failures == 3);
  CHECK(figures.retries == 2);
  CHECK(figures.events == 0);
  CHECK(figures.backlog == 0);
  CHECK(figures.latency_count == 0);
}

TEST_CASE("under random faults on many channels every event is confirmed once, in order, and repeats only follow unconfirmed requests") {
  fixture f;
  f.options.max_batch_events = 7;
  f.options.backoff_initial = 1ms;
  f.options.backoff_max = 5ms;
  f.options.request_timeout = 2s;
  f.start();
  // A fixed pseudo-random plan: about a third of the requests fail in one of five ways.
  std::mt19937 random(20261202);
  for (int i = 0; i < 400; ++i) {
    sfstream::testing::webhook_behaviour b;
    switch (random() % 12) {
      case 0:
        b.status = 500;
        break;
      case 1:
        b.status = 429;
        b.retry_after = "0";
        break;
      case 2:
        b.what = sfstream::testing::webhook_behaviour::kind::close;
        break;
      case 3:
        b.what = sfstream::testing::webhook_behaviour::kind::partial;
        b.body = "accepted but cut";
        break;
      default:
        b.body = "ok";
        b.delay = std::chrono::milliseconds(random() % 3);
    }
    f.receiver.plan(1, b);
  }
  const std::vector<std::string> channels = {"/topic/A", "/event/B__e", "/data/CChangeEvent",
                                             "/u/d", "/topic/E"};
  constexpr std::int64_t per_channel = 120;
  std::vector<std::thread> producers;
  std::atomic<int> failures{0};
  for (const auto& channel : channels) {
    producers.emplace_back([&, channel] {
      std::int64_t next = 1;
      std::mt19937 sizes(static_cast<unsigned>(std::hash<std::string>{}(channel)));
      while (next <= per_channel) {
        const auto n = std::min<std::int64_t>(1 + sizes() % 20, per_channel - next + 1);
        delivery d(*f.sink, "acme", channel, make_events(channel, next, static_cast<std::size_t>(n)));
        const auto r = d.wait(30s);
        if (r.error || r.handled != static_cast<std::size_t>(n) || r.calls != 1) ++failures;
        next += n;
      }
    });
  }
  for (auto& t : producers) t.join();
  CHECK(failures == 0);
  // Confirmed requests, per channel: every event exactly once and in order.
  std::map<std::string, std::vector<sfstream::testing::webhook_request>> confirmed, unconfirmed;
  const auto all = f.receiver.requests();
  for (const auto& r : all) {
    rapidjson::Document doc;
    doc.Parse(r.body.data(), r.body.size());
    REQUIRE_FALSE(doc.HasParseError());
    CHECK(r.signature_valid);
    (r.answered >= 200 && r.answered < 300 ? confirmed : unconfirmed)[doc["channel"].GetString()]
        .push_back(r);
  }
  for (const auto& channel : channels) {
    CAPTURE(channel);
    CHECK(ids_in_order(confirmed[channel]) == range(1, per_channel));
    // An event seen more than once was in that many unconfirmed requests, no more.
    const auto seen = ids_received(confirmed[channel]);
    const auto repeats = ids_received(unconfirmed[channel]);
    const auto everything = [&] {
      auto m = seen;
      m.insert(repeats.begin(), repeats.end());
      return m;
    }();
    for (std::int64_t id = 1; id <= per_channel; ++id) {
      CHECK(everything.count(id) == 1 + repeats.count(id));
    }
  }
  const auto figures = f.sink->figures();
  CHECK(figures.events == channels.size() * per_channel);
  CHECK(figures.backlog == 0);
  CHECK(figures.retries > 0);
  // Every request beyond the confirmed ones is a retry, or the transport's immediate resend
  // of a request whose kept-alive connection the receiver closed before answering.
  CHECK(figures.retries <= all.size() - figures.batches);
  CHECK(figures.batches == confirmed_count(confirmed));
}

// Events refer to the reply they arrived in: the reply parser records where each message and
// its data lie, the session hands those spans on with the shared body, and an event reads its
// text from that body for as long as any copy of it lives.
#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code through it

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "bayeux/message.hpp"
#include "bayeux/script.hpp"
#include "sfstream/event.hpp"

namespace {

using namespace sfstream::bayeux;
using sfstream::bayeux::test::connect_ok_message;
using sfstream::bayeux::test::event_message;
using sfstream::bayeux::test::script;

// A reply as a pretty printer writes it: whitespace of every kind around every token.
const std::string pretty_first =
    "{\n\t\"data\" :\r\n {\n   \"event\" : { \"replayId\" :\t17 , \"type\" : \"created\" } ,\n"
    "   \"sobject\" : { \"Name\" : \"a } ] \\\" {\" , \"n\" : [ 1 , 2.50 , -0 ] }\n } ,\n"
    "  \"channel\" : \"/topic/T\"\n}";
const std::string pretty_first_data =
    "{\n   \"event\" : { \"replayId\" :\t17 , \"type\" : \"created\" } ,\n"
    "   \"sobject\" : { \"Name\" : \"a } ] \\\" {\" , \"n\" : [ 1 , 2.50 , -0 ] }\n }";
const std::string pretty_second = "{ \"channel\" : \"/u/x\" , \"data\" : \"text\" }";
const std::string pretty_third = "{ \"data\" :\n 5 , \"channel\" : \"/u/x\" }";
const std::string pretty_fourth =
    "{\r\n \"channel\" : \"/meta/connect\" ,\n \"id\" : \"4\" , \"successful\" : true ,"
    " \"advice\" : { \"timeout\" : 110000 } }";
const std::string pretty_reply = " \n[ \n" + pretty_first + " ,\n\t" + pretty_second + "\r\n," +
                                 pretty_third + " , " + pretty_fourth + "\n] \n";

std::string_view cut(const std::string& body, const text_span& span) {
  return span.of(body);
}

// Drives a script to a connected session subscribed to `channel` and returns the id of the
// outstanding connect.
std::string connected(script& t, const std::string& channel) {
  REQUIRE_FALSE(t.s.subscribe(channel, -1, t.now));
  t.connect();
  t.clear();
  return t.connect_id();
}

// Answers the outstanding connect with `body`, handed over as a shared buffer.
void reply_shared(script& t, const std::shared_ptr<const std::string>& body) {
  t.outstanding[1].reset();
  t.s.on_reply(lane::long_poll, 200, body, t.now);
  t.drain();
}

std::vector<deliver> deliveries(script& t) {
  std::vector<deliver> out;
  for (int guard = 0; guard < 1000; ++guard) {
    auto d = t.find<deliver>();
    if (!d) break;
    out.push_back(std::move(*d));
  }
  return out;
}

}  // namespace

TEST_CASE("message and data spans are exact in a pretty-printed reply") {
  auto parsed = parse_reply_spans(pretty_reply);
  REQUIRE(parsed.has_value());
  const auto& m = parsed.value();
  REQUIRE(m.size() == 4);
  CHECK(cut(pretty_reply, m[0].object) == pretty_first);
  CHECK(cut(pretty_reply, m[0].data) == pretty_first_data);
  CHECK(cut(pretty_reply, m[1].object) == pretty_second);
  CHECK(cut(pretty_reply, m[1].data) == "\"text\"");
  CHECK(cut(pretty_reply, m[2].object) == pretty_third);
  CHECK(cut(pretty_reply, m[2].data) == "5");
  CHECK(cut(pretty_reply, m[3].object) == pretty_fourth);
  CHECK(m[3].data.empty());
  CHECK_FALSE(m[3].has_data);
  for (const auto& message : m) CHECK(message.json.empty());

  CHECK(m[0].channel == "/topic/T");
  CHECK(m[0].replay_id == 17);
  CHECK(m[0].has_replay_id);
  CHECK(m[1].has_data);
  CHECK_FALSE(m[1].has_replay_id);
  CHECK(m[3].id == "4");
  CHECK(m[3].successful == true);
  REQUIRE(m[3].advice.has_value());
  CHECK(m[3].advice->timeout == 110000);
}

TEST_CASE("parse_reply fills each message's text with the bytes its span covers") {
  auto spans = parse_reply_spans(pretty_reply);
  auto copies = parse_reply(pretty_reply);
  REQUIRE(spans.has_value());
  REQUIRE(copies.has_value());
  REQUIRE(copies->size() == spans->size());
  for (std::size_t i = 0; i < spans->size(); ++i) {
    CHECK(copies.value()[i].json == cut(pretty_reply, spans.value()[i].object));
    CHECK(copies.value()[i].object == spans.value()[i].object);
    CHECK(copies.value()[i].data == spans.value()[i].data);
  }
}

TEST_CASE("a single-object reply spans the object without the whitespace around it") {
  const std::string body = "\n { \"channel\" : \"/u/x\" , \"data\" : { } } \t";
  auto parsed = parse_reply_spans(body);
  REQUIRE(parsed.has_value());
  REQUIRE(parsed->size() == 1);
  CHECK(cut(body, parsed.value()[0].object) == "{ \"channel\" : \"/u/x\" , \"data\" : { } }");
  CHECK(cut(body, parsed.value()[0].data) == "{ }");
}

TEST_CASE("the first of duplicate data members is the data span and escaped keys count") {
  const std::string body = R"([{"d\u0061ta":{"n":1},"data":{"n":2},"channel":"/u/x"}])";
  auto parsed = parse_reply_spans(body);
  REQUIRE(parsed.has_value());
  CHECK(cut(body, parsed.value()[0].data) == R"({"n":1})");
  CHECK(parsed.value()[0].has_data);
}

TEST_CASE("the replay id is read exactly and out-of-range or non-integer ids are noticed") {
  struct id_case {
    std::string text;
    std::optional<std::int64_t> expected;
  };
  for (const id_case& c :
       {id_case{"9223372036854775807", INT64_MAX}, id_case{"-9223372036854775808", INT64_MIN},
        id_case{"9223372036854775808", std::nullopt}, id_case{"18446744073709551616", std::nullopt},
        id_case{"13.0", std::nullopt}, id_case{"1e2", std::nullopt},
        id_case{"\"42\"", std::nullopt}, id_case{"\"4 2\"", std::nullopt},
        id_case{"null", std::nullopt}, id_case{"[1]", std::nullopt},
        id_case{"{\"a\":1}", std::nullopt}}) {
    CAPTURE(c.text);
    auto parsed =
        parse_reply_spans(R"([{"channel":"/u/x","data":{"event":{"replayId":)" + c.text + "}}}]");
    REQUIRE(parsed.has_value());
    CHECK(parsed.value()[0].has_replay_id);
    CHECK(parsed.value()[0].replay_id == c.expected);
  }
}

TEST_CASE("numeric message ids keep their decimal text as a JSON writer prints it") {
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {"42", "42"},
           {"-7", "-7"},
           {"-0", "0"},
           {"18446744073709551615", "18446744073709551615"},
           {"1.50", "1.5"},
           {"1e2", "100.0"}}) {
    CAPTURE(text);
    auto parsed = parse_reply(R"([{"channel":"/meta/connect","id":)" + text + "}]");
    REQUIRE(parsed.has_value());
    CHECK(parsed.value()[0].id == expected);
  }
}

TEST_CASE("the span parser refuses what the reply parser refuses, with the same reason") {
  for (const std::string& body : {std::string(""),
                                  std::string("["),
                                  std::string("{"),
                                  std::string("[1]"),
                                  std::string("[{},2]"),
                                  std::string("\"x\""),
                                  std::string("5 x"),
                                  std::string("[{\"channel\":5}]"),
                                  std::string("[{\"channel\":null}]"),
                                  std::string("[{}]x"),
                                  std::string("[{\"successful\":\"yes\"}]"),
                                  std::string("[{\"advice\":3}]"),
                                  std::string("[{\"advice\":[]}]"),
                                  std::string("null"),
                                  std::string("[{\"id\":[1]}]"),
                                  std::string("[{\"id\":true}]"),
                                  std::string("[{\"clientId\":1}]"),
                                  std::string("[{\"channel\":\"/u/x\"},[{}]]"),
                                  std::string(100000, '['),
                                  std::string("[{\"data\":1e400}]")}) {
    CAPTURE(body.substr(0, 40));
    auto spans = parse_reply_spans(body);
    auto copies = parse_reply(body);
    REQUIRE_FALSE(spans.has_value());
    REQUIRE_FALSE(copies.has_value());
    CHECK(spans.error().code == sfstream::errc::protocol_error);
    CHECK_FALSE(spans.error().diag.server_text.empty());
    CHECK(spans.error().diag.server_text == copies.error().diag.server_text);
  }
  auto r = parse_reply_spans("[{\"channel\":\"/u/x\"},7,{\"channel\":5}]");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().diag.server_text == "reply element 1 is not an object");
  r = parse_reply_spans("[{\"channel\":\"/u/x\"},{\"successful\":1,\"channel\":5}]");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().diag.server_text == "reply element 1: \"successful\" is not a boolean");
}

TEST_CASE("an event's json bytes are the reply's bytes for that message") {
  script t;
  const auto id = connected(t, "/topic/T");
  const std::string body = "[" + pretty_first + " ,\n " + connect_ok_message(id) + "]";
  auto shared = std::make_shared<const std::string>(body);
  reply_shared(t, shared);
  const auto d = deliveries(t);
  REQUIRE(d.size() == 1);
  CHECK(d[0].event.json() == pretty_first);
  CHECK(d[0].event.data_json() == pretty_first_data);
  CHECK(d[0].event.replay_id == 17);
  CHECK(d[0].event.json().data() == shared->data() + 1);
}

TEST_CASE("the events of one reply share its body, which is never copied") {
  script t;
  const auto id = connected(t, "/topic/T");
  const std::vector<std::string> texts{event_message("/topic/T", 1), event_message("/topic/T", 2),
                                       event_message("/topic/T", 3)};
  const std::string body =
      "[" + texts[0] + "," + texts[1] + "," + texts[2] + "," + connect_ok_message(id) + "]";
  auto shared = std::make_shared<const std::string>(body);
  const char* const first = shared->data();
  const char* const last = first + shared->size();
  reply_shared(t, shared);
  const auto d = deliveries(t);
  REQUIRE(d.size() == 3);
  std::multiset<std::int64_t> ids;
  for (std::size_t i = 0; i < d.size(); ++i) {
    CHECK(d[i].event.body == shared);
    CHECK(d[i].event.json() == texts[i]);
    CHECK(d[i].event.json().data() >= first);
    CHECK(d[i].event.json().data() + d[i].event.json().size() <= last);
    ids.insert(d[i].event.replay_id.value_or(-1));
  }
  CHECK(ids == std::multiset<std::int64_t>{1, 2, 3});
  // The test's handle, the three deliveries, and nothing else: the session kept none.
  CHECK(shared.use_count() == 4);

  std::vector<sfstream::event> events;
  for (const auto& x : d) {
    events.emplace_back(x.event.channel, x.event.replay_id, x.event.body, x.event.json(),
                        x.event.data_json());
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i].buffer().get() == shared.get());
    CHECK(events[i].json().data() == d[i].event.json().data());
    CHECK(events[i].data_json() == d[i].event.data_json());
  }
}

TEST_CASE("an event's text outlives the reply, the session and every other copy") {
  std::optional<sfstream::event> kept;
  const std::string text = event_message("/topic/T", 9, R"({"Name":"kept"})");
  {
    script t;
    const auto id = connected(t, "/topic/T");
    auto shared =
        std::make_shared<const std::string>("[" + text + "," + connect_ok_message(id) + "]");
    reply_shared(t, shared);
    auto d = deliveries(t);
    REQUIRE(d.size() == 1);
    sfstream::event original(d[0].event.channel, d[0].event.replay_id, d[0].event.body,
                             d[0].event.json(), d[0].event.data_json());
    kept = original;  // A copy; the original, the delivery, the reply and the session go away.
  }
  REQUIRE(kept.has_value());
  CHECK(kept->buffer().use_count() == 1);
  CHECK(kept->json() == text);
  CHECK(kept->channel() == "/topic/T");
  CHECK(kept->replay_id() == 9);
  sfstream::error_info why;
  const auto view = kept->as_pushtopic(&why);
  CHECK_FALSE(why);
  CHECK(view.sobject_json == R"({"Name":"kept"})");
}

TEST_CASE("the string_view reply input gives the same events as a shared body") {
  script a;
  script b;
  const auto id_a = connected(a, "/topic/T");
  const auto id_b = connected(b, "/topic/T");
  REQUIRE(id_a == id_b);
  const std::string body = "[" + event_message("/topic/T", 5) + "," + event_message("/topic/T", 6) +
                           "," + connect_ok_message(id_a) + "]";
  a.reply(lane::long_poll, body);
  reply_shared(b, std::make_shared<const std::string>(body));
  const auto da = deliveries(a);
  const auto db = deliveries(b);
  REQUIRE(da.size() == 2);
  REQUIRE(db.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(da[i].event.json() == db[i].event.json());
    CHECK(da[i].event.data_json() == db[i].event.data_json());
    CHECK(da[i].event.replay_id == db[i].event.replay_id);
    CHECK(da[i].event.channel == db[i].event.channel);
  }
}

TEST_CASE("a moved-from event is empty and its move target reads the text") {
  sfstream::event a("/u/x", 3, R"({"data":{"k":1},"channel":"/u/x"})");
  const char* const text = a.json().data();
  sfstream::event b(std::move(a));
  CHECK(b.json().data() == text);
  CHECK(b.data_json() == R"({"k":1})");
  CHECK(a.json().empty());       // NOLINT(bugprone-use-after-move): the moved-from state is the
  CHECK(a.data_json().empty());  // NOLINT(bugprone-use-after-move): behaviour under test.
  CHECK(a.buffer() == nullptr);  // NOLINT(bugprone-use-after-move)
  sfstream::event c;
  c = std::move(b);
  CHECK(c.json().data() == text);
  CHECK(b.json().empty());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("long strings decode exactly with an escape, a control byte or a high byte anywhere") {
  const std::string plain(40, 'a');
  for (std::size_t at = 0; at <= plain.size(); ++at) {
    CAPTURE(at);
    const std::string head = plain.substr(0, at);
    const std::string tail = plain.substr(at);
    const std::string prefix = R"([{"channel":"/meta/subscribe","subscription":")";

    auto escaped = parse_reply_spans(prefix + head + "\\\"\\u00e9" + tail + "\"}]");
    REQUIRE(escaped.has_value());
    CHECK(escaped.value()[0].subscription == head + "\"\xc3\xa9" + tail);

    auto high = parse_reply_spans(prefix + head + "\xff" + tail + "\"}]");
    REQUIRE(high.has_value());
    CHECK(high.value()[0].subscription == head + "\xff" + tail);

    // A raw control byte is refused where a DOM parser refuses it, at the same offset.
    const std::string bad = prefix + head + "\x01" + tail + "\"}]";
    rapidjson::Document dom;
    dom.Parse<rapidjson::kParseIterativeFlag>(bad.data(), bad.size());
    REQUIRE(dom.HasParseError());
    auto refused = parse_reply_spans(bad);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().diag.server_text == std::string("the reply is not valid JSON: ") +
                                                  rapidjson::GetParseError_En(dom.GetParseError()) +
                                                  " at offset " +
                                                  std::to_string(dom.GetErrorOffset()));

    // Cut short inside the string.
    auto cut_short = parse_reply_spans(prefix + head);
    REQUIRE_FALSE(cut_short.has_value());
    CHECK(cut_short.error().code == sfstream::errc::protocol_error);
  }
}

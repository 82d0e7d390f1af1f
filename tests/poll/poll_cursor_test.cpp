// The polling cursor and the poll query, without a network: what is new, what is a repeat,
// what a late commit is, how the window stays bounded, and the text the store keeps.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "sfstream/event.hpp"
#include "sfstream/rest.hpp"
#include "src/poll/poll_cursor.hpp"
#include "src/poll/poll_query.hpp"

using namespace std::chrono_literals;
using sfstream::poll_detail::poll_cursor;
using sfstream::poll_detail::stamp;

namespace {

const std::string id_a = "001000000000001AAA";
const std::string id_b = "001000000000002AAA";
const std::string id_c = "001000000000003AAA";
constexpr std::int64_t t0 = 1'764'635'465'000;  // 2025-12-02T00:31:05.000Z

sfstream::sobject_record record_of(std::string id, std::string modstamp, std::string created, bool deleted,
                                   std::string name = "Acme") {
  sfstream::sobject_record r;
  r.type = "Account";
  r.id = id;
  r.fields.emplace_back("Id", sfstream::field_value::make_string(id));
  r.fields.emplace_back("SystemModstamp", sfstream::field_value::make_string(std::move(modstamp)));
  r.fields.emplace_back("CreatedDate", sfstream::field_value::make_string(std::move(created)));
  r.fields.emplace_back("IsDeleted", sfstream::field_value::make_bool(deleted));
  r.fields.emplace_back("Name", sfstream::field_value::make_string(std::move(name)));
  return r;
}

}  // namespace

TEST_CASE("Salesforce datetimes parse in the Z, +0000 and +00:00 forms, with or without milliseconds") {
  using sfstream::poll_detail::parse_datetime_ms;
  CHECK(parse_datetime_ms("2025-12-02T00:31:05.000Z") == t0);
  CHECK(parse_datetime_ms("2025-12-02T00:31:05.000+0000") == t0);
  CHECK(parse_datetime_ms("2025-12-02T01:31:05.000+01:00") == t0);
  CHECK(parse_datetime_ms("2025-12-01T23:31:05-0100") == t0);
  CHECK(parse_datetime_ms("2025-12-02T00:31:05.5Z") == t0 + 500);
  CHECK_FALSE(parse_datetime_ms("2025-12-02T00:31:05"));
  CHECK_FALSE(parse_datetime_ms("2025-12-02T00:31:05.000+00"));
  CHECK_FALSE(parse_datetime_ms("yesterday at noon"));
  CHECK(sfstream::poll_detail::soql_datetime(t0 + 999) == "2025-12-02T00:31:05Z");
}

TEST_CASE("records that share a SystemModstamp are each new once and never again") {
  poll_cursor c(0ms);
  CHECK_FALSE(c.lower_bound());
  CHECK(c.is_new({t0, id_a}));
  c.mark_emitted({t0, id_a});
  CHECK(c.lower_bound() == t0);
  CHECK_FALSE(c.is_new({t0, id_a}));
  CHECK(c.is_new({t0, id_b}));
  c.mark_emitted({t0, id_b});
  CHECK_FALSE(c.is_new({t0, id_b}));
  // The same record written again is a new version.
  CHECK(c.is_new({t0 + 1, id_a}));
}

TEST_CASE("a record committed late inside the overlap window is new, and counted late") {
  poll_cursor c(60s);
  c.mark_emitted({t0, id_a});
  c.mark_emitted({t0 + 30'000, id_b});
  CHECK(c.lower_bound() == t0 - 30'000);
  const stamp late{t0 + 10'000, id_c};
  CHECK(c.is_new(late));
  CHECK(c.is_late(late));
  c.mark_emitted(late);
  CHECK_FALSE(c.is_new(late));
  CHECK(c.newest() == stamp{t0 + 30'000, id_b});
}

TEST_CASE("the window set holds only the versions the next query reads again") {
  poll_cursor c(10s);
  for (int i = 0; i < 100; ++i) c.mark_emitted({t0 + i * 1000, id_a});
  // newest t0+99s, window back to t0+89s: eleven versions.
  CHECK(c.window_size() == 11);
  CHECK(c.lower_bound() == t0 + 89'000);
  CHECK_FALSE(c.is_new({t0 + 50'000, id_b}));  // before the bound: not read again, not new
}

TEST_CASE("a cursor started after a record drops it and everything before, and keeps later ones") {
  auto c = poll_cursor::after({t0, id_b}, 60s);
  CHECK(c.lower_bound() == t0);
  CHECK_FALSE(c.is_new({t0, id_a}));
  CHECK_FALSE(c.is_new({t0, id_b}));
  CHECK(c.is_new({t0, id_c}));
  CHECK(c.is_new({t0 + 1, id_a}));
  auto since = poll_cursor::after({t0, ""}, 60s);
  CHECK(since.is_new({t0, id_a}));
  CHECK_FALSE(since.is_new({t0 - 1, id_a}));
}

TEST_CASE("the cursor text round trips and a longer overlap never reaches behind what the set covers") {
  poll_cursor c(5s);
  c.mark_emitted({t0, id_a});
  c.mark_emitted({t0 + 8'000, id_b});
  c.mark_emitted({t0 + 8'000, id_c});
  const std::string text = c.encode();
  CHECK(text.rfind("poll1 ", 0) == 0);
  std::string why;
  auto back = poll_cursor::decode(text, 5s, why);
  REQUIRE_MESSAGE(back, why);
  CHECK(back->encode() == text);
  CHECK(back->newest() == c.newest());
  CHECK_FALSE(back->is_new({t0 + 8'000, id_b}));
  auto wider = poll_cursor::decode(text, 60s, why);
  REQUIRE(wider);
  CHECK(wider->lower_bound() == c.lower_bound());
  auto narrower = poll_cursor::decode(text, 0s, why);
  REQUIRE(narrower);
  CHECK(narrower->lower_bound() == t0 + 8'000);
  CHECK(narrower->window_size() == 2);
}

TEST_CASE("text that is not a polling cursor is refused with a reason") {
  std::string why;
  for (const char* bad : {"", "13", "poll1", "poll2 seen=", "poll1 seen=12", "poll1 newest=x/001000000000001AAA seen=",
                          "poll1 seen=1/not-an-id", "poll1 what=1 seen="}) {
    INFO(bad);
    why.clear();
    CHECK_FALSE(poll_cursor::decode(bad, 0s, why));
    CHECK_FALSE(why.empty());
  }
  CHECK(poll_cursor::decode("poll1 seen=", 0s, why));
}

TEST_CASE("the poll query selects the system fields once, bounds SystemModstamp and wraps the filter") {
  using sfstream::poll_detail::build_poll_soql;
  CHECK(build_poll_soql("Account", {"Name", "id", "Industry"}, "", std::nullopt) ==
        "SELECT Id, SystemModstamp, CreatedDate, IsDeleted, Name, Industry FROM Account ORDER BY SystemModstamp, Id");
  CHECK(build_poll_soql("Lead", {}, "Status = 'Open' OR Rating = 'Hot'", t0 + 250) ==
        "SELECT Id, SystemModstamp, CreatedDate, IsDeleted FROM Lead WHERE SystemModstamp >= 2025-12-02T00:31:05Z AND "
        "(Status = 'Open' OR Rating = 'Hot') ORDER BY SystemModstamp, Id");
  CHECK(sfstream::poll_detail::build_newest_soql("Account", "Name != null") ==
        "SELECT Id, SystemModstamp FROM Account WHERE (Name != null) ORDER BY SystemModstamp DESC, Id DESC LIMIT 1");
}

TEST_CASE("a polled record is created on its first write, updated after, deleted with only its Id") {
  sfstream::error_info why;
  auto created = sfstream::poll_detail::read_polled_record(
      record_of(id_a, "2025-12-02T00:31:05.000+0000", "2025-12-02T00:31:05.000+0000", false), {"Name"}, why);
  REQUIRE(created);
  CHECK(created->type == "created");
  CHECK(created->version == stamp{t0, id_a});
  CHECK(created->sobject_json == "{\"Id\":\"" + id_a + "\",\"Name\":\"Acme\"}");
  CHECK(sfstream::poll_detail::build_poll_event("/poll/Account", *created) ==
        "{\"channel\":\"/poll/Account\",\"data\":{\"event\":{\"type\":\"created\",\"createdDate\":"
        "\"2025-12-02T00:31:05.000Z\"},\"sobject\":{\"Id\":\"" + id_a + "\",\"Name\":\"Acme\"}}}");
  auto updated = sfstream::poll_detail::read_polled_record(
      record_of(id_a, "2025-12-02T00:32:00.000Z", "2025-12-02T00:31:05.000Z", false), {"Name"}, why);
  REQUIRE(updated);
  CHECK(updated->type == "updated");
  auto deleted = sfstream::poll_detail::read_polled_record(
      record_of(id_a, "2025-12-02T00:33:00.000Z", "2025-12-02T00:31:05.000Z", true), {"Name"}, why);
  REQUIRE(deleted);
  CHECK(deleted->type == "deleted");
  CHECK(deleted->sobject_json == "{\"Id\":\"" + id_a + "\"}");
  auto broken = sfstream::poll_detail::read_polled_record(
      record_of(id_a, "not a time", "2025-12-02T00:31:05.000Z", false), {}, why);
  CHECK_FALSE(broken);
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(why.diag.server_text.find("SystemModstamp") != std::string::npos);
}

TEST_CASE("a polled event reads as a PushTopic notification") {
  sfstream::error_info why;
  auto r = sfstream::poll_detail::read_polled_record(
      record_of(id_a, "2025-12-02T00:32:00.000Z", "2025-12-02T00:31:05.000Z", false, "Q\"uote"), {"Name"}, why);
  REQUIRE(r);
  const sfstream::event e("/poll/Account", std::nullopt, sfstream::poll_detail::build_poll_event("/poll/Account", *r));
  const auto topic = e.as_pushtopic(&why);
  CHECK_FALSE(why);
  CHECK(topic.type == "updated");
  CHECK(topic.created_date == "2025-12-02T00:32:00.000Z");
  CHECK(topic.sobject_json == "{\"Id\":\"" + id_a + "\",\"Name\":\"Q\\\"uote\"}");
}

// What a polling client relies on: SystemModstamp, CreatedDate and LastModifiedDate on every
// write, tombstones in queryAll, the "get deleted" resource, DailyApiRequests in /limits with
// REQUEST_LIMIT_EXCEEDED once spent, and the late-commit control.
#include <chrono>

#include "emulator/data_fixture.hpp"
#include "emulator/data/values.hpp"

using namespace data_test;
using namespace std::chrono_literals;

namespace {

std::string encode(const std::string& soql) {
  std::string out;
  for (char c : soql) {
    if (c == ' ')
      out += "+";
    else if (c == '=' || c == '>' || c == '<' || c == '\'' || c == '(' || c == ')' || c == ',' || c == ':' ||
             c == '+')
      out += "%" + std::string(1, "0123456789ABCDEF"[static_cast<unsigned char>(c) >> 4]) +
             std::string(1, "0123456789ABCDEF"[c & 15]);
    else
      out += c;
  }
  return out;
}

std::string field(const rapidjson::Value& record, const char* name) {
  return record.HasMember(name) && record[name].IsString() ? record[name].GetString() : std::string();
}

std::string datetime_text(std::chrono::system_clock::time_point at) {
  return sfstream::emulator::data::rest_datetime(sfstream::emulator::data::format_datetime(at));
}

}  // namespace

TEST_CASE("every write sets SystemModstamp and LastModifiedDate from the emulator clock and keeps CreatedDate") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme"})");
  json created(*f.api.get_record("Account", id));
  CHECK(field(*created, "CreatedDate") == field(*created, "SystemModstamp"));
  CHECK(field(*created, "LastModifiedDate") == field(*created, "SystemModstamp"));
  f.clk.advance(90s);
  REQUIRE(f.call("PATCH", "/services/data/v59.0/sobjects/Account/" + id, R"({"Name":"Acme 2"})").status == 204);
  json updated(*f.api.get_record("Account", id));
  CHECK(field(*updated, "CreatedDate") == field(*created, "CreatedDate"));
  CHECK(field(*updated, "SystemModstamp") != field(*created, "SystemModstamp"));
  CHECK(field(*updated, "LastModifiedDate") == field(*updated, "SystemModstamp"));
  CHECK(field(*updated, "SystemModstamp") == datetime_text(f.clk.now()).substr(0, 19) +
                                                  field(*updated, "SystemModstamp").substr(19));
}

TEST_CASE("a deleted record stays in queryAll as a tombstone with IsDeleted true and the delete's SystemModstamp") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Gone"})");
  f.clk.advance(5s);
  REQUIRE(f.call("DELETE", "/services/data/v59.0/sobjects/Account/" + id).status == 204);
  const std::string soql = "SELECT Id, IsDeleted, SystemModstamp, CreatedDate FROM Account WHERE IsDeleted = true";
  json all(f.call("GET", "/services/data/v59.0/queryAll?q=" + encode(soql)).body);
  REQUIRE((*all)["records"].Size() == 1);
  const auto& r = (*all)["records"][0];
  CHECK(field(r, "Id") == id);
  CHECK(r["IsDeleted"].GetBool());
  CHECK(field(r, "SystemModstamp") != field(r, "CreatedDate"));
  json live(f.call("GET", "/services/data/v59.0/query?q=" + encode(soql)).body);
  CHECK((*live)["records"].Size() == 0);
}

TEST_CASE("the polling query filters on SystemModstamp and orders by SystemModstamp then Id across pages") {
  auto options = default_options();
  options.query_batch_size = 2;
  fixture f(options);
  const auto start = f.clk.now();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(f.create("Account", "{\"Name\":\"A" + std::to_string(i) + "\"}"));
    f.clk.advance(1100ms);
  }
  // Two more with one stamp, earlier than the others' (a late commit).
  const auto late = start + 2s;
  const auto x = f.api.commit_late("Account", "", R"({"Name":"L1"})", late);
  const auto y = f.api.commit_late("Account", "", R"({"Name":"L2"})", late);
  REQUIRE(x);
  REQUIRE(y);
  const std::string lower = sfstream::emulator::data::format_datetime(start + 1s).substr(0, 19) + "Z";
  const std::string soql = "SELECT Id, SystemModstamp, CreatedDate, IsDeleted, Name FROM Account WHERE SystemModstamp >= " +
                           lower + " AND (Name != null) ORDER BY SystemModstamp, Id";
  std::vector<std::pair<std::string, std::string>> seen;  // (SystemModstamp, Id)
  auto r = f.call("GET", "/services/data/v59.0/queryAll?q=" + encode(soql));
  for (int pages = 0; pages < 10; ++pages) {
    REQUIRE_MESSAGE(r.status == 200, r.body);
    json page(r.body);
    for (const auto& rec : (*page)["records"].GetArray()) seen.emplace_back(field(rec, "SystemModstamp"), field(rec, "Id"));
    if ((*page)["done"].GetBool()) break;
    r = f.call("GET", (*page)["nextRecordsUrl"].GetString());
  }
  CHECK(seen.size() == 6);  // A1..A4 and the two late ones; A0 is before the bound
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  // A1 first, then the two late ones (one stamp, in Id order), then A2..A4.
  REQUIRE(seen.size() == 6);
  CHECK(seen[1].first == seen[2].first);
  CHECK(std::set<std::string>{seen[1].second, seen[2].second} == std::set<std::string>{x.id, y.id});
}

TEST_CASE("the late-commit control stamps a create or an update in the past and refuses the future") {
  fixture f;
  const auto at = f.clk.now() - 30s;
  const auto made = f.api.commit_late("Account", "", R"({"Name":"Slow"})", at);
  REQUIRE(made);
  json r(*f.api.get_record("Account", made.id));
  CHECK(field(*r, "SystemModstamp") == datetime_text(at));
  CHECK(field(*r, "CreatedDate") == datetime_text(at));
  const auto later = at + 10s;
  REQUIRE(f.api.commit_late("Account", made.id, R"({"Name":"Slower"})", later));
  json u(*f.api.get_record("Account", made.id));
  CHECK(field(*u, "SystemModstamp") == datetime_text(later));
  CHECK(field(*u, "CreatedDate") == datetime_text(at));
  const auto refused = f.api.commit_late("Account", "", R"({"Name":"Future"})", f.clk.now() + 1h);
  REQUIRE_FALSE(refused);
  CHECK(refused.error->error_code == "INVALID_ARGUMENT");
}

TEST_CASE("sobjects deleted answers deletedRecords with ids and delete times inside the window") {
  fixture f;
  const auto start = f.clk.now() - 1h;
  const std::string a = f.create("Account", R"({"Name":"A"})");
  const std::string b = f.create("Account", R"({"Name":"B"})");
  f.create("Account", R"({"Name":"Kept"})");
  REQUIRE(f.call("DELETE", "/services/data/v59.0/sobjects/Account/" + a).status == 204);
  REQUIRE(f.call("DELETE", "/services/data/v59.0/sobjects/Account/" + b).status == 204);
  REQUIRE(f.call("POST", "/services/data/v59.0/sobjects/Account/" + b + "/undelete").status == 204);
  f.clk.advance(2min);
  const std::string window = "?start=" + encode(datetime_text(start)) + "&end=" + encode(datetime_text(f.clk.now() + 1h));
  auto r = f.call("GET", "/services/data/v59.0/sobjects/Account/deleted" + window);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json reply(r.body);
  CHECK(keys(*reply) == std::set<std::string>{"deletedRecords", "earliestDateAvailable", "latestDateCovered"});
  REQUIRE((*reply)["deletedRecords"].Size() == 1);
  const auto& d = (*reply)["deletedRecords"][0];
  CHECK(keys(d) == std::set<std::string>{"id", "deletedDate"});
  CHECK(field(d, "id") == a);
  CHECK(field(d, "deletedDate").size() == 28);  // 2026-12-02T00:31:05.000+0000
  CHECK(field(d, "deletedDate").substr(23) == "+0000");
  CHECK(field(*reply, "latestDateCovered").substr(17) == "00.000+0000");  // whole minutes
  CHECK(f.call("GET", "/services/data/v59.0/sobjects/Account/deleted").status == 400);
  auto backwards = f.call("GET", "/services/data/v59.0/sobjects/Account/deleted?start=" + encode(datetime_text(f.clk.now())) +
                                     "&end=" + encode(datetime_text(start)));
  CHECK(backwards.status == 400);
  CHECK(backwards.body.find("INVALID_REPLICATION_DATE") != std::string::npos);
}

TEST_CASE("every REST call takes one DailyApiRequests and a spent allocation answers REQUEST_LIMIT_EXCEEDED") {
  auto options = default_options();
  options.daily_api_requests = 5;
  fixture f(options);
  json limits(f.call("GET", "/services/data/v59.0/limits").body);
  CHECK((*limits)["DailyApiRequests"]["Max"].GetInt() == 5);
  CHECK((*limits)["DailyApiRequests"]["Remaining"].GetInt() == 4);  // the /limits call itself
  CHECK(f.call("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Account").status == 200);
  CHECK(f.call("GET", "/services/data/v59.0/sobjects/Account/001000000000000AAA").status == 404);  // counts too
  CHECK(f.api.api_requests_remaining() == 2);
  CHECK(f.call("GET", "/services/data/v59.0").status == 200);
  CHECK(f.call("GET", "/services/data/v59.0").status == 200);
  auto spent = f.call("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Account");
  CHECK(spent.status == 403);
  CHECK(spent.body == R"([{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}])");
  CHECK(f.api.api_requests_remaining() == 0);
  // Direct calls (controls, the demo) are not REST calls.
  CHECK(f.api.create_record("Account", R"({"Name":"Direct"})"));
  // The allocation is a rolling 24 hours of emulator time.
  f.clk.advance(24h);
  CHECK(f.api.api_requests_remaining() == 5);
  CHECK(f.call("GET", "/services/data/v59.0").status == 200);
  f.api.set_api_allocation(100, 1);
  CHECK(f.call("GET", "/services/data/v59.0").status == 200);
  CHECK(f.call("GET", "/services/data/v59.0").status == 403);
}

TEST_CASE("dailyApiRequests in the data config sets the allocation and 0 means unlimited") {
  auto parsed = data::data_options::parse_json(R"({"dailyApiRequests":0})");
  REQUIRE(parsed);
  CHECK(parsed->daily_api_requests == 0);
  CHECK(data::data_options().daily_api_requests == 15000);
  CHECK_FALSE(data::data_options::parse_json(R"({"dailyApiRequests":-1})"));
  fixture f(*parsed);
  for (int i = 0; i < 20; ++i) REQUIRE(f.call("GET", "/services/data/v59.0").status == 200);
}

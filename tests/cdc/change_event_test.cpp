// Typed CDC events, the value type, the REST codecs and the CDC adapter without a network.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "sfstream/cdc.hpp"
#include "sfstream/change_event.hpp"
#include "sfstream/event.hpp"
#include "sfstream/rest.hpp"

namespace {

// A captured Salesforce change event, verbatim.
const std::string doc_create =
    R"({"data":{"schema":"V2MGwDA2aIP0yQS98S2L6Q","payload":{"LastModifiedDate":"2024-04-09T20:26:27.000Z","Description":"Sample account record.","CleanStatus":"Pending","OwnerId":"0055f000005mc66AAA","CreatedById":"0055f000005mc66AAA","ChangeEventHeader":{"commitNumber":1082990428293,"commitUser":"0055f000005mc66AAA","sequenceNumber":1,"entityName":"Account","changeType":"CREATE","changedFields":[],"changeOrigin":"com/salesforce/api/soap/60.0;client=SfdcInternalAPI/","transactionKey":"0001ae4b-7024-a64a-87f0-f2c8cebdca76","commitTimestamp":1712694387000,"recordIds":["0015f00002J9YaUAAV"]},"CreatedDate":"2024-04-09T20:26:27.000Z","LastModifiedById":"0055f000005mc66AAA","Name":"Acme"},"event":{"replayId":37904280}},"channel":"/data/AccountChangeEvent"})";

std::string header(const std::string& type, const std::string& ids, const std::string& extra = {}) {
  return R"("ChangeEventHeader":{"commitNumber":7,"commitUser":"0055f000005mc66AAA","sequenceNumber":2,"entityName":"Contact","changeType":")" +
         type +
         R"(","changedFields":["Name.LastName","Email","Phone","LastModifiedDate"],"changeOrigin":"x","transactionKey":"tk-1","commitTimestamp":1712694387000,"recordIds":)" +
         ids + extra + "}";
}

std::string message(const std::string& payload) {
  return R"({"channel":"/data/ContactChangeEvent","data":{"schema":"s","payload":{)" + payload +
         R"(},"event":{"replayId":12}}})";
}

std::string without(std::string text, const std::string& cut) {
  auto at = text.find(cut);
  REQUIRE(at != std::string::npos);
  return text.erase(at, cut.size());
}

}  // namespace

TEST_CASE("the documented CometD CREATE sample parses into a typed event with every header field") {
  sfstream::error_info why;
  auto e = sfstream::parse_change_event(doc_create, &why);
  REQUIRE(e);
  CHECK_FALSE(why);
  CHECK(e->channel == "/data/AccountChangeEvent");
  CHECK(e->replay_id == 37904280);
  CHECK(e->schema == "V2MGwDA2aIP0yQS98S2L6Q");
  const auto& h = e->header;
  CHECK(h.entity_name == "Account");
  CHECK(h.type == sfstream::change_type::create);
  CHECK(h.record_ids == std::vector<std::string>{"0015f00002J9YaUAAV"});
  CHECK(h.change_origin == "com/salesforce/api/soap/60.0;client=SfdcInternalAPI/");
  CHECK(h.transaction_key == "0001ae4b-7024-a64a-87f0-f2c8cebdca76");
  CHECK(h.sequence_number == 1);
  CHECK(h.commit_timestamp == 1712694387000);
  CHECK(h.commit_number == 1082990428293);
  CHECK(h.commit_user == "0055f000005mc66AAA");
  CHECK(h.changed_fields.empty());
  REQUIRE(e->field("Name"));
  CHECK(e->field("Name")->as_string() == "Acme");
  CHECK(e->field("ChangeEventHeader") == nullptr);
  CHECK(e->fields.size() == 8);
  CHECK(e->fields.front().first == "LastModifiedDate");
}

TEST_CASE(
    "an UPDATE keeps JSON types, tells a nulled field from an absent one, and flags diffs and "
    "compounds") {
  const auto text = message(
      header("UPDATE", R"(["003000000000001AAA"])") +
      R"(,"Name":{"LastName":"Lovelace","FirstName":null},"Email":null,"Phone":"555","NumberOfEmployees":42,"AnnualRevenue":1.5,"DoNotCall":true,"Description":{"diff":"--- \n+++ abc\n@@ -1 +1 @@\n-a\n+b\n"})");
  auto e = sfstream::parse_change_event(text);
  REQUIRE(e);
  CHECK(e->header.type == sfstream::change_type::update);
  CHECK(e->header.changed_fields ==
        std::vector<std::string>{"Name.LastName", "Email", "Phone", "LastModifiedDate"});
  REQUIRE(e->field("Email"));
  CHECK(e->field("Email")->is_null());
  CHECK(e->field("Title") == nullptr);
  CHECK(e->field("NumberOfEmployees")->type() == sfstream::field_value::kind::integer);
  CHECK(e->field("NumberOfEmployees")->as_int() == 42);
  CHECK(e->field("AnnualRevenue")->type() == sfstream::field_value::kind::number);
  CHECK(e->field("AnnualRevenue")->as_double() == 1.5);
  CHECK(e->field("DoNotCall")->as_bool());
  const auto* name = e->field("Name");
  REQUIRE(name);
  CHECK(name->is_object());
  CHECK_FALSE(name->is_diff());
  CHECK(name->find("LastName")->as_string() == "Lovelace");
  CHECK(name->find("FirstName")->is_null());
  CHECK(name->find("Salutation") == nullptr);
  CHECK(name->to_json() == R"({"LastName":"Lovelace","FirstName":null})");
  CHECK(e->field("Description")->is_diff());
}

TEST_CASE("merged events keep every record id and wildcard ids are kept and flagged") {
  auto merged = sfstream::parse_change_event(message(
      header("UPDATE", R"(["003000000000001AAA","003000000000002AAA","003000000000003AAA"])")));
  REQUIRE(merged);
  CHECK(merged->header.record_ids.size() == 3);
  CHECK_FALSE(merged->has_wildcard_ids());
  auto wild = sfstream::parse_change_event(message(header("UPDATE", R"(["003*"])")));
  REQUIRE(wild);
  CHECK(wild->header.record_ids == std::vector<std::string>{"003*"});
  CHECK(wild->has_wildcard_ids());
  CHECK(sfstream::is_wildcard_id("001*"));
  CHECK_FALSE(sfstream::is_wildcard_id("001000000000001AAA"));
}

TEST_CASE("every change type name round-trips and only gap types count as gaps") {
  for (auto name : {"CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE",
                    "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"}) {
    auto t = sfstream::parse_change_type(name);
    REQUIRE(t);
    CHECK(sfstream::to_string(*t) == name);
  }
  CHECK_FALSE(sfstream::parse_change_type("SNAPSHOT"));
  CHECK_FALSE(sfstream::parse_change_type("create"));
  CHECK(sfstream::is_gap(sfstream::change_type::gap_remove));
  CHECK_FALSE(sfstream::is_gap(sfstream::change_type::gap_overflow));
  CHECK_FALSE(sfstream::is_gap(sfstream::change_type::update));
  auto overflow =
      sfstream::parse_change_event(message(header("GAP_OVERFLOW", R"(["000000000000000AAA"])")));
  REQUIRE(overflow);
  CHECK(overflow->header.type == sfstream::change_type::gap_overflow);
  CHECK(overflow->fields.empty());
}

TEST_CASE("an unknown change type or a missing header field is a clear error, not a crash") {
  sfstream::error_info why;
  CHECK_FALSE(
      sfstream::parse_change_event(message(header("SNAPSHOT", R"(["003000000000001AAA"])")), &why));
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(why.diag.server_text.find("SNAPSHOT") != std::string::npos);

  const auto good = message(header("UPDATE", R"(["003000000000001AAA"])"));
  REQUIRE(sfstream::parse_change_event(good));
  for (const std::string cut :
       {R"("commitNumber":7,)", R"("commitUser":"0055f000005mc66AAA",)", R"("sequenceNumber":2,)",
        R"("entityName":"Contact",)", R"("changeOrigin":"x",)", R"("transactionKey":"tk-1",)",
        R"("commitTimestamp":1712694387000,)"}) {
    CAPTURE(cut);
    why = {};
    CHECK_FALSE(sfstream::parse_change_event(without(good, cut), &why));
    CHECK(why.code == sfstream::errc::protocol_error);
    const auto field = cut.substr(1, cut.find('"', 1) - 1);
    CHECK(why.diag.server_text.find(field) != std::string::npos);
  }
  why = {};
  CHECK_FALSE(
      sfstream::parse_change_event(without(good, R"(,"recordIds":["003000000000001AAA"])"), &why));
  CHECK(why.diag.server_text.find("recordIds") != std::string::npos);
  CHECK_FALSE(sfstream::parse_change_event(message(header("UPDATE", "[]")), &why));
  CHECK_FALSE(sfstream::parse_change_event(message(header("UPDATE", "[1]")), &why));
  CHECK_FALSE(sfstream::parse_change_event(R"({"data":{"payload":{"Name":"x"}}})", &why));
  CHECK(why.diag.server_text.find("ChangeEventHeader") != std::string::npos);
  for (const char* bad : {"", "{", "[]", "null", R"({"data":[]})", R"({"data":{"payload":7}})"}) {
    CAPTURE(bad);
    CHECK_FALSE(sfstream::parse_change_event(bad, &why));
    CHECK(why.code == sfstream::errc::protocol_error);
  }
}

TEST_CASE("hostile nesting is refused instead of recursing without bound") {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  sfstream::error_info why;
  CHECK_FALSE(sfstream::parse_change_event(
      message(header("CREATE", R"(["003000000000001AAA"])") + R"(,"X":)" + deep), &why));
  CHECK(why.code == sfstream::errc::protocol_error);
}

TEST_CASE("field values compare integers and doubles numerically and kinds strictly") {
  using fv = sfstream::field_value;
  CHECK(fv::make_int(5) == fv::make_double(5.0));
  CHECK_FALSE(fv::make_int(5) == fv::make_double(5.5));
  CHECK_FALSE(fv{} == fv::make_string(""));
  CHECK(fv{} == fv{});
  CHECK(fv::make_object({{"a", fv::make_int(1)}}) == fv::make_object({{"a", fv::make_double(1)}}));
  CHECK_FALSE(fv::make_object({{"a", fv::make_int(1)}}) ==
              fv::make_object({{"b", fv::make_int(1)}}));
  CHECK(fv::make_array({fv::make_bool(true), fv{}}).to_json() == "[true,null]");
  auto fields = sfstream::parse_field_list(R"({"attributes":{"type":"Account"},"Id":"001","N":3})");
  REQUIRE(fields);
  CHECK(fields->size() == 2);
  CHECK(sfstream::to_json(*fields) == R"({"Id":"001","N":3})");
  CHECK_FALSE(sfstream::parse_field_list("[1]"));
}

TEST_CASE("a query page parses with its paging link and records without attributes") {
  auto page = sfstream::parse_query_page(
      R"({"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v59.0/queryAll/01gX-2","records":[{"attributes":{"type":"Account","url":"/x"},"Id":"001000000000001AAA","IsDeleted":false,"Name":"A"},{"attributes":{"type":"Account"},"Id":"001000000000002AAA","IsDeleted":true,"Name":null}]})");
  REQUIRE(page);
  CHECK(page->total_size == 3);
  CHECK_FALSE(page->done);
  CHECK(page->next_records_url == "/services/data/v59.0/queryAll/01gX-2");
  REQUIRE(page->records.size() == 2);
  CHECK(page->records[0].type == "Account");
  CHECK(page->records[0].id == "001000000000001AAA");
  CHECK(page->records[1].field("IsDeleted")->as_bool());
  CHECK(page->records[1].field("Name")->is_null());
  CHECK(page->records[0].to_json() ==
        R"({"Id":"001000000000001AAA","IsDeleted":false,"Name":"A"})");
  sfstream::error_info why;
  CHECK_FALSE(sfstream::parse_query_page(R"({"totalSize":1,"done":false,"records":[]})", &why));
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK_FALSE(sfstream::parse_query_page(
      R"({"totalSize":1,"done":false,"nextRecordsUrl":"https://evil/x","records":[]})"));
  CHECK_FALSE(sfstream::parse_query_page("not json"));
}

TEST_CASE("a Salesforce REST error array becomes an error_info with its errorCode and message") {
  auto e = sfstream::parse_rest_error(
      400,
      R"([{"message":"No such column 'Foo' on entity 'Account'","errorCode":"INVALID_FIELD"}])",
      "GET /services/data/v59.0/queryAll");
  CHECK(e.code == sfstream::errc::http_status);
  CHECK(e.diag.server_code == "INVALID_FIELD");
  CHECK(e.diag.server_text == "No such column 'Foo' on entity 'Account'");
  CHECK(e.diag.context == "GET /services/data/v59.0/queryAll");
  auto plain = sfstream::parse_rest_error(503, "busy", "x");
  CHECK(plain.diag.server_code == "503");
  CHECK(sfstream::parse_rest_error(401, "[]", "x").code == sfstream::errc::auth_rejected);
  CHECK(sfstream::url_encode("SELECT Id FROM A WHERE Id IN ('a')") ==
        "SELECT%20Id%20FROM%20A%20WHERE%20Id%20IN%20%28%27a%27%29");
}

TEST_CASE(
    "the CDC adapter routes each change type to its callback and invalid events to on_invalid") {
  std::vector<std::string> calls;
  sfstream::cdc_handler h;
  h.on_create = [&](const sfstream::change_event& e) {
    calls.push_back("create " + e.header.record_ids[0]);
  };
  h.on_update = [&](const sfstream::change_event&) { calls.push_back("update"); };
  h.on_delete = [&](const sfstream::change_event&) { calls.push_back("delete"); };
  h.on_undelete = [&](const sfstream::change_event&) { calls.push_back("undelete"); };
  h.on_gap = [&](const sfstream::change_event&) { calls.push_back("gap"); };
  h.on_overflow = [&](const sfstream::change_event&) { calls.push_back("overflow"); };
  h.on_invalid = [&](const sfstream::event& e, const sfstream::error_info& why) {
    calls.push_back("invalid " + std::to_string(e.replay_id().value_or(0)) + " " +
                    why.diag.server_text);
  };
  auto cb = sfstream::cdc_callbacks(h);
  auto feed = [&](const std::string& json, std::int64_t id) {
    cb.on_event(sfstream::event{"/data/ContactChangeEvent", id, json});
  };
  feed(doc_create, 1);
  for (auto t : {"UPDATE", "DELETE", "UNDELETE", "GAP_UPDATE", "GAP_OVERFLOW"})
    feed(message(header(t, R"(["003000000000001AAA"])")), 2);
  feed(message(header("BOGUS", R"(["003000000000001AAA"])")), 9);
  feed("{not json", 10);
  REQUIRE(calls.size() == 8);
  CHECK(calls[0] == "create 0015f00002J9YaUAAV");
  CHECK(calls[1] == "update");
  CHECK(calls[2] == "delete");
  CHECK(calls[3] == "undelete");
  CHECK(calls[4] == "gap");
  CHECK(calls[5] == "overflow");
  CHECK(calls[6] == "invalid 9 unknown changeType \"BOGUS\"");
  CHECK(calls[7].rfind("invalid 10 ", 0) == 0);
}

TEST_CASE(
    "transaction grouping without an executor for its idle flush is refused as invalid "
    "configuration") {
  sfstream::cdc_options o;
  o.group_transactions = true;
  CHECK_THROWS_AS(sfstream::cdc_callbacks({}, o), sfstream::error);
}

TEST_CASE(
    "reconciled and resync records render as JSON lines a consumer can tell from live events") {
  sfstream::sobject_record r;
  r.type = "Account";
  r.id = "001000000000001AAA";
  r.fields = {{"Id", sfstream::field_value::make_string(r.id)},
              {"Name", sfstream::field_value::make_string("A \"q\"")}};
  CHECK(
      sfstream::render_reconciled_json("/data/AccountChangeEvent",
                                       sfstream::reconcile_action::upsert, r, true) ==
      R"({"channel":"/data/AccountChangeEvent","reconciled":"upsert","fromGap":true,"entity":"Account","id":"001000000000001AAA","record":{"Id":"001000000000001AAA","Name":"A \"q\""}})");
  CHECK(sfstream::render_reconciled_json("/data/ChangeEvents", sfstream::reconcile_action::remove,
                                         r, false)
            .find(R"("reconciled":"delete","fromGap":false)") != std::string::npos);
  CHECK(sfstream::render_resync_json("/data/AccountChangeEvent", sfstream::resync_phase::begin,
                                     "Account") ==
        R"({"channel":"/data/AccountChangeEvent","resync":"begin","entity":"Account"})");
  CHECK(
      sfstream::render_resync_json("/data/AccountChangeEvent", sfstream::resync_phase::record,
                                   "Account", &r) ==
      R"({"channel":"/data/AccountChangeEvent","resync":"record","entity":"Account","id":"001000000000001AAA","record":{"Id":"001000000000001AAA","Name":"A \"q\""}})");
  CHECK(sfstream::render_resync_json("/data/AccountChangeEvent", sfstream::resync_phase::end,
                                     "Account") ==
        R"({"channel":"/data/AccountChangeEvent","resync":"end","entity":"Account"})");
}

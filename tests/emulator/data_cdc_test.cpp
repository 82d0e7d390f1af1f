// Change Data Capture events of the emulator: Salesforce's exact shapes, changed and
// nulled fields, transactions, merged ids, gap and overflow events.
#include "data_fixture.hpp"

using namespace data_test;

namespace {

const std::set<std::string> header_keys{"entityName",     "recordIds",       "changeType",   "changeOrigin",
                                        "transactionKey", "sequenceNumber",  "commitTimestamp", "commitNumber",
                                        "commitUser",     "changedFields"};

std::vector<std::string> strings(const rapidjson::Value& array) {
  std::vector<std::string> out;
  for (const auto& v : array.GetArray()) out.emplace_back(v.GetString());
  return out;
}

}  // namespace

TEST_CASE("a CREATE change event carries all non-empty fields, system fields and the full header") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme","Description":"Sample account record."})");
  auto entity = f.on("/data/AccountChangeEvent");
  auto all = f.on("/data/ChangeEvents");
  REQUIRE(entity.size() == 1);
  REQUIRE(all.size() == 1);
  json data(entity[0].data);
  CHECK(keys(*data) == std::set<std::string>{"schema", "payload", "event"});
  CHECK(std::string((*data)["schema"].GetString()).size() == 22);
  CHECK(keys((*data)["event"]) == std::set<std::string>{"replayId"});
  CHECK((*data)["event"]["replayId"].GetInt64() == entity[0].replay_id);
  const auto& payload = (*data)["payload"];
  CHECK(keys(payload) == std::set<std::string>{"ChangeEventHeader", "Name", "Description", "OwnerId", "CreatedDate",
                                               "CreatedById", "LastModifiedDate", "LastModifiedById"});
  const auto& h = payload["ChangeEventHeader"];
  CHECK(keys(h) == header_keys);
  CHECK(std::string(h["entityName"].GetString()) == "Account");
  CHECK(strings(h["recordIds"]) == std::vector<std::string>{id});
  CHECK(std::string(h["changeType"].GetString()) == "CREATE");
  CHECK(std::string(h["changeOrigin"].GetString()) == "com/salesforce/api/rest/59.0");
  CHECK(std::string(h["transactionKey"].GetString()).size() == 36);
  CHECK(h["sequenceNumber"].GetInt() == 1);
  CHECK(h["commitTimestamp"].IsInt64());
  CHECK(h["commitNumber"].IsInt64());
  CHECK(std::string(h["commitUser"].GetString()) == f.who.user_id);
  CHECK(h["changedFields"].Size() == 0);
  const std::string created = payload["CreatedDate"].GetString();
  CHECK(created.back() == 'Z');
  CHECK(h["commitTimestamp"].GetInt64() / 1000 == std::chrono::duration_cast<std::chrono::seconds>(f.clk.now().time_since_epoch()).count());

  json same(all[0].data);
  CHECK(std::string((*same)["payload"]["ChangeEventHeader"]["transactionKey"].GetString()) ==
        std::string(h["transactionKey"].GetString()));
  CHECK(f.bus.channel_retention("/data/ChangeEvents") == retention::hours_72);
  CHECK(f.bus.channel_retention("/data/AccountChangeEvent") == retention::hours_72);
}

TEST_CASE("an UPDATE carries only changed fields, nulled fields as null, LastModifiedDate and changedFields") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme","Industry":"Energy","Phone":"1"})");
  auto r = f.call("PATCH", "/services/data/v59.0/sobjects/Account/" + id, R"({"Industry":null,"Phone":"2","Name":"Acme"})",
                  {{"Sforce-Call-Options", "client=SfdcInternalAPI/"}});
  REQUIRE(r.status == 204);
  auto events = f.on("/data/AccountChangeEvent");
  REQUIRE(events.size() == 2);
  json data(events[1].data);
  const auto& payload = (*data)["payload"];
  CHECK(keys(payload) == std::set<std::string>{"ChangeEventHeader", "Industry", "Phone", "LastModifiedDate"});
  CHECK(payload["Industry"].IsNull());
  CHECK(std::string(payload["Phone"].GetString()) == "2");
  const auto& h = payload["ChangeEventHeader"];
  CHECK(std::string(h["changeType"].GetString()) == "UPDATE");
  CHECK(strings(h["changedFields"]) == std::vector<std::string>{"Industry", "Phone", "LastModifiedDate"});
  CHECK(std::string(h["changeOrigin"].GetString()) == "com/salesforce/api/rest/59.0;client=SfdcInternalAPI/");
}

TEST_CASE("an UPDATE by another user also carries LastModifiedById") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme"})");
  data::caller other{"0055f000000ZzZzAAK", f.who.org_id, "other@emulator.local"};
  REQUIRE(f.api.update_record("Account", id, R"({"Name":"Acme 2"})", other));
  json data(f.on("/data/AccountChangeEvent").back().data);
  const auto& payload = (*data)["payload"];
  CHECK(keys(payload) == std::set<std::string>{"ChangeEventHeader", "Name", "LastModifiedDate", "LastModifiedById"});
  CHECK(strings(payload["ChangeEventHeader"]["changedFields"]) ==
        std::vector<std::string>{"Name", "LastModifiedDate", "LastModifiedById"});
  CHECK(std::string(payload["ChangeEventHeader"]["commitUser"].GetString()) == other.user_id);
}

TEST_CASE("Contact names travel as the compound Name field") {
  fixture f;
  const std::string id = f.create("Contact", R"({"FirstName":"Jane","LastName":"Doe"})");
  json created(f.on("/data/ContactChangeEvent").at(0).data);
  CHECK(keys((*created)["payload"]["Name"]) == std::set<std::string>{"FirstName", "LastName"});
  CHECK(std::string((*created)["payload"]["Name"]["LastName"].GetString()) == "Doe");
  REQUIRE(f.api.update_record("Contact", id, R"({"LastName":"Roe"})", f.who));
  json updated(f.on("/data/ContactChangeEvent").at(1).data);
  CHECK(keys((*updated)["payload"]) == std::set<std::string>{"ChangeEventHeader", "Name", "LastModifiedDate"});
  CHECK(keys((*updated)["payload"]["Name"]) == std::set<std::string>{"LastName"});
  CHECK(strings((*updated)["payload"]["ChangeEventHeader"]["changedFields"]) ==
        std::vector<std::string>{"Name.LastName", "LastModifiedDate"});
}

TEST_CASE("DELETE carries no fields and UNDELETE carries all non-empty fields") {
  fixture f;
  const std::string id = f.create("Invoice__c", R"({"Name":"INV-1","Amount__c":10,"Paid__c":false})");
  REQUIRE(f.api.delete_record("Invoice__c", id, f.who));
  REQUIRE(f.api.undelete_record("Invoice__c", id, f.who));
  auto events = f.on("/data/Invoice__ChangeEvent");
  REQUIRE(events.size() == 3);
  json deleted(events[1].data);
  CHECK(keys((*deleted)["payload"]) == std::set<std::string>{"ChangeEventHeader"});
  CHECK(std::string((*deleted)["payload"]["ChangeEventHeader"]["changeType"].GetString()) == "DELETE");
  json undeleted(events[2].data);
  CHECK(std::string((*undeleted)["payload"]["ChangeEventHeader"]["changeType"].GetString()) == "UNDELETE");
  CHECK(keys((*undeleted)["payload"]) == std::set<std::string>{"ChangeEventHeader", "Name", "OwnerId", "Amount__c", "Paid__c",
                                                              "CreatedDate", "CreatedById", "LastModifiedDate",
                                                              "LastModifiedById"});
  CHECK((*undeleted)["payload"]["Amount__c"].GetInt() == 10);
}

TEST_CASE("entities without CDC publish nothing and enable_cdc turns it on") {
  fixture f;
  f.create("Lead", R"({"LastName":"Doe","Company":"X"})");
  CHECK(f.on("/data/ChangeEvents").empty());
  CHECK_FALSE(f.bus.channel_exists("/data/LeadChangeEvent"));
  REQUIRE(f.api.enable_cdc("Lead"));
  f.create("Lead", R"({"LastName":"Roe","Company":"Y"})");
  CHECK(f.on("/data/LeadChangeEvent").size() == 1);
  CHECK_FALSE(f.api.enable_cdc("Low_Ink__e"));
  CHECK_FALSE(f.api.enable_cdc("Nothing"));
}

TEST_CASE("replay ids count separately on /data/ChangeEvents and each entity channel") {
  fixture f;
  f.create("Account", R"({"Name":"A"})");
  f.create("Contact", R"({"LastName":"B"})");
  f.create("Account", R"({"Name":"C"})");
  auto all = f.on("/data/ChangeEvents");
  auto accounts = f.on("/data/AccountChangeEvent");
  REQUIRE(all.size() == 3);
  REQUIRE(accounts.size() == 2);
  CHECK(all[0].replay_id < all[1].replay_id);
  CHECK(all[1].replay_id < all[2].replay_id);
  CHECK(accounts[0].replay_id < accounts[1].replay_id);
}

TEST_CASE("a bulk change that sets the same value on several records is one merged UPDATE event") {
  fixture f;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(f.create("Account", "{\"Name\":\"A" + std::to_string(i) + "\"}"));
  f.events.clear();
  REQUIRE(f.api.bulk_change("Account", 5, f.who));
  auto events = f.on("/data/AccountChangeEvent");
  REQUIRE(events.size() == 3);  // one merged UPDATE, two CREATEs
  json merged(events[0].data);
  const auto& h = (*merged)["payload"]["ChangeEventHeader"];
  CHECK(std::string(h["changeType"].GetString()) == "UPDATE");
  CHECK(strings(h["recordIds"]) == ids);
  std::set<std::string> keys_of_transaction;
  std::vector<int> sequence;
  for (const auto& e : events) {
    json d(e.data);
    keys_of_transaction.insert((*d)["payload"]["ChangeEventHeader"]["transactionKey"].GetString());
    sequence.push_back((*d)["payload"]["ChangeEventHeader"]["sequenceNumber"].GetInt());
  }
  CHECK(keys_of_transaction.size() == 1);
  CHECK(sequence == std::vector<int>{1, 2, 3});
  CHECK(f.api.record_count("Account") == 5);
}

TEST_CASE("gap events are header-only with the GAP change type and the given ids") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"A"})");
  f.events.clear();
  REQUIRE(f.api.emit_gap_events("Account", {id, id.substr(0, 15)}, data::gap_type::gap_update));
  auto events = f.on("/data/AccountChangeEvent");
  REQUIRE(events.size() == 1);
  json data(events[0].data);
  CHECK(keys((*data)["payload"]) == std::set<std::string>{"ChangeEventHeader"});
  const auto& h = (*data)["payload"]["ChangeEventHeader"];
  CHECK(keys(h) == header_keys);
  CHECK(std::string(h["changeType"].GetString()) == "GAP_UPDATE");
  CHECK(strings(h["recordIds"]) == std::vector<std::string>{id, id});
  for (auto [type, name] : {std::pair{data::gap_type::gap_create, "GAP_CREATE"}, {data::gap_type::gap_delete, "GAP_DELETE"},
                            {data::gap_type::gap_undelete, "GAP_UNDELETE"}}) {
    REQUIRE(f.api.emit_gap_events("Account", {id}, type));
    CHECK(std::string(json(f.on("/data/AccountChangeEvent").back().data).doc["payload"]["ChangeEventHeader"]["changeType"].GetString()) == name);
  }
  CHECK_FALSE(f.api.emit_gap_events("Lead", {id}, data::gap_type::gap_create));
  CHECK_FALSE(f.api.emit_gap_events("Account", {"bad"}, data::gap_type::gap_create));
}

TEST_CASE("emit_overflow publishes GAP_OVERFLOW with the all-zero record id") {
  fixture f;
  REQUIRE(f.api.emit_overflow("Invoice__c"));
  auto events = f.on("/data/Invoice__ChangeEvent");
  REQUIRE(events.size() == 1);
  json data(events[0].data);
  const auto& h = (*data)["payload"]["ChangeEventHeader"];
  CHECK(std::string(h["changeType"].GetString()) == "GAP_OVERFLOW");
  CHECK(strings(h["recordIds"]) == std::vector<std::string>{"000000000000000AAA"});
  CHECK(std::string(h["entityName"].GetString()) == "Invoice__c");
  CHECK(f.on("/data/ChangeEvents").size() == 1);
}

TEST_CASE("a bulk change above the overflow threshold ends in one GAP_OVERFLOW for the entity") {
  fixture f;
  f.api.set_overflow_threshold(10);
  REQUIRE(f.api.bulk_change("Invoice__c", 2500, f.who));
  CHECK(f.api.record_count("Invoice__c") == 2500);
  auto events = f.on("/data/Invoice__ChangeEvent");
  REQUIRE(events.size() == 11);  // the first 10 changes, then the overflow
  int overflows = 0;
  for (const auto& e : events) {
    json d(e.data);
    if (std::string((*d)["payload"]["ChangeEventHeader"]["changeType"].GetString()) == "GAP_OVERFLOW") ++overflows;
  }
  CHECK(overflows == 1);
  json last(events.back().data);
  CHECK(std::string((*last)["payload"]["ChangeEventHeader"]["changeType"].GetString()) == "GAP_OVERFLOW");
  json page(f.call("GET", "/services/data/v59.0/queryAll?q=SELECT+Id+FROM+Invoice__c").body);
  CHECK((*page)["totalSize"].GetInt() == 2500);
}

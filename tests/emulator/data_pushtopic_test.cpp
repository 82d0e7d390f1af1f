// PushTopic evaluation: which record changes reach /topic/<Name>, with which fields, under the
// NotifyForOperation* and NotifyForFields rules.
#include "data_fixture.hpp"

using namespace data_test;

namespace {

std::string make_topic(fixture& f, const std::string& name, const std::string& query, const std::string& notify = "Referenced",
                       const std::string& extra = "") {
  return f.create("PushTopic", "{\"Name\":\"" + name + "\",\"Query\":\"" + query +
                                   "\",\"ApiVersion\":59.0,\"NotifyForFields\":\"" + notify + "\"" + extra + "}");
}

}  // namespace

TEST_CASE("a created record matching the query publishes the exact PushTopic event shape") {
  fixture f;
  make_topic(f, "InvoiceStatementUpdates", "SELECT Id, Name, Status__c FROM Invoice__c WHERE Status__c = 'Open'");
  const std::string id = f.create("Invoice__c", R"({"Name":"INV-0001","Status__c":"Open","Amount__c":5})");
  auto events = f.on("/topic/InvoiceStatementUpdates");
  REQUIRE(events.size() == 1);
  json data(events[0].data);
  CHECK(keys(*data) == std::set<std::string>{"event", "sobject"});
  CHECK(keys((*data)["event"]) == std::set<std::string>{"createdDate", "replayId", "type"});
  CHECK(std::string((*data)["event"]["type"].GetString()) == "created");
  CHECK((*data)["event"]["replayId"].GetInt64() == events[0].replay_id);
  const std::string created = (*data)["event"]["createdDate"].GetString();
  CHECK(created.size() == 24);
  CHECK(created[19] == '.');
  CHECK(created.back() == 'Z');
  CHECK(keys((*data)["sobject"]) == std::set<std::string>{"Id", "Name", "Status__c"});
  CHECK(std::string((*data)["sobject"]["Id"].GetString()) == id);
  CHECK(std::string((*data)["sobject"]["Status__c"].GetString()) == "Open");
}

TEST_CASE("records outside the WHERE clause publish nothing and deletes carry only the Id") {
  fixture f;
  make_topic(f, "OpenInvoices", "SELECT Id, Name FROM Invoice__c WHERE Status__c = 'Open'");
  f.create("Invoice__c", R"({"Name":"closed","Status__c":"Closed"})");
  CHECK(f.on("/topic/OpenInvoices").empty());
  const std::string id = f.create("Invoice__c", R"({"Name":"open","Status__c":"Open"})");
  REQUIRE(f.call("DELETE", "/services/data/v59.0/sobjects/Invoice__c/" + id).status == 204);
  REQUIRE(f.call("POST", "/services/data/v59.0/sobjects/Invoice__c/" + id + "/undelete").status == 204);
  auto events = f.on("/topic/OpenInvoices");
  REQUIRE(events.size() == 3);
  json deleted(events[1].data);
  CHECK(std::string((*deleted)["event"]["type"].GetString()) == "deleted");
  CHECK(keys((*deleted)["sobject"]) == std::set<std::string>{"Id"});
  json undeleted(events[2].data);
  CHECK(std::string((*undeleted)["event"]["type"].GetString()) == "undeleted");
  CHECK(keys((*undeleted)["sobject"]) == std::set<std::string>{"Id", "Name"});
  CHECK(events[0].replay_id < events[1].replay_id);
  CHECK(events[1].replay_id < events[2].replay_id);
}

TEST_CASE("NotifyForOperation flags turned off suppress those operations") {
  fixture f;
  make_topic(f, "CreatesOnly", "SELECT Id FROM Account", "All",
             ",\"NotifyForOperationUpdate\":false,\"NotifyForOperationDelete\":false,\"NotifyForOperationUndelete\":false");
  const std::string id = f.create("Account", R"({"Name":"A"})");
  f.api.update_record("Account", id, R"({"Name":"B"})");
  f.api.delete_record("Account", id);
  f.api.undelete_record("Account", id);
  auto events = f.on("/topic/CreatesOnly");
  REQUIRE(events.size() == 1);
  CHECK(std::string(json(events[0].data).doc["event"]["type"].GetString()) == "created");
}

TEST_CASE("NotifyForFields Referenced fires on changes to SELECT or WHERE fields only") {
  fixture f;
  make_topic(f, "Ref", "SELECT Id, Name FROM Account WHERE Industry != 'Retail'", "Referenced");
  const std::string id = f.create("Account", R"({"Name":"A","Industry":"Energy"})");
  f.api.update_record("Account", id, R"({"Phone":"1"})");
  CHECK(f.on("/topic/Ref").size() == 1);
  f.api.update_record("Account", id, R"({"Name":"B"})");
  CHECK(f.on("/topic/Ref").size() == 2);
  f.api.update_record("Account", id, R"({"Industry":"Media"})");
  CHECK(f.on("/topic/Ref").size() == 3);
  f.api.update_record("Account", id, R"({"Industry":"Retail"})");
  CHECK(f.on("/topic/Ref").size() == 3);
  json last(f.on("/topic/Ref").back().data);
  CHECK(std::string((*last)["event"]["type"].GetString()) == "updated");
}

TEST_CASE("NotifyForFields Select, Where and All apply their own field sets") {
  fixture f;
  make_topic(f, "Sel", "SELECT Id, Name FROM Account WHERE Industry = 'Energy'", "Select");
  make_topic(f, "Whr", "SELECT Id, Name FROM Account WHERE Industry = 'Energy'", "Where");
  make_topic(f, "Any", "SELECT Id, Name FROM Account WHERE Industry = 'Energy'", "All");
  const std::string id = f.create("Account", R"({"Name":"A","Industry":"Energy","NumberOfEmployees":1})");
  f.api.update_record("Account", id, R"({"Name":"B"})");
  f.api.update_record("Account", id, R"({"Industry":"ENERGY"})");
  f.api.update_record("Account", id, R"({"NumberOfEmployees":2})");
  CHECK(f.on("/topic/Sel").size() == 2);  // create + Name
  CHECK(f.on("/topic/Whr").size() == 2);  // create + Industry
  CHECK(f.on("/topic/Any").size() == 4);  // every change
}

TEST_CASE("inactive and deleted PushTopics publish nothing") {
  fixture f;
  const std::string topic = make_topic(f, "Paused", "SELECT Id FROM Account", "All", ",\"IsActive\":false");
  f.create("Account", R"({"Name":"A"})");
  CHECK(f.on("/topic/Paused").empty());
  f.api.update_record("PushTopic", topic, R"({"IsActive":true})");
  f.create("Account", R"({"Name":"B"})");
  CHECK(f.on("/topic/Paused").size() == 1);
  f.api.delete_record("PushTopic", topic);
  CHECK_FALSE(f.bus.channel_exists("/topic/Paused"));
}

TEST_CASE("create_pushtopic declares the channel with 24-hour retention and bulk changes skip PushTopics") {
  fixture f;
  data::pushtopic_spec spec;
  spec.name = "Direct";
  spec.query = "SELECT Id, Name FROM Account";
  REQUIRE(f.api.create_pushtopic(spec));
  CHECK(f.bus.channel_retention("/topic/Direct") == retention::hours_24);
  REQUIRE(f.api.bulk_change("Account", 3));
  CHECK(f.on("/topic/Direct").empty());
  spec.query = "SELECT Name FROM Account";
  spec.name = "NoId";
  CHECK_FALSE(f.api.create_pushtopic(spec));
}

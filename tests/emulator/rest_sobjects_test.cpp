// REST sobjects routes of the emulator: create, read, update, delete, undelete, and the
// Salesforce JSON error arrays for bad input.
#include "data_fixture.hpp"

using namespace data_test;

TEST_CASE("POST sobjects creates a record with an id of the object's key prefix") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme","NumberOfEmployees":12})");
  CHECK(id.size() == 18);
  CHECK(id.substr(0, 3) == "001");
  CHECK(f.create("Contact", R"({"LastName":"Doe"})").substr(0, 3) == "003");
  CHECK(f.create("Lead", R"({"LastName":"Doe","Company":"X"})").substr(0, 3) == "00Q");
  CHECK(f.create("Opportunity", R"({"Name":"Deal","StageName":"Prospecting","CloseDate":"2026-05-01"})").substr(0, 3) == "006");
  CHECK(f.create("Task", R"({"Subject":"Call"})").substr(0, 3) == "00T");
  CHECK(f.create("Invoice__c", R"({"Name":"INV-1"})").substr(0, 3) == "a00");
}

TEST_CASE("GET sobjects returns the record with attributes and system fields") {
  fixture f;
  const std::string id = f.create("Contact", R"({"FirstName":"Jane","LastName":"Doe","Email":"j@example.com"})");
  auto r = f.call("GET", "/services/data/v59.0/sobjects/Contact/" + id);
  REQUIRE(r.status == 200);
  json rec(r.body);
  CHECK(std::string((*rec)["attributes"]["type"].GetString()) == "Contact");
  CHECK(std::string((*rec)["attributes"]["url"].GetString()) == "/services/data/v59.0/sobjects/Contact/" + id);
  CHECK(std::string((*rec)["Id"].GetString()) == id);
  CHECK(std::string((*rec)["Name"].GetString()) == "Jane Doe");
  CHECK(std::string((*rec)["CreatedById"].GetString()) == f.who.user_id);
  CHECK_FALSE((*rec)["IsDeleted"].GetBool());
  CHECK((*rec)["Phone"].IsNull());
  const std::string created = (*rec)["CreatedDate"].GetString();
  CHECK(created.size() == 28);
  CHECK(created.substr(23) == "+0000");
  for (const char* k : {"LastModifiedDate", "LastModifiedById", "SystemModstamp"}) CHECK(rec->HasMember(k));
  auto some = f.call("GET", "/services/data/v59.0/sobjects/Contact/" + id.substr(0, 15) + "?fields=Email,LastName");
  REQUIRE(some.status == 200);
  json partial(some.body);
  CHECK(keys(*partial) == std::set<std::string>{"attributes", "Email", "LastName"});
}

TEST_CASE("PATCH updates the record and answers 204 without a body") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme","Industry":"Energy"})");
  auto r = f.call("PATCH", "/services/data/v59.0/sobjects/Account/" + id, R"({"Industry":null,"Phone":"555"})");
  CHECK(r.status == 204);
  CHECK(r.body.empty());
  json rec(*f.api.get_record("Account", id));
  CHECK((*rec)["Industry"].IsNull());
  CHECK(std::string((*rec)["Phone"].GetString()) == "555");
}

TEST_CASE("DELETE moves the record to the recycle bin and undelete restores it") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme"})");
  CHECK(f.call("DELETE", "/services/data/v59.0/sobjects/Account/" + id).status == 204);
  check_error(f.call("GET", "/services/data/v59.0/sobjects/Account/" + id), 404, "NOT_FOUND");
  check_error(f.call("DELETE", "/services/data/v59.0/sobjects/Account/" + id), 404, "ENTITY_IS_DELETED");
  auto all = f.call("GET", "/services/data/v59.0/queryAll?q=SELECT+Id,IsDeleted+FROM+Account");
  json page(all.body);
  REQUIRE((*page)["totalSize"].GetInt() == 1);
  CHECK((*page)["records"][0]["IsDeleted"].GetBool());
  CHECK(f.call("POST", "/services/data/v59.0/sobjects/Account/" + id + "/undelete").status == 204);
  CHECK(f.api.get_record("Account", id).has_value());
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Account/" + id + "/undelete"), 400, "UNDELETE_FAILED");
}

TEST_CASE("a missing required field is REQUIRED_FIELD_MISSING with the field listed") {
  fixture f;
  auto r = f.call("POST", "/services/data/v59.0/sobjects/Contact", R"({"FirstName":"Jane"})");
  check_error(r, 400, "REQUIRED_FIELD_MISSING");
  json e(r.body);
  CHECK(std::string((*e)[0]["message"].GetString()) == "Required fields are missing: [LastName]");
  CHECK(std::string((*e)[0]["fields"][0].GetString()) == "LastName");
}

TEST_CASE("unknown fields, read-only fields, bad values and bad JSON get Salesforce's error codes") {
  fixture f;
  auto unknown = f.call("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"A","Foo__c":1})");
  check_error(unknown, 400, "INVALID_FIELD");
  CHECK(json(unknown.body).doc[0]["message"].GetString() == std::string("No such column 'Foo__c' on sobject of type Account"));
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"A","CreatedDate":"2020-01-01T00:00:00Z"})"),
              400, "INVALID_FIELD_FOR_INSERT_UPDATE");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"A","NumberOfEmployees":"many"})"), 400,
              "JSON_PARSER_ERROR");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"A",)"), 400, "JSON_PARSER_ERROR");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Account", R"({"Name":"A","ParentId":"xyz"})"), 400, "MALFORMED_ID");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Account", "{\"Name\":\"" + std::string(300, 'x') + "\"}"), 400,
              "STRING_TOO_LONG");
}

TEST_CASE("unknown objects, ids, versions and routes answer 404 NOT_FOUND") {
  fixture f;
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Nope__c", "{}"), 404, "NOT_FOUND");
  check_error(f.call("GET", "/services/data/v59.0/sobjects/Account/001000000000000AAA"), 404, "NOT_FOUND");
  auto malformed = f.call("GET", "/services/data/v59.0/sobjects/Account/abc");
  check_error(malformed, 404, "NOT_FOUND");
  CHECK(json(malformed.body).doc[0]["message"].GetString() ==
        std::string("Provided external ID field does not exist or is not accessible: abc"));
  check_error(f.call("GET", "/services/data/v19.0/limits"), 404, "NOT_FOUND");
  check_error(f.call("GET", "/services/data/v99.0/limits"), 404, "NOT_FOUND");
  check_error(f.call("GET", "/services/data/v59.0/nothing"), 404, "NOT_FOUND");
  const std::string id = f.create("Account", R"({"Name":"Acme"})");
  check_error(f.call("GET", "/services/data/v59.0/sobjects/Contact/" + id), 404, "NOT_FOUND");
}

TEST_CASE("a method a route does not support is 405 METHOD_NOT_ALLOWED") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme"})");
  auto r = f.call("PUT", "/services/data/v59.0/sobjects/Account/" + id, "{}");
  check_error(r, 405, "METHOD_NOT_ALLOWED");
  check_error(f.call("DELETE", "/services/data/v59.0/query?q=SELECT+Id+FROM+Account"), 405, "METHOD_NOT_ALLOWED");
}

TEST_CASE("GET /services/data lists the versions with release labels") {
  fixture f;
  auto r = f.call("GET", "/services/data");
  REQUIRE(r.status == 200);
  json list(r.body);
  REQUIRE(list->IsArray());
  bool found = false;
  for (const auto& v : list->GetArray())
    if (std::string(v["version"].GetString()) == "62.0") {
      found = true;
      CHECK(std::string(v["label"].GetString()) == "Winter '25");
      CHECK(std::string(v["url"].GetString()) == "/services/data/v62.0");
    }
  CHECK(found);
  auto limits = f.call("GET", "/services/data/v59.0/limits");
  REQUIRE(limits.status == 200);
  CHECK(json(limits.body).doc["DailyStreamingApiEvents"]["Max"].GetInt() == 10000);
}

TEST_CASE("PushTopic records validate name length, uniqueness, query and NotifyForFields") {
  fixture f;
  f.create("PushTopic", R"({"Name":"AccountUpdates","Query":"SELECT Id, Name FROM Account","ApiVersion":59.0})");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/PushTopic",
                     R"({"Name":"AccountUpdates","Query":"SELECT Id FROM Account","ApiVersion":59.0})"),
              400, "DUPLICATE_VALUE");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/PushTopic",
                     R"({"Name":"ThisNameIsLongerThan25Chars","Query":"SELECT Id FROM Account","ApiVersion":59.0})"),
              400, "STRING_TOO_LONG");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/PushTopic",
                     R"({"Name":"Bad","Query":"SELECT Id FROM Account WHERE","ApiVersion":59.0})"),
              400, "MALFORMED_QUERY");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/PushTopic",
                     R"({"Name":"Bad","Query":"SELECT Id FROM Account","ApiVersion":59.0,"NotifyForFields":"Some"})"),
              400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/PushTopic", R"({"Name":"NoQuery","ApiVersion":59.0})"), 400,
              "REQUIRED_FIELD_MISSING");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/PushTopic",
                     "{\"Name\":\"Long\",\"ApiVersion\":59.0,\"Query\":\"SELECT Id FROM Account WHERE Name = '" +
                         std::string(1300, 'x') + "'\"}"),
              400, "STRING_TOO_LONG");
  CHECK(f.bus.channel_exists("/topic/AccountUpdates"));
  CHECK_FALSE(f.bus.channel_exists("/topic/Bad"));
}

TEST_CASE("StreamingChannel names start with /u/ and are unique") {
  fixture f;
  f.create("StreamingChannel", R"({"Name":"/u/notifications"})");
  CHECK(f.bus.channel_exists("/u/notifications"));
  check_error(f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel", R"({"Name":"/u/notifications"})"), 400,
              "DUPLICATE_DEVELOPER_NAME");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/StreamingChannel", R"({"Name":"notifications"})"), 400,
              "FIELD_INTEGRITY_EXCEPTION");
}

TEST_CASE("the data config JSON is read and malformed configs are refused with a reason") {
  auto ok = data::data_options::parse_json(
      R"({"customObjects":[{"name":"Order__c","keyPrefix":"a05","fields":[{"name":"Total__c","type":"number","required":true}]}],
          "platformEvents":[{"name":"Alert__e","fields":[{"name":"Text__c","type":"string"}]}],
          "cdcEntities":["Account","Order__c"],"overflowThreshold":10,"queryBatchSize":500})");
  REQUIRE(ok.has_value());
  CHECK(ok->custom_objects.at(0).key_prefix == "a05");
  CHECK(ok->custom_objects.at(0).fields.at(0).required);
  CHECK(ok->overflow_threshold == 10);
  CHECK(ok->query_batch_size == 500);
  fixture f(*ok);
  CHECK(f.create("Order__c", R"({"Total__c":3})").substr(0, 3) == "a05");
  check_error(f.call("POST", "/services/data/v59.0/sobjects/Order__c", R"({"Name":"x"})"), 400, "REQUIRED_FIELD_MISSING");
  CHECK(f.bus.channel_exists("/data/Order__ChangeEvent"));
  CHECK(f.bus.channel_exists("/event/Alert__e"));

  sfstream::error_info why;
  CHECK_FALSE(data::data_options::parse_json("{", &why).has_value());
  CHECK(why.code == sfstream::errc::invalid_config);
  CHECK_FALSE(data::data_options::parse_json(R"({"customObjects":[{"name":"NoSuffix"}]})", &why).has_value());
  CHECK(why.diag.server_text.find("__c") != std::string::npos);
  CHECK_FALSE(data::data_options::parse_json(R"({"customObjects":[{"name":"X__c","fields":[{"name":"F__c","type":"blob"}]}]})").has_value());
  CHECK_FALSE(data::data_options::parse_json(R"({"overflowThreshold":-1})").has_value());
}

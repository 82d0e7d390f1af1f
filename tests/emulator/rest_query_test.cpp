// REST query and queryAll: SOQL over HTTP, paging through nextRecordsUrl, error replies.
#include "data_fixture.hpp"

using namespace data_test;

TEST_CASE("query answers totalSize, done and records with attributes and only the selected fields") {
  fixture f;
  const std::string id = f.create("Account", R"({"Name":"Acme","Industry":"Energy"})");
  f.create("Account", R"({"Name":"Globex"})");
  auto r = f.call("GET", "/services/data/v59.0/query?q=SELECT%20Id%2C%20Name%20FROM%20Account%20WHERE%20Industry%20%3D%20'Energy'");
  REQUIRE(r.status == 200);
  json page(r.body);
  CHECK(keys(*page) == std::set<std::string>{"totalSize", "done", "records"});
  CHECK((*page)["totalSize"].GetInt() == 1);
  CHECK((*page)["done"].GetBool());
  const auto& rec = (*page)["records"][0];
  CHECK(keys(rec) == std::set<std::string>{"attributes", "Id", "Name"});
  CHECK(std::string(rec["Id"].GetString()) == id);
  CHECK(std::string(rec["attributes"]["url"].GetString()) == "/services/data/v59.0/sobjects/Account/" + id);
}

TEST_CASE("SELECT COUNT() answers the count with no records") {
  fixture f;
  f.create("Account", R"({"Name":"A"})");
  f.create("Account", R"({"Name":"B"})");
  json page(f.call("GET", "/services/data/v59.0/query?q=SELECT+COUNT()+FROM+Account").body);
  CHECK((*page)["totalSize"].GetInt() == 2);
  CHECK((*page)["records"].Size() == 0);
}

TEST_CASE("2,500 records come back in pages of 2,000 through nextRecordsUrl") {
  fixture f;
  for (int i = 0; i < 2500; ++i) REQUIRE(f.api.create_record("Invoice__c", "{\"Name\":\"INV-" + std::to_string(i) + "\"}"));
  auto first = f.call("GET", "/services/data/v59.0/query?q=SELECT+Id,Name+FROM+Invoice__c");
  REQUIRE(first.status == 200);
  json one(first.body);
  CHECK((*one)["totalSize"].GetInt() == 2500);
  CHECK_FALSE((*one)["done"].GetBool());
  CHECK((*one)["records"].Size() == 2000);
  const std::string next = (*one)["nextRecordsUrl"].GetString();
  CHECK(next.rfind("/services/data/v59.0/query/01g", 0) == 0);
  CHECK(next.substr(next.size() - 5) == "-2000");
  auto second = f.call("GET", next);
  REQUIRE(second.status == 200);
  json two(second.body);
  CHECK((*two)["done"].GetBool());
  CHECK_FALSE(two->HasMember("nextRecordsUrl"));
  CHECK((*two)["records"].Size() == 500);
  std::set<std::string> ids;
  for (const auto& r : (*one)["records"].GetArray()) ids.insert(r["Id"].GetString());
  for (const auto& r : (*two)["records"].GetArray()) ids.insert(r["Id"].GetString());
  CHECK(ids.size() == 2500);
  check_error(f.call("GET", "/services/data/v59.0/query/01gNOPE-2000"), 400, "INVALID_QUERY_LOCATOR");
}

TEST_CASE("queryAll pages through deleted records too and Sforce-Query-Options lowers the batch") {
  fixture f;
  std::vector<std::string> ids;
  for (int i = 0; i < 450; ++i) ids.push_back(f.api.create_record("Account", "{\"Name\":\"A" + std::to_string(i) + "\"}").id);
  for (int i = 0; i < 100; ++i) REQUIRE(f.api.delete_record("Account", ids[static_cast<std::size_t>(i)]));
  auto r = f.call("GET", "/services/data/v59.0/queryAll?q=SELECT+Id,IsDeleted+FROM+Account", {},
                  {{"Sforce-Query-Options", "batchSize=200"}});
  json page(r.body);
  CHECK((*page)["totalSize"].GetInt() == 450);
  CHECK((*page)["records"].Size() == 200);
  int deleted = 0;
  std::string next = (*page)["nextRecordsUrl"].GetString();
  CHECK(next.find("/queryAll/") != std::string::npos);
  for (const auto& rec : (*page)["records"].GetArray()) deleted += rec["IsDeleted"].GetBool() ? 1 : 0;
  for (int guard = 0; guard < 10 && !next.empty(); ++guard) {
    json more(f.call("GET", next).body);
    for (const auto& rec : (*more)["records"].GetArray()) deleted += rec["IsDeleted"].GetBool() ? 1 : 0;
    next = more->HasMember("nextRecordsUrl") ? (*more)["nextRecordsUrl"].GetString() : "";
  }
  CHECK(deleted == 100);
  json live(f.call("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Account+LIMIT+1").body);
  CHECK((*live)["totalSize"].GetInt() == 1);
}

TEST_CASE("query errors are JSON arrays with MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE") {
  fixture f;
  check_error(f.call("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM"), 400, "MALFORMED_QUERY");
  check_error(f.call("GET", "/services/data/v59.0/query?q=SELECT+Bogus+FROM+Account"), 400, "INVALID_FIELD");
  check_error(f.call("GET", "/services/data/v59.0/query?q=SELECT+Id+FROM+Bogus"), 400, "INVALID_TYPE");
  check_error(f.call("GET", "/services/data/v59.0/query"), 400, "MALFORMED_QUERY");
}

// SOQL subset: parsing, binding, errors and evaluation against the record store.
#include <doctest/doctest.h>

#include "emulator/data/soql.hpp"
#include "emulator/data/values.hpp"

using namespace sfstream::emulator::data;

namespace {

const std::string now = "2026-03-10T12:00:00.000Z";

struct fixture {
  data_options options;
  schema objects{options};
  record_store store;
  id_generator ids;
  std::string user = "0055f000000EmUlAAK";

  std::string add(const std::string& object, field_map values) {
    std::optional<api_error> error;
    const object_def* o = objects.find(object);
    REQUIRE(o != nullptr);
    auto change = store.create(*o, values, user, now, ids.next(o->key_prefix), error);
    REQUIRE_FALSE(error.has_value());
    return change.id;
  }

  std::vector<std::string> names(const std::string& q, bool all = false) {
    api_error error;
    auto query = parse_soql(q, objects, error);
    REQUIRE_MESSAGE(query.has_value(), error.message);
    std::vector<std::string> out;
    for (const record* r : run_soql(*query, store, all, now)) {
      auto it = r->fields.find("Name");
      out.push_back(it == r->fields.end() || is_null(it->second) ? "<null>" : std::get<std::string>(it->second));
    }
    return out;
  }

  api_error failure(const std::string& q) {
    api_error error;
    auto query = parse_soql(q, objects, error);
    CHECK_FALSE(query.has_value());
    return error;
  }

  void seed_accounts() {
    add("Account", {{"Name", std::string("Acme")}, {"Industry", std::string("Energy")}, {"NumberOfEmployees", 100.0}});
    add("Account", {{"Name", std::string("Globex")}, {"Industry", std::string("Media")}, {"NumberOfEmployees", 20.0}});
    add("Account", {{"Name", std::string("Initech")}, {"NumberOfEmployees", 5.0}});
    add("Account", {{"Name", std::string("acme labs")}, {"Industry", std::string("Energy")}});
  }
};

}  // namespace

TEST_CASE("the 18-char id suffix is Salesforce's case-safe checksum") {
  CHECK(id_checksum("0015f00002J9YaU") == "AAV");
  CHECK(to_id18("0015f00002J9YaU") == "0015f00002J9YaUAAV");
  CHECK(is_valid_id("0015f00002J9YaUAAV"));
  CHECK_FALSE(is_valid_id("0015f00002J9YaUAAA"));
  CHECK_FALSE(is_valid_id("001"));
  CHECK(id_checksum("000000000000000") == "AAA");
}

TEST_CASE("generated ids carry the object's key prefix and a valid suffix") {
  id_generator ids;
  const std::string a = ids.next("001");
  const std::string b = ids.next("001");
  const std::string c = ids.next("a00");
  CHECK(a.size() == 18);
  CHECK(a.substr(0, 3) == "001");
  CHECK(c.substr(0, 3) == "a00");
  CHECK(is_valid_id(a));
  CHECK(a < b);
}

TEST_CASE("custom objects get the next free custom key prefix") {
  data_options options;
  options.custom_objects.push_back({"Invoice__c", "", {{"Amount__c", "number", "", false}}});
  options.custom_objects.push_back({"Shipment__c", "", {}});
  schema objects(options);
  REQUIRE(objects.find("invoice__c") != nullptr);
  CHECK(objects.find("Invoice__c")->key_prefix == "a00");
  CHECK(objects.find("Shipment__c")->key_prefix == "a01");
  CHECK(objects.find("Invoice__c")->find_field("amount__c")->type == field_type::number);
  CHECK(objects.find("Invoice__c")->change_event_channel() == "/data/Invoice__ChangeEvent");
  CHECK(objects.find("Account")->change_event_channel() == "/data/AccountChangeEvent");
}

TEST_CASE("a changed platform event definition changes its 22-char schema id") {
  data_options options;
  options.platform_events.push_back({"Low_Ink__e", {{"Serial__c", "string", "", false}}});
  schema objects(options);
  const std::string before = objects.find("Low_Ink__e")->schema_id;
  CHECK(before.size() == 22);
  object_def changed;
  REQUIRE(objects.make_platform_event({"Low_Ink__e", {{"Serial__c", "string", "", false}, {"Level__c", "number", "", false}}}, changed).empty());
  CHECK(changed.schema_id.size() == 22);
  CHECK(changed.schema_id != before);
}

TEST_CASE("datetimes are normalised to UTC with milliseconds") {
  CHECK(parse_datetime("2024-04-09T20:26:27Z") == "2024-04-09T20:26:27.000Z");
  CHECK(parse_datetime("2024-04-09T22:26:27.5+02:00") == "2024-04-09T20:26:27.500Z");
  CHECK(parse_datetime("2024-01-01T00:30:00.000+0100") == "2023-12-31T23:30:00.000Z");
  CHECK_FALSE(parse_datetime("2024-02-30T00:00:00Z").has_value());
  CHECK_FALSE(parse_datetime("yesterday").has_value());
  CHECK(rest_datetime("2024-04-09T20:26:27.000Z") == "2024-04-09T20:26:27.000+0000");
  CHECK(epoch_ms("1970-01-02T00:00:00.001Z") == 86'400'001);
}

TEST_CASE("equality on text is case-insensitive and selects only matching records") {
  fixture f;
  f.seed_accounts();
  CHECK(f.names("SELECT Id, Name FROM Account WHERE Name = 'ACME'") == std::vector<std::string>{"Acme"});
  CHECK(f.names("select id from account where industry != 'Energy'") == std::vector<std::string>{"Globex", "Initech"});
}

TEST_CASE("numeric comparisons, null tests and IN lists filter as SOQL does") {
  fixture f;
  f.seed_accounts();
  CHECK(f.names("SELECT Id FROM Account WHERE NumberOfEmployees >= 20") == std::vector<std::string>{"Acme", "Globex"});
  CHECK(f.names("SELECT Id FROM Account WHERE NumberOfEmployees < 20") == std::vector<std::string>{"Initech"});
  CHECK(f.names("SELECT Id FROM Account WHERE Industry = null") == std::vector<std::string>{"Initech"});
  CHECK(f.names("SELECT Id FROM Account WHERE Industry != null") == std::vector<std::string>{"Acme", "Globex", "acme labs"});
  CHECK(f.names("SELECT Id FROM Account WHERE Industry IN ('media', 'Retail')") == std::vector<std::string>{"Globex"});
  CHECK(f.names("SELECT Id FROM Account WHERE Industry NOT IN ('Media')") == std::vector<std::string>{"Acme", "acme labs"});
}

TEST_CASE("LIKE matches % and _ wildcards case-insensitively and honours escapes") {
  fixture f;
  f.seed_accounts();
  f.add("Account", {{"Name", std::string("100% Juice")}});
  CHECK(f.names("SELECT Id FROM Account WHERE Name LIKE 'acme%'") == std::vector<std::string>{"Acme", "acme labs"});
  CHECK(f.names("SELECT Id FROM Account WHERE Name LIKE '_lobex'") == std::vector<std::string>{"Globex"});
  CHECK(f.names("SELECT Id FROM Account WHERE Name LIKE '%\\%%'") == std::vector<std::string>{"100% Juice"});
}

TEST_CASE("AND, OR and NOT combine with parentheses") {
  fixture f;
  f.seed_accounts();
  CHECK(f.names("SELECT Id FROM Account WHERE (Industry = 'Energy' AND NumberOfEmployees > 50) OR Name = 'Initech'") ==
        std::vector<std::string>{"Acme", "Initech"});
  CHECK(f.names("SELECT Id FROM Account WHERE NOT (Industry = 'Energy' OR Industry = 'Media')") ==
        std::vector<std::string>{"Initech"});
  CHECK(f.names("SELECT Id FROM Account WHERE NOT Name LIKE 'a%'") == std::vector<std::string>{"Globex", "Initech"});
}

TEST_CASE("mixing AND and OR without parentheses is a MALFORMED_QUERY") {
  fixture f;
  auto e = f.failure("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'");
  CHECK(e.error_code == "MALFORMED_QUERY");
  CHECK(e.message.find("unexpected token: 'OR'") != std::string::npos);
}

TEST_CASE("ORDER BY sorts with ASC, DESC and NULLS FIRST or LAST, then LIMIT and OFFSET apply") {
  fixture f;
  f.seed_accounts();
  CHECK(f.names("SELECT Id FROM Account ORDER BY Name") == std::vector<std::string>{"Acme", "acme labs", "Globex", "Initech"});
  CHECK(f.names("SELECT Id FROM Account ORDER BY NumberOfEmployees DESC") ==
        std::vector<std::string>{"Acme", "Globex", "Initech", "acme labs"});
  CHECK(f.names("SELECT Id FROM Account ORDER BY NumberOfEmployees ASC NULLS LAST") ==
        std::vector<std::string>{"Initech", "Globex", "Acme", "acme labs"});
  CHECK(f.names("SELECT Id FROM Account ORDER BY NumberOfEmployees NULLS FIRST LIMIT 2") ==
        std::vector<std::string>{"acme labs", "Initech"});
  CHECK(f.names("SELECT Id FROM Account ORDER BY Industry, Name DESC LIMIT 3 OFFSET 1") ==
        std::vector<std::string>{"acme labs", "Acme", "Globex"});
}

TEST_CASE("date literals and relative dates compare against date fields") {
  fixture f;
  f.add("Opportunity", {{"Name", std::string("past")}, {"StageName", std::string("Prospecting")}, {"CloseDate", std::string("2026-03-01")}});
  f.add("Opportunity", {{"Name", std::string("today")}, {"StageName", std::string("Prospecting")}, {"CloseDate", std::string("2026-03-10")}});
  f.add("Opportunity", {{"Name", std::string("soon")}, {"StageName", std::string("Prospecting")}, {"CloseDate", std::string("2026-03-12")}});
  CHECK(f.names("SELECT Id FROM Opportunity WHERE CloseDate > 2026-03-05") == std::vector<std::string>{"today", "soon"});
  CHECK(f.names("SELECT Id FROM Opportunity WHERE CloseDate = TODAY") == std::vector<std::string>{"today"});
  CHECK(f.names("SELECT Id FROM Opportunity WHERE CloseDate = NEXT_N_DAYS:3") == std::vector<std::string>{"soon"});
  CHECK(f.names("SELECT Id FROM Opportunity WHERE CloseDate < TODAY") == std::vector<std::string>{"past"});
  CHECK(f.names("SELECT Id FROM Opportunity WHERE CreatedDate >= 2026-03-10T00:00:00Z AND CreatedDate = LAST_N_DAYS:2").size() == 3);
}

TEST_CASE("Id filters accept 15- and 18-char ids and refuse malformed ones") {
  fixture f;
  const std::string id = f.add("Account", {{"Name", std::string("Acme")}});
  f.add("Account", {{"Name", std::string("Other")}});
  CHECK(f.names("SELECT Id FROM Account WHERE Id = '" + id.substr(0, 15) + "'") == std::vector<std::string>{"Acme"});
  CHECK(f.names("SELECT Id FROM Account WHERE Id IN ('" + id + "')") == std::vector<std::string>{"Acme"});
  auto e = f.failure("SELECT Id FROM Account WHERE Id = 'nope'");
  CHECK(e.error_code == "INVALID_QUERY_FILTER_OPERATOR");
  CHECK(e.message.find("invalid ID field: nope") != std::string::npos);
}

TEST_CASE("an unknown field is INVALID_FIELD with Salesforce's caret message") {
  fixture f;
  auto e = f.failure("SELECT Id, Foo FROM Account");
  CHECK(e.error_code == "INVALID_FIELD");
  CHECK(e.message ==
        "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity "
        "'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field "
        "name. Please reference your WSDL or the describe call for the appropriate names.");
}

TEST_CASE("an unknown object is INVALID_TYPE") {
  fixture f;
  auto e = f.failure("SELECT Id FROM Nothing__c");
  CHECK(e.error_code == "INVALID_TYPE");
  CHECK(e.message.find("sObject type 'Nothing__c' is not supported.") != std::string::npos);
}

TEST_CASE("truncated and malformed queries are MALFORMED_QUERY") {
  fixture f;
  auto e = f.failure("SELECT Id FROM Account WHERE");
  CHECK(e.error_code == "MALFORMED_QUERY");
  CHECK(e.message.find("unexpected token: '<EOF>'") != std::string::npos);
  CHECK(e.message.find("ERROR at Row:1:Column:29") != std::string::npos);
  CHECK(f.failure("SELECT FROM Account").error_code == "MALFORMED_QUERY");
  CHECK(f.failure("SELECT Id FROM Account WHERE Name = 'open").error_code == "MALFORMED_QUERY");
  CHECK(f.failure("SELECT Id FROM Account WHERE Name = 'a\\q'").error_code == "MALFORMED_QUERY");
  CHECK(f.failure("SELECT Id FROM Account LIMIT x").error_code == "MALFORMED_QUERY");
  CHECK(f.failure("SELECT Id, Id FROM Account").error_code == "MALFORMED_QUERY");
  CHECK(f.failure("SELECT Id FROM Account WHERE Name # 'a'").error_code == "MALFORMED_QUERY");
}

TEST_CASE("a literal of the wrong type for its field is INVALID_FIELD") {
  fixture f;
  auto e = f.failure("SELECT Id FROM Account WHERE NumberOfEmployees = '5'");
  CHECK(e.error_code == "INVALID_FIELD");
  CHECK(e.message.find("value of filter criterion for field 'NumberOfEmployees' must be of type double and should not be enclosed in quotes") != std::string::npos);
  CHECK(f.failure("SELECT Id FROM Account WHERE Name = 5").message.find("should be enclosed in quotes") != std::string::npos);
  CHECK(f.failure("SELECT Id FROM Account WHERE Description = 'x'").message.find("can not be filtered") != std::string::npos);
}

TEST_CASE("queryAll sees deleted records with IsDeleted true and query does not") {
  fixture f;
  f.seed_accounts();
  record* r = f.store.find(std::string(f.store.of("Account").begin()->first));
  REQUIRE(r != nullptr);
  f.store.remove(*r, f.user, now);
  CHECK(f.names("SELECT Id FROM Account").size() == 3);
  CHECK(f.names("SELECT Id FROM Account", true).size() == 4);
  CHECK(f.names("SELECT Id FROM Account WHERE IsDeleted = true", true) == std::vector<std::string>{"Acme"});
}

TEST_CASE("arbitrary query text never throws: it parses or gets an error code and message") {
  fixture f;
  f.seed_accounts();
  const std::string pieces[] = {"SELECT", "Id", ",", "Name", "FROM", "Account", "WHERE", "(", ")", "AND", "OR", "NOT",
                                "=", "!=", "<", ">=", "LIKE", "IN", "'a%'", "'x\\'y'", "5", "-3.5", "null", "true",
                                "TODAY", "LAST_N_DAYS", ":", "2", "2024-01-01", "ORDER", "BY", "DESC", "NULLS", "LAST",
                                "LIMIT", "OFFSET", "COUNT()", "'", "\\", "#", "Industry", "NumberOfEmployees", "Id"};
  std::uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>(state >> 33);
  };
  for (int round = 0; round < 3000; ++round) {
    std::string q = round % 2 == 0 ? "SELECT Id FROM Account WHERE " : "";
    const std::size_t n = 1 + next() % 12;
    for (std::size_t i = 0; i < n; ++i) q += pieces[next() % std::size(pieces)] + std::string(next() % 3 == 0 ? "" : " ");
    api_error error;
    std::optional<soql_query> query;
    CHECK_NOTHROW(query = parse_soql(q, f.objects, error));
    if (query) {
      CHECK_NOTHROW(run_soql(*query, f.store, true, now));
    } else {
      CHECK_FALSE(error.error_code.empty());
      CHECK(error.message.find("ERROR at Row:1:Column:") != std::string::npos);
    }
  }
  api_error error;
  CHECK_FALSE(parse_soql("SELECT Id FROM Account WHERE " + std::string(5000, '('), f.objects, error).has_value());
  CHECK(error.error_code == "MALFORMED_QUERY");
}

#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code through it
#include <string>

#include "sfstream/event.hpp"

namespace {

// Captured Salesforce messages, exactly.
const std::string pushtopic_sample =
    R"({"channel":"/topic/InvoiceStatementUpdates","data":{"event":{"createdDate":"2016-03-29T16:40:08.208Z","replayId":13,"type":"created"},"sobject":{"Name":"INV-0001","Id":"a00D0000008o6y8IAA","Status__c":"Open"}}})";
const std::string generic_sample =
    R"({"clientId":"a1ps4wpe52qytvcvbsko09tapc","data":{"event":{"createdDate":"2016-03-29T19:05:28.334Z","replayId":55},"payload":"Broadcast message to all subscribers"},"channel":"/u/notifications/ExampleUserChannel"})";
const std::string platform_event_sample =
    R"({"data":{"schema":"dffQ2QLzDNHqwB8_sHMxdA","payload":{"CreatedDate":"2017-04-09T18:31:40.517Z","CreatedById":"005D0000001cSZs","Printer_Model__c":"XZO-5","Serial_Number__c":"12345","Ink_Percentage__c":0.2},"event":{"EventUuid":"2ec0e371-1395-457f-9275-be1b527a72f7","replayId":2}},"channel":"/event/Low_Ink__e"})";
const std::string platform_event_2022_sample =
    R"({"data":{"schema":"0c5uHJiCMwqzxeBHzibiag","payload":{"CreatedById":"0055g000004VXJnAAO","CreatedDate":"2022-03-24T15:34:18.123Z","abc__c":"amrt-run"},"event":{"replayId":4817372}},"channel":"/event/PlatformEvent__e"})";
const std::string cdc_header =
    R"({"commitNumber":1082990428293,"commitUser":"0055f000005mc66AAA","sequenceNumber":1,"entityName":"Account","changeType":"CREATE","changedFields":[],"changeOrigin":"com/salesforce/api/soap/60.0;client=SfdcInternalAPI/","transactionKey":"0001ae4b-7024-a64a-87f0-f2c8cebdca76","commitTimestamp":1712694387000,"recordIds":["0015f00002J9YaUAAV"]})";
const std::string cdc_payload =
    R"({"LastModifiedDate":"2024-04-09T20:26:27.000Z","Description":"Sample account record.","CleanStatus":"Pending","OwnerId":"0055f000005mc66AAA","CreatedById":"0055f000005mc66AAA","ChangeEventHeader":)" +
    cdc_header +
    R"(,"CreatedDate":"2024-04-09T20:26:27.000Z","LastModifiedById":"0055f000005mc66AAA","Name":"Acme"})";
const std::string cdc_data = R"({"schema":"V2MGwDA2aIP0yQS98S2L6Q","payload":)" + cdc_payload +
                             R"(,"event":{"replayId":37904280}})";
const std::string cdc_sample =
    R"({"data":)" + cdc_data + R"(,"channel":"/data/AccountChangeEvent"})";

const std::string all_samples[] = {pushtopic_sample, generic_sample, platform_event_sample,
                                   platform_event_2022_sample, cdc_sample};

bool mentions(const sfstream::error_info& why, const std::string& text) {
  return why.to_string().find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("kind_of_channel recognises the four channel kinds and ignores a filter") {
  using sfstream::channel_kind;
  using sfstream::kind_of_channel;
  CHECK(kind_of_channel("/topic/InvoiceStatementUpdates") == channel_kind::topic);
  CHECK(kind_of_channel("/topic/X?Status__c=Open") == channel_kind::topic);
  CHECK(kind_of_channel("/u/notifications/ExampleUserChannel") == channel_kind::generic);
  CHECK(kind_of_channel("/event/Low_Ink__e") == channel_kind::platform_event);
  CHECK(kind_of_channel("/event/Custom__chn") == channel_kind::platform_event);
  CHECK(kind_of_channel("/data/ChangeEvents") == channel_kind::change_data_capture);
  CHECK(kind_of_channel("/data/AccountChangeEvent") == channel_kind::change_data_capture);
  CHECK(kind_of_channel("/meta/connect") == channel_kind::other);
  CHECK(kind_of_channel("/topic/") == channel_kind::other);
  CHECK(kind_of_channel("/topic/?x=1") == channel_kind::other);
  CHECK(kind_of_channel("") == channel_kind::other);
  CHECK(kind_of_channel("topic/X") == channel_kind::other);
}

TEST_CASE("an event keeps its channel, replay id and raw JSON exactly") {
  const sfstream::event e("/topic/InvoiceStatementUpdates", 13, pushtopic_sample);
  CHECK(e.channel() == "/topic/InvoiceStatementUpdates");
  CHECK(e.replay_id() == 13);
  CHECK(e.json() == pushtopic_sample);
  CHECK(e.kind() == sfstream::channel_kind::topic);
  const sfstream::event empty;
  CHECK_FALSE(empty.replay_id().has_value());
  CHECK(empty.data_json().empty());
}

TEST_CASE("data_json returns the data object byte for byte as received") {
  const sfstream::event cdc("/data/AccountChangeEvent", 37904280, cdc_sample);
  CHECK(cdc.data_json() == cdc_data);
  const sfstream::event generic("/u/notifications/ExampleUserChannel", 55, generic_sample);
  CHECK(
      generic.data_json() ==
      R"({"event":{"createdDate":"2016-03-29T19:05:28.334Z","replayId":55},"payload":"Broadcast message to all subscribers"})");
}

TEST_CASE("data_json keeps inner whitespace, nesting, numbers and escapes untouched") {
  const std::string spaced =
      "{ \"channel\" : \"/u/x\" ,\n \"data\"\t:\n { \"a\" : [1, 2.50, {\"data\": 1e2}],"
      " \"s\": \"q\\\"}\\u00e9\" } , \"tail\": [] }";
  const sfstream::event e("/u/x", std::nullopt, spaced);
  CHECK(e.data_json() == "{ \"a\" : [1, 2.50, {\"data\": 1e2}], \"s\": \"q\\\"}\\u00e9\" }");
  CHECK(sfstream::event("/u/x", 1, R"({"data":5,"channel":"/u/x"})").data_json() == "5");
  CHECK(sfstream::event("/u/x", 1, R"({"data":"text","channel":"/u/x"})").data_json() ==
        "\"text\"");
  CHECK(sfstream::event("/u/x", 1, R"({"data":[[],[{}]]})").data_json() == "[[],[{}]]");
  // A key spelled with an escape is still the member "data".
  CHECK(sfstream::event("/u/x", 1, R"({"d\u0061ta":{"k":1}})").data_json() == R"({"k":1})");
  // A nested "data" key is not the message's data member.
  CHECK(sfstream::event("/u/x", 1, R"({"x":{"data":1}})").data_json().empty());
  // The first of duplicate members wins, as in the typed views.
  CHECK(sfstream::event("/u/x", 1, R"({"data":{"n":1},"data":{"n":2}})").data_json() ==
        R"({"n":1})");
}

TEST_CASE("data_json of malformed or data-less messages is empty") {
  for (const std::string& text :
       {std::string(""), std::string("{"), std::string("[]"), std::string("{\"data\":}"),
        std::string("{\"data\":{}} x"), std::string("{\"channel\":\"/u/x\"}"),
        std::string("{\"data\":{}}\0junk", 15), std::string("null")}) {
    INFO("text: " << text);
    CHECK(sfstream::event("/u/x", 1, text).data_json().empty());
  }
}

TEST_CASE("a PushTopic sample reads as type, createdDate and the sobject text") {
  const sfstream::event e("/topic/InvoiceStatementUpdates", 13, pushtopic_sample);
  sfstream::error_info why{sfstream::errc::timeout, {}};
  const auto data = e.as_pushtopic(&why);
  CHECK_FALSE(why);
  CHECK(data.type == "created");
  CHECK(data.created_date == "2016-03-29T16:40:08.208Z");
  CHECK(data.sobject_json == R"({"Name":"INV-0001","Id":"a00D0000008o6y8IAA","Status__c":"Open"})");
}

TEST_CASE("a PushTopic delete carrying only the Id reads with that sobject") {
  const std::string deleted =
      R"({"channel":"/topic/T","data":{"event":{"createdDate":"2018-01-01T00:00:00.000Z","replayId":7,"type":"deleted"},"sobject":{"Id":"a00D0000008o6y8IAA"}}})";
  sfstream::error_info why;
  const auto data = sfstream::event("/topic/T", 7, deleted).as_pushtopic(&why);
  CHECK_FALSE(why);
  CHECK(data.type == "deleted");
  CHECK(data.sobject_json == R"({"Id":"a00D0000008o6y8IAA"})");
}

TEST_CASE("a generic streaming sample reads as its payload string and createdDate") {
  const sfstream::event e("/u/notifications/ExampleUserChannel", 55, generic_sample);
  sfstream::error_info why;
  const auto data = e.as_generic(&why);
  CHECK_FALSE(why);
  CHECK(data.payload == "Broadcast message to all subscribers");
  CHECK(data.created_date == "2016-03-29T19:05:28.334Z");
}

TEST_CASE("a platform event sample reads as schema, payload text and EventUuid") {
  const sfstream::event e("/event/Low_Ink__e", 2, platform_event_sample);
  sfstream::error_info why;
  const auto data = e.as_platform_event(&why);
  CHECK_FALSE(why);
  CHECK(data.schema == "dffQ2QLzDNHqwB8_sHMxdA");
  CHECK(
      data.payload_json ==
      R"({"CreatedDate":"2017-04-09T18:31:40.517Z","CreatedById":"005D0000001cSZs","Printer_Model__c":"XZO-5","Serial_Number__c":"12345","Ink_Percentage__c":0.2})");
  CHECK(data.event_uuid == "2ec0e371-1395-457f-9275-be1b527a72f7");
}

TEST_CASE("a platform event without EventUuid (before API 52.0) reads with no uuid") {
  const sfstream::event e("/event/PlatformEvent__e", 4817372, platform_event_2022_sample);
  sfstream::error_info why;
  const auto data = e.as_platform_event(&why);
  CHECK_FALSE(why);
  CHECK(data.schema == "0c5uHJiCMwqzxeBHzibiag");
  CHECK_FALSE(data.event_uuid.has_value());
  CHECK(
      data.payload_json ==
      R"({"CreatedById":"0055g000004VXJnAAO","CreatedDate":"2022-03-24T15:34:18.123Z","abc__c":"amrt-run"})");
}

TEST_CASE("a change data capture sample reads as entity, change type, ids, header and payload") {
  const sfstream::event e("/data/AccountChangeEvent", 37904280, cdc_sample);
  sfstream::error_info why;
  const auto data = e.as_change(&why);
  CHECK_FALSE(why);
  CHECK(data.entity_name == "Account");
  CHECK(data.change_type == "CREATE");
  REQUIRE(data.record_ids.size() == 1);
  CHECK(data.record_ids[0] == "0015f00002J9YaUAAV");
  CHECK(data.header_json == cdc_header);
  CHECK(data.payload_json == cdc_payload);
}

TEST_CASE("a merged change event with several and wildcard record ids keeps them all") {
  const std::string merged =
      R"({"data":{"schema":"s","payload":{"ChangeEventHeader":{"entityName":"Account","changeType":"GAP_UPDATE","recordIds":["001A","001B","001*"]}},"event":{"replayId":9}},"channel":"/data/ChangeEvents"})";
  sfstream::error_info why;
  const auto data = sfstream::event("/data/ChangeEvents", 9, merged).as_change(&why);
  CHECK_FALSE(why);
  CHECK(data.change_type == "GAP_UPDATE");
  CHECK(data.record_ids == std::vector<std::string>{"001A", "001B", "001*"});
}

TEST_CASE("each typed view refuses the other kinds' samples with protocol_error") {
  const sfstream::event pushtopic("/topic/InvoiceStatementUpdates", 13, pushtopic_sample);
  const sfstream::event generic("/u/notifications/ExampleUserChannel", 55, generic_sample);
  const sfstream::event platform("/event/Low_Ink__e", 2, platform_event_sample);
  const sfstream::event cdc("/data/AccountChangeEvent", 37904280, cdc_sample);
  sfstream::error_info why;

  (void)pushtopic.as_generic(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(mentions(why, "data.payload"));
  (void)generic.as_pushtopic(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(mentions(why, "data.event.type"));
  (void)generic.as_platform_event(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(mentions(why, "data.schema"));
  (void)platform.as_change(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(mentions(why, "ChangeEventHeader"));
  (void)cdc.as_pushtopic(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  (void)cdc.as_generic(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  (void)pushtopic.as_change(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  CHECK(mentions(why, "/topic/InvoiceStatementUpdates"));
}

TEST_CASE("a failed typed view returns empty data and names what is missing or wrong") {
  struct bad_case {
    const char* json;
    const char* expected;
  };
  sfstream::error_info why;

  for (const bad_case& c : {
           bad_case{R"({"data":{"event":{"createdDate":"d","type":"created"}}})", "data.sobject"},
           bad_case{R"({"data":{"event":{"createdDate":"d","type":"exploded"},"sobject":{}}})",
                    "\"exploded\" is not one of created, updated, deleted, undeleted"},
           bad_case{R"({"data":{"event":{"type":"created"},"sobject":{}}})",
                    "data.event.createdDate"},
           bad_case{R"({"data":{"event":{"createdDate":"d","type":7},"sobject":{}}})",
                    "data.event.type"},
           bad_case{R"({"data":{"sobject":{}}})", "data.event"},
           bad_case{R"({"data":[]})", "data is missing or is not an object"},
           bad_case{R"({"channel":"/topic/X"})", "data is missing"},
           bad_case{R"([1,2])", "not a JSON object"},
           bad_case{R"({"data":)", "not valid JSON"},
       }) {
    INFO("json: " << c.json);
    const auto data = sfstream::event("/topic/X", 1, c.json).as_pushtopic(&why);
    CHECK(why.code == sfstream::errc::protocol_error);
    CHECK(mentions(why, c.expected));
    CHECK(data.type.empty());
    CHECK(data.sobject_json.empty());
  }

  (void)sfstream::event("/u/x", 1, R"({"data":{"payload":{"a":1},"event":{"createdDate":"d"}}})")
      .as_generic(&why);
  CHECK(mentions(why, "data.payload is missing or is not a string"));
  (void)sfstream::event("/event/E__e", 1,
                        R"({"data":{"schema":"s","payload":{},"event":{"EventUuid":5}}})")
      .as_platform_event(&why);
  CHECK(mentions(why, "EventUuid"));
  (void)sfstream::event("/event/E__e", 1, R"({"data":{"schema":"s","payload":"x","event":{}}})")
      .as_platform_event(&why);
  CHECK(mentions(why, "data.payload is missing or is not an object"));
  (void)sfstream::event(
      "/data/X", 1,
      R"({"data":{"payload":{"ChangeEventHeader":{"entityName":"A","changeType":"SNAPSHOT","recordIds":[]}}}})")
      .as_change(&why);
  CHECK(mentions(why, "changeType \"SNAPSHOT\" is not one of"));
  (void)sfstream::event(
      "/data/X", 1,
      R"({"data":{"payload":{"ChangeEventHeader":{"entityName":"A","changeType":"UPDATE","recordIds":[1]}}}})")
      .as_change(&why);
  CHECK(mentions(why, "recordIds"));
  (void)sfstream::event(
      "/data/X", 1,
      R"({"data":{"payload":{"ChangeEventHeader":{"changeType":"UPDATE","recordIds":[]}}}})")
      .as_change(&why);
  CHECK(mentions(why, "entityName"));
}

TEST_CASE("a successful view clears an error left in the caller's error_info") {
  sfstream::error_info why{sfstream::errc::protocol_error, {"x", "y", "z"}};
  (void)sfstream::event("/topic/InvoiceStatementUpdates", 13, pushtopic_sample).as_pushtopic(&why);
  CHECK_FALSE(why);
  CHECK(why.diag.empty());
}

TEST_CASE("typed views without an error_info report failure by empty data only") {
  const sfstream::event bad("/topic/X", 1, "{");
  CHECK(bad.as_pushtopic().type.empty());
  CHECK(bad.as_generic().payload.empty());
  CHECK(bad.as_platform_event().schema.empty());
  CHECK(bad.as_change().entity_name.empty());
}

TEST_CASE("every truncation and byte corruption of the samples is refused without a crash") {
  for (const std::string& sample : all_samples) {
    for (std::size_t length = 0; length < sample.size(); ++length) {
      const sfstream::event e("/topic/X", 1, sample.substr(0, length));
      sfstream::error_info why;
      (void)e.data_json();
      (void)e.as_pushtopic(&why);
      CHECK(why.code == sfstream::errc::protocol_error);
      (void)e.as_generic(&why);
      CHECK(why.code == sfstream::errc::protocol_error);
      (void)e.as_platform_event(&why);
      CHECK(why.code == sfstream::errc::protocol_error);
      (void)e.as_change(&why);
      CHECK(why.code == sfstream::errc::protocol_error);
    }
    for (std::size_t at = 0; at < sample.size(); ++at) {
      for (const char replacement : {'\0', '"', '{', ']', '\\', '\xff'}) {
        std::string corrupted = sample;
        corrupted[at] = replacement;
        const sfstream::event e("/u/x", 1, corrupted);
        sfstream::error_info why;
        (void)e.data_json();
        (void)e.as_pushtopic(&why);
        (void)e.as_generic(&why);
        (void)e.as_platform_event(&why);
        (void)e.as_change(&why);
      }
    }
  }
}

TEST_CASE("deeply nested input is refused or read without exhausting the stack") {
  const std::string deep =
      "{\"data\":" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  const sfstream::event e("/u/x", 1, deep);
  CHECK(e.data_json().size() == 400'000);
  sfstream::error_info why;
  (void)e.as_generic(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
  const sfstream::event open_only("/u/x", 1, std::string(200'000, '{'));
  CHECK(open_only.data_json().empty());
  (void)open_only.as_change(&why);
  CHECK(why.code == sfstream::errc::protocol_error);
}

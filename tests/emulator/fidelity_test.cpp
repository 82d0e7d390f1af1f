// Conformance of the replies where Salesforce's shape is easy to get wrong: the exact texts
// of too-busy failures, limits and final unknown-client replies, the cookies of a handshake,
// two clients sharing one browser, an unanswered disconnect.
#include <doctest/doctest.h>

#include <future>
#include <regex>
#include <thread>

#include "tests/emulator/cometd_harness.hpp"

using namespace emulator_test;
using sfstream::emulator::fault_kind;

namespace {

constexpr const char* handshake_body = R"([{"channel":"/meta/handshake","id":"1","version":"1.0"}])";

std::string connect_body(const std::string& cid, const std::string& id) {
  return R"([{"channel":"/meta/connect","clientId":")" + cid + R"(","connectionType":"long-polling","id":")" + id + "\"}]";
}

}  // namespace

TEST_CASE("too busy: a handshake is denied with the 503 text as failureReason and advice none") {
  harness h;
  h.run([&] { h.org().make_too_busy(1); });
  auto r = h.cometd(handshake_body, h.token());
  CHECK(r.body ==
        R"([{"ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."},"replay":true,"payload.format":true},"advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1","error":"403::Handshake denied","successful":false}])");
}

TEST_CASE("too busy: a connect fails with 401::Authentication invalid and the 503 text as failureReason") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.run([&] { h.org().make_too_busy(1); });
  auto r = h.cometd(connect_body(cid, "2"), token);
  CHECK(r.body ==
        "[{\"clientId\":\"" + cid +
            R"(","channel":"/meta/connect","id":"2","ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."}},"error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
}

TEST_CASE("too busy: a subscribe fails with 401::Authentication invalid and the 503 text as failureReason") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.run([&] {
    h.org().rest().create_streaming_channel("/u/Busy");
    h.org().make_too_busy(1);
  });
  auto r = h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":"/u/Busy","id":"3"}])", token);
  CHECK(r.body ==
        "[{\"clientId\":\"" + cid +
            R"(","channel":"/meta/subscribe","id":"3","subscription":"/u/Busy","ext":{"sfdc":{"failureReason":"503::Server is too busy.  Please try your request again later."}},"error":"401::Authentication invalid","advice":{"reconnect":"none","interval":0},"successful":false}])");
}

namespace {

/// Defines Note__e, publishes one event through REST at `rest_version` and returns the text of
/// the event message a subscriber on /cometd/<endpoint> gets for it (replayed with -2).
std::string platform_event_seen_at(const std::string& endpoint, const std::string& rest_version) {
  auto options = test_options();
  options.data.platform_events = {{"Note__e", {{"Body__c", "string", "", false}}}};
  harness h(options);
  const auto token = h.token();
  auto published = h.send("POST", "/services/data/v" + rest_version + "/sobjects/Note__e", R"({"Body__c":"hi"})",
                          {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  REQUIRE(published.status == 201);
  const std::string path = "/cometd/" + endpoint;
  auto hs = h.cometd(handshake_body, token, path);
  const auto cid = client_id_of(hs.body);
  REQUIRE_FALSE(cid.empty());
  h.cometd(connect_body(cid, "2"), token, path);
  h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + cid +
               R"(","subscription":"/event/Note__e","id":"3","ext":{"replay":{"/event/Note__e":-2}}}])",
           token, path);
  auto r = h.cometd(connect_body(cid, "4"), token, path);
  const auto start = r.body.find(R"({"data":)");
  REQUIRE(start != std::string::npos);
  return r.body.substr(start, r.body.find(R"(,"channel":"/event/Note__e"})") - start);
}

}  // namespace

TEST_CASE("EventUuid: the subscriber's endpoint version decides, not the publisher's REST version") {
  const std::string old_endpoint = platform_event_seen_at("51.0", "59.0");
  CHECK(old_endpoint.find("EventUuid") == std::string::npos);
  CHECK(old_endpoint.find(R"("event":{"replayId":1})") != std::string::npos);
  const std::string new_endpoint = platform_event_seen_at("52.0", "51.0");
  static const std::regex uuid(R"("event":\{"EventUuid":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","replayId":1\})");
  CHECK(std::regex_search(new_endpoint, uuid));
}

TEST_CASE("cookies: a handshake sets BAYEUX_BROWSER, t, force-stream and sfdc-stream, with '/', '+', '=' and '!' in the values") {
  harness h;
  auto r = h.cometd(handshake_body, h.token());
  const auto cookies = r.all("Set-Cookie");
  REQUIRE(cookies.size() == 4);
  CHECK(cookies[0].rfind("BAYEUX_BROWSER=", 0) == 0);
  CHECK(cookies[0].find("; Path=/cometd/; HttpOnly") != std::string::npos);
  static const std::regex t(R"(^t=![A-Za-z0-9]{20}/[A-Za-z0-9]{12}\+[A-Za-z0-9]{10}=; Path=/cometd/; HttpOnly$)");
  CHECK(std::regex_match(cookies[1], t));
  static const std::regex force(R"(^force-stream=![A-Za-z0-9]{20}/[A-Za-z0-9]{12}\+[A-Za-z0-9]{10}=; Path=/; SameSite=None$)");
  CHECK(std::regex_match(cookies[2], force));
  CHECK(cookies[3].rfind("sfdc-stream=!", 0) == 0);
}

TEST_CASE("cookies: a t or force-stream value that comes back changed reaches a server that does not know the client") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  REQUIRE_FALSE(cid.empty());
  std::string mangled = h.cookies().at("t");
  const auto plus = mangled.find('+');
  REQUIRE(plus != std::string::npos);
  mangled.replace(plus, 1, "%2B");  // a proxy re-encoding the value
  std::string jar;
  for (const auto& [name, value] : h.cookies()) jar += name + "=" + (name == "t" ? mangled : value) + "; ";
  auto r = h.send("POST", "/cometd/59.0", connect_body(cid, "2"), {{"Authorization", "Bearer " + token}, {"Cookie", jar}});
  CHECK(r.body ==
        R"([{"advice":{"interval":0,"reconnect":"handshake"},"channel":"/meta/connect","id":"2","error":"403::Unknown client","successful":false}])");
  // Sent back as issued, the same client is known.
  auto ok = h.cometd(connect_body(cid, "3"), token);
  CHECK(ok.body.find(R"("successful":true)") != std::string::npos);
}

TEST_CASE("cookies: SOAP login and the OAuth token endpoint set a BrowserId cookie") {
  harness h;
  auto soap = h.send("POST", "/services/Soap/u/59.0",
                     R"(<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:n1="urn:partner.soap.sforce.com"><env:Body><n1:login><n1:username>demo@sfstream.local</n1:username><n1:password>demo-passDEMOTOKEN0000000000000</n1:password></n1:login></env:Body></env:Envelope>)",
                     {{"Content-Type", "text/xml"}, {"SOAPAction", "login"}});
  REQUIRE(soap.status == 200);
  static const std::regex browser_id(R"(^BrowserId=[A-Za-z0-9_-]{22}; path=/; Max-Age=31536000$)");
  CHECK(std::regex_match(soap.header("Set-Cookie"), browser_id));
  auto oauth = h.send("POST", "/services/oauth2/token",
                      "grant_type=password&client_id=sfstream-demo-client&client_secret=sfstream-demo-secret"
                      "&username=demo%40sfstream.local&password=demo-passDEMOTOKEN0000000000000",
                      {{"Content-Type", "application/x-www-form-urlencoded"}});
  REQUIRE(oauth.status == 200);
  CHECK(std::regex_match(oauth.header("Set-Cookie"), browser_id));
}

TEST_CASE("one browser: a second client in the same cookie jar gets the multiple-clients advice, not a 400") {
  auto options = test_options();
  options.long_poll_timeout = std::chrono::milliseconds{3000};
  options.client_expiry = std::chrono::milliseconds{3000};
  harness h(options);  // one cookie map: one browser
  const auto token = h.token();
  const auto first = h.handshake(token);
  const auto second = h.handshake(token);
  REQUIRE_FALSE(first.empty());
  REQUIRE_FALSE(second.empty());
  h.cometd(connect_body(first, "2"), token);
  h.cometd(connect_body(second, "2"), token);
  // The first client's connect is held (long poll) while the second one connects.
  auto held = std::async(std::launch::async, [&] { return h.cometd(connect_body(first, "3"), token); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // well inside the 3 s hold
  auto advised = h.cometd(connect_body(second, "3"), token);
  CHECK(advised.body == "[{\"clientId\":\"" + second +
                            R"(","advice":{"interval":2000,"multiple-clients":true,"reconnect":"retry","timeout":3000},"channel":"/meta/connect","id":"3","successful":true}])");
  CHECK(held.get().body == "[{\"clientId\":\"" + first + R"(","channel":"/meta/connect","id":"3","successful":true}])");
}

TEST_CASE("unanswered disconnect: the reply never comes, the client is forgotten all the same") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  REQUIRE_FALSE(cid.empty());
  h.run([&] { h.org().inject_bayeux_fault(fault_kind::unanswered_disconnect, 1); });
  auto r = h.cometd(R"([{"channel":"/meta/disconnect","clientId":")" + cid + R"(","id":"2"}])", token,
                    "/cometd/59.0", std::chrono::milliseconds(800));
  CHECK(r.failed);  // no reply within the deadline
  CHECK(h.run([&] { return h.org().client_count(); }) == 0);
  auto after = h.cometd(connect_body(cid, "3"), token);
  CHECK(after.body ==
        R"([{"advice":{"interval":0,"reconnect":"handshake"},"channel":"/meta/connect","id":"3","error":"403::Unknown client","successful":false}])");
  // The next disconnect is answered again.
  const auto again = h.handshake(token);
  auto answered = h.cometd(R"([{"channel":"/meta/disconnect","clientId":")" + again + R"(","id":"4"}])", token);
  CHECK(answered.body == R"([{"channel":"/meta/disconnect","clientId":")" + again + R"(","id":"4","successful":true}])");
}

TEST_CASE("push resource: GET lists the users online on the channel") {
  harness h;
  const auto token = h.token();
  const auto channel_id = h.run([&] { return h.org().rest().create_streaming_channel("/u/Online").id; });
  const std::string push = "/services/data/v59.0/sobjects/StreamingChannel/" + channel_id + "/push";
  auto before = h.send("GET", push, "", {{"Authorization", "Bearer " + token}});
  CHECK(before.body == R"({"OnlineUserIds":[],"ChannelName":"/u/Online"})");
  const auto cid = h.handshake(token);
  h.cometd(R"([{"channel":"/meta/subscribe","clientId":")" + cid + R"(","subscription":"/u/Online","id":"2"}])", token);
  auto online = h.send("GET", push, "", {{"Authorization", "Bearer " + token}});
  CHECK(online.body == R"({"OnlineUserIds":["005DM0000000001AAA"],"ChannelName":"/u/Online"})");
  h.cometd(R"([{"channel":"/meta/unsubscribe","clientId":")" + cid + R"(","subscription":"/u/Online","id":"3"}])", token);
  auto after = h.send("GET", push, "", {{"Authorization", "Bearer " + token}});
  CHECK(after.body == R"({"OnlineUserIds":[],"ChannelName":"/u/Online"})");
}

namespace {

std::string soap_call(const std::string& session, const std::string& operation) {
  return R"(<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:n1="urn:partner.soap.sforce.com"><env:Header><n1:SessionHeader><n1:sessionId>)" +
         session + "</n1:sessionId></n1:SessionHeader></env:Header><env:Body><n1:" + operation + "/></env:Body></env:Envelope>";
}

}  // namespace

TEST_CASE("SOAP logout() ends the session, and a call with it afterwards gets INVALID_SESSION_ID with Salesforce's text") {
  harness h;
  const auto token = h.token();
  const std::vector<std::pair<std::string, std::string>> soap_headers = {{"Content-Type", "text/xml"},
                                                                         {"SOAPAction", "logout"}};
  const std::string server_url = "/services/Soap/u/59.0/00DDM0000000001";
  auto out = h.send("POST", server_url, soap_call(token, "logout"), soap_headers);
  CHECK(out.status == 200);
  CHECK(out.body ==
        R"(<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>)");
  // The session is gone: CometD refuses it, and so does a second logout.
  auto denied = h.cometd(handshake_body, token);
  CHECK(denied.body.find(R"("failureReason":"401::Authentication invalid")") != std::string::npos);
  auto again = h.send("POST", server_url, soap_call(token, "logout"), soap_headers);
  CHECK(again.status == 500);
  static const std::regex invalid(
      R"(^<\?xml version="1.0" encoding="UTF-8"\?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode><faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session. Session not found, missing session hash: [A-Za-z0-9+/]{43}=\nThis error usually occurs after a session expires or a user logs out. </faultstring><detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault"><sf:exceptionCode>INVALID_SESSION_ID</sf:exceptionCode><sf:exceptionMessage>Invalid Session ID found in SessionHeader: Illegal Session. Session not found, missing session hash: [A-Za-z0-9+/]{43}=\nThis error usually occurs after a session expires or a user logs out. </sf:exceptionMessage></sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>$)");
  CHECK(std::regex_match(again.body, invalid));
  // Never a session id in the fault: only its hash.
  CHECK(again.body.find(token) == std::string::npos);
  auto bogus = h.send("POST", server_url, soap_call("00DDM0000000001!nope", "getUserInfo"), soap_headers);
  CHECK(bogus.status == 500);
  CHECK(bogus.body.find("<faultcode>sf:INVALID_SESSION_ID</faultcode>") != std::string::npos);
}

TEST_CASE("unknown client, bare page: neither channel nor id nor clientId, advice handshake") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  h.run([&] { h.org().inject_bayeux_fault(fault_kind::unknown_client_page, 1); });
  auto r = h.cometd(connect_body(cid, "3"), token);
  CHECK(r.body ==
        R"([{"error":"403::Unknown client","successful":false,"advice":{"interval":0,"reconnect":"handshake"}}])");
  // The client is forgotten: its next connect is the usual unknown-client reply.
  auto after = h.cometd(connect_body(cid, "4"), token);
  CHECK(after.body.find("403::Unknown client") != std::string::npos);
  CHECK(after.body.find(R"("reconnect":"handshake")") != std::string::npos);
}

TEST_CASE("a session of another user than the handshake's: 400 with Salesforce's text") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  h.run([&] { h.org().inject_bayeux_fault(fault_kind::session_user_mismatch, 1); });
  auto r = h.cometd(connect_body(cid, "3"), token);
  CHECK(r.body.find(R"("error":"400::Authenticated user id does not match the session's user id")") !=
        std::string::npos);
  CHECK(r.body.find(R"("channel":"/meta/connect","id":"3")") != std::string::npos);
}

TEST_CASE("unknown client, final: the reply with reconnect none carries the clientId") {
  harness h;
  const auto token = h.token();
  const auto cid = h.handshake(token);
  h.cometd(connect_body(cid, "2"), token);
  h.run([&] { h.org().inject_bayeux_fault(fault_kind::unknown_client_final, 1); });
  auto r = h.cometd(connect_body(cid, "3"), token);
  CHECK(r.body == "[{\"clientId\":\"" + cid +
                      R"(","advice":{"interval":0,"reconnect":"none"},"channel":"/meta/connect","id":"3","error":"403::Unknown client","successful":false}])");
}

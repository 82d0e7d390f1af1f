// The REST client: token from the credentials provider, one fresh connection per call through
// transport::async_http_request, JSON through RapidJSON.
#include "sfstream/rest.hpp"

#include <atomic>

#include <rapidjson/document.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "src/cdc/json_value.hpp"
#include "src/transport/http_client.hpp"
#include "src/transport/options.hpp"

namespace asio = boost::asio;

namespace sfstream {

namespace {

error_info make_error(errc code, std::string text, std::string context) {
  error_info e;
  e.code = make_error_code(code);
  e.diag.server_text = std::move(text);
  e.diag.context = std::move(context);
  return e;
}

/// "GET /services/data/v59.0/queryAll": what a call was doing, without its query string.
std::string describe_call(const std::string& method, const std::string& path) {
  return method + " " + path.substr(0, path.find('?'));
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string text_of(const rapidjson::Value* v) {
  return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : std::string();
}

std::optional<sobject_record> to_record(const rapidjson::Value& v, std::string& problem) {
  sobject_record r;
  if (!cdc_detail::to_fields(v, r.fields, problem)) return std::nullopt;
  if (const auto* a = member(v, "attributes")) r.type = text_of(member(*a, "type"));
  r.id = text_of(member(v, "Id"));
  return r;
}

}  // namespace

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0f];
    }
  }
  return out;
}

std::optional<query_page> parse_query_page(std::string_view json, error_info* why) {
  auto fail = [&](std::string text) -> std::optional<query_page> {
    if (why) *why = make_error(errc::protocol_error, std::move(text), "reading a query result");
    return std::nullopt;
  };
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return fail("the query result is not a JSON object");
  query_page page;
  const auto* total = member(doc, "totalSize");
  if (!total || !total->IsUint64()) return fail("the query result has no totalSize");
  page.total_size = static_cast<std::size_t>(total->GetUint64());
  const auto* done = member(doc, "done");
  if (!done || !done->IsBool()) return fail("the query result has no done flag");
  page.done = done->GetBool();
  if (const auto* next = member(doc, "nextRecordsUrl"); next && next->IsString())
    page.next_records_url.assign(next->GetString(), next->GetStringLength());
  if (!page.done && page.next_records_url.empty())
    return fail("the query result is not done but has no nextRecordsUrl");
  if (!page.done && page.next_records_url.rfind("/services/", 0) != 0)
    return fail("nextRecordsUrl is not a /services/ path");
  const auto* records = member(doc, "records");
  if (!records || !records->IsArray()) return fail("the query result has no records array");
  std::string problem;
  for (const auto& r : records->GetArray()) {
    auto rec = to_record(r, problem);
    if (!rec) return fail("a record is malformed: " + problem);
    page.records.push_back(std::move(*rec));
  }
  if (why) *why = {};
  return page;
}

error_info parse_rest_error(unsigned status, std::string_view body, std::string context) {
  error_info e;
  e.code = make_error_code(status == 401 ? errc::auth_rejected : errc::http_status);
  e.cause = make_http_status_code(status);
  e.diag.context = std::move(context);
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  const rapidjson::Value* first = nullptr;
  if (!doc.HasParseError()) {
    if (doc.IsArray() && !doc.Empty()) first = &doc[0];
    if (doc.IsObject()) first = &doc;
  }
  if (first) {
    e.diag.server_code = text_of(member(*first, "errorCode"));
    e.diag.server_text = text_of(member(*first, "message"));
  }
  if (e.diag.server_code.empty()) e.diag.server_code = std::to_string(status);
  if (e.diag.server_text.empty()) e.diag.server_text = "HTTP status " + std::to_string(status);
  e.diag.server_text = e.diag.server_text.substr(0, 2000);
  return e;
}

// --- rest_client -----------------------------------------------------------------------------

struct rest_client::impl : std::enable_shared_from_this<rest_client::impl> {
  asio::any_io_executor executor;
  rest_options options;
  transport::transport_options transport;
  std::shared_ptr<asio::ssl::context> tls;
  error_info setup_error;

  impl(asio::any_io_executor ex, rest_options o) : executor(std::move(ex)), options(std::move(o)) {
    transport = transport::make_transport_options(options.network, &setup_error);
    if (!setup_error) tls = transport::make_client_tls_context(transport, &setup_error);
    if (!setup_error && !options.credentials)
      setup_error = make_error(errc::auth_no_credentials,
                               "the REST client has no credentials provider", "REST");
  }

  void request(std::string method, std::string path, std::string body, raw_handler done) {
    if (setup_error) {
      asio::post(executor, [done = std::move(done), e = setup_error] { done(e, 0, {}); });
      return;
    }
    attempt(std::make_shared<call>(
                call{std::move(method), std::move(path), std::move(body), std::move(done)}),
            false);
  }

 private:
  struct call {
    std::string method;
    std::string path;
    std::string body;
    raw_handler done;
  };

  void attempt(std::shared_ptr<call> c, bool refreshed) {
    options.credentials->async_token(
        refreshed, [self = shared_from_this(), c, refreshed](error_info e, access_token t) {
          asio::post(self->executor,
                     [self, c, refreshed, e = std::move(e), t = std::move(t)]() mutable {
                       if (e) {
                         c->done(std::move(e), 0, {});
                         return;
                       }
                       self->send(std::move(c), refreshed, std::move(t));
                     });
        });
  }

  void send(std::shared_ptr<call> c, bool refreshed, access_token token) {
    const std::string context = describe_call(c->method, c->path);
    error_info why;
    auto target = transport::url::parse(token.instance_url + c->path, &why);
    if (!target) {
      why.diag.context = context;
      c->done(std::move(why), 0, {});
      return;
    }
    transport::http_request req;
    req.method = c->method;
    req.target = target->target;
    req.headers.emplace_back(
        "Authorization",
        (token.token_type.empty() ? std::string("Bearer") : token.token_type) + " " + token.token);
    req.headers.emplace_back("Accept", "application/json");
    if (options.batch_size > 0)
      req.headers.emplace_back("Sforce-Query-Options",
                               "batchSize=" + std::to_string(options.batch_size));
    if (!c->body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    req.body = c->body;
    transport::async_http_request(
        executor, tls, transport, *target, std::move(req), options.network.request_timeout,
        [self = shared_from_this(), c, refreshed, context](error_info e,
                                                           transport::http_response r) mutable {
          if (e) {
            if (e.diag.context.empty()) e.diag.context = context;
            c->done(std::move(e), 0, {});
          } else if (r.status == 401 && !refreshed) {
            self->attempt(std::move(c), true);
          } else if (r.status >= 200 && r.status < 300) {
            c->done({}, r.status, std::move(r.body));
          } else {
            c->done(parse_rest_error(r.status, r.body, context), r.status, {});
          }
        });
  }
};

rest_client::rest_client(asio::any_io_executor executor, rest_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

rest_client::~rest_client() = default;

void rest_client::async_query(const std::string& soql, bool include_deleted, query_handler done) {
  std::string path = "/services/data/v" + impl_->options.api_version +
                     (include_deleted ? "/queryAll" : "/query") + "?q=" + url_encode(soql);
  async_next_page(path, std::move(done));
}

void rest_client::async_next_page(const std::string& next_records_url, query_handler done) {
  impl_->request("GET", next_records_url, {},
                 [done = std::move(done)](error_info e, unsigned, std::string body) {
                   if (e) {
                     done(std::move(e), {});
                     return;
                   }
                   error_info why;
                   auto page = parse_query_page(body, &why);
                   if (!page) {
                     done(std::move(why), {});
                     return;
                   }
                   done({}, std::move(*page));
                 });
}

void rest_client::async_get(const std::string& sobject, const std::string& id,
                            const std::vector<std::string>& fields, record_handler done) {
  std::string path = "/services/data/v" + impl_->options.api_version + "/sobjects/" +
                     url_encode(sobject) + "/" + url_encode(id);
  if (!fields.empty()) {
    std::string list;
    for (const auto& f : fields) list += (list.empty() ? "" : ",") + f;
    path += "?fields=" + url_encode(list);
  }
  impl_->request(
      "GET", path, {},
      [done = std::move(done), sobject, id](error_info e, unsigned, std::string body) {
        if (e) {
          done(std::move(e), {});
          return;
        }
        rapidjson::Document doc;
        doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
        std::string problem = "the record is not a JSON object";
        std::optional<sobject_record> rec;
        if (!doc.HasParseError() && doc.IsObject()) rec = to_record(doc, problem);
        if (!rec) {
          done(make_error(errc::protocol_error, problem, "reading a " + sobject + " record"), {});
          return;
        }
        if (rec->type.empty()) rec->type = sobject;
        if (rec->id.empty()) rec->id = id;  // `fields` without Id: the reply may leave it out
        done({}, std::move(*rec));
      });
}

void rest_client::async_create(const std::string& sobject, const std::string& fields_json,
                               id_handler done) {
  std::string path =
      "/services/data/v" + impl_->options.api_version + "/sobjects/" + url_encode(sobject);
  impl_->request("POST", path, fields_json,
                 [done = std::move(done), sobject](error_info e, unsigned, std::string body) {
                   if (e) {
                     done(std::move(e), {});
                     return;
                   }
                   rapidjson::Document doc;
                   doc.Parse(body.data(), body.size());
                   const auto* id = doc.HasParseError() ? nullptr : member(doc, "id");
                   if (!id || !id->IsString()) {
                     done(make_error(errc::protocol_error, "the create reply has no id",
                                     "creating a " + sobject + " record"),
                          {});
                     return;
                   }
                   done({}, std::string(id->GetString(), id->GetStringLength()));
                 });
}

void rest_client::async_request(std::string method, std::string path, std::string body,
                                raw_handler done) {
  impl_->request(std::move(method), std::move(path), std::move(body), std::move(done));
}

// --- sync_rest_client ------------------------------------------------------------------------

struct sync_rest_client::impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::chrono::milliseconds limit;
  rest_client client;

  explicit impl(rest_options options)
      : limit(3 * options.network.request_timeout + 2 * options.network.connect_timeout),
        client(io.get_executor(), std::move(options)) {}

  /// Runs the private io_context until `finished` is set or the time limit passes.
  bool run_until(const std::shared_ptr<std::atomic<bool>>& finished) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!finished->load()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      io.run_one_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  static error_info timed_out() {
    return make_error(errc::timeout,
                      "no reply in time (a credentials provider running on the calling thread's "
                      "executor cannot answer)",
                      "REST call");
  }

  template <class Result, class Start>
  Result run(Start start, error_info& error) {
    struct state {
      std::atomic<bool> finished{false};
      error_info error;
      Result result{};
    };
    auto s = std::make_shared<state>();
    auto flag = std::shared_ptr<std::atomic<bool>>(s, &s->finished);
    start([s](error_info e, Result r) {
      s->error = std::move(e);
      s->result = std::move(r);
      s->finished = true;
    });
    if (!run_until(flag)) {
      error = timed_out();
      return {};
    }
    error = std::move(s->error);
    return std::move(s->result);
  }
};

sync_rest_client::sync_rest_client(rest_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}

sync_rest_client::~sync_rest_client() = default;

query_page sync_rest_client::query(const std::string& soql, bool include_deleted,
                                   error_info& error) {
  return impl_->run<query_page>(
      [&](auto done) { impl_->client.async_query(soql, include_deleted, done); }, error);
}

query_page sync_rest_client::next_page(const std::string& next_records_url, error_info& error) {
  return impl_->run<query_page>(
      [&](auto done) { impl_->client.async_next_page(next_records_url, done); }, error);
}

error_info sync_rest_client::for_each_record(
    const std::string& soql, bool include_deleted,
    const std::function<void(const sobject_record&)>& each) {
  error_info error;
  query_page page = query(soql, include_deleted, error);
  // Bounded: a page always advances to a new locator; 1,000,000 pages is far beyond any org.
  for (std::size_t pages = 0; !error && pages < 1'000'000; ++pages) {
    for (const auto& r : page.records) each(r);
    if (page.done) return {};
    page = next_page(page.next_records_url, error);
  }
  return error;
}

sobject_record sync_rest_client::get(const std::string& sobject, const std::string& id,
                                     const std::vector<std::string>& fields, error_info& error) {
  return impl_->run<sobject_record>(
      [&](auto done) { impl_->client.async_get(sobject, id, fields, done); }, error);
}

std::string sync_rest_client::create(const std::string& sobject, const std::string& fields_json,
                                     error_info& error) {
  return impl_->run<std::string>(
      [&](auto done) { impl_->client.async_create(sobject, fields_json, done); }, error);
}

}  // namespace sfstream

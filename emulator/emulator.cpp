#include "emulator/emulator.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <cstdio>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <boost/asio/steady_timer.hpp>

#include "emulator/auth/oauth_server.hpp"
#include "emulator/auth/session_registry.hpp"
#include "emulator/auth/soap_login_server.hpp"
#include "emulator/cometd/cometd_server.hpp"
#include "emulator/control/bench_api.hpp"
#include "emulator/control/control_api.hpp"
#include "emulator/net/http_server.hpp"
#include "emulator/org_state.hpp"

namespace sfstream::emulator {

namespace {

namespace asio = boost::asio;

/// Wraps an exchange to apply the reply-shaping controls (delay, drop mid-reply) to whatever
/// the route handler answers, now or later.
class shaped_exchange : public net::exchange {
 public:
  shaped_exchange(std::shared_ptr<net::exchange> inner, asio::any_io_executor executor,
                  std::chrono::milliseconds delay, bool drop_mid_reply)
      : inner_(std::move(inner)),
        executor_(std::move(executor)),
        delay_(delay),
        drop_(drop_mid_reply) {}

  const transport::http_request& request() const noexcept override { return inner_->request(); }
  std::string remote_address() const override { return inner_->remote_address(); }
  void respond(transport::http_response response) override {
    if (answered_) return;
    answered_ = true;
    if (delay_.count() <= 0) {
      deliver(std::move(response));
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(executor_, delay_);
    auto self = std::static_pointer_cast<shaped_exchange>(shared_from_this_());
    timer->async_wait([timer, self, r = std::move(response)](boost::system::error_code) mutable {
      self->deliver(std::move(r));
    });
  }
  void drop() override {
    answered_ = true;
    inner_->drop();
  }
  void respond_partial_and_drop(transport::http_response response,
                                std::size_t body_bytes) override {
    answered_ = true;
    inner_->respond_partial_and_drop(std::move(response), body_bytes);
  }
  void respond_gather(transport::http_response head,
                      std::vector<net::shared_bytes> pieces) override {
    if (delay_.count() > 0 || drop_) {
      net::exchange::respond_gather(std::move(head), std::move(pieces));  // reshaped: joined
      return;
    }
    if (answered_) return;
    answered_ = true;
    if (!inner_->answered()) inner_->respond_gather(std::move(head), std::move(pieces));
  }
  bool answered() const noexcept override { return answered_ || inner_->answered(); }
  void on_abandoned(std::function<void()> callback) override {
    inner_->on_abandoned(std::move(callback));
  }

  std::weak_ptr<shaped_exchange> self_;

 private:
  std::shared_ptr<net::exchange> shared_from_this_() { return self_.lock(); }
  void deliver(transport::http_response response) {
    if (inner_->answered()) return;
    if (drop_) {
      const std::size_t half = response.body.size() / 2;
      inner_->respond_partial_and_drop(std::move(response), half);
    } else {
      inner_->respond(std::move(response));
    }
  }

  std::shared_ptr<net::exchange> inner_;
  asio::any_io_executor executor_;
  std::chrono::milliseconds delay_;
  bool drop_;
  bool answered_ = false;
};

transport::http_response json_reply(unsigned status, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = status == 200   ? "OK"
             : status == 401 ? "Unauthorized"
             : status == 404 ? "Not Found"
                             : "Error";
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}};
  r.body = std::move(body);
  return r;
}

std::string bearer(const transport::http_request& request) {
  const std::string* h = transport::find_header(request.headers, "Authorization");
  if (h == nullptr) return {};
  std::string_view v = *h;
  for (std::string_view scheme : {"Bearer ", "OAuth ", "bearer ", "oauth "}) {
    if (v.substr(0, scheme.size()) == scheme) {
      v.remove_prefix(scheme.size());
      break;
    }
  }
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(v);
}

constexpr std::string_view default_api_version = "64.0";

/// The userinfo reply: the ids (18-character), the login name and the identity URL.
std::string userinfo_json(const data::caller& who, const std::string& base_url) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto field = [&w](const char* name, const std::string& value) {
    w.Key(name);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  field("sub", base_url + "/id/" + who.org_id + "/" + who.user_id);
  field("user_id", who.user_id);
  field("organization_id", who.org_id);
  field("preferred_username", who.username);
  field("email", who.username);
  w.EndObject();
  return sb.GetString();
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string make_state_dir(const std::string& requested) {
  namespace fs = std::filesystem;
  if (!requested.empty()) {
    fs::create_directories(requested);
    return requested;
  }
  std::string pattern = (fs::temp_directory_path() / "sfstream-emulator-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw error(error_info{make_error_code(errc::invalid_config),
                           {"", "", "creating the emulator state directory"}});
  }
  return pattern;
}

[[noreturn]] void bad_orgs(const std::string& why) {
  throw error(error_info{make_error_code(errc::invalid_config), {"", "", why}});
}

/// Every org needs a unique name and org id, and a username belongs to one org only.
void check_orgs(const emulator_options& o) {
  std::set<std::string> names{o.org_name}, ids{o.org_id.substr(0, 15)}, users;
  for (const auto& u : o.users) users.insert(u.username);
  for (const auto& more : o.more_orgs) {
    if (more.name.empty()) bad_orgs("every org of the emulator needs a name");
    if (!names.insert(more.name).second) bad_orgs("two orgs are named '" + more.name + "'");
    if (more.org_id.size() != 15 && more.org_id.size() != 18)
      bad_orgs("org '" + more.name + "': the org id must have 15 or 18 characters");
    if (!ids.insert(more.org_id.substr(0, 15)).second)
      bad_orgs("org '" + more.name + "': org id " + more.org_id + " is another org's");
    for (const auto& u : more.users) {
      if (!users.insert(u.username).second)
        bad_orgs("org '" + more.name + "': user " + u.username + " belongs to another org");
    }
  }
}

/// The whole options of one more org: the primary's timings, TLS and state directory.
emulator_options options_for(const emulator_options& primary, const org_options& more) {
  emulator_options o = primary;
  o.more_orgs.clear();
  o.org_name = more.name;
  o.org_id = more.org_id;
  o.users = more.users;
  if (!more.oauth_clients.empty()) o.oauth_clients = more.oauth_clients;
  o.concurrent_client_limit = more.concurrent_client_limit;
  o.daily_event_limit = more.daily_event_limit;
  o.data = more.data;
  o.port = more.port;
  return o;
}

}  // namespace

org_options org_options::demo(const std::string& name, int number) {
  const int n = ((number % 100) + 100) % 100;
  const std::string digits{static_cast<char>('0' + n / 10), static_cast<char>('0' + n % 10)};
  org_options o;
  o.name = name;
  o.org_id = std::string("00DDM00000000") + digits + "AAA";
  o.users = {{"demo@" + name + ".sfstream.local", "demo-pass", "DEMOTOKEN0000000000000",
              std::string("005DM00000000") + digits + "AAA", false}};
  return o;
}

/// What the orgs of one emulator process share: the directory of orgs (the primary first) and
/// the TLS certificate they all serve with.
struct org_emulator::shared_orgs {
  std::vector<org_emulator*> orgs;
  std::optional<net::certificate_set> certs;
  std::string ca_file;
};

struct org_emulator::impl {
  asio::any_io_executor executor;
  emulator_options options;
  emulator::clock clk;
  event_bus bus{clk};
  auth::session_registry sessions;
  std::unique_ptr<data::rest_api> rest;
  auth::soap_login_server soap;
  auth::oauth_server oauth;
  std::unique_ptr<cometd::cometd_server> cometd;
  std::unique_ptr<net::http_server> server;
  std::string ca_file;
  std::size_t drop_count = 0;
  std::chrono::milliseconds delay{0};
  bool stopped = false;
  std::unique_ptr<control::bench_api> bench;  ///< Made on the first /_emulator/bench/ request.
  std::shared_ptr<shared_orgs> shared;        ///< Every org of the process, this one included.
  std::string state_file;                     ///< persist: where the org is kept; "" = not kept.
  std::unique_ptr<asio::steady_timer> save_timer;
  std::shared_ptr<int> alive = std::make_shared<int>(0);  ///< Expires with this object.
  std::uint64_t saved_version = 0;  ///< bus + data versions at the last save
  std::uint64_t seen_version = 0;   ///< … at the last idle check

  std::uint64_t state_version() const { return bus.version() + rest->change_count(); }
  void save_state() {
    save_org_state(state_file, clk, bus, *rest);
    saved_version = seen_version = state_version();
  }
  /// Every half second: saves when the org changed and has been idle since the last check.
  void schedule_save() {
    save_timer->expires_after(std::chrono::milliseconds(500));
    save_timer->async_wait([this, token = std::weak_ptr<int>(alive)](boost::system::error_code ec) {
      if (ec || token.expired() || stopped) return;
      const auto now = state_version();
      if (now != saved_version && now == seen_version) {
        try {
          save_state();
        } catch (const std::exception&) {
          // Kept trying: the next idle check writes again; stop() writes last.
        }
      }
      seen_version = now;
      schedule_save();
    });
  }
  std::vector<std::unique_ptr<org_emulator>> more;  ///< The primary org owns the others.

  impl(asio::any_io_executor ex, emulator_options opts)
      : executor(std::move(ex)),
        options(prepare(std::move(opts))),
        sessions(clk, options.session_lifetime, options.org_id.substr(0, 15)),
        soap(options, sessions),
        oauth(options, clk, sessions) {}

  static emulator_options prepare(emulator_options o) {
    if (o.org_id.size() < 15) {
      throw error(error_info{make_error_code(errc::invalid_config),
                             {"", "", "the emulator org_id must have 15 or 18 characters"}});
    }
    o.data.org_id = o.org_id;
    o.data.automated_user.org_id = o.org_id;
    return o;
  }

  const emulator_user* user_named(const std::string& username) const {
    for (const auto& u : options.users) {
      if (u.username == username) return &u;
    }
    return nullptr;
  }

  std::optional<data::caller> caller_of(const std::string& token) {
    if (token.empty()) return std::nullopt;
    auto name = sessions.use_session(token);
    if (!name) return std::nullopt;
    const emulator_user* u = user_named(*name);
    if (u == nullptr) return std::nullopt;
    return data::caller{u->user_id, options.org_id, u->username};
  }
};

org_emulator::org_emulator(boost::asio::any_io_executor executor, emulator_options options)
    : org_emulator(std::move(executor), std::move(options), nullptr) {}

org_emulator::org_emulator(boost::asio::any_io_executor executor, emulator_options options,
                           std::shared_ptr<shared_orgs> shared)
    : impl_(std::make_unique<impl>(executor, std::move(options))) {
  auto& s = *impl_;
  const bool primary = shared == nullptr;
  if (primary) {
    check_orgs(s.options);
    shared = std::make_shared<shared_orgs>();
  }
  s.shared = shared;
  s.rest = std::make_unique<data::rest_api>(s.clk, s.bus, s.options.data);
  cometd::cometd_settings cs;
  cs.long_poll_timeout = s.options.long_poll_timeout;
  cs.client_expiry = s.options.client_expiry;
  cs.concurrent_client_limit = s.options.concurrent_client_limit;
  cs.daily_event_limit = s.options.daily_event_limit;
  cs.secure_cookies = s.options.tls;
  s.cometd = std::make_unique<cometd::cometd_server>(
      executor, cs, s.clk, s.bus, [this](const std::string& token) {
        auto who = impl_->caller_of(token);
        return who ? std::optional<std::string>(who->user_id) : std::nullopt;
      });

  if (s.options.persist) {
    if (s.options.state_dir.empty()) {
      throw error(error_info{make_error_code(errc::invalid_config),
                             {"", "", "keeping the emulator's org needs a state directory"}});
    }
    std::error_code dir_error;
    std::filesystem::create_directories(s.options.state_dir, dir_error);
    if (dir_error) {
      throw error(error_info{make_error_code(errc::invalid_config),
                             {"", "", "cannot create the emulator state directory " +
                                          s.options.state_dir + ": " + dir_error.message()}});
    }
    s.state_file = org_state_path(s.options.state_dir, s.options.org_name);
    if (std::filesystem::exists(s.state_file)) load_org_state(s.state_file, s.clk, s.bus, *s.rest);
    s.save_state();  // at once: an unwritable directory is a start error, not a later loss
    s.save_timer = std::make_unique<asio::steady_timer>(executor);
    s.schedule_save();
  }

  net::server_options so;
  so.address = s.options.address;
  so.port = s.options.port;
  so.body_limit = 4 * 1024 * 1024;
  if (s.options.tls) {
    if (!shared->certs) {
      shared->certs = net::make_certificates();
      const std::string dir = make_state_dir(s.options.state_dir);
      shared->ca_file = (std::filesystem::path(dir) / "emulator-ca.pem").string();
      std::ofstream out(shared->ca_file, std::ios::binary | std::ios::trunc);
      out << shared->certs->ca_certificate_pem;
      if (!out.flush()) {
        throw error(error_info{make_error_code(errc::invalid_config),
                               {"", "", "writing the emulator CA file " + shared->ca_file}});
      }
    }
    so.tls = net::server_tls{shared->certs->certificate_pem, shared->certs->private_key_pem};
    s.ca_file = shared->ca_file;
  }
  s.server = std::make_unique<net::http_server>(
      executor, so, [this](std::shared_ptr<net::exchange> ex) { route(std::move(ex)); });
  shared->orgs.push_back(this);
  if (!primary) return;
  for (const auto& more : s.options.more_orgs) {
    s.more.emplace_back(new org_emulator(executor, options_for(s.options, more), shared));
  }
}

org_emulator::~org_emulator() {
  stop();
}

void org_emulator::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& more : impl_->more) more->stop();
  if (impl_->save_timer) {
    impl_->save_timer->cancel();
    try {
      impl_->save_state();
    } catch (const std::exception&) {
      // Nothing to tell from here: the last idle save stays the org's state.
    }
  }
  if (impl_->bench) impl_->bench->stop();
  impl_->cometd->stop();
  impl_->server->stop();
}

void org_emulator::route(std::shared_ptr<net::exchange> raw) {
  auto& s = *impl_;
  const std::string target = raw->request().target;
  std::string_view path = target;
  path = path.substr(0, path.find('?'));

  if (starts_with(path, "/_emulator/")) {
    const std::string peer = raw->remote_address();
    if (peer != "127.0.0.1" && peer != "::1" && peer != "::ffff:127.0.0.1") {
      raw->respond(
          json_reply(403, R"({"error":"control endpoints answer loopback callers only"})"));
      return;
    }
    if (control::is_bench_path(path)) {
      if (!s.bench) s.bench = std::make_unique<control::bench_api>(*this, s.executor);
      raw->respond(s.bench->handle(raw->request()));
      return;
    }
    raw->respond(control::handle_control(*this, raw->request()));
    return;
  }

  const bool drop = s.drop_count > 0;
  if (drop) --s.drop_count;
  auto ex = std::make_shared<shaped_exchange>(std::move(raw), s.executor, s.delay, drop);
  ex->self_ = ex;
  const auto& req = ex->request();

  if (cometd::is_cometd_path(target)) {
    s.cometd->handle(ex);
  } else if (starts_with(path, "/services/Soap/")) {
    org_emulator& owner = login_owner(req);
    ex->respond(owner.impl_->soap.handle(req, owner.base_url()));
  } else if (path == "/services/oauth2/token") {
    org_emulator& owner = login_owner(req);
    ex->respond(owner.impl_->oauth.handle(req, owner.base_url(), base_url()));
  } else if (path == "/services/oauth2/userinfo") {
    // OpenID Connect userinfo: who a token belongs to. Salesforce answers a bad token with
    // 403 and the text Bad_OAuth_Token.
    auto who = s.caller_of(bearer(req));
    if (!who) {
      transport::http_response r;
      r.status = 403;
      r.reason = "Forbidden";
      r.headers.emplace_back("Content-Type", "text/plain;charset=UTF-8");
      r.body = "Bad_OAuth_Token";
      ex->respond(std::move(r));
      return;
    }
    ex->respond(json_reply(200, userinfo_json(*who, base_url())));
  } else if (path == "/services/data" || starts_with(path, "/services/data/")) {
    auto who = s.caller_of(bearer(req));
    if (!who) {
      ex->respond(json_reply(
          401, R"([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])"));
      return;
    }
    ex->respond(s.rest->handle(req, *who));
  } else {
    ex->respond(json_reply(
        404, R"([{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}])"));
  }
}

org_emulator& org_emulator::login_owner(const transport::http_request& request) {
  const auto& orgs = impl_->shared->orgs;
  if (orgs.size() < 2) return *this;
  std::string_view path = request.target;
  path = path.substr(0, path.find('?'));
  std::string username;
  if (starts_with(path, "/services/Soap/")) {
    username = auth::soap_login_username(request.body);
  } else {
    username = auth::oauth_login_username(request.body);
    if (username.empty()) {
      // A refresh token names no user: the org that issued it knows it.
      auto form = auth::parse_form(request.body);
      auto token = form ? form->find("refresh_token") : decltype(form->end()){};
      if (form && token != form->end()) {
        for (org_emulator* org : orgs) {
          if (org->impl_->sessions.refresh_token_user(token->second)) return *org;
        }
      }
    }
  }
  for (org_emulator* org : orgs) {
    if (org->impl_->user_named(username) != nullptr) return *org;
  }
  return *this;
}

std::size_t org_emulator::org_count() const noexcept {
  return impl_->shared->orgs.size();
}
org_emulator& org_emulator::org(std::size_t index) {
  return *impl_->shared->orgs.at(index);
}
org_emulator* org_emulator::org_named(const std::string& name) {
  for (org_emulator* org : impl_->shared->orgs) {
    if (org->org_name() == name) return org;
  }
  return nullptr;
}
const std::string& org_emulator::org_name() const noexcept {
  return impl_->options.org_name;
}

std::string org_emulator::base_url() const {
  return impl_->server->base_url();
}
std::string org_emulator::login_url() const {
  return base_url();
}
std::string org_emulator::ca_file() const {
  return impl_->ca_file;
}
const emulator_options& org_emulator::options() const noexcept {
  return impl_->options;
}
emulator::clock& org_emulator::clock() noexcept {
  return impl_->clk;
}
emulator::event_bus& org_emulator::events() noexcept {
  return impl_->bus;
}
data::rest_api& org_emulator::rest() noexcept {
  return *impl_->rest;
}

std::string org_emulator::startup_json() const {
  const auto& o = impl_->options;
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto field = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v);
  };
  w.StartObject();
  field("base_url", base_url());
  field("login_url", login_url());
  field("cometd_path", "/cometd/" + std::string(default_api_version));
  field("ca_file", ca_file());
  const emulator_user empty{};
  const emulator_user& u = o.users.empty() ? empty : o.users.front();
  field("username", u.username);
  field("password", u.password);
  field("security_token", u.security_token);
  const oauth_client empty_client{};
  const oauth_client& c = o.oauth_clients.empty() ? empty_client : o.oauth_clients.front();
  field("client_id", c.client_id);
  field("client_secret", c.client_secret);
  w.Key("orgs");
  w.StartArray();
  for (const org_emulator* org : impl_->shared->orgs) {
    const auto& oo = org->impl_->options;
    const emulator_user& ou = oo.users.empty() ? empty : oo.users.front();
    w.StartObject();
    field("name", oo.org_name);
    field("org_id", oo.org_id);
    field("base_url", org->base_url());
    field("login_url", org->login_url());
    field("username", ou.username);
    field("password", ou.password);
    field("security_token", ou.security_token);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return sb.GetString();
}

std::string org_emulator::issue_session(const std::string& username) {
  if (impl_->user_named(username) == nullptr) return {};
  return impl_->sessions.create_session(username);
}

void org_emulator::advance_clock(std::chrono::milliseconds by) {
  impl_->clk.advance(by);
}
void org_emulator::expire_all_sessions() {
  impl_->sessions.expire_all();
}
void org_emulator::forget_all_clients() {
  impl_->cometd->forget_all_clients();
}
void org_emulator::rotate_affinity_cookie() {
  impl_->cometd->rotate_affinity_cookie();
}
void org_emulator::drop_next_connections(std::size_t count) {
  impl_->drop_count = count;
}
void org_emulator::fail_next_cometd_requests(std::size_t count, fault_kind kind) {
  impl_->cometd->fail_next_requests(count, kind);
}
void org_emulator::set_reply_delay(std::chrono::milliseconds delay) {
  impl_->delay = delay;
}
void org_emulator::disconnect_all_clients() {
  impl_->cometd->disconnect_all_clients();
}
void org_emulator::make_too_busy(std::size_t count) {
  impl_->cometd->make_too_busy(count);
}
void org_emulator::inject_bayeux_fault(fault_kind kind, std::size_t count) {
  impl_->cometd->inject(kind, count);
}
void org_emulator::spoil_next_event_replies(fault f, std::size_t count) {
  impl_->cometd->spoil_next_event_replies(std::move(f), count);
}

std::size_t org_emulator::pending_reply_faults() const {
  return impl_->cometd->pending_reply_faults();
}

std::size_t org_emulator::client_count() const {
  return impl_->cometd->client_count();
}
cometd::cometd_server& org_emulator::cometd() noexcept {
  return *impl_->cometd;
}

}  // namespace sfstream::emulator

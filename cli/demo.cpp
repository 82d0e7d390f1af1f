// `sfstream demo`: an org emulator in-process (HTTPS, its own thread), one client subscribed to
// a channel of each kind, record changes, a platform event and a generic push made through the
// REST API, every event printed. The client takes the real path: SOAP login, TLS with the
// emulator's CA file, CometD long polling.
#include <array>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "cli/rest.hpp"
#include "emulator/emulator.hpp"
#include "sfstream/client.hpp"

namespace sfstream::cli {

namespace {

namespace asio = boost::asio;

const char* const demo_help =
    "usage: sfstream demo [--follow] [--timeout SECONDS] [-v]\n"
    "\n"
    "Starts a local org emulator in this process (HTTPS on 127.0.0.1 with a CA made at start),\n"
    "creates the PushTopic AccountUpdates, the StreamingChannel /u/demo, the platform event\n"
    "Demo_Event__e and enables Change Data Capture for Account; logs in through SOAP as the\n"
    "emulator's demo user and subscribes one client to\n"
    "  /topic/AccountUpdates  /u/demo  /event/Demo_Event__e  /data/AccountChangeEvent\n"
    "then creates and updates an Account, publishes an event and pushes a generic event through\n"
    "the REST API. Every event is printed on stdout as one JSON line\n"
    "  {\"channel\":...,\"replayId\":...,\"data\":{...}}\n"
    "with a one-line summary on stderr. Exits 0 once the six expected events have arrived.\n"
    "\n"
    "  --follow           keep making a change every 3 seconds until Ctrl-C (then exit 0)\n"
    "  --timeout SECONDS  give up (exit 1) when the expected events have not all arrived in\n"
    "                     time (default 30)\n"
    "  -v, --verbose      log the client's meta traffic on stderr\n";

constexpr std::array<option_spec, 4> demo_specs{{
    {"follow", false, ""},
    {"timeout", true, ""},
    {"verbose", false, "", 'v'},
    {"help", false, "", 'h'},
}};

constexpr std::string_view topic_channel = "/topic/AccountUpdates";
constexpr std::string_view generic_channel = "/u/demo";
constexpr std::string_view event_channel = "/event/Demo_Event__e";
constexpr std::string_view cdc_channel = "/data/AccountChangeEvent";

/// One REST request of the demo script; `path` is computed when the step runs (it may need an
/// id an earlier step returned).
struct rest_step {
  std::string what;
  std::string method;
  std::function<std::string()> path;
  std::string body;
  std::function<void(const rest_reply&)> on_reply;
};

/// Runs REST steps one after the other; stops at the first failure.
void run_steps(std::shared_ptr<rest_client> rest, std::shared_ptr<std::vector<rest_step>> steps,
               std::size_t index, std::function<void(bool ok)> done) {
  if (index >= steps->size()) return done(true);
  rest_step& step = (*steps)[index];
  rest->async_request(step.method, data_path("59.0", step.path()), step.body,
                      [rest, steps, index, done = std::move(done)](
                          error_info error, unsigned status, std::string body) mutable {
                        rest_step& s = (*steps)[index];
                        if (error) {
                          print_error("demo: " + s.what + " failed: " + describe(error));
                          return done(false);
                        }
                        print_note("demo: " + s.what);
                        if (s.on_reply) s.on_reply(rest_reply{status, std::move(body)});
                        run_steps(std::move(rest), std::move(steps), index + 1, std::move(done));
                      });
}

/// The whole demo on the main thread's io_context; the emulator runs on its own thread.
class demo_run {
 public:
  demo_run(asio::io_context& io, emulator::org_emulator& emu, std::string push_channel_id,
           bool follow, std::chrono::milliseconds bound, bool verbose)
      : io_(io),
        emu_(emu),
        push_channel_id_(std::move(push_channel_id)),
        follow_(follow),
        bound_(bound),
        log_(stderr_logger(verbose)),
        signals_(io, SIGINT, SIGTERM),
        deadline_(io),
        ticker_(io) {}

  int run() {
    const auto& user = emu_.options().users.front();
    add_secret(user.password);
    add_secret(user.security_token);
    network_.ca_file = emu_.ca_file();

    soap_login_options login;
    login.login_url = emu_.login_url();
    login.username = user.username;
    login.password = user.password;
    login.security_token = user.security_token;
    credentials_ = make_soap_login_provider(io_.get_executor(), login, network_, log_);

    client_config config;
    config.credentials = credentials_;
    config.network = network_;
    config.log = log_;
    client_ = std::make_unique<client>(io_.get_executor(), config);

    print_note("demo: org emulator at " + emu_.base_url() + " (CA file " + emu_.ca_file() + ")");
    print_note("demo: logging in through SOAP as " + user.username +
               " and subscribing to 4 channels");

    for (std::string_view ch : {topic_channel, generic_channel, event_channel, cdc_channel}) {
      subscription_callbacks cbs;
      const std::string name(ch);
      cbs.on_event = [this](const event& e) { on_event(e); };
      cbs.on_subscribed = [this, name](std::int64_t from) { on_subscribed(name, from); };
      cbs.on_rejected = [this, name](const error_info& why) {
        print_error("demo: subscription to " + name + " rejected: " + describe(why));
        fail(exit_code_for(why) == exit_ok ? exit_failure : exit_code_for(why));
      };
      cbs.on_gap = [](const gap_record& gap) { print_error("demo: " + gap.to_string()); };
      if (auto why = client_->subscribe(name, replay_new, std::move(cbs))) {
        print_error("demo: cannot subscribe to " + name + ": " + describe(why));
        return exit_failure;
      }
    }

    signals_.async_wait([this](boost::system::error_code ec, int) {
      if (ec) return;
      interrupted_ = true;
      print_note("demo: interrupted: stopping");
      stop();
    });
    if (!follow_) {
      deadline_.expires_after(bound_);
      deadline_.async_wait([this](boost::system::error_code ec) {
        if (ec || stopping_) return;
        print_error("demo: not every expected event arrived within " +
                    std::to_string(bound_.count() / 1000) + " s; missing: " + missing());
        fail(exit_failure);
      });
    }
    client_->async_run([this](std::error_code ec) {
      run_error_ = ec;
      if (ec && !stopping_) {
        print_error("demo: the client stopped: " + describe(client_->last_error()));
      }
      finished_ = true;
      signals_.cancel();
      deadline_.cancel();
      ticker_.cancel();
      // Whatever the transport still holds (idle keep-alive sockets) is not worth waiting for.
      io_.stop();
    });
    io_.run();

    if (exit_code_ != exit_ok) return exit_code_;
    if (run_error_ && !stopping_)
      return exit_code_for(client_->last_error()) == exit_ok ? exit_failure
                                                             : exit_code_for(client_->last_error());
    if (interrupted_) return follow_ ? exit_ok : exit_interrupted;
    if (!complete()) return exit_failure;
    return exit_ok;
  }

 private:
  void on_subscribed(const std::string& channel, std::int64_t from) {
    print_note("demo: subscribed to " + channel + " (replay from " + std::to_string(from) + ")");
    subscribed_.insert(channel);
    if (subscribed_.size() == 4 && !generating_) {
      generating_ = true;
      start_generating();
    }
  }

  void on_event(const event& e) {
    print_line(event_line(e));
    print_note(summarize(e));
    switch (e.kind()) {
      case channel_kind::topic:
        ++topic_events_;
        break;
      case channel_kind::generic:
        ++generic_events_;
        break;
      case channel_kind::platform_event:
        ++platform_events_;
        break;
      case channel_kind::change_data_capture:
        ++change_events_;
        break;
      case channel_kind::other:
        break;
    }
    if (!follow_ && complete() && !stopping_) {
      print_note(
          "demo: all 6 expected events arrived (2 PushTopic, 1 generic, 1 platform event, 2 change "
          "events)");
      stop();
    }
  }

  bool complete() const {
    return topic_events_ >= 2 && generic_events_ >= 1 && platform_events_ >= 1 &&
           change_events_ >= 2;
  }

  std::string missing() const {
    std::string out;
    auto add = [&](int have, int want, const char* what) {
      if (have >= want) return;
      if (!out.empty()) out += ", ";
      out += std::to_string(want - have) + " " + what;
    };
    add(topic_events_, 2, "PushTopic");
    add(generic_events_, 1, "generic");
    add(platform_events_, 1, "platform event");
    add(change_events_, 2, "change event");
    if (subscribed_.size() < 4)
      out += " (only " + std::to_string(subscribed_.size()) + " of 4 subscriptions confirmed)";
    return out;
  }

  void start_generating() {
    rest_ = std::make_shared<rest_client>(io_.get_executor(),
                                          rest_options{credentials_, "59.0", network_, 0});
    auto steps = std::make_shared<std::vector<rest_step>>();
    steps->push_back({"created Account 'Acme Corporation' (POST sobjects/Account)", "POST",
                      [] { return std::string("/sobjects/Account"); },
                      R"({"Name":"Acme Corporation","Industry":"Manufacturing"})",
                      [this](const rest_reply& r) { account_id_ = json_id(r.body); }});
    steps->push_back({"updated its Industry (PATCH sobjects/Account/<id>)",
                      "PATCH",
                      [this] { return "/sobjects/Account/" + account_id_; },
                      R"({"Industry":"Energy"})",
                      {}});
    steps->push_back({"published Demo_Event__e (POST sobjects/Demo_Event__e)",
                      "POST",
                      [] { return std::string("/sobjects/Demo_Event__e"); },
                      R"({"Message__c":"Hello from sfstream"})",
                      {}});
    steps->push_back({"pushed to /u/demo (POST sobjects/StreamingChannel/<id>/push)",
                      "POST",
                      [this] { return "/sobjects/StreamingChannel/" + push_channel_id_ + "/push"; },
                      R"({"pushEvents":[{"payload":"Hello, /u/demo","userIds":[]}]})",
                      {}});
    run_steps(rest_, steps, 0, [this](bool ok) {
      if (!ok) return fail(exit_failure);
      if (follow_) schedule_tick();
    });
  }

  void schedule_tick() {
    if (stopping_) return;
    ticker_.expires_after(std::chrono::seconds(3));
    ticker_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      static constexpr std::array<const char*, 4> industries{"Technology", "Retail", "Banking",
                                                             "Energy"};
      const std::size_t n = tick_++;
      auto steps = std::make_shared<std::vector<rest_step>>();
      switch (n % 4) {
        case 0:
          steps->push_back({std::string("updated Account Industry to ") + industries[(n / 4) % 4],
                            "PATCH",
                            [this] { return "/sobjects/Account/" + account_id_; },
                            std::string(R"({"Industry":")") + industries[(n / 4) % 4] + "\"}",
                            {}});
          break;
        case 1:
          steps->push_back({"published Demo_Event__e",
                            "POST",
                            [] { return std::string("/sobjects/Demo_Event__e"); },
                            R"({"Message__c":"tick )" + std::to_string(n) + "\"}",
                            {}});
          break;
        case 2:
          steps->push_back(
              {"pushed to /u/demo",
               "POST",
               [this] { return "/sobjects/StreamingChannel/" + push_channel_id_ + "/push"; },
               R"({"pushEvents":[{"payload":"tick )" + std::to_string(n) + R"(","userIds":[]}]})",
               {}});
          break;
        default:
          steps->push_back({"created Account 'Demo " + std::to_string(n) + "'",
                            "POST",
                            [] { return std::string("/sobjects/Account"); },
                            R"({"Name":"Demo )" + std::to_string(n) + R"(","Industry":"Retail"})",
                            {}});
          break;
      }
      run_steps(rest_, steps, 0, [this](bool) { schedule_tick(); });
    });
  }

  void fail(int code) {
    if (exit_code_ == exit_ok) exit_code_ = code;
    stop();
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    deadline_.cancel();
    ticker_.cancel();
    if (!finished_) client_->cancel();
  }

  asio::io_context& io_;
  emulator::org_emulator& emu_;
  std::string push_channel_id_;
  bool follow_;
  std::chrono::milliseconds bound_;
  logger log_;
  network_options network_;
  std::shared_ptr<credentials_provider> credentials_;
  std::unique_ptr<client> client_;
  std::shared_ptr<rest_client> rest_;
  asio::signal_set signals_;
  asio::steady_timer deadline_;
  asio::steady_timer ticker_;
  std::set<std::string> subscribed_;
  std::string account_id_;
  std::size_t tick_ = 0;
  int topic_events_ = 0;
  int generic_events_ = 0;
  int platform_events_ = 0;
  int change_events_ = 0;
  bool generating_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool interrupted_ = false;
  int exit_code_ = exit_ok;
  std::error_code run_error_;
};

}  // namespace

int run_demo(std::span<char* const> args) {
  std::string error;
  auto parsed = parse_args(args, demo_specs, error);
  if (!parsed) return usage_error("demo", error);
  if (parsed->given("help")) {
    std::fputs(demo_help, stdout);
    return exit_ok;
  }
  if (!parsed->positionals().empty())
    return usage_error("demo", "unexpected argument '" + parsed->positionals()[0] + "'");
  std::chrono::milliseconds bound{30'000};
  if (auto t = parsed->value("timeout")) {
    auto v = parse_seconds(*t);
    if (!v || v->count() == 0)
      return usage_error("demo", "--timeout needs a positive number of seconds");
    bound = *v;
  }

  asio::io_context emu_io;
  std::unique_ptr<emulator::org_emulator> emu;
  std::string push_channel_id;
  try {
    emulator::emulator_options options;
    options.tls = true;
    emu = std::make_unique<emulator::org_emulator>(emu_io.get_executor(), options);
    // Set-up through the direct calls, before the emulator's thread runs (no locking needed).
    auto& rest = emu->rest();
    emulator::data::pushtopic_spec topic;
    topic.name = "AccountUpdates";
    topic.query = "SELECT Id, Name, Industry FROM Account";
    auto check = [](const emulator::data::op_result& r, const std::string& what) {
      if (!r) {
        throw sfstream::error(error_info{make_error_code(errc::invalid_config),
                                         {r.error->error_code, r.error->message, what}});
      }
      return r.id;
    };
    check(rest.create_pushtopic(topic), "creating the PushTopic AccountUpdates");
    push_channel_id = check(rest.create_streaming_channel(std::string(generic_channel)),
                            "creating the StreamingChannel /u/demo");
    rest.define_platform_event({"Demo_Event__e", {{"Message__c", "string", "", false}}});
    check(rest.enable_cdc("Account"), "enabling Change Data Capture for Account");
  } catch (const sfstream::error& e) {
    print_error("demo: cannot start the org emulator: " + describe(e.info()));
    return exit_failure;
  } catch (const std::exception& e) {
    print_error(std::string("demo: cannot start the org emulator: ") + e.what());
    return exit_failure;
  }

  auto work = asio::make_work_guard(emu_io);
  std::thread emu_thread([&emu_io] {
    try {
      emu_io.run();
    } catch (const std::exception& e) {
      print_error(std::string("demo: the org emulator failed: ") + e.what());
    }
  });

  int code = exit_failure;
  {
    asio::io_context io;
    demo_run demo(io, *emu, push_channel_id, parsed->given("follow"), bound,
                  parsed->given("verbose"));
    code = demo.run();
  }

  // Stop the server on its own thread, then end that thread's loop (held long polls and
  // keep-alive connections are abandoned: the client has already disconnected).
  asio::post(emu_io, [&emu, &emu_io] {
    emu->stop();
    emu_io.stop();
  });
  work.reset();
  emu_thread.join();
  emu.reset();
  return code;
}

}  // namespace sfstream::cli

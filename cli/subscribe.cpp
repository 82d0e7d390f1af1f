// `sfstream subscribe`: one client, every channel given, one JSON line per event on stdout.
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "sfstream/cdc.hpp"
#include "sfstream/client.hpp"

namespace sfstream::cli {

namespace {

namespace asio = boost::asio;

const char* const subscribe_help =
    "usage: sfstream subscribe [options] CHANNEL[=REPLAY]...\n"
    "\n"
    "Subscribes one client to every CHANNEL (/topic/Name[?Field=value], /u/path, /event/Name__e,\n"
    "/data/ChangeEvents, /data/ObjectChangeEvent, ...) and writes one JSON object per event to\n"
    "stdout (JSON Lines; the events of one batch in one write):\n"
    "  {\"channel\":\"/topic/X\",\"replayId\":12,\"data\":{... as received ...}}\n"
    "The data is copied as received; data that would not make one line of valid JSON (a\n"
    "pretty-printing server, invalid UTF-8) is written compactly with U+FFFD for invalid bytes,\n"
    "with one warning per such event on stderr.\n"
    "\n"
    "Gap records and rejections go to stderr, one JSON object per line, besides the logs:\n"
    "  {\"gap\":{\"channel\":...,\"reason\":\"expired\"|\"refused\"|\"resubscribed_at_tip\",\n"
    "          \"lastReplayId\":...,\"lastEventTime\":...,\"since\":...,\"until\":...,\n"
    "          \"policy\":\"earliest\"|\"tip\"|\"fail\",\"resumedFrom\":-2|-1|null}}\n"
    "  {\"rejected\":{\"channel\":...,\"error\":...}}\n"
    "Times are UTC (2024-05-01T12:00:00.000Z); what is not known is null. Events between\n"
    "\"since\" and \"until\" (or after \"lastReplayId\") may be missing.\n"
    "\n"
    "Change Data Capture channels (/data/...) are reconciled: after a GAP_* event the records it\n"
    "names are read back through REST and printed as\n"
    "  "
    "{\"channel\":...,\"reconciled\":\"upsert\"|\"delete\",\"fromGap\":true,\"entity\":...,\"id\":."
    "..,\n"
    "   \"record\":{...}}\n"
    "and after a GAP_OVERFLOW event the entity is read back whole, printed as\n"
    "  {\"channel\":...,\"resync\":\"begin\",\"entity\":...}, one {\"resync\":\"record\",...} "
    "line\n"
    "per record, {\"reconciled\":\"delete\",\"fromGap\":false,...} per record in the recycle\n"
    "bin, then {\"resync\":\"end\",...}: a copy deletes what the resync did not list. These lines\n"
    "follow the event that caused them; they have no \"replayId\" and do not count for --count.\n"
    "\n"
    "credentials (one of; environment variables in parentheses are used when the option is "
    "absent):\n"
    "  --username U --password P [--security-token T]   SOAP login (SF_USERNAME, SF_PASSWORD,\n"
    "                                                   SF_SECURITY_TOKEN)\n"
    "  --access-token T --instance-url URL              a token you already have "
    "(SF_ACCESS_TOKEN,\n"
    "                                                   SF_INSTANCE_URL)\n"
    "  --oauth password|refresh-token|client-credentials|jwt\n"
    "      --client-id ID (SF_CLIENT_ID)  --client-secret S (SF_CLIENT_SECRET)\n"
    "      --refresh-token T (SF_REFRESH_TOKEN)  --jwt-key-file PEM (SF_JWT_KEY_FILE)\n"
    "      plus --username/--password/--security-token for the password flow, --username for jwt\n"
    "  --login-url URL     login host (SF_LOGIN_URL; default https://login.salesforce.com)\n"
    "  --sandbox           use https://test.salesforce.com when --login-url is not given\n"
    "  --soap-version V    SOAP login() API version (default 64.0; 31.0-64.0)\n"
    "  --enterprise        SOAP login on the enterprise endpoint instead of the partner one\n"
    "\n"
    "streaming:\n"
    "  --api-version V     Streaming API version (default 59.0; 37.0 or later)\n"
    "  --replay -1|-2|ID   where to start: -1 new events only (default), -2 all retained,\n"
    "                      ID after that replay id; CHANNEL=REPLAY overrides it for one channel\n"
    "  --replay-store PATH keep the last printed replay id per channel in PATH (locked, atomic\n"
    "                      writes); a stored position wins over --replay. An event counts as\n"
    "                      printed once its line was written to stdout in full\n"
    "  --replay-policy earliest|tip|fail\n"
    "                      when a stored id cannot be honoured: replay all retained (earliest,\n"
    "                      default), only new events (tip), or stop with exit code 5 (fail)\n"
    "  --count N           exit 0 after N events\n"
    "  --timeout SECONDS   stop after SECONDS (exit 0; exit 1 when --count N was not reached)\n"
    "  --max-retries N     give up after N consecutive failed attempts (exit 6); default: never\n"
    "\n"
    "change data capture:\n"
    "  --reconcile-fields ENTITY=F1,F2[;ENTITY=...]\n"
    "                      fields read back per entity (default: those seen in its events so\n"
    "                      far, plus Id, IsDeleted and LastModifiedDate)\n"
    "  --no-reconcile      print gap and overflow events only, without reading records back\n"
    "\n"
    "network:\n"
    "  --ca-file PEM       trust this CA besides the system store (e.g. the emulator's)\n"
    "  --proxy URL         http://[user:password@]host:port CONNECT proxy (default: HTTPS_PROXY,\n"
    "                      honouring NO_PROXY)\n"
    "  -v, --verbose       log meta traffic on stderr (secrets redacted)\n"
    "  -h, --help          this text\n"
    "\n"
    "exit codes: 0 done; 1 other failure; 2 usage; 3 authentication failed; 4 every subscription\n"
    "rejected; 5 replay gap under --replay-policy fail; 6 network given up (--max-retries);\n"
    "7 a gap or overflow could not be reconciled (its event is not committed); 8 output failed\n"
    "(writing to stdout failed, e.g. a full disk: nothing after the last written event is\n"
    "committed); 9 the reader of stdout went away (broken pipe; likewise nothing more is\n"
    "committed); 10 the replay store could not be saved;\n"
    "130 interrupted (SIGINT/SIGTERM stop gracefully: queued events are printed and committed).\n";

std::vector<option_spec> subscribe_specs() {
  auto base = connection_options();
  std::vector<option_spec> specs(base.begin(), base.end());
  specs.push_back({"replay", true, ""});
  specs.push_back({"replay-store", true, ""});
  specs.push_back({"replay-policy", true, ""});
  specs.push_back({"count", true, ""});
  specs.push_back({"max-retries", true, ""});
  specs.push_back({"reconcile-fields", true, ""});
  specs.push_back({"no-reconcile", false, ""});
  return specs;
}

/// Parses "Account=Name,Industry;Contact=LastName" into fields per entity.
bool parse_reconcile_fields(const std::string& text,
                            std::map<std::string, std::vector<std::string>>& out,
                            std::string& error) {
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = std::min(text.find(';', start), text.size());
    const std::string item = text.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == item.size()) {
      error = "--reconcile-fields wants ENTITY=F1,F2[;ENTITY=...] (got '" + item + "')";
      return false;
    }
    auto& fields = out[item.substr(0, eq)];
    std::size_t f = eq + 1;
    while (f <= item.size()) {
      const auto comma = std::min(item.find(',', f), item.size());
      if (comma > f) fields.push_back(item.substr(f, comma - f));
      f = comma + 1;
    }
  }
  if (out.empty()) error = "--reconcile-fields names no entity";
  return !out.empty();
}

std::string replay_key(const std::string& channel) {
  return channel.substr(0, channel.find('?'));
}

/// Splits "CHANNEL=REPLAY". A filtered PushTopic channel has '=' of its own
/// ("/topic/X?Industry=Energy"): there the suffix counts as a replay id only when the query
/// string holds one more '=' than its field=value pairs need.
bool split_channel(const std::string& arg, std::string& channel,
                   std::optional<std::int64_t>& replay, std::string& error) {
  channel = arg;
  replay.reset();
  const auto eq = arg.rfind('=');
  if (eq == std::string::npos) return true;
  const auto q = arg.find('?');
  if (q != std::string::npos && eq > q) {
    const std::string query = arg.substr(q + 1);
    const auto equals = static_cast<std::size_t>(std::count(query.begin(), query.end(), '='));
    const auto pairs = static_cast<std::size_t>(std::count(query.begin(), query.end(), '&')) + 1;
    if (equals <= pairs) return true;
  }
  auto id = parse_replay_id(std::string_view(arg).substr(eq + 1));
  if (!id) {
    error = "bad replay id in '" + arg + "': use CHANNEL=-1, CHANNEL=-2 or CHANNEL=ID";
    return false;
  }
  channel = arg.substr(0, eq);
  replay = id;
  return true;
}

/// The replay store the client writes through: it commits, per channel, only what this process
/// has printed, i.e. written to stdout in full. When --count stops the command, or stdout
/// fails, events already received but not printed are not committed, so the next run gets
/// them again. The client saves after each batch of handlers: `flush` writes that batch's
/// lines first.
class printed_store final : public replay_store {
 public:
  explicit printed_store(std::shared_ptr<replay_store> inner) : inner_(std::move(inner)) {}

  /// Sets the flush hook; called before the client runs.
  void before_save(std::function<void()> flush) { flush_ = std::move(flush); }

  void printed(const std::string& key, std::int64_t id) {
    std::lock_guard lock{mutex_};
    printed_[key] = replay_position{id, std::chrono::system_clock::now()};
  }

  std::optional<replay_position> load(const std::string& key) const override {
    return inner_->load(key);
  }
  std::map<std::string, replay_position> load_all() const override { return inner_->load_all(); }
  error_info save(const std::map<std::string, replay_position>& positions) override {
    if (flush_) flush_();
    std::map<std::string, replay_position> out;
    {
      std::lock_guard lock{mutex_};
      for (const auto& [key, position] : positions) {
        auto it = printed_.find(key);
        if (it == printed_.end()) continue;
        replay_position p = position;
        if (it->second.replay_id < p.replay_id) p = it->second;
        out[key] = p;
      }
    }
    if (out.empty()) return {};
    return inner_->save(out);
  }

 private:
  std::shared_ptr<replay_store> inner_;
  std::function<void()> flush_;
  mutable std::mutex mutex_;
  std::map<std::string, replay_position> printed_;
};

}  // namespace

int run_subscribe(std::span<char* const> args) {
  const auto specs = subscribe_specs();
  std::string error;
  auto parsed = parse_args(args, specs, error);
  if (!parsed) return usage_error("subscribe", error);
  if (parsed->given("help")) {
    std::fputs(subscribe_help, stdout);
    return exit_ok;
  }
  if (parsed->positionals().empty()) return usage_error("subscribe", "give at least one CHANNEL");

  std::int64_t default_replay = replay_new;
  if (auto r = parsed->value("replay")) {
    auto id = parse_replay_id(*r);
    if (!id)
      return usage_error("subscribe", "--replay must be -1, -2 or a replay id (got '" + *r + "')");
    default_replay = *id;
  }
  replay_policy policy = replay_policy::earliest;
  if (auto p = parsed->value("replay-policy")) {
    auto v = parse_replay_policy(*p);
    if (!v)
      return usage_error("subscribe",
                         "--replay-policy must be earliest, tip or fail (got '" + *p + "')");
    policy = *v;
  }
  std::optional<long long> count;
  if (auto c = parsed->value("count")) {
    count = parse_count(*c);
    if (!count || *count == 0)
      return usage_error("subscribe", "--count needs a positive whole number");
  }
  std::optional<std::chrono::milliseconds> timeout;
  if (auto t = parsed->value("timeout")) {
    timeout = parse_seconds(*t);
    if (!timeout || timeout->count() == 0)
      return usage_error("subscribe", "--timeout needs a positive number of seconds");
  }
  int max_retries = -1;
  if (auto m = parsed->value("max-retries")) {
    auto v = parse_count(*m);
    if (!v || *v > 1'000'000)
      return usage_error("subscribe", "--max-retries needs a whole number (0-1000000)");
    max_retries = static_cast<int>(*v);
  }
  struct wanted {
    std::string channel;
    std::int64_t replay;
  };
  std::vector<wanted> channels;
  for (const auto& arg : parsed->positionals()) {
    std::string channel;
    std::optional<std::int64_t> replay;
    if (!split_channel(arg, channel, replay, error)) return usage_error("subscribe", error);
    channels.push_back({channel, replay.value_or(default_replay)});
  }

  std::map<std::string, std::vector<std::string>> reconcile_fields;
  if (auto f = parsed->value("reconcile-fields")) {
    if (!parse_reconcile_fields(*f, reconcile_fields, error))
      return usage_error("subscribe", error);
  }
  const bool reconcile = !parsed->given("no-reconcile");
  const std::string api_version = parsed->value("api-version").value_or("59.0");
  if (auto bad = check_api_version(api_version); !bad.empty()) return usage_error("subscribe", bad);

  register_secrets(*parsed);
  auto network = network_from(*parsed, error);
  if (!network) return usage_error("subscribe", error);
  if (network->proxy) add_secret(network->proxy->password);
  const logger log = stderr_logger(parsed->given("verbose"));

  asio::io_context io;
  auto credentials = credentials_from(*parsed, io.get_executor(), *network, log, error);
  if (!credentials) return usage_error("subscribe", error);

  std::shared_ptr<replay_store> inner;
  if (auto path = parsed->value("replay-store")) {
    try {
      inner = open_file_replay_store(*path);
    } catch (const sfstream::error& e) {
      print_error("cannot open the replay store " + *path + ": " + describe(e.info()));
      return exit_failure;
    }
  } else {
    inner = make_memory_replay_store();
  }
  auto store = std::make_shared<printed_store>(inner);

  client_config config;
  config.credentials = credentials;
  config.api_version = api_version;
  config.network = *network;
  config.log = log;
  config.store = store;
  config.policy = policy;
  config.max_retries = max_retries;
  // Handlers run on their own thread: CDC reconciliation blocks its handler while REST calls
  // (and the credentials provider they use) run on `io`. State touched by handlers lives on
  // that thread; what belongs to `io` (stopping, the deadline, the client's cancel) is reached
  // by posting there.
  asio::thread_pool handler_thread(1);
  client c{io.get_executor(), handler_thread.get_executor(), config};

  int exit_code = exit_ok;
  bool stopping = false;
  bool finished = false;
  std::atomic<long long> printed{0};
  std::size_t rejected = 0;
  // Set (on the handler thread) when an event could not be handled: nothing after it is printed
  // or committed, so the committed position never passes it.
  bool halted = false;
  // The event lines on their way to stdout (handler thread; a CDC reconciliation may append from
  // the thread it waits on, hence the mutex).
  std::mutex out_mutex;
  line_writer out(STDOUT_FILENO);
  // Set on the handler thread when stdout or the replay store failed. Such an ending wins over
  // every other: what was printed and what was committed must never disagree silently.
  std::atomic<int> fatal_exit{0};
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);

  auto stop = [&](int code) {
    if (exit_code == exit_ok) exit_code = code;
    if (stopping) return;
    stopping = true;
    deadline.cancel();
    if (!finished) c.cancel();
  };
  auto stop_from_handler = [&](int code) { asio::post(io, [&stop, code] { stop(code); }); };
  auto fail_from_handler = [&](int code, const std::string& message) {
    halted = true;
    int none = 0;
    if (fatal_exit.compare_exchange_strong(none, code)) print_error(message);
    stop_from_handler(code);
  };
  // Writes the pending lines; what was written in full counts as printed (and may be committed).
  auto flush_output = [&] {
    std::vector<printed_mark> written;
    int failure = 0;
    {
      std::lock_guard lock{out_mutex};
      written = out.flush();
      failure = out.error();
    }
    for (const auto& m : written) store->printed(m.key, m.replay_id);
    if (failure == 0 || fatal_exit.load() != 0) return;
    if (failure == EPIPE) {
      fail_from_handler(exit_output_closed,
                        "stdout was closed by its reader (broken pipe): stopping; nothing after "
                        "the last event written is committed");
    } else {
      fail_from_handler(exit_output_failed, std::string("cannot write events to stdout: ") +
                                                std::strerror(failure) +
                                                ": stopping; nothing after the last event "
                                                "written is committed");
    }
  };
  // Lines above this many pending bytes are written at once, not at the end of the batch.
  constexpr std::size_t flush_threshold = 1 << 20;
  auto append_line = [&](std::string_view line) {
    bool full = false;
    {
      std::lock_guard lock{out_mutex};
      out.append(line);
      full = out.pending() >= flush_threshold;
    }
    if (full) flush_output();
  };
  // A store that cannot be saved ends the run through the client (errc::replay_store_io after
  // its bounded tries), with exit code 10.
  store->before_save(flush_output);
  auto warn_repaired = [](const event& e, const json_line_fix& fix) {
    if (!fix.replaced_utf8 && !fix.escaped_control) return;
    print_error("warning: the event on " + e.channel() +
                (e.replay_id() ? " (replay id " + std::to_string(*e.replay_id()) + ")" : "") +
                " is not valid JSON text: it is printed with " +
                (fix.replaced_utf8 ? "U+FFFD for its invalid UTF-8" : "") +
                (fix.replaced_utf8 && fix.escaped_control ? " and " : "") +
                (fix.escaped_control ? "its raw control characters escaped" : ""));
  };
  // Every event's line, unless the command is stopping (then it is not committed either).
  auto print_event = [&](const event& e) {
    if (halted || (count && printed.load() >= *count)) return false;
    json_line_fix fix;
    std::string line = event_line(e, &fix);
    warn_repaired(e, fix);
    append_line(line);
    return true;
  };
  // A batch of one subscription's events: their lines go into the output buffer under one
  // lock, the batch's last position is marked once, and the batch is done at once (its
  // positions are saved only after the lines before them are written: the store flushes
  // first). Events past --count, or after the command halted, are neither printed nor
  // committed (the store keeps nothing beyond the last printed mark).
  std::string batch_channel;       // the channel of the last line printed by print_batch,
  std::string batch_channel_json;  // and its JSON string (out_mutex)
  auto print_batch = [&](std::span<const event> events) {
    std::size_t n = 0;
    bool full = false;
    {
      std::lock_guard lock{out_mutex};
      const long long room =
          count ? std::max<long long>(0, *count - printed.load()) : static_cast<long long>(events.size());
      const std::size_t take = halted ? 0 : std::min(events.size(), static_cast<std::size_t>(room));
      const event* last_with_id = nullptr;
      for (; n < take; ++n) {
        json_line_fix fix;
        if (events[n].channel() != batch_channel) {
          batch_channel = events[n].channel();
          batch_channel_json = channel_json_of(batch_channel);
        }
        out.append_event(events[n], &fix, batch_channel_json);
        warn_repaired(events[n], fix);
        if (events[n].replay_id()) last_with_id = &events[n];
      }
      if (last_with_id != nullptr) {
        out.mark({replay_key(last_with_id->channel()), *last_with_id->replay_id()});
      }
      full = out.pending() >= flush_threshold;
    }
    if (n == 0) return;
    if (count && (printed += static_cast<long long>(n)) >= *count) {
      flush_output();
      stop_from_handler(exit_ok);
    } else if (full) {
      flush_output();
    }
  };
  // Marks the event for commit once its lines are written, and counts it for --count.
  auto counted = [&](const event& e) {
    if (e.replay_id()) {
      std::lock_guard lock{out_mutex};
      out.mark({replay_key(e.channel()), *e.replay_id()});
    }
    if (count && ++printed == *count) {
      flush_output();
      stop_from_handler(exit_ok);
    }
  };

  for (const auto& w : channels) {
    subscription_callbacks cbs;
    const std::string channel = w.channel;
    cbs.on_subscribed = [channel](std::int64_t from) {
      print_error("subscribed to " + channel + " (replay from " + std::to_string(from) + ")");
    };
    cbs.on_gap = [&](const gap_record& gap) {
      flush_output();  // the events before the gap come first
      print_note(gap_json(gap));
      if (gap.policy_taken == replay_policy::fail) stop_from_handler(exit_replay_gap);
    };
    cbs.on_rejected = [&, channel](const error_info& why) {
      flush_output();
      print_note(rejected_json(channel, why));
      // A run never goes on with no live subscription: it ends with the code saying why.
      if (why.code == errc::replay_gap) return stop_from_handler(exit_replay_gap);
      if (++rejected == channels.size()) stop_from_handler(exit_rejected);
    };
    if (kind_of_channel(channel) == channel_kind::change_data_capture && reconcile) {
      // The live event's line comes first, then the lines its reconciliation yields. An event
      // whose gap or overflow could not be reconciled is not committed: the command stops with
      // exit code 7 and a later run with the same --replay-store gets it again.
      cdc_handler h;
      h.on_reconciled = [channel, &append_line](reconcile_action action,
                                                const sobject_record& record, bool from_gap) {
        append_line(render_reconciled_json(channel, action, record, from_gap));
      };
      h.on_resync_begin = [channel, &append_line](const std::string& entity) {
        append_line(render_resync_json(channel, resync_phase::begin, entity));
      };
      h.on_resync_record = [channel, &append_line](const std::string& entity,
                                                   const sobject_record& record) {
        append_line(render_resync_json(channel, resync_phase::record, entity, &record));
      };
      h.on_resync_end = [channel, &append_line](const std::string& entity) {
        append_line(render_resync_json(channel, resync_phase::end, entity));
      };
      h.on_invalid = [&halted](const event& e, const error_info& why) {
        error_info ignored;
        const auto change = e.as_change(&ignored);
        const bool reconciling = !ignored && (change.change_type.starts_with("GAP_"));
        print_error(std::string(reconciling ? "cannot reconcile " : "unreadable change event ") +
                    "on " + e.channel() +
                    (e.replay_id() ? " (replay id " + std::to_string(*e.replay_id()) + ")" : "") +
                    ": " + describe(why));
        if (reconciling) halted = true;  // an unreadable event was printed raw: nothing lost
      };
      cdc_options o;
      o.rest.credentials = credentials;
      o.rest.api_version = config.api_version;
      o.rest.network = *network;
      o.fields = reconcile_fields;
      o.log = log;
      auto reconciling = cdc_callbacks(std::move(h), std::move(o));
      cbs.on_event = [&, inner_event = std::move(reconciling.on_event)](const event& e) {
        if (!print_event(e)) return;  // `halted` is false here
        inner_event(e);
        if (halted) return stop_from_handler(exit_unreconciled);
        counted(e);
      };
    } else {
      cbs.on_batch = [&](std::span<const event> events, batch_done done) {
        print_batch(events);
        done(events.size(), {});
      };
    }
    if (auto why = c.subscribe(w.channel, w.replay, std::move(cbs))) {
      return usage_error("subscribe", "cannot subscribe to '" + w.channel + "': " + describe(why));
    }
  }

  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int) {
    if (ec) return;
    if (stopping) {
      // A second signal while the graceful stop is under way: leave at once (lines not yet
      // written were not committed either).
      ::_exit(exit_interrupted);
    }
    print_error("interrupted: stopping");
    stop(exit_interrupted);
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  if (timeout) {
    deadline.expires_after(*timeout);
    deadline.async_wait([&](boost::system::error_code ec) {
      if (ec || stopping) return;
      if (count) {
        print_error("timed out after " + std::to_string(printed.load()) + " of " +
                    std::to_string(*count) + " events");
        stop(exit_failure);
      } else {
        stop(exit_ok);
      }
    });
  }

  c.async_run([&](std::error_code ec) {
    finished = true;
    const error_info last = c.last_error();
    const error_info why = last.code ? last : error_info{ec, {}};
    // A store that failed while the stop drained the queue still says so: the positions are
    // behind what was printed.
    const bool store_failed = why.code == errc::replay_store_io;
    if (ec && (!stopping || store_failed) && fatal_exit.load() == 0) {
      const std::string advice = advice_for(why);
      print_error("stopped: " + describe(why) + (advice.empty() ? "" : ". " + advice));
      const int code = exit_code_for(why);
      exit_code = code == exit_ok || code == exit_interrupted ? exit_failure : code;
      if (store_failed) exit_code = exit_store_failed;
    }
    signals.cancel();
    deadline.cancel();
    io.stop();
  });
  io.run();
  handler_thread.join();  // the run completed after the handlers drained; nothing is left
  flush_output();         // lines no commit flushed (events without a replay id)
  if (const int fatal = fatal_exit.load(); fatal != 0) return fatal;
  return exit_code;
}

}  // namespace sfstream::cli

// `sfstream poll`: one poller, every object given, one JSON line per change on stdout, and a
// summary of the API calls made on stderr at exit.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "cli/output.hpp"
#include "sfstream/poll.hpp"
#include "vocabulary/event_time.hpp"

namespace sfstream::cli {

namespace {

namespace asio = boost::asio;

const char* const poll_help =
    "usage: sfstream poll [options] OBJECT[:FIELD,...][@SECONDS][?CONDITION]...\n"
    "\n"
    "Polls each OBJECT through REST queryAll for records whose SystemModstamp moved, and writes\n"
    "one JSON object per change to stdout, shaped like a PushTopic notification:\n"
    "  {\"channel\":\"/poll/Account\",\"data\":{\"event\":{\"type\":\"created\"|\"updated\"|\"deleted\",\n"
    "   \"createdDate\":\"<SystemModstamp>\"},\"sobject\":{\"Id\":...,<FIELDs>}}}\n"
    "For objects without a usable stream: those PushTopics cannot query, editions without\n"
    "Change Data Capture, an org whose daily event delivery allocation is spent. Each poll\n"
    "reads again the last --overlap seconds so that a record committed late (a long\n"
    "transaction) is not missed; what was already printed is dropped, by Id and SystemModstamp.\n"
    "A record is created when its CreatedDate equals its SystemModstamp; deletions carry only\n"
    "the Id; several writes between two polls are one line.\n"
    "\n"
    "  OBJECT:FIELD,...    fields of that object's lines besides Id (default: --fields)\n"
    "  OBJECT@SECONDS      that object's interval (default: --interval)\n"
    "  OBJECT?CONDITION    a SOQL condition ANDed to its polls, e.g. \"Account?Industry = 'Energy'\"\n"
    "                      (default: --where); the ? part comes last\n"
    "\n"
    "polling:\n"
    "  --fields F1,F2      fields of every object without its own (default: Id only)\n"
    "  --where CONDITION   the condition of every object without its own\n"
    "  --interval SECONDS  time between the polls of an object (default 30)\n"
    "  --overlap SECONDS   how far back each poll reads again (default 60)\n"
    "  --since now|beginning|TIME\n"
    "                      where an object without a stored cursor starts: after its newest\n"
    "                      record (now, default), every record (beginning), or changes from TIME\n"
    "                      (2024-05-01T12:00:00Z)\n"
    "  --replay-store PATH keep each object's cursor in PATH (key /poll/OBJECT; locked, atomic\n"
    "                      writes; the same file format as subscribe's). A change counts as\n"
    "                      printed once its line was written to stdout in full\n"
    "  --batch-size N      records per page (200-2000; default: the server's 2000)\n"
    "  --api-share SHARE   warn at start when the polls would use more than SHARE (0-1; default\n"
    "                      0.5) of the DailyApiRequests left before the end of the UTC day\n"
    "  --api-version V     REST API version (default 59.0)\n"
    "  --count N           exit 0 after N changes\n"
    "  --timeout SECONDS   stop after SECONDS (exit 0; exit 1 when --count N was not reached)\n"
    "  --max-retries N     give up after N consecutive failed calls of an object (exit 6);\n"
    "                      default: never. REQUEST_LIMIT_EXCEEDED backs off for minutes\n"
    "\n"
    "credentials and network: as for subscribe (sfstream subscribe --help): --username,\n"
    "--password, --security-token, --login-url, --access-token, --instance-url, --oauth ...,\n"
    "--ca-file, --proxy, -v/--verbose.\n"
    "\n"
    "At exit one line on stderr counts the API calls made and the changes printed:\n"
    "  sfstream: poll: 42 API calls (DailyApiRequests 14958 of 15000 left at start); 7 changes\n"
    "  (Account: 5 created, 1 updated, 1 deleted)\n"
    "\n"
    "exit codes: 0 done; 1 other failure (an unknown object or field: INVALID_TYPE or\n"
    "INVALID_FIELD); 2 usage; 3 authentication failed; 6 network given up (--max-retries);\n"
    "8 output failed; 9 the reader of stdout went away; 10 the replay store could not be saved;\n"
    "130 interrupted (SIGINT/SIGTERM: what was printed is committed).\n";

std::vector<option_spec> poll_specs() {
  auto base = connection_options();
  std::vector<option_spec> specs(base.begin(), base.end());
  for (const char* name : {"fields", "where", "interval", "overlap", "since", "replay-store",
                           "batch-size", "api-share", "count", "max-retries"})
    specs.push_back({name, true, ""});
  return specs;
}

std::vector<std::string> split_fields(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = std::min(text.find(',', at), text.size());
    std::string f = text.substr(at, comma - at);
    while (!f.empty() && f.front() == ' ') f.erase(f.begin());
    while (!f.empty() && f.back() == ' ') f.pop_back();
    if (!f.empty()) out.push_back(f);
    at = comma + 1;
  }
  return out;
}

/// OBJECT[:FIELDS][@SECONDS][?CONDITION].
bool parse_object(const std::string& arg, poll_object& out, std::string& error) {
  std::string head = arg;
  if (const auto q = arg.find('?'); q != std::string::npos) {
    out.where = arg.substr(q + 1);
    head = arg.substr(0, q);
    if (out.where.empty()) {
      error = "'" + arg + "' has an empty condition after '?'";
      return false;
    }
  }
  if (const auto at = head.find('@'); at != std::string::npos) {
    const auto seconds = parse_seconds(head.substr(at + 1));
    if (!seconds || seconds->count() == 0) {
      error = "'" + arg + "': the interval after '@' must be a positive number of seconds";
      return false;
    }
    out.interval = *seconds;
    head = head.substr(0, at);
  }
  if (const auto colon = head.find(':'); colon != std::string::npos) {
    out.fields = split_fields(head.substr(colon + 1));
    head = head.substr(0, colon);
  }
  out.name = head;
  if (out.name.empty()) {
    error = "'" + arg + "' names no object";
    return false;
  }
  return true;
}

std::string summary_line(const poll_metrics& m) {
  std::string line = "poll: " + std::to_string(m.api_calls) + " API call" + (m.api_calls == 1 ? "" : "s");
  if (m.allocation)
    line += " (DailyApiRequests " + std::to_string(m.allocation->remaining) + " of " +
            std::to_string(m.allocation->max) + " left at start)";
  line += "; " + std::to_string(m.events) + " change" + (m.events == 1 ? "" : "s");
  std::string per;
  for (const auto& [name, o] : m.objects) {
    per += (per.empty() ? "" : "; ") + name + ": " + std::to_string(o.created) + " created, " +
           std::to_string(o.updated) + " updated, " + std::to_string(o.deleted) + " deleted";
    if (o.late) per += ", " + std::to_string(o.late) + " committed late";
  }
  if (!per.empty()) line += " (" + per + ")";
  return line;
}

}  // namespace

int run_poll(std::span<char* const> args) {
  const auto specs = poll_specs();
  std::string error;
  auto parsed = parse_args(args, specs, error);
  if (!parsed) return usage_error("poll", error);
  if (parsed->given("help")) {
    std::fputs(poll_help, stdout);
    return exit_ok;
  }
  if (parsed->positionals().empty()) return usage_error("poll", "give at least one OBJECT");

  const std::vector<std::string> default_fields = split_fields(parsed->value("fields").value_or(""));
  const std::string default_where = parsed->value("where").value_or("");
  poll_config config;
  if (auto i = parsed->value("interval")) {
    const auto v = parse_seconds(*i);
    if (!v || v->count() == 0) return usage_error("poll", "--interval needs a positive number of seconds");
    config.interval = *v;
  }
  if (auto o = parsed->value("overlap")) {
    const auto v = parse_seconds(*o);
    if (!v) return usage_error("poll", "--overlap needs a number of seconds");
    config.overlap = *v;
  }
  poll_start start = poll_start::now;
  std::optional<std::chrono::system_clock::time_point> since;
  if (auto s = parsed->value("since")) {
    if (*s == "beginning") {
      start = poll_start::beginning;
    } else if (*s != "now") {
      std::string text = *s;
      if (text.size() == 20 && text.back() == 'Z') text = text.substr(0, 19) + ".000Z";
      since = detail::parse_event_time(text);
      if (!since)
        return usage_error("poll", "--since must be now, beginning or a UTC time like 2024-05-01T12:00:00Z");
    }
  }
  if (auto b = parsed->value("batch-size")) {
    const auto v = parse_count(*b);
    if (!v || *v < 200 || *v > 2000) return usage_error("poll", "--batch-size must be 200-2000");
    config.batch_size = static_cast<std::size_t>(*v);
  }
  if (auto share = parsed->value("api-share")) {
    char* end = nullptr;
    const double v = std::strtod(share->c_str(), &end);
    if (share->empty() || *end != '\0' || !(v >= 0 && v <= 1))
      return usage_error("poll", "--api-share must be a number from 0 to 1");
    config.api_share_warning = v;
  }
  std::optional<long long> count;
  if (auto c = parsed->value("count")) {
    count = parse_count(*c);
    if (!count || *count == 0) return usage_error("poll", "--count needs a positive whole number");
  }
  std::optional<std::chrono::milliseconds> timeout;
  if (auto t = parsed->value("timeout")) {
    timeout = parse_seconds(*t);
    if (!timeout || timeout->count() == 0)
      return usage_error("poll", "--timeout needs a positive number of seconds");
  }
  if (auto m = parsed->value("max-retries")) {
    auto v = parse_count(*m);
    if (!v || *v > 1'000'000) return usage_error("poll", "--max-retries needs a whole number (0-1000000)");
    config.max_retries = static_cast<int>(*v);
  }
  std::vector<poll_object> objects;
  for (const auto& arg : parsed->positionals()) {
    poll_object o;
    o.fields = default_fields;
    o.where = default_where;
    o.start = start;
    o.since = since;
    if (!parse_object(arg, o, error)) return usage_error("poll", error);
    objects.push_back(std::move(o));
  }
  config.api_version = parsed->value("api-version").value_or("59.0");

  register_secrets(*parsed);
  auto network = network_from(*parsed, error);
  if (!network) return usage_error("poll", error);
  if (network->proxy) add_secret(network->proxy->password);
  config.network = *network;
  config.log = stderr_logger(parsed->given("verbose"));

  asio::io_context io;
  config.credentials = credentials_from(*parsed, io.get_executor(), *network, config.log, error);
  if (!config.credentials) return usage_error("poll", error);
  if (auto path = parsed->value("replay-store")) {
    try {
      config.store = open_file_replay_store(*path);
    } catch (const sfstream::error& e) {
      print_error("cannot open the replay store " + *path + ": " + describe(e.info()));
      return exit_failure;
    }
  }

  poller p{io.get_executor(), config};
  int exit_code = exit_ok;
  bool stopping = false;
  bool finished = false;
  long long printed = 0;
  int output_exit = 0;  // stdout failed: wins over every other ending
  line_writer out(STDOUT_FILENO);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);

  auto stop = [&](int code) {
    if (exit_code == exit_ok) exit_code = code;
    if (stopping) return;
    stopping = true;
    deadline.cancel();
    if (!finished) p.cancel();
  };
  // Handlers run on `io`: each line is written before the handler returns, so a committed
  // cursor never passes a line that did not reach stdout.
  poll_callbacks callbacks;
  callbacks.on_event_status = [&](const event& e) -> error_info {
    out.append(e.json());
    out.flush();
    if (const int failure = out.error()) {
      output_exit = failure == EPIPE ? exit_output_closed : exit_output_failed;
      print_error(failure == EPIPE
                      ? "stdout was closed by its reader (broken pipe): stopping; nothing after the "
                        "last change written is committed"
                      : std::string("cannot write changes to stdout: ") + std::strerror(failure) +
                            ": stopping; nothing after the last change written is committed");
      return {errc::output_failed, {"", std::strerror(failure), "writing to stdout"}, {}};
    }
    if (count && ++printed == *count) stop(exit_ok);
    return {};
  };
  for (auto& o : objects) {
    if (auto why = p.add(o, callbacks))
      return usage_error("poll", "cannot poll '" + o.name + "': " + describe(why));
  }

  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec, int) {
    if (ec) return;
    if (stopping) ::_exit(exit_interrupted);
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
        print_error("timed out after " + std::to_string(printed) + " of " + std::to_string(*count) + " changes");
        stop(exit_failure);
      } else {
        stop(exit_ok);
      }
    });
  }
  p.async_run([&](std::error_code ec) {
    finished = true;
    const error_info last = p.last_error();
    const error_info why = last.code ? last : error_info{ec, {}};
    if (why.code && output_exit == 0) {
      const std::string advice = advice_for(why);
      print_error("stopped: " + describe(why) + (advice.empty() ? "" : ". " + advice));
      const int code = exit_code_for(why);
      exit_code = code == exit_ok || code == exit_interrupted ? exit_failure : code;
      if (why.code == errc::replay_store_io || why.code == errc::replay_store_locked) exit_code = exit_store_failed;
    }
    signals.cancel();
    deadline.cancel();
    io.stop();
  });
  io.run();
  print_error(summary_line(p.metrics()));
  return output_exit != 0 ? output_exit : exit_code;
}

}  // namespace sfstream::cli

// `sfstream serve`: the long-running service. Every connection of the configuration file
// streams into its sink until SIGTERM or SIGINT; then the service drains, commits, disconnects
// and exits 0.
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include <boost/asio/signal_set.hpp>

#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "serve/config.hpp"
#include "serve/service.hpp"

namespace sfstream::cli {

namespace {

namespace asio = boost::asio;

const char* const serve_help =
    "usage: sfstream serve --config FILE [--log-format text|json]\n"
    "       sfstream serve --check FILE\n"
    "\n"
    "Runs every [[connection]] of FILE (TOML) in one process until SIGTERM or SIGINT, then\n"
    "drains what is in flight, commits, disconnects and exits 0. Each connection is one org\n"
    "with its own credentials, channels and sink (stdout, a rotating file or a webhook); a\n"
    "connection that fails never stops the others: it is started again later when a retry can\n"
    "help, else left failed (see /status when [admin] is configured).\n"
    "\n"
    "  --config FILE         the configuration to run\n"
    "  --check FILE          only check FILE: every problem is listed as FILE:LINE: key: problem\n"
    "                        (exit 2 when there is one, 0 when the file is good)\n"
    "  --log-format F        text (default) or json: overrides [service] log_format\n"
    "  -h, --help            this text\n"
    "\n"
    "exit codes: 0 stopped by a signal (everything committed) or a good --check; 1 could not\n"
    "start (store locked or unreadable, admin port taken); 2 usage or a bad configuration.\n";

constexpr option_spec serve_specs[] = {
    {"config", true, ""},
    {"check", true, ""},
    {"log-format", true, ""},
    {"help", false, "", 'h'},
};

/// Many connections need many descriptors (two lanes each, plus logins): use what the hard
/// limit allows.
void raise_descriptor_limit() {
  ::rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int run_serve(std::span<char* const> args) {
  std::string error;
  auto parsed = parse_args(args, serve_specs, error);
  if (!parsed) return usage_error("serve", error);
  if (parsed->given("help")) {
    std::fputs(serve_help, stdout);
    return exit_ok;
  }
  if (!parsed->positionals().empty())
    return usage_error("serve", "unexpected argument '" + parsed->positionals()[0] + "'");
  const auto check = parsed->value("check");
  const auto file = check ? check : parsed->value("config");
  if (!file) return usage_error("serve", "give --config FILE (or --check FILE)");
  if (check && parsed->given("config"))
    return usage_error("serve", "give either --config or --check, not both");

  std::vector<serve::config_problem> problems;
  auto config = serve::load_service_config(*file, problems);
  if (!config) {
    for (const auto& p : problems) std::fprintf(stderr, "%s\n", p.to_string().c_str());
    std::fprintf(stderr, "sfstream serve: %zu problem%s in %s: nothing was started\n",
                 problems.size(), problems.size() == 1 ? "" : "s", file->c_str());
    return exit_usage;
  }
  if (auto f = parsed->value("log-format")) {
    if (*f == "json") {
      config->format = serve::log_format::json;
    } else if (*f == "text") {
      config->format = serve::log_format::text;
    } else {
      return usage_error("serve", "--log-format must be text or json (got '" + *f + "')");
    }
  }
  if (check) {
    std::printf("%s: good: %zu connection%s\n", file->c_str(), config->connections.size(),
                config->connections.size() == 1 ? "" : "s");
    return exit_ok;
  }

  raise_descriptor_limit();
  std::unique_ptr<serve::service> svc;
  try {
    svc = std::make_unique<serve::service>(std::move(*config));
  } catch (const sfstream::error& e) {
    std::fprintf(stderr, "sfstream serve: cannot start: %s\n", e.info().to_string().c_str());
    return exit_failure;
  }
  if (auto why = svc->start()) {
    svc->log().log(log_level::error, "", "cannot start: " + why.to_string());
    svc->stop();
    svc->wait();
    return exit_failure;
  }
  asio::signal_set signals(svc->executor(), SIGINT, SIGTERM);
  bool signalled = false;
  std::function<void(boost::system::error_code, int)> on_signal =
      [&](boost::system::error_code ec, int number) {
        if (ec) return;
        if (signalled) {
          // A second signal while draining: leave at once; what was not committed comes
          // again after a restart.
          svc->log().log(log_level::warning, "", "second signal: exiting without draining");
          ::_exit(exit_interrupted);
        }
        signalled = true;
        svc->log().log(log_level::info, "",
                       std::string("received ") + (number == SIGTERM ? "SIGTERM" : "SIGINT"));
        svc->stop();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  svc->wait();
  svc->log().log(log_level::info, "", "stopped");
  return exit_ok;
}

}  // namespace sfstream::cli

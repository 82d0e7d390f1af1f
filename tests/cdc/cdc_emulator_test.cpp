// CDC end to end: the streaming client against the org emulator over HTTPS on loopback, CDC
// handlers, gap reconciliation and overflow resync through the REST API, the REST client.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "sfstream/cdc.hpp"
#include "sfstream/client.hpp"
#include "sfstream/connector.hpp"
#include "sfstream/credentials.hpp"
#include "sfstream/rest.hpp"
#include "support/emulator_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using sfstream::emulator::org_emulator;
using sfstream::emulator::data::gap_type;
using sfstream::testing::emulator_fixture;
using sfstream::testing::io_thread;
using sfstream::testing::wait_until;

const std::vector<std::string> account_fields = {
    "Name", "Type", "Industry", "Phone", "AnnualRevenue", "NumberOfEmployees", "Description"};

sfstream::emulator::emulator_options org_options() {
  auto o = emulator_fixture::default_options();
  o.daily_event_limit = 0;
  return o;
}

/// A streaming client (network on `io`, handlers on `handlers`) logged in as the demo user,
/// and REST options with the same credentials.
struct cdc_setup {
  io_thread io;
  io_thread handlers;
  sfstream::client_config config;
  sfstream::rest_options rest;
  std::unique_ptr<sfstream::client> client;
  std::atomic<bool> done{false};

  explicit cdc_setup(emulator_fixture& org) {
    const auto& user = org.org().options().users.front();
    sfstream::soap_login_options login;
    login.login_url = org.org().login_url();
    login.username = user.username;
    login.password = user.password;
    login.security_token = user.security_token;
    sfstream::network_options net;
    net.ca_file = org.org().ca_file();
    config.credentials = sfstream::make_soap_login_provider(io.executor(), login, net);
    config.network = net;
    config.jitter_seed = 7;
    rest.credentials = config.credentials;
    rest.network = net;
    client = std::make_unique<sfstream::client>(io.executor(), handlers.executor(), config);
  }
  ~cdc_setup() {
    if (client) {
      client->cancel();
      wait_until([this] { return done.load(); }, 10s);
    }
    // The client's runtime and the CDC adapter's timer live in operations queued on both
    // contexts: let both run dry before either context (and its services) is destroyed.
    client.reset();
    io.join();
    handlers.join();
  }

  sfstream::cdc_options options() {
    sfstream::cdc_options o;
    o.rest = rest;
    o.fields["Account"] = account_fields;
    return o;
  }

  void start(const std::string& channel, sfstream::subscription_callbacks callbacks) {
    REQUIRE_FALSE(client->subscribe(channel, sfstream::replay_new, std::move(callbacks)));
    client->async_run([this](std::error_code) { done = true; });
  }
};

/// What the CDC callbacks saw, thread-safe.
struct cdc_log {
  mutable std::mutex mutex;
  std::vector<sfstream::change_event> events;
  std::vector<std::tuple<sfstream::reconcile_action, sfstream::sobject_record, bool>> reconciled;
  std::vector<std::string> steps;  ///< "create", "gap", "resync-begin Account", …
  std::size_t resync_records = 0;
  std::vector<std::string> invalid;
  std::atomic<bool> subscribed{false};

  sfstream::cdc_handler handler() {
    sfstream::cdc_handler h;
    auto keep = [this](const char* step) {
      return [this, step](const sfstream::change_event& e) {
        std::lock_guard lock{mutex};
        events.push_back(e);
        steps.emplace_back(step);
      };
    };
    h.on_create = keep("create");
    h.on_update = keep("update");
    h.on_delete = keep("delete");
    h.on_undelete = keep("undelete");
    h.on_gap = keep("gap");
    h.on_overflow = keep("overflow");
    h.on_reconciled = [this](sfstream::reconcile_action a, const sfstream::sobject_record& r,
                             bool from_gap) {
      std::lock_guard lock{mutex};
      reconciled.emplace_back(a, r, from_gap);
      steps.emplace_back("reconciled");
    };
    h.on_resync_begin = [this](const std::string& entity) {
      std::lock_guard lock{mutex};
      steps.push_back("resync-begin " + entity);
    };
    h.on_resync_record = [this](const std::string&, const sfstream::sobject_record&) {
      std::lock_guard lock{mutex};
      ++resync_records;
    };
    h.on_resync_end = [this](const std::string& entity) {
      std::lock_guard lock{mutex};
      steps.push_back("resync-end " + entity);
    };
    h.on_invalid = [this](const sfstream::event&, const sfstream::error_info& why) {
      std::lock_guard lock{mutex};
      invalid.push_back(why.to_string());
    };
    h.on_subscribed = [this](std::int64_t) { subscribed = true; };
    return h;
  }
  std::size_t event_count() const {
    std::lock_guard lock{mutex};
    return events.size();
  }
  std::size_t reconciled_count() const {
    std::lock_guard lock{mutex};
    return reconciled.size();
  }
  bool has_step(const std::string& step) const {
    std::lock_guard lock{mutex};
    return std::find(steps.begin(), steps.end(), step) != steps.end();
  }
};

std::string create(emulator_fixture& org, const std::string& object, const std::string& json) {
  auto r = org.call([&](org_emulator& o) { return o.rest().create_record(object, json); });
  REQUIRE(static_cast<bool>(r));
  return r.id;
}

void update(emulator_fixture& org, const std::string& id, const std::string& json) {
  auto r = org.call([&](org_emulator& o) { return o.rest().update_record("Account", id, json); });
  REQUIRE(static_cast<bool>(r));
}

void remove(emulator_fixture& org, const std::string& id) {
  auto r = org.call([&](org_emulator& o) { return o.rest().delete_record("Account", id); });
  REQUIRE(static_cast<bool>(r));
}

void undelete(emulator_fixture& org, const std::string& id) {
  auto r = org.call([&](org_emulator& o) { return o.rest().undelete_record("Account", id); });
  REQUIRE(static_cast<bool>(r));
}

void gap(emulator_fixture& org, const std::vector<std::string>& ids, gap_type type) {
  auto r =
      org.call([&](org_emulator& o) { return o.rest().emit_gap_events("Account", ids, type); });
  REQUIRE(static_cast<bool>(r));
}

/// The records of Account as REST queryAll reports them now: live ones only, by id.
std::map<std::string, sfstream::field_list> live_accounts(const sfstream::rest_options& rest) {
  sfstream::sync_rest_client client{rest};
  std::string soql = "SELECT Id, IsDeleted";
  for (const auto& f : account_fields) soql += ", " + f;
  soql += " FROM Account";
  std::map<std::string, sfstream::field_list> out;
  auto error = client.for_each_record(soql, true, [&](const sfstream::sobject_record& r) {
    if (!r.field("IsDeleted")->as_bool()) out[r.id] = r.fields;
  });
  REQUIRE_FALSE(error);
  return out;
}

/// The value of `name` in `fields`, absent as null.
sfstream::field_value value_in(const sfstream::field_list& fields, const std::string& name) {
  const auto* v = sfstream::find_field(fields, name);
  return v ? *v : sfstream::field_value{};
}

/// A copy of Account built only from CDC callbacks.
struct mirror {
  mutable std::mutex mutex;
  std::map<std::string, sfstream::field_list> records;
  std::set<std::string> resync_seen;
  std::set<std::string> drop_names;  ///< CREATE events of these Names are "lost".
  std::set<std::string> drop_ids;    ///< The next event naming one of these ids is "lost".
  std::size_t dropped = 0;
  std::size_t reconciled = 0;
  std::size_t resyncs = 0;
  std::vector<std::string> invalid;
  std::map<std::string, std::vector<std::string>>
      history;  ///< Per id: what the callbacks did, for failure messages.

  std::set<std::int64_t> replay_ids;  ///< Every replay id a callback saw, for failure messages.
  std::size_t live_events = 0;
  std::int64_t end_replay_id = 0;

  void note(const std::string& id, const std::string& what) { history[id].push_back(what); }

  /// Replay ids missing between the first and the last seen, e.g. "540-552 610".
  std::string replay_holes() const {
    std::lock_guard lock{mutex};
    std::string out;
    if (replay_ids.empty()) return out;
    for (std::int64_t id = *replay_ids.begin(); id < *replay_ids.rbegin(); ++id)
      if (!replay_ids.count(id)) out += std::to_string(id) + " ";
    return out;
  }

  static void set(sfstream::field_list& fields, const std::string& name,
                  const sfstream::field_value& v) {
    for (auto& [k, x] : fields) {
      if (k == name) {
        x = v;
        return;
      }
    }
    fields.emplace_back(name, v);
  }

  /// Simulates Salesforce sending a gap event instead of this one.
  bool lost(const sfstream::change_event& e, const char* step) {
    bool out = false;
    if (e.header.type == sfstream::change_type::create) {
      const auto* name = e.field("Name");
      out = name && drop_names.erase(name->as_string());
    } else {
      out = e.header.record_ids.size() == 1 && drop_ids.erase(e.header.record_ids.front());
    }
    if (out) ++dropped;
    ++live_events;
    if (e.replay_id) replay_ids.insert(*e.replay_id);
    if (const auto* n = e.field("Name"); n && n->as_string() == "END")
      end_replay_id = e.replay_id.value_or(-1);
    for (const auto& id : e.header.record_ids)
      note(id, std::string(step) + " #" + std::to_string(e.replay_id.value_or(0)) +
                   (out ? " LOST " : " ") + sfstream::to_json(e.fields));
    return out;
  }

  sfstream::cdc_handler handler() {
    sfstream::cdc_handler h;
    h.on_create = [this](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      if (lost(e, "create")) return;
      auto& r = records[e.header.record_ids.front()];
      r.clear();
      for (const auto& [k, v] : e.fields) set(r, k, v);
    };
    h.on_update = [this](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      if (lost(e, "update")) return;
      for (const auto& id : e.header.record_ids)
        for (const auto& [k, v] : e.fields) set(records[id], k, v);
    };
    h.on_delete = [this](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      if (lost(e, "delete")) return;
      for (const auto& id : e.header.record_ids) records.erase(id);
    };
    h.on_undelete = [this](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      if (lost(e, "undelete")) return;
      records[e.header.record_ids.front()] = e.fields;
    };
    h.on_reconciled = [this](sfstream::reconcile_action a, const sfstream::sobject_record& r,
                             bool) {
      std::lock_guard lock{mutex};
      ++reconciled;
      note(r.id,
           std::string("reconciled ") + std::string(sfstream::to_string(a)) + " " + r.to_json());
      if (a == sfstream::reconcile_action::upsert) {
        records[r.id] = r.fields;
      } else {
        records.erase(r.id);
      }
    };
    h.on_resync_begin = [this](const std::string&) {
      std::lock_guard lock{mutex};
      resync_seen.clear();
    };
    h.on_resync_record = [this](const std::string&, const sfstream::sobject_record& r) {
      std::lock_guard lock{mutex};
      records[r.id] = r.fields;
      resync_seen.insert(r.id);
      note(r.id, "resync " + r.to_json());
    };
    h.on_resync_end = [this](const std::string&) {
      std::lock_guard lock{mutex};
      ++resyncs;
      for (auto it = records.begin(); it != records.end();) {
        it = resync_seen.count(it->first) ? std::next(it) : records.erase(it);
      }
    };
    h.on_invalid = [this](const sfstream::event&, const sfstream::error_info& why) {
      std::lock_guard lock{mutex};
      invalid.push_back(why.to_string());
    };
    h.on_overflow = [this](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      if (e.replay_id) replay_ids.insert(*e.replay_id);
    };
    h.on_gap = [this](const sfstream::change_event& e) {
      std::lock_guard lock{mutex};
      if (e.replay_id) replay_ids.insert(*e.replay_id);
      for (const auto& id : e.header.record_ids)
        note(id, "gap #" + std::to_string(e.replay_id.value_or(0)));
    };
    return h;
  }

  std::string history_of(const std::string& id) const {
    std::lock_guard lock{mutex};
    std::string out;
    if (auto it = history.find(id); it != history.end())
      for (const auto& line : it->second) out += "\n  " + line;
    return out;
  }

  std::size_t size() const {
    std::lock_guard lock{mutex};
    return records.size();
  }

  /// Checks the mirror against the true records field by field; returns the mismatches.
  std::vector<std::string> differences(
      const std::map<std::string, sfstream::field_list>& truth) const {
    std::lock_guard lock{mutex};
    std::vector<std::string> out;
    for (const auto& [id, fields] : truth) {
      auto it = records.find(id);
      if (it == records.end()) {
        out.push_back(id + " missing");
        continue;
      }
      for (const auto& f : account_fields) {
        const auto want = value_in(fields, f);
        const auto have = value_in(it->second, f);
        if (!(want == have))
          out.push_back(id + "." + f + ": " + have.to_json() + " != " + want.to_json());
      }
    }
    for (const auto& [id, fields] : records)
      if (!truth.count(id)) out.push_back(id + " should not exist");
    return out;
  }
};

}  // namespace

TEST_CASE(
    "each change type reaches its callback with typed fields, nulled fields and changed field "
    "names") {
  emulator_fixture org{org_options()};
  cdc_log seen;
  cdc_setup s{org};  // after everything its handlers use: it stops first
  s.start("/data/AccountChangeEvent", sfstream::cdc_callbacks(seen.handler(), s.options()));
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  const auto id = create(
      org, "Account", R"({"Name":"Acme","Phone":"555","Industry":"Tech","NumberOfEmployees":12})");
  update(org, id, R"({"Phone":null,"Industry":"Retail"})");
  remove(org, id);
  undelete(org, id);
  REQUIRE(wait_until([&] { return seen.event_count() == 4; }));
  std::lock_guard lock{seen.mutex};
  CHECK(seen.steps == std::vector<std::string>{"create", "update", "delete", "undelete"});
  const auto& c = seen.events[0];
  CHECK(c.header.type == sfstream::change_type::create);
  CHECK(c.header.entity_name == "Account");
  CHECK(c.header.record_ids == std::vector<std::string>{id});
  CHECK_FALSE(c.header.transaction_key.empty());
  CHECK(c.header.sequence_number == 1);
  CHECK(c.header.commit_timestamp > 0);
  CHECK_FALSE(c.header.commit_user.empty());
  CHECK(c.replay_id.has_value());
  CHECK(c.field("Name")->as_string() == "Acme");
  CHECK(c.field("NumberOfEmployees")->as_int() == 12);
  const auto& u = seen.events[1];
  CHECK(u.header.type == sfstream::change_type::update);
  CHECK(std::find(u.header.changed_fields.begin(), u.header.changed_fields.end(), "Phone") !=
        u.header.changed_fields.end());
  CHECK(std::find(u.header.changed_fields.begin(), u.header.changed_fields.end(), "Industry") !=
        u.header.changed_fields.end());
  REQUIRE(u.field("Phone"));
  CHECK(u.field("Phone")->is_null());
  CHECK(u.field("Industry")->as_string() == "Retail");
  CHECK(u.field("Name") == nullptr);
  CHECK(seen.events[2].header.type == sfstream::change_type::remove);
  CHECK(seen.events[2].fields.empty());
  CHECK(seen.events[3].header.type == sfstream::change_type::undelete);
  CHECK(seen.events[3].field("Industry")->as_string() == "Retail");
  CHECK(seen.invalid.empty());
}

TEST_CASE("a merged UPDATE event carries every record id of the merged changes") {
  emulator_fixture org{org_options()};
  cdc_log seen;
  cdc_setup s{org};  // after everything its handlers use: it stops first
  s.start("/data/AccountChangeEvent", sfstream::cdc_callbacks(seen.handler(), s.options()));
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.insert(create(org, "Account", "{\"Name\":\"M" + std::to_string(i) + "\"}"));
  REQUIRE(wait_until([&] { return seen.event_count() == 3; }));
  auto r = org.call([](org_emulator& o) { return o.rest().bulk_change("Account", 3); });
  REQUIRE(static_cast<bool>(r));
  REQUIRE(wait_until([&] { return seen.event_count() == 4; }));
  std::lock_guard lock{seen.mutex};
  const auto& merged = seen.events.back();
  CHECK(merged.header.type == sfstream::change_type::update);
  CHECK(std::set<std::string>(merged.header.record_ids.begin(), merged.header.record_ids.end()) ==
        ids);
  CHECK(std::find(merged.header.changed_fields.begin(), merged.header.changed_fields.end(),
                  "Type") != merged.header.changed_fields.end());
}

TEST_CASE(
    "gap events for created, updated and deleted records are reconciled to the records' true "
    "state") {
  emulator_fixture org{org_options()};
  cdc_log seen;
  cdc_setup s{org};  // after everything its handlers use: it stops first
  s.start("/data/AccountChangeEvent", sfstream::cdc_callbacks(seen.handler(), s.options()));
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  const auto a = create(org, "Account", R"({"Name":"Gap A","Industry":"Energy"})");
  const auto b = create(org, "Account", R"({"Name":"Gap B","Phone":"1"})");
  const auto c = create(org, "Account", R"({"Name":"Gap C"})");
  update(org, b, R"({"Phone":null,"Description":"changed","AnnualRevenue":2500000})");
  remove(org, c);
  REQUIRE(wait_until([&] { return seen.event_count() == 5; }));
  gap(org, {a}, gap_type::gap_create);
  gap(org, {b}, gap_type::gap_update);
  gap(org, {c}, gap_type::gap_delete);
  gap(org, {a, b, c}, gap_type::gap_update);
  REQUIRE(wait_until([&] { return seen.reconciled_count() == 6; }));
  const auto truth = live_accounts(s.rest);
  std::lock_guard lock{seen.mutex};
  CHECK(seen.invalid.empty());
  std::vector<std::string> order;
  for (const auto& [action, record, from_gap] : seen.reconciled) {
    CAPTURE(record.id);
    CHECK(from_gap);
    CHECK(record.type == "Account");
    order.push_back(record.id);
    if (record.id == c) {
      CHECK(action == sfstream::reconcile_action::remove);
      continue;
    }
    REQUIRE(action == sfstream::reconcile_action::upsert);
    REQUIRE(truth.count(record.id));
    for (const auto& f : account_fields) {
      CAPTURE(f);
      CHECK(value_in(record.fields, f) == value_in(truth.at(record.id), f));
    }
  }
  CHECK(order == std::vector<std::string>{a, b, c, a, b, c});
  CHECK(value_in(truth.at(b), "Phone").is_null());
  CHECK(value_in(truth.at(b), "AnnualRevenue").as_double() == 2500000);
}

TEST_CASE(
    "an overflow on an entity with 2,600 records is resynced exactly through paged queryAll") {
  emulator_fixture org{org_options()};
  cdc_log seen;
  mirror copy;
  auto log_handler = seen.handler();
  auto mirror_handler = copy.handler();
  sfstream::cdc_handler both = mirror_handler;
  both.on_overflow = log_handler.on_overflow;
  both.on_resync_begin = [&](const std::string& e) {
    log_handler.on_resync_begin(e);
    mirror_handler.on_resync_begin(e);
  };
  both.on_resync_record = [&](const std::string& e, const sfstream::sobject_record& r) {
    log_handler.on_resync_record(e, r);
    mirror_handler.on_resync_record(e, r);
  };
  both.on_resync_end = [&](const std::string& e) {
    log_handler.on_resync_end(e);
    mirror_handler.on_resync_end(e);
  };
  both.on_subscribed = log_handler.on_subscribed;
  cdc_setup s{org};  // after everything its handlers use: it stops first
  s.start("/data/AccountChangeEvent", sfstream::cdc_callbacks(both, s.options()));
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  for (int i = 0; i < 5; ++i)
    create(org, "Account", "{\"Name\":\"Before " + std::to_string(i) + "\"}");
  const auto gone = create(org, "Account", R"({"Name":"Binned"})");
  remove(org, gone);
  REQUIRE(wait_until([&] { return copy.size() == 5; }));
  auto r = org.call([](org_emulator& o) {
    o.rest().set_overflow_threshold(100);
    return o.rest().bulk_change("Account", 2600);
  });
  REQUIRE(static_cast<bool>(r));
  REQUIRE(wait_until([&] { return seen.has_step("resync-end Account"); }, 60s));
  CHECK(seen.has_step("overflow"));
  CHECK(seen.has_step("resync-begin Account"));
  {
    std::lock_guard lock{seen.mutex};
    CHECK(seen.resync_records == 2600);
  }
  const auto truth = live_accounts(s.rest);
  CHECK(truth.size() == 2600);
  CHECK(copy.resyncs == 1);
  const auto diff = copy.differences(truth);
  CHECK(diff.empty());
  if (!diff.empty()) MESSAGE(diff.front());
}

TEST_CASE(
    "a mirror built only from CDC callbacks equals the org after 1,000 random changes with gaps "
    "and an overflow") {
  emulator_fixture org{org_options()};
  mirror copy;
  std::atomic<bool> subscribed{false};
  auto h = copy.handler();
  h.on_subscribed = [&](std::int64_t) { subscribed = true; };
  cdc_setup s{org};  // after everything its handlers use: it stops first
  s.start("/data/AccountChangeEvent", sfstream::cdc_callbacks(h, s.options()));
  REQUIRE(wait_until([&] { return subscribed.load(); }));

  std::mt19937_64 rng{20260611};
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
  };
  auto random_fields = [&](bool with_name, int serial) {
    static const char* const industries[] = {"Energy", "Retail", "Banking", "Media"};
    std::string json = "{";
    auto add = [&](const std::string& k, const std::string& v) {
      json += (json.size() > 1 ? "," : "") + ("\"" + k + "\":" + v);
    };
    if (with_name || chance(0.2)) add("Name", "\"Account " + std::to_string(serial) + "\"");
    if (chance(0.5))
      add("Industry", chance(0.3) ? "null" : std::string("\"") + industries[rng() % 4] + "\"");
    if (chance(0.4))
      add("Phone", chance(0.3) ? "null" : "\"+1 555 " + std::to_string(rng() % 10000) + "\"");
    if (chance(0.3))
      add("AnnualRevenue",
          chance(0.2) ? "null" : (chance(0.5) ? std::to_string(rng() % 100000) : "1234.5"));
    if (chance(0.3)) add("NumberOfEmployees", chance(0.2) ? "null" : std::to_string(rng() % 5000));
    if (chance(0.2))
      add("Description",
          chance(0.3) ? "null" : "\"text " + std::to_string(rng() % 1000) + " \\\"quoted\\\"\"");
    if (json.size() == 1) add("Type", "\"Customer\"");
    return json + "}";
  };
  auto mark_lost_id = [&](const std::string& id) {
    std::lock_guard lock{copy.mutex};
    copy.drop_ids.insert(id);
  };
  std::vector<std::string> live, binned;
  std::size_t gaps = 0;
  std::map<std::string, std::vector<std::string>>
      ops;  // per id: what the test did, for failure messages
  for (int op = 0; op < 1000; ++op) {
    const bool lose = chance(0.05);
    if (op == 500) {
      // An overflow: 30 more changes than there are records, only the first 20 as events.
      auto r = org.call([&](org_emulator& o) {
        o.rest().set_overflow_threshold(20);
        auto result = o.rest().bulk_change("Account", live.size() + 30);
        o.rest().set_overflow_threshold(100000);
        return result;
      });
      REQUIRE(static_cast<bool>(r));
      live.clear();
      for (const auto& [id, fields] : live_accounts(s.rest)) live.push_back(id);
      continue;
    }
    const double roll = std::uniform_real_distribution<double>(0, 1)(rng);
    if (live.size() < 5 || roll < 0.3) {
      const std::string name = "Account " + std::to_string(op);
      if (lose) {
        std::lock_guard lock{copy.mutex};
        copy.drop_names.insert(name);
      }
      auto fields = sfstream::parse_field_list(random_fields(false, op));
      REQUIRE(fields);
      sfstream::field_list body{{"Name", sfstream::field_value::make_string(name)}};
      for (auto& [k, v] : *fields)
        if (k != "Name") body.emplace_back(k, v);
      const auto id = create(org, "Account", sfstream::to_json(body));
      live.push_back(id);
      if (lose) {
        gap(org, {id}, gap_type::gap_create);
        ++gaps;
      }
    } else if (roll < 0.65) {
      const auto id = pick(live);
      if (lose) mark_lost_id(id);
      const auto json = random_fields(false, op);
      ops[id].push_back("op " + std::to_string(op) + " update " + json + (lose ? " lost" : ""));
      update(org, id, json);
      if (lose) {
        gap(org, {id}, gap_type::gap_update);
        ++gaps;
      }
    } else if (roll < 0.8) {
      const auto id = pick(live);
      if (lose) mark_lost_id(id);
      ops[id].push_back("op " + std::to_string(op) + " delete" + (lose ? " lost" : ""));
      remove(org, id);
      live.erase(std::find(live.begin(), live.end(), id));
      binned.push_back(id);
      if (lose) {
        gap(org, {id}, gap_type::gap_delete);
        ++gaps;
      }
    } else if (roll < 0.9 && !binned.empty()) {
      const auto id = pick(binned);
      if (lose) mark_lost_id(id);
      ops[id].push_back("op " + std::to_string(op) + " undelete" + (lose ? " lost" : ""));
      undelete(org, id);
      binned.erase(std::find(binned.begin(), binned.end(), id));
      live.push_back(id);
      if (lose) {
        gap(org, {id}, gap_type::gap_undelete);
        ++gaps;
      }
    } else {
      // A gap naming records whose events were not lost: reconciliation must agree.
      std::vector<std::string> ids{pick(live)};
      if (!binned.empty() && chance(0.5)) ids.push_back(pick(binned));
      gap(org, ids, chance(0.5) ? gap_type::gap_update : gap_type::gap_delete);
      ++gaps;
    }
  }
  create(org, "Account", R"({"Name":"END"})");
  // Wait for END's own CREATE event: a resync that runs late may show END before the events
  // ahead of it in the stream have been handled.
  REQUIRE(wait_until(
      [&] {
        std::lock_guard lock{copy.mutex};
        return copy.end_replay_id != 0;
      },
      90s));
  const auto truth = live_accounts(s.rest);
  const auto diff = copy.differences(truth);
  CHECK(diff.empty());
  for (std::size_t i = 0; i < diff.size() && i < 5; ++i) {
    std::string done_ops;
    for (const auto& line : ops[diff[i].substr(0, 18)]) done_ops += "\n  " + line;
    MESSAGE(diff[i] << copy.history_of(diff[i].substr(0, 18)) << "\n test ops:" << done_ops);
  }
  if (!diff.empty()) {
    const auto holes = copy.replay_holes();
    std::lock_guard lock{copy.mutex};
    MESSAGE("replay ids never delivered: "
            << holes << "; seen " << copy.replay_ids.size() << " from " << *copy.replay_ids.begin()
            << " to " << *copy.replay_ids.rbegin() << "; live events " << copy.live_events
            << ", END at " << copy.end_replay_id);
  }
  std::lock_guard lock{copy.mutex};
  CHECK(copy.invalid.empty());
  CHECK(copy.resyncs == 1);
  CHECK(copy.dropped > 0);
  CHECK(copy.reconciled >= gaps);
  CHECK(truth.size() > 100);
  MESSAGE("records " << truth.size() << ", gaps " << gaps << ", lost events " << copy.dropped
                     << ", reconciled " << copy.reconciled);
}

TEST_CASE(
    "transaction grouping delivers the events of one transaction together in sequence order") {
  emulator_fixture org{org_options()};
  std::mutex mutex;
  std::vector<std::string> calls;
  std::atomic<bool> subscribed{false};
  sfstream::cdc_handler h;
  h.on_transaction_begin = [&](const std::string& key, std::size_t n) {
    std::lock_guard lock{mutex};
    calls.push_back("begin " + std::to_string(n) + (key.empty() ? " no key" : ""));
  };
  h.on_transaction_end = [&](const std::string&) {
    std::lock_guard lock{mutex};
    calls.push_back("end");
  };
  h.on_create = [&](const sfstream::change_event& e) {
    std::lock_guard lock{mutex};
    calls.push_back("create " + std::to_string(e.header.sequence_number));
  };
  h.on_subscribed = [&](std::int64_t) { subscribed = true; };
  cdc_setup s{org};  // after everything its handlers use: it stops first
  auto o = s.options();
  o.group_transactions = true;
  o.group_executor = s.handlers.executor();
  o.group_idle = 150ms;
  s.start("/data/AccountChangeEvent", sfstream::cdc_callbacks(h, o));
  REQUIRE(wait_until([&] { return subscribed.load(); }));
  auto r = org.call([](org_emulator& x) { return x.rest().bulk_change("Account", 4); });
  REQUIRE(static_cast<bool>(r));
  create(org, "Account", R"({"Name":"Alone"})");
  auto count = [&] {
    std::lock_guard lock{mutex};
    return calls.size();
  };
  REQUIRE(wait_until([&] { return count() == 9; }));
  std::lock_guard lock{mutex};
  CHECK(calls == std::vector<std::string>{"begin 4", "create 1", "create 2", "create 3", "create 4",
                                          "end", "begin 1", "create 1", "end"});
}

TEST_CASE(
    "the REST client pages through queryAll, creates and reads records, and maps Salesforce "
    "errors") {
  emulator_fixture org{org_options()};
  io_thread io;
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::rest_options options;
  options.network.ca_file = org.org().ca_file();
  options.credentials = sfstream::make_soap_login_provider(io.executor(), login, options.network);
  options.batch_size = 200;
  auto r = org.call([](org_emulator& o) { return o.rest().bulk_change("Account", 450); });
  REQUIRE(static_cast<bool>(r));
  sfstream::sync_rest_client rest{options};
  sfstream::error_info error;
  auto first = rest.query("SELECT Id, Name FROM Account", true, error);
  REQUIRE_FALSE(error);
  CHECK(first.total_size == 450);
  CHECK(first.records.size() == 200);
  CHECK_FALSE(first.done);
  std::set<std::string> ids;
  REQUIRE_FALSE(rest.for_each_record("SELECT Id FROM Account", true,
                                     [&](const sfstream::sobject_record& x) { ids.insert(x.id); }));
  CHECK(ids.size() == 450);

  const auto id = rest.create("Account", R"({"Name":"Via REST","NumberOfEmployees":7})", error);
  REQUIRE_FALSE(error);
  auto got = rest.get("Account", id, {"Name", "NumberOfEmployees"}, error);
  REQUIRE_FALSE(error);
  CHECK(got.id == id);
  CHECK(got.type == "Account");
  CHECK(got.field("Name")->as_string() == "Via REST");
  CHECK(got.field("NumberOfEmployees")->as_int() == 7);

  rest.query("SELECT Id, NoSuchField FROM Account", true, error);
  CHECK(error.code == sfstream::errc::http_status);
  CHECK(error.diag.server_code == "INVALID_FIELD");
  CHECK_FALSE(error.diag.server_text.empty());

  // An expired session: the 401 makes the client refresh the token once and retry.
  org.call([](org_emulator& o) {
    o.expire_all_sessions();
    return 0;
  });
  auto again = rest.query("SELECT Id FROM Account WHERE Name = 'Via REST'", false, error);
  REQUIRE_FALSE(error);
  CHECK(again.records.size() == 1);
}

TEST_CASE(
    "a gap naming a wildcard id resyncs the entity and a failing reconciliation reaches "
    "on_invalid") {
  emulator_fixture org{org_options()};
  io_thread io;
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::cdc_options o;
  o.rest.network.ca_file = org.org().ca_file();
  o.rest.credentials = sfstream::make_soap_login_provider(io.executor(), login, o.rest.network);
  for (int i = 0; i < 3; ++i) create(org, "Account", "{\"Name\":\"W" + std::to_string(i) + "\"}");
  const std::string gap_json =
      R"({"channel":"/data/AccountChangeEvent","data":{"schema":"s","payload":{"ChangeEventHeader":{"commitNumber":1,"commitUser":"0055f000000EmUlAAK","sequenceNumber":1,"entityName":"Account","changeType":"GAP_UPDATE","changedFields":[],"changeOrigin":"","transactionKey":"t","commitTimestamp":1,"recordIds":["001*"]}},"event":{"replayId":5}}})";
  const sfstream::event gap_event{"/data/AccountChangeEvent", 5, gap_json};

  // Handlers called directly on this thread: the provider runs on `io`, so REST may block here.
  cdc_log seen;
  auto callbacks = sfstream::cdc_callbacks(seen.handler(), o);
  callbacks.on_event(gap_event);
  CHECK(seen.has_step("gap"));
  CHECK(seen.has_step("resync-begin Account"));
  CHECK(seen.has_step("resync-end Account"));
  {
    std::lock_guard lock{seen.mutex};
    CHECK(seen.resync_records == 3);
    CHECK(seen.invalid.empty());
  }

  cdc_log failing;
  o.fields["Account"] = {"Name", "NoSuchField__c"};
  o.max_attempts = 2;
  auto bad = sfstream::cdc_callbacks(failing.handler(), o);
  bad.on_event(gap_event);
  CHECK_FALSE(failing.has_step("resync-begin Account"));
  std::lock_guard lock{failing.mutex};
  REQUIRE(failing.invalid.size() == 1);
  CHECK(failing.invalid.front().find("INVALID_FIELD") != std::string::npos);
}

TEST_CASE("the connector accepts CDC callbacks and reconciles a gap from its worker thread") {
  emulator_fixture org{org_options()};
  cdc_log seen;
  io_thread login_io;
  const auto& user = org.org().options().users.front();
  sfstream::soap_login_options login;
  login.login_url = org.org().login_url();
  login.username = user.username;
  login.password = user.password;
  login.security_token = user.security_token;
  sfstream::client_config config;
  config.network.ca_file = org.org().ca_file();
  config.credentials = sfstream::make_soap_login_provider(login_io.executor(), login, config.network);
  sfstream::cdc_options o;
  o.rest.credentials = config.credentials;
  o.rest.network = config.network;
  o.fields["Account"] = account_fields;
  sfstream::connector conn{config};
  REQUIRE_FALSE(conn.subscribe("/data/AccountChangeEvent", sfstream::replay_new,
                               sfstream::cdc_callbacks(seen.handler(), o)));
  conn.start();
  REQUIRE(wait_until([&] { return seen.subscribed.load(); }));
  const auto id = create(org, "Account", R"({"Name":"Via connector","Industry":"Media"})");
  gap(org, {id}, gap_type::gap_create);
  REQUIRE(wait_until([&] { return seen.reconciled_count() == 1; }));
  CHECK_FALSE(conn.stop());
  std::lock_guard lock{seen.mutex};
  CHECK(seen.steps == std::vector<std::string>{"create", "gap", "reconciled"});
  const auto& [action, record, from_gap] = seen.reconciled.front();
  CHECK(action == sfstream::reconcile_action::upsert);
  CHECK(from_gap);
  CHECK(record.id == id);
  CHECK(record.field("Industry")->as_string() == "Media");
}

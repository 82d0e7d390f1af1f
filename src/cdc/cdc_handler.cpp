// The CDC subscription adapter: typed dispatch, transaction grouping, gap reconciliation and
// overflow resync (see include/sfstream/cdc.hpp for the rules).
#include "sfstream/cdc.hpp"

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <boost/asio/steady_timer.hpp>

namespace asio = boost::asio;

namespace sfstream {

namespace {

bool valid_id(std::string_view id) {
  if (id.size() != 15 && id.size() != 18) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  });
}

/// Entity names go into SOQL unquoted: letters, digits and underscores only.
bool valid_entity(std::string_view name) {
  return !name.empty() && name.size() <= 80 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  });
}

error_info invalid_input(std::string text) {
  error_info e;
  e.code = make_error_code(errc::protocol_error);
  e.diag.server_text = std::move(text);
  e.diag.context = "reconciling a Change Data Capture event";
  return e;
}

/// Ids compare on their case-sensitive 15-character form (18-character ids add a checksum).
std::string_view id15(std::string_view id) {
  return id.substr(0, 15);
}

class cdc_adapter : public std::enable_shared_from_this<cdc_adapter> {
 public:
  cdc_adapter(cdc_handler handler, cdc_options options)
      : h_(std::move(handler)), o_(std::move(options)) {
    if (o_.group_transactions) timer_ = std::make_unique<asio::steady_timer>(o_.group_executor);
    if (o_.ids_per_query == 0) o_.ids_per_query = 1;
    if (o_.max_attempts < 1) o_.max_attempts = 1;
  }

  /// Handles one event; returns the failure of a reconciliation it ran (after on_invalid was
  /// told), empty otherwise. An event that is not a valid CDC event goes to on_invalid and is
  /// not a failure: there is nothing to retry.
  error_info on_event(const event& e) {
    std::lock_guard lock{mutex_};
    error_info why;
    auto change = parse_change_event(e, &why);
    if (!change) {
      auto failed = flush_group();
      invalid(e, why);
      return failed;
    }
    if (!o_.group_transactions) return dispatch(e, *change);
    error_info failed;
    if (!group_.empty() && change->header.transaction_key != group_key_) failed = flush_group();
    group_key_ = change->header.transaction_key;
    group_.push_back(held{e, std::move(*change)});
    arm_timer();
    return failed;
  }

  void on_replay_gap(const gap_record& g) {
    std::lock_guard lock{mutex_};
    flush_group();
    if (h_.on_replay_gap) h_.on_replay_gap(g);
  }

  void on_rejected(const error_info& e) {
    std::lock_guard lock{mutex_};
    flush_group();
    if (h_.on_rejected) h_.on_rejected(e);
  }

  void on_subscribed(std::int64_t from) {
    std::lock_guard lock{mutex_};
    if (h_.on_subscribed) h_.on_subscribed(from);
  }

 private:
  struct held {
    event raw;
    change_event change;
  };

  // --- grouping --------------------------------------------------------------------------

  void arm_timer() {
    const std::uint64_t generation = ++generation_;
    timer_->expires_after(o_.group_idle);
    timer_->async_wait(
        [self = shared_from_this(), generation](const boost::system::error_code& ec) {
          if (ec) return;
          std::lock_guard lock{self->mutex_};
          if (generation != self->generation_) return;
          // No event is being handled here: a failed reconciliation reached on_invalid and
          // the log, and its event's id is committed already (see cdc_options).
          if (auto failed = self->flush_group()) {
            self->o_.log.log(log_level::error,
                             "a held transaction's reconciliation failed: " + failed.to_string());
          }
        });
  }

  /// Delivers the held transaction in sequenceNumber order. A throwing callback is logged and
  /// the rest of the group still delivered: the group's replay ids are committed already.
  /// Returns the first failed reconciliation of the group.
  error_info flush_group() {
    if (group_.empty()) return {};
    auto group = std::move(group_);
    group_.clear();
    ++generation_;
    std::stable_sort(group.begin(), group.end(), [](const held& a, const held& b) {
      return a.change.header.sequence_number < b.change.header.sequence_number;
    });
    const std::string key = group_key_;
    guarded([&] {
      if (h_.on_transaction_begin) h_.on_transaction_begin(key, group.size());
    });
    error_info failed;
    for (const auto& item : group) {
      guarded([&] {
        auto e = dispatch(item.raw, item.change);
        if (e && !failed) failed = std::move(e);
      });
    }
    guarded([&] {
      if (h_.on_transaction_end) h_.on_transaction_end(key);
    });
    return failed;
  }

  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& ex) {
      o_.log.log(log_level::error, std::string("CDC handler threw: ") + ex.what());
    } catch (...) {
      o_.log.log(log_level::error, "CDC handler threw");
    }
  }

  // --- dispatch --------------------------------------------------------------------------

  /// Calls the event's callbacks and runs its reconciliation; returns the reconciliation's
  /// failure.
  error_info dispatch(const event& raw, const change_event& c) {
    switch (c.header.type) {
      case change_type::create:
        note_fields(c);
        if (h_.on_create) h_.on_create(c);
        break;
      case change_type::update:
        note_fields(c);
        if (h_.on_update) h_.on_update(c);
        break;
      case change_type::remove:
        if (h_.on_delete) h_.on_delete(c);
        break;
      case change_type::undelete:
        note_fields(c);
        if (h_.on_undelete) h_.on_undelete(c);
        break;
      case change_type::gap_create:
      case change_type::gap_update:
      case change_type::gap_remove:
      case change_type::gap_undelete:
        if (h_.on_gap) h_.on_gap(c);
        if (reconciling()) {
          return c.has_wildcard_ids() ? resync(raw, c.header.entity_name) : reconcile(raw, c);
        }
        break;
      case change_type::gap_overflow:
        if (h_.on_overflow) h_.on_overflow(c);
        if (reconciling()) return resync(raw, c.header.entity_name);
        break;
    }
    return {};
  }

  /// Tells on_invalid; returns `why` for a caller that fails the event with it.
  error_info invalid(const event& e, const error_info& why) {
    o_.log.log(log_level::error, "invalid CDC event on " + e.channel() + ": " + why.to_string());
    if (h_.on_invalid) h_.on_invalid(e, why);
    return why;
  }

  bool reconciling() const { return static_cast<bool>(o_.rest.credentials); }

  /// Remembers the fields an entity's events carry, for the default reconciliation fields.
  void note_fields(const change_event& c) {
    auto& seen = seen_[c.header.entity_name];
    auto add = [&](std::string name) {
      if (valid_entity(name) && seen.names.insert(name).second)
        seen.order.push_back(std::move(name));
    };
    for (const auto& [name, value] : c.fields) {
      if (value.is_object()) {
        if (value.is_diff()) {
          add(name);
        } else if (name == "Name") {
          for (const auto& k : value.keys()) add(k);
        } else if (name.size() > 7 && name.compare(name.size() - 7, 7, "Address") == 0) {
          const std::string prefix = name.substr(0, name.size() - 7);
          for (const auto& k : value.keys()) add(prefix + k);
        }
        continue;
      }
      add(name);
    }
  }

  std::vector<std::string> fields_for(const std::string& entity) const {
    std::vector<std::string> out{"Id", "IsDeleted", "LastModifiedDate"};
    auto add = [&](const std::string& f) {
      if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    };
    if (auto it = o_.fields.find(entity); it != o_.fields.end()) {
      for (const auto& f : it->second) add(f);
    } else if (auto s = seen_.find(entity); s != seen_.end()) {
      for (const auto& f : s->second.order) add(f);
    }
    return out;
  }

  std::string select_from(const std::string& entity) const {
    std::string soql = "SELECT ";
    const auto fields = fields_for(entity);
    for (std::size_t i = 0; i < fields.size(); ++i) soql += (i ? ", " : "") + fields[i];
    return soql + " FROM " + entity;
  }

  sync_rest_client& rest() {
    if (!rest_) rest_ = std::make_unique<sync_rest_client>(o_.rest);
    return *rest_;
  }

  /// Runs one query to the end with retries; records are collected before any is delivered
  /// so that a retry never delivers twice.
  error_info fetch_all(const std::string& soql, std::vector<sobject_record>& out) {
    error_info error;
    for (int attempt = 0; attempt < o_.max_attempts; ++attempt) {
      if (attempt > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(200) *
                                    (1 << std::min(attempt - 1, 5)));
      out.clear();
      error =
          rest().for_each_record(soql, true, [&](const sobject_record& r) { out.push_back(r); });
      if (!error || !is_retryable(error)) break;
      o_.log.log(log_level::warning,
                 "CDC reconciliation query failed, retrying: " + error.to_string());
    }
    return error;
  }

  error_info reconcile(const event& raw, const change_event& c) {
    const std::string& entity = c.header.entity_name;
    if (!valid_entity(entity))
      return invalid(
          raw, invalid_input("entity name \"" + entity.substr(0, 80) + "\" cannot be queried"));
    std::vector<std::string> ids;
    std::set<std::string_view> unique;
    for (const auto& id : c.header.record_ids) {
      if (!valid_id(id))
        return invalid(
            raw, invalid_input("record id \"" + id.substr(0, 40) + "\" is not a Salesforce id"));
      if (unique.insert(id15(id)).second) ids.push_back(id);
    }
    o_.log.log(log_level::info, "reconciling " + std::to_string(ids.size()) + " " + entity +
                                    " record(s) after " + std::string(to_string(c.header.type)));
    const std::string select = select_from(entity);
    for (std::size_t from = 0; from < ids.size(); from += o_.ids_per_query) {
      const std::size_t to = std::min(ids.size(), from + o_.ids_per_query);
      std::string soql = select + " WHERE Id IN (";
      for (std::size_t i = from; i < to; ++i) soql += (i > from ? ",'" : "'") + ids[i] + "'";
      soql += ")";
      std::vector<sobject_record> found;
      if (auto error = fetch_all(soql, found)) return invalid(raw, error);
      for (std::size_t i = from; i < to; ++i) {
        auto it = std::find_if(found.begin(), found.end(),
                               [&](const sobject_record& r) { return id15(r.id) == id15(ids[i]); });
        if (it == found.end()) {
          sobject_record gone;
          gone.type = entity;
          gone.id = ids[i];
          gone.fields.emplace_back("Id", field_value::make_string(ids[i]));
          if (h_.on_reconciled) h_.on_reconciled(reconcile_action::remove, gone, true);
          continue;
        }
        if (it->type.empty()) it->type = entity;
        const field_value* deleted = it->field("IsDeleted");
        const bool removed = deleted && deleted->as_bool();
        if (h_.on_reconciled)
          h_.on_reconciled(removed ? reconcile_action::remove : reconcile_action::upsert, *it,
                           true);
      }
    }
    return {};
  }

  error_info resync(const event& raw, const std::string& entity) {
    if (!valid_entity(entity))
      return invalid(
          raw, invalid_input("entity name \"" + entity.substr(0, 80) + "\" cannot be queried"));
    o_.log.log(log_level::warning, "resyncing " + entity + " through queryAll after an overflow");
    std::vector<sobject_record> all;
    if (auto error = fetch_all(select_from(entity), all)) return invalid(raw, error);
    if (h_.on_resync_begin) h_.on_resync_begin(entity);
    std::size_t live = 0;
    for (auto& r : all) {
      if (r.type.empty()) r.type = entity;
      const field_value* deleted = r.field("IsDeleted");
      if (deleted && deleted->as_bool()) {
        if (h_.on_reconciled) h_.on_reconciled(reconcile_action::remove, r, false);
      } else {
        ++live;
        if (h_.on_resync_record) h_.on_resync_record(entity, r);
      }
    }
    if (h_.on_resync_end) h_.on_resync_end(entity);
    o_.log.log(log_level::info,
               "resync of " + entity + " done: " + std::to_string(live) + " live record(s)");
    return {};
  }

  struct seen_fields {
    std::set<std::string> names;
    std::vector<std::string> order;
  };

  cdc_handler h_;
  cdc_options o_;
  std::mutex mutex_;
  std::map<std::string, seen_fields> seen_;
  std::unique_ptr<sync_rest_client> rest_;
  std::vector<held> group_;
  std::string group_key_;
  std::uint64_t generation_ = 0;
  std::unique_ptr<asio::steady_timer> timer_;
};

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(json_writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_record(json_writer& w, const sobject_record& r) {
  const std::string json = r.to_json();
  w.Key("record");
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

}  // namespace

std::string_view to_string(reconcile_action action) noexcept {
  return action == reconcile_action::upsert ? "upsert" : "delete";
}

subscription_callbacks cdc_callbacks(cdc_handler handler, cdc_options options) {
  if (options.group_transactions && !options.group_executor) {
    error_info e;
    e.code = make_error_code(errc::invalid_config);
    e.diag.context = "cdc_options: group_transactions needs a group_executor for the idle flush";
    throw error(std::move(e));
  }
  auto adapter = std::make_shared<cdc_adapter>(std::move(handler), std::move(options));
  subscription_callbacks c;
  c.on_event = [adapter](const event& e) { adapter->on_event(e); };
  c.on_event_status = [adapter](const event& e) { return adapter->on_event(e); };
  c.on_gap = [adapter](const gap_record& g) { adapter->on_replay_gap(g); };
  c.on_rejected = [adapter](const error_info& e) { adapter->on_rejected(e); };
  c.on_subscribed = [adapter](std::int64_t from) { adapter->on_subscribed(from); };
  return c;
}

std::string render_reconciled_json(std::string_view channel, reconcile_action action,
                                   const sobject_record& record, bool from_gap) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("channel");
  write_string(w, channel);
  w.Key("reconciled");
  write_string(w, to_string(action));
  w.Key("fromGap");
  w.Bool(from_gap);
  w.Key("entity");
  write_string(w, record.type);
  w.Key("id");
  write_string(w, record.id);
  write_record(w, record);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string render_resync_json(std::string_view channel, resync_phase phase,
                               std::string_view entity, const sobject_record* record) {
  static constexpr std::string_view names[] = {"begin", "record", "end"};
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartObject();
  w.Key("channel");
  write_string(w, channel);
  w.Key("resync");
  write_string(w, names[static_cast<std::size_t>(phase)]);
  w.Key("entity");
  write_string(w, entity);
  if (phase == resync_phase::record && record) {
    w.Key("id");
    write_string(w, record->id);
    write_record(w, *record);
  }
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace sfstream

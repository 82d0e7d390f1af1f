// Writes stamped in the past: the control that commits a record "late", as a long transaction
// does on Salesforce (its records carry the time they were written, visible only at commit).
#include "emulator/data/rest_api_impl.hpp"

namespace sfstream::emulator::data {

op_result rest_api::commit_late(const std::string& object, const std::string& id, const std::string& fields_json,
                                std::chrono::system_clock::time_point stamp, const caller& who) {
  if (stamp > impl_->clock_.now())
    return {{}, api_error{"INVALID_ARGUMENT", "a late commit is stamped before the emulator clock", {}}};
  transaction txn = impl_->begin(who, impl_->direct_origin());
  txn.commit_timestamp = std::chrono::duration_cast<std::chrono::milliseconds>(stamp.time_since_epoch()).count();
  txn.stamp = format_datetime(std::chrono::system_clock::time_point(std::chrono::milliseconds(txn.commit_timestamp)));
  return id.empty() ? impl_->create(object, fields_json, who, txn, impl_->options_.max_api_version)
                    : impl_->update(object, id, fields_json, who, txn);
}

void rest_api::set_api_allocation(std::uint64_t max, std::uint64_t remaining) {
  impl_->api_requests_.reset(max, remaining, impl_->clock_.now());
}

std::uint64_t rest_api::api_requests_remaining() const { return impl_->api_requests_.remaining(impl_->clock_.now()); }

}  // namespace sfstream::emulator::data

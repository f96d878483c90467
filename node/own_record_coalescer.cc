#include "node/own_record_coalescer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace meshdeploy::node {
namespace {

std::string key_of(const records::payload& p) {
  return fmt::format("{}/{}", static_cast<int>(records::type_of(p)), records::expected_key(p));
}

}  // namespace

own_record_coalescer::own_record_coalescer(publish_fn publish, defer_fn defer,
                                           std::chrono::milliseconds delay)
    : publish_(std::move(publish)), defer_(std::move(defer)), delay_(delay) {}

result<bool> own_record_coalescer::publish(const records::payload& p, bool durable,
                                           std::uint64_t version) {
  if (delay_.count() <= 0) return publish_(p, durable, version);
  const std::string key = key_of(p);
  if (durable) {
    std::lock_guard publishing(publish_mu_);
    {
      std::lock_guard lock(mu_);
      if (held_.erase(key) != 0) ++coalesced_;
    }
    return publish_(p, true, version);
  }
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = held_.insert_or_assign(key, std::pair(p, version));
    if (!inserted) {
      ++coalesced_;
      return true;  // the flush already scheduled for this key publishes the newest one
    }
  }
  defer_(delay_, [this, key] { flush(key); });
  return true;
}

void own_record_coalescer::flush(const std::string& key) {
  std::lock_guard publishing(publish_mu_);
  records::payload p;
  std::uint64_t version = 0;
  {
    std::lock_guard lock(mu_);
    auto it = held_.find(key);
    if (it == held_.end()) return;  // superseded by a durable record
    p = std::move(it->second.first);
    version = it->second.second;
    held_.erase(it);
  }
  if (auto r = publish_(p, false, version); !r) {
    spdlog::error("cannot publish {}: {}", key, r.error().message);
  }
}

std::size_t own_record_coalescer::held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

std::uint64_t own_record_coalescer::coalesced() const {
  std::lock_guard lock(mu_);
  return coalesced_;
}

}  // namespace meshdeploy::node

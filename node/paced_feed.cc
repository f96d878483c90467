#include "node/paced_feed.h"

#include "node/records/payloads.h"

#include <algorithm>

namespace meshdeploy::node {

paced_feed::paced_feed(double share, clock::duration max_rest, clock::duration lazy_delay)
    : share_(std::clamp(share, 0.01, 1.0)),
      max_rest_(std::max(max_rest, clock::duration::zero())),
      lazy_delay_(std::max(lazy_delay, clock::duration::zero())) {}

paced_feed::action paced_feed::offer(records::record r, bool urgent, clock::time_point now) {
  action out;
  if (urgent && now >= rest_until_) {
    out.deliver = std::move(held_);
    held_.clear();
    out.deliver.push_back(std::move(r));
    out.cancel = due_.has_value();
    due_.reset();
    return out;
  }
  held_.push_back(std::move(r));
  const auto want = urgent ? rest_until_ : std::max(rest_until_, now + lazy_delay_);
  if (!due_ || want < *due_) {  // never postpone what is already due
    due_ = want;
    out.arm = want;
  }
  return out;
}

std::vector<records::record> paced_feed::take_due() {
  due_.reset();
  auto out = std::move(held_);
  held_.clear();
  return out;
}

void paced_feed::worked(clock::time_point start, clock::time_point end) {
  if (end < start) return;
  const auto took = end - start;
  const auto rest = std::min(
      max_rest_, std::chrono::duration_cast<clock::duration>(took * ((1.0 - share_) / share_)));
  // Rests never shorten: work done back to back adds up within max_rest of its end.
  rest_until_ = std::max(rest_until_, end + rest);
}

bool urgent_for_deployer(const records::record& r) {
  if (r.type != records::record_type::progress) return true;
  auto p = records::decode_payload(r.type, r.payload);
  if (!p || !std::holds_alternative<records::progress_payload>(p.value())) return true;
  return std::get<records::progress_payload>(p.value()).phase != "entered";
}

}  // namespace meshdeploy::node

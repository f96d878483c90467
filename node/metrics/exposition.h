// Prometheus text exposition format 0.0.4 (docs/operations.md "Metrics"): a writer that puts
// each family's HELP and TYPE lines once before its samples, escapes label values, and a
// fixed-bucket histogram that writes cumulative _bucket{le=...} lines ending in le="+Inf",
// then _sum and _count.
//
// Thread safety: plain values; a `histogram` shared between threads needs the owner's lock.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshdeploy::node::metrics {

// Label (name, value) pairs in the order they are written. Names must be valid Prometheus
// label names (the callers' literals); values are escaped when written.
using label_list = std::vector<std::pair<std::string, std::string>>;

// A label value as the format writes it between quotes: backslash, double quote and line feed
// become \\, \" and \n. Any byte string is safe to pass (hostile names included).
std::string escape_label_value(std::string_view v);

// Builds one exposition. REQUIRES: each family is begun once, before its samples (the unit and
// integration tests parse what the node writes and check it).
class exposition {
 public:
  // Starts family `name` of `type` ("counter", "gauge", "histogram") with its help text
  // (backslashes and line feeds in `help` are escaped).
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample line: `name{labels} value`. `name` is the family name, or for a histogram the
  // family name plus _bucket, _sum or _count.
  void sample(std::string_view name, const label_list& labels, double value);
  void sample(std::string_view name, const label_list& labels, std::uint64_t value);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Seconds-valued histogram with fixed upper bounds (strictly increasing, finite; +Inf is
// implicit).
class histogram {
 public:
  explicit histogram(std::span<const double> upper_bounds);

  void observe(double value);

  // Writes name_bucket{labels..., le="B"} (cumulative) for every bound and +Inf, then name_sum
  // and name_count. The caller has begun family `name` as a histogram.
  void write(exposition& out, std::string_view name, const label_list& labels) const;

  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last = above every bound
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Bounds for request latencies: 1 ms to 10 s.
std::span<const double> api_latency_buckets();
// Bounds for lifecycle hook durations: 100 ms to one hour (CodeDeploy's longest hook timeout).
std::span<const double> hook_duration_buckets();

}  // namespace meshdeploy::node::metrics

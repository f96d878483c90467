#include "node/metrics/exposition.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace meshdeploy::node::metrics {

namespace {

// Shortest text that reads back as the same double; integers without a fraction.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void write_labels(std::string& out, const label_list& labels) {
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  out += '}';
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  std::string h;
  for (char c : help) {
    if (c == '\\') {
      h += "\\\\";
    } else if (c == '\n') {
      h += "\\n";
    } else {
      h += c;
    }
  }
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, h, name, type);
}

void exposition::sample(std::string_view name, const label_list& labels, double value) {
  out_ += name;
  write_labels(out_, labels);
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

void exposition::sample(std::string_view name, const label_list& labels, std::uint64_t value) {
  out_ += name;
  write_labels(out_, labels);
  out_ += fmt::format(" {}\n", value);
}

histogram::histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()), counts_(bounds_.size() + 1, 0) {}

void histogram::observe(double value) {
  if (std::isnan(value)) return;
  // The first bucket whose bound is >= value ("le" is inclusive); past the end = +Inf only.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
  sum_ += value;
  ++count_;
}

void histogram::write(exposition& out, std::string_view name, const label_list& labels) const {
  const std::string bucket = fmt::format("{}_bucket", name);
  std::uint64_t cumulative = 0;
  label_list l = labels;
  l.emplace_back("le", "");
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    l.back().second = number(bounds_[i]);
    out.sample(bucket, l, cumulative);
  }
  cumulative += counts_.back();
  l.back().second = "+Inf";
  out.sample(bucket, l, cumulative);
  out.sample(fmt::format("{}_sum", name), labels, sum_);
  out.sample(fmt::format("{}_count", name), labels, count_);
}

std::span<const double> api_latency_buckets() {
  static constexpr std::array<double, 12> b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,   0.5,   1,    2.5,   10};
  return b;
}

std::span<const double> hook_duration_buckets() {
  static constexpr std::array<double, 12> b{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600};
  return b;
}

}  // namespace meshdeploy::node::metrics

#include "tests/support/prometheus_text.h"

#include <cmath>
#include <set>
#include <sstream>

namespace meshdeploy::test {

namespace {

double parse_value(const std::string& s, bool& ok) {
  ok = true;
  if (s == "+Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  if (s == "NaN") return NAN;
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    ok = used == s.size();
    return v;
  } catch (...) {
    ok = false;
    return 0;
  }
}

// The family a sample name belongs to, given the declared types.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return "";
}

}  // namespace

std::optional<double> prom_text::sum(std::string_view name,
                                     const std::map<std::string, std::string>& labels) const {
  std::optional<double> total;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) all = false;
    }
    if (all) total = total.value_or(0) + s.value;
  }
  return total;
}

prom_text parse_prometheus_text(std::string_view text) {
  prom_text out;
  std::set<std::string> helped;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string where = "line " + std::to_string(n) + ": ";
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool help = line[2] == 'H';
      const std::string rest = line.substr(7);
      const auto sp = rest.find(' ');
      const std::string name = rest.substr(0, sp);
      if (help) {
        if (!helped.insert(name).second) out.problems.push_back(where + "second HELP of " + name);
        if (out.types.count(name)) out.problems.push_back(where + "HELP after TYPE of " + name);
      } else {
        const std::string type = sp == std::string::npos ? "" : rest.substr(sp + 1);
        if (out.types.count(name)) out.problems.push_back(where + "second TYPE of " + name);
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped") {
          out.problems.push_back(where + "bad TYPE '" + type + "'");
        }
        for (const auto& s : out.samples) {
          if (family_of(s.name, {{name, type}}) == name) {
            out.problems.push_back(where + "TYPE of " + name + " after its samples");
            break;
          }
        }
        out.types[name] = type;
      }
      continue;
    }
    if (line[0] == '#') continue;
    prom_sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          out.problems.push_back(where + "malformed labels");
          break;
        }
        const std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        bool closed = false;
        for (; j < line.size(); ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            const char c = line[++j];
            if (c == 'n') {
              value += '\n';
            } else if (c == '\\' || c == '"') {
              value += c;
            } else {
              out.problems.push_back(where + "bad escape in a label value");
            }
          } else if (line[j] == '"') {
            closed = true;
            break;
          } else {
            value += line[j];
          }
        }
        if (!closed) {
          out.problems.push_back(where + "unterminated label value");
          break;
        }
        if (s.labels.count(key)) out.problems.push_back(where + "label " + key + " twice");
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) {
        out.problems.push_back(where + "no closing brace");
        continue;
      }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') {
      out.problems.push_back(where + "no value");
      continue;
    }
    bool ok = false;
    s.value = parse_value(line.substr(i + 1), ok);
    if (!ok) out.problems.push_back(where + "bad value '" + line.substr(i + 1) + "'");
    if (family_of(s.name, out.types).empty()) {
      out.problems.push_back(where + "sample " + s.name + " of no declared family");
    }
    out.samples.push_back(std::move(s));
  }
  for (const auto& [name, type] : out.types) {
    if (!helped.count(name)) out.problems.push_back("no HELP for " + name);
  }
  // Histograms: per label set (without le), buckets cumulative, last +Inf, equal to _count.
  for (const auto& [name, type] : out.types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> series;
    for (const auto& s : out.samples) {
      if (s.name != name + "_bucket") continue;
      auto labels = s.labels;
      auto le = labels.find("le");
      if (le == labels.end()) {
        out.problems.push_back(name + ": a bucket without le");
        continue;
      }
      bool ok = false;
      const double bound = parse_value(le->second, ok);
      if (!ok) out.problems.push_back(name + ": bad le '" + le->second + "'");
      labels.erase(le);
      series[labels].emplace_back(bound, s.value);
    }
    for (const auto& [labels, buckets] : series) {
      for (std::size_t k = 1; k < buckets.size(); ++k) {
        if (!(buckets[k].first > buckets[k - 1].first)) {
          out.problems.push_back(name + ": le not increasing");
        }
        if (buckets[k].second < buckets[k - 1].second) {
          out.problems.push_back(name + ": buckets not cumulative");
        }
      }
      if (buckets.empty() || !std::isinf(buckets.back().first)) {
        out.problems.push_back(name + ": buckets do not end in +Inf");
        continue;
      }
      std::optional<double> count;
      for (const auto& s : out.samples) {
        if (s.name == name + "_count" && s.labels == labels) count = s.value;
      }
      bool has_sum = false;
      for (const auto& s : out.samples) {
        if (s.name == name + "_sum" && s.labels == labels) has_sum = true;
      }
      if (!count || *count != buckets.back().second) {
        out.problems.push_back(name + ": _count missing or not the +Inf bucket");
      }
      if (!has_sum) out.problems.push_back(name + ": _sum missing");
    }
  }
  return out;
}

}  // namespace meshdeploy::test

#include "cli/render.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <sstream>

namespace meshdeploy::cli {

using nlohmann::json;

namespace {

std::string s(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

long long to_ms(const json& t) {
  if (!t.is_string()) return -1;
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(t.get<std::string>().c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year,
                  &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<long long>(::timegm(&tm)) * 1000 + ms;
}

std::vector<std::string> last_lines(const std::string& text, std::size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<long>(n));
  return lines;
}

const json& null_json() {
  static const json n;
  return n;
}

}  // namespace

std::string duration_between(const json& start, const json& end) {
  const long long a = to_ms(start), b = to_ms(end);
  if (a < 0 || b < 0) return {};
  const long long d = b - a;
  if (d < 1000) return fmt::format("{}ms", d);
  return fmt::format("{:.3f}s", static_cast<double>(d) / 1000.0);
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) {
      l += r[i];
      if (i + 1 < r.size()) l += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string render_status(const json& d, std::size_t tail_lines) {
  std::string out;
  out += fmt::format("Deployment  {}\n", s(d, "deploymentId"));
  out += fmt::format("Status      {}\n", s(d, "status"));
  out += fmt::format("Application {}   Group {}   Config {}\n", s(d, "application"),
                     s(d, "deploymentGroup"), s(d, "deploymentConfig"));
  out += fmt::format("Revision    {} ({})\n", s(d, "revision"), s(d, "bundleType"));
  std::string times = fmt::format("Created     {}", s(d, "createTime"));
  if (!s(d, "completeTime").empty()) {
    times += fmt::format("   Completed {} (took {})", s(d, "completeTime"),
                         duration_between(d["createTime"], d["completeTime"]));
  }
  out += times + "\n";
  if (auto o = d.find("overview"); o != d.end() && o->is_object()) {
    out +=
        fmt::format("Hosts       {} succeeded, {} failed, {} in progress, {} pending, {} skipped\n",
                    o->value("Succeeded", 0), o->value("Failed", 0), o->value("InProgress", 0),
                    o->value("Pending", 0), o->value("Skipped", 0));
  }
  if (auto e = d.find("errorInformation"); e != d.end() && e->is_object()) {
    out += fmt::format("Error       {}: {}\n", s(*e, "code"), s(*e, "message"));
  }
  for (const auto& h : d.value("hosts", json::array())) {
    out += fmt::format("\nHost {}  {}\n", s(h, "host"), s(h, "status"));
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> failures;
    for (const auto& e : h.value("events", json::array())) {
      const json& diag = e.contains("diagnostics") ? e["diagnostics"] : null_json();
      std::string detail;
      if (diag.is_object()) {
        if (s(diag, "errorCode") != "Success") detail = s(diag, "errorCode");
        if (!s(diag, "scriptName").empty()) {
          detail += (detail.empty() ? "" : " ") + std::string("(") + s(diag, "scriptName") + ")";
        }
      }
      if (detail.empty() && s(e, "status") == "InProgress") detail = s(e, "message");
      rows.push_back({"  " + s(e, "name"), s(e, "status"),
                      duration_between(e.value("startTime", json()), e.value("endTime", json())),
                      detail});
      if (s(e, "status") == "Failed" && diag.is_object()) {
        std::string f = fmt::format("  {} failed: {}\n", s(e, "name"), s(diag, "message"));
        const auto tail = last_lines(s(diag, "logTail"), tail_lines);
        if (!tail.empty()) {
          f += "  last output:\n";
          for (const auto& l : tail) f += "    | " + l + "\n";
        }
        failures.push_back(std::move(f));
      }
    }
    out += render_table({"  EVENT", "STATUS", "DURATION", "DETAIL"}, rows);
    for (const auto& f : failures) out += f;
  }
  return out;
}

std::string render_deployments(const json& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : list.value("deployments", json::array())) {
    const auto o = d.value("overview", json::object());
    rows.push_back(
        {s(d, "deploymentId"), s(d, "application"), s(d, "deploymentGroup"), s(d, "status"),
         s(d, "revision").substr(0, 12), s(d, "createTime"),
         fmt::format("{}/{}", o.value("Succeeded", 0), d.value("hosts", json::array()).size())});
  }
  if (rows.empty()) return "No deployments.\n";
  return render_table({"ID", "APPLICATION", "GROUP", "STATUS", "REVISION", "CREATED", "HOSTS OK"},
                      rows);
}

std::string render_live(const json& d, std::size_t columns, std::size_t max_hosts,
                        std::size_t bar_width) {
  std::size_t done = 0, in_progress = 0, failed = 0, pending = 0, total = 0;
  std::vector<std::string> window;
  std::size_t more = 0;
  for (const auto& h : d.value("hosts", json::array())) {
    ++total;
    const std::string st = s(h, "status");
    if (st == "Succeeded" || st == "Skipped") {
      ++done;
    } else if (st == "Failed" || st == "Unknown") {
      ++failed;
    } else if (st == "InProgress") {
      ++in_progress;
      if (window.size() >= max_hosts) {
        ++more;
        continue;
      }
      std::string event, message;
      for (const auto& e : h.value("events", json::array())) {
        if (s(e, "status") == "InProgress") {
          event = s(e, "name");
          message = s(e, "message");
          break;
        }
      }
      window.push_back(fmt::format("  {}  {:<16} {}", s(h, "host"), event, message));
    } else {
      ++pending;
    }
  }
  const std::size_t settled = done + failed;
  const std::size_t filled = total == 0 ? 0 : settled * bar_width / total;
  std::vector<std::string> lines;
  lines.push_back(fmt::format("{}  {}  [{}{}] {}/{} hosts", s(d, "deploymentId"), s(d, "status"),
                              std::string(filled, '#'), std::string(bar_width - filled, '.'),
                              settled, total));
  lines.push_back(fmt::format("  {} done, {} in progress, {} failed, {} pending", done, in_progress,
                              failed, pending));
  for (auto& w : window) lines.push_back(std::move(w));
  if (more > 0) lines.push_back(fmt::format("  ... and {} more in progress", more));
  std::string out;
  for (auto& l : lines) {
    if (columns > 0 && l.size() > columns) l.resize(columns);
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  }
  return out;
}

std::vector<std::string> progress_lines(const json& before, const json& after) {
  std::vector<std::string> out;
  const std::string status = s(after, "status");
  const std::string old_status = before.is_object() ? s(before, "status") : std::string();
  const auto hosts = after.value("hosts", json::array());
  const auto old_hosts = before.is_object() ? before.value("hosts", json::array()) : json::array();
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const auto& h = hosts[i];
    const json old_h = i < old_hosts.size() ? old_hosts[i] : json::object();
    const auto events = h.value("events", json::array());
    const auto old_events = old_h.value("events", json::array());
    for (std::size_t k = 0; k < events.size(); ++k) {
      const auto& e = events[k];
      const std::string st = s(e, "status");
      const std::string old_st = k < old_events.size() ? s(old_events[k], "status") : "Pending";
      const std::string msg = s(e, "message");
      const std::string old_msg = k < old_events.size() ? s(old_events[k], "message") : "";
      if (st == "InProgress" && st == old_st && !msg.empty() && msg != old_msg) {
        out.push_back(fmt::format("{}  {:<20} {}", s(h, "host"), s(e, "name"), msg));
        continue;
      }
      if (st == old_st || st == "Pending") continue;
      if (st == "InProgress") {
        out.push_back(fmt::format("{}  {:<20} {}", s(h, "host"), s(e, "name"),
                                  msg.empty() ? "started" : msg));
        continue;
      }
      std::string line = fmt::format("{}  {:<20} {}", s(h, "host"), s(e, "name"), st);
      const std::string took =
          duration_between(e.value("startTime", json()), e.value("endTime", json()));
      if (!took.empty() && st != "Skipped") line += "  " + took;
      if (e.contains("diagnostics") && e["diagnostics"].is_object() && st == "Failed") {
        line += fmt::format("  {}: {}", s(e["diagnostics"], "errorCode"),
                            s(e["diagnostics"], "message"));
      }
      out.push_back(std::move(line));
    }
    if (s(h, "status") != s(old_h, "status") &&
        (s(h, "status") == "Succeeded" || s(h, "status") == "Failed")) {
      out.push_back(fmt::format("{}  host {}", s(h, "host"), s(h, "status")));
    }
  }
  if (status != old_status) {
    out.push_back(fmt::format("deployment {} {}", s(after, "deploymentId"), status));
  }
  return out;
}

}  // namespace meshdeploy::cli

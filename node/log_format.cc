#include "node/log_format.h"

#include "node/agent/lifecycle_event.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <unistd.h>

namespace meshdeploy::node {

namespace {

bool id_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool word_char(char c) { return id_char(c) || (c >= 'a' && c <= 'z') || c == '_' || c == '-'; }

// spdlog's formatter interface over json_log_line.
class json_formatter final : public spdlog::formatter {
 public:
  explicit json_formatter(std::string host) : host_(std::move(host)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        json_log_line(msg.time, std::string_view(level.data(), level.size()), host_,
                      std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>(host_);
  }

 private:
  std::string host_;
};

}  // namespace

std::string_view find_deployment_id(std::string_view text) {
  constexpr std::size_t len = 11;  // "d-" + 9
  for (std::size_t i = 0; i + len <= text.size(); ++i) {
    if (text[i] != 'd' || text[i + 1] != '-') continue;
    if (i > 0 && word_char(text[i - 1])) continue;
    bool ok = true;
    for (std::size_t k = 2; k < len && ok; ++k) ok = id_char(text[i + k]);
    if (!ok || (i + len < text.size() && word_char(text[i + len]))) continue;
    return text.substr(i, len);
  }
  return {};
}

std::string_view find_lifecycle_event(std::string_view text) {
  constexpr std::string_view prefix = "deployment ";
  if (!text.starts_with(prefix)) return {};
  const std::string_view id = find_deployment_id(text);
  if (id.empty() || id.data() != text.data() + prefix.size()) return {};
  std::string_view rest = text.substr(prefix.size() + id.size());
  if (!rest.starts_with(": ")) return {};
  rest.remove_prefix(2);
  const std::string_view name = rest.substr(0, rest.find(' '));
  return agent::parse_lifecycle_event(name) ? name : std::string_view();
}

std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view host, std::string_view message) {
  const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(time);
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(ms);
  nlohmann::ordered_json j;
  j["time"] = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z",
                          fmt::gmtime(std::chrono::system_clock::to_time_t(secs)),
                          static_cast<int>((ms - secs).count()));
  j["level"] = level;
  j["host"] = host;
  if (auto id = find_deployment_id(message); !id.empty()) j["deploymentId"] = id;
  if (auto event = find_lifecycle_event(message); !event.empty()) j["event"] = event;
  j["msg"] = message;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

bool colour_allowed(int fd) {
  const char* no_colour = std::getenv("NO_COLOR");
  if (no_colour != nullptr && *no_colour != '\0') return false;
  return ::isatty(fd) == 1;
}

void set_log_format(const std::string& format, const std::string& host) {
  std::shared_ptr<spdlog::logger> logger;
  if (format == "json") {
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    logger = std::make_shared<spdlog::logger>("", sink);
    logger->set_formatter(std::make_unique<json_formatter>(host));
  } else {
    auto mode =
        colour_allowed(STDOUT_FILENO) ? spdlog::color_mode::always : spdlog::color_mode::never;
    logger = std::make_shared<spdlog::logger>(
        "", std::make_shared<spdlog::sinks::ansicolor_stdout_sink_mt>(mode));
  }
  logger->set_level(spdlog::default_logger()->level());
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace meshdeploy::node

#include "node/agent/executor.h"

#include "node/agent/crash_point.h"
#include "node/agent/errc.h"
#include "node/agent/hook_runner.h"
#include "node/agent/permissions.h"
#include "node/agent/revision.h"

#include <fmt/format.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>

namespace meshdeploy::agent {

namespace fs = std::filesystem;
using deploy::diagnostics;
using deploy::host_status;
using deploy::now_ms;

struct executor::run_context {
  const local_deployment& d;
  progress_sink& sink;
  const std::atomic<bool>& stop;
  fs::path archive_dir;
  fs::path log;
  appspec spec;
  group_host_state state;
  // The last successful revision on this host for the group, if any.
  std::optional<fs::path> previous_dir;
  std::optional<result<appspec>> previous_spec;
  bool failed = false;
  std::string failure;
};

namespace {

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

// Appends a CodeDeploy-style marker line to the deployment log.
void log_line(const fs::path& log, std::string_view text) {
  std::ofstream out(log, std::ios::app);
  out << "[" << deploy::to_rfc3339(now_ms()) << "] " << text << "\n";
}

std::string_view error_code_for(const error& e) {
  if (e.code == errc::script_missing) return "ScriptMissing";
  if (e.code == errc::script_not_executable) return "ScriptNotExecutable";
  return "UnknownError";
}

diagnostics diag_from_error(const error& e, std::string script = {}) {
  return diagnostics{std::string(error_code_for(e)), std::move(script), e.message, {}};
}

// Passes progress on to `next` and writes one node log line per lifecycle event that ran (not
// for skipped ones): "deployment d-X: BeforeInstall Succeeded in 0.4 s", and on failure
// the error code and message (docs/operations.md "Logs").
class logged_sink final : public progress_sink {
 public:
  logged_sink(progress_sink& next, const std::string& deployment_id)
      : next_(next), deployment_id_(deployment_id) {}
  void event_started(lifecycle_event e, deploy::unix_ms at) override {
    starts_[e] = at;
    next_.event_started(e, at);
  }
  void event_finished(lifecycle_event e, deploy::host_status s,
                      const std::optional<deploy::diagnostics>& diag, deploy::unix_ms at) override {
    if (s != deploy::host_status::skipped) {
      const auto it = starts_.find(e);
      const double seconds = it == starts_.end() ? 0.0 : static_cast<double>(at - it->second) / 1e3;
      if (diag) {
        spdlog::warn("deployment {}: {} {} in {:.1f} s: {}: {}", deployment_id_, to_string(e),
                     deploy::to_string(s), seconds, diag->error_code, diag->message);
      } else {
        spdlog::info("deployment {}: {} {} in {:.1f} s", deployment_id_, to_string(e),
                     deploy::to_string(s), seconds);
      }
    }
    next_.event_finished(e, s, diag, at);
  }

 private:
  progress_sink& next_;
  const std::string& deployment_id_;
  std::map<lifecycle_event, deploy::unix_ms> starts_;
};

}  // namespace

executor::executor(storage::db& db, agent_options options)
    : db_(db), options_(std::move(options)), journal_(db), state_(db) {}

fs::path executor::deployment_dir(const std::string& group_id,
                                  const std::string& deployment_id) const {
  return options_.data_dir / "deployments" / group_id / deployment_id;
}

fs::path executor::log_file(const std::string& group_id, const std::string& deployment_id) const {
  return deployment_dir(group_id, deployment_id) / "logs" / "scripts.log";
}

run_result executor::run(const local_deployment& d, progress_sink& progress,
                         const std::atomic<bool>& stop) {
  logged_sink sink(progress, d.deployment_id);
  run_context ctx{d, sink, stop, {}, {}, {}, {}, {}, {}, false, {}};
  const fs::path dir = deployment_dir(d.group_id, d.deployment_id);
  ctx.archive_dir = dir / "deployment-archive";
  ctx.log = log_file(d.group_id, d.deployment_id);

  // Fails every event from `from` on as Skipped and reports the host failed.
  auto fail_all = [&](std::string message) {
    for (lifecycle_event e : lifecycle_order()) {
      if (e == lifecycle_event::download_bundle) continue;
      sink.event_finished(e, host_status::skipped, std::nullopt, now_ms());
    }
    (void)journal_.record(
        {d.deployment_id, d.group_id, journal_phase::finished, {}, {}, {}, "Failed"});
    return run_result{host_status::failed, std::move(message)};
  };

  // --- DownloadBundle, done before anything on the host changes, so that a
  // bad revision never stops the running application.
  const auto download_start = now_ms();
  sink.event_started(lifecycle_event::download_bundle, download_start);
  auto fail_download = [&](const error& e) {
    log_line(ctx.log, fmt::format("DownloadBundle failed: {}", e.message));
    sink.event_finished(lifecycle_event::download_bundle, host_status::failed, diag_from_error(e),
                        now_ms());
    if (auto s = state_.load(d.group_id)) {
      auto st = std::move(s).value();
      st.last_deployment = d.deployment_id;
      st.last_failed = true;
      (void)state_.save(st);
    }
    return fail_all(e.message);
  };
  {
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(ctx.archive_dir, ec);
    if (!ec) fs::create_directories(ctx.log.parent_path(), ec);
    if (!ec) fs::create_directories(options_.install_root, ec);
    if (ec) {
      return fail_download(make_error(
          errc::io_error, fmt::format("cannot create {}: {}", dir.string(), ec.message())));
    }
  }
  log_line(ctx.log, "LifecycleEvent - DownloadBundle");
  if (auto j = journal_.record(
          {d.deployment_id, d.group_id, journal_phase::prepared, "DownloadBundle", {}, {}, {}});
      !j) {
    return fail_download(j.error());
  }
  auto hash = hash_file(d.bundle);
  if (!hash) return fail_download(hash.error());
  if (hash.value() != d.revision_id) {
    return fail_download(make_error(
        errc::bad_revision, fmt::format("bundle {} has hash {} but revision {} was expected",
                                        d.bundle.string(), hash.value(), d.revision_id)));
  }
  if (auto x = extract_archive(d.bundle, ctx.archive_dir, options_.limits); !x) {
    return fail_download(x.error());
  }
  auto spec = load_appspec(ctx.archive_dir);
  if (!spec) return fail_download(spec.error());
  ctx.spec = std::move(spec).value();
  log_line(ctx.log, fmt::format("Revision {} verified and extracted", d.revision_id));
  sink.event_finished(lifecycle_event::download_bundle, host_status::succeeded, std::nullopt,
                      now_ms());

  auto state = state_.load(d.group_id);
  if (!state) return fail_download(state.error());
  ctx.state = std::move(state).value();
  if (!ctx.state.last_successful_deployment.empty()) {
    ctx.previous_dir =
        deployment_dir(d.group_id, ctx.state.last_successful_deployment) / "deployment-archive";
  }

  // --- Entering the window: from here on the host changes. Durable first.
  if (auto j =
          journal_.record({d.deployment_id, d.group_id, journal_phase::entered, {}, {}, {}, {}});
      !j) {
    return fail_all(j.error().message);
  }
  ctx.state.last_deployment = d.deployment_id;
  ctx.state.last_failed = false;
  ctx.state.history.push_back(d.deployment_id);
  if (auto s = state_.save(ctx.state); !s) return fail_all(s.error().message);

  for (lifecycle_event e : lifecycle_order()) {
    if (e == lifecycle_event::download_bundle) continue;
    if (ctx.failed) {
      sink.event_finished(e, host_status::skipped, std::nullopt, now_ms());
      continue;
    }
    if (stop.load()) {
      ctx.failed = true;
      ctx.failure = "the deployment was stopped before " + std::string(to_string(e));
      sink.event_finished(e, host_status::skipped, std::nullopt, now_ms());
      continue;
    }
    run_event(ctx, e);
  }

  const host_status final_status = ctx.failed ? host_status::failed : host_status::succeeded;
  ctx.state.last_failed = ctx.failed;
  if (!ctx.failed) {
    ctx.state.last_successful_deployment = d.deployment_id;
    ctx.state.last_successful_revision = d.revision_id;
  }
  prune(ctx.state);
  if (auto s = state_.save(ctx.state); !s && !ctx.failed) {
    ctx.failed = true;
    ctx.failure = s.error().message;
  }
  (void)journal_.record({d.deployment_id,
                         d.group_id,
                         journal_phase::finished,
                         {},
                         {},
                         {},
                         std::string(deploy::to_string(final_status))});
  return run_result{ctx.failed ? host_status::failed : host_status::succeeded, ctx.failure};
}

bool executor::run_event(run_context& ctx, lifecycle_event e) {
  const auto& d = ctx.d;
  const std::string event_name(to_string(e));
  if (e == lifecycle_event::block_traffic || e == lifecycle_event::allow_traffic) {
    // Reserved for load balancers; meshdeploy has none to talk to.
    ctx.sink.event_finished(e, host_status::skipped, std::nullopt, now_ms());
    return true;
  }
  ctx.sink.event_started(e, now_ms());
  log_line(ctx.log, "LifecycleEvent - " + event_name);

  auto fail = [&](diagnostics diag) {
    log_line(ctx.log, fmt::format("{} failed: {}", event_name, diag.message));
    const bool ignorable = runs_previous_revision(e) && d.ignore_stop_failures;
    if (!ignorable) {
      ctx.failed = true;
      ctx.failure = fmt::format("{} failed: {}", event_name, diag.message);
    } else {
      diag.message += " (ignored: the deployment ignores ApplicationStop failures)";
    }
    ctx.sink.event_finished(e, host_status::failed, diag, now_ms());
    return ignorable;
  };

  if (e == lifecycle_event::install) {
    auto logger = [&](std::string_view line) { log_line(ctx.log, line); };
    if (auto r = remove_installed(ctx.state.installed, options_.install_root); !r) {
      return fail(diag_from_error(r.error()));
    }
    ctx.state.installed.clear();
    if (auto s = state_.save(ctx.state); !s) return fail(diag_from_error(s.error()));
    const file_exists_behavior behavior = d.file_exists_override.value_or(
        ctx.spec.file_exists.value_or(file_exists_behavior::disallow));
    auto manifest =
        install_files(ctx.spec, ctx.archive_dir, options_.install_root, behavior, logger);
    if (!manifest) return fail(diag_from_error(manifest.error()));
    ctx.state.installed = std::move(manifest).value();
    if (auto s = state_.save(ctx.state); !s) return fail(diag_from_error(s.error()));
    if (auto p = apply_permissions(ctx.spec, ctx.state.installed, options_.install_root, logger);
        !p) {
      return fail(diag_from_error(p.error()));
    }
    ctx.sink.event_finished(e, host_status::succeeded, std::nullopt, now_ms());
    return true;
  }

  // Hook events: scripts of this revision, or of the last successful one for
  // the stop/block-traffic events.
  const appspec* spec = &ctx.spec;
  fs::path root = ctx.archive_dir;
  if (runs_previous_revision(e)) {
    if (!ctx.previous_dir) {
      ctx.sink.event_finished(e, host_status::succeeded, std::nullopt, now_ms());
      return true;
    }
    if (!ctx.previous_spec) ctx.previous_spec = load_appspec(*ctx.previous_dir);
    if (!*ctx.previous_spec) {
      return fail(diag_from_error(ctx.previous_spec->error().with_context(
          "cannot read the last successful revision's appspec")));
    }
    spec = &ctx.previous_spec->value();
    root = *ctx.previous_dir;
  }
  auto it = spec->hooks.find(e);
  if (it == spec->hooks.end() || it->second.empty()) {
    ctx.sink.event_finished(e, host_status::succeeded, std::nullopt, now_ms());
    return true;
  }

  std::optional<diagnostics> last;
  int index = 0;
  for (const hook_script& script : it->second) {
    if (ctx.stop.load()) {
      return fail(
          {"UnknownError", script.location, "the deployment was stopped by an operator", {}});
    }
    hook_request req;
    req.script = root / script.location;
    req.script_name = script.location;
    req.working_dir = root;
    req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(script.timeout);
    req.runas = script.runas;
    req.log_file = ctx.log;
    req.kill_grace = options_.kill_grace;
    req.token = fmt::format("{}-{}-{}-{}", d.deployment_id, event_name, index++, random_hex(8));
    req.env = {{"LIFECYCLE_EVENT", event_name},
               {"DEPLOYMENT_ID", d.deployment_id},
               {"APPLICATION_NAME", d.application},
               {"DEPLOYMENT_GROUP_NAME", d.group},
               {"DEPLOYMENT_GROUP_ID", d.group_id},
               {"MESHDEPLOY_INSTALL_ROOT", options_.install_root.string()},
               {"MESHDEPLOY_REVISION", d.revision_id}};
    // Durable before the fork: after a crash, recovery finds the token and
    // kills whatever this script left running.
    if (auto j = journal_.record({d.deployment_id,
                                  d.group_id,
                                  journal_phase::entered,
                                  event_name,
                                  script.location,
                                  req.token,
                                  {}});
        !j) {
      return fail(diag_from_error(j.error(), script.location));
    }
    crash_point("after-journal", event_name);  // a test hook; nothing unless set
    const hook_outcome out = run_hook(req);
    crash_point("after-hook-exit", event_name);
    diagnostics diag{std::string(to_string(out.code)), script.location, out.message, out.log_tail};
    if (out.code != script_error_code::success) return fail(std::move(diag));
    last = std::move(diag);
  }
  // Not synced: it only says no script is running. Lost in a crash, recovery finds the entry
  // of the event's last script (synced before its fork) and reports that script interrupted:
  // the host is Failed either way (docs/agent.md). One fsync less per event, 13 per host.
  (void)journal_.record(
      {d.deployment_id, d.group_id, journal_phase::entered, event_name, {}, {}, {}},
      storage::durability::buffered);
  if (last && last->message.empty()) last->message = "Succeeded";
  ctx.sink.event_finished(e, host_status::succeeded, last, now_ms());
  return true;
}

void executor::prune(group_host_state& s) {
  // Keep the newest `keep_deployments` deployment directories and, always,
  // the last successful one (its ApplicationStop scripts run next time).
  while (s.history.size() > options_.keep_deployments) {
    auto victim = std::find_if(s.history.begin(), s.history.end(), [&](const std::string& id) {
      return id != s.last_successful_deployment;
    });
    if (victim == s.history.end() ||
        std::distance(victim, s.history.end()) <= static_cast<long>(options_.keep_deployments)) {
      break;
    }
    std::error_code ec;
    fs::remove_all(deployment_dir(s.group_id, *victim), ec);
    (void)journal_.forget(*victim);
    s.history.erase(victim);
  }
}

result<std::vector<interrupted_run>> executor::recover() {
  MESH_TRY(auto entries, journal_.unfinished());
  std::vector<interrupted_run> out;
  for (auto& e : entries) {
    interrupted_run r{e.deployment_id, e.group_id, e.phase == journal_phase::entered,
                      e.event,         e.script,   {}};
    int killed = 0;
    if (!e.hook_token.empty()) killed = kill_processes_with_token(e.hook_token);
    if (!r.entered) {
      r.message = "the node stopped while preparing the bundle; nothing on the host was changed";
    } else if (!e.script.empty()) {
      r.message = fmt::format(
          "the node stopped while {} script {} was running; the script {} and was not rerun "
          "(meshdeploy never reruns an interrupted hook): redeploy to retry",
          e.event, e.script,
          killed > 0 ? fmt::format("was killed ({} leftover process(es))", killed)
                     : std::string("had already exited"));
    } else if (!e.event.empty()) {
      r.message = fmt::format(
          "the node stopped during {}; the host may be partly updated: redeploy to retry", e.event);
    } else {
      r.message = "the node stopped during the deployment; redeploy to retry";
    }
    MESH_CHECK(journal_.record(
        {e.deployment_id, e.group_id, journal_phase::finished, e.event, e.script, {}, "Failed"}));
    MESH_TRY(auto st, state_.load(e.group_id));
    if (r.entered || st.last_deployment == e.deployment_id) {
      st.last_deployment = e.deployment_id;
      st.last_failed = true;
      MESH_CHECK(state_.save(st));
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool log_section_filter::keep(std::string_view line) {
  if (event_.empty()) return true;
  static constexpr std::string_view marker = "] LifecycleEvent - ";
  if (auto m = line.find(marker); m != std::string_view::npos && line.starts_with('[')) {
    inside_ = line.substr(m + marker.size()) == event_;
  }
  return inside_;
}

std::string filter_log(std::string_view log, std::string_view event) {
  if (event.empty()) return std::string(log);
  log_section_filter filter(event);
  std::string out;
  std::size_t pos = 0;
  while (pos < log.size()) {
    std::size_t end = log.find('\n', pos);
    if (end == std::string_view::npos) end = log.size();
    std::string_view line = log.substr(pos, end - pos);
    if (filter.keep(line)) {
      out.append(line);
      out.push_back('\n');
    }
    pos = end + 1;
  }
  return out;
}

}  // namespace meshdeploy::agent

#include "cli/completion.h"

#include "cli/cli.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>

namespace meshdeploy::cli {

namespace {

// Names we put in the script unquoted: command and option names are ours, but a name with a
// character the shell would interpret is left out rather than escaped.
bool shell_safe(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// The allowed values of an option checked with CLI::IsMember ("TEXT:{table,json}"), else empty.
std::vector<std::string> choices_of(const CLI::Option& opt) {
  const std::string type = opt.get_type_name();
  const auto open = type.find(":{"), close = type.find('}', open == std::string::npos ? 0 : open);
  std::vector<std::string> out;
  if (open == std::string::npos || close == std::string::npos) return out;
  const std::string list = type.substr(open + 2, close - open - 2);
  std::size_t pos = 0;
  while (pos <= list.size()) {
    auto comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(pos, comma - pos);
    if (!shell_safe(item)) return {};
    out.push_back(std::move(item));
    pos = comma + 1;
  }
  return out;
}

// One `case` arm per command path ("" for the root, "node run" ...) setting the shell variables
// subs (subcommand names), opts (option spellings) and valued (options that take a value); and
// in `choices` one arm per option with a fixed set of values ("PATH|SPELLING").
void add_arms(const CLI::App& app, const std::string& path, std::string& out,
              std::string& choices) {
  std::vector<std::string> subs, opts, valued;
  for (const CLI::App* sub :
       app.get_subcommands([](const CLI::App* a) { return !a->get_disabled(); })) {
    if (shell_safe(sub->get_name())) subs.push_back(sub->get_name());
  }
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional()) continue;
    // A flag (and --help) expects 0 values: CLI11 sets expected(0) but leaves type_size at 1.
    const bool takes_value = opt->get_expected_max() > 0 && opt->get_type_size_max() > 0;
    const auto allowed = takes_value ? choices_of(*opt) : std::vector<std::string>{};
    std::vector<std::string> spellings;
    for (const auto& l : opt->get_lnames()) {
      if (!shell_safe(l)) continue;
      opts.push_back("--" + l);
      if (takes_value) spellings.push_back("--" + l);
    }
    for (const auto& s : opt->get_snames()) {
      if (shell_safe(s) && takes_value) spellings.push_back("-" + s);
    }
    for (const auto& sp : spellings) {
      valued.push_back(sp);
      if (!allowed.empty()) {
        choices += fmt::format("    \"{}|{}\") choices=\"{}\" ;;\n", path, sp, join(allowed));
      }
    }
  }
  out += fmt::format("    \"{}\") subs=\"{}\"; opts=\"{}\"; valued=\" {} \" ;;\n", path, join(subs),
                     join(opts), join(valued));
  for (const CLI::App* sub :
       app.get_subcommands([](const CLI::App* a) { return !a->get_disabled(); })) {
    if (!shell_safe(sub->get_name())) continue;
    add_arms(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out, choices);
  }
}

std::string fn_name(const std::string& name) {
  std::string f = "_";
  for (char c : name) f.push_back(c == '-' || c == '.' ? '_' : c);
  return f;
}

// The shared part: `<fn>_words PATH` sets subs/opts/valued; `<fn>_path ARGS...` walks the words
// before the cursor (skipping option values) and prints the command path they name.
std::string common_functions(const CLI::App& app, const std::string& fn) {
  std::string arms, choices;
  add_arms(app, "", arms, choices);
  return fmt::format(
      "{fn}_words() {{\n"
      "  case \"$1\" in\n"
      "{arms}"
      "    *) subs=\"\"; opts=\"\"; valued=\" \" ;;\n"
      "  esac\n"
      "}}\n\n"
      "{fn}_choices() {{\n"
      "  case \"$1|$2\" in\n"
      "{choices}"
      "    *) choices=\"\" ;;\n"
      "  esac\n"
      "}}\n\n"
      "{fn}_path() {{\n"
      "  local cmdpath=\"\" skip=0 w subs opts valued\n"
      "  for w in \"$@\"; do\n"
      "    if [ \"$skip\" = 1 ]; then skip=0; continue; fi\n"
      "    {fn}_words \"$cmdpath\"\n"
      "    case \"$w\" in\n"
      "      --*=*) ;;\n"
      "      -*) case \"$valued\" in *\" $w \"*) skip=1 ;; esac ;;\n"
      "      *) case \" $subs \" in *\" $w \"*) cmdpath=\"${{cmdpath:+$cmdpath }}$w\" ;; esac ;;\n"
      "    esac\n"
      "  done\n"
      "  printf '%s' \"$cmdpath\"\n"
      "}}\n",
      fmt::arg("fn", fn), fmt::arg("arms", arms), fmt::arg("choices", choices));
}

}  // namespace

std::string bash_completion(const CLI::App& app, const std::string& name) {
  const std::string fn = fn_name(name);
  return fmt::format(
      "# bash completion for {name}, generated by `{name} completion bash`.\n"
      "# Install: {name} completion bash > /etc/bash_completion.d/{name}\n"
      "#      or: source <({name} completion bash)\n\n"
      "{common}\n"
      "{fn}() {{\n"
      "  local cur prev cmdpath subs opts valued\n"
      "  cur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n"
      "  prev=\"\"\n"
      "  [ \"$COMP_CWORD\" -gt 1 ] && prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n"
      "  cmdpath=\"$({fn}_path \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\")\"\n"
      "  {fn}_words \"$cmdpath\"\n"
      "  if [ -n \"$prev\" ] && [[ \"$valued\" == *\" $prev \"* ]]; then\n"
      "    local choices\n"
      "    {fn}_choices \"$cmdpath\" \"$prev\"\n"
      "    if [ -n \"$choices\" ]; then\n"
      "      COMPREPLY=($(compgen -W \"$choices\" -- \"$cur\"))\n"
      "    else\n"
      "      COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      "    fi\n"
      "  elif [[ \"$cur\" == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
      "  elif [ -n \"$subs\" ]; then\n"
      "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
      "  else\n"
      "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      "  fi\n"
      "}}\n"
      "complete -F {fn} {name}\n",
      fmt::arg("name", name), fmt::arg("fn", fn), fmt::arg("common", common_functions(app, fn)));
}

std::string zsh_completion(const CLI::App& app, const std::string& name) {
  const std::string fn = fn_name(name);
  return fmt::format(
      "#compdef {name}\n"
      "# zsh completion for {name}, generated by `{name} completion zsh`.\n"
      "# Install: {name} completion zsh > \"${{fpath[1]}}/_{name}\"  (then restart zsh)\n"
      "#      or: source <({name} completion zsh)   (after compinit)\n\n"
      "{common}\n"
      "{fn}_zsh() {{\n"
      "  local cmdpath subs opts valued cur prev choices\n"
      "  cur=\"${{words[CURRENT]}}\"\n"
      "  prev=\"\"\n"
      "  (( CURRENT > 2 )) && prev=\"${{words[CURRENT-1]}}\"\n"
      "  cmdpath=\"$({fn}_path \"${{(@)words[2,CURRENT-1]}}\")\"\n"
      "  {fn}_words \"$cmdpath\"\n"
      "  if [[ -n \"$prev\" && \"$valued\" == *\" $prev \"* ]]; then\n"
      "    {fn}_choices \"$cmdpath\" \"$prev\"\n"
      "    if [[ -n \"$choices\" ]]; then compadd -- ${{=choices}}; else _files; fi\n"
      "  elif [[ \"$cur\" == -* ]]; then\n"
      "    compadd -- ${{=opts}}\n"
      "  elif [[ -n \"$subs\" ]]; then\n"
      "    compadd -- ${{=subs}}\n"
      "  else\n"
      "    _files\n"
      "  fi\n"
      "}}\n\n"
      "if [[ \"${{funcstack[1]}}\" == \"_{name}\" ]]; then\n"
      "  {fn}_zsh \"$@\"\n"
      "else\n"
      "  compdef {fn}_zsh {name}\n"
      "fi\n",
      fmt::arg("name", name), fmt::arg("fn", fn), fmt::arg("common", common_functions(app, fn)));
}

void add_completion_command(CLI::App& app, int& code) {
  auto shell = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "completion",
      "Print a shell completion script for bash or zsh, generated from this binary's commands.\n\n"
      "Examples:\n"
      "  source <(meshdeploy completion bash)\n"
      "  meshdeploy completion bash | sudo tee /etc/bash_completion.d/meshdeploy\n"
      "  meshdeploy completion zsh > \"${fpath[1]}/_meshdeploy\"");
  cmd->add_option("SHELL", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  cmd->callback([&app, shell, &code] {
    std::cout << (*shell == "zsh" ? zsh_completion(app, app.get_name())
                                  : bash_completion(app, app.get_name()));
    code = exit_ok;
  });
}

}  // namespace meshdeploy::cli

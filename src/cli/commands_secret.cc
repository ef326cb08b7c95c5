// keel secret set|list|rm: flags in, one application service called (app/secrets.h), its
// view printed. No command prints a value: there is deliberately no `get` (adapters and
// providers open secrets in-process through the vault). Reading a value from the terminal
// (echo off) is face code and stays here.
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/secrets.h"
#include "app/views.h"
#include "cli/cli.h"

namespace keel::cli {
namespace {

// A buffer of fixed capacity, wiped when it goes away: no reallocation leaves a copy of
// the value behind in freed memory.
class WipedBuffer {
 public:
  explicit WipedBuffer(size_t capacity) : buf_(capacity) {}
  ~WipedBuffer() { app::SecureWipe(buf_.data(), buf_.size()); }
  char* data() { return buf_.data(); }
  size_t capacity() const { return buf_.size(); }

 private:
  std::vector<char> buf_;
};

// The terminal settings to put back if the operator interrupts the hidden prompt.
termios g_saved_termios;

void RestoreTerminalAndDie(int sig) {
  ::tcsetattr(0, TCSANOW, &g_saved_termios);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Turns terminal echo off for its lifetime (when standard input is a terminal); Ctrl-C or
// a termination signal while it is off restores echo before the process ends.
class NoEcho {
 public:
  NoEcho() {
    if (::tcgetattr(0, &g_saved_termios) == 0) {
      old_int_ = ::signal(SIGINT, RestoreTerminalAndDie);
      old_term_ = ::signal(SIGTERM, RestoreTerminalAndDie);
      old_hup_ = ::signal(SIGHUP, RestoreTerminalAndDie);
      termios t = g_saved_termios;
      t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = ::tcsetattr(0, TCSANOW, &t) == 0;
    }
  }
  ~NoEcho() {
    if (active_) ::tcsetattr(0, TCSANOW, &g_saved_termios);
    if (old_int_ != SIG_ERR) ::signal(SIGINT, old_int_);
    if (old_term_ != SIG_ERR) ::signal(SIGTERM, old_term_);
    if (old_hup_ != SIG_ERR) ::signal(SIGHUP, old_hup_);
  }

 private:
  bool active_ = false;
  sighandler_t old_int_ = SIG_ERR, old_term_ = SIG_ERR, old_hup_ = SIG_ERR;
};

// Reads the value of secret `name`: one line typed without echo from a terminal, else all of
// standard input. Strips one trailing newline ("\n" or "\r\n"); refuses an empty value and
// one over app::kMaxSecretBytes. Messages never contain the value.
Result<app::SecretValue> ReadSecretValue(const std::string& name) {
  const bool tty = ::isatty(0) == 1;
  // Room for the largest value, a CRLF, and one byte more to detect an oversized input.
  WipedBuffer buf(app::kMaxSecretBytes + 3);
  size_t n = 0;
  {
    std::unique_ptr<NoEcho> no_echo;
    if (tty) {
      // Echo goes off before the prompt appears, so nothing typed after it is shown, and
      // without flushing, so nothing typed early is lost.
      no_echo = std::make_unique<NoEcho>();
      std::cerr << "value of secret " << name << " (input hidden): " << std::flush;
    }
    while (n < buf.capacity()) {
      ssize_t k = ::read(0, buf.data() + n, buf.capacity() - n);
      if (k < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "reading the value from standard input");
      }
      if (k == 0) break;
      n += static_cast<size_t>(k);
      if (tty && buf.data()[n - 1] == '\n') break;
    }
    if (tty) std::cerr << "\n";
  }
  if (n == buf.capacity()) {
    return InvalidArgument("the value of secret " + name + " is larger than " +
                           std::to_string(app::kMaxSecretBytes) + " bytes");
  }
  if (n > 0 && buf.data()[n - 1] == '\n') {
    --n;
    if (n > 0 && buf.data()[n - 1] == '\r') --n;
  }
  if (n == 0) {
    return InvalidArgument("the value of secret " + name +
                           " is empty: give it on standard input, e.g. `keel secret set " + name +
                           " < file`, or type it at the prompt");
  }
  if (n > app::kMaxSecretBytes) {
    return InvalidArgument("the value of secret " + name + " is larger than " +
                           std::to_string(app::kMaxSecretBytes) + " bytes");
  }
  return app::SecretValue(std::string_view(buf.data(), n));
}

Status SetFromStdin(Context* ctx, const std::string& name) {
  // A bad name is refused before the workspace is looked for.
  KEEL_RETURN_IF_ERROR(app::ValidateSecretName(name));
  KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
  KEEL_RETURN_IF_ERROR(app::SetSecret(*rt, name, [&name] { return ReadSecretValue(name); }));
  std::cout << "secret " << name << " set\n";
  return OkStatus();
}

}  // namespace

void RegisterSecretCommands(CLI::App& app, Context* ctx) {
  auto* sec = app.add_subcommand(
      "secret",
      "Manage the encrypted vault of credentials (values are read from standard input and "
      "never printed; see docs/vault.md)");
  sec->require_subcommand(1);
  {
    auto* cmd = sec->add_subcommand(
        "set",
        "Set secret NAME to the value on standard input (one trailing newline is stripped; "
        "typed without echo when standard input is a terminal; at most 64 KiB). The value is "
        "never taken from the command line.");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "Secret name: 1-128 characters of A-Z a-z 0-9 _ . -")
        ->required();
    // Extra arguments are caught here rather than by CLI11, whose message would echo them:
    // the most likely extra argument is the value itself.
    cmd->allow_extras();
    cmd->callback([ctx, name, cmd]() {
      if (!cmd->remaining().empty()) {
        std::cerr << "keel: error: `keel secret set` takes only NAME; the value is read from "
                     "standard input, never from the command line (remove the extra "
                  << cmd->remaining().size()
                  << " argument(s); if one was the value, consider "
                     "it exposed in your shell history)\n";
        ctx->exit_code = 64;
        return;
      }
      Run(ctx, [ctx, name]() { return SetFromStdin(ctx, *name); })();
    });
  }

  {
    auto* cmd = sec->add_subcommand("list",
                                    "List secret names and when each was last set "
                                    "(never values)");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print a JSON array of {name, updated, updated_us}");
    cmd->callback(Run(ctx, [ctx, json]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto list, app::ListSecrets(*rt));
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& s : list) arr.push_back(app::views::SecretListing(s));
      if (*json) {
        PrintJson(arr);
        return OkStatus();
      }
      for (const auto& s : arr) {
        std::cout << s["name"].get<std::string>() << "  "
                  << s["updated"].get<std::string>().substr(0, 19) << "Z\n";
      }
      if (arr.empty()) std::cerr << "no secrets; add one with `keel secret set NAME`\n";
      return OkStatus();
    }));
  }
  {
    auto* cmd = sec->add_subcommand("rm", "Remove secret NAME (recorded as secret.removed)");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "Secret name")->required();
    cmd->callback(Run(ctx, [ctx, name]() -> Status {
      KEEL_RETURN_IF_ERROR(app::ValidateSecretName(*name));
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_RETURN_IF_ERROR(app::RemoveSecret(*rt, *name));
      std::cout << "secret " << *name << " removed\n";
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli

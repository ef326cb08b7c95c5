// keel debug append (test binary only): a test tool. The crash tests (store/ledger_crashtest.cc)
// run it and SIGKILL it at random moments; a seq printed on standard output is an
// acknowledgement, printed and flushed only after the transaction holding it committed.
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli.h"
#include "core/json.h"
#include "store/artifacts.h"
#include "store/workspace.h"

namespace keel::cli {
namespace {

// Writes one line straight to fd 1 (no stdio buffer to lose in a kill).
Status Acknowledge(int64_t seq) {
  std::string line = std::to_string(seq) + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(1, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "writing to standard output");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return OkStatus();
}

}  // namespace

void RegisterDebugCommands(CLI::App& app, Context* ctx) {
  auto* debug = app.add_subcommand(
      "debug", "Test and diagnostic tools (used by keel's crash tests; not for daily use)");
  debug->require_subcommand(1);
  auto* cmd = debug->add_subcommand(
      "append",
      "Append COUNT ledger entries, BATCH per transaction, printing each entry's seq on its "
      "own line only after its transaction committed (an acknowledgement for crash tests)");
  struct Opts {
    int64_t count = 1;
    int64_t batch = 1;
    std::string kind = "debug.append";
    bool artifacts = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--count", o->count, "Entries to append (default 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--batch", o->batch, "Entries per transaction (default 1)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  cmd->add_option("--kind", o->kind, "Entry kind (default debug.append)");
  cmd->add_flag("--artifacts", o->artifacts,
                "Also store a small unique artifact per entry and reference it from the entry "
                "(its artifact.put entry is not printed)");
  cmd->callback(Run(ctx, [ctx, o]() -> Status {
    if (o->kind.empty()) return InvalidArgument("--kind must not be empty");
    KEEL_ASSIGN_OR_RETURN(std::string dir, ctx->WorkspaceDir());
    KEEL_ASSIGN_OR_RETURN(auto ws,
                          store::Workspace::Open(dir, store::WorkspaceOpenOptions{}, ctx->env));
    const std::string pid = std::to_string(::getpid());
    int64_t done = 0;
    while (done < o->count) {
      int64_t n = std::min(o->batch, o->count - done);
      std::vector<int64_t> seqs;
      KEEL_RETURN_IF_ERROR(ws->Write([&](store::Txn& txn) -> Status {
        seqs.clear();
        for (int64_t i = 0; i < n; ++i) {
          store::NewEntry e;
          e.actor = "system";
          e.kind = o->kind;
          nlohmann::json payload = {{"i", done + i}, {"pid", pid}};
          if (o->artifacts) {
            std::string content = "keel debug append " + pid + " " + std::to_string(done + i) +
                                  " " + std::to_string(txn.now_us()) + "\n";
            store::PutArtifactOptions p;
            p.media_type = "text/plain";
            p.actor = "system";
            KEEL_ASSIGN_OR_RETURN(auto info, store::PutArtifact(txn, content, p));
            e.artifacts.push_back(info.hash);
          }
          e.payload = CanonicalJson(payload);
          KEEL_ASSIGN_OR_RETURN(auto entry, txn.Append(e));
          seqs.push_back(entry.seq);
        }
        return OkStatus();
      }));
      // Committed: only now may the seqs be acknowledged.
      for (int64_t s : seqs) KEEL_RETURN_IF_ERROR(Acknowledge(s));
      done += n;
    }
    return OkStatus();
  }));
}

}  // namespace keel::cli

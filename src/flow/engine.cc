#include "flow/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/crash_point.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "flow/engine_internal.h"
#include "store/runs.h"

namespace keel::flow {

using store::kNeverUs;

std::string ActionToken(const std::string& run_id, const std::string& step_key) {
  return "kt_" + Sha256Hex("keel.action\n" + run_id + "\n" + step_key).substr(0, 40);
}

int64_t BackoffUs(const RetryPolicy& p, int attempt, Random* random) {
  double d = static_cast<double>(p.initial_us) * std::pow(p.multiplier, std::max(0, attempt - 1));
  d = std::min(d, static_cast<double>(p.max_us));
  if (p.jitter > 0 && random != nullptr) d *= 1.0 + p.jitter * (2.0 * random->NextDouble() - 1.0);
  d = std::min(d, static_cast<double>(p.max_us));
  return std::max<int64_t>(0, static_cast<int64_t>(d));
}

Engine::Engine(store::Workspace* ws, Registry registry, EngineOptions opts)
    : impl_(std::make_unique<Impl>()), ws_(ws), reg_(std::move(registry)), opts_(std::move(opts)) {
  impl_->e = this;
  Clock* c = ws_->env().clock;
  impl_->own_id = !opts_.worker_id.empty();
  if (opts_.worker_id.empty()) opts_.worker_id = NewId("wrk", c->NowMicros(), ws_->env().random);
  impl_->executor = opts_.executor;
  if (!impl_->executor) {
    impl_->executor = NewThreadPoolExecutor(opts_.effects);
    impl_->owns_executor = true;
  }
  impl_->defer_full_lanes = !impl_->executor->RunsInline();
  if (opts_.workflows_dir.empty()) opts_.workflows_dir = ws_->dir() + "/workflows";
  if (opts_.batch < 1) opts_.batch = 1;
  impl_->epoch = NewId("ep", c->NowMicros(), ws_->env().random);
  impl_->zones = std::make_unique<ZoneDb>(ws_->env().fs);
  impl_->offset0 = c->NowMicros() - c->MonotonicMicros();
}

Engine::~Engine() {
  // Effects not yet started never start; those running are waited for (they use the
  // borrowed agents and adapters). Their outcomes are not recorded: the outbox rows stay
  // "sending", as after a crash, and the next worker treats them so (Drain avoids this).
  {
    std::lock_guard<std::mutex> l(impl_->done->mu);
    impl_->done->closing = true;
  }
  if (impl_->owns_executor) {
    impl_->executor.reset();  // joins its threads; drops what was queued
  } else {
    std::unique_lock<std::mutex> l(impl_->done->mu);
    impl_->done->cv.wait(l, [&] { return impl_->done->outstanding == 0; });
  }
}

Result<std::shared_ptr<const Workflow>> Engine::LoadFile(const std::string& path) {
  auto text = ws_->env().fs->ReadFile(path, 4 << 20);
  if (!text.ok()) return text.status().WithContext("reading workflow " + path);
  KEEL_ASSIGN_OR_RETURN(auto wf, ParseWorkflow(*text, path));
  KEEL_RETURN_IF_ERROR(Check(*wf));
  return wf;
}

Status Engine::Check(const Workflow& wf) {
  if (IsReservedWorkflowName(wf.name)) {
    return InvalidArgument(wf.source + ":" + std::to_string(wf.name_line) + ": name: '" + wf.name +
                           "' is the name of a `keel run` subcommand (`keel run " + wf.name +
                           "` would run the subcommand, not this workflow); rename " +
                           "it, e.g. '" + wf.name + "_flow'");
  }
  for (const auto& a : wf.agents) {
    if (reg_.agents == nullptr || !reg_.agents->HasAgent(a)) {
      return InvalidArgument(wf.source + ": no agent named '" + a + "' is registered");
    }
  }
  for (const auto& a : wf.adapters) {
    if (!reg_.adapters.count(a)) {
      return InvalidArgument(wf.source + ": no adapter named '" + a + "' is registered");
    }
  }
  // Every action step (nested ones and compensations too: the compiled programs hold them
  // all) names an action its adapter offers.
  for (const auto* prog : {&wf.program, &wf.comp_program}) {
    for (const Op& op : *prog) {
      if (op.type != Op::kStep || op.step == nullptr || op.step->kind != StepKind::kAction)
        continue;
      const Step& s = *op.step;
      auto ad = reg_.adapters.find(s.adapter);
      if (ad == reg_.adapters.end() || ad->second == nullptr) continue;  // reported above
      std::vector<std::string> offered = ad->second->actions();
      if (std::find(offered.begin(), offered.end(), s.action) != offered.end()) continue;
      std::sort(offered.begin(), offered.end());
      std::string list;
      for (const auto& o : offered) list += (list.empty() ? "" : ", ") + o;
      return InvalidArgument(wf.source + ":" + std::to_string(s.line) + ": step '" + s.id +
                             "': action: " + s.adapter + "." + s.action + ": adapter '" +
                             s.adapter + "' has no action '" + s.action +
                             "' (its actions: " + (list.empty() ? "none" : list) + ")");
    }
  }
  return OkStatus();
}

Result<std::shared_ptr<const Workflow>> Engine::Resolve(const std::string& name_or_path) {
  FileSystem* fs = ws_->env().fs;
  if (name_or_path.find('/') != std::string::npos || fs->Exists(name_or_path)) {
    if (fs->Exists(name_or_path)) return LoadFile(name_or_path);
    return NotFound("workflow file " + name_or_path + " does not exist");
  }
  for (const char* ext : {".yaml", ".yml"}) {
    std::string p = opts_.workflows_dir + "/" + name_or_path + ext;
    if (fs->Exists(p)) return LoadFile(p);
  }
  for (const auto& p : ListWorkflowFiles(opts_.workflows_dir)) {
    auto wf = LoadFile(p);
    if (wf.ok() && (*wf)->name == name_or_path) return wf;
  }
  return NotFound("no workflow named '" + name_or_path + "' in " + opts_.workflows_dir +
                  " (and no such file)");
}

std::vector<std::pair<std::string, Result<std::shared_ptr<const Workflow>>>>
Engine::ListWorkflows() {
  std::vector<std::pair<std::string, Result<std::shared_ptr<const Workflow>>>> out;
  for (const auto& p : ListWorkflowFiles(opts_.workflows_dir)) out.emplace_back(p, LoadFile(p));
  return out;
}

Result<std::string> Engine::Start(const std::string& name_or_path, const json& input) {
  KEEL_ASSIGN_OR_RETURN(auto wf, Resolve(name_or_path));
  return Start(wf, input);
}

Result<std::string> Engine::Start(std::shared_ptr<const Workflow> wf, const json& input) {
  std::string id;
  KEEL_RETURN_IF_ERROR(ws_->Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(id, StartInTxn(txn, *wf, input));
    return OkStatus();
  }));
  return id;
}

Result<std::string> Engine::StartInTxn(store::Txn& txn, const Workflow& wf, const json& input) {
  KEEL_ASSIGN_OR_RETURN(auto r, impl_->StartRun(txn, wf, input, "", ""));
  return r.id;
}

Result<TickStats> Engine::Tick() {
  TickStats stats;
  Clock* clock = ws_->env().clock;
  std::set<std::pair<std::string, std::string>> pauses;
  auto read_pauses = [&]() -> Status {
    KEEL_ASSIGN_OR_RETURN(auto pause_list, store::ListPauses(*ws_));
    pauses = {pause_list.begin(), pause_list.end()};
    return OkStatus();
  };
  KEEL_RETURN_IF_ERROR(impl_->ReclaimOwnLeases());
  KEEL_RETURN_IF_ERROR(impl_->RenewLeases());
  // Outcomes of earlier rounds' effects are recorded even when nothing else is due.
  auto finish = [&]() -> Result<TickStats> {
    KEEL_RETURN_IF_ERROR(impl_->RecordDone(&stats));
    stats.in_flight = static_cast<int>(impl_->in_flight.size());
    return stats;
  };
  if (!impl_->busy) {
    // Nothing due: no transaction (an idle worker costs no fsync). A busy worker reads the
    // pauses inside its write transaction instead: one SQLite read transaction less per
    // round, and no switch can land between the read and the steps it governs.
    KEEL_RETURN_IF_ERROR(read_pauses());
    if (pauses.count({"global", ""})) return finish();  // everything waits
    int64_t now = clock->NowMicros();
    int64_t back = impl_->offset0 - (now - clock->MonotonicMicros());
    KEEL_ASSIGN_OR_RETURN(
        auto due, store::DueRuns(*ws_, now + std::max<int64_t>(0, back), now, opts_.worker_id,
                                 1 + static_cast<int>(impl_->in_flight.size())));
    bool any = false;
    for (const auto& id : due) any = any || !impl_->in_flight.count(id);
    if (!any) {
      KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*ws_));
      for (const auto& sc : scheds) any = any || sc.next_us <= now;
    }
    if (!any) return finish();
  }
  std::vector<Impl::Io> io;
  std::unordered_map<std::string, std::pair<std::string, State>> advanced;
  bool outbox_written = false, comp_progress = false;
  impl_->busy = false;
  // Pipelined: the round is committed and visible when this returns, durable a moment
  // later (store::Workspace::WritePipelined). A run's next round overlaps this round's
  // fsync; nothing leaves the process on its strength before WaitDurable (below, before
  // any I/O; RunUntilIdle and the worker before they report or sleep).
  Status s = ws_->WritePipelined([&](store::Txn& txn) -> Status {
    io.clear();
    advanced.clear();
    impl_->claimed_round = impl_->deferred_round = 0;
    impl_->round_lanes.clear();
    KEEL_RETURN_IF_ERROR(read_pauses());
    if (pauses.count({"global", ""})) return OkStatus();  // nothing written: no commit I/O
    int64_t now = clock->NowMicros();
    // Cron schedules due now start their runs in this same transaction.
    KEEL_RETURN_IF_ERROR(impl_->FireSchedules(txn, pauses, now, &stats));
    // When the wall clock went back, monotonic deadlines of this process are looked at too.
    int64_t back = impl_->offset0 - (now - clock->MonotonicMicros());
    int64_t bound = now + std::max<int64_t>(0, back);
    // Runs whose effect is in flight may come back (a lease that ran out before its
    // renewal): they are skipped, and the query asks for that many more.
    KEEL_ASSIGN_OR_RETURN(auto ids,
                          store::DueRuns(*ws_, bound, now, opts_.worker_id,
                                         opts_.batch + static_cast<int>(impl_->in_flight.size())));
    int taken = 0;
    for (const auto& id : ids) {
      if (impl_->in_flight.count(id) || taken == opts_.batch) continue;
      ++taken;
      KEEL_ASSIGN_OR_RETURN(auto rr, LoadRun(*ws_, id));
      if (!rr) continue;
      Run& r = *rr;
      const Run before = r;
      KEEL_ASSIGN_OR_RETURN(State st, impl_->ParseState(r));
      KEEL_ASSIGN_OR_RETURN(auto wf, impl_->Version(r.version));
      bool changed = false;
      if (r.status == RunStatus::kRunning) {
        bool was_comp = st.compensating;
        KEEL_ASSIGN_OR_RETURN(changed,
                              impl_->Advance(txn, r, st, *wf, pauses, &io, &outbox_written));
        if (was_comp && st.compensating && st.ci > 0) comp_progress = true;
        if (changed) ++stats.steps;
      } else if (r.status == RunStatus::kWaiting) {
        bool fired = false;
        int64_t before = r.due_us;
        KEEL_ASSIGN_OR_RETURN(changed, impl_->Due(txn, r, st, *wf, &fired));
        if (fired) ++stats.timers;
        changed = changed || r.due_us != before;
        // A run its deadline woke takes its next step in this same round: one commit and
        // one read of the run instead of two. I/O still waits for this commit.
        if (fired && r.status == RunStatus::kRunning) {
          KEEL_ASSIGN_OR_RETURN(bool moved,
                                impl_->Advance(txn, r, st, *wf, pauses, &io, &outbox_written));
          if (moved) ++stats.steps;
        }
      } else {
        r.due_us = kNeverUs;  // terminal: nothing is due
        changed = true;
      }
      if (changed) {
        r.state = st.Dump();
        KEEL_RETURN_IF_ERROR(WriteRun(txn, r, &before));
        // Exactly the text just written (a state left unwritten may differ from its text).
        if (r.status == RunStatus::kRunning)
          advanced.emplace(r.id, std::make_pair(r.state, std::move(st)));
      }
    }
    KEEL_CRASH_POINT("step.result.before_commit");
    return OkStatus();
  });
  KEEL_RETURN_IF_ERROR(s);
  impl_->parsed = std::move(advanced);
  impl_->busy = stats.steps > 0 || stats.timers > 0 || stats.schedules > 0;
  stats.deferred = impl_->deferred_round;
  if (outbox_written) {
    KEEL_CRASH_POINT("outbox.insert.after_commit");
    KEEL_CRASH_POINT("outbox.claim.after_commit");
  }
  if (stats.timers > 0) KEEL_CRASH_POINT("timer.fired.before_step_start");
  if (comp_progress) KEEL_CRASH_POINT("compensation.mid");
  if (!io.empty()) {
    // No effect starts before its outbox row and lease are durable.
    KEEL_RETURN_IF_ERROR(ws_->WaitDurable());
    // Phase B: the effects, off this thread (or here, with an inline executor).
    KEEL_RETURN_IF_ERROR(impl_->SubmitAll(&io));
  }
  // Phase C: the outcomes performed by now, in one transaction.
  return finish();
}

Result<int64_t> Engine::RunUntilIdle(int64_t max_ticks) {
  int64_t total = 0;
  for (int64_t i = 0; i < max_ticks; ++i) {
    KEEL_ASSIGN_OR_RETURN(TickStats t, Tick());
    total += t.steps;
    if (t.progressed()) continue;
    if (impl_->in_flight.empty()) break;
    // Only effects in flight: wait for one to end (or for a lease to need renewing).
    KEEL_ASSIGN_OR_RETURN(int64_t wake, NextWakeUs());
    Sleep(std::clamp<int64_t>(wake - ws_->env().clock->NowMicros(), 0, 100000));
  }
  KEEL_RETURN_IF_ERROR(WaitDurable());
  return total;
}

Status Engine::Drain() {
  while (!impl_->in_flight.empty()) {
    TickStats unused;
    KEEL_RETURN_IF_ERROR(impl_->RenewLeases());
    KEEL_RETURN_IF_ERROR(impl_->RecordDone(&unused));
    if (impl_->in_flight.empty()) break;
    KEEL_ASSIGN_OR_RETURN(int64_t wake, NextWakeUs());
    Sleep(std::clamp<int64_t>(wake - ws_->env().clock->NowMicros(), 0, 100000));
  }
  return WaitDurable();
}

int Engine::InFlight() const {
  return static_cast<int>(impl_->in_flight.size());
}

void Engine::Sleep(int64_t us) {
  if (us <= 0) return;
  if (impl_->in_flight.empty()) {
    ws_->env().clock->SleepMicros(us);
    return;
  }
  Impl::Done& d = *impl_->done;
  std::unique_lock<std::mutex> l(d.mu);
  d.cv.wait_for(l, std::chrono::microseconds(us), [&] { return !d.effects.empty(); });
}

Status Engine::WaitDurable() {
  return ws_->WaitDurable();
}

Result<int64_t> Engine::NextWakeUs() {
  KEEL_ASSIGN_OR_RETURN(int64_t due, store::NextDueUs(*ws_));
  KEEL_ASSIGN_OR_RETURN(auto scheds, store::ListSchedules(*ws_));
  for (const auto& s : scheds) due = std::min(due, s.next_us);
  for (const auto& [id, fx] : impl_->in_flight) due = std::min(due, impl_->RenewAt(*fx));
  return due;
}

}  // namespace keel::flow

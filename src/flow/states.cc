#include "flow/states.h"

#include <array>
#include <string>
#include <utility>

namespace keel::flow {

namespace {

// One table per enum, in enum order: Word indexes it, Parse searches it. The words are
// stored in workspaces: never change one, only add.
template <class E, size_t N>
using Words = std::array<std::pair<E, std::string_view>, N>;

constexpr Words<RunStatus, 5> kRunStatus{{{RunStatus::kRunning, "running"},
                                          {RunStatus::kWaiting, "waiting"},
                                          {RunStatus::kCompleted, "completed"},
                                          {RunStatus::kFailed, "failed"},
                                          {RunStatus::kCanceled, "canceled"}}};
constexpr Words<WaitKind, 8> kWaitKind{{{WaitKind::kNone, ""},
                                        {WaitKind::kTimer, "timer"},
                                        {WaitKind::kEvent, "event"},
                                        {WaitKind::kApproval, "approval"},
                                        {WaitKind::kChild, "child"},
                                        {WaitKind::kUncertain, "uncertain"},
                                        {WaitKind::kHuman, "human"},
                                        {WaitKind::kPaused, "paused"}}};
constexpr Words<OutboxState, 5> kOutboxState{{{OutboxState::kPending, "pending"},
                                              {OutboxState::kSending, "sending"},
                                              {OutboxState::kDone, "done"},
                                              {OutboxState::kFailed, "failed"},
                                              {OutboxState::kUncertain, "uncertain"}}};
constexpr Words<ItemKind, 3> kItemKind{{{ItemKind::kApproval, "approval"},
                                        {ItemKind::kUncertain, "uncertain"},
                                        {ItemKind::kNeedsHuman, "needs_human"}}};
constexpr Words<ItemStatus, 5> kItemStatus{{{ItemStatus::kPending, "pending"},
                                            {ItemStatus::kApproved, "approved"},
                                            {ItemStatus::kRejected, "rejected"},
                                            {ItemStatus::kExpired, "expired"},
                                            {ItemStatus::kCanceled, "canceled"}}};

template <class E, size_t N>
constexpr bool InEnumOrder(const Words<E, N>& words) {
  for (size_t i = 0; i < N; ++i) {
    if (static_cast<size_t>(words[i].first) != i) return false;
  }
  return true;
}
static_assert(InEnumOrder(kRunStatus) && InEnumOrder(kWaitKind) && InEnumOrder(kOutboxState) &&
              InEnumOrder(kItemKind) && InEnumOrder(kItemStatus));

template <class E, size_t N>
std::string_view WordOf(const Words<E, N>& words, E e) {
  return words[static_cast<size_t>(e)].second;
}

template <class E, size_t N>
Result<E> Parse(const Words<E, N>& words, std::string_view word, const char* column) {
  for (const auto& [e, w] : words) {
    if (w == word) return e;
  }
  std::string known;
  for (const auto& [e, w] : words) {
    if (!w.empty()) known += (known.empty() ? "" : ", ") + std::string(w);
  }
  return DataLoss(std::string(column) + " '" + std::string(word) +
                  "' is not a state this keel knows (" + known +
                  "): the row is damaged or was written by a newer keel");
}

}  // namespace

std::string_view Word(RunStatus s) {
  return WordOf(kRunStatus, s);
}
std::string_view Word(WaitKind k) {
  return WordOf(kWaitKind, k);
}
std::string_view Word(OutboxState s) {
  return WordOf(kOutboxState, s);
}
std::string_view Word(ItemKind k) {
  return WordOf(kItemKind, k);
}
std::string_view Word(ItemStatus s) {
  return WordOf(kItemStatus, s);
}

Result<RunStatus> ParseRunStatus(std::string_view word) {
  return Parse(kRunStatus, word, "run status");
}
Result<WaitKind> ParseWaitKind(std::string_view word) {
  return Parse(kWaitKind, word, "run wait kind");
}
Result<OutboxState> ParseOutboxState(std::string_view word) {
  return Parse(kOutboxState, word, "outbox state");
}
Result<ItemKind> ParseItemKind(std::string_view word) {
  return Parse(kItemKind, word, "operator item kind");
}
Result<ItemStatus> ParseItemStatus(std::string_view word) {
  return Parse(kItemStatus, word, "operator item status");
}

}  // namespace keel::flow

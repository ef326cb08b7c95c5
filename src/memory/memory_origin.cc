// Where text came from: the origins of text keel generated (artifact marks and the
// media-type parameter), and ExtractFrom, which extracts facts only from raw outside text.
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "memory/extract.h"
#include "memory/memory.h"
#include "memory/memory_internal.h"
#include "store/artifacts.h"
#include "store/facts.h"
#include "store/records.h"
#include "store/workspace.h"

namespace keel::memory {

using namespace memory_internal;

namespace {

std::optional<std::string> OriginFromMediaType(const std::string& mt) {
  std::string lower;
  for (char c : mt) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string needle = std::string(kOriginParam) + "=";
  auto pos = lower.find(needle);
  if (pos == std::string::npos) return std::nullopt;
  size_t b = pos + needle.size();
  size_t e = lower.find_first_of("; ", b);
  std::string v = lower.substr(b, e == std::string::npos ? std::string::npos : e - b);
  if (v.empty()) v = "keel";
  return v;
}

}  // namespace

std::string_view OriginName(Origin o) {
  switch (o) {
    case Origin::kModel:
      return "model";
    case Origin::kAgent:
      return "agent";
    case Origin::kSummary:
      return "summary";
    case Origin::kRecall:
      return "recall";
    case Origin::kKeel:
      return "keel";
  }
  return "keel";
}

std::string WithOrigin(std::string_view media_type, Origin o) {
  std::string out(media_type.empty() ? "text/plain" : media_type);
  out += "; ";
  out += kOriginParam;
  out += "=";
  out += OriginName(o);
  return out;
}

Status Memory::MarkArtifactOrigin(store::Txn& txn, const std::string& artifact, Origin origin) {
  auto info = store::GetArtifactInfo(*ws_, artifact);
  if (!info.ok()) return info.status();
  KEEL_ASSIGN_OR_RETURN(auto existing, store::FindArtifactOrigin(txn, artifact));
  if (existing) return OkStatus();
  nlohmann::json payload = {{"origin", std::string(OriginName(origin))}};
  KEEL_ASSIGN_OR_RETURN(
      store::LedgerEntry e,
      txn.Append({"keel", "memory.origin", artifact, "", "", CanonicalJson(payload), {artifact}}));
  return store::InsertArtifactOrigin(txn, artifact, std::string(OriginName(origin)), txn.now_us(),
                                     e.seq);
}

Result<std::optional<std::string>> Memory::ArtifactOrigin(const std::string& artifact) {
  KEEL_ASSIGN_OR_RETURN(auto info, store::GetArtifactInfo(*ws_, artifact));
  KEEL_ASSIGN_OR_RETURN(auto marked, store::FindArtifactOrigin(*ws_, artifact));
  if (marked) return marked;
  return OriginFromMediaType(info.media_type);
}

Result<std::vector<RememberResult>> Memory::ExtractFrom(const std::string& artifact,
                                                        const std::string& subject, const Actor& by,
                                                        bool free_subject) {
  KEEL_RETURN_IF_ERROR(ValidateSubject(subject));
  if (!free_subject) {
    // Checked again for each fact inside RememberAll's transaction; this one fails fast,
    // and also when the text yields no facts.
    auto record = store::GetRecord(*ws_, subject);
    if (record.status().code() == StatusCode::kNotFound) return UnknownSubject(subject);
    if (!record.ok()) return record.status();
  }
  KEEL_ASSIGN_OR_RETURN(auto origin, ArtifactOrigin(artifact));
  if (origin) {
    return FailedPrecondition("artifact " + artifact + " holds text keel generated (origin " +
                              *origin +
                              "); facts are extracted only from raw outside text, never "
                              "from model output, summaries or recalled facts");
  }
  KEEL_ASSIGN_OR_RETURN(std::string content, store::GetArtifact(*ws_, artifact));
  std::vector<ExtractedFact> extracted = ExtractFacts(content);
  std::vector<NewFact> facts;
  for (const auto& x : extracted) {
    NewFact f;
    f.subject = subject;
    f.text = x.text;
    f.key = x.key;
    f.value = x.value;
    f.confidence = x.confidence;
    f.source_artifact = artifact;
    f.span_begin = static_cast<int64_t>(x.begin);
    f.span_end = static_cast<int64_t>(x.end);
    f.by = by;
    f.free_subject = free_subject;
    facts.push_back(std::move(f));
  }
  if (facts.empty()) return std::vector<RememberResult>();
  return RememberAll(facts);
}

}  // namespace keel::memory

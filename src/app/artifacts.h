// Application services for artifacts: immutable, content-addressed blobs (store/artifacts.h).
// What `keel artifact put|get|show|lineage` do, for every face. Every function that reads an
// artifact takes what an operator typed: a full address or a unique prefix of one (at least
// store::kMinArtifactPrefix hex digits, either case), resolved by
// store::ResolveArtifactPrefix.
//
// Thread-safety: as the Runtime. Errors: the store's (InvalidArgument for text that is not
// an address or prefix, an ambiguous prefix, a bad media type or parent, content over the
// size limit; NotFound for nothing stored under it; DataLoss for damaged content).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "app/runtime.h"
#include "core/status.h"
#include "store/artifacts.h"

namespace keel::app {

// The largest content PutArtifact accepts (a face refuses larger input while reading it).
inline constexpr uint64_t kMaxArtifactBytes = store::kMaxArtifactBytes;
// The shortest prefix of an address accepted for one.
inline constexpr size_t kMinArtifactPrefix = store::kMinArtifactPrefix;

struct PutArtifactRequest {
  std::string content;
  // Where the content came from ("" or "-" for standard input): the media type is guessed
  // from its extension and the name defaults to its last path component.
  std::string source_path;
  std::string media_type;  // empty: guessed
  std::string parent;      // the previous version's full address, if any
  std::string name;        // empty: the source's file name
  std::string actor = "operator";
};
struct PutArtifactResult {
  store::ArtifactInfo info;
  // The content was stored before with other lineage, so the asked-for parent was not
  // recorded (an artifact's parent is fixed when it is first stored).
  bool parent_not_recorded = false;
};
Result<PutArtifactResult> PutArtifact(Runtime& rt, const PutArtifactRequest& req);

// The content, re-hashed (DataLoss if it no longer matches its address).
Result<std::string> GetArtifact(Runtime& rt, const std::string& hash_or_prefix);

struct ArtifactDetail {
  store::ArtifactInfo info;
  std::vector<store::ArtifactInfo> children;  // newer versions (their parent is this one)
};
Result<ArtifactDetail> ShowArtifact(Runtime& rt, const std::string& hash_or_prefix);

// The artifact and its earlier versions, newest first.
Result<std::vector<store::ArtifactInfo>> ArtifactLineage(Runtime& rt,
                                                         const std::string& hash_or_prefix);

}  // namespace keel::app

#include "app/artifacts.h"

#include "store/workspace.h"

namespace keel::app {
namespace {

std::string GuessMediaType(const std::string& path) {
  auto dot = path.find_last_of('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  if (ext == "txt" || ext == "md") return "text/plain";
  if (ext == "html" || ext == "htm") return "text/html";
  if (ext == "json") return "application/json";
  if (ext == "csv") return "text/csv";
  if (ext == "pdf") return "application/pdf";
  if (ext == "eml") return "message/rfc822";
  return "application/octet-stream";
}

}  // namespace

Result<PutArtifactResult> PutArtifact(Runtime& rt, const PutArtifactRequest& req) {
  const bool from_stdin = req.source_path.empty() || req.source_path == "-";
  store::PutArtifactOptions p;
  p.media_type =
      req.media_type.empty() ? GuessMediaType(from_stdin ? "" : req.source_path) : req.media_type;
  p.parent = req.parent;
  p.name = req.name;
  p.actor = req.actor;
  if (p.name.empty() && !from_stdin) {
    auto slash = req.source_path.find_last_of('/');
    p.name = slash == std::string::npos ? req.source_path : req.source_path.substr(slash + 1);
  }
  PutArtifactResult out;
  KEEL_RETURN_IF_ERROR(rt.ws().Write([&](store::Txn& txn) -> Status {
    KEEL_ASSIGN_OR_RETURN(out.info, store::PutArtifact(txn, req.content, p));
    return OkStatus();
  }));
  out.parent_not_recorded = !req.parent.empty() && out.info.parent != req.parent;
  return out;
}

Result<std::string> GetArtifact(Runtime& rt, const std::string& hash_or_prefix) {
  KEEL_ASSIGN_OR_RETURN(std::string hash, store::ResolveArtifactPrefix(rt.ws(), hash_or_prefix));
  return store::GetArtifact(rt.ws(), hash);
}

Result<ArtifactDetail> ShowArtifact(Runtime& rt, const std::string& hash_or_prefix) {
  KEEL_ASSIGN_OR_RETURN(std::string hash, store::ResolveArtifactPrefix(rt.ws(), hash_or_prefix));
  ArtifactDetail d;
  KEEL_ASSIGN_OR_RETURN(d.info, store::GetArtifactInfo(rt.ws(), hash));
  KEEL_ASSIGN_OR_RETURN(d.children, store::ArtifactChildren(rt.ws(), hash));
  return d;
}

Result<std::vector<store::ArtifactInfo>> ArtifactLineage(Runtime& rt,
                                                         const std::string& hash_or_prefix) {
  KEEL_ASSIGN_OR_RETURN(std::string hash, store::ResolveArtifactPrefix(rt.ws(), hash_or_prefix));
  return store::ArtifactLineage(rt.ws(), hash);
}

}  // namespace keel::app

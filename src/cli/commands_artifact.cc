// keel artifact put|get|show|lineage: flags in, one application service called
// (app/artifacts.h), its view printed (text, or --json).
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/artifacts.h"
#include "app/views.h"
#include "cli/cli.h"

namespace keel::cli {
namespace {

using nlohmann::json;
namespace views = app::views;

std::string Str(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// An artifact view (views::ArtifactDetail) for a person.
void PrintArtifact(const json& v) {
  std::cout << Str(v["hash"]) << "\n  media type: " << Str(v["media_type"])
            << "\n  size: " << Str(v["size"]) << " bytes\n  created: " << Str(v["created"])
            << "\n  ledger entry: " << Str(v["ledger_seq"]) << "\n";
  if (!Str(v["name"]).empty()) std::cout << "  name: " << Str(v["name"]) << "\n";
  if (!v["parent"].is_null()) std::cout << "  parent: " << Str(v["parent"]) << "\n";
  for (const auto& c : v["children"]) std::cout << "  newer version: " << Str(c) << "\n";
}

// A lineage (views::Artifact elements, newest first): one version per line.
void PrintLineage(const json& arr) {
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& a = arr[i];
    std::cout << "v" << (arr.size() - i) << "  " << Str(a["hash"]) << "  " << Str(a["media_type"])
              << "  " << Str(a["size"]) << " bytes  " << Str(a["created"]).substr(0, 19) << "Z";
    if (!Str(a["name"]).empty()) std::cout << "  " << Str(a["name"]);
    std::cout << "\n";
  }
}

std::string HashHelp() {
  return "Artifact address (64 hex characters) or a unique prefix of one (at least " +
         std::to_string(app::kMinArtifactPrefix) + ")";
}

}  // namespace

void RegisterArtifactCommands(CLI::App& app, Context* ctx) {
  auto* art = app.add_subcommand("artifact", "Store and read immutable, content-addressed blobs");
  art->require_subcommand(1);
  {
    auto* cmd = art->add_subcommand("put",
                                    "Store FILE (or - for standard input); prints its "
                                    "SHA-256 address");
    auto req = std::make_shared<app::PutArtifactRequest>();
    cmd->add_option("FILE", req->source_path, "File to store, or - for standard input")->required();
    cmd->add_option("--type", req->media_type, "Media type (default: guessed from the extension)");
    cmd->add_option("--parent", req->parent,
                    "Address of the previous version (a stored artifact); content already "
                    "stored keeps the parent it was first stored with");
    cmd->add_option("--name", req->name, "A label (default: the file name)");
    cmd->callback(Run(ctx, [ctx, req]() -> Status {
      KEEL_ASSIGN_OR_RETURN(req->content, ReadInput(req->source_path, app::kMaxArtifactBytes));
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime());
      KEEL_ASSIGN_OR_RETURN(app::PutArtifactResult r, app::PutArtifact(*rt, *req));
      std::cout << r.info.hash << "\n";
      if (r.parent_not_recorded) {
        // Content-addressed: the same bytes were stored before, with other lineage.
        std::cerr << "keel: note: this content was already stored as artifact " << r.info.hash
                  << " with parent " << (r.info.parent.empty() ? "none" : r.info.parent)
                  << "; an artifact's parent is fixed when it is first stored, so --parent "
                  << req->parent << " was not recorded\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = art->add_subcommand("get", "Write the content of artifact HASH to standard output");
    auto hash = std::make_shared<std::string>();
    cmd->add_option("HASH", *hash, HashHelp())->required();
    cmd->callback(Run(ctx, [ctx, hash]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(std::string content, app::GetArtifact(*rt, *hash));
      std::cout.write(content.data(), static_cast<std::streamsize>(content.size()));
      std::cout.flush();
      return OkStatus();
    }));
  }
  {
    auto* cmd = art->add_subcommand("show", "Show artifact HASH's metadata and newer versions");
    auto hash = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("HASH", *hash, HashHelp())->required();
    cmd->add_flag("--json", *as_json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, hash, as_json]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(app::ArtifactDetail d, app::ShowArtifact(*rt, *hash));
      json v = views::ArtifactDetail(d.info, d.children);
      if (*as_json) {
        PrintJson(v);
      } else {
        PrintArtifact(v);
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = art->add_subcommand("lineage",
                                    "Show artifact HASH and its earlier versions, "
                                    "newest first");
    auto hash = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("HASH", *hash, HashHelp())->required();
    cmd->add_flag("--json", *as_json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, hash, as_json]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto rt, ctx->OpenRuntime(true));
      KEEL_ASSIGN_OR_RETURN(auto chain, app::ArtifactLineage(*rt, *hash));
      json arr = json::array();
      for (const auto& a : chain) arr.push_back(views::Artifact(a));
      if (*as_json) {
        PrintJson(arr);
      } else {
        PrintLineage(arr);
      }
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli

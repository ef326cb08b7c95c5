// keel artifact put|get|show|lineage
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "store/artifacts.h"

namespace keel::cli {
namespace {

nlohmann::json InfoJson(const store::ArtifactInfo& a) {
  return {{"hash", a.hash},
          {"size", a.size},
          {"media_type", a.media_type},
          {"parent", a.parent.empty() ? nlohmann::json() : nlohmann::json(a.parent)},
          {"name", a.name},
          {"created", FormatTimeMicros(a.created_us)},
          {"ledger_seq", a.ledger_seq}};
}

void PrintInfo(const store::ArtifactInfo& a) {
  std::cout << a.hash << "\n  media type: " << a.media_type << "\n  size: " << a.size
            << " bytes\n  created: " << FormatTimeMicros(a.created_us)
            << "\n  ledger entry: " << a.ledger_seq << "\n";
  if (!a.name.empty()) std::cout << "  name: " << a.name << "\n";
  if (!a.parent.empty()) std::cout << "  parent: " << a.parent << "\n";
}

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

void RegisterArtifactCommands(CLI::App& app, Context* ctx) {
  auto* art = app.add_subcommand("artifact", "Store and read immutable, content-addressed blobs");
  art->require_subcommand(1);
  {
    auto* cmd = art->add_subcommand("put", "Store FILE (or - for standard input); prints its "
                                           "SHA-256 address");
    struct Opts {
      std::string file, media_type, parent, name;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("file", o->file, "File to store, or - for standard input")->required();
    cmd->add_option("--type", o->media_type, "Media type (default: guessed from the extension)");
    cmd->add_option("--parent", o->parent,
                    "Address of the previous version (a stored artifact); content already "
                    "stored keeps the parent it was first stored with");
    cmd->add_option("--name", o->name, "A label (default: the file name)");
    cmd->callback(Run(ctx, [ctx, o]() -> Status {
      KEEL_ASSIGN_OR_RETURN(std::string content, ReadInput(o->file, store::kMaxArtifactBytes));
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace());
      store::PutArtifactOptions p;
      p.media_type = o->media_type.empty() ? GuessMediaType(o->file) : o->media_type;
      p.parent = o->parent;
      p.name = o->name;
      if (p.name.empty() && o->file != "-") {
        auto slash = o->file.find_last_of('/');
        p.name = slash == std::string::npos ? o->file : o->file.substr(slash + 1);
      }
      store::ArtifactInfo info;
      KEEL_RETURN_IF_ERROR(ws->Write([&](store::Txn& txn) -> Status {
        KEEL_ASSIGN_OR_RETURN(info, store::PutArtifact(txn, content, p));
        return OkStatus();
      }));
      std::cout << info.hash << "\n";
      if (!o->parent.empty() && info.parent != o->parent) {
        // Content-addressed: the same bytes were stored before, with other lineage.
        std::cerr << "keel: note: this content was already stored as artifact " << info.hash
                  << " with parent " << (info.parent.empty() ? "none" : info.parent)
                  << "; an artifact's parent is fixed when it is first stored, so --parent "
                  << o->parent << " was not recorded\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = art->add_subcommand("get", "Write the content of artifact HASH to standard output");
    auto hash = std::make_shared<std::string>();
    cmd->add_option("hash", *hash, "Artifact address (64 hex characters)")->required();
    cmd->callback(Run(ctx, [ctx, hash]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      KEEL_ASSIGN_OR_RETURN(std::string content, store::GetArtifact(*ws, *hash));
      std::cout.write(content.data(), static_cast<std::streamsize>(content.size()));
      std::cout.flush();
      return OkStatus();
    }));
  }
  {
    auto* cmd = art->add_subcommand("show", "Show an artifact's metadata");
    auto hash = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("hash", *hash, "Artifact address")->required();
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, hash, json]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      KEEL_ASSIGN_OR_RETURN(auto info, store::GetArtifactInfo(*ws, *hash));
      KEEL_ASSIGN_OR_RETURN(auto children, store::ArtifactChildren(*ws, *hash));
      if (*json) {
        auto j = InfoJson(info);
        j["children"] = nlohmann::json::array();
        for (const auto& c : children) j["children"].push_back(c.hash);
        std::cout << j.dump(2) << "\n";
      } else {
        PrintInfo(info);
        for (const auto& c : children) std::cout << "  newer version: " << c.hash << "\n";
      }
      return OkStatus();
    }));
  }
  {
    auto* cmd = art->add_subcommand("lineage", "Show an artifact and its earlier versions, "
                                               "newest first");
    auto hash = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("hash", *hash, "Artifact address")->required();
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback(Run(ctx, [ctx, hash, json]() -> Status {
      KEEL_ASSIGN_OR_RETURN(auto ws, ctx->OpenWorkspace(true));
      KEEL_ASSIGN_OR_RETURN(auto chain, store::ArtifactLineage(*ws, *hash));
      if (*json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& a : chain) arr.push_back(InfoJson(a));
        std::cout << arr.dump(2) << "\n";
      } else {
        for (size_t i = 0; i < chain.size(); ++i) {
          std::cout << "v" << (chain.size() - i) << "  " << chain[i].hash << "  "
                    << chain[i].media_type << "  " << chain[i].size << " bytes  "
                    << FormatTimeMicros(chain[i].created_us).substr(0, 19) << "Z";
          if (!chain[i].name.empty()) std::cout << "  " << chain[i].name;
          std::cout << "\n";
        }
      }
      return OkStatus();
    }));
  }
}

}  // namespace keel::cli

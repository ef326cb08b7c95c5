#include "store/repair.h"

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/hash.h"
#include "core/json.h"
#include "store/artifacts.h"
#include "store/checkpoint.h"
#include "store/snapshot.h"
#include "store/sqlite/database.h"
#include "store/sqlite/fts.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sql.h"
#include "store/state.h"
#include "store/workspace.h"

namespace keel::store {
namespace {

constexpr char kConfig[] = "keel.yaml";
constexpr char kDb[] = "keel.db";

// The last image of each row, from the ledger of the attached database `old`.
struct Image {
  bool put = true;
  std::string values;
};

// Rows the images cannot restore (a sealed value changed in the damaged database): the
// repaired ledger records their removal.
struct Lost {
  StateBuilder tombstones;
  std::vector<std::string> rows;  // "secrets SMTP_PASSWORD"
};

std::string KeyWhere(const StateTable& t, const char* alias) {
  std::string w;
  for (int k = 0; k < t.key_cols; ++k) {
    if (k) w += " AND ";
    w += std::string(alias) + "." + t.cols[static_cast<size_t>(k)].name + " = ?";
  }
  return w;
}

// Copies the files of the workspace that are not the database: keel.yaml, keys/,
// checkpoints.log, workflows/ and every intact artifact.
Status CopyFiles(FileSystem* fs, const std::string& src, const std::string& dst,
                 RepairReport* out) {
  for (const char* sub : {"artifacts", "snapshots", "keys", kWorkflowsDir}) {
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dst, sub), kPrivateDirMode));
  }
  auto copy = [&](const std::string& rel) -> Status {
    KEEL_ASSIGN_OR_RETURN(int mode, fs->Mode(JoinPath(src, rel)));
    int m = (mode & 0200) != 0 ? kPrivateFileMode : kPrivateReadOnlyMode;
    return CopyHashing(fs, JoinPath(src, rel), JoinPath(dst, rel), m).status();
  };
  KEEL_RETURN_IF_ERROR(copy(kConfig));
  if (fs->Exists(JoinPath(src, kCheckpointLogFile))) KEEL_RETURN_IF_ERROR(copy(kCheckpointLogFile));
  for (const char* sub : {"keys", kWorkflowsDir}) {
    if (!fs->Exists(JoinPath(src, sub))) continue;
    KEEL_ASSIGN_OR_RETURN(auto names, fs->ListDir(JoinPath(src, sub)));
    for (const std::string& n : names) {
      std::string rel = std::string(sub) + "/" + n;
      if (fs->ListDir(JoinPath(src, rel)).ok()) continue;  // a folder: not keel's
      KEEL_RETURN_IF_ERROR(copy(rel));
    }
  }
  std::string arts = JoinPath(src, "artifacts");
  KEEL_ASSIGN_OR_RETURN(auto subs, fs->ListDir(arts));
  for (const std::string& sub : subs) {
    auto names = fs->ListDir(JoinPath(arts, sub));
    if (!names.ok()) continue;
    for (const std::string& n : *names) {
      if (!IsDigestHex(n) || n.compare(0, 2, sub) != 0) continue;
      std::string rel = "artifacts/" + sub + "/" + n;
      KEEL_RETURN_IF_ERROR(fs->CreateDirs(JoinPath(dst, "artifacts/" + sub), kPrivateDirMode));
      KEEL_ASSIGN_OR_RETURN(FileDigest d, CopyHashing(fs, JoinPath(src, rel), JoinPath(dst, rel),
                                                      kPrivateReadOnlyMode));
      if (d.sha256 != n) {
        KEEL_RETURN_IF_ERROR(fs->RemoveFile(JoinPath(dst, rel)));
        out->notes.push_back("artifact " + n + " is damaged and was not copied");
        continue;
      }
      ++out->artifacts_copied;
    }
    KEEL_RETURN_IF_ERROR(fs->SyncDir(JoinPath(dst, "artifacts/" + sub)));
  }
  for (const char* sub : {"artifacts", "keys", kWorkflowsDir}) {
    KEEL_RETURN_IF_ERROR(fs->SyncDir(JoinPath(dst, sub)));
  }
  return OkStatus();
}

// Writes the rows of every covered table from the images, in one transaction of `db` with
// the damaged database attached as `old`.
Status Rebuild(sql::Db* db, RepairReport* out, Lost* lost) {
  // The last image of every row.
  std::unordered_map<std::string, Image> last;
  std::vector<std::string> order;  // first appearance, so that the rebuild is deterministic
  {
    KEEL_ASSIGN_OR_RETURN(auto st, db->Prepare("SELECT seq, state FROM old.ledger WHERE "
                                               "length(state) > 0 ORDER BY seq"));
    std::vector<StateWrite> writes;
    std::string why;
    for (;;) {
      KEEL_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      if (!ParseState(st->BlobView(1), &writes, &why)) {
        return FailedPrecondition("ledger entry " + std::to_string(st->Int(0)) + ": " + why);
      }
      for (const StateWrite& w : writes) {
        std::string key(w.table);
        key.push_back('\0');
        key.append(w.key);
        auto [it, added] = last.try_emplace(key);
        if (added) order.push_back(key);
        it->second.put = w.put;
        it->second.values.assign(w.values);
      }
    }
  }
  std::vector<StateValue> vals;
  for (const StateTable& t : StateTables()) {
    std::string cols, marks;
    for (const StateColumn& c : t.cols) {
      if (!cols.empty()) cols += ", ", marks += ", ";
      cols += c.name;
      marks += "?";
    }
    for (const LeftOut& l : t.left_out) {
      (cols += ", ") += l.name;
      (marks += ", ") += l.repair_value;
    }
    KEEL_ASSIGN_OR_RETURN(auto ins, db->Prepare(std::string("INSERT INTO main.") + t.name + "(" +
                                                cols + ") VALUES (" + marks + ")"));
    // A column covered by digest comes from the damaged row, if it still matches.
    std::unique_ptr<sql::Stmt> old_row;
    bool digests = false;
    for (const StateColumn& c : t.cols) digests = digests || c.cover == Cover::kDigest;
    if (digests) {
      std::string q = "SELECT ";
      for (size_t i = 0; i < t.cols.size(); ++i) {
        q += (i ? ", o." : "o.") + std::string(t.cols[i].name);
      }
      q += std::string(" FROM old.") + t.name + " AS o WHERE " + KeyWhere(t, "o");
      KEEL_ASSIGN_OR_RETURN(old_row, db->Prepare(q));
    }
    const std::string prefix = std::string(t.name) + '\0';
    int64_t n = 0;
    for (const std::string& key : order) {
      if (key.compare(0, prefix.size(), prefix) != 0) continue;
      const Image& img = last[key];
      if (!img.put) continue;
      if (!ParseValues(img.values, &vals) || vals.size() != t.cols.size()) {
        return FailedPrecondition(std::string("an image of ") + t.name +
                                  " does not have the table's columns");
      }
      bool ok = true;
      if (digests) {
        for (int k = 0; k < t.key_cols; ++k) {
          KEEL_RETURN_IF_ERROR(BindStateValue(old_row.get(), k + 1, vals[static_cast<size_t>(k)]));
        }
        KEEL_ASSIGN_OR_RETURN(bool found, old_row->Step());
        std::string enc;
        for (size_t i = 0; found && i < t.cols.size(); ++i) {
          if (t.cols[i].cover != Cover::kDigest) continue;
          enc.clear();
          PutColumnValue(*old_row, static_cast<int>(i), Cover::kDigest, &enc);
          ok = ok && enc == vals[i].raw;
        }
        ok = ok && found;
        for (size_t i = 0; ok && i < t.cols.size(); ++i) {
          if (t.cols[i].cover != Cover::kDigest) continue;
          // Bind the damaged row's value, which matches the digest.
          sql::ColType ty = old_row->Type(static_cast<int>(i));
          int at = static_cast<int>(i) + 1;
          if (ty == sql::ColType::kBlob) {
            ins->BindBlob(at, old_row->BlobView(static_cast<int>(i)));
          } else if (ty == sql::ColType::kText) {
            ins->Bind(at, old_row->TextView(static_cast<int>(i)));
          } else if (ty == sql::ColType::kInteger) {
            ins->Bind(at, old_row->Int(static_cast<int>(i)));
          } else {
            ins->BindNull(at);
          }
        }
        if (!ok) {
          std::string key = img.values.substr(
              0, vals[static_cast<size_t>(t.key_cols - 1)].raw.data() +
                     vals[static_cast<size_t>(t.key_cols - 1)].raw.size() - img.values.data());
          lost->tombstones.Begin(t.name, false, t.key_cols, t.key_cols);
          lost->tombstones.values()->append(key);
          lost->tombstones.End();
          lost->rows.push_back(std::string(t.name) + " " + ValueText(vals[0]));
          out->notes.push_back(std::string(t.name) + " " + ValueText(vals[0]) +
                               ": its sealed value was changed or removed and is not in the "
                               "ledger (only its digest is); set it again");
          old_row->Reset();
          ins->Reset();
          continue;
        }
      }
      for (size_t i = 0; i < t.cols.size(); ++i) {
        if (t.cols[i].cover == Cover::kDigest) continue;
        KEEL_RETURN_IF_ERROR(BindStateValue(ins.get(), static_cast<int>(i) + 1, vals[i]));
      }
      Status s = ins->Run();
      ins->Reset();
      if (old_row) old_row->Reset();
      KEEL_RETURN_IF_ERROR(s.WithContext(std::string("rebuilding ") + t.name));
      ++n;
    }
    out->rows[t.name] = n;
    if (t.left_out.empty()) continue;
    // Bookkeeping columns from the damaged row where it still exists.
    std::string set = "UPDATE main." + std::string(t.name) + " AS m SET (";
    std::string sel;
    for (size_t i = 0; i < t.left_out.size(); ++i) {
      if (i) set += ", ", sel += ", ";
      set += t.left_out[i].name;
      sel += std::string("o.") + t.left_out[i].name;
    }
    std::string match;
    for (int k = 0; k < t.key_cols; ++k) {
      if (k) match += " AND ";
      const char* c = t.cols[static_cast<size_t>(k)].name;
      match += std::string("o.") + c + " = m." + c;
    }
    set += ") = (SELECT " + sel + " FROM old." + t.name + " AS o WHERE " + match +
           ") WHERE EXISTS (SELECT 1 FROM old." + t.name + " AS o WHERE " + match + ")";
    KEEL_RETURN_IF_ERROR(db->Exec(set));
    if (std::string_view(t.name) == "runs") {
      KEEL_ASSIGN_OR_RETURN(
          int64_t woken,
          db->QueryInt(
              "SELECT count(*) FROM main.runs AS m WHERE status IN ('running', "
              "'waiting') AND NOT EXISTS (SELECT 1 FROM old.runs AS o WHERE o.id = m.id)"));
      if (woken > 0) {
        out->notes.push_back(std::to_string(woken) +
                             " unfinished runs were missing from the damaged database: their "
                             "wake-up times are not on the ledger, so the worker looks at them "
                             "at once (a timer wait among them fires early)");
      }
      KEEL_RETURN_IF_ERROR(db->Exec(
          "UPDATE main.runs SET due_us = 4000000000000000000 WHERE status NOT IN ('running', "
          "'waiting')"));
    }
  }
  // The full-text index is derived: rebuilt from the facts, then the superseded ones
  // removed, as keel keeps it.
  return sql::FtsRebuildFacts(db, "main");
}

}  // namespace

Result<RepairReport> RepairFromLedger(const std::string& src_in, const std::string& dst_in,
                                      const Env& env) {
  FileSystem* fs = env.fs;
  const std::string src = AbsolutePath(src_in), dst = AbsolutePath(dst_in);
  RepairReport out;
  out.dst_dir = dst;
  if (!fs->Exists(JoinPath(src, kConfig))) {
    return NotFound(src + " is not a keel workspace (no keel.yaml)");
  }
  if (fs->Exists(dst)) {
    auto names = fs->ListDir(dst);
    if (!names.ok()) return InvalidArgument(dst + " exists and is not a folder");
    if (!names->empty()) {
      return AlreadyExists(dst + " is not empty; name a new folder for the repaired workspace");
    }
  }
  if (dst == src || dst.rfind(src + "/", 0) == 0) {
    return InvalidArgument("the repaired workspace must be outside " + src);
  }
  // What is wrong, and whether the ledger can be trusted to rebuild from.
  VerifyOptions vo;
  vo.integrity_check = false;
  KEEL_ASSIGN_OR_RETURN(VerifyReport before, VerifyWorkspace(src, vo, env));
  out.damage = before.problems;
  if (before.first_bad_seq != 0) {
    return FailedPrecondition("the ledger itself is damaged (entry " +
                              std::to_string(before.first_bad_seq) + ": " +
                              before.first_bad_reason +
                              "), so it cannot rebuild the state; restore a snapshot with "
                              "`keel restore`");
  }
  for (const std::string& p : before.problems) {
    if (p.rfind("checkpoint", 0) == 0 || p.find("entries no longer match") != std::string::npos ||
        p.rfind("the ledger cannot be read", 0) == 0) {
      return FailedPrecondition("the ledger does not match its signed checkpoints (" + p +
                                "), so it cannot rebuild the state; restore a snapshot with "
                                "`keel restore`");
    }
  }
  const bool created = !fs->Exists(dst);
  Lost lost;
  Status s = [&]() -> Status {
    KEEL_RETURN_IF_ERROR(fs->CreateDirs(dst, kPrivateDirMode));
    KEEL_RETURN_IF_ERROR(CopyFiles(fs, src, dst, &out));
    sql::OpenOptions o;
    o.create = true;
    KEEL_ASSIGN_OR_RETURN(auto db, sql::Db::Open(JoinPath(dst, kDb), o));
    KEEL_RETURN_IF_ERROR(sql::InitNewDatabase(db.get(), kPageSize));
    KEEL_RETURN_IF_ERROR(sql::ApplyConnectionSettings(db.get(), false));
    KEEL_RETURN_IF_ERROR(Migrate(db.get()));
    KEEL_RETURN_IF_ERROR(sql::AttachDatabase(db.get(), JoinPath(src, kDb), "old"));
    // The images reference rows of other tables in any order (an artifact's parent):
    // foreign keys are checked at commit.
    KEEL_RETURN_IF_ERROR(db->Begin());
    KEEL_RETURN_IF_ERROR(sql::DeferForeignKeys(db.get()));
    Status r = [&]() -> Status {
      KEEL_RETURN_IF_ERROR(db->Exec(
          "INSERT INTO main.meta(key, value) SELECT key, value FROM old.meta WHERE key NOT "
          "IN (SELECT key FROM main.meta)"));
      KEEL_RETURN_IF_ERROR(
          db->Exec("INSERT INTO main.ledger(seq, time_us, actor, kind, subject, run_id, step_id, "
                   "payload, artifacts, prev_hash, hash, state) SELECT seq, time_us, actor, "
                   "kind, subject, run_id, step_id, payload, artifacts, prev_hash, hash, state "
                   "FROM old.ledger ORDER BY seq"));
      KEEL_RETURN_IF_ERROR(db->Exec(
          "INSERT INTO main.checkpoints SELECT tree_size, root, time_us, public_key, signature "
          "FROM old.checkpoints"));
      return Rebuild(db.get(), &out, &lost);
    }();
    if (!r.ok()) {
      db->Rollback();
      return r;
    }
    KEEL_RETURN_IF_ERROR(db->Commit());
    KEEL_RETURN_IF_ERROR(sql::DetachDatabase(db.get(), "old"));
    db.reset();
    KEEL_RETURN_IF_ERROR(fs->SyncDir(dst));
    if (lost.rows.empty()) return OkStatus();
    // The repaired ledger says which rows the repair could not restore, so that it
    // verifies and the operator sees why they are gone.
    KEEL_ASSIGN_OR_RETURN(auto ws, Workspace::Open(dst, WorkspaceOpenOptions{}, env));
    return ws->Write([&](Txn& txn) {
      nlohmann::json payload = {{"rows", lost.rows},
                                {"reason",
                                 "a sealed value in the damaged database no longer "
                                 "matched the ledger's digest of it"}};
      return txn
          .AppendImages({"operator", "repair.rows_lost", "", "", "", CanonicalJson(payload), {}},
                        lost.tombstones.Finish())
          .status();
    });
  }();
  if (!s.ok()) {
    if (created) fs->RemoveTree(dst).IgnoreError();
    return s.WithContext("repairing " + src + " into " + dst);
  }
  KEEL_ASSIGN_OR_RETURN(out.verify, VerifyWorkspace(dst, VerifyOptions{}, env));
  return out;
}

}  // namespace keel::store

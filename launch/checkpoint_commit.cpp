#include "launch/checkpoint_commit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "checkpoint/manifest.h"
#include "core/error.h"
#include "core/log.h"
#include "core/file_io.h"

namespace rwkv::launch {

namespace fs = std::filesystem;

namespace {

// The directory entry of a rename is durable only once its parent is synced.
void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  RWKV_CHECK(fd >= 0, dir, ": cannot open the directory to sync it");
  const int rc = ::fsync(fd);
  ::close(fd);
  RWKV_CHECK(rc == 0, dir, ": fsync of the directory failed");
}

// "step_00000120" -> 120, "step_00000120.partial" -> 120, else -1.
int64_t parse_step(const std::string& name) {
  std::string base = name;
  if (base.size() > 8 && base.compare(base.size() - 8, 8, ".partial") == 0) base.resize(base.size() - 8);
  if (base.size() != 13 || base.rfind("step_", 0) != 0) return -1;
  for (size_t i = 5; i < base.size(); ++i)
    if (base[i] < '0' || base[i] > '9') return -1;
  return std::stoll(base.substr(5));
}

struct AckedFile {
  int rank;
  AckFile file;
};

// Steps 1 and 2; returns "" when everything agrees.
std::string verify(const std::string& src, int64_t step, int world_size, const std::vector<AckRecord>& acks,
                   bool verify_hashes) {
  // 1. the acks
  std::vector<bool> seen(static_cast<size_t>(world_size), false);
  std::map<std::string, AckedFile> files;
  for (const AckRecord& a : acks) {
    if (a.rank < 0 || a.rank >= world_size) return str_cat("ack from rank ", a.rank, " outside the world of ", world_size);
    if (!a.ok) return str_cat("rank ", a.rank, " could not write its shard: ", a.error);
    seen[static_cast<size_t>(a.rank)] = true;
    for (const AckFile& f : a.files) {
      auto [it, fresh] = files.emplace(f.name, AckedFile{a.rank, f});
      if (!fresh) return str_cat("file ", f.name, " acked by rank ", it->second.rank, " and by rank ", a.rank);
    }
  }
  for (int r = 0; r < world_size; ++r)
    if (!seen[static_cast<size_t>(r)]) return str_cat("no acknowledgement from rank ", r);
  auto manifest_it = files.find(checkpoint::kManifestName);
  if (manifest_it == files.end())
    return str_cat("no rank acked ", checkpoint::kManifestName, " (rank 0 writes it after gathering the shard hashes)");

  // 2. the files as acked
  for (const auto& [name, acked] : files) {
    const fs::path path = fs::path(src) / name;
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return str_cat(path.string(), ": acked by rank ", acked.rank, " but missing");
    if (size != acked.file.bytes)
      return str_cat(path.string(), ": ", size, " bytes, rank ", acked.rank, " acked ", acked.file.bytes);
    if (verify_hashes || name == checkpoint::kManifestName) {
      const std::string hash = checkpoint::file_xxh3(path.string());
      if (hash != acked.file.xxh3)
        return str_cat(path.string(), ": XXH3 ", hash, ", rank ", acked.rank, " acked ", acked.file.xxh3);
    }
  }
  // ... and as the manifest lists them
  const std::string manifest_path = (fs::path(src) / checkpoint::kManifestName).string();
  checkpoint::Manifest manifest;
  try {
    manifest = checkpoint::Manifest::from_json(rwkv::read_file(manifest_path), manifest_path);
  } catch (const std::exception& e) {
    return e.what();
  }
  if (manifest.step != step) return str_cat(manifest_path, ": says step ", manifest.step, ", the checkpoint is step ", step);
  size_t listed = 0;
  for (const checkpoint::ManifestFile& m : manifest.files) {
    auto it = files.find(m.name);
    if (it == files.end() || m.name == checkpoint::kManifestName)
      return str_cat(manifest_path, ": lists ", m.name, ", which no rank acked");
    const AckedFile& a = it->second;
    if (m.rank != a.rank || m.bytes != a.file.bytes || m.xxh3 != a.file.xxh3)
      return str_cat(manifest_path, ": ", m.name, " is rank ", m.rank, ", ", m.bytes, " bytes, XXH3 ", m.xxh3,
                     "; rank ", a.rank, " acked ", a.file.bytes, " bytes, XXH3 ", a.file.xxh3);
    ++listed;
  }
  if (listed + 1 != files.size()) {
    for (const auto& [name, acked] : files) {
      bool in_manifest = name == checkpoint::kManifestName;
      for (const checkpoint::ManifestFile& m : manifest.files) in_manifest = in_manifest || m.name == name;
      if (!in_manifest) return str_cat(manifest_path, ": does not list ", name, ", acked by rank ", acked.rank);
    }
  }
  return "";
}

}  // namespace

std::string checkpoint_step_dir(const std::string& root, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return (fs::path(root) / name).string();
}

std::string checkpoint_partial_dir(const std::string& root, int64_t step) {
  return checkpoint_step_dir(root, step) + ".partial";
}

bool checkpoint_is_committed(const std::string& root, int64_t step) {
  return fs::exists(fs::path(checkpoint_step_dir(root, step)) / checkpoint::kCommitMarker);
}

void prepare_partial_dir(const std::string& root, int64_t step) {
  const std::string partial = checkpoint_partial_dir(root, step);
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::create_directories(partial, ec);
  RWKV_CHECK(!ec, partial, ": cannot create the checkpoint directory: ", ec.message(),
             "\n  ---> HINT: checkpoint.dir must be writable by the controller and shared with every rank");
}

CommitResult commit_checkpoint(const std::string& root, int64_t step, int world_size,
                               const std::vector<AckRecord>& acks, bool verify_hashes) {
  CommitResult result;
  const std::string final_dir = checkpoint_step_dir(root, step);
  const std::string partial = checkpoint_partial_dir(root, step);
  result.dir = final_dir;
  try {
    // Already committed: a restarted controller redoing a commit it finished.
    // A committed directory is never touched again.
    if (checkpoint_is_committed(root, step)) {
      result.ok = true;
      return result;
    }
    std::string src;
    if (fs::is_directory(partial)) {
      src = partial;
    } else if (fs::is_directory(final_dir)) {
      src = final_dir;  // renamed, marker not yet written
    } else {
      result.error = str_cat("neither ", partial, " nor ", final_dir, " exists");
      return result;
    }
    result.error = verify(src, step, world_size, acks, verify_hashes);
    if (!result.error.empty()) return result;
    if (src == partial) {
      // A final directory without the marker is a leftover: never committed.
      if (fs::exists(final_dir)) {
        fs::remove(fs::path(final_dir) / checkpoint::kCommitMarker);
        fs::remove_all(final_dir);
      }
      fs::rename(partial, final_dir);
      fsync_dir(root);
    }
    rwkv::write_file_atomically((fs::path(final_dir) / checkpoint::kCommitMarker).string(), str_cat(step, "\n"));
    result.ok = true;
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  return result;
}

void remove_stale_checkpoint_dirs(const std::string& root, int64_t below_step) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    const int64_t step = parse_step(name);
    if (step < 0 || step >= below_step || !e.is_directory()) continue;
    const bool partial = name.size() > 8 && name.compare(name.size() - 8, 8, ".partial") == 0;
    if (partial || !fs::exists(e.path() / checkpoint::kCommitMarker)) {
      fs::remove_all(e.path(), ec);
      if (ec) log_warn(e.path().string(), ": cannot remove the stale checkpoint directory: ", ec.message());
    }
  }
}

}  // namespace rwkv::launch

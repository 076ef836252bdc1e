#include "checkpoint/checkpoint_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "checkpoint/slice_region.h"
#include "core/log.h"
#include "core/file_io.h"

namespace rwkv::checkpoint {

namespace fs = std::filesystem;

namespace {

std::string step_dir_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

// "step_00000120" -> 120; anything else (partials, other files) -> -1.
int64_t parse_step_dir(const std::string& name) {
  if (name.size() != 13 || name.rfind("step_", 0) != 0) return -1;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return -1;
  return std::stoll(name.substr(5));
}

void fsync_directory(const std::string& dir) {
  // Durability of the rename: AtomicFileWriter syncs its own directory; a
  // directory rename needs its parent synced as well.
  rwkv::write_file_atomically((fs::path(dir) / ".sync").string(), "");
  rwkv::remove_file_if_exists((fs::path(dir) / ".sync").string());
}

}  // namespace

// ---------------------------------------------------------------- loading

LoadedCheckpoint::LoadedCheckpoint(const std::string& dir, Verify verify) : dir_(dir) {
  RWKV_CHECK(fs::is_directory(dir), dir, ": no such checkpoint directory");
  RWKV_CHECK(fs::exists(fs::path(dir) / kCommitMarker), dir, ": not a committed checkpoint (no ", kCommitMarker,
             " marker: the save never finished)\n  ---> HINT: use an earlier checkpoint, or --resume latest");
  const std::string manifest_path = (fs::path(dir) / kManifestName).string();
  RWKV_CHECK(fs::exists(manifest_path), manifest_path, ": missing, though the checkpoint is marked committed (deleted?)",
             "\n  ---> HINT: the checkpoint cannot be read without it; use an earlier checkpoint");
  manifest_ = Manifest::from_json(rwkv::read_file(manifest_path), manifest_path);
  for (const ManifestFile& f : manifest_.files) {
    const std::string path = (fs::path(dir) / f.name).string();
    RWKV_CHECK(fs::exists(path), path, ": listed in the manifest but missing");
    const uint64_t size = fs::file_size(path);
    RWKV_CHECK(size == f.bytes, path, ": ", size, " bytes, the manifest says ", f.bytes, " (truncated or replaced)");
    if (verify == Verify::WhenRead) continue;
    const std::string hash = file_xxh3(path);
    RWKV_CHECK(hash == f.xxh3, path, ": content hash ", hash, " differs from the manifest's ", f.xxh3,
               " (the file was altered or damaged)");
    verified_files_.insert(f.name);
  }
}

uint64_t LoadedCheckpoint::total_bytes() const {
  uint64_t total = 0;
  for (const ManifestFile& f : manifest_.files) total += f.bytes;
  return total;
}

const SafetensorsFile& LoadedCheckpoint::file(const std::string& name) const {
  for (const auto& [n, f] : files_)
    if (n == name) return *f;
  files_.emplace_back(name, std::make_unique<SafetensorsFile>((fs::path(dir_) / name).string()));
  return *files_.back().second;
}

const ManifestTensor& LoadedCheckpoint::tensor(const std::string& name, const std::string& kind, DType dtype,
                                               size_t rank) const {
  const ManifestTensor* t = manifest_.find(name, kind);
  RWKV_CHECK(t != nullptr, dir_, ": the checkpoint has no ", kind, " '", name,
             "'\n  ---> HINT: it was written for another model shape");
  RWKV_CHECK(t->dtype == dtype && t->shape.size() == rank, dir_, ": ", kind, " '", name, "' is ",
             safetensors_dtype(t->dtype), shape_str(t->shape), ", this run expects ", safetensors_dtype(dtype),
             " of rank ", rank, "\n  ---> HINT: the model config differs from the checkpoint's");
  return *t;
}

const uint8_t* LoadedCheckpoint::slice_data(const ManifestSlice& s, DType dtype) const {
  const SafetensorsFile& f = file(s.file);
  const SafetensorsFile::Entry& e = f.entry(s.key);
  RWKV_CHECK(e.shape == s.shape && e.dtype == dtype, dir_, "/", s.file, ": slice '", s.key, "' is ",
             safetensors_dtype(e.dtype), shape_str(e.shape), ", the manifest says ", safetensors_dtype(dtype),
             shape_str(s.shape));
  const uint8_t* data = f.data_of(e);
  if (verified_slices_.insert(&s).second) {
    bytes_read_ += e.end - e.begin;
    if (!s.xxh3.empty()) {
      const std::string hash = bytes_xxh3(data, e.end - e.begin);
      RWKV_CHECK(hash == s.xxh3, dir_, "/", s.file, ": slice '", s.key, "' has content hash ", hash,
                 ", the manifest says ", s.xxh3, " (the file was altered or damaged)");
    } else if (!verified_files_.count(s.file)) {  // an older checkpoint: the whole file's hash
      const std::string path = (fs::path(dir_) / s.file).string();
      const std::string hash = file_xxh3(path);
      for (const ManifestFile& mf : manifest_.files)
        if (mf.name == s.file)
          RWKV_CHECK(hash == mf.xxh3, path, ": content hash ", hash, " differs from the manifest's ", mf.xxh3,
                     " (the file was altered or damaged)");
      verified_files_.insert(s.file);
    }
  }
  return data;
}

void LoadedCheckpoint::verify_region(const std::string& name, const std::string& kind, const Shape& offset,
                                     const Shape& shape, DType dtype) const {
  const ManifestTensor& t = tensor(name, kind, dtype, shape.size());
  const Box want{offset, shape};
  for (const ManifestSlice& s : t.slices)
    if (overlap_numel(Box{s.offset, s.shape}, want) > 0) slice_data(s, dtype);
}

void LoadedCheckpoint::read_region(const std::string& name, const std::string& kind, const Shape& offset,
                                   Tensor& out) const {
  const ManifestTensor& t = tensor(name, kind, out.dtype(), out.ndim());
  const Box want{offset.empty() ? Shape(out.shape().size(), 0) : offset, out.shape()};
  // Assembled on the host (out may live on a device), zero where nothing is stored.
  Tensor host = out.device().is_cpu() ? out : Tensor::empty(out.shape(), out.dtype());
  std::memset(host.raw_data(), 0, static_cast<size_t>(host.numel()) * dtype_size(host.dtype()));
  int64_t covered = 0;
  for (const ManifestSlice& s : t.slices) {
    const Box stored{s.offset, s.shape};
    if (overlap_numel(stored, want) == 0) continue;
    covered += copy_overlap(slice_data(s, t.dtype), stored, static_cast<uint8_t*>(host.raw_data()), want,
                            dtype_size(t.dtype));
  }
  const int64_t expected = overlap_numel(Box{Shape(t.shape.size(), 0), t.shape}, want);
  RWKV_CHECK(covered == expected, dir_, ": the slices of ", kind, " '", name, "' cover ", covered, " of the ", expected,
             " elements of ", shape_str(want.shape), " at ", shape_str(want.offset),
             " (slices missing or overlapping)");
  if (!out.device().is_cpu()) out.copy_from(host);
}

void LoadedCheckpoint::read_into(const std::string& name, const std::string& kind, Tensor& out) const {
  const ManifestTensor* t = manifest_.find(name, kind);
  if (t != nullptr)
    RWKV_CHECK(t->shape == out.shape(), dir_, ": ", kind, " '", name, "' is ", safetensors_dtype(t->dtype),
               shape_str(t->shape), ", this run expects ", safetensors_dtype(out.dtype()), shape_str(out.shape()), "\n  ---> HINT: the model config differs from the checkpoint's");
  read_region(name, kind, Shape(out.shape().size(), 0), out);
}

// ---------------------------------------------------------------- saving

CheckpointStore::CheckpointStore(std::string root, int64_t keep_last, int64_t keep_every)
    : root_(std::move(root)), keep_last_(keep_last), keep_every_(keep_every) {}

CheckpointStore::~CheckpointStore() {
  if (worker_.joinable()) worker_.join();
}

std::string CheckpointStore::path_for(int64_t step) const { return (fs::path(root_) / step_dir_name(step)).string(); }

std::string CheckpointStore::save(const SaveRequest& request) {
  fs::remove_all(path_for(request.step) + ".partial");  // left by a killed save: never committed, so never trusted
  write_partial(request);
  return commit_partial(request.step);
}

std::vector<std::string> CheckpointStore::write_partial(const SaveRequest& request) {
  std::vector<std::string> files = write_rank_shard(request);
  write_manifest(request);
  files.push_back(kManifestName);
  return files;
}

namespace {
std::string rank_file(int rank, const char* extension) {
  char name[48];
  std::snprintf(name, sizeof name, "rank%05d.%s", rank, extension);
  return name;
}
}  // namespace

std::vector<std::string> CheckpointStore::write_rank_shard(const SaveRequest& request) {
  const std::string partial = path_for(request.step) + ".partial";
  fs::create_directories(partial);
  // Every rank writes a file, a data-parallel replica an empty one, so that
  // the manifest names every rank (the controller checks that).
  const std::string file = rank_file(request.rank, "safetensors");
  NamedTensors shard;
  Manifest part;  // this rank's tensors and file; merged by write_manifest
  std::set<std::string> keys;
  for (const CheckpointTensor& t : request.tensors) {
    const Shape global = t.global_shape.empty() ? t.tensor.shape() : t.global_shape;
    const Shape offset = t.offset.empty() ? Shape(t.tensor.shape().size(), 0) : t.offset;
    // "adam_m/blocks.0.att.key.weight"; a rank holding several boxes of one
    // tensor (ZeRO-1 shards) names the later ones by where they start.
    std::string key = t.kind + "/" + t.name;
    if (!keys.insert(key).second) {
      key.append("@").append(shape_str(offset));
      RWKV_CHECK(keys.insert(key).second, "checkpoint: ", t.kind, " '", t.name, "' is given twice at ", shape_str(offset));
    }
    shard.emplace_back(key, t.tensor);
    const Tensor host = t.tensor.is_cpu() ? t.tensor : t.tensor.to(Device::cpu());
    const std::string hash = bytes_xxh3(host.raw_data(), static_cast<size_t>(host.numel()) * dtype_size(host.dtype()));
    part.tensors.push_back({t.name, t.kind, t.tensor.dtype(), global, {{file, key, offset, t.tensor.shape(), hash}}});
  }
  const std::string shard_path = (fs::path(partial) / file).string();
  write_safetensors(shard_path, shard, {{"step", std::to_string(request.step)}, {"rank", std::to_string(request.rank)}});
  part.files.push_back({file, request.rank, static_cast<uint64_t>(fs::file_size(shard_path)), file_xxh3(shard_path)});
  const std::string part_name = rank_file(request.rank, "json");
  rwkv::write_file_atomically((fs::path(partial) / part_name).string(), part.to_json());
  return {file};  // the part is an intermediate of write_manifest, not part of the checkpoint
}

void CheckpointStore::write_manifest(const SaveRequest& request) {
  const std::string partial = path_for(request.step) + ".partial";
  Manifest manifest;
  manifest.step = request.step;
  manifest.tokens = request.tokens;
  manifest.layout = request.layout;
  manifest.config_yaml = request.config_yaml;
  manifest.config_digest = request.config_digest;
  for (int r = 0; r < request.world; ++r) {
    const std::string part_path = (fs::path(partial) / rank_file(r, "json")).string();
    if (!fs::exists(part_path)) continue;  // a replica that wrote nothing
    const Manifest part = Manifest::from_json(rwkv::read_file(part_path), part_path);
    manifest.files.insert(manifest.files.end(), part.files.begin(), part.files.end());
    for (const ManifestTensor& t : part.tensors) {
      ManifestTensor* existing = nullptr;
      for (ManifestTensor& m : manifest.tensors)
        if (m.name == t.name && m.kind == t.kind) existing = &m;
      if (existing) {
        RWKV_CHECK(existing->shape == t.shape && existing->dtype == t.dtype, part_path, ": ", t.kind, " '", t.name,
                   "' has global shape ", shape_str(t.shape), ", another rank says ", shape_str(existing->shape));
        existing->slices.insert(existing->slices.end(), t.slices.begin(), t.slices.end());
      } else {
        manifest.tensors.push_back(t);
      }
    }
  }
  RWKV_CHECK(!manifest.files.empty(), partial, ": no rank wrote a shard");
  rwkv::write_file_atomically((fs::path(partial) / kManifestName).string(), manifest.to_json());
}

std::string CheckpointStore::commit_partial(int64_t step) {
  const std::string final_dir = path_for(step), partial = final_dir + ".partial";
  // 3. the directory takes its final name (an uncommitted one of the same step is stale)
  fs::remove_all(final_dir);
  fs::rename(partial, final_dir);
  fsync_directory(root_);
  // 4. commit
  rwkv::write_file_atomically((fs::path(final_dir) / kCommitMarker).string(), std::to_string(step) + "\n");
  apply_retention();
  return final_dir;
}

void CheckpointStore::save_async(SaveRequest request) { start_worker(std::move(request), true); }

void CheckpointStore::write_rank_shard_async(SaveRequest request) { start_worker(std::move(request), false); }

void CheckpointStore::start_worker(SaveRequest request, bool whole_save) {
  wait();
  // The snapshot, into host buffers kept from the previous save when the
  // tensors are the same (a fresh allocation costs page faults, not just the copy).
  if (staging_.size() != request.tensors.size()) staging_.assign(request.tensors.size(), Tensor());
  for (size_t i = 0; i < request.tensors.size(); ++i) {
    Tensor& buffer = staging_[i];
    const Tensor& live = request.tensors[i].tensor;
    if (!buffer.defined() || buffer.shape() != live.shape() || buffer.dtype() != live.dtype())
      buffer = Tensor::empty(live.shape(), live.dtype());
    buffer.copy_from(live);
    request.tensors[i].tensor = buffer;
  }
  worker_done_ = false;
  worker_ = std::thread([this, whole_save, request = std::move(request)] {
    try {
      if (whole_save) {
        const std::string dir = save(request);
        log_info("checkpoint: step ", request.step, " committed at ", dir, " (background)");
      } else {
        write_rank_shard(request);
      }
    } catch (...) {
      worker_error_ = std::current_exception();
    }
    worker_done_ = true;
  });
}

void CheckpointStore::wait() {
  if (worker_.joinable()) worker_.join();
  if (worker_error_) {
    std::exception_ptr e = worker_error_;
    worker_error_ = nullptr;
    std::rethrow_exception(e);
  }
}

std::vector<int64_t> CheckpointStore::committed_steps() const {
  std::vector<int64_t> steps;
  if (!fs::is_directory(root_)) return steps;
  for (const fs::directory_entry& e : fs::directory_iterator(root_)) {
    const int64_t step = parse_step_dir(e.path().filename().string());
    if (step >= 0 && e.is_directory() && fs::exists(e.path() / kCommitMarker)) steps.push_back(step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::optional<LoadedCheckpoint> CheckpointStore::load_latest() const {
  std::vector<int64_t> steps = committed_steps();
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    try {
      return LoadedCheckpoint(path_for(*it));
    } catch (const Error& e) {
      log_warn("checkpoint ", path_for(*it), " cannot be used: ", e.what(), "; trying the previous one");
    }
  }
  return std::nullopt;
}

void CheckpointStore::apply_retention() {
  if (!fs::is_directory(root_)) return;
  // Uncommitted directories of older saves (a killed run) go first.
  for (const fs::directory_entry& e : fs::directory_iterator(root_)) {
    const std::string name = e.path().filename().string();
    const bool partial = name.size() > 8 && name.compare(name.size() - 8, 8, ".partial") == 0;
    const bool unmarked = parse_step_dir(name) >= 0 && !fs::exists(e.path() / kCommitMarker);
    if (e.is_directory() && (partial || unmarked) && name.rfind("step_", 0) == 0) fs::remove_all(e.path());
  }
  if (keep_last_ <= 0) return;
  std::vector<int64_t> steps = committed_steps();
  const size_t keep_from = steps.size() > static_cast<size_t>(keep_last_) ? steps.size() - static_cast<size_t>(keep_last_) : 0;
  for (size_t i = 0; i < keep_from; ++i) {
    if (keep_every_ > 0 && steps[i] % keep_every_ == 0) continue;
    // Remove the marker first: a half-deleted checkpoint is then simply uncommitted.
    fs::remove(fs::path(path_for(steps[i])) / kCommitMarker);
    fs::remove_all(path_for(steps[i]));
  }
}

}  // namespace rwkv::checkpoint

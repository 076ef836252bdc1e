// Checkpoints on disk: save (now or in the background), commit, retention,
// discovery of the latest committed checkpoint, verified loading.
//
// Commit protocol (a killed process never damages an earlier checkpoint, and
// a half-written one is never loaded):
//   1. write every rank's shard into   <dir>/step_00000120.partial/   (each file atomically)
//   2. hash the shards, write manifest.json (atomically)
//   3. rename the directory to         <dir>/step_00000120/
//   4. write the COMMITTED marker (atomically; fsync the directory)
// A directory without COMMITTED is not a checkpoint: loaders skip it and the
// next save removes it. Today one process writes every shard (single rank);
// the multi-rank commit goes through the same steps with a barrier between
// 1 and 2 (and later through the controller).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "checkpoint/manifest.h"
#include "checkpoint/safetensors.h"

namespace rwkv::checkpoint {

struct CheckpointTensor {
  std::string name;  // global reference name
  std::string kind;  // "param", "adam_m", "adam_v"
  Tensor tensor;     // this rank's slice (the whole tensor on a single rank)
  Shape global_shape;  // empty: the tensor is whole
  Shape offset;        // where the slice starts in the global tensor (empty: zeros)
};

struct SaveRequest {
  int rank = 0;        // this rank writes rank<rank>.safetensors (+ its part of the manifest)
  int world = 1;       // ranks in the job (manifest assembly reads their parts)
  int64_t step = 0;
  int64_t tokens = 0;
  std::string config_yaml;
  std::string config_digest;
  ManifestLayout layout;
  std::vector<CheckpointTensor> tensors;
};

// How much of a checkpoint is verified before it is read.
enum class Verify {
  // Now: the commit marker, the manifest, every file's size and XXH3 (rwkv-ckpt
  // verify; a single process that reads everything anyway).
  AllFiles,
  // Now: marker, manifest and every file's presence and size; each slice's
  // hash when it is first read. A rank of a multi-rank resume reads and
  // verifies only the slices its own partition overlaps.
  WhenRead,
};

// A committed checkpoint.
class LoadedCheckpoint {
 public:
  // Throws naming the first problem found (see Verify).
  explicit LoadedCheckpoint(const std::string& dir, Verify verify = Verify::AllFiles);
  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  // Copies the global tensor (name, kind) into out, assembled from its slices;
  // dtype and shape must match.
  void read_into(const std::string& name, const std::string& kind, Tensor& out) const;
  // Copies the box of the global tensor that starts at offset and has out's
  // shape, reading only the stored slices that overlap it. Elements of out
  // past the global tensor's edge (vocabulary padding rows) are set to zero.
  void read_region(const std::string& name, const std::string& kind, const Shape& offset, Tensor& out) const;
  // Reads and verifies the stored slices that box overlaps, copying nothing;
  // throws as read_region would.
  void verify_region(const std::string& name, const std::string& kind, const Shape& offset, const Shape& shape,
                     DType dtype) const;
  // Bytes of stored slices read so far (each slice counted once).
  uint64_t bytes_read() const { return bytes_read_; }
  // Bytes of all the checkpoint's files.
  uint64_t total_bytes() const;

 private:
  const SafetensorsFile& file(const std::string& name) const;
  const ManifestTensor& tensor(const std::string& name, const std::string& kind, DType dtype, size_t rank) const;
  // The slice's bytes, verified on first use (its own hash, or its file's
  // for checkpoints without slice hashes).
  const uint8_t* slice_data(const ManifestSlice& s, DType dtype) const;
  std::string dir_;
  Manifest manifest_;
  mutable std::vector<std::pair<std::string, std::unique_ptr<SafetensorsFile>>> files_;
  mutable std::unordered_set<const ManifestSlice*> verified_slices_;
  mutable std::unordered_set<std::string> verified_files_;
  mutable uint64_t bytes_read_ = 0;
};

class CheckpointStore {
 public:
  // keep_last: committed checkpoints kept (0 = all); keep_every: also keep
  // steps that are multiples of it (0 = none).
  CheckpointStore(std::string root, int64_t keep_last, int64_t keep_every);
  ~CheckpointStore();  // waits for a background save

  // Writes and commits a checkpoint; returns its directory.
  std::string save(const SaveRequest& request);
  // Steps 1-2 only: the shard and the manifest into <root>/step_N.partial/
  // (created if missing, never emptied: with a controller, it prepared the
  // directory and does the commit). Returns the file names written.
  // Single rank: write_rank_shard + write_manifest.
  std::vector<std::string> write_partial(const SaveRequest& request);
  // Multi-rank step 1: this rank's shard and its part of the manifest
  // (rank<r>.json, read by write_manifest); a data-parallel replica writes an
  // empty shard. Returns the shard's file name (what the rank acknowledges).
  std::vector<std::string> write_rank_shard(const SaveRequest& request);
  // Multi-rank step 2, on one rank once every rank's shard is written: the
  // manifest from the parts (their tensors' slices, their files' hashes).
  void write_manifest(const SaveRequest& request);
  // Steps 3-4 and retention: rename step_N.partial and write COMMITTED.
  std::string commit_partial(int64_t step);
  // Copies the tensors to host memory now and writes them on a background
  // thread; the caller may change its tensors as soon as this returns.
  // Errors surface at the next save_async() or wait().
  void save_async(SaveRequest request);
  // Multi-rank step 1 in the background: the snapshot now, write_rank_shard
  // on a thread (the caller coordinates steps 2-4 once every rank is done).
  void write_rank_shard_async(SaveRequest request);
  // Whether no background write is running (never blocks).
  bool background_finished() const { return !worker_.joinable() || worker_done_.load(); }
  // Waits for the background write; rethrows its error.
  void wait();

  std::string path_for(int64_t step) const;
  // Steps of committed checkpoints, ascending.
  std::vector<int64_t> committed_steps() const;
  // The newest committed checkpoint that verifies; a damaged one is reported
  // (log_warn naming the file) and the previous one tried. nullopt: none.
  std::optional<LoadedCheckpoint> load_latest() const;

 private:
  void apply_retention();
  std::string root_;
  int64_t keep_last_, keep_every_;
  void start_worker(SaveRequest request, bool whole_save);
  std::vector<Tensor> staging_;  // host copies of the tensors being written in the background
  std::thread worker_;
  std::atomic<bool> worker_done_{true};
  std::exception_ptr worker_error_;
};

}  // namespace rwkv::checkpoint

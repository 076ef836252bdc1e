// The controller's half of the checkpoint commit protocol (the trainer's
// half: checkpoint/checkpoint_store.h; the whole: docs/controller.md).
//
//   <dir>/step_00000120.partial/   ranks write their shards here; one of them
//                                  (rank 0) also writes manifest.json
//   every rank acks (step, files with bytes and XXH3) to the controller
//   the controller, once every rank of the job has acked:
//     1. checks the acks: one per rank, all ok, file names unique, exactly
//        one manifest.json
//     2. checks the files: each acked file exists with its acked size (and
//        XXH3 with verify_hashes); the manifest's step and file list equal
//        the acks (names, ranks, bytes, hashes)
//     3. renames step_N.partial -> step_N and fsyncs <dir>
//     4. writes step_N/COMMITTED atomically: from here on it is a checkpoint
// Any failed check leaves the directory uncommitted: loaders never see it.
// Every step is idempotent, so a controller that died half way finishes the
// commit on restart from the acks in its database.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "launch/controller_store.h"

namespace rwkv::launch {

std::string checkpoint_step_dir(const std::string& root, int64_t step);     // <root>/step_00000120
std::string checkpoint_partial_dir(const std::string& root, int64_t step);  // <root>/step_00000120.partial
bool checkpoint_is_committed(const std::string& root, int64_t step);

// Makes an empty <root>/step_N.partial/ for the ranks to write into; a stale
// one (from an aborted attempt) is removed first: it was never committed.
void prepare_partial_dir(const std::string& root, int64_t step);

struct CommitResult {
  bool ok = false;
  std::string dir;    // the committed directory
  std::string error;  // why not (names the file or rank)
};

// Runs steps 1-4 above. Never throws for a bad checkpoint: the error says why.
CommitResult commit_checkpoint(const std::string& root, int64_t step, int world_size,
                               const std::vector<AckRecord>& acks, bool verify_hashes);

// Removes uncommitted directories (step_N.partial, or step_N without the
// marker) of steps below `below_step`: leftovers of aborted checkpoints.
void remove_stale_checkpoint_dirs(const std::string& root, int64_t below_step);

}  // namespace rwkv::launch

// Choosing and reading the checkpoint a run resumes from, on any number of ranks.
//
// Every rank reads only the slices its own partition overlaps (the checkpoint
// may come from any other layout), and verifies just those slices' hashes.
// Because ranks read different bytes, one rank may find damage the others do
// not see: the ranks agree (one all-reduce) before anyone changes a tensor, so
// either all of them load a checkpoint or all of them fall back to the
// previous one, or all fail with the same error.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_store.h"
#include "core/tensor.h"

namespace rwkv::parallel {
class MpiCommunicator;
}

namespace rwkv::trainer {

// A tensor of this rank to be read from a checkpoint: the box of the global
// tensor (name, kind) that starts at offset and has out's shape.
struct ResumeTarget {
  std::string name;
  std::string kind;  // "param", "adam_m", "adam_v"
  Shape offset;
  Tensor* out = nullptr;
};

struct ResumedCheckpoint {
  std::string dir;
  checkpoint::Manifest manifest;
  uint64_t bytes_read = 0;   // slice bytes this rank read
  uint64_t total_bytes = 0;  // every file of the checkpoint
};

// resume: "auto" (the newest committed checkpoint under store's root that
// every rank can read; damaged ones are reported and skipped), "never", or a
// checkpoint directory (damage there is an error on every rank). world: all
// ranks of the job (nullptr: this process alone). Returns nullopt when there
// is nothing to resume from; fills every target otherwise.
std::optional<ResumedCheckpoint> resume_from_checkpoint(const std::string& resume,
                                                        const checkpoint::CheckpointStore& store,
                                                        const std::vector<ResumeTarget>& targets,
                                                        parallel::MpiCommunicator* world);

}  // namespace rwkv::trainer

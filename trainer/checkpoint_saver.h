// When and how rwkv-train writes checkpoints without a controller: every
// `interval` steps and/or `interval_minutes` minutes and at the end, in the
// foreground or the background, on one rank or many.
//
// Multi-rank commit (CheckpointStore's protocol, coordinated by MPI):
//   rank 0 clears step_N.partial; barrier; every rank writes its shard;
//   once every rank's shard is written, rank 0 assembles the manifest and commits.
// Async: each rank copies its tensors to host memory (the only time training
// waits) and writes its shard on a background thread. MPI is never called from
// that thread: at each later step the ranks agree (one small all-reduce) on
// whether every shard is written, and rank 0 then commits. The next save, and
// the end of training, first finish the one in flight.
#pragma once

#include <cstdint>
#include <string>

#include "checkpoint/checkpoint_store.h"
#include "core/timer.h"

namespace rwkv::parallel {
class MpiCommunicator;
}

namespace rwkv::trainer {

struct SaverSettings {
  int64_t interval_steps = 0;     // 0: not by steps
  double interval_minutes = 0.0;  // 0: not by time
  bool async = false;
};

class CheckpointSaver {
 public:
  // world: every rank of the job (nullptr for one process).
  CheckpointSaver(checkpoint::CheckpointStore& store, SaverSettings settings, parallel::MpiCommunicator* world);

  // Whether a checkpoint is due after completing `completed` steps (last:
  // the final step). Collective when minutes are set (rank 0's clock decides).
  bool due(int64_t completed, bool last);
  // Writes (or starts writing) the checkpoint; collective over the world.
  void save(checkpoint::SaveRequest request);
  // Commits a finished background save; call once per step (collective while one is in flight).
  void poll();
  // Waits for and commits the save in flight (collective).
  void finish();

  double blocked_ms() const { return blocked_ms_; }  // training time spent inside save()
  int64_t saves() const { return saves_; }

 private:
  bool multi_rank() const;
  void barrier();
  // True on every rank once every rank's background write has ended; throws
  // on every rank if any of them failed.
  bool all_written(bool wait);
  void commit_in_flight();

  checkpoint::CheckpointStore& store_;
  SaverSettings settings_;
  parallel::MpiCommunicator* world_;
  int rank_ = 0;
  int world_size_ = 1;
  Timer since_last_;
  checkpoint::SaveRequest in_flight_;  // metadata of the background save (tensors dropped)
  bool has_in_flight_ = false;
  std::string foreground_error_;  // a failed synchronous shard write, until the ranks agree
  Timer in_flight_timer_;
  double blocked_ms_ = 0.0;
  int64_t saves_ = 0;
};

}  // namespace rwkv::trainer

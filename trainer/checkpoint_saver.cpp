#include "trainer/checkpoint_saver.h"

#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "parallel/mpi_comm.h"

namespace rwkv::trainer {

CheckpointSaver::CheckpointSaver(checkpoint::CheckpointStore& store, SaverSettings settings,
                                 parallel::MpiCommunicator* world)
    : store_(store), settings_(settings), world_(world) {
  if (world_ != nullptr) {
    rank_ = world_->rank();
    world_size_ = world_->size();
  }
}

bool CheckpointSaver::multi_rank() const { return world_ != nullptr && world_size_ > 1; }

void CheckpointSaver::barrier() {
  if (multi_rank()) world_->barrier();
}

bool CheckpointSaver::due(int64_t completed, bool last) {
  bool by_time = false;
  if (settings_.interval_minutes > 0) {
    // Clocks differ between ranks: rank 0's decides for all.
    double elapsed = since_last_.seconds() / 60.0;
    if (multi_rank()) {
      Tensor x = Tensor::from_vector<double>({elapsed}, {1});
      world_->broadcast(x, 0);
      elapsed = x.data<double>()[0];
    }
    by_time = elapsed >= settings_.interval_minutes;
  }
  const bool by_steps = settings_.interval_steps > 0 && completed % settings_.interval_steps == 0;
  return last || by_steps || by_time;
}

bool CheckpointSaver::all_written(bool wait) {
  bool finished = store_.background_finished();
  std::string error = std::move(foreground_error_);
  foreground_error_.clear();
  if (wait || finished) {
    try {
      store_.wait();
    } catch (const Error& e) {
      error = e.what();
    }
    finished = true;
  }
  double not_finished = finished ? 0.0 : 1.0, failed = error.empty() ? 0.0 : 1.0;
  if (multi_rank()) {
    Tensor x = Tensor::from_vector<double>({not_finished, failed}, {2});
    world_->all_reduce_sum(x);
    not_finished = x.data<double>()[0];
    failed = x.data<double>()[1];
  }
  if (failed > 0) {
    has_in_flight_ = false;
    if (!error.empty()) RWKV_FAIL("checkpoint: step ", in_flight_.step, ": writing this rank's shard failed: ", error);
    RWKV_FAIL("checkpoint: step ", in_flight_.step, ": writing the shard failed on ", failed,
              " other rank(s) (their messages say why); the previous checkpoint is intact");
  }
  return not_finished == 0;
}

void CheckpointSaver::commit_in_flight() {
  if (rank_ == 0) {
    store_.write_manifest(in_flight_);
    store_.commit_partial(in_flight_.step);
  }
  barrier();  // committed before anyone looks for it
  has_in_flight_ = false;
  if (rank_ == 0)
    log_info("checkpoint: step ", in_flight_.step, " committed by ", world_size_, " ranks (written in the background in ",
             in_flight_timer_.millis(), " ms)");
}

void CheckpointSaver::poll() {
  if (!has_in_flight_) return;
  if (all_written(false)) commit_in_flight();
}

void CheckpointSaver::finish() {
  if (has_in_flight_) {
    all_written(true);
    commit_in_flight();
  }
  store_.wait();
}

void CheckpointSaver::save(checkpoint::SaveRequest request) {
  Timer blocked;
  finish();  // one save in flight at a time
  since_last_.reset();
  ++saves_;
  const int64_t step = request.step;
  if (!multi_rank()) {
    if (settings_.async) {
      store_.save_async(std::move(request));
    } else {
      const std::string dir = store_.save(request);
      log_info("checkpoint: step ", step, " committed at ", dir, " (", blocked.millis(), " ms)");
    }
    blocked_ms_ += blocked.millis();
    return;
  }
  // A directory of the same step left by a killed save is never trusted.
  if (rank_ == 0) std::filesystem::remove_all(store_.path_for(step) + ".partial");
  barrier();
  in_flight_ = request;
  in_flight_.tensors.clear();  // the manifest needs only the metadata
  has_in_flight_ = true;
  in_flight_timer_.reset();
  if (settings_.async) {
    store_.write_rank_shard_async(std::move(request));
  } else {
    try {
      store_.write_rank_shard(request);
    } catch (const Error& e) {
      foreground_error_ = e.what();  // reported on every rank by all_written
    }
    all_written(true);
    commit_in_flight();
  }
  blocked_ms_ += blocked.millis();
}

}  // namespace rwkv::trainer

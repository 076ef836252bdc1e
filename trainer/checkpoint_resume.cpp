#include "trainer/checkpoint_resume.h"

#include "core/error.h"
#include "core/log.h"
#include "parallel/mpi_comm.h"

namespace rwkv::trainer {

namespace {

// The number of ranks whose check failed (this rank's failed: 1 or 0).
int failures_over(parallel::MpiCommunicator* world, bool failed) {
  if (world == nullptr || world->size() == 1) return failed ? 1 : 0;
  Tensor x = Tensor::from_vector<double>({failed ? 1.0 : 0.0}, {1});
  world->all_reduce_sum(x);
  return static_cast<int>(x.data<double>()[0] + 0.5);
}

// Opens dir and verifies every slice the targets overlap; "" when all is well,
// otherwise the first problem.
std::string check_on_this_rank(const std::string& dir, const std::vector<ResumeTarget>& targets,
                               std::optional<checkpoint::LoadedCheckpoint>& opened) {
  try {
    opened.emplace(dir, checkpoint::Verify::WhenRead);
    for (const ResumeTarget& t : targets) opened->verify_region(t.name, t.kind, t.offset, t.out->shape(), t.out->dtype());
    return "";
  } catch (const Error& e) {
    opened.reset();
    return e.what();
  }
}

}  // namespace

std::optional<ResumedCheckpoint> resume_from_checkpoint(const std::string& resume,
                                                        const checkpoint::CheckpointStore& store,
                                                        const std::vector<ResumeTarget>& targets,
                                                        parallel::MpiCommunicator* world) {
  if (resume == "never") return std::nullopt;
  const bool automatic = resume == "auto";
  std::vector<std::string> candidates;
  if (automatic) {
    const std::vector<int64_t> steps = store.committed_steps();
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) candidates.push_back(store.path_for(*it));
  } else {
    candidates.push_back(resume);
  }
  for (const std::string& dir : candidates) {
    std::optional<checkpoint::LoadedCheckpoint> opened;
    const std::string problem = check_on_this_rank(dir, targets, opened);
    const int failed = failures_over(world, !problem.empty());
    if (failed == 0) {
      for (const ResumeTarget& t : targets) opened->read_region(t.name, t.kind, t.offset, *t.out);
      return ResumedCheckpoint{dir, opened->manifest(), opened->bytes_read(), opened->total_bytes()};
    }
    // Every rank takes the same branch: they all saw the same count.
    if (!automatic) {
      if (!problem.empty()) RWKV_FAIL("--resume ", problem);
      RWKV_FAIL("--resume ", dir, ": ", failed, " other rank(s) found this checkpoint damaged (their messages name the file)");
    }
    if (!problem.empty()) log_warn("checkpoint ", dir, " cannot be used: ", problem, "; falling back to the previous one");
  }
  return std::nullopt;
}

}  // namespace rwkv::trainer

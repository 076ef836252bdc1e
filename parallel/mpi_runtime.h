// MPI's lifetime and failure handling for a program started by mpirun.
//
//   int main(int argc, char** argv) {
//     rwkv::parallel::MpiRuntime mpi(&argc, &argv);  // MPI_Init_thread .. MPI_Finalize
//     return rwkv::parallel::run_ranks([&] { ...; return 0; });
//   }
//
// run_ranks turns an exception into a clean end of the whole job, never a hang:
//   - every rank failed (a bad layout or config: all ranks compute the same
//     error): rank 0 prints each distinct message once, naming the ranks that
//     raised it; every rank returns 1 and finalizes normally;
//   - only some ranks failed (the others are typically blocked in a collective
//     waiting for them): after a grace period each failed rank prints its
//     message and MPI_Abort ends every rank of the job with exit code 1.
#pragma once

#include <mpi.h>

#include <functional>

namespace rwkv::parallel {

class MpiRuntime {
 public:
  // MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI;
  // OpenMP threads never do), MPI errors returned as codes (and turned into
  // rwkv::Error by our wrappers) instead of aborting, the log prefixed with the rank.
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();  // MPI_Finalize
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0, size_ = 1;
};

// Throws rwkv::Error "MPI error in <what>: <MPI_Error_string>" unless rc is MPI_SUCCESS.
void check_mpi(int rc, const char* what);

// The ranks sharing this rank's node (MPI_COMM_TYPE_SHARED): local_rank picks
// the GPU, local_size divides the node's cores between the ranks.
struct NodeInfo {
  int local_rank = 0;
  int local_size = 1;
};
NodeInfo node_info(MPI_Comm comm = MPI_COMM_WORLD);

// Runs body on every rank of MPI_COMM_WORLD (collective: every rank calls it)
// and returns its exit code, or 1 after an exception as described above.
// grace_seconds: how long a failed rank waits for the others to fail too
// before it aborts the job; the environment variable RWKV_ABORT_GRACE_S
// overrides it.
int run_ranks(const std::function<int()>& body, double grace_seconds = 5.0);

}  // namespace rwkv::parallel

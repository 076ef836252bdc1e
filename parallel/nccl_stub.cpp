// The NCCL entry points of a build without CUDA or without NCCL: clear errors.
#include "core/error.h"
#include "parallel/nccl_comm.h"

namespace rwkv::parallel {

namespace {
constexpr const char* kHint =
    "\n  ---> HINT: build with -DRWKV_CUDA=ON on a machine with the CUDA toolkit and NCCL "
    "(nccl.h and libnccl), or train on the CPU with the MPI communicator";
}

bool nccl_available() { return false; }

int select_cuda_device(MPI_Comm) { RWKV_FAIL("select_cuda_device: this build has no CUDA/NCCL backend", kHint); }

std::unique_ptr<Communicator> make_nccl_communicator(const MpiCommunicator& group, int) {
  RWKV_FAIL("make_nccl_communicator (", group.name(), "): this build has no NCCL communicator", kHint);
}

}  // namespace rwkv::parallel

// The NCCL communicator: CUDA tensors (f32, bf16 and f64 sums; any dtype for
// the collectives that only move data), for the same groups as the MPI ones.
//
//   int device = select_cuda_device();                       // node-local rank -> GPU
//   auto dp = make_nccl_communicator(groups.dp(), device);   // collective over the dp group
//   dp->all_reduce_sum(grad);                                // enqueued, ordered with the kernels
//
// Bootstrap: group rank 0 creates the ncclUniqueId and broadcasts it over the
// MPI communicator of the same group, then every rank calls ncclCommInitRank.
//
// Streams: NCCL runs on a stream of its own. Each operation first makes that
// stream wait for the compute stream (the kernels' default stream, see
// kernels/cuda/cuda_common.h), and afterwards makes the compute stream wait
// for it, so kernels and communication stay ordered without a host sync.
// synchronize() blocks the host until the communicator's stream is idle.
//
// Determinism: NCCL picks its algorithm (ring, tree) and its summation order
// from the message size and the topology; for a fixed machine, group size and
// NCCL version that choice, and so the result, is the same on every run, and
// every rank receives the same sum. It differs from the MPI communicator's
// rank order (set NCCL_ALGO=Ring to pin the algorithm).
//
// Byte counters: NCCL does not report its traffic; stats() counts the ring
// volumes of comm_volume.h, the nominal bytes of each call.
//
// Send/recv: NCCL has no tags; messages between two ranks match in call order
// and the tag argument is ignored.
//
// Only builds with CUDA and NCCL (RWKV_HAVE_NCCL); elsewhere the functions
// below throw a clear error.
#pragma once

#include <mpi.h>

#include <memory>

#include "parallel/comm.h"
#include "parallel/mpi_comm.h"

namespace rwkv::parallel {

// True when this build has the NCCL communicator.
bool nccl_available();

// The GPU this rank drives: its node-local rank (MPI_COMM_TYPE_SHARED) modulo
// the visible GPU count. Throws when there is no GPU.
int select_cuda_device(MPI_Comm comm = MPI_COMM_WORLD);

// An NCCL communicator over the ranks of `group` (collective over it), on
// GPU `cuda_device`.
std::unique_ptr<Communicator> make_nccl_communicator(const MpiCommunicator& group, int cuda_device);

}  // namespace rwkv::parallel

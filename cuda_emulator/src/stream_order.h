// CUDA emulator: checks that work on different streams is ordered where it
// touches the same memory.
//
// The emulator runs every stream synchronously, which is one legal schedule;
// a GPU may run two streams' work in any interleaving their events allow. So
// a missing cudaStreamWaitEvent (the NCCL stream reading gradients that the
// compute stream has not finished, the compute stream updating weights the
// all-reduce still reads) gives right numbers here and wrong ones on a GPU.
// This checker finds those: each stream has a vector clock (how far into
// every other stream it is known to be ordered after: through events it
// waited for, and through what the host had synchronised before it enqueued
// work), and each operation's device accesses are compared with the last
// accesses of other streams. An access that conflicts (at least one writes)
// with one that is not ordered before it is reported and counted, and the
// process then exits with status 70 (RWKV_CUDA_EMULATOR_RACES=report: only
// report), so a race fails the test that made it.
//
// Accesses are what an operation names: a kernel's pointer arguments (a
// point: const pointers read, others write, since kernels do not say how far
// they reach), a copy's, memset's, GEMM's or collective's byte ranges. A point
// conflicts with a range holding it or an equal point. Kernels that touch a
// range through a pointer to its start are therefore seen; a kernel that
// reaches into a range from a pointer below it is not (an accepted gap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "cuda_runtime_api.h"

namespace cuda_emulator {

struct Access {
  const void* begin = nullptr;
  size_t bytes = 0;  // 0: a point (a kernel's pointer argument)
  bool write = false;
};

// A stream's identity for the checker: the null stream is the current
// device's default stream.
int stream_id(cudaStream_t stream);
void register_stream(cudaStream_t stream, int device);

// Checks an operation's accesses on `stream` against earlier accesses of the
// other streams, reports the unordered conflicts (naming `what`), then
// records them as this stream's latest.
void order_operation(cudaStream_t stream, const char* what, const Access* accesses, size_t count);
inline void order_operation(cudaStream_t stream, const char* what, std::initializer_list<Access> accesses) {
  order_operation(stream, what, accesses.begin(), accesses.size());
}

// A copy: the device sides of [dst, dst + dst_bytes) written and
// [src, src + src_bytes) read (host sides are not device memory and ignored).
void order_copy(cudaStream_t stream, const char* what, const void* dst, size_t dst_bytes, const void* src,
                size_t src_bytes);

// Events carry the recording stream's position and knowledge.
void event_recorded(cudaEvent_t event, cudaStream_t stream);
void stream_waits(cudaStream_t stream, cudaEvent_t event);
void event_forgotten(cudaEvent_t event);
// The host waited for a stream (cudaStreamSynchronize, a synchronous copy),
// an event, or a whole device; work it enqueues later is ordered after that.
void host_waited_for_stream(cudaStream_t stream);
void host_waited_for_event(cudaEvent_t event);
void host_waited_for_device(int device);
// The host waited for the default (legacy) stream of `device`.
void host_waited_for_default_stream(int device);

// cudaFree: the memory is gone (later allocations may reuse its addresses),
// and freeing synchronises the device with the host, as in CUDA.
void memory_freed(const void* begin, size_t bytes, int device);

// Unordered conflicts found so far in this process (tests assert on it).
uint64_t stream_races_found();

}  // namespace cuda_emulator

// CUDA emulator: what tests may ask the emulator about a run (only in
// -DRWKV_CUDA=EMULATE builds; RWKV_CUDA_EMULATOR is defined there).
#pragma once

#include <cstdint>

namespace cuda_emulator {

// Operations so far in this process after which the host waited for the
// GPU: synchronous copies to or from the host (cudaMemcpy, cudaMemcpy2D;
// device-to-device ones do not wait),
// cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize, cudaFree
// (which synchronises the device). Each is a point where a GPU's queue runs
// dry while the host catches up, so a training step should have as few as
// its logging needs.
uint64_t host_synchronizations();

// Of those, the ones that found work in flight (enqueued since the previous
// synchronisation): only these stall a GPU. A copy from the host right after
// the host read a result waits for nothing.
uint64_t host_stalls();

// Kernel launches so far in this process.
uint64_t kernel_launches();

}  // namespace cuda_emulator

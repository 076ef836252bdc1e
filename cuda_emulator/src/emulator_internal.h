// What the parts of the CUDA emulator share: emulated device memory (where
// it is, whether host code may touch it now), the current device, and the
// reporting of misuse. Not part of the emulated CUDA API.
#pragma once

#include <cstddef>
#include <string>

#include "cuda_runtime_api.h"

namespace cuda_emulator {

// The number of emulated GPUs (RWKV_CUDA_EMULATOR_DEVICES, default 8) and the
// SMs each reports (RWKV_CUDA_EMULATOR_SMS, default 4: small grids, so the
// grid-stride loops of the kernels take several turns in tests).
int device_count();
int sm_count();

// Counts one host synchronisation (cuda_emulator/inspect.h), a stall when
// device work was enqueued since the last one; afterwards the device counts
// as idle.
void count_host_synchronization();
// Device work was enqueued (every operation the stream checker orders).
void note_device_work();

// The calling thread's current device (cudaSetDevice), 0 until set.
int current_device();

// Emulated device work (kernels, copies, cuBLAS, NCCL) runs one at a time in
// the process and only inside a DeviceAccess: while one is alive, device
// memory is readable and writable; outside, every device allocation is
// PROT_NONE, so host code that dereferences a device pointer faults (and the
// fault handler says so). Re-entrant on one thread.
class DeviceAccess {
 public:
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};

// The device that owns [ptr, ptr + bytes), or -1 when that range is not
// wholly inside one emulated device allocation.
int device_of_range(const void* ptr, size_t bytes);
// Where ptr points, for messages ("4096 bytes into a 65536-byte allocation
// on device 1", "not emulated device memory").
std::string describe_pointer(const void* ptr);

// cudaSuccess when stream (null: the current device's default stream) exists
// and belongs to the current device; otherwise fails with
// cudaErrorInvalidResourceHandle, naming `call`.
cudaError_t check_stream(cudaStream_t stream, const char* call);

// Prints "cuda emulator: <message>" on stderr. Every misuse the emulator
// catches is reported this way before its error code is returned, so a
// failing test shows what was wrong and not just "invalid argument".
void report(const std::string& message);

// Records error as the calling thread's last error (cudaGetLastError) after
// reporting message; returns error.
cudaError_t fail(cudaError_t error, const std::string& message);

}  // namespace cuda_emulator

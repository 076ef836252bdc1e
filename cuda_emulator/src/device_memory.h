// CUDA emulator: emulated device memory. Each cudaMalloc is its own mapping,
// page-aligned, followed by a guard page that is never accessible (a kernel
// that runs past the end of a buffer faults at once). New memory is filled
// with 0xff bytes, a NaN in f32 and bf16, so reading memory nobody wrote
// shows up in the results instead of reading zeros by luck.
#pragma once

#include <cstddef>

namespace cuda_emulator {

// nullptr when the device's budget (RWKV_CUDA_EMULATOR_MEMORY_MIB, default
// 8192 per device) would be exceeded: the out-of-memory paths can be tested.
void* allocate_device_memory(int device, size_t bytes);
// False when ptr is not the start of a live allocation; otherwise the
// allocation's size and device are stored in *bytes and *device.
bool free_device_memory(void* ptr, size_t* bytes, int* device);
// Bytes allocated and the budget of a device.
size_t device_bytes_in_use(int device);
size_t device_memory_budget();

// Makes every allocation accessible (open) or PROT_NONE again (close);
// DeviceAccess calls these under its lock.
void open_device_memory();
void close_device_memory();

// Installs the SIGSEGV handler that explains faults on emulated memory (once).
void install_fault_handler();

}  // namespace cuda_emulator

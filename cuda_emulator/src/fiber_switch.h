// CUDA emulator: the smallest possible switch between fibers (stacks).
//
// ucontext's swapcontext saves and restores the signal mask, a system call
// each way; emulated kernels switch at every warp shuffle of every thread,
// so on x86-64 the switch is a few instructions instead: push the
// callee-saved registers and the FP control words, swap stack pointers, pop.
// Other architectures fall back to ucontext (correct, slower).
#pragma once

#include <cstddef>

namespace cuda_emulator {

// A suspended execution: on x86-64 just its saved stack pointer.
struct FiberContext;

// Prepares `context` to run entry() on [stack, stack + bytes) when first
// switched to. entry must never return; it switches away for the last time.
void make_fiber(FiberContext& context, char* stack, size_t bytes, void (*entry)());
// Saves the running execution in `from` and resumes `to`.
void switch_fiber(FiberContext& from, FiberContext& to);

}  // namespace cuda_emulator

#if defined(__x86_64__)
struct cuda_emulator::FiberContext {
  void* stack_pointer = nullptr;
};
#else
#include <ucontext.h>
struct cuda_emulator::FiberContext {
  ucontext_t context;
};
#endif

#include "fiber_switch.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)

// rwkv_emulator_switch(void** save_sp, void* load_sp), System V AMD64:
// rdi = where to save this stack pointer, rsi = the stack pointer to resume.
// Frame it leaves (low to high): mxcsr (4 bytes), x87 control word (2, padded
// to 8), r15, r14, r13, r12, rbx, rbp, return address.
asm(R"(
    .text
    .globl rwkv_emulator_switch
    .type rwkv_emulator_switch, @function
rwkv_emulator_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size rwkv_emulator_switch, .-rwkv_emulator_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");

extern "C" void rwkv_emulator_switch(void** save_sp, void* load_sp);

namespace cuda_emulator {

void make_fiber(FiberContext& context, char* stack, size_t bytes, void (*entry)()) {
  // The top 16-aligned; entry is "returned into" as if called: after the ret
  // the stack pointer is top - 8, which is 8 mod 16 like at any function entry.
  auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t{15};
  auto* slot = reinterpret_cast<uint64_t*>(top);
  *--slot = 0;                                   // entry's (nonexistent) return address
  *--slot = reinterpret_cast<uint64_t>(entry);  // popped by ret
  for (int i = 0; i < 6; ++i) *--slot = 0;       // rbp, rbx, r12..r15
  *--slot = 0;
  const uint32_t mxcsr = 0x1f80;  // default: all exceptions masked, round to nearest
  const uint16_t x87_control = 0x037f;
  std::memcpy(slot, &mxcsr, sizeof mxcsr);
  std::memcpy(reinterpret_cast<char*>(slot) + 4, &x87_control, sizeof x87_control);
  context.stack_pointer = slot;
}

void switch_fiber(FiberContext& from, FiberContext& to) { rwkv_emulator_switch(&from.stack_pointer, to.stack_pointer); }

}  // namespace cuda_emulator

#else

namespace cuda_emulator {

void make_fiber(FiberContext& context, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&context.context);
  context.context.uc_stack.ss_sp = stack;
  context.context.uc_stack.ss_size = bytes;
  context.context.uc_link = nullptr;
  makecontext(&context.context, entry, 0);
}

void switch_fiber(FiberContext& from, FiberContext& to) { swapcontext(&from.context, &to.context); }

}  // namespace cuda_emulator

#endif

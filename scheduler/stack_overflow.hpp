// Turning a coroutine stack overflow into a clear fatal error.
//
// A fault in a slot's guard page means the coroutine ran off its stack: the
// handler (on an alternate signal stack, since the faulting one is full)
// prints which setting to raise and aborts. Faults elsewhere go to whatever
// handler was installed before ours (faulthandler, the default action).
#pragma once
#include <cstddef>

namespace syncless {

// Installs the process-wide SIGSEGV/SIGBUS handler once; idempotent.
void install_overflow_handler() noexcept;
// Gives the calling thread an alternate signal stack; idempotent per thread.
void ensure_signal_stack() noexcept;

[[noreturn]] void fatal_stack_overflow(std::size_t stack_size) noexcept;

}  // namespace syncless

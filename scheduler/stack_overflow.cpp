#include "stack_overflow.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "stack_pool.hpp"

namespace syncless {

namespace {

struct sigaction previous_segv;
struct sigaction previous_bus;
bool installed = false;

void write_overflow_message(std::size_t stack_size) noexcept {
    char text[320];
    int n = std::snprintf(text, sizeof text,
                          "Fatal error: syncless: a coroutine overflowed its C stack "
                          "(%zu bytes). Raise SYNCLESS_STACK_SIZE (e.g. "
                          "SYNCLESS_STACK_SIZE=32M) or call syncless.set_stack_size() "
                          "before the first coroutine starts.\n",
                          stack_size);
    if (n > 0) {
        ssize_t ignored = write(2, text, static_cast<std::size_t>(n));
        (void)ignored;
    }
}

void on_fault(int sig, siginfo_t* info, void* context) {
    StackPool& pool = StackPool::instance();
    if (pool.is_guard_address(info->si_addr)) {
        write_overflow_message(pool.stats().stack_size);
        // With the default action, so the process ends by SIGABRT (and dumps
        // core where enabled) even if Python installed a handler.
        signal(SIGABRT, SIG_DFL);
        std::abort();
    }
    // Not ours: hand the signal to the previous handler by reinstalling it;
    // returning re-executes the faulting instruction.
    const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction != nullptr) {
            prev.sa_sigaction(sig, info, context);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
        return;
    }
    sigaction(sig, &prev, nullptr);
}

}  // namespace

void install_overflow_handler() noexcept {
    if (installed) {
        return;
    }
    installed = true;
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv);
    sigaction(SIGBUS, &action, &previous_bus);
}

namespace {

// The calling thread's alternate signal stack, unmapped when the thread ends.
struct SignalStack {
    static constexpr std::size_t size = 64 * 1024;
    void* memory = nullptr;
    bool checked = false;
    ~SignalStack() {
        if (memory == nullptr) {
            return;
        }
        stack_t off;
        std::memset(&off, 0, sizeof off);
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, nullptr);
        munmap(memory, size);
    }
};

thread_local SignalStack signal_stack;

}  // namespace

void ensure_signal_stack() noexcept {
    if (signal_stack.checked) {
        return;
    }
    signal_stack.checked = true;
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) {
        return;  // the thread already has one (faulthandler's, for example)
    }
    void* mem = mmap(nullptr, SignalStack::size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return;
    }
    stack_t alt;
    alt.ss_sp = mem;
    alt.ss_size = SignalStack::size;
    alt.ss_flags = 0;
    if (sigaltstack(&alt, nullptr) == 0) {
        signal_stack.memory = mem;
    } else {
        munmap(mem, SignalStack::size);
    }
}

void fatal_stack_overflow(std::size_t stack_size) noexcept {
    write_overflow_message(stack_size);
    std::abort();
}

}  // namespace syncless

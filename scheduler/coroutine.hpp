// A coroutine: a C stack of its own plus its share of the interpreter state.
//
// This is the one switch routine every face uses. It knows nothing of
// greenlet or Stackless names: a face embeds a Coroutine, gives it a body,
// and decides whom to switch to.
#pragma once
#include <Python.h>
#include <boost/context/detail/fcontext.hpp>

#include "interp_state.hpp"
#include "stack_pool.hpp"

namespace syncless {

class ThreadCore;

class Coroutine {
public:
    enum class Status : unsigned char { unstarted, running, suspended, dead };

    // Runs on the coroutine's own stack, after its first switch. It returns
    // the coroutine to continue with once this one is finished; the core
    // then discards this one's stack. It must not let a C++ exception out.
    using Body = Coroutine* (*)(Coroutine* self) noexcept;

    explicit Coroutine(Body body) noexcept : body_(body) {}
    Coroutine(const Coroutine&) = delete;
    Coroutine& operator=(const Coroutine&) = delete;
    ~Coroutine();

    Status status() const noexcept { return status_; }
    bool started() const noexcept { return status_ != Status::unstarted; }
    bool active() const noexcept { return status_ == Status::running || status_ == Status::suspended; }
    bool is_main() const noexcept { return body_ == nullptr; }
    ThreadCore* thread() const noexcept { return thread_; }
    InterpState& state() noexcept { return state_; }
    // Bytes of C stack a suspended coroutine holds (its saved context sits
    // at the deepest point); 0 when it is not suspended.
    std::size_t stack_in_use() const noexcept {
        return status_ == Status::suspended && slot_
                   ? static_cast<std::size_t>(slot_.stack_top - static_cast<char*>(context_))
                   : 0;
    }
    // gr_frame / tasklet.frame: a new reference to the frame object of a
    // suspended coroutine's innermost frame, None when it is not suspended
    // (or has no frame), null with MemoryError when it cannot be made.
    PyObject* suspended_frame() noexcept;
    // Starts with a recursion depth of 0 instead of its starter's (tasklets:
    // a chain of tasklets each started by the one before must not add up).
    void start_at_depth_zero() noexcept { fresh_depth_ = true; }
    // The face object this coroutine belongs to (a greenlet, a tasklet).
    void* owner() const noexcept { return owner_; }
    void set_owner(void* owner) noexcept { owner_ = owner; }

    // Switches from the thread's current coroutine to this one (starting it
    // if unstarted). Returns when some coroutine switches back, with the
    // interpreter state of the caller restored. Returns false (and switches
    // nowhere) with MemoryError set when no stack could be had. This must be
    // of the calling thread, not dead, not current.
    bool switch_to() noexcept;

    // Forgets a suspended coroutine without running it again: for threads
    // that are gone and interpreter shutdown, where unwinding is impossible.
    // Objects referenced only from its frames are leaked.
    void abandon() noexcept;

private:
    friend class ThreadCore;
    static void entry(boost::context::detail::transfer_t from) noexcept;
    bool prepare_start(ThreadCore& core) noexcept;
    [[noreturn]] void finish(Coroutine* next) noexcept;
    bool jump(Coroutine* target, bool dying = false) noexcept;
    void arrived(boost::context::detail::transfer_t from, PyThreadState* tstate) noexcept;

    Body body_;
    void* owner_ = nullptr;
    bool fresh_depth_ = false;
    Status status_ = Status::unstarted;
    ThreadCore* thread_ = nullptr;
    boost::context::detail::fcontext_t context_ = nullptr;
    StackSlot slot_{};
    InterpState state_{};
#if defined(__SANITIZE_ADDRESS__)
    void* asan_fake_stack_ = nullptr;
    const void* asan_bottom_ = nullptr;
    std::size_t asan_size_ = 0;
#endif
};

// Hot per-thread pointers live in the static TLS block: the default model
// for a shared object calls __tls_get_addr on every access.
#define SYNCLESS_STATIC_TLS __attribute__((tls_model("initial-exec")))

extern SYNCLESS_STATIC_TLS thread_local ThreadCore* this_thread_core;

// Per-thread core state: the main coroutine (the thread's own stack) and the
// one running now.
class ThreadCore {
public:
    // The calling thread's core; created on first use.
    static ThreadCore& current_thread() noexcept {
        return this_thread_core != nullptr ? *this_thread_core : create_for_this_thread();
    }
    // The calling thread's core if it exists; never creates one.
    static ThreadCore* current_thread_if_any() noexcept { return this_thread_core; }

    Coroutine& main() noexcept { return main_; }
    Coroutine* current() const noexcept { return current_; }
    // Whoever switched to the running coroutine last (it may be dead now).
    Coroutine* origin() const noexcept { return origin_; }

private:
    friend class Coroutine;
    ThreadCore() noexcept;
    static ThreadCore& create_for_this_thread() noexcept;
    Coroutine main_{nullptr};
    Coroutine* current_ = &main_;
    Coroutine* origin_ = nullptr;
    Coroutine* dying_ = nullptr;  // finished; its stack is freed on arrival
};

}  // namespace syncless

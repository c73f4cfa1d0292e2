// A coroutine: a C stack of its own plus its share of the interpreter state.
//
// This is the one switch routine every face uses. It knows nothing of
// greenlet or Stackless names: a face embeds a Coroutine, gives it a body,
// and decides whom to switch to.
//
// Coroutines form families. A root (a thread's main coroutine, a tasklet)
// heads one; a nested coroutine (a greenlet) joins the family that is running
// when it starts. A family is suspended and resumed as a whole: switching to
// the root of another family continues that family at whichever member ran
// in it last, while a switch to a member of the running family (its root
// included) goes exactly there. So a face whose coroutines are roots
// (tasklets) never sees the nested ones, and a face whose coroutines nest
// (greenlets) sees each root as a thread of its own.
#pragma once
#include <Python.h>
#include <boost/context/detail/fcontext.hpp>

#include "interp_state.hpp"
#include "stack_pool.hpp"

namespace syncless {

class ThreadCore;

// What a face whose coroutines nest (greenlets) keeps for one family.
class FamilyView {
public:
    // The family ends: its root's code is done or the root is discarded, and
    // its nested coroutines can never again be resumed through it. Called
    // with the GIL held while the view is still attached (code may still run
    // in the family). It must detach itself (set_family_view(nullptr))
    // before it returns and before running code that could attach a new
    // view; it may run Python code.
    virtual void family_ended() noexcept = 0;

protected:
    ~FamilyView() = default;
};

class Coroutine {
public:
    enum class Status : unsigned char { unstarted, running, suspended, dead };
    enum class Kind : unsigned char { root, nested };

    // Runs on the coroutine's own stack, after its first switch. It returns
    // the coroutine to continue with once this one is finished; the core
    // then discards this one's stack. It must not let a C++ exception out.
    using Body = Coroutine* (*)(Coroutine* self) noexcept;

    explicit Coroutine(Body body, Kind kind = Kind::root) noexcept
        : body_(body), root_(kind == Kind::root) {}
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

    // A root's family: the member that runs when the family is resumed (the
    // running one while the family runs).
    Coroutine* active_member() const noexcept { return active_; }
    // A root's view by a nesting face; null until that face sets one.
    FamilyView* family_view() const noexcept { return view_; }
    void set_family_view(FamilyView* view) noexcept { view_ = view; }
    // A root whose own code is done ends its family: the view is told (and
    // dropped). Call it where running Python code is safe; finish() and
    // abandon() do it too for a view made after that point.
    void end_family() noexcept {
        if (view_ != nullptr) {
            tell_view_family_ended();
        }
    }
    // For a nesting face letting go of a family that can never run again
    // (its thread is gone) while the root stays with its own face: forgets
    // the view, and abandons the family's active member if it is a nested
    // one (the face may then free it).
    void release_family() noexcept;

    // Switches from the thread's current coroutine to this one (starting it
    // if unstarted), or, for the root of a family other than the running
    // one, to the member that ran last in that family. Returns when some
    // coroutine switches back, with the interpreter state of the caller
    // restored. Returns false (and switches nowhere) with MemoryError set
    // when no stack could be had. This must be of the calling thread, not
    // dead, not current; a nested one must be of the running family or
    // unstarted.
    bool switch_to() noexcept;

    // Forgets a suspended coroutine without running it again: for threads
    // that are gone and interpreter shutdown, where unwinding is impossible.
    // Objects referenced only from its frames are leaked. A root takes its
    // family's suspended active member with it (that one was suspended by a
    // switch of the family, which only resuming the family may return from)
    // and ends the family.
    void abandon() noexcept;

private:
    friend class ThreadCore;
    static void entry(boost::context::detail::transfer_t from) noexcept;
    bool prepare_start(ThreadCore& core) noexcept;
    void abandon_active_member() noexcept;
    void release_stack() noexcept;
    void tell_view_family_ended() noexcept;
    [[noreturn]] void finish(Coroutine* next) noexcept;
    bool jump(Coroutine* target, bool dying = false) noexcept;
    void arrived(boost::context::detail::transfer_t from, PyThreadState* tstate) noexcept;

    Body body_;
    void* owner_ = nullptr;
    bool fresh_depth_ = false;
    bool root_;
    Status status_ = Status::unstarted;
    Coroutine* active_ = this;      // roots: see active_member()
    FamilyView* view_ = nullptr;    // roots: see family_view()
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
    // The root of the running family (current() or its root).
    Coroutine* current_root() const noexcept { return current_root_; }
    // Whoever switched to the running coroutine last (it may be dead now).
    Coroutine* origin() const noexcept { return origin_; }

private:
    friend class Coroutine;
    ThreadCore() noexcept;
    static ThreadCore& create_for_this_thread() noexcept;
    // Where a switch to `to` lands: `to` itself within the running family,
    // the member that ran last in another family.
    Coroutine* landing(Coroutine* to) const noexcept {
        return to->root_ && to != current_root_ ? to->active_ : to;
    }
    Coroutine main_{nullptr};
    Coroutine* current_ = &main_;
    Coroutine* current_root_ = &main_;  // always current_root_->active_ == current_
    Coroutine* origin_ = nullptr;
    Coroutine* dying_ = nullptr;  // finished; its stack is freed on arrival
};

}  // namespace syncless

#include "coroutine.hpp"

#include <cstdio>
#include <cstdlib>

#include "stack_overflow.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace ctx = boost::context::detail;

namespace syncless {

SYNCLESS_STATIC_TLS thread_local ThreadCore* this_thread_core = nullptr;

ThreadCore::ThreadCore() noexcept {
    main_.status_ = Coroutine::Status::running;
    main_.thread_ = this;
    install_overflow_handler();
    ensure_signal_stack();
}

ThreadCore& ThreadCore::create_for_this_thread() noexcept {
    // Lives as long as the process: objects of other threads may still name
    // it after this thread is gone, to learn that it is gone.
    this_thread_core = new ThreadCore();
    return *this_thread_core;
}

Coroutine::~Coroutine() {
    if (slot_) {
        abandon();
    }
}

bool Coroutine::prepare_start(ThreadCore& core) noexcept {
    StackPool& pool = StackPool::instance();
    slot_ = pool.acquire();
    if (!slot_) {
        return false;
    }
    thread_ = &core;
#if defined(__SANITIZE_ADDRESS__)
    // Announced to ASan with the first switch into it, before entry() runs.
    asan_bottom_ = slot_.stack_top - slot_.stack_size;
    asan_size_ = slot_.stack_size;
#endif
    state_.init_new(PyThreadState_GET(), slot_, pool.chunk_size(), fresh_depth_);
    context_ = ctx::make_fcontext(slot_.stack_top, slot_.stack_size, &Coroutine::entry);
    status_ = Status::suspended;
    return true;
}

bool Coroutine::switch_to() noexcept {
    ThreadCore& core = ThreadCore::current_thread();
    Coroutine* target = core.landing(this);
    if (target->status_ == Status::unstarted && !target->prepare_start(core)) {
        PyErr_SetString(PyExc_MemoryError, "syncless: no memory for another coroutine stack");
        return false;
    }
    if (root_) {
        core.current_root_ = this;
    }
    return core.current_->jump(target);
}

bool Coroutine::jump(Coroutine* target, bool dying) noexcept {
    PyThreadState* tstate = PyThreadState_GET();
    ThreadCore& core = *thread_;
    state_.save(tstate);
#if PY_VERSION_HEX < 0x030C0000
    target->state_.inherit_tracing(tstate);
#endif
    status_ = dying ? Status::dead : Status::suspended;
    if (dying) {
        core.dying_ = this;
    }
    target->status_ = Status::running;
    core.origin_ = this;
    core.current_ = target;
    core.current_root_->active_ = target;
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(dying ? nullptr : &asan_fake_stack_, target->asan_bottom_,
                                   target->asan_size_);
#endif
    ctx::transfer_t from = ctx::jump_fcontext(target->context_, this);
    arrived(from, tstate);
    return true;
}

void Coroutine::arrived(ctx::transfer_t from, PyThreadState* tstate) noexcept {
    auto* origin = static_cast<Coroutine*>(from.data);
#if defined(__SANITIZE_ADDRESS__)
    const void* bottom = nullptr;
    std::size_t size = 0;
    __sanitizer_finish_switch_fiber(asan_fake_stack_, &bottom, &size);
    if (origin->asan_bottom_ == nullptr) {  // the main stack, seen the first time
        origin->asan_bottom_ = bottom;
        origin->asan_size_ = size;
    }
#endif
    ThreadCore& core = *thread_;
    state_.restore(tstate);
    if (core.dying_ == origin) {
        // Finished: its family, if it headed one, ended in finish().
        core.dying_ = nullptr;
        origin->context_ = nullptr;
        origin->release_stack();
    } else {
        origin->context_ = from.fctx;
    }
}

void Coroutine::entry(ctx::transfer_t from) noexcept {
    Coroutine* self = this_thread_core->current_;
    PyThreadState* tstate = PyThreadState_GET();
    self->arrived(from, tstate);
#if SYNCLESS_HAS_CFRAME
    // The interpreter links the _PyCFrame of every evaluation to the one
    // before it; this one lives at the bottom of the coroutine's own stack so
    // the chain never points into another coroutine's stack.
    _PyCFrame cframe;
    self->state_.enter_new_cframe(tstate, &cframe);
#endif
    self->finish(self->body_(self));
}

void Coroutine::finish(Coroutine* next) noexcept {
    end_family();
    ThreadCore& core = *thread_;
    Coroutine* target = core.landing(next);
    if (target->status_ == Status::unstarted && !target->prepare_start(core)) {
        Py_FatalError("syncless: no memory for a coroutine stack while finishing another");
    }
    if (next->root_) {
        core.current_root_ = next;
    }
    jump(target, true);
    Py_FatalError("syncless: a finished coroutine was resumed");
}

void Coroutine::tell_view_family_ended() noexcept {
    // Each view detaches itself; code it runs may attach a new one, which
    // ends too.
    while (view_ != nullptr) {
        view_->family_ended();
    }
}

PyObject* Coroutine::suspended_frame() noexcept {
    if (status_ != Status::suspended) {
        Py_RETURN_NONE;
    }
    PyFrameObject* frame = state_.frame_object(PyThreadState_GET());
    if (frame == nullptr) {
        return PyErr_Occurred() ? nullptr : Py_NewRef(Py_None);
    }
    return Py_NewRef(reinterpret_cast<PyObject*>(frame));
}

void Coroutine::release_family() noexcept {
    abandon_active_member();
    view_ = nullptr;
}

void Coroutine::abandon_active_member() noexcept {
    if (active_ != this) {
        Coroutine* member = active_;
        active_ = this;
        if (member->status_ == Status::suspended) {
            member->abandon();
        }
    }
}

void Coroutine::abandon() noexcept {
    abandon_active_member();
    release_stack();
    end_family();
}

void Coroutine::release_stack() noexcept {
    // A frame object still held elsewhere reads this stack's frame memory:
    // then the slot is leaked rather than reused under it.
    if (state_.discard_frames() && slot_) {
        StackPool::instance().release(slot_);
    }
    slot_ = StackSlot{};
    context_ = nullptr;
    status_ = Status::dead;
}

}  // namespace syncless

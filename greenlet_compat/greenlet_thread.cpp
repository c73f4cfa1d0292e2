#include "greenlet_thread.hpp"

#include <mutex>

#include "greenlet_switch.hpp"

namespace syncless::greenlet_face {

SYNCLESS_STATIC_TLS thread_local GreenletThread* this_thread_state = nullptr;

namespace {

Py_ssize_t main_greenlets = 0;

// Threads that exited and whose state awaits a thread holding the GIL.
std::mutex exited_lock;
std::vector<GreenletThread*> exited;

void link_family(GreenletThread* t, Family* f) noexcept {
    f->thread = t;
    f->prev = nullptr;
    f->next = t->families;
    if (t->families != nullptr) {
        t->families->prev = f;
    }
    t->families = f;
}

void unlink_family(Family* f) noexcept {
    GreenletThread* t = f->thread;
    if (f->prev != nullptr) {
        f->prev->next = f->next;
    } else {
        t->families = f->next;
    }
    if (f->next != nullptr) {
        f->next->prev = f->prev;
    }
    f->prev = f->next = nullptr;
    f->thread = nullptr;
}

// The family has ended: its main greenlet stops naming the root (which may
// be freed or reused) and reads as dead from now on. What it held is
// dropped last, since that may run Python code.
void retire(Family* f) noexcept {
    Greenlet* main = impl(f->main.get());
    main->co = &main->coroutine;
    main->coroutine.abandon();
    f->root = nullptr;
    --main_greenlets;
    std::vector<Ref> queued;
    queued.swap(f->deleteme);
    Ref current = std::move(f->current);
    Ref main_ref = std::move(f->main);
}

// Greenlets queued for a family run their kill in it, as greenlet does for
// a thread's: the first greenlet call there runs them.
void run_queued_kills(Family* f) noexcept {
    std::vector<Ref> queued;
    queued.swap(f->deleteme);
    SavedError keep;
    for (Ref& g : queued) {
        Greenlet* target = impl(g.get());
        if (target->co->status() == Coroutine::Status::suspended) {
            kill_greenlet(f, target);
        }
        g.reset();
    }
}

int destroy_exited_threads(void*) {
    std::vector<GreenletThread*> batch;
    {
        std::lock_guard<std::mutex> hold(exited_lock);
        batch.swap(exited);
    }
    for (GreenletThread* t : batch) {
        t->tracefunc.reset();
        t->origin.reset();
        // Greenlets that still name a family of the thread learn here that
        // its thread is gone; their dealloc frees them without running them.
        while (Family* f = t->families) {
            unlink_family(f);
            if (f->root != nullptr) {
                f->root->release_family();
                retire(f);  // may free f
            }
        }
        delete t;
    }
    return 0;
}

// Runs when the thread exits, without the GIL: it only marks and queues.
struct ExitHook {
    GreenletThread* state = nullptr;
    ~ExitHook() {
        this_thread_state = nullptr;
        if (state == nullptr || !Py_IsInitialized()) {
            return;
        }
        state->exited.store(true);
        {
            std::lock_guard<std::mutex> hold(exited_lock);
            exited.push_back(state);
        }
        Py_AddPendingCall(destroy_exited_threads, nullptr);
    }
};

thread_local ExitHook exit_hook;

// A family for `root`, with its main greenlet, which is current in it.
Family* make_family(GreenletThread* t, Coroutine* root) noexcept {
    auto* main = reinterpret_cast<PyGreenlet*>(PyType_GenericAlloc(&PyGreenlet_Type, 0));
    if (main == nullptr) {
        return nullptr;
    }
    main->pimpl = new (std::nothrow) Greenlet(main, true);
    auto* f = new (std::nothrow) Family();
    if (main->pimpl == nullptr || f == nullptr) {
        delete f;
        Py_DECREF(main);
        PyErr_NoMemory();
        return nullptr;
    }
    main->pimpl->co = root;
    main->pimpl->family = f;
    f->root = root;
    f->main = Ref::steal(reinterpret_cast<PyObject*>(main));
    f->current = f->main;
    link_family(t, f);
    root->set_family_view(f);
    ++main_greenlets;
    return f;
}

GreenletThread* create_thread_state() noexcept {
    auto* t = new (std::nothrow) GreenletThread();
    if (t == nullptr) {
        PyErr_NoMemory();
        return nullptr;
    }
    t->core = &ThreadCore::current_thread();
    t->main_family = make_family(t, &t->core->main());
    if (t->main_family == nullptr) {
        delete t;
        return nullptr;
    }
    exit_hook.state = t;
    this_thread_state = t;
    return t;
}

}  // namespace

Greenlet::Greenlet(PyGreenlet* self_, bool main_) noexcept
    : self(self_),
      coroutine(main_ ? nullptr : &greenlet_body, Coroutine::Kind::nested),
      co(&coroutine),
      main(main_) {
    coroutine.set_owner(this);
}

void Family::family_ended() noexcept {
    if (!deleteme.empty() && ThreadCore::current_thread_if_any() == thread->core &&
        thread->core->current_root() == root) {
        run_queued_kills(this);  // still running in it: they die here
    }
    root->set_family_view(nullptr);
    retire(this);
}

GreenletThread* this_thread() noexcept {
    GreenletThread* t = this_thread_state;
    return t != nullptr ? t : create_thread_state();
}

Family* this_family_slow() noexcept {
    GreenletThread* t = this_thread();
    if (t == nullptr) {
        return nullptr;
    }
    Family* f = running_family(t);
    if (f == nullptr) {
        f = make_family(t, t->core->current_root());
        if (f == nullptr) {
            return nullptr;
        }
    }
    if (!f->deleteme.empty()) {
        run_queued_kills(f);
    }
    return f;
}

Greenlet* owning_main(Greenlet* g) noexcept {
    for (Greenlet* a = g; a != nullptr; a = a->parent ? impl(a->parent.get()) : nullptr) {
        if (a->main) {
            return a;
        }
        if (a->main_greenlet) {
            return impl(a->main_greenlet.get());
        }
    }
    return nullptr;
}

void kill_in_family(Family* f, PyGreenlet* g) noexcept {
    f->deleteme.push_back(Ref::borrow(reinterpret_cast<PyObject*>(g)));
}

void forget_family(Greenlet* main) noexcept {
    Family* f = main->family;
    main->family = nullptr;
    if (f != nullptr && f->thread != nullptr) {
        unlink_family(f);
    }
    delete f;
}

Py_ssize_t pending_cleanup_count() noexcept {
    std::lock_guard<std::mutex> hold(exited_lock);
    return static_cast<Py_ssize_t>(exited.size());
}

Py_ssize_t total_main_greenlets() noexcept { return main_greenlets; }

}  // namespace syncless::greenlet_face

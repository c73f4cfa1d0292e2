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

int destroy_exited_threads(void*) {
    std::vector<GreenletThread*> batch;
    {
        std::lock_guard<std::mutex> hold(exited_lock);
        batch.swap(exited);
    }
    for (GreenletThread* t : batch) {
        // Greenlets queued for a thread that is gone are dropped here; their
        // dealloc sees the owner gone and frees them without running them.
        t->deleteme.clear();
        t->tracefunc.reset();
        t->origin.reset();
        t->current.reset();
        t->main.reset();
        delete t;
        --main_greenlets;
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
        impl(state->main.get())->thread = nullptr;
        {
            std::lock_guard<std::mutex> hold(exited_lock);
            exited.push_back(state);
        }
        Py_AddPendingCall(destroy_exited_threads, nullptr);
    }
};

thread_local ExitHook exit_hook;

GreenletThread* create_thread_state() noexcept {
    auto* main = reinterpret_cast<PyGreenlet*>(PyType_GenericAlloc(&PyGreenlet_Type, 0));
    if (main == nullptr) {
        return nullptr;
    }
    main->pimpl = new (std::nothrow) Greenlet(main, true);
    if (main->pimpl == nullptr) {
        Py_DECREF(main);
        PyErr_NoMemory();
        return nullptr;
    }
    auto* t = new GreenletThread();
    t->core = &ThreadCore::current_thread();
    main->pimpl->co = &t->core->main();
    main->pimpl->thread = t;
    t->core->main().set_owner(main->pimpl);
    t->main = Ref::steal(reinterpret_cast<PyObject*>(main));
    t->current = t->main;
    ++main_greenlets;
    exit_hook.state = t;
    this_thread_state = t;
    return t;
}

void run_queued_kills(GreenletThread* t) noexcept {
    std::vector<Ref> queued;
    queued.swap(t->deleteme);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    for (Ref& g : queued) {
        Greenlet* target = impl(g.get());
        if (target->co->status() == Coroutine::Status::suspended) {
            kill_greenlet(t, target);
        }
        g.reset();
    }
    PyErr_Restore(type, value, tb);
}

}  // namespace

Greenlet::Greenlet(PyGreenlet* self_, bool main_) noexcept
    : self(self_), coroutine(main_ ? nullptr : &greenlet_body), co(&coroutine), main(main_) {
    coroutine.set_owner(this);
}


GreenletThread* this_thread_slow() noexcept {
    GreenletThread* t = this_thread_state;
    if (t == nullptr) {
        t = create_thread_state();
        if (t == nullptr) {
            return nullptr;
        }
    }
    if (!t->deleteme.empty()) {
        run_queued_kills(t);
    }
    return t;
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

GreenletThread* owning_thread(Greenlet* g) noexcept {
    Greenlet* main = owning_main(g);
    return main != nullptr ? main->thread : nullptr;
}

void kill_in_owner_thread(GreenletThread* owner, PyGreenlet* g) noexcept {
    owner->deleteme.push_back(Ref::borrow(reinterpret_cast<PyObject*>(g)));
}

Py_ssize_t pending_cleanup_count() noexcept {
    std::lock_guard<std::mutex> hold(exited_lock);
    return static_cast<Py_ssize_t>(exited.size());
}

Py_ssize_t total_main_greenlets() noexcept { return main_greenlets; }

}  // namespace syncless::greenlet_face

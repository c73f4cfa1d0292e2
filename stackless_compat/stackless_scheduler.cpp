// The stackless run ring and its one switch routine: per-thread state, ring
// and channel-queue links, the rules for an empty ring (wake the watchdog or
// raise the deadlock error), and the start and end of a tasklet with the
// delivery of its uncaught exception to the watchdog (Stackless's
// scheduling.c, on the core's hard switch).
#include "../scheduler/frame_chain.hpp"
#include "../scheduler/gil.hpp"
#include "stackless_object.hpp"
#include "stackless_preempt.hpp"

namespace syncless::stackless_face {

namespace {

// Only this thread writes the counter: a plain store, no locked increment.
void count_switch(StacklessThread* ts) noexcept {
    ts->switches.store(ts->switches.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
}

SYNCLESS_STATIC_TLS thread_local StacklessThread* this_thread_state = nullptr;

// Marks the thread's state when the thread ends (no GIL there: a flag only).
struct ExitHook {
    StacklessThread* state = nullptr;
    ~ExitHook() {
        if (state != nullptr) {
            state->exited.store(true);
        }
        this_thread_state = nullptr;
    }
};
thread_local ExitHook exit_hook;

// threading's join() returns once the thread's PyThreadState is cleared,
// before C++ thread_local destructors run: a capsule in the thread's dict
// marks the exit in time for code that joined the thread.
void mark_exited(PyObject* capsule) noexcept {
    auto* state = static_cast<StacklessThread*>(PyCapsule_GetPointer(capsule, "syncless.thread"));
    if (state != nullptr) {
        state->exited.store(true);
        thread_ended(state);
    }
}

bool watch_thread_exit(StacklessThread* ts) noexcept {
    PyObject* dict = PyThreadState_GetDict();
    if (dict == nullptr) {
        return true;  // no Python thread state dict: the exit hook does it
    }
    Ref marker = Ref::steal(PyCapsule_New(ts, "syncless.thread", &mark_exited));
    return marker && PyDict_SetItemString(dict, "syncless.stackless_thread", marker.get()) == 0;
}

Tasklet* live_head = nullptr;

// Every thread state made, for get_thread_info(); touched with the GIL held.
std::vector<StacklessThread*> all_threads;

// Threads' states live as long as the process: a tasklet of a thread that is
// gone still names it. (Cleaning up after exited threads is future work.)
StacklessThread* create_thread_state() noexcept {
    ThreadCore& core = ThreadCore::current_thread();
    auto* main = reinterpret_cast<Tasklet*>(Tasklet_Type.tp_alloc(&Tasklet_Type, 0));
    if (main == nullptr) {
        return nullptr;
    }
    main->construct(true);
    main->co = &core.main();
    main->alive = true;
    auto* ts = new (std::nothrow) StacklessThread();
    if (ts == nullptr) {
        Py_DECREF(main);
        PyErr_NoMemory();
        return nullptr;
    }
    ts->core = &core;
    ts->thread_id = PyThread_get_thread_ident();
    if (!watch_thread_exit(ts)) {
        delete ts;
        Py_DECREF(main);
        return nullptr;
    }
    exit_hook.state = ts;
    all_threads.push_back(ts);
    ts->main = Ref::steal(as_object(main));
    main->thread = ts;
    ring_insert(ts, main);
    ts->current = main;
    this_thread_state = ts;
    notify_schedule(ts, nullptr, main);
    return ts;
}

// The failure path of a switch that did not happen: `prev` runs on, as the
// ring head, and `next` goes back to where it was.
void undo_switch(StacklessThread* ts, Tasklet* prev, Tasklet* next, bool inserted,
                 Channel* from_channel, int dir) noexcept {
    if (inserted && next != prev) {
        Ref held = ring_remove(ts, next);
        if (from_channel != nullptr) {
            channel_append(from_channel, next, dir);
        }
    }
    if (prev->blocked != 0) {
        Ref held = channel_unlink(prev);
        ring_insert(ts, prev);
    } else if (prev->next == nullptr) {
        ring_insert(ts, prev);
    }
    ts->head = prev;
    ts->current = prev;
}

// The ring is empty and `prev` (no longer runnable) must go somewhere.
PyObject* schedule_block(StacklessThread* ts, Tasklet* prev) noexcept {
    if (Tasklet* next = wait_for_other_threads(ts)) {
        return schedule_task(ts, prev, next);
    }
    Tasklet* wakeup = watchdog(ts);
    if (wakeup->next == nullptr) {
        // The watchdog floats (parked in run(), or it is prev itself): revive
        // it, handing over a bomb prev was given.
        if (is_bomb(prev->tempval.get()) && wakeup != prev) {
            wakeup->tempval = prev->tempval;
        }
        return schedule_task(ts, prev, wakeup);
    }
    // The watchdog is blocked itself and no other thread can help: nobody
    // could ever wake prev.
    PyErr_SetString(PyExc_RuntimeError, "Deadlock: the last runnable tasklet cannot be blocked.");
    Ref bomb = bomb_from_error();
    if (!bomb) {
        return nullptr;
    }
    prev->tempval = std::move(bomb);
    return schedule_task(ts, prev, prev);
}

// set_error_handler's handler sees the exception escaping a tasklet; if it
// returns normally the exception is swallowed (true). If it raises, its
// exception replaces the original one, which then goes on as usual.
bool call_error_handler() noexcept {
    if (error_handler == nullptr) {
        return false;
    }
    Ref handler = Ref::borrow(error_handler);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Ref t = Ref::steal(type), v = Ref::steal(value), b = Ref::steal(tb);
    Ref result = Ref::steal(PyObject_CallFunctionObjArgs(
        handler.get(), t.get() ? t.get() : Py_None, v.get() ? v.get() : Py_None,
        b.get() ? b.get() : Py_None, nullptr));
    return static_cast<bool>(result);
}

}  // namespace

PyObject* error_handler = nullptr;
PyObject* schedule_callback = nullptr;
PyObject* channel_callback = nullptr;

void notify_schedule(StacklessThread* ts, Tasklet* prev, Tasklet* next) noexcept {
    if (schedule_callback == nullptr) {
        return;
    }
    SavedError keep;
    Ref callback = Ref::borrow(schedule_callback);
    ts->schedlock = true;
    Ref result = Ref::steal(PyObject_CallFunctionObjArgs(
        callback.get(), prev != nullptr ? as_object(prev) : Py_None, as_object(next), nullptr));
    ts->schedlock = false;
    if (!result) {
        Ref message = Ref::steal(PyUnicode_FromString("Error in scheduling callback"));
        PyErr_WriteUnraisable(message ? message.get() : Py_None);
        PyErr_Clear();
    }
}

bool check_not_in_callback(StacklessThread* ts) noexcept {
    if (ts->schedlock) {
        PyErr_SetString(PyExc_RuntimeError, "Recursive scheduler call due to callbacks!");
        return false;
    }
    return true;
}

StacklessThread* this_thread() noexcept {
    StacklessThread* ts = this_thread_state;
    return ts != nullptr ? ts : create_thread_state();
}

StacklessThread* this_thread_if_any() noexcept { return this_thread_state; }

const std::vector<StacklessThread*>& thread_states() noexcept { return all_threads; }

StacklessThread* find_thread(unsigned long thread_id) noexcept {
    for (StacklessThread* ts : all_threads) {
        if (ts->thread_id == thread_id && !ts->exited.load()) {
            return ts;
        }
    }
    return nullptr;
}

StacklessThread* thread_for_switch() noexcept {
    StacklessThread* ts = this_thread();
    if (ts != nullptr && !check_not_in_callback(ts)) {
        return nullptr;
    }
    if (ts != nullptr && ts->sleep == StacklessThread::Sleep::waiting) [[unlikely]] {
        // A signal handler or finaliser runs while the thread waits for
        // another one: its tasklet is blocked or finished, in no ring.
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot switch tasklets while this thread waits for another thread "
                        "(in a signal handler or finaliser run meanwhile)");
        return nullptr;
    }
    return ts;
}

bool runs_as_ring_head(StacklessThread* ts) noexcept {
    Tasklet* me = ts->current;
    return me != nullptr && !me->is_hub && me->blocked == 0 && me->next != nullptr &&
           ts->head == me && !ts->schedlock && ts->switch_trap == 0 &&
           ts->sleep != StacklessThread::Sleep::waiting;
}

StacklessThread* thread_for_wait() noexcept { return thread_for_switch(); }

void ring_insert(StacklessThread* ts, Tasklet* t) noexcept {
    Py_INCREF(as_object(t));
    Tasklet* head = ts->head;
    if (head == nullptr) {
        t->next = t->prev = t;
        ts->head = t;
    } else {
        t->next = head;
        t->prev = head->prev;
        head->prev->next = t;
        head->prev = t;
    }
    ++ts->runcount;
}

void ring_insert_after(StacklessThread* ts, Tasklet* pos, Tasklet* t) noexcept {
    Py_INCREF(as_object(t));
    t->prev = pos;
    t->next = pos->next;
    pos->next->prev = t;
    pos->next = t;
    ++ts->runcount;
}

Ref ring_remove(StacklessThread* ts, Tasklet* t) noexcept {
    if (t->next == t) {
        ts->head = nullptr;
    } else {
        if (ts->head == t) {
            ts->head = t->next;
        }
        t->prev->next = t->next;
        t->next->prev = t->prev;
    }
    t->next = t->prev = nullptr;
    --ts->runcount;
    return Ref::steal(as_object(t));
}

void channel_append(Channel* c, Tasklet* t, int dir) noexcept {
    Py_INCREF(as_object(t));
    Tasklet* head = c->head;
    if (head == nullptr) {
        t->next = t->prev = t;
        c->head = t;
    } else {
        t->next = head;
        t->prev = head->prev;
        head->prev->next = t;
        head->prev = t;
    }
    t->blocked = dir;
    t->channel = c;
    c->balance += dir;
}

Ref channel_unlink(Tasklet* t) noexcept {
    Channel* c = t->channel;
    if (t->next == t) {
        c->head = nullptr;
    } else {
        if (c->head == t) {
            c->head = t->next;
        }
        t->prev->next = t->next;
        t->next->prev = t->prev;
    }
    t->next = t->prev = nullptr;
    c->balance -= t->blocked;
    t->blocked = 0;
    t->channel = nullptr;
    return Ref::steal(as_object(t));
}

void live_link(Tasklet* t) noexcept {
    t->live_prev = nullptr;
    t->live_next = live_head;
    if (live_head != nullptr) {
        live_head->live_prev = t;
    }
    live_head = t;
}

void live_unlink(Tasklet* t) noexcept {
    if (t->live_prev != nullptr) {
        t->live_prev->live_next = t->live_next;
    } else if (live_head == t) {
        live_head = t->live_next;
    } else {
        return;  // not linked
    }
    if (t->live_next != nullptr) {
        t->live_next->live_prev = t->live_prev;
    }
    t->live_next = t->live_prev = nullptr;
}

PyObject* live_tasklets() noexcept {
    Ref list = Ref::steal(PyList_New(0));
    for (Tasklet* t = live_head; list && t != nullptr; t = t->live_next) {
        if (PyList_Append(list.get(), as_object(t)) < 0) {
            return nullptr;
        }
    }
    return list.release();
}

Ref current_context() noexcept {
    PyThreadState* tstate = PyThreadState_GET();
    if (tstate->context == nullptr) {
        Ref fresh = Ref::steal(PyContext_New());
        if (!fresh) {
            return fresh;
        }
        install_context(std::move(fresh));
    }
    return Ref::borrow(tstate->context);
}

void install_context(Ref context) noexcept {
    PyThreadState* tstate = PyThreadState_GET();
    Ref old = Ref::steal(tstate->context);
    tstate->context = context.release();
    tstate->context_ver++;
}

int nesting_level(Tasklet* t) noexcept {
    if (t->is_main) {
        return 0;  // where its thread entered Python first is nobody's business here
    }
    const _PyInterpreterFrame* innermost = nullptr;
    if (t->thread != nullptr && t->thread->current == t) {
        if (t->thread != this_thread_if_any()) {
            return 0;  // another thread's running stack: not readable from here
        }
        innermost = current_frame_of(PyThreadState_GET());
    } else {
        Coroutine* running = t->co->active_member();
        if (running->status() != Coroutine::Status::suspended) {
            return 0;
        }
        innermost = running->state().innermost_frame();
    }
    int entries = interpreter_entries(innermost);
    return entries > 1 ? entries - 1 : 0;
}

Ref claim_tempval(Tasklet* t) noexcept {
    Ref value = std::move(t->tempval);
    t->tempval = Ref::borrow(Py_None);
    return value;
}

Tasklet* watchdog(StacklessThread* ts) noexcept {
    return ts->watchdogs.empty() ? reinterpret_cast<Tasklet*>(ts->main.get())
                                 : ts->watchdogs.back();
}

PyObject* schedule_task(StacklessThread* ts, Tasklet* prev, Tasklet* next,
                        bool voluntary) noexcept {
    if (voluntary && ts->soft_irq.load(std::memory_order_relaxed)) [[unlikely]] {
        next = soft_interrupt_target(ts, prev, next);
    }
    if (next == nullptr) {
        return schedule_block(ts, prev);
    }
    bool inserted = false;
    Channel* from_channel = nullptr;
    int dir = 0;
    if (next->blocked != 0) {
        from_channel = next->channel;
        dir = next->blocked;
        Ref held = channel_unlink(next);
        ring_insert(ts, next);
        inserted = true;
    } else if (next->next == nullptr) {
        ring_insert(ts, next);
        inserted = true;
    }
    // Nothing on prev's stack holds prev while it is suspended: a ring, a
    // channel queue or the caller's del_post_switch (handed to whoever runs
    // next) does, so an unreachable suspended tasklet can be collected.
    if (prev != next && ts->switch_trap > 0) {
        PyErr_SetString(PyExc_RuntimeError, "switch_trap");
        undo_switch(ts, prev, next, inserted, from_channel, dir);
        return nullptr;
    }
    if (prev != next) {
        count_switch(ts);
        notify_schedule(ts, prev, next);
        ts->head = next;
        ts->current = next;
        switch_tracing(prev, next);
        if (!next->co->switch_to()) {
            switch_tracing(next, prev);
            SavedError keep;
            undo_switch(ts, prev, next, inserted, from_channel, dir);
            return nullptr;
        }
        Ref finished = std::move(ts->del_post_switch);
    }
    Ref value = claim_tempval(prev);
    if (!ts->doomed.empty()) [[unlikely]] {
        run_deferred_kills(ts);
    }
    if (is_bomb(value.get())) {
        bomb_explode(value.get());
        return nullptr;
    }
    return value.release();
}

Coroutine* tasklet_body(Coroutine* co) noexcept {
    auto* self = static_cast<Tasklet*>(co->owner());
    StacklessThread* ts = this_thread_state;
    Ref bomb;
    live_link(self);
    {
        Ref finished = std::move(ts->del_post_switch);
        finished.reset();
        Ref value = claim_tempval(self);
        if (self->context) {
            // bind() gave it its binder's context (Stackless 3.7.6+).
            install_context(std::move(self->context));
        }
        Ref result;
        if (is_bomb(value.get())) {
            // Thrown before it ever ran: the body is never entered.
            bomb_explode(value.get());
        } else {
            // func and its arguments stay in the tasklet while it runs, where
            // the collector sees them.
            if (!self->args) {
                self->args = Ref::steal(PyTuple_New(0));
            }
            if (self->args) {
                result = Ref::steal(call_python([self] {
                    return PyObject_Call(self->func.get(), self->args.get(), self->kwargs.get());
                }));
            }
        }
        Ref func = std::move(self->func);
        Ref args = std::move(self->args);
        Ref kwargs = std::move(self->kwargs);
        if (!result) {
            if (PyErr_ExceptionMatches(PyExc_TaskletExit)) {
                PyErr_Clear();
            } else if (!call_error_handler()) {
                // Every other exception (SystemExit too) goes to the watchdog.
                bomb = bomb_from_error();
                if (!bomb) {
                    PyErr_Clear();
                }
            }
        }
        self->alive = false;
        // Dropping these may run arbitrary code: still as a runnable tasklet.
    }
    self->tempval = Ref::borrow(Py_None);
    // Its greenlets still suspended are dead from here on, as a thread's
    // when it exits (each is killed when freed); this may run code too,
    // still as a runnable tasklet.
    co->end_family();
    live_unlink(self);
    Ref me = self->next != nullptr ? ring_remove(ts, self) : Ref::borrow(as_object(self));
    Tasklet* next = ts->head;
    if (next == nullptr && !bomb) {
        next = wait_for_other_threads(ts);
    }
    if (next == nullptr) {
        Tasklet* wakeup = watchdog(ts);
        if (wakeup->blocked != 0 && !bomb) {
            PyErr_SetString(PyExc_RuntimeError,
                            wakeup->blocked < 0
                                ? "the main tasklet is receiving without a sender available."
                                : "the main tasklet is sending without a receiver available.");
            bomb = bomb_from_error();
        }
        next = wakeup;
    }
    if (bomb) {
        next = watchdog(ts);
        next->tempval = std::move(bomb);
    }
    if (next->blocked != 0) {
        Ref held = channel_unlink(next);
        ring_insert(ts, next);
    } else if (next->next == nullptr) {
        ring_insert(ts, next);
    }
    count_switch(ts);
    notify_schedule(ts, self, next);
    switch_tracing(self, next, /*prev_finished=*/true);
    ts->head = next;
    ts->current = next;
    ts->del_post_switch = std::move(me);
    return next->co;
}

}  // namespace syncless::stackless_face

// Garbage collection of suspended tasklets (spec §2.8).
//
// A started tasklet runs on a C stack of its own, like a hard-switched
// Stackless tasklet or a greenlet. Once it is suspended out of every ring and
// channel queue and nothing reaches it any more, nothing can ever resume it:
// its finaliser kills it on its own stack, so its `finally` blocks run and its
// stack is given back. As in Stackless, the kill is repeated (a tasklet may
// catch TaskletExit and suspend again) up to ten times; one that still lives
// goes to gc.garbage.
//
// The kill is a switch, and a collection can start wherever an object is
// allocated. Where switching is not safe (the schedule callback, a greenlet
// running inside the tasklet, switch_trap, the scheduler between two ring
// changes, the coio hub) the tasklet is kept in its thread's `doomed` list
// and killed at the next scheduling call that returns in a safe state. A
// tasklet of another thread is killed there: TaskletExit is thrown to it
// pending (made runnable in its thread, which wakes). During interpreter
// shutdown nothing is switched to: the frames are dropped unrun.
//
// For the collector to find the cycles a suspended tasklet is part of,
// tasklet_traverse visits what its frames certainly hold
// (scheduler/frame_chain.hpp).
#include "stackless_object.hpp"

namespace syncless::stackless_face {

namespace {

// Stackless's kill_finally tries this often.
constexpr int kill_attempts = 10;

// Alive on a stack of its own and not running: what a kill must unwind.
bool holds_suspended_stack(Tasklet* t) {
    return t->alive && !t->is_main && !t->is_hub &&
           t->co->status() == Coroutine::Status::suspended;
}

// A kill switches to the tasklet and comes back here, like any switch the
// running tasklet makes; not while a greenlet runs inside it.
bool can_switch_here(StacklessThread* ts) {
    return runs_as_ring_head(ts) && ts->core->current() == ts->current->co;
}

void add_to_garbage(Tasklet* t) {
    t->tempval = Ref::borrow(Py_None);  // as Stackless: the value is not kept alive
    Ref gc = Ref::steal(PyImport_ImportModule("gc"));
    Ref garbage = gc ? Ref::steal(PyObject_GetAttrString(gc.get(), "garbage")) : Ref();
    if (!garbage || !PyList_Check(garbage.get()) ||
        PyList_Append(garbage.get(), as_object(t)) < 0) {
        PyErr_WriteUnraisable(as_object(t));
    }
}

// Kills `t` from the running tasklet; `t` is of this thread and a switch is
// safe here. The kills' switches back claim the running tasklet's tempval:
// it is kept aside meanwhile.
void kill_here(StacklessThread* ts, Tasklet* t) {
    Ref keep = Ref::borrow(as_object(t));
    Tasklet* me = ts->current;
    Ref my_tempval = claim_tempval(me);
    int attempts = 0;
    while (holds_suspended_stack(t) && attempts < kill_attempts && can_switch_here(ts)) {
        ++attempts;
        Ref bomb = make_bomb(PyExc_TaskletExit, nullptr, nullptr);
        Ref result = bomb ? Ref::steal(throw_bomb(t, std::move(bomb), false)) : Ref();
        if (!result) {
            PyErr_WriteUnraisable(as_object(t));
        }
    }
    me->tempval = std::move(my_tempval);
    if (!holds_suspended_stack(t)) {
        return;
    }
    if (attempts < kill_attempts) {
        ts->doomed.push_back(keep);  // its own code made switching unsafe: later
    } else {
        add_to_garbage(t);
    }
}

// A tasklet of another thread (or of one that ended, whose frames a kill
// drops): the kill waits in it, runnable in its thread. If even that cannot
// be done from here, its thread kills it at its next safe switch.
void kill_in_its_thread(Tasklet* t) {
    Ref bomb = make_bomb(PyExc_TaskletExit, nullptr, nullptr);
    Ref result = bomb ? Ref::steal(throw_bomb(t, std::move(bomb), true)) : Ref();
    if (!result) {
        PyErr_Clear();
        t->thread->doomed.push_back(Ref::borrow(as_object(t)));
    }
}

}  // namespace

void tasklet_finalize(PyObject* self) noexcept {
    auto* t = reinterpret_cast<Tasklet*>(self);
    if (!holds_suspended_stack(t) || interpreter_finalizing()) {
        return;
    }
    SavedError keep;
    StacklessThread* ts = t->thread;
    if (ts != this_thread_if_any()) {
        kill_in_its_thread(t);
    } else if (can_switch_here(ts)) {
        kill_here(ts, t);
    } else {
        ts->doomed.push_back(Ref::borrow(self));  // resurrects it until then
    }
}

void run_deferred_kills(StacklessThread* ts) noexcept {
    if (!can_switch_here(ts)) {
        return;
    }
    SavedError keep;
    std::vector<Ref> doomed;
    doomed.swap(ts->doomed);
    for (Ref& t : doomed) {
        auto* tasklet = reinterpret_cast<Tasklet*>(t.get());
        if (!holds_suspended_stack(tasklet)) {
            continue;
        }
        if (can_switch_here(ts)) {
            kill_here(ts, tasklet);
        } else {
            ts->doomed.push_back(std::move(t));
        }
    }
}

}  // namespace syncless::stackless_face

// Per-family and per-thread greenlet state.
//
// greenlet gives each thread a main greenlet, binds a greenlet to the thread
// it first runs in and refuses switches to another thread's greenlets. Here
// each family of the core (scheduler/coroutine.hpp: a thread's main
// coroutine, which is also its main tasklet, or a tasklet) is what a thread
// is to greenlet: it has a main greenlet of its own, made when greenlet is
// first used in it; greenlets started in it belong to it; switches stay in
// it; and once it ends, its suspended greenlets are dead. A tasklet switch
// suspends the family with whichever greenlet runs in it. The trace function
// stays per thread.
#pragma once
#include <atomic>

#include "greenlet_object.hpp"

namespace syncless::greenlet_face {

struct GreenletThread;

struct Family final : FamilyView {
    GreenletThread* thread = nullptr;  // null once its thread's state was cleaned up
    Coroutine* root = nullptr;         // null once the family ended
    Ref main;                          // its main greenlet, held until the family ends
    Ref current;                       // the greenlet running in it (resumed with it): kept alive
    std::vector<Ref> deleteme;         // its greenlets deallocated elsewhere, to kill here
    Family* prev = nullptr;            // the thread's list (ended ones stay while their
    Family* next = nullptr;            // main greenlet lives)

    void family_ended() noexcept override;
};

struct GreenletThread {
    ThreadCore* core = nullptr;
    Family* main_family = nullptr;     // the thread's own, around its main coroutine
    Family* families = nullptr;        // every family of the thread still named by a greenlet
    Ref tracefunc;                     // greenlet.settrace(); None is stored as null
    Ref origin;                        // who switched last, for the trace call in the target
    std::atomic<bool> exited{false};   // set (without the GIL) when the thread ends
};

extern SYNCLESS_STATIC_TLS thread_local GreenletThread* this_thread_state;

// The calling thread's state, created (with its main family) on first use.
// Null with an exception set when that fails.
GreenletThread* this_thread() noexcept;
// The calling thread's state if it exists; never creates it.
inline GreenletThread* this_thread_if_any() noexcept { return this_thread_state; }

// The family of the running root if greenlet was used in it; else null.
inline Family* running_family(GreenletThread* t) noexcept {
    return static_cast<Family*>(t->core->current_root()->family_view());
}

Family* this_family_slow() noexcept;
// The running family, created (with its main greenlet) on first use. Null
// with an exception set when that fails. Kills queued for it run first.
inline Family* this_family() noexcept {
    GreenletThread* t = this_thread_state;
    if (t != nullptr) {
        Family* f = running_family(t);
        if (f != nullptr && f->deleteme.empty()) {
            return f;
        }
    }
    return this_family_slow();
}

// The greenlet running now in a family (borrowed).
inline PyGreenlet* current_greenlet(Family* f) noexcept {
    return reinterpret_cast<PyGreenlet*>(f->current.get());
}

// Whether greenlets of a family can still run: it has not ended and its
// thread is alive.
inline bool is_live(const Family* f) noexcept {
    return f != nullptr && f->root != nullptr && !f->thread->exited.load(std::memory_order_relaxed);
}
// Whether the thread a family belonged to is gone (so are its stacks' owners).
inline bool thread_gone(const Family* f) noexcept {
    return f == nullptr || f->thread == nullptr || f->thread->exited.load(std::memory_order_relaxed);
}

// The main greenlet of the family a greenlet belongs to: itself for main
// greenlets, the one it was bound to at start, its parent lineage's before;
// null when that lineage was cleared.
Greenlet* owning_main(Greenlet* g) noexcept;
// That family (it may have ended).
inline Family* owning_family(Greenlet* g) noexcept {
    Greenlet* main = owning_main(g);
    return main != nullptr ? main->family : nullptr;
}

// A greenlet is active while it can run: started, unfinished, and its
// family alive (a main greenlet is its family). Once its family ends (its
// tasklet finished, its thread exited) a suspended greenlet can never be
// switched to again and counts as dead, as in greenlet.
inline bool is_active(Greenlet* g) noexcept {
    return g->main ? is_live(g->family) : g->co->active() && is_live(owning_family(g));
}
inline bool is_dead(Greenlet* g) noexcept { return g->co->started() && !is_active(g); }

// Queues a greenlet (new reference taken) for a family to kill when it next
// runs greenlet code (or ends).
void kill_in_family(Family* f, PyGreenlet* g) noexcept;

// A main greenlet being freed takes its (ended) family with it.
void forget_family(Greenlet* main) noexcept;

Py_ssize_t pending_cleanup_count() noexcept;
// Main greenlets of families not yet ended (threads not cleaned up after,
// tasklets that used greenlet and have not finished).
Py_ssize_t total_main_greenlets() noexcept;

}  // namespace syncless::greenlet_face

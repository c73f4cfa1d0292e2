// The preemption timer: one thread for the process that watches the CPU
// time of every thread inside run(timeout>0) and, when the running tasklet's
// slice is used up, raises the soft flag or pokes the thread (see
// stackless_preempt.hpp). It never holds the GIL except inside
// poke_thread() on CPython 3.11.
#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "../scheduler/gil.hpp"
#include "stackless_preempt.hpp"

namespace syncless::stackless_face {

namespace {

// A used-up slice whose tasklet cannot be interrupted yet (atomic, a
// callback running, a greenlet inside...) is poked again this often.
constexpr std::int64_t retry_ns = 1'000'000;

std::mutex lock;
std::condition_variable wake;
std::condition_variable poked;   // a round of pokes is over
std::vector<Slice*> slices;
bool running = false;
bool stopped = false;
std::thread worker;

std::int64_t to_ns(const timespec& t) { return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

std::int64_t read_clock(clockid_t clock) {
    timespec t{};
    return clock_gettime(clock, &t) == 0 ? to_ns(t) : -1;
}

// One look at a slice; returns when to look again (monotonic ns). A slice
// whose thread must be poked goes into `to_poke`.
std::int64_t check(Slice* s, std::int64_t now, std::vector<Slice*>& to_poke) {
    std::int64_t cpu = read_clock(s->cpu_clock);
    if (cpu < 0) {
        return now + retry_ns;  // the thread is gone; run() will forget it
    }
    if (!s->total) {
        std::uint64_t switches = s->ts->switches.load(std::memory_order_relaxed);
        if (switches != s->seen_switches) {
            // Another tasklet runs: its slice starts now.
            s->seen_switches = switches;
            s->cpu_mark = cpu;
            s->next_poke = 0;
        }
    }
    std::int64_t used = cpu - s->cpu_mark;
    if (used < s->timeout_ns) {
        // CPU time never runs faster than the wall clock: sleeping the rest
        // of the slice cannot oversleep its end.
        return now + (s->timeout_ns - used);
    }
    if (s->soft) {
        s->ts->soft_irq.store(true, std::memory_order_relaxed);
    } else if (now >= s->next_poke) {
        s->due_switches.store(s->seen_switches, std::memory_order_relaxed);
        s->hard_due.store(true, std::memory_order_release);
        s->next_poke = now + retry_ns;
        s->poking = true;
        to_poke.push_back(s);
    }
    return now + retry_ns;
}

// Pokes without the lock: on 3.11 a poke waits for the GIL, and a thread
// holding the GIL may want the lock meanwhile (fork's prepare handler, for
// one). run() does not free a slice while it is being poked.
void poke(std::unique_lock<std::mutex>& guard, std::vector<Slice*>& to_poke) {
    guard.unlock();
    for (Slice* s : to_poke) {
        poke_thread(s);
    }
    guard.lock();
    for (Slice* s : to_poke) {
        s->poking = false;
    }
    to_poke.clear();
    poked.notify_all();
}

void timer_main() {
    // The kernel lets a sleeping thread oversleep by its timer slack (50 us
    // by default); slices are often shorter than that.
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    pthread_setname_np(pthread_self(), "syncless-preempt");
    std::vector<Slice*> to_poke;
    std::unique_lock<std::mutex> guard(lock);
    while (!stopped) {
        if (slices.empty()) {
            wake.wait(guard);
            continue;
        }
        std::int64_t now = read_clock(CLOCK_MONOTONIC);
        std::int64_t next = now + retry_ns;
        for (Slice* s : slices) {
            next = std::min(next, check(s, now, to_poke));
        }
        if (!to_poke.empty()) {
            poke(guard, to_poke);
        }
        wake.wait_for(guard, std::chrono::nanoseconds(std::max<std::int64_t>(next - now, 1000)));
    }
}

// A forked child has no timer thread, whatever the parent had.
void prepare_fork() { lock.lock(); }
void after_fork_parent() { lock.unlock(); }
void after_fork_child() {
    new (&lock) std::mutex();
    new (&wake) std::condition_variable();
    new (&poked) std::condition_variable();
    new (&worker) std::thread();  // the parent's handle names no thread here
    running = false;
    for (Slice* s : slices) {
        s->poking = false;  // by a thread the child does not have
    }
    slices.clear();
}

// The timer thread takes the lock without the GIL, and threads holding the
// GIL wait for it: they let the GIL go meanwhile, so that one waiting for
// the GIL while holding the lock (a pending call's queue) cannot stall.
std::unique_lock<std::mutex> lock_with_gil_held() noexcept {
    std::unique_lock<std::mutex> guard(lock, std::try_to_lock);
    if (!guard.owns_lock()) {
        GilReleased released;
        guard.lock();
    }
    return guard;
}

}  // namespace

void timer_watch(Slice* slice) noexcept {
    std::unique_lock<std::mutex> guard = lock_with_gil_held();
    if (stopped) {
        return;
    }
    if (!running) {
        static bool fork_hooked = false;
        if (!fork_hooked) {
            pthread_atfork(&prepare_fork, &after_fork_parent, &after_fork_child);
            fork_hooked = true;
        }
        try {
            worker = std::thread(&timer_main);
        } catch (...) {
            return;  // no thread, no preemption: run() still runs everything
        }
        running = true;
    }
    slice->seen_switches = slice->ts->switches.load(std::memory_order_relaxed);
    slice->cpu_mark = read_clock(slice->cpu_clock);
    slices.push_back(slice);
    wake.notify_one();
}

void timer_forget(Slice* slice) noexcept {
    std::unique_lock<std::mutex> guard = lock_with_gil_held();
    if (slice->poking) {
        GilReleased released;  // the poke may wait for the GIL (3.11)
        poked.wait(guard, [slice] { return !slice->poking; });
    }
    slices.erase(std::remove(slices.begin(), slices.end(), slice), slices.end());
}

void timer_shutdown() noexcept {
    std::thread finished;
    {
        std::unique_lock<std::mutex> guard = lock_with_gil_held();
        stopped = true;
        slices.clear();
        wake.notify_one();
        finished = std::move(worker);
    }
    if (finished.joinable()) {
        GilReleased released;
        finished.join();
    }
}

}  // namespace syncless::stackless_face

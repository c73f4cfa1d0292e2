// Preemption for run(timeout): the watchdog's time slice, the timer thread
// that watches it and the hook that interrupts a tasklet at its next line of
// Python.
//
// Stackless counted bytecode instructions in its eval loop; stock CPython has
// no such counter, so a tick here is a fixed 10 ns of the thread's CPU time
// (about one instruction of CPython 3.11 on current x86-64). A timer thread,
// started by the first run(timeout>0), reads the CPU clock of each thread in
// such a run(). When the running tasklet's slice is used up it asks that
// thread to install a one-shot trace function (through a pending call; on
// 3.11 it takes the GIL and sets it itself); the trace function removes
// itself and switches the tasklet out to the watchdog. Nothing of this runs, and nothing is checked on a switch beyond
// one counter and one flag, until a program calls run(timeout>0).
#pragma once
#include <Python.h>
#include <time.h>

#include <atomic>
#include <cstdint>

#include "stackless_object.hpp"

namespace syncless::stackless_face {

inline constexpr std::int64_t tick_ns = 10;

// One run(timeout>0) call in force: shared by its thread (through
// StacklessThread::slice) and the timer thread.
struct Slice {
    StacklessThread* ts = nullptr;
    Tasklet* watchdog = nullptr;         // the run() caller (its run() keeps it alive)
    PyThreadState* tstate = nullptr;     // of the thread in run()
    clockid_t cpu_clock{};               // that thread's CPU-time clock
    PyInterpreterState* interp = nullptr;
    std::int64_t timeout_ns = 0;
    bool soft = false;
    bool total = false;                  // totaltimeout: one deadline from run()'s start
    bool ignore_nesting = false;         // may interrupt inside nested interpreter calls

    // The thread's own trace function while the hook stands in for it, and
    // the tasklet the hook interrupted (GIL held for these).
    Py_tracefunc saved_trace = nullptr;
    Ref saved_trace_obj;
    Ref opcode_frame;                    // 3.11: the frame asked for opcode events
    Ref opcode_frame_had;                // ... and its f_trace_opcodes before
    Ref victim;

    std::atomic<bool> active{true};      // cleared when run() returns
    std::atomic<bool> hard_due{false};   // the slice is used up: interrupt at the hook
    std::atomic<std::uint64_t> due_switches{0};  // ... if no switch happened since
    std::atomic<bool> poke_pending{false};       // a pending call is on its way

    // Owned by the timer thread (under its lock, but `poking`, set while
    // the timer pokes the thread without the lock).
    bool poking = false;
    std::uint64_t seen_switches = 0;
    std::int64_t cpu_mark = 0;           // CPU time when the slice began
    std::int64_t next_poke = 0;          // monotonic ns
};

// Arms run(timeout=ticks) for the calling thread's watchdog; returns the
// slice, which run() must pass to preempt_disarm(). Null if another
// run(timeout) of this thread is already in force (only the outermost one
// counts) or timing is unavailable.
Slice* preempt_arm(StacklessThread* ts, Tasklet* watchdog, long ticks, bool soft, bool total,
                   bool ignore_nesting) noexcept;
// Ends the slice; returns the tasklet it interrupted (new reference) or null.
PyObject* preempt_disarm(Slice* slice) noexcept;

// Soft preemption at a voluntary switch from prev to next: the watchdog to
// switch to instead (linked into the ring right before next), or next.
Tasklet* soft_interrupt_target(StacklessThread* ts, Tasklet* prev, Tasklet* next) noexcept;
// Takes the one-shot hook out, putting the thread's own trace function back
// (a switch saves that one for the outgoing tasklet).
void preempt_remove_hook(StacklessThread* ts) noexcept;
// An interrupt that had to wait (atomic, ...) happens now if it can; false
// with an exception set when the tasklet is resumed by a bomb.
bool preempt_if_pending(StacklessThread* ts) noexcept;

// --- the timer thread (stackless_preempt_timer.cpp) ---
void timer_watch(Slice* slice) noexcept;
void timer_forget(Slice* slice) noexcept;
// Stops the timer thread for good (interpreter exit); releases the GIL while
// it waits for the thread.
void timer_shutdown() noexcept;
// Called by the timer thread, without the GIL or its lock, when a hard
// slice is used up.
void poke_thread(Slice* slice) noexcept;

}  // namespace syncless::stackless_face

// Coroutine stacks, carved from large reserved regions.
//
// Why regions: a kernel keeps one mapping (VMA) per mmap, and Linux allows
// 65,530 of them by default. One mmap per stack, or a PROT_NONE guard page
// between stacks, would cap a process near 32,000 coroutines. A region holds
// many slots in a single mapping; guard pages come from MADV_GUARD_INSTALL
// (Linux 6.13+), which marks pages as faulting without splitting the VMA.
// Where the kernel lacks it, each slot keeps a canary at its lowest usable
// word, checked whenever the slot goes back to the pool (see docs/stacks.md).
//
// A slot, from high addresses to low:
//   [ root frame chunk | C stack (grows down) | guard page ]
// The frame chunk is CPython's per-coroutine "data stack" for interpreter
// frames; placing it right above the stack top means a shallow suspended
// coroutine touches a single page for both.
//
// Regions are reserved with MAP_NORESERVE: only touched pages cost memory.
// Released slots stay "hot" (pages kept) up to a small count; beyond that
// their pages are given back with MADV_DONTNEED, so a burst of coroutines
// does not leave its high-water mark resident.
//
// Thread safety: every acquire/release happens with the GIL held, and the
// pool relies on that. A free-threaded build needs a lock (or per-thread
// pools) here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncless {

struct StackSlot {
    char* base = nullptr;        // lowest address of the slot (guard page)
    char* stack_top = nullptr;   // initial stack pointer; chunk starts here
    std::size_t stack_size = 0;  // usable stack bytes below stack_top
    explicit operator bool() const noexcept { return base != nullptr; }
};

struct StackPoolStats {
    std::size_t slot_size;       // bytes per slot (stack + chunk + guard)
    std::size_t stack_size;      // usable C stack bytes per slot
    std::size_t chunk_size;      // bytes of the in-slot root frame chunk
    std::size_t regions;         // regions reserved
    std::size_t in_use;          // slots handed out
    std::size_t hot;             // free slots whose pages are kept
    std::size_t cold;            // free slots whose pages were given back
    bool guard_pages;            // MADV_GUARD_INSTALL in effect
};

class StackPool {
public:
    // Sizes are read once per process: set_stack_size() before the first
    // coroutine starts, or SYNCLESS_STACK_SIZE in the environment.
    static StackPool& instance();

    // Returns an empty slot when memory is exhausted (caller raises
    // MemoryError); never throws.
    StackSlot acquire() noexcept;
    void release(StackSlot slot) noexcept;

    StackPoolStats stats() const noexcept;
    std::size_t chunk_size() const noexcept { return chunk_size_; }

    // Fails (returns false) once any slot has been handed out.
    bool set_stack_size(std::size_t bytes) noexcept;
    static constexpr std::size_t min_stack_size = 64 * 1024;
    static constexpr std::size_t max_stack_size = std::size_t(1) << 30;

    // True when addr lies in the guard page of some slot; async-signal-safe.
    bool is_guard_address(const void* addr) const noexcept;

    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

private:
    StackPool();
    void configure(std::size_t stack_size) noexcept;
    bool add_region() noexcept;
    void give_back_pages(const StackSlot& slot, bool whole) noexcept;
    bool went_deep(const StackSlot& slot) const noexcept;
    void check_canary(const StackSlot& slot) const noexcept;

    std::size_t page_ = 4096;
    std::size_t stack_size_ = 0;
    std::size_t chunk_size_ = 0;
    std::size_t slot_size_ = 0;
    std::size_t slots_per_region_ = 0;
    std::size_t hot_limit_ = 0;
    bool guard_pages_ = false;
    bool sized_ = false;  // frozen once a slot was handed out

    // Region bases, appended only; read by the SIGSEGV handler.
    static constexpr std::size_t max_regions = 1 << 16;
    char* regions_[max_regions] = {};
    std::size_t region_count_ = 0;

    std::vector<char*> hot_;
    std::vector<char*> cold_;
    std::size_t in_use_ = 0;
};

}  // namespace syncless

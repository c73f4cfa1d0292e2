#include "stack_pool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "stack_overflow.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace syncless {

namespace {

// A thread's default stack: CPython's recursion limits (counters, not stack
// checks, on 3.11-3.13) are calibrated for it; one level of C recursion
// through list.sort takes over 1 KiB. Untouched pages cost nothing.
constexpr std::size_t default_stack_size = 8 * 1024 * 1024;
// The root frame chunk ends at the slot's (page-aligned) end, so its size
// sets where, inside a page, the C stack meets the first frame. 1.25 KiB into
// a page leaves room below for a typical suspended C stack (~0.8 KiB) and
// lets ~50 small frames (~6.4 KiB) end within the next page: 1 page in all
// for a shallow coroutine, 2 for a 50-frame one.
constexpr std::size_t root_chunk_size = 16 * 1024 - 1280;
// A region is at least this many slots and about this many bytes: few
// kernel mappings, and (with max_regions) room for tens of millions of
// small stacks.
constexpr std::size_t min_slots_per_region = 64;
constexpr std::size_t region_bytes = 256 * 1024 * 1024;
constexpr std::size_t hot_slots = 256;
// The page just below this many bytes under the stack top tells whether a
// coroutine went deep: its pages below are given back when it did.
constexpr std::size_t kept_stack_bytes = 16 * 1024;
constexpr std::uint64_t canary = 0x5359'4e43'4c45'5353ULL;  // "SYNCLESS"

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

std::size_t stack_size_from_env() {
    const char* text = std::getenv("SYNCLESS_STACK_SIZE");
    if (text == nullptr || *text == '\0') {
        return default_stack_size;
    }
    char* end = nullptr;
    unsigned long long value = std::strtoull(text, &end, 10);
    switch (*end) {
        case 'k': case 'K': value <<= 10; ++end; break;
        case 'm': case 'M': value <<= 20; ++end; break;
        default: break;
    }
    if (*end != '\0' || value < StackPool::min_stack_size || value > StackPool::max_stack_size) {
        std::fprintf(stderr,
                     "syncless: ignoring SYNCLESS_STACK_SIZE=%s (want bytes, or a K/M "
                     "suffix, between 64K and 1024M); using %zu\n",
                     text, default_stack_size);
        return default_stack_size;
    }
    return value;
}

// SYNCLESS_GUARD_PAGES=0 turns guard pages off (tools that do not know
// MADV_GUARD_INSTALL, or testing the canary fallback).
bool guard_pages_wanted() {
    const char* text = std::getenv("SYNCLESS_GUARD_PAGES");
    return text == nullptr || std::strcmp(text, "0") != 0;
}

bool kernel_has_guard_regions(std::size_t page) {
    void* probe = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) {
        return false;
    }
    bool ok = madvise(probe, page, MADV_GUARD_INSTALL) == 0;
    munmap(probe, 2 * page);
    return ok;
}

}  // namespace

StackPool& StackPool::instance() {
    static StackPool* pool = new StackPool();  // never destroyed: stacks may outlive exit
    return *pool;
}

StackPool::StackPool() {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    guard_pages_ = guard_pages_wanted() && kernel_has_guard_regions(page_);
    configure(stack_size_from_env());
}

void StackPool::configure(std::size_t stack_size) noexcept {
    stack_size_ = round_up(stack_size, page_);
    chunk_size_ = root_chunk_size;
    slot_size_ = round_up(page_ + stack_size_ + chunk_size_, page_);
    slots_per_region_ = std::max(min_slots_per_region, region_bytes / slot_size_);
    hot_limit_ = hot_slots;
}

bool StackPool::set_stack_size(std::size_t bytes) noexcept {
    if (sized_ || bytes < min_stack_size || bytes > max_stack_size) {
        return false;
    }
    configure(bytes);
    return true;
}

bool StackPool::add_region() noexcept {
    if (region_count_ == max_regions) {
        return false;
    }
    std::size_t bytes = slots_per_region_ * slot_size_;
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        return false;
    }
    char* base = static_cast<char*>(mem);
    for (std::size_t i = slots_per_region_; i-- > 0;) {
        char* slot = base + i * slot_size_;
        if (guard_pages_) {
            madvise(slot, page_, MADV_GUARD_INSTALL);
        }
        cold_.push_back(slot);
    }
    regions_[region_count_] = base;
    __atomic_store_n(&region_count_, region_count_ + 1, __ATOMIC_RELEASE);
    return true;
}

StackSlot StackPool::acquire() noexcept {
    std::vector<char*>* from = !hot_.empty() ? &hot_ : &cold_;
    if (from->empty()) {
        if (!add_region()) {
            return StackSlot{};
        }
        from = &cold_;
    }
    char* base = from->back();
    from->pop_back();
    sized_ = true;
    ++in_use_;
    StackSlot slot;
    slot.base = base;
    slot.stack_top = base + slot_size_ - chunk_size_;
    slot.stack_size = slot_size_ - chunk_size_ - page_;
    if (!guard_pages_) {
        // Costs a resident page per slot, so only where no guard page exists.
        *reinterpret_cast<std::uint64_t*>(base + page_) = canary;
    }
    return slot;
}

void StackPool::check_canary(const StackSlot& slot) const noexcept {
    if (!guard_pages_ && *reinterpret_cast<const std::uint64_t*>(slot.base + page_) != canary) {
        fatal_stack_overflow(stack_size_);
    }
}

void StackPool::give_back_pages(const StackSlot& slot, bool whole) noexcept {
    char* low = slot.base + page_;
    char* high = whole ? slot.base + slot_size_ : slot.stack_top - kept_stack_bytes;
    madvise(low, static_cast<std::size_t>(high - low), MADV_DONTNEED);
}

void StackPool::release(StackSlot slot) noexcept {
    check_canary(slot);
    --in_use_;
    bool keep_pages = hot_.size() < hot_limit_;
    bool deep = went_deep(slot);
#if defined(__SANITIZE_ADDRESS__)
    // Frames of a coroutine discarded without unwinding leave their redzones
    // poisoned; the next coroutine on this stack must not trip on them. Only
    // the part that was used: unpoisoning writes ASan's shadow memory.
    char* used_low = deep ? slot.base + page_ : slot.stack_top - kept_stack_bytes;
    ASAN_UNPOISON_MEMORY_REGION(used_low, static_cast<std::size_t>(slot.base + slot_size_ - used_low));
#endif
    if (!keep_pages) {
        give_back_pages(slot, true);
        cold_.push_back(slot.base);
        return;
    }
    if (deep) {
        give_back_pages(slot, false);
    }
    hot_.push_back(slot.base);
}

// One word every 512 bytes of the page below the kept zone: a stack that
// reached that deep wrote some of them (every frame saves a return address).
// A miss only keeps pages resident; it never corrupts.
bool StackPool::went_deep(const StackSlot& slot) const noexcept {
    // The whole page below the kept zone (stack_top is not page-aligned).
    auto kept_low = reinterpret_cast<std::uintptr_t>(slot.stack_top - kept_stack_bytes);
    const auto* probe = reinterpret_cast<const std::uint64_t*>((kept_low & ~(page_ - 1)) - page_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < page_ / sizeof(std::uint64_t); i += 64) {
        seen |= probe[i];
    }
    return seen != 0;
}

bool StackPool::is_guard_address(const void* addr) const noexcept {
    const char* a = static_cast<const char*>(addr);
    std::size_t count = __atomic_load_n(&region_count_, __ATOMIC_ACQUIRE);
    std::size_t bytes = slots_per_region_ * slot_size_;
    for (std::size_t i = 0; i < count; ++i) {
        const char* base = regions_[i];
        if (a >= base && a < base + bytes) {
            return static_cast<std::size_t>(a - base) % slot_size_ < page_;
        }
    }
    return false;
}

StackPoolStats StackPool::stats() const noexcept {
    return StackPoolStats{slot_size_, stack_size_, chunk_size_, region_count_,
                          in_use_,    hot_.size(), cold_.size(), guard_pages_};
}

}  // namespace syncless

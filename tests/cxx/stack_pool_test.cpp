// StackPool: slot layout, hot/cold reuse, page give-back, sizing, guards.
//
// The pool is a process-wide singleton, so these tests never assume a fresh
// one: they compare stats() before and after. Tests that need a pool no slot
// was taken from yet run their statement in a re-executed child process
// (death-test style "threadsafe" execs the binary anew; "fast" would fork
// and inherit the pool).
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "stack_pool.hpp"

using syncless::StackPool;
using syncless::StackSlot;

namespace {

const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
// Mirrors kept_stack_bytes in stack_pool.cpp: a released slot keeps this
// much below its stack top resident.
constexpr std::size_t kept_bytes = 16 * 1024;

StackPool& pool() { return StackPool::instance(); }

// Whether each page in [from, to) is resident, from mincore().
std::vector<bool> resident(const char* from, const char* to) {
    auto lo = reinterpret_cast<std::uintptr_t>(from) / page * page;
    auto hi = (reinterpret_cast<std::uintptr_t>(to) + page - 1) / page * page;
    std::vector<unsigned char> vec((hi - lo) / page);
    if (mincore(reinterpret_cast<void*>(lo), hi - lo, vec.data()) != 0) {
        ADD_FAILURE() << "mincore failed";
        return {};
    }
    std::vector<bool> out;
    for (unsigned char v : vec) out.push_back(v & 1);
    return out;
}

std::size_t count(const std::vector<bool>& v, bool value) {
    return static_cast<std::size_t>(std::count(v.begin(), v.end(), value));
}

std::size_t maps_lines() {
    std::ifstream maps("/proc/self/maps");
    std::size_t n = 0;
    for (std::string line; std::getline(maps, line);) ++n;
    return n;
}

// In a death-test child: report and fail without gtest's machinery.
void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "check failed: %s\n", what);
        std::_Exit(1);
    }
}

}  // namespace

TEST(StackPool, SlotLayout) {
    auto st = pool().stats();
    std::vector<StackSlot> slots;
    for (int i = 0; i < 64; ++i) slots.push_back(pool().acquire());
    for (const StackSlot& s : slots) {
        ASSERT_TRUE(s);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.base) % page, 0u);
        EXPECT_GE(s.stack_size, st.stack_size);
        // The usable stack ends exactly one (guard) page above the base...
        EXPECT_EQ(s.stack_top - s.stack_size, s.base + page);
        // ...and the frame chunk above the stack top stays inside the slot.
        EXPECT_EQ(s.stack_top + st.chunk_size, s.base + st.slot_size);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.stack_top) % 16, 0u);  // ABI alignment
    }
    std::sort(slots.begin(), slots.end(),
              [](const StackSlot& a, const StackSlot& b) { return a.base < b.base; });
    for (std::size_t i = 1; i < slots.size(); ++i) {
        EXPECT_GE(static_cast<std::size_t>(slots[i].base - slots[i - 1].base), st.slot_size);
    }
    for (const StackSlot& s : slots) pool().release(s);
}

TEST(StackPool, ReleaseThenAcquireIsLifo) {
    // Each acquire takes from the hot list first, so after taking two slots
    // the hot list has room for both again whatever ran before.
    StackSlot a = pool().acquire();
    StackSlot b = pool().acquire();
    pool().release(a);
    pool().release(b);
    EXPECT_EQ(pool().acquire().base, b.base);
    EXPECT_EQ(pool().acquire().base, a.base);
    pool().release(a);
    pool().release(b);
}

TEST(StackPool, StatsCount) {
    pool().release(pool().acquire());  // a fresh pool has no region yet
    auto s0 = pool().stats();
    StackSlot x = pool().acquire();
    auto s1 = pool().stats();
    EXPECT_EQ(s1.in_use, s0.in_use + 1);
    EXPECT_EQ(s1.hot + s1.cold + 1, s0.hot + s0.cold);
    EXPECT_EQ(s1.hot, s0.hot - 1);  // hot is taken before cold
    EXPECT_EQ(s1.regions, s0.regions);
    pool().release(x);
    auto s2 = pool().stats();
    EXPECT_EQ(s2.in_use, s0.in_use);
    EXPECT_EQ(s2.hot + s2.cold, s0.hot + s0.cold);

    // Exhaust the free slots: the next acquire reserves exactly one region,
    // and every region holds the same number of slots.
    std::vector<StackSlot> held;
    for (std::size_t i = 0; i < s2.hot + s2.cold + 1; ++i) held.push_back(pool().acquire());
    auto s3 = pool().stats();
    EXPECT_EQ(s3.regions, s2.regions + 1);
    EXPECT_EQ(s3.in_use, s2.in_use + held.size());
    EXPECT_EQ(s3.hot, 0u);
    std::size_t total = s3.in_use + s3.hot + s3.cold;
    EXPECT_EQ(total % s3.regions, 0u);
    EXPECT_EQ(total - (s2.in_use + s2.hot + s2.cold), total / s3.regions);
    for (const StackSlot& s : held) pool().release(s);
    EXPECT_EQ(pool().stats().in_use, s2.in_use);
}

TEST(StackPool, HundredThousandSlotsWithoutAMappingEach) {
    constexpr std::size_t n = 100000;  // > vm.max_map_count (65530 by default)
    auto s0 = pool().stats();
    std::vector<StackSlot> held;
    held.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        held.push_back(pool().acquire());
        ASSERT_TRUE(held.back()) << "acquire " << i << " failed";
    }
    EXPECT_EQ(pool().stats().in_use, s0.in_use + n);
    EXPECT_LT(maps_lines(), 65530u / 10) << "regions or guard pages split into many mappings";
    std::vector<char*> bases;
    for (const StackSlot& s : held) bases.push_back(s.base);
    std::sort(bases.begin(), bases.end());
    EXPECT_EQ(std::adjacent_find(bases.begin(), bases.end()), bases.end());
    for (const StackSlot& s : held) pool().release(s);
    EXPECT_EQ(pool().stats().in_use, s0.in_use);
}

TEST(StackPool, DeepSlotGivesBackPagesBelowKeptZone) {
    StackSlot s = pool().acquire();  // leaves room in the hot list for it
    char* low = s.stack_top - s.stack_size;
    // The whole stack but its lowest word, the canary checked on release.
    std::fill(low + 8, s.stack_top, char(0x5a));
    ASSERT_EQ(count(resident(low, s.stack_top), false), 0u);
    auto before = pool().stats();
    pool().release(s);
    EXPECT_EQ(pool().stats().hot, before.hot + 1);
    // madvise rounds its end up to a page, so the page that holds the kept
    // zone's lower edge goes too; pages wholly inside the zone stay.
    char* edge = s.stack_top - kept_bytes;
    char* edge_page_end = reinterpret_cast<char*>(
        (reinterpret_cast<std::uintptr_t>(edge) + page - 1) / page * page);
    EXPECT_EQ(count(resident(low, edge), true), 0u);
    EXPECT_EQ(count(resident(edge_page_end, s.stack_top), false), 0u);
    pool().release(pool().acquire());  // the same slot, shallow this time
}

TEST(StackPool, ShallowSlotKeepsPagesUntilHotListIsFull) {
    auto s0 = pool().stats();
    std::vector<StackSlot> held;
    for (std::size_t i = 0; i < s0.hot + 1024; ++i) {
        held.push_back(pool().acquire());
        std::fill(held.back().stack_top - 4096, held.back().stack_top, char(1));
    }
    std::size_t kept = 0, dropped = 0;
    for (const StackSlot& s : held) {
        auto before = pool().stats();
        pool().release(s);
        auto after = pool().stats();
        auto pages = resident(s.stack_top - s.stack_size, s.stack_top);
        if (after.hot == before.hot + 1) {
            ++kept;  // hot: the touched top stays resident
            EXPECT_GE(count(pages, true), 1u);
        } else {
            ++dropped;  // beyond the hot limit: every page is given back
            EXPECT_EQ(after.cold, before.cold + 1);
            EXPECT_EQ(count(pages, true), 0u);
        }
    }
    EXPECT_GT(kept, 0u);
    EXPECT_GT(dropped, 0u) << "the hot list never filled up";
}

TEST(StackPool, IsGuardAddress) {
    StackSlot s = pool().acquire();
    int local = 0;
    EXPECT_TRUE(pool().is_guard_address(s.base));
    EXPECT_TRUE(pool().is_guard_address(s.base + page - 1));
    EXPECT_FALSE(pool().is_guard_address(s.base + page));
    EXPECT_FALSE(pool().is_guard_address(s.stack_top - 1));
    EXPECT_FALSE(pool().is_guard_address(s.stack_top));
    EXPECT_FALSE(pool().is_guard_address(&local));
    EXPECT_FALSE(pool().is_guard_address(nullptr));
    pool().release(s);
}

TEST(StackPoolDeathTest, SetStackSizeInFreshProcess) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // a pool no slot was taken from
    EXPECT_EXIT(
        {
            StackPool& p = pool();
            require(!p.set_stack_size(StackPool::min_stack_size - 1), "below min accepted");
            require(!p.set_stack_size(StackPool::max_stack_size + 1), "above max accepted");
            require(p.set_stack_size(256 * 1024), "256K refused");
            require(p.stats().stack_size == 256 * 1024, "stats().stack_size not 256K");
            StackSlot s = p.acquire();
            require(s.stack_size >= 256 * 1024 && s.stack_size < 256 * 1024 + page,
                    "slot size not the configured one");
            require(!p.set_stack_size(512 * 1024), "resize accepted after an acquire");
            p.release(s);
            require(!p.set_stack_size(512 * 1024), "resize accepted after a release");
            require(p.stats().stack_size == 256 * 1024, "size changed");
            std::_Exit(0);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST(StackPoolDeathTest, GuardPageFaults) {
    if (!pool().stats().guard_pages) GTEST_SKIP() << "kernel lacks MADV_GUARD_INSTALL";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // No overflow handler is installed in this binary: the default action.
    EXPECT_EXIT(*static_cast<volatile char*>(pool().acquire().base) = 1,
                ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(StackPoolDeathTest, ClobberedCanaryIsFatalOnRelease) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // The fallback check for kernels without guard pages: an overflow that
    // overwrote the slot's lowest word is reported when the slot comes back.
    // The child process builds its own pool, without guard pages.
    setenv("SYNCLESS_GUARD_PAGES", "0", 1);
    EXPECT_DEATH(
        {
            StackSlot s = pool().acquire();
            *reinterpret_cast<std::uint64_t*>(s.stack_top - s.stack_size) = 0;
            pool().release(s);
        },
        "overflowed its C stack");
    unsetenv("SYNCLESS_GUARD_PAGES");
}

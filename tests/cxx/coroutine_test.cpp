// Coroutine switching, with an embedded interpreter: every switch saves and
// restores PyThreadState fields, so the tests run with Python initialized and
// the GIL held by the main thread throughout.
#include <gtest/gtest.h>

#include <Python.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "coroutine.hpp"
#include "py_ref.hpp"

using syncless::Coroutine;
using syncless::Ref;
using syncless::StackPool;
using syncless::ThreadCore;

namespace {

class PythonEnvironment : public ::testing::Environment {
public:
    // No signal handlers: death tests and gtest own the signals.
    void SetUp() override { Py_InitializeEx(0); }
    void TearDown() override { EXPECT_EQ(Py_FinalizeEx(), 0); }
};

const auto* const python_env =
    ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

ThreadCore& core() { return ThreadCore::current_thread(); }
Coroutine& main_co() { return core().main(); }

std::size_t in_use() { return StackPool::instance().stats().in_use; }

// Bodies get their test's data through the coroutine's owner pointer.
template <class T>
T& data(Coroutine* self) { return *static_cast<T*>(self->owner()); }

struct PingPong {
    std::vector<std::string> log;
    int rounds = 3;
    std::vector<Coroutine*> origins;  // seen by the child after each switch in
};

Coroutine* ping_pong_body(Coroutine* self) noexcept {
    auto& d = data<PingPong>(self);
    for (int i = 0; i < d.rounds; ++i) {
        d.origins.push_back(core().origin());
        EXPECT_EQ(core().current(), self);
        d.log.push_back("child " + std::to_string(i));
        main_co().switch_to();
    }
    d.origins.push_back(core().origin());
    d.log.push_back("child done");
    return &main_co();
}

TEST(Coroutine, PingPong) {
    PingPong d;
    Coroutine child(ping_pong_body);
    child.set_owner(&d);
    EXPECT_EQ(child.status(), Coroutine::Status::unstarted);
    std::size_t before = in_use();
    for (int i = 0; i <= d.rounds; ++i) {
        d.log.push_back("main " + std::to_string(i));
        ASSERT_TRUE(child.switch_to());
        EXPECT_EQ(core().current(), &main_co());
        EXPECT_EQ(core().origin(), &child);
        if (i < d.rounds) {
            EXPECT_EQ(child.status(), Coroutine::Status::suspended);
            EXPECT_EQ(in_use(), before + 1);
            EXPECT_GT(child.stack_in_use(), 0u);
            EXPECT_LT(child.stack_in_use(), StackPool::instance().stats().stack_size);
        }
    }
    std::vector<std::string> expected = {"main 0", "child 0", "main 1", "child 1",
                                         "main 2", "child 2", "main 3", "child done"};
    EXPECT_EQ(d.log, expected);
    EXPECT_EQ(d.origins, std::vector<Coroutine*>(d.rounds + 1, &main_co()));
    // Finished: its stack went back to the pool on arrival in main.
    EXPECT_EQ(child.status(), Coroutine::Status::dead);
    EXPECT_EQ(child.stack_in_use(), 0u);
    EXPECT_EQ(in_use(), before);
    EXPECT_EQ(main_co().status(), Coroutine::Status::running);
}

// A hands over to B directly, and finishes into B; B finishes into main.
struct Relay {
    Coroutine* a = nullptr;
    Coroutine* b = nullptr;
    std::vector<std::string> log;
};

Coroutine* relay_a(Coroutine* self) noexcept {
    auto& d = data<Relay>(self);
    d.log.push_back("a1");
    d.b->switch_to();
    EXPECT_EQ(core().origin(), &main_co());
    d.log.push_back("a2");
    return d.b;
}

Coroutine* relay_b(Coroutine* self) noexcept {
    auto& d = data<Relay>(self);
    EXPECT_EQ(core().origin(), d.a);
    d.log.push_back("b1");
    main_co().switch_to();
    EXPECT_EQ(core().origin(), d.a);  // a, already dead, finished into b
    EXPECT_EQ(d.a->status(), Coroutine::Status::dead);
    d.log.push_back("b2");
    return &main_co();
}

TEST(Coroutine, SwitchBetweenChildrenAndFinishIntoAnother) {
    Relay d;
    Coroutine a(relay_a), b(relay_b);
    d.a = &a;
    d.b = &b;
    a.set_owner(&d);
    b.set_owner(&d);
    std::size_t before = in_use();
    ASSERT_TRUE(a.switch_to());  // a -> b -> main
    EXPECT_EQ(core().origin(), &b);
    EXPECT_EQ(in_use(), before + 2);
    ASSERT_TRUE(a.switch_to());  // a finishes into b, b finishes into main
    EXPECT_EQ(core().origin(), &b);
    EXPECT_EQ(d.log, (std::vector<std::string>{"a1", "b1", "a2", "b2"}));
    EXPECT_EQ(a.status(), Coroutine::Status::dead);
    EXPECT_EQ(b.status(), Coroutine::Status::dead);
    EXPECT_EQ(in_use(), before);
}

Coroutine* yield_once_body(Coroutine* self) noexcept {
    ++data<int>(self);
    main_co().switch_to();
    ++data<int>(self);
    return &main_co();
}

TEST(Coroutine, TenThousandSuspendedAtOnce) {
    constexpr int n = 10000;
    int counter = 0;
    std::size_t before = in_use();
    std::vector<std::unique_ptr<Coroutine>> all;
    for (int i = 0; i < n; ++i) {
        all.push_back(std::make_unique<Coroutine>(yield_once_body));
        all.back()->set_owner(&counter);
        ASSERT_TRUE(all.back()->switch_to());
    }
    EXPECT_EQ(counter, n);
    EXPECT_EQ(in_use(), before + n);
    for (auto& c : all) {
        EXPECT_EQ(c->status(), Coroutine::Status::suspended);
        ASSERT_TRUE(c->switch_to());
        EXPECT_EQ(c->status(), Coroutine::Status::dead);
    }
    EXPECT_EQ(counter, 2 * n);
    EXPECT_EQ(in_use(), before);
}

// A root with one nested coroutine: the nested one suspends the whole family
// (a switch to main's family), is resumed through the root, then moves within
// the family to the root and back, and finishes into it.
struct FamilyData final : syncless::FamilyView {
    // A root and one nested coroutine, both owned by (and reporting to) this.
    FamilyData(Coroutine& root_co, Coroutine& nested_co) noexcept
        : root(&root_co), nested(&nested_co) {
        root->set_owner(this);
        nested->set_owner(this);
        root->set_family_view(this);
    }
    Coroutine* root;
    Coroutine* nested;
    std::vector<std::string> log;
    int ended = 0;
    void family_ended() noexcept override {
        ++ended;
        root->set_family_view(nullptr);
    }
};

Coroutine* family_nested(Coroutine* self) noexcept {
    auto& d = data<FamilyData>(self);
    d.log.push_back("n1");
    EXPECT_EQ(core().current_root(), d.root);
    main_co().switch_to();
    d.log.push_back("n2");
    EXPECT_EQ(core().current_root(), d.root);
    d.root->switch_to();  // within the family: the root itself
    d.log.push_back("n3");
    return d.root;
}

Coroutine* family_root(Coroutine* self) noexcept {
    auto& d = data<FamilyData>(self);
    d.log.push_back("r1");
    d.nested->switch_to();
    d.log.push_back("r2");
    EXPECT_EQ(d.root->active_member(), d.root);
    d.nested->switch_to();
    d.log.push_back("r3");
    EXPECT_EQ(d.nested->status(), Coroutine::Status::dead);
    return &main_co();  // finish() ends the family: its view is told
}

TEST(Coroutine, FamilySuspendsAndResumesAsAWhole) {
    Coroutine root(family_root);
    Coroutine nested(family_nested, Coroutine::Kind::nested);
    FamilyData d(root, nested);
    std::size_t before = in_use();
    ASSERT_TRUE(root.switch_to());  // r1, n1, then main's family again
    EXPECT_EQ(core().current_root(), &main_co());
    EXPECT_EQ(root.active_member(), &nested);
    EXPECT_EQ(root.status(), Coroutine::Status::suspended);
    EXPECT_EQ(in_use(), before + 2);
    ASSERT_TRUE(root.switch_to());  // lands in nested: n2, r2, n3, r3
    EXPECT_EQ(d.log, (std::vector<std::string>{"r1", "n1", "n2", "r2", "n3", "r3"}));
    EXPECT_EQ(root.status(), Coroutine::Status::dead);
    EXPECT_EQ(d.ended, 1);
    EXPECT_EQ(root.family_view(), nullptr);
    EXPECT_EQ(core().current_root(), &main_co());
    EXPECT_EQ(main_co().active_member(), &main_co());
    EXPECT_EQ(in_use(), before);
}

Coroutine* nest_and_leave(Coroutine* self) noexcept {
    auto& d = data<FamilyData>(self);
    d.nested->switch_to();
    ADD_FAILURE() << "an abandoned root ran again";
    return &main_co();
}

Coroutine* leave_to_main(Coroutine*) noexcept {
    main_co().switch_to();
    ADD_FAILURE() << "the active member of an abandoned root ran again";
    return &main_co();
}

TEST(Coroutine, AbandonedRootTakesItsActiveMemberAndEndsItsFamily) {
    Coroutine root(nest_and_leave);
    Coroutine nested(leave_to_main, Coroutine::Kind::nested);
    FamilyData d(root, nested);
    std::size_t before = in_use();
    ASSERT_TRUE(root.switch_to());
    EXPECT_EQ(in_use(), before + 2);
    root.abandon();
    EXPECT_EQ(root.status(), Coroutine::Status::dead);
    EXPECT_EQ(nested.status(), Coroutine::Status::dead);
    EXPECT_EQ(root.active_member(), &root);
    EXPECT_EQ(d.ended, 1);
    EXPECT_EQ(in_use(), before);
}

// Runs Python source in `globals`; any exception fails the test.
void run(const char* code, PyObject* globals) {
    Ref result = Ref::steal(PyRun_String(code, Py_file_input, globals, globals));
    if (!result) {
        PyErr_Print();
        ADD_FAILURE() << "Python code raised:\n" << code;
    }
}

std::string eval_repr(const char* expr, PyObject* globals) {
    Ref value = Ref::steal(PyRun_String(expr, Py_eval_input, globals, globals));
    Ref text = value ? Ref::steal(PyObject_Repr(value.get())) : Ref();
    if (!text) {
        PyErr_Print();
        return "<error>";
    }
    return PyUnicode_AsUTF8(text.get());
}

PyObject* to_main(PyObject*, PyObject*) {
    if (!main_co().switch_to()) return nullptr;
    Py_RETURN_NONE;
}
PyMethodDef to_main_def = {"to_main", to_main, METH_NOARGS, nullptr};

// A namespace with to_main() and a context variable the main coroutine set.
Ref new_globals() {
    Ref globals = Ref::steal(PyDict_New());
    PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins());
    Ref fn = Ref::steal(PyCFunction_New(&to_main_def, nullptr));
    PyDict_SetItemString(globals.get(), "to_main", fn.get());
    return globals;
}

// Suspends inside a Python frame, inside an except block, with a context
// variable set: all of that must stay with this coroutine.
Coroutine* python_body(Coroutine* self) noexcept {
    PyObject* g = static_cast<PyObject*>(self->owner());
    run("import sys\n"
        "child_start = (var.get(), sys.exc_info()[1])\n"
        "var.set('child')\n"
        "def suspend_in_frame():\n"
        "    try:\n"
        "        raise KeyError('child')\n"
        "    except KeyError:\n"
        "        to_main()\n"
        "        return (var.get(), repr(sys.exc_info()[1]))\n"
        "child_resumed = suspend_in_frame()\n"
        "child_end = (var.get(), sys.exc_info()[1])\n",
        g);
    return &main_co();
}

TEST(Coroutine, InterpreterStateIsPerCoroutine) {
    Ref g = new_globals();
    run("import contextvars, sys\n"
        "var = contextvars.ContextVar('var', default='unset')\n"
        "var.set('main')\n",
        g.get());
    Ref main_exc = Ref::steal(PyObject_CallFunction(PyExc_ValueError, "s", "main"));
    PyErr_SetHandledException(main_exc.get());  // as if main sat in an except block

    Coroutine child(python_body);
    child.set_owner(g.get());
    ASSERT_TRUE(child.switch_to());
    ASSERT_EQ(child.status(), Coroutine::Status::suspended);
    // A new coroutine starts with an empty context and no handled exception.
    EXPECT_EQ(eval_repr("child_start", g.get()), "('unset', None)");
    // The child is suspended in its except block; main still sees its own.
    Ref handled = Ref::steal(PyErr_GetHandledException());
    EXPECT_EQ(handled.get(), main_exc.get());
    EXPECT_EQ(eval_repr("var.get()", g.get()), "'main'");
    EXPECT_EQ(eval_repr("repr(sys.exc_info()[1])", g.get()), "\"ValueError('main')\"");
    // Python frames run on main while the child's frame is suspended.
    run("def depth(n): return 0 if n == 0 else 1 + depth(n - 1)\n"
        "assert depth(200) == 200\n",
        g.get());

    ASSERT_TRUE(child.switch_to());
    ASSERT_EQ(child.status(), Coroutine::Status::dead);
    EXPECT_EQ(eval_repr("child_resumed", g.get()), "('child', \"KeyError('child')\")");
    EXPECT_EQ(eval_repr("child_end", g.get()), "('child', None)");
    handled = Ref::steal(PyErr_GetHandledException());
    EXPECT_EQ(handled.get(), main_exc.get());
    EXPECT_EQ(eval_repr("var.get()", g.get()), "'main'");
    PyErr_SetHandledException(nullptr);
    EXPECT_FALSE(PyErr_Occurred());
}

// Deep enough for any stack; the addition after the call keeps it from
// becoming a loop.
__attribute__((noinline)) int recurse(int n) {
    volatile char frame[512];
    frame[0] = static_cast<char>(n);
    return n == 0 ? 0 : recurse(n - 1) + frame[0];
}

Coroutine* overflow_body(Coroutine*) noexcept {
    std::fprintf(stderr, "%d\n", recurse(1 << 20));  // uses the result
    return &main_co();
}

bool killed_by_abort_or_segv(int status) {
    return WIFSIGNALED(status) && (WTERMSIG(status) == SIGABRT || WTERMSIG(status) == SIGSEGV);
}

TEST(CoroutineDeathTest, StackOverflowIsReported) {
    if (!StackPool::instance().stats().guard_pages) {
        GTEST_SKIP() << "kernel lacks MADV_GUARD_INSTALL: overflow is caught only by the canary";
    }
    // The stack size is frozen once any slot was taken, so the statement
    // runs in a re-executed child where this test is the only one.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            if (!StackPool::instance().set_stack_size(64 * 1024)) std::_Exit(3);
            Coroutine deep(overflow_body);
            deep.switch_to();
        },
        killed_by_abort_or_segv, "overflowed its C stack \\(65536 bytes\\)");
}

}  // namespace

// The only file that reads CPython's internal frame layout; the headers of
// the version compiled against describe it.
#include "frame_chain.hpp"

#include <algorithm>
#include <new>
#include <vector>

#include "py_ref.hpp"

#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"

namespace syncless {

namespace {

// Frames in the coroutine's chunks. Generator frames live in their
// generator; 3.12+ entry frames live on the C stack and have no frame
// object.
bool owned_by_coroutine(const _PyInterpreterFrame* frame) {
    return frame->owner == FRAME_OWNED_BY_THREAD;
}

PyCodeObject* code_of(const _PyInterpreterFrame* frame) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject* executable = frame->f_executable;
    return executable != nullptr && PyCode_Check(executable)
               ? reinterpret_cast<PyCodeObject*>(executable)
               : nullptr;
#else
    return frame->f_code;
#endif
}

PyObject* function_of(const _PyInterpreterFrame* frame) {
#if PY_VERSION_HEX >= 0x030C0000
    return frame->f_funcobj;
#else
    return reinterpret_cast<PyObject*>(frame->f_func);
#endif
}

// The instruction the frame executes (a call, while a C function it called
// runs).
const _Py_CODEUNIT* instruction_of(const _PyInterpreterFrame* frame) {
#if PY_VERSION_HEX >= 0x030D0000
    return frame->instr_ptr;
#else
    return frame->prev_instr;
#endif
}

// The caller of `callee` pushed it from its own interpreter loop, saving its
// stack depth first; otherwise C code called it.
bool pushed_inline(const _PyInterpreterFrame* callee) {
#if PY_VERSION_HEX >= 0x030C0000
    return callee->owner != FRAME_OWNED_BY_CSTACK;
#else
    return !callee->is_entry;
#endif
}

// Frames whose locals and stack the collector sees only through us. A
// generator reports its own frame unless the frame runs: before 3.12 always
// (with the depth it saved last), from 3.12 on only its specials then.
bool frame_contents_are_ours(const _PyInterpreterFrame* frame) {
    if (frame->owner == FRAME_OWNED_BY_THREAD) {
        return true;
    }
#if PY_VERSION_HEX >= 0x030C0000
    return frame->owner == FRAME_OWNED_BY_GENERATOR && frame->stacktop < 0;
#else
    return false;
#endif
}

// --- call-site tables, one per code object, in its co_extra ---

enum class SiteKind : unsigned char { iter = 0, call = 1, call_kw = 2 };

struct CallSite {
    int offset;  // code units
    int depth;   // of the value stack while the instruction runs
    int oparg;
    SiteKind kind;
};

struct FrameTable {
    std::vector<CallSite> sites;  // by offset

    const CallSite* find(int offset) const noexcept {
        auto it = std::lower_bound(sites.begin(), sites.end(), offset,
                                   [](const CallSite& s, int o) { return s.offset < o; });
        return it != sites.end() && it->offset == offset ? &*it : nullptr;
    }
};

FrameTable asked_for;                 // the mark of a table asked for, not made yet
Py_ssize_t table_slot = -1;           // the co_extra index; -2 if none could be had
std::vector<PyObject*> asked_codes;   // strong references, until taken

void free_table(void* table) {
    if (table != &asked_for) {
        delete static_cast<FrameTable*>(table);
    }
}

bool have_table_slot() {
    if (table_slot == -1) {
        Py_ssize_t slot = _PyEval_RequestCodeExtraIndex(free_table);
        table_slot = slot >= 0 ? slot : -2;
    }
    return table_slot >= 0;
}

// Null when there is none (or it is only asked for). Reads only: safe
// inside tp_traverse.
void* table_extra(PyCodeObject* code) {
    void* extra = nullptr;
    if (table_slot < 0 ||
        _PyCode_GetExtra(reinterpret_cast<PyObject*>(code), table_slot, &extra) < 0) {
        return nullptr;
    }
    return extra;
}

const FrameTable* table_of(PyCodeObject* code) {
    void* extra = table_extra(code);
    return extra != &asked_for ? static_cast<const FrameTable*>(extra) : nullptr;
}

bool is_method_descriptor(PyObject* o) {
    return o != nullptr && PyType_HasFeature(Py_TYPE(o), Py_TPFLAGS_METHOD_DESCRIPTOR);
}

int visit_range(PyObject* const* items, int from, int to, visitproc visit, void* arg) {
    for (int i = from; i < to; ++i) {
        Py_VISIT(items[i]);
    }
    return 0;
}

// The stack of a frame suspended at `site`: all of it, the call's operands
// included (they stay on the stack until the call returns). One slot may
// hold a borrowed reference meanwhile: a C callee that forwards the
// arguments with PY_VECTORCALL_ARGUMENTS_OFFSET to a bound method lends the
// slot before them to that method's self. That slot is read only in the
// method form (a method descriptor in the callable's place, as LOAD_ATTR and
// LOAD_METHOD leave it), whose callee lends nothing.
int visit_site(PyObject* const* stack, const CallSite& site, visitproc visit, void* arg) {
    if (site.kind == SiteKind::iter) {
        return visit_range(stack, 0, site.depth, visit, arg);
    }
    int base = site.depth - site.oparg - 2 - (site.kind == SiteKind::call_kw ? 1 : 0);
    if (base < 0) {
        return 0;
    }
    if (int err = visit_range(stack, 0, base, visit, arg)) {
        return err;
    }
    PyObject* callable = stack[base];
#if PY_VERSION_HEX >= 0x030D0000
    // [callable, self or NULL, arguments..., (keyword names)]
    Py_VISIT(callable);
    if (is_method_descriptor(callable)) {
        Py_VISIT(stack[base + 1]);
    }
#else
    // [method, self, arguments...] or [NULL, callable, arguments...]
    if (is_method_descriptor(callable)) {
        Py_VISIT(callable);
        Py_VISIT(stack[base + 1]);
    }
#endif
    return visit_range(stack, base + 2, site.depth, visit, arg);
}

// The value stack of `frame`, whose next inner frame is `callee` (null for
// the innermost).
int visit_stack(const _PyInterpreterFrame* frame, const _PyInterpreterFrame* callee,
                PyCodeObject* code, visitproc visit, void* arg) {
    PyObject* const* stack = frame->localsplus + code->co_nlocalsplus;
    if (callee != nullptr && pushed_inline(callee)) {
        int depth = frame->stacktop - code->co_nlocalsplus;
        if (depth < 0 || depth > code->co_stacksize) {
            return 0;
        }
        return visit_range(stack, 0, depth, visit, arg);
    }
    const FrameTable* table = table_of(code);
    const CallSite* site =
        table != nullptr ? table->find(static_cast<int>(instruction_of(frame) - _PyCode_CODE(code)))
                         : nullptr;
    if (site == nullptr || site->depth > code->co_stacksize) {
        return 0;
    }
    return visit_site(stack, *site, visit, arg);
}

int visit_frame(const _PyInterpreterFrame* frame, const _PyInterpreterFrame* callee,
                visitproc visit, void* arg) {
    PyCodeObject* code = code_of(frame);
    if (code == nullptr) {
        return 0;
    }
    if (frame->owner == FRAME_OWNED_BY_THREAD) {
        Py_VISIT(reinterpret_cast<PyObject*>(frame->frame_obj));
        Py_VISIT(frame->f_locals);
        Py_VISIT(function_of(frame));
        Py_VISIT(reinterpret_cast<PyObject*>(code));
    }
    if (int err = visit_range(frame->localsplus, 0, code->co_nlocalsplus, visit, arg)) {
        return err;
    }
    return visit_stack(frame, callee, code, visit, arg);
}

}  // namespace

int interpreter_entries(const _PyInterpreterFrame* innermost) noexcept {
    int entries = 0;
    for (const _PyInterpreterFrame* f = innermost; f != nullptr; f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
        entries += f->owner == FRAME_OWNED_BY_CSTACK;  // the loop's entry shim
#else
        entries += f->is_entry;
#endif
    }
    return entries;
}

bool frame_objects_held_elsewhere(_PyInterpreterFrame* innermost) noexcept {
    for (_PyInterpreterFrame* f = innermost; f != nullptr; f = f->previous) {
        if (owned_by_coroutine(f) && f->frame_obj != nullptr &&
            Py_REFCNT(reinterpret_cast<PyObject*>(f->frame_obj)) > 1) {
            return true;
        }
    }
    return false;
}

void release_frame_objects(_PyInterpreterFrame* innermost) noexcept {
    for (_PyInterpreterFrame* f = innermost; f != nullptr; f = f->previous) {
        if (owned_by_coroutine(f) && f->frame_obj != nullptr) {
            PyFrameObject* frame = f->frame_obj;
            f->frame_obj = nullptr;
            Py_DECREF(frame);
        }
    }
}

int traverse_frames(_PyInterpreterFrame* innermost, visitproc visit, void* arg) noexcept {
    const _PyInterpreterFrame* callee = nullptr;
    for (const _PyInterpreterFrame* f = innermost; f != nullptr; callee = f, f = f->previous) {
        if (frame_contents_are_ours(f)) {
            if (int err = visit_frame(f, callee, visit, arg)) {
                return err;
            }
        }
    }
    return 0;
}

void request_frame_tables(_PyInterpreterFrame* innermost) noexcept {
    // A loop that blocks asks for the same code each time: skip the lookup.
    // (Should that code die and another come at its address, the newcomer
    // only goes without a table.)
    static PyCodeObject* last_asked = nullptr;
    const _PyInterpreterFrame* callee = nullptr;
    for (const _PyInterpreterFrame* f = innermost; f != nullptr; callee = f, f = f->previous) {
        if (!frame_contents_are_ours(f) || (callee != nullptr && pushed_inline(callee))) {
            continue;
        }
        PyCodeObject* code = code_of(f);
        if (code == nullptr || code == last_asked) {
            continue;
        }
        last_asked = code;
        if (!have_table_slot() || table_extra(code) != nullptr) {
            continue;
        }
        SavedError keep;
        if (_PyCode_SetExtra(reinterpret_cast<PyObject*>(code), table_slot, &asked_for) < 0) {
            PyErr_Clear();
            continue;
        }
        asked_codes.push_back(Py_NewRef(reinterpret_cast<PyObject*>(code)));
    }
}

PyObject* take_frame_table_requests() noexcept {
    if (asked_codes.empty()) {
        return nullptr;
    }
    Ref list = Ref::steal(PyList_New(static_cast<Py_ssize_t>(asked_codes.size())));
    if (!list) {
        return nullptr;
    }
    for (std::size_t i = 0; i < asked_codes.size(); ++i) {
        PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), asked_codes[i]);
    }
    asked_codes.clear();
    return list.release();
}

namespace {

bool read_site(PyObject* item, CallSite* site) {
    int kind = -1;
    if (!PyTuple_Check(item) ||
        !PyArg_ParseTuple(item, "iiii", &site->offset, &site->depth, &site->oparg, &kind)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "a call site is a tuple of 4 ints");
        }
        return false;
    }
    if (kind < 0 || kind > 2 || site->depth < 0 || site->oparg < 0) {
        PyErr_SetString(PyExc_ValueError, "bad call site");
        return false;
    }
    site->kind = static_cast<SiteKind>(kind);
    return true;
}

}  // namespace

int install_frame_table(PyObject* code, PyObject* sites) noexcept {
    if (!PyCode_Check(code) || !PyList_Check(sites)) {
        PyErr_SetString(PyExc_TypeError, "install_frame_table(code, list of sites)");
        return -1;
    }
    if (!have_table_slot()) {
        return 0;
    }
    auto* table = new (std::nothrow) FrameTable();
    if (table == nullptr) {
        PyErr_NoMemory();
        return -1;
    }
    int result = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(sites); ++i) {
        CallSite site{};
        if (!read_site(PyList_GET_ITEM(sites, i), &site)) {
            table->sites.clear();
            result = -1;
            break;
        }
        table->sites.push_back(site);
    }
    std::sort(table->sites.begin(), table->sites.end(),
              [](const CallSite& a, const CallSite& b) { return a.offset < b.offset; });
    void* old = table_extra(reinterpret_cast<PyCodeObject*>(code));
    if (_PyCode_SetExtra(code, table_slot, table) < 0) {
        delete table;
        return -1;
    }
    free_table(old);
    return result;
}

}  // namespace syncless

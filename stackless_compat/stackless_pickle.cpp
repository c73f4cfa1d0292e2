// Pickling of tasklets and channels (spec §1.2-§1.3; Stackless's
// taskletobject.c and channelobject.c reduce/setstate).
//
// Stackless pickles a tasklet's frames. Stock CPython cannot serialise an
// executing frame, and a started tasklet's frames execute on its own C
// stack: such a tasklet refuses, with TypeError. What pickles is a tasklet
// with no frames yet: not alive (bound or not), or bound to a function and
// its arguments but not started, whose "frame list" is then
// [(func, args, kwargs)] (it runs the function once inserted). The reduce
// value has Stackless's shape, (type(t), (), state), state being
//   (flags, tempval, nesting_level, frame_list, exc_type, exc_value,
//    exc_traceback, exc_info)
// with nesting_level 0 and the exception items None. The tasklet's context
// is not pickled (contextvars.Context does not pickle), so
// PICKLEFLAGS_PICKLE_CONTEXT changes nothing; __setstate__ accepts Stackless's
// longer states (9, 12 or 13 items; the last of 9 or 13 is the context) as
// long as their frame list is one of the two above. A tasklet or channel with
// an instance __dict__ reduces to (type, (), (state, dict)).
//
// A channel reduces to (type(ch), (), (balance, flags, [])); one that has
// tasklets blocked on it refuses, as those have started.
#include "stackless_object.hpp"

namespace syncless::stackless_face {

namespace {

// Stackless's tasklet flag bits: blocked (2 bits), atomic, ignore_nesting,
// autoschedule, block_trap, is_zombie, pending_irq.
constexpr long flag_atomic = 1 << 2;
constexpr long flag_ignore_nesting = 1 << 3;
constexpr long flag_block_trap = 1 << 5;
// Stackless's channel flag bits: closing, preference (2 bits, signed),
// schedule_all.
constexpr long flag_closing = 1;
constexpr int preference_shift = 1;
constexpr long flag_schedule_all = 1 << 3;

bool check_protocol(PyObject* protocol) {
    if (protocol != nullptr && !PyLong_Check(protocol)) {
        PyErr_SetString(PyExc_TypeError, "__reduce_ex__ argument should be an integer");
        return false;
    }
    return true;
}

// `state`, or (state, dict) when the object has instance attributes.
PyObject* reduce_value(PyObject* self, PyObject* dict, Ref state) {
    if (!state) {
        return nullptr;
    }
    if (dict != nullptr && PyDict_GET_SIZE(dict) > 0) {
        state = Ref::steal(PyTuple_Pack(2, state.get(), dict));
        if (!state) {
            return nullptr;
        }
    }
    return Py_BuildValue("(O()O)", reinterpret_cast<PyObject*>(Py_TYPE(self)), state.get());
}

// Splits (state, dict) into its parts; a bare state has no dict.
PyObject* split_state(PyObject* state, PyObject** dict) {
    *dict = nullptr;
    if (PyTuple_Check(state) && PyTuple_GET_SIZE(state) == 2 &&
        PyTuple_Check(PyTuple_GET_ITEM(state, 0)) && PyDict_Check(PyTuple_GET_ITEM(state, 1))) {
        *dict = PyTuple_GET_ITEM(state, 1);
        return PyTuple_GET_ITEM(state, 0);
    }
    return state;
}

int restore_dict(PyObject* self, PyObject* dict) {
    if (dict == nullptr) {
        return 0;
    }
    Ref own = Ref::steal(PyObject_GenericGetDict(self, nullptr));
    return own ? PyDict_Update(own.get(), dict) : -1;
}

bool is_current_somewhere(Tasklet* t) { return t->thread != nullptr && t->thread->current == t; }

long tasklet_flags(Tasklet* t) {
    return (t->atomic ? flag_atomic : 0) | (t->ignore_nesting ? flag_ignore_nesting : 0) |
           (t->block_trap ? flag_block_trap : 0);
}

// [] or [(func, args, kwargs)]: what stands for the frames of a tasklet that
// has none yet.
Ref frame_list(Tasklet* t) {
    if (!t->alive) {
        return Ref::steal(PyList_New(0));
    }
    PyObject* kwargs = t->kwargs ? t->kwargs.get() : Py_None;
    return Ref::steal(Py_BuildValue("[(OOO)]", t->func.get(), t->args.get(), kwargs));
}

bool check_picklable(Tasklet* t) {
    if (is_current_somewhere(t)) {
        PyErr_SetString(PyExc_RuntimeError, "You cannot __reduce__ the tasklet which is current.");
        return false;
    }
    if (t->is_hub) {
        PyErr_SetString(PyExc_TypeError, "cannot pickle the coio hub tasklet");
        return false;
    }
    if (t->is_main || t->co->active()) {
        PyErr_SetString(PyExc_TypeError,
                        "cannot pickle a tasklet that has started: its frames run on a C stack of "
                        "its own, and stock CPython cannot serialise a running frame (a tasklet "
                        "pickles when it is not alive or bound but not started)");
        return false;
    }
    return true;
}

// A function and its arguments from a state's frame list, or (all null) no
// frames; false with an exception for anything else.
bool read_frame_list(PyObject* frames, PyObject** func, PyObject** args, PyObject** kwargs) {
    *func = *args = *kwargs = nullptr;
    if (!PyList_Check(frames)) {
        PyErr_SetString(PyExc_TypeError, "tasklet state[3] must be a list");
        return false;
    }
    if (PyList_GET_SIZE(frames) == 0) {
        return true;
    }
    PyObject* frame = PyList_GET_ITEM(frames, 0);
    if (PyList_GET_SIZE(frames) > 1 || !PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) != 3) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot restore a tasklet's frames: stock CPython cannot resume a pickled "
                        "frame (the frame list must be [] or [(func, args, kwargs)] of a tasklet "
                        "that had not started)");
        return false;
    }
    *func = PyTuple_GET_ITEM(frame, 0);
    *args = PyTuple_GET_ITEM(frame, 1);
    *kwargs = PyTuple_GET_ITEM(frame, 2);
    if (!PyCallable_Check(*func) || !PyTuple_Check(*args)) {
        PyErr_SetString(PyExc_TypeError,
                        "a tasklet's frame must be (callable, tuple, dict or None)");
        return false;
    }
    return true;
}

// The context item of Stackless's 9- and 13-item states.
bool read_context(PyObject* state, PyObject** context) {
    Py_ssize_t n = PyTuple_GET_SIZE(state);
    *context = n == 9 || n == 13 ? PyTuple_GET_ITEM(state, n - 1) : Py_None;
    if (*context != Py_None && !PyContext_CheckExact(*context)) {
        PyErr_Format(PyExc_TypeError, "tasklet state[%zd] must be a contextvars.Context or None",
                     n - 1);
        return false;
    }
    if (*context == Py_None) {
        *context = nullptr;
    }
    return true;
}

int channel_preference(long flags) {
    int bits = static_cast<int>((flags >> preference_shift) & 3);
    return bits == 0 ? 0 : bits == 1 ? 1 : -1;
}

}  // namespace

PyObject* tasklet_reduce_ex(PyObject* self, PyObject* protocol) noexcept {
    auto* t = reinterpret_cast<Tasklet*>(self);
    if (!check_protocol(protocol) || !check_picklable(t)) {
        return nullptr;
    }
    Ref frames = frame_list(t);
    if (!frames) {
        return nullptr;
    }
    Ref state = Ref::steal(Py_BuildValue("(lOiOOOOO)", tasklet_flags(t), t->tempval.get(), 0,
                                         frames.get(), Py_None, Py_None, Py_None, Py_None));
    return reduce_value(self, t->dict, std::move(state));
}

PyObject* tasklet_reduce(PyObject* self, PyObject*) noexcept {
    return tasklet_reduce_ex(self, nullptr);
}

PyObject* tasklet_setstate(PyObject* self, PyObject* arg) noexcept {
    auto* t = reinterpret_cast<Tasklet*>(self);
    if (t->alive) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is alive");
        return nullptr;
    }
    PyObject* dict;
    PyObject* state = split_state(arg, &dict);
    Py_ssize_t n = PyTuple_Check(state) ? PyTuple_GET_SIZE(state) : 0;
    if (n != 8 && n != 9 && n != 12 && n != 13) {
        PyErr_SetString(PyExc_TypeError,
                        "tasklet state must be a tuple (flags, tempval, nesting_level, frames, "
                        "exc_type, exc_value, exc_traceback, exc_info)");
        return nullptr;
    }
    long flags = PyLong_AsLong(PyTuple_GET_ITEM(state, 0));
    if (flags == -1 && PyErr_Occurred()) {
        return nullptr;
    }
    PyObject *func, *args, *kwargs, *context;
    if (!read_frame_list(PyTuple_GET_ITEM(state, 3), &func, &args, &kwargs) ||
        !read_context(state, &context)) {
        return nullptr;
    }
    Ref keep_state = Ref::borrow(arg);  // bind() below may run code that drops it
    if (func != nullptr && bind_tasklet(t, func, args, kwargs) < 0) {
        return nullptr;
    }
    if (context != nullptr) {
        t->context = Ref::borrow(context);
    }
    t->tempval = Ref::borrow(PyTuple_GET_ITEM(state, 1));
    t->atomic = (flags & flag_atomic) != 0;
    t->ignore_nesting = (flags & flag_ignore_nesting) != 0;
    t->block_trap = (flags & flag_block_trap) != 0;
    if (restore_dict(self, dict) < 0) {
        return nullptr;
    }
    return Py_NewRef(self);
}

PyObject* channel_reduce_ex(PyObject* self, PyObject* protocol) noexcept {
    auto* c = reinterpret_cast<Channel*>(self);
    if (!check_protocol(protocol)) {
        return nullptr;
    }
    if (c->balance != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "cannot pickle a channel with blocked tasklets: they have started, and "
                        "stock CPython cannot serialise their running frames");
        return nullptr;
    }
    long flags = (c->closing ? flag_closing : 0) |
                 (static_cast<long>(c->preference & 3) << preference_shift) |
                 (c->schedule_all ? flag_schedule_all : 0);
    return reduce_value(self, c->dict, Ref::steal(Py_BuildValue("(il[])", 0, flags)));
}

PyObject* channel_reduce(PyObject* self, PyObject*) noexcept {
    return channel_reduce_ex(self, nullptr);
}

PyObject* channel_setstate(PyObject* self, PyObject* arg) noexcept {
    auto* c = reinterpret_cast<Channel*>(self);
    PyObject* dict;
    PyObject* state = split_state(arg, &dict);
    int balance;
    long flags;
    PyObject* blocked;
    if (!PyTuple_Check(state) ||
        !PyArg_ParseTuple(state, "ilO!:channel", &balance, &flags, &PyList_Type, &blocked)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "channel state must be a tuple (balance, flags, "
                                             "tasklets)");
        }
        return nullptr;
    }
    if (PyList_GET_SIZE(blocked) != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "cannot restore tasklets blocked on a channel: they had started");
        return nullptr;
    }
    if (c->balance != 0) {
        PyErr_SetString(PyExc_RuntimeError, "channel has blocked tasklets");
        return nullptr;
    }
    c->closing = (flags & flag_closing) != 0;
    c->preference = channel_preference(flags);
    c->schedule_all = (flags & flag_schedule_all) != 0;
    if (restore_dict(self, dict) < 0) {
        return nullptr;
    }
    return Py_NewRef(self);
}

}  // namespace syncless::stackless_face

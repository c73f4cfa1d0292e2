// stackless.channel: synchronous exchange between tasklets, with the
// scheduling that follows each exchange set by `preference` and
// `schedule_all` (Stackless's channelobject.c).
#include "stackless_object.hpp"

namespace syncless::stackless_face {

namespace {

PyObject* channel_new(PyTypeObject* type, PyObject*, PyObject*) {
    auto* self = reinterpret_cast<Channel*>(type->tp_alloc(type, 0));
    if (self == nullptr) {
        return nullptr;
    }
    self->preference = -1;
    return as_object(self);
}

// Partner waiting: exchange values and schedule per preference.
PyObject* exchange(StacklessThread* ts, Channel* self, Tasklet* source, int dir) {
    Tasklet* target = self->head;
    Ref held = channel_unlink(target);
    std::swap(source->tempval, target->tempval);
    Tasklet* switchto;
    if (self->schedule_all) {
        ring_insert(ts, target);
        switchto = source->next;
    } else if (self->preference == -dir) {
        // The partner goes right after the source and runs now; the source
        // ends up at the tail.
        ts->head = source->next;
        ring_insert(ts, target);
        ts->head = source;
        switchto = target;
    } else {
        ring_insert(ts, target);
        switchto = source;
    }
    return schedule_task(ts, source, switchto, /*voluntary=*/false);
}

// Nobody waiting: block on the channel.
// `stack_top`: where the Python caller's value stack ends, when the caller
// called this channel method straight from its own frame (see Tasklet).
PyObject* block(StacklessThread* ts, Channel* self, Tasklet* source, int dir,
                PyObject* const* stack_top) {
    if (source->block_trap) {
        PyErr_SetString(PyExc_RuntimeError, "this tasklet does not like to be blocked.");
        return nullptr;
    }
    if (self->closing) {
        PyErr_SetString(PyExc_ValueError, "Send/receive operation on a closed channel");
        return nullptr;
    }
    {
        // The queue holds it now; nothing on its own stack may while it waits.
        Ref held = ring_remove(ts, source);
        channel_append(self, source, dir);
    }
    source->stack_top = stack_top;
    PyObject* result = schedule_task(ts, source, ts->head);
    source->stack_top = nullptr;
    return result;
}

// The channel callback, before each send and receive (after the exchange
// when the partner is another thread's, as in Stackless); false with its
// exception.
bool notify_channel(StacklessThread* ts, Channel* self, Tasklet* source, int dir, bool cando) {
    if (ts->chanlock) {
        PyErr_SetString(PyExc_RuntimeError, "Recursive channel call due to callbacks!");
        return false;
    }
    Ref callback = Ref::borrow(channel_callback);
    Ref keep_self = Ref::borrow(as_object(self));
    ts->chanlock = true;
    Ref r = Ref::steal(PyObject_CallFunction(callback.get(), "OOii", as_object(self),
                                             as_object(source), dir > 0 ? 1 : 0, cando ? 0 : 1));
    ts->chanlock = false;
    return static_cast<bool>(r);
}

// The partner waits in another thread (spec §2.2, last row): exchange, make
// it runnable in its own thread (waking that thread) and run on, whatever
// the preference. No switch here, so no switch_trap either.
PyObject* exchange_elsewhere(StacklessThread* ts, Channel* self, Tasklet* source, PyObject* arg,
                             int dir, bool notify) {
    Tasklet* target = self->head;
    if (live_thread_of(target) == nullptr) {
        return nullptr;
    }
    source->tempval = Ref::borrow(arg);
    std::swap(source->tempval, target->tempval);
    make_runnable_in_its_thread(target, false);
    Ref value = claim_tempval(source);
    if (notify && channel_callback != nullptr && !notify_channel(ts, self, source, dir, true)) {
        return nullptr;
    }
    if (is_bomb(value.get())) {
        bomb_explode(value.get());
        return nullptr;
    }
    return value.release();
}

bool partner_elsewhere(StacklessThread* ts, Channel* self, int dir) {
    bool cando = dir > 0 ? self->balance < 0 : self->balance > 0;
    return cando && self->head->thread != ts;
}

// send (dir +1) or receive (dir -1). Returns what the source receives.
PyObject* channel_action(Channel* self, PyObject* arg, int dir,
                         PyObject* const* stack_top = nullptr) {
    StacklessThread* ts = thread_for_switch();
    if (ts == nullptr) {
        return nullptr;
    }
    Tasklet* source = ts->current;
    if (partner_elsewhere(ts, self, dir)) {
        return exchange_elsewhere(ts, self, source, arg, dir, true);
    }
    bool cando = dir > 0 ? self->balance < 0 : self->balance > 0;
    if (channel_callback != nullptr) {
        if (!notify_channel(ts, self, source, dir, cando)) {
            return nullptr;
        }
        // The callback may have changed the channel: decide again.
        if (partner_elsewhere(ts, self, dir)) {
            return exchange_elsewhere(ts, self, source, arg, dir, false);
        }
        cando = dir > 0 ? self->balance < 0 : self->balance > 0;
    }
    bool switches = !cando || self->schedule_all || self->preference == -dir;
    if (switches && ts->switch_trap > 0) {
        PyErr_SetString(PyExc_RuntimeError, "switch_trap");
        return nullptr;
    }
    source->tempval = Ref::borrow(arg);
    PyObject* result =
        cando ? exchange(ts, self, source, dir) : block(ts, self, source, dir, stack_top);
    if (result == nullptr) {
        source->tempval = Ref::borrow(Py_None);
    }
    return result;
}

PyObject* none_or_null(PyObject* result) {
    if (result == nullptr) {
        return nullptr;
    }
    Ref drop = Ref::steal(result);
    Py_RETURN_NONE;
}

PyObject* channel_send(Channel* self, PyObject* const* args, Py_ssize_t nargs,
                       PyObject* kwnames) {
    Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw != 1) {
        PyErr_Format(PyExc_TypeError, "send() takes exactly one argument (%zd given)",
                     nargs + nkw);
        return nullptr;
    }
    if (nkw == 1) {
        PyObject* key = PyTuple_GET_ITEM(kwnames, 0);
        if (!PyUnicode_Check(key) || PyUnicode_CompareWithASCIIString(key, "value") != 0) {
            PyErr_Format(PyExc_TypeError, "send() got an unexpected keyword argument '%S'", key);
            return nullptr;
        }
    }
    // Called positionally, args points into the caller's value stack when
    // the caller is Python code (a keyword call leaves its names elsewhere).
    return none_or_null(channel_action(self, args[0], 1, nkw == 0 ? args + nargs : nullptr));
}

PyObject* channel_receive(Channel* self, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 0) {
        PyErr_Format(PyExc_TypeError, "receive() takes no arguments (%zd given)", nargs);
        return nullptr;
    }
    return channel_action(self, Py_None, -1, args + nargs);
}

PyObject* channel_send_exception(Channel* self, PyObject* args) {
    Ref bomb = bomb_from_class_and_args(args, "channel.send_exception");
    if (!bomb) {
        return nullptr;
    }
    return none_or_null(channel_action(self, bomb.get(), 1));
}

PyObject* channel_send_throw(Channel* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"exc", "val", "tb", nullptr};
    PyObject* exc;
    PyObject* val = nullptr;
    PyObject* tb = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:send_throw", const_cast<char**>(keywords),
                                     &exc, &val, &tb)) {
        return nullptr;
    }
    Ref bomb = bomb_from_raise_args(exc, val, tb);
    if (!bomb) {
        return nullptr;
    }
    return none_or_null(channel_action(self, bomb.get(), 1));
}

PyObject* channel_send_sequence(Channel* self, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"seq", nullptr};
    PyObject* seq;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:send_sequence",
                                     const_cast<char**>(keywords), &seq)) {
        return nullptr;
    }
    Ref it = Ref::steal(PyObject_GetIter(seq));
    if (!it) {
        return nullptr;
    }
    Py_ssize_t count = 0;
    while (Ref item = Ref::steal(PyIter_Next(it.get()))) {
        Ref r = Ref::steal(channel_action(self, item.get(), 1));
        if (!r) {
            return nullptr;
        }
        ++count;
    }
    if (PyErr_Occurred()) {
        return nullptr;
    }
    return PyLong_FromSsize_t(count);
}

PyObject* channel_iter(Channel* self) { return Py_NewRef(as_object(self)); }

PyObject* channel_iternext(Channel* self) {
    if (self->closing && self->balance <= 0) {
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
    }
    return channel_action(self, Py_None, -1);
}

PyObject* channel_close(Channel* self, PyObject*) {
    self->closing = true;
    Py_RETURN_NONE;
}

PyObject* channel_open(Channel* self, PyObject*) {
    self->closing = false;
    Py_RETURN_NONE;
}

// Unlinks every blocked tasklet; they are not woken (Stackless's rule).
void unlink_all(Channel* self) {
    while (self->head != nullptr) {
        Ref held = channel_unlink(self->head);
    }
}

int channel_traverse(Channel* self, visitproc visit, void* arg) {
    Py_VISIT(self->dict);
    Tasklet* t = self->head;
    if (t != nullptr) {
        do {
            Py_VISIT(as_object(t));
            t = t->next;
        } while (t != self->head);
    }
    return 0;
}

int channel_clear(Channel* self) {
    Py_CLEAR(self->dict);
    self->closing = true;
    unlink_all(self);
    return 0;
}

void channel_dealloc(Channel* self) {
    PyObject_GC_UnTrack(as_object(self));
    if (self->weakreflist != nullptr) {
        PyObject_ClearWeakRefs(as_object(self));
    }
    channel_clear(self);
    Py_TYPE(self)->tp_free(as_object(self));
}

// -1, 0 or 1: the sign of an int; -2 with an error set.
int sign_of(PyObject* value) {
    Ref zero = Ref::steal(PyLong_FromLong(0));
    if (!zero) {
        return -2;
    }
    int gt = PyObject_RichCompareBool(value, zero.get(), Py_GT);
    int lt = gt == 0 ? PyObject_RichCompareBool(value, zero.get(), Py_LT) : 0;
    if (gt < 0 || lt < 0) {
        return -2;
    }
    return gt ? 1 : lt ? -1 : 0;
}

PyObject* get_balance(Channel* self, void*) { return PyLong_FromSsize_t(self->balance); }
PyObject* get_queue(Channel* self, void*) {
    return Py_NewRef(self->head != nullptr ? as_object(self->head) : Py_None);
}
PyObject* get_closing(Channel* self, void*) { return PyBool_FromLong(self->closing); }
PyObject* get_closed(Channel* self, void*) {
    return PyBool_FromLong(self->closing && self->balance == 0);
}
PyObject* get_preference(Channel* self, void*) { return PyLong_FromLong(self->preference); }
int set_preference(Channel* self, PyObject* value, void*) {
    if (value == nullptr || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "preference must be set to an integer");
        return -1;
    }
    int sign = sign_of(value);
    if (sign == -2) {
        return -1;
    }
    self->preference = sign;
    return 0;
}
PyObject* get_schedule_all(Channel* self, void*) { return PyLong_FromLong(self->schedule_all); }
int set_schedule_all(Channel* self, PyObject* value, void*) {
    if (value == nullptr || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "preference must be set to a bool or integer");
        return -1;
    }
    int sign = sign_of(value);
    if (sign == -2) {
        return -1;
    }
    self->schedule_all = sign != 0;
    return 0;
}

#define GET(name, fn) {name, reinterpret_cast<getter>(fn), nullptr, nullptr, nullptr}
PyGetSetDef channel_getsets[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    GET("balance", get_balance),
    GET("queue", get_queue),
    GET("closing", get_closing),
    GET("closed", get_closed),
    {"preference", reinterpret_cast<getter>(get_preference),
     reinterpret_cast<setter>(set_preference), nullptr, nullptr},
    {"schedule_all", reinterpret_cast<getter>(get_schedule_all),
     reinterpret_cast<setter>(set_schedule_all), nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};
#undef GET

#define METHOD(name, fn, flags, doc) \
    {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn)), flags, doc}
PyMethodDef channel_methods[] = {
    METHOD("__reduce__", channel_reduce, METH_NOARGS,
           "__reduce__() -> (type, (), state)\n\nPickles a channel nobody is blocked on."),
    METHOD("__reduce_ex__", channel_reduce_ex, METH_O,
           "__reduce_ex__(protocol) -> (type, (), state)"),
    METHOD("__setstate__", channel_setstate, METH_O,
           "__setstate__(state) -> self\n\nRestores a pickled channel's flags."),
    METHOD("send", channel_send, METH_FASTCALL | METH_KEYWORDS, "send(value)\n\nSend a value over the channel."),
    METHOD("receive", channel_receive, METH_FASTCALL, "receive() -> value"),
    METHOD("send_exception", channel_send_exception, METH_VARARGS,
           "send_exception(exc, *args)\n\nThe receiver raises exc(*args)."),
    METHOD("send_throw", channel_send_throw, METH_VARARGS | METH_KEYWORDS,
           "send_throw(exc, val=None, tb=None)\n\nThe receiver raises, as with the raise "
           "statement."),
    METHOD("send_sequence", channel_send_sequence, METH_VARARGS | METH_KEYWORDS,
           "send_sequence(seq) -> count\n\nSend every item of seq."),
    METHOD("close", channel_close, METH_NOARGS,
           "close()\n\nNo operation that would block is allowed any more."),
    METHOD("open", channel_open, METH_NOARGS, "open()\n\nReopen a closing channel."),
    {nullptr, nullptr, 0, nullptr},
};
#undef METHOD

}  // namespace

PyTypeObject Channel_Type = [] {
    PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
    t.tp_name = "_stackless.channel";
    t.tp_basicsize = sizeof(Channel);
    t.tp_dealloc = reinterpret_cast<destructor>(channel_dealloc);
    t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE;
    t.tp_doc = "channel()\n\nA synchronous communication link between tasklets.";
    t.tp_traverse = reinterpret_cast<traverseproc>(channel_traverse);
    t.tp_clear = reinterpret_cast<inquiry>(channel_clear);
    t.tp_weaklistoffset = offsetof(Channel, weakreflist);
    t.tp_dictoffset = offsetof(Channel, dict);
    t.tp_iter = reinterpret_cast<getiterfunc>(channel_iter);
    t.tp_iternext = reinterpret_cast<iternextfunc>(channel_iternext);
    t.tp_methods = channel_methods;
    t.tp_getset = channel_getsets;
    t.tp_alloc = PyType_GenericAlloc;
    t.tp_new = channel_new;
    t.tp_free = PyObject_GC_Del;
    return t;
}();

}  // namespace syncless::stackless_face

/* pyrometer_probe._speedups: the per-request half of the ASGI middleware's
 * request measurement, compiled.
 *
 * Why: measured in Python, an ASGI request's bookkeeping (its start, the
 * wrapper of the server's send that reads the status, its end into a series
 * and out of the in-flight gauge) cost a FastAPI hello-world request under
 * uvicorn about 3.6 % of its throughput (README, "Performance"). Done here it
 * costs about a fifth fewer instructions, but the service benchmark, pairing
 * it with the Python path, saw no throughput gain (3.6 % +- 0.7 against
 * 3.0 % +- 0.5; a first unpaired run read 2.2 %). gunicorn's hooks, compiled
 * the same way, saved a fifth of their instructions and no throughput either
 * (2.5 % +- 1.0 against 2.3 % +- 0.8). An experiment, reverted.
 *
 * What it does is what middleware.asgi_method's Python does in its place,
 * and every case but the common one -- a request whose series exists and is
 * not due for a fold -- is handed to that Python (web.request_finished), so
 * the two cannot drift apart on labelling, admission, folding or the first
 * response. Nothing here raises into the application or the server.
 *
 * Built once per CPython version (build.sh; 3.9 to 3.13 are tested), with
 * the full C API: through the stable ABI's calls (argument tuples, generic
 * attribute lookups) it cost as much as the Python it replaces. Where no
 * build for the interpreter loads (another version or architecture,
 * PYROMETER_SPEEDUPS=off) the probe measures in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <time.h>

/* Set once by setup(): web.request_finished, web.FOLD_AT - 1, web.UNMATCHED_ROUTE,
 * web.HttpWindow and where its series and in_flight slots are. */
static PyObject *request_finished;
static Py_ssize_t fold_last;
static PyObject *unmatched_route;
static PyTypeObject *window_type;
static Py_ssize_t series_offset, in_flight_offset;

/* Interned names. */
static PyObject *str_append, *str_pop, *str_type, *str_status, *str_response_start;

/* time.perf_counter_ns() of CPython on Linux: CLOCK_MONOTONIC, in ns. */
static long long
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The object in the slot at offset of window, an HttpWindow (borrowed), or
 * NULL: read as the interpreter reads a __slots__ attribute. */
static PyObject *
window_slot(PyObject *window, Py_ssize_t offset)
{
    if (Py_TYPE(window) != window_type)
        return NULL;
    return *(PyObject **)((char *)window + offset);
}

/* obj.name(arg), or obj.name() when arg is NULL; new reference or NULL. */
static PyObject *
call_method(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *args[2] = {obj, arg};
    return PyObject_VectorcallMethod(name, args, (arg ? 2 : 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* window.in_flight.append(None): a request begins. Never raises. */
static void
begin(PyObject *window)
{
    PyObject *in_flight = window_slot(window, in_flight_offset);
    PyObject *result = in_flight ? call_method(in_flight, str_append, Py_None) : NULL;
    Py_XDECREF(result);
    PyErr_Clear();
}

/* Appends now - started to the series (method, route, code) of window if it
 * has one not due for a fold, and takes the request out of flight: the
 * common case of web.request_finished. Returns 1 if it did, 0 if not (the
 * caller then hands the request to web.request_finished), and never leaves
 * an exception set. */
static int
record_common(PyObject *window, PyObject *key, long long started)
{
    int done = 0;
    PyObject *series = window_slot(window, series_offset);
    PyObject *durations = series && PyDict_CheckExact(series) ? PyDict_GetItemWithError(series, key) : NULL;
    Py_XINCREF(durations);
    if (durations != NULL) {
        Py_ssize_t length = PyObject_Size(durations);
        if (length >= 0 && length < fold_last) {
            PyObject *elapsed = PyLong_FromLongLong(now_ns() - started);
            PyObject *appended = elapsed ? call_method(durations, str_append, elapsed) : NULL;
            done = appended != NULL;
            Py_XDECREF(appended);
            Py_XDECREF(elapsed);
            if (done) {
                /* Empty only for a request begun before a fork reset the gauge. */
                PyObject *in_flight = window_slot(window, in_flight_offset);
                if (in_flight != NULL && PyObject_Size(in_flight) > 0) {
                    PyObject *popped = call_method(in_flight, str_pop, NULL);
                    Py_XDECREF(popped);
                }
            }
        }
    }
    Py_XDECREF(durations);
    PyErr_Clear();
    return done;
}

/* A request of window ended: into its series here in the common case, else
 * by web.request_finished (labelling, a new series, a fold). Never raises. */
static void
record(PyObject *window, PyObject *method, PyObject *route, PyObject *code, long long started)
{
    PyObject *key = PyTuple_Pack(3, method, route, code);
    if (key != NULL && record_common(window, key, started)) {
        Py_DECREF(key);
        return;
    }
    Py_XDECREF(key);
    PyErr_Clear();
    PyObject *started_ns = PyLong_FromLongLong(started);
    PyObject *args[5] = {window, method, route, code, started_ns};
    PyObject *result = started_ns ? PyObject_Vectorcall(request_finished, args, 5, NULL) : NULL;
    Py_XDECREF(result);
    Py_XDECREF(started_ns);
    PyErr_Clear();
}

/* Exchange: one ASGI request -------------------------------------------- */

/* The server's send, wrapped for one request: calling it passes the message
 * on and notes the status of the first http.response.start; end() ends the
 * request (middleware.asgi_method). */
typedef struct {
    PyObject_HEAD
    PyObject *window;
    PyObject *send;
    PyObject *status; /* NULL until a response started */
    long long started;
    int ended;
    vectorcallfunc vectorcall;
} Exchange;

static PyTypeObject *ExchangeType;

static PyObject *
Exchange_call(Exchange *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (self->status == NULL && PyVectorcall_NARGS(nargsf) == 1 && kwnames == NULL) {
        PyObject *message = args[0];
        if (PyDict_CheckExact(message)) { /* what servers send: no new references */
            PyObject *type = PyDict_GetItemWithError(message, str_type);
            if (type != NULL && PyUnicode_Check(type) && PyUnicode_Compare(type, str_response_start) == 0) {
                self->status = PyDict_GetItemWithError(message, str_status);
                Py_XINCREF(self->status);
            }
        } else {
            PyObject *type = PyObject_GetItem(message, str_type);
            if (type != NULL && PyUnicode_Check(type) && PyUnicode_Compare(type, str_response_start) == 0)
                self->status = PyObject_GetItem(message, str_status);
            Py_XDECREF(type);
        }
        PyErr_Clear(); /* not a message: the server's send will say so */
    }
    return PyObject_Vectorcall(self->send, args, nargsf, kwnames);
}

/* The status as a number, as int() makes it; 0 when none or not a number. */
static PyObject *
status_code(PyObject *status)
{
    if (status == NULL)
        return PyLong_FromLong(0);
    if (PyLong_CheckExact(status)) {
        Py_INCREF(status);
        return status;
    }
    PyObject *code = PyNumber_Long(status);
    if (code == NULL) {
        PyErr_Clear();
        code = PyLong_FromLong(0);
    }
    return code;
}

static PyObject *
Exchange_end(Exchange *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "end(method, route)");
        return NULL;
    }
    PyObject *method = args[0], *route = args[1];
    if (!self->ended) {
        self->ended = 1;
        PyObject *code = status_code(self->status);
        if (code != NULL) {
            record(self->window, method, route, code, self->started);
            Py_DECREF(code);
        }
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

static int
Exchange_traverse(Exchange *self, visitproc visit, void *arg)
{
    Py_VISIT(self->window);
    Py_VISIT(self->send);
    Py_VISIT(self->status);
    return 0;
}

static int
Exchange_clear(Exchange *self)
{
    Py_CLEAR(self->window);
    Py_CLEAR(self->send);
    Py_CLEAR(self->status);
    return 0;
}

static void
Exchange_dealloc(Exchange *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Exchange_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(type);
}

/* exchange(window, send): a request of window begins now; its send, wrapped. */
static PyObject *
exchange(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "exchange(window, send)");
        return NULL;
    }
    PyObject *window = args[0], *send = args[1];
    if (request_finished == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() first");
        return NULL;
    }
    Exchange *self = PyObject_GC_New(Exchange, ExchangeType);
    if (self == NULL)
        return NULL;
    Py_INCREF(window);
    self->window = window;
    Py_INCREF(send);
    self->send = send;
    self->status = NULL;
    self->ended = 0;
    self->vectorcall = (vectorcallfunc)Exchange_call;
    begin(window);
    self->started = now_ns();
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *
Exchange_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyErr_SetString(PyExc_TypeError, "an Exchange comes from exchange()");
    return NULL;
}

static PyMethodDef Exchange_methods[] = {
    {"end", (PyCFunction)(void (*)(void))Exchange_end, METH_FASTCALL,
     "end(method, route): the request ended (once; later calls do nothing)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Exchange_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Exchange, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Exchange_slots[] = {
    {Py_tp_doc, "An ASGI request's send, measuring the request (see exchange())."},
    {Py_tp_new, Exchange_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_members, Exchange_members},
    {Py_tp_methods, Exchange_methods},
    {Py_tp_traverse, Exchange_traverse},
    {Py_tp_clear, Exchange_clear},
    {Py_tp_dealloc, Exchange_dealloc},
    {0, NULL},
};

static PyType_Spec Exchange_spec = {
    "pyrometer_probe._speedups.Exchange", sizeof(Exchange), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL, Exchange_slots,
};

/* Module ---------------------------------------------------------------- */

/* Where the __slots__ attribute name of type is stored in its objects; -1 with
 * TypeError set if it is not an object slot. */
static Py_ssize_t
slot_offset(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    Py_ssize_t offset = -1;
    if (descr != NULL && Py_TYPE(descr) == &PyMemberDescr_Type &&
        ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX)
        offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    Py_XDECREF(descr);
    if (offset < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ attribute", type->tp_name, name);
    }
    return offset;
}

/* setup(request_finished, fold_at, unmatched_route, HttpWindow) */
static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *finished, *fold_at, *unmatched, *window_class;
    if (!PyArg_UnpackTuple(args, "setup", 4, 4, &finished, &fold_at, &unmatched, &window_class))
        return NULL;
    if (!PyType_Check(window_class)) {
        PyErr_SetString(PyExc_TypeError, "setup(): HttpWindow is a class");
        return NULL;
    }
    Py_ssize_t series = slot_offset((PyTypeObject *)window_class, "series");
    Py_ssize_t in_flight = series < 0 ? -1 : slot_offset((PyTypeObject *)window_class, "in_flight");
    if (in_flight < 0)
        return NULL;
    Py_ssize_t fold = PyLong_AsSsize_t(fold_at);
    if (fold == -1 && PyErr_Occurred())
        return NULL;
    if (request_finished != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() runs once");
        return NULL;
    }
    Py_INCREF(finished);
    request_finished = finished;
    Py_INCREF(unmatched);
    unmatched_route = unmatched;
    Py_INCREF(window_class);
    window_type = (PyTypeObject *)window_class;
    series_offset = series;
    in_flight_offset = in_flight;
    fold_last = fold - 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS,
     "setup(request_finished, fold_at, unmatched_route, HttpWindow): what the rest of the probe decides (once)."},
    {"exchange", (PyCFunction)(void (*)(void))exchange, METH_FASTCALL,
     "exchange(window, send): an ASGI request of window begins; returns its send, wrapped (an Exchange)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "pyrometer_probe._speedups",
    "The per-request half of the request measurement, compiled (see pyrometer_probe.speedups).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern(&str_append, "append") < 0 || intern(&str_pop, "pop") < 0 || intern(&str_type, "type") < 0 ||
        intern(&str_status, "status") < 0 || intern(&str_response_start, "http.response.start") < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    ExchangeType = (PyTypeObject *)PyType_FromSpec(&Exchange_spec);
    if (ExchangeType == NULL)
        goto fail;
    Py_INCREF(ExchangeType);
    if (PyModule_AddObject(module, "Exchange", (PyObject *)ExchangeType) < 0)
        goto fail;
    return module;
fail:
    Py_DECREF(module);
    return NULL;
}

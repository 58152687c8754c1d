/* The backtest loop's market events, EngineLoop._consume's compiled part (runners/loop.py).
 *
 * With a simulated market-data latency every market event goes to the venue at once and reaches the
 * engine later, through the loop's feed queue. Per event the Python loop spent more on that upkeep
 * (count it, release what has arrived, step it, hand the event to the venue, draw its delay, queue it)
 * than the compiled step, venue sink and draws spent working. feed_quiet does the same steps in one call
 * for a run of market events (taking the equity samples that fall due) and stops where the coroutine is
 * needed: an input that is no market event, or a released event with reports due from the venue or
 * commands to perform.
 * loop.py's Python path stays the reference (whole backtests are held to the same bytes both ways:
 * tests/unit/test_book_paths.py; tests/unit/test_loop_compiled.py compares the calls).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *one, *s_sample_equity, *s_ts_ms, *s_wake_ms, *s_feed_last_ms, *s_next_sample_ms, *s_now_ms, *s_popleft, *s_append;

/* After a step that returned no commands at `at`: loop.sample_equity(at) when `*sample` (the loop's
 * _next_sample_ms) is due, reading the next one into `*sample`. 0 done, -1 error. */
static int sample_due(PyObject *loop, PyObject *at, PyObject **sample) {
    int due = PyObject_RichCompareBool(at, *sample, Py_GE);
    if (due <= 0) return due;
    PyObject *r = PyObject_CallMethodOneArg(loop, s_sample_equity, at);
    if (!r) return -1;
    Py_DECREF(r);
    PyObject *next = PyObject_GetAttr(loop, s_next_sample_ms);
    if (!next) return -1;
    Py_SETREF(*sample, next);
    return 0;
}

/* feed_quiet(batch, start, loop, step, state, on_market_event, observe, execution, feed, feed_delay,
 *            counts, names, market_kinds, perf) -> (index, held)
 *
 * For batch[start:], while each input is a market event (its type in market_kinds): counts it
 * (counts[names[type]] += 1), releases the events of `feed` (a deque of (arrives_ms, event)) that have
 * arrived by its ts_ms as EngineLoop._release_quiet does, then hands it to on_market_event and queues
 * it at ts_ms + feed_delay(), never before the event ahead of it (loop._feed_last_ms). Stops at
 * (index, None) when batch[index] is no market event or the batch ended (index == len), or at
 * (index, held) when batch[index], counted, released an event the coroutine must take: held is
 * _release_quiet's answer, and the caller goes on with _release_feed(ts_ms, held) and then hands
 * batch[index] to the venue and the feed itself. loop.now_ms and loop._feed_last_ms are kept as the
 * Python path keeps them. */
static PyObject *feed_quiet(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 14 || !PyList_Check(args[0]) || !PyLong_Check(args[1]) || !PyDict_Check(args[10]) ||
        !PyDict_Check(args[11]) || !PyAnySet_Check(args[12])) {
        PyErr_SetString(PyExc_TypeError,
                        "feed_quiet(batch: list, start: int, loop, step, state, on_market_event, observe, "
                        "execution, feed: deque, feed_delay, counts: dict, names: dict, market_kinds: set, "
                        "perf) takes 14 arguments");
        return NULL;
    }
    PyObject *batch = args[0], *loop = args[2], *step = args[3], *state = args[4], *to_venue = args[5];
    PyObject *observe = args[6], *execution = args[7], *feed = args[8], *feed_delay = args[9];
    PyObject *counts = args[10], *names = args[11], *kinds = args[12], *perf = args[13];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "start must not be negative");
        return NULL;
    }
    PyObject *popleft = PyObject_GetAttr(feed, s_popleft);
    PyObject *append = popleft ? PyObject_GetAttr(feed, s_append) : NULL;
    PyObject *last = append ? PyObject_GetAttr(loop, s_feed_last_ms) : NULL;
    PyObject *sample = last ? PyObject_GetAttr(loop, s_next_sample_ms) : NULL;
    PyObject *held = Py_None, *result = NULL;
    if (!sample) goto done;
    for (; i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = PyList_GET_ITEM(batch, i);
        int market = PySet_Contains(kinds, (PyObject *)Py_TYPE(item));
        if (market <= 0) {
            if (market < 0) goto done;
            break;
        }
        Py_INCREF(item);
        /* counts[names[type]] += 1: counts is a Counter, which reads a missing name as 0 */
        PyObject *name = PyDict_GetItemWithError(names, (PyObject *)Py_TYPE(item));
        if (!name && !PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, (PyObject *)Py_TYPE(item));
        PyObject *seen = name ? PyDict_GetItemWithError(counts, name) : NULL;
        PyObject *more = PyErr_Occurred() ? NULL : seen ? PyNumber_Add(seen, one) : Py_NewRef(one);
        int rc = more ? PyDict_SetItem(counts, name, more) : -1;
        Py_XDECREF(more);
        PyObject *ts = rc < 0 ? NULL : PyObject_GetAttr(item, s_ts_ms);
        if (!ts) {
            Py_DECREF(item);
            goto done;
        }
        /* _release_quiet(ts) */
        while (PyObject_Length(feed) > 0) {
            PyObject *head = PySequence_GetItem(feed, 0);
            if (!head) break;
            int arrived = PyTuple_Check(head) && PyTuple_GET_SIZE(head) == 2
                              ? PyObject_RichCompareBool(PyTuple_GET_ITEM(head, 0), ts, Py_LE)
                              : (PyErr_SetString(PyExc_TypeError, "the feed holds (arrives_ms, event)"), -1);
            Py_DECREF(head);
            if (arrived <= 0) break;
            PyObject *entry = PyObject_CallNoArgs(popleft);
            if (!entry) break;
            PyObject *ready = Py_NewRef(PyTuple_GET_ITEM(entry, 1));
            PyObject *at = PyObject_CallOneArg(observe, PyTuple_GET_ITEM(entry, 0));
            Py_DECREF(entry);
            if (!at) {
                Py_DECREF(ready);
                break;
            }
            PyObject *wake = PyObject_GetAttr(execution, s_wake_ms);
            int busy = wake ? PyObject_RichCompareBool(at, wake, Py_GE) : -1;
            Py_XDECREF(wake);
            if (busy != 0) {
                held = busy > 0 ? Py_BuildValue("(OOOi)", ready, at, Py_None, 0) : NULL;
                Py_DECREF(ready);
                Py_DECREF(at);
                break;
            }
            if (PyObject_SetAttr(loop, s_now_ms, at) < 0) {
                Py_DECREF(ready);
                Py_DECREF(at);
                break;
            }
            PyObject *t0 = PyObject_CallNoArgs(perf);
            PyObject *sargs[3] = {state, ready, at};
            PyObject *commands = t0 ? PyObject_Vectorcall(step, sargs, 3, NULL) : NULL;
            int any = commands ? PyObject_IsTrue(commands) : -1;
            if (any > 0) held = PyTuple_Pack(4, ready, at, commands, t0);
            if (any == 0) any = sample_due(loop, at, &sample);
            Py_XDECREF(commands);
            Py_XDECREF(t0);
            Py_DECREF(ready);
            Py_DECREF(at);
            if (any != 0) {
                if (any < 0) held = NULL;
                break;
            }
        }
        if (PyErr_Occurred() || held != Py_None) {
            if (!PyErr_Occurred()) result = Py_BuildValue("(nO)", i, held);
            Py_DECREF(ts);
            Py_DECREF(item);
            goto done;
        }
        /* the venue sees the event at the exchange's time, the engine only once it arrives */
        PyObject *r = PyObject_CallOneArg(to_venue, item);
        PyObject *delay = r ? PyObject_CallNoArgs(feed_delay) : NULL;
        Py_XDECREF(r);
        PyObject *arrives = delay ? PyNumber_Add(ts, delay) : NULL;
        Py_XDECREF(delay);
        Py_DECREF(ts);
        int early = arrives ? PyObject_RichCompareBool(arrives, last, Py_LT) : -1;
        if (early > 0) Py_SETREF(arrives, Py_NewRef(last));
        PyObject *queued = early >= 0 ? PyTuple_Pack(2, arrives, item) : NULL;
        Py_DECREF(item);
        if (queued) Py_SETREF(last, Py_NewRef(arrives));
        Py_XDECREF(arrives);
        r = queued ? PyObject_CallOneArg(append, queued) : NULL;
        Py_XDECREF(queued);
        if (!r) goto done;
        Py_DECREF(r);
    }
    if (!result && !PyErr_Occurred()) result = Py_BuildValue("(nO)", i, Py_None);
done:
    if (held != Py_None) Py_XDECREF(held);
    if (last && PyObject_SetAttr(loop, s_feed_last_ms, last) < 0) Py_CLEAR(result);
    Py_XDECREF(popleft);
    Py_XDECREF(append);
    Py_XDECREF(last);
    Py_XDECREF(sample);
    return result;
}

static PyMethodDef loop_functions[] = {
    {"feed_quiet", (PyCFunction)(void (*)(void))feed_quiet, METH_FASTCALL, NULL},
    {NULL},
};

static struct PyModuleDef loopmodule = {PyModuleDef_HEAD_INIT, "polysnipe.runners._loop", NULL, -1, loop_functions};

PyMODINIT_FUNC PyInit__loop(void) {
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {{&s_ts_ms, "ts_ms"},         {&s_wake_ms, "wake_ms"}, {&s_feed_last_ms, "_feed_last_ms"},
                 {&s_next_sample_ms, "_next_sample_ms"}, {&s_now_ms, "now_ms"}, {&s_popleft, "popleft"},
                 {&s_append, "append"}, {&s_sample_equity, "sample_equity"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!(*names[i].slot = PyUnicode_InternFromString(names[i].name))) return NULL;
    if (!(one = PyLong_FromLong(1))) return NULL;
    return PyModule_Create(&loopmodule);
}

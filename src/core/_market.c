/* The engine's per-event work for a price change, market_handlers.on_price_change's compiled part.
 *
 * Nearly every input of a replay is a price change, and most of them only move books and signal state:
 * the Python handler spent more on calling from one step to the next (apply the deltas, route to each
 * signal module, look for watched tokens, pick the lots held in them) than the compiled book and kernels
 * spent doing the work. price_change does those steps in one call and hands back only what needs Python:
 * opportunities to handle, lots whose exit rules are to be judged, a delta dropped or a book missing.
 * market_handlers.py stays the reference (tests/unit/test_market_dispatch.py holds both to the same
 * commands on random streams).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *apply_changes_fn, *s_lots, *s_shares, *s_flags, *s_name, *zero;

/* Append to `out` a (wallet, token, lot) key and its lot for every lot of `token` held (shares > 0)
 * in each wallet, in the order exits.on_book_change judges them: wallets, then lots, as their dicts
 * iterate. The items are held while Python code may run (attribute reads, comparisons), so a dict
 * changed meanwhile can misorder the answer but never free what is in use. */
static int lots_of(PyObject *wname, PyObject *wallet, PyObject *token, PyObject *unruled, PyObject *out) {
    PyObject *lots = PyObject_GetAttr(wallet, s_lots);
    if (!lots) return -1;
    if (!PyDict_Check(lots)) {
        Py_DECREF(lots);
        PyErr_SetString(PyExc_TypeError, "a wallet's lots must be a dict");
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *lot;
    int rc = 0;
    while (rc == 0 && PyDict_Next(lots, &pos, &key, &lot)) {
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 2) {
            PyErr_SetString(PyExc_TypeError, "a lot's key must be (token, strategy)");
            rc = -1;
            break;
        }
        Py_INCREF(key);
        Py_INCREF(lot);
        int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(key, 0), token, Py_EQ);
        if (same > 0) {
            /* a lot no exit rule watches (ExitParams.rule_for: a basket leg) is not judged */
            PyObject *label = PyTuple_GET_ITEM(key, 1);
            Py_ssize_t tail = PyUnicode_Check(label) ? PyUnicode_Tailmatch(label, unruled, 0, PY_SSIZE_T_MAX, 1) : 0;
            same = tail < 0 ? -1 : !tail;
        }
        int held = 0;
        if (same > 0) {
            PyObject *shares = PyObject_GetAttr(lot, s_shares);
            held = shares ? PyObject_RichCompareBool(shares, zero, Py_GT) : -1;
            Py_XDECREF(shares);
        }
        if (same < 0 || held < 0) {
            rc = -1;
        } else if (held) {
            PyObject *lkey = PyTuple_Pack(3, wname, token, PyTuple_GET_ITEM(key, 1));
            PyObject *pair = lkey ? PyTuple_Pack(2, lkey, lot) : NULL;
            Py_XDECREF(lkey);
            if (!pair || PyList_Append(out, pair) < 0) rc = -1;
            Py_XDECREF(pair);
        }
        Py_DECREF(key);
        Py_DECREF(lot);
    }
    Py_DECREF(lots);
    return rc;
}

static int held_lots(PyObject *wallets, PyObject *token, PyObject *unruled, PyObject *out) {
    Py_ssize_t pos = 0;
    PyObject *wname, *wallet;
    while (PyDict_Next(wallets, &pos, &wname, &wallet)) {
        Py_INCREF(wname);
        Py_INCREF(wallet);
        int rc = lots_of(wname, wallet, token, unruled, out);
        Py_DECREF(wname);
        Py_DECREF(wallet);
        if (rc < 0) return -1;
    }
    return 0;
}

/* 1 if a module of `flagged` holds more data-quality flags than `dq_seen` counts for its name (the
 * test of market_handlers._collect_flags), 0 if none does, -1 on an error. */
static int flags_beyond(PyObject *flagged, PyObject *dq_seen) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(flagged); i++) {
        PyObject *module = PyTuple_GET_ITEM(flagged, i);
        PyObject *flags = PyObject_GetAttr(module, s_flags);
        Py_ssize_t count = flags ? PyObject_Length(flags) : -1;
        Py_XDECREF(flags);
        if (count < 0) return -1;
        PyObject *name = PyObject_GetAttr(module, s_name);
        if (!name) return -1;
        PyObject *seen = PyDict_GetItemWithError(dq_seen, name);
        Py_DECREF(name);
        if (!seen && PyErr_Occurred()) return -1;
        Py_ssize_t before = 0;
        if (seen) {
            before = PyLong_AsSsize_t(seen);
            if (before == -1 && PyErr_Occurred()) return -1;
        }
        if (count != before) return 1;
    }
    return 0;
}

/* price_change(books, changes, ts_ms, handlers, event, ctx, now_ms, watched, wallets, unruled, flagged, dq_seen)
 *     -> None | (stop, applied, dropped, opps, held)
 *
 * Applies the changes (core._book.apply_changes from 0). When all were taken and at least one applied,
 * calls every handler (event, ctx, now_ms) in order, gathering what they found as _react does (opps:
 * None, or a list of everything found), then, unless they found something (the lifecycle acts on it
 * first, so the caller picks the lots itself), the lots held in the watched tokens the changes touch, in
 * the order of the changes (held: a list of (key, lot)), leaving out lots whose label ends with
 * `unruled` (ExitParams.rule_for has no rule for them). None when there is nothing left to do: no
 * delta dropped, nothing found, no lot to judge, and no module of `flagged` with data-quality flags
 * beyond its count in `dq_seen` (_collect_flags would raise no alert). Otherwise the tuple; the
 * handlers ran only if stop == len(changes) and applied > 0 (else the caller goes on from `stop` as
 * without this call). */
static PyObject *price_change(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12 || !PyDict_Check(args[0]) || !PyTuple_Check(args[3]) || !PyAnySet_Check(args[7]) ||
        !PyDict_Check(args[8]) || !PyUnicode_Check(args[9]) || !PyTuple_Check(args[10]) || !PyDict_Check(args[11])) {
        PyErr_SetString(PyExc_TypeError,
                        "price_change(books: dict, changes, ts_ms, handlers: tuple, event, ctx, now_ms, watched: "
                        "set, wallets: dict, unruled: str, flagged: tuple, dq_seen: dict) takes 12 arguments");
        return NULL;
    }
    PyObject *handlers = args[3], *event = args[4], *ctx = args[5], *now = args[6], *watched = args[7];
    PyObject *seq = PySequence_Fast(args[1], "changes must be a sequence");
    if (!seq) return NULL;
    PyObject *opps = NULL, *held = NULL, *touched = NULL, *result = NULL;
    PyObject *call[4] = {args[0], seq, args[2], zero};
    PyObject *r = PyObject_Vectorcall(apply_changes_fn, call, 4, NULL);
    if (!r) goto done;
    Py_ssize_t stop, applied, dropped;
    int ok = PyTuple_Check(r) && PyArg_ParseTuple(r, "nnn", &stop, &applied, &dropped);
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "apply_changes must return (stop, applied, dropped)");
        Py_DECREF(r);
        goto done;
    }
    Py_DECREF(r);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (stop != n || !applied) {
        result = Py_BuildValue("(nnnOO)", stop, applied, dropped, Py_None, Py_None);
        goto done;
    }
    PyObject *hargs[3] = {event, ctx, now};
    for (Py_ssize_t h = 0; h < PyTuple_GET_SIZE(handlers); h++) {
        PyObject *found = PyObject_Vectorcall(PyTuple_GET_ITEM(handlers, h), hargs, 3, NULL);
        if (!found) goto done;
        int any = PyObject_IsTrue(found);
        if (any > 0) {
            if (!opps) {
                opps = PySequence_List(found);
                if (!opps) any = -1;
            } else if (PyList_SetSlice(opps, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, found) < 0) {
                any = -1;
            }
        }
        Py_DECREF(found);
        if (any < 0) goto done;
    }
    if (!opps && PySet_GET_SIZE(watched)) {
        /* the size is read again each time: `seq` may be the caller's list, which Python code run
         * meanwhile (hashes, comparisons) could change */
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            PyObject *d = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyTuple_Check(d) || PyTuple_GET_SIZE(d) < 1) {
                PyErr_SetString(PyExc_TypeError, "a change must be a BookDelta");
                goto done;
            }
            PyObject *token = Py_NewRef(PyTuple_GET_ITEM(d, 0));
            int w = PySet_Contains(watched, token);
            /* each token once, where the changes first name it (dict.fromkeys in the reference) */
            if (w > 0 && !touched && !(touched = PyDict_New())) w = -1;
            int seen = w > 0 ? PyDict_Contains(touched, token) : 0;
            int rc = w < 0 || seen < 0 ? -1 : 0;
            if (rc == 0 && w > 0 && !seen) {
                if (PyDict_SetItem(touched, token, Py_None) < 0 || (!held && !(held = PyList_New(0))) ||
                    held_lots(args[8], token, args[9], held) < 0)
                    rc = -1;
            }
            Py_DECREF(token);
            if (rc < 0) goto done;
        }
    }
    if (!dropped && !opps && (!held || !PyList_GET_SIZE(held))) {
        int flags = flags_beyond(args[10], args[11]);
        if (flags < 0) goto done;
        if (!flags) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    result = Py_BuildValue("(nnnOO)", stop, applied, dropped, opps ? opps : Py_None, held ? held : Py_None);
done:
    Py_DECREF(seq);
    Py_XDECREF(opps);
    Py_XDECREF(held);
    Py_XDECREF(touched);
    return result;
}

static PyMethodDef market_functions[] = {
    {"price_change", (PyCFunction)(void (*)(void))price_change, METH_FASTCALL, NULL},
    {NULL},
};

static struct PyModuleDef marketmodule = {PyModuleDef_HEAD_INIT, "polysnipe.core._market", NULL, -1,
                                          market_functions};

PyMODINIT_FUNC PyInit__market(void) {
    PyObject *book = PyImport_ImportModule("polysnipe.core._book");
    if (!book) return NULL;
    apply_changes_fn = PyObject_GetAttrString(book, "apply_changes");
    Py_DECREF(book);
    s_lots = PyUnicode_InternFromString("lots");
    s_shares = PyUnicode_InternFromString("shares");
    s_flags = PyUnicode_InternFromString("data_quality_flags");
    s_name = PyUnicode_InternFromString("name");
    zero = PyLong_FromLong(0);
    if (!apply_changes_fn || !s_lots || !s_shares || !s_flags || !s_name || !zero) return NULL;
    return PyModule_Create(&marketmodule);
}

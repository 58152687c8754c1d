/* polysnipe.adapters.sim._venue: the simulated venue's per-delta book upkeep, compiled.
 *
 * Theory of operation. The venue (venue.py, MatchingEngine.apply) applies every replayed level change to
 * its own book of the token. Nearly always the token has neither an order of ours resting on it nor a
 * claim (liquidity our fills took that the feed still shows), and then a change is only a book update.
 * apply_plain walks a price change's deltas in order and does exactly that for each one, reading the
 * token's state (the venue's _Tok: `resting`, `claims`, `book`) as it stands at that delta; it stops at
 * the first delta that needs the Python venue (an unknown token, a claim on that side, a resting order)
 * and returns its index, so matching and the queue model always run in Python on books that are exactly
 * as the Python loop would have left them. Books are read through core._book's C API (_book_api.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_book_api.h"

static PsBookApi *Books;
static PyObject *s_resting, *s_claims, *s_book;

/* apply_plain(toks, changes, ts_ms, start) -> int: see the module comment and venue._apply_plain. */
static PyObject *apply_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "apply_plain(toks: dict, changes, ts_ms, start) takes 4 arguments");
        return NULL;
    }
    PyObject *toks = args[0], *ts = args[2];
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    PyObject *seq = PySequence_Fast(args[1], "changes must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i = start < 0 ? 0 : start;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (; i < n; i++) {
        PyObject *d = items[i], *tok;
        int has = PsDelta_Lookup(d, toks, &tok);
        if (has < 0) goto fail;
        if (!has) break;
        PyObject *side = PyTuple_GET_ITEM(d, 1);
        int is_bid = side == Books->buy;
        if (!is_bid && side != Books->sell) break; /* not a Side: the Python venue says what that means */
        PyObject *v = PyObject_GetAttr(tok, s_resting);
        if (!v) goto fail;
        int resting = PyObject_IsTrue(v);
        Py_DECREF(v);
        if (resting < 0) goto fail;
        if (resting) break;
        PyObject *claims = PyObject_GetAttr(tok, s_claims);
        if (!claims) goto fail;
        PyObject *mine = PyTuple_Check(claims) && PyTuple_GET_SIZE(claims) == 2 ? PyTuple_GET_ITEM(claims, !is_bid) : NULL;
        int held = -1; /* claims of another shape: the Python venue's case */
        if (mine && PyDict_CheckExact(mine)) {
            held = PyDict_GET_SIZE(mine) && PyDict_GetItemWithError(mine, PyTuple_GET_ITEM(d, 2));
            if (!held && PyErr_Occurred()) held = -2;
        }
        Py_DECREF(claims);
        if (held == -2) goto fail;
        if (held) break; /* a claim at this price: the Python venue's case */
        PyObject *book = PyObject_GetAttr(tok, s_book);
        if (!book) goto fail;
        PyObject *r = PsBook_ApplyLevel(Books, book, side, PyTuple_GET_ITEM(d, 2), PyTuple_GET_ITEM(d, 3), ts);
        Py_DECREF(book);
        if (!r) goto fail;
        Py_DECREF(r);
    }
    Py_DECREF(seq);
    return PyLong_FromSsize_t(i < n ? i : n);
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef venue_functions[] = {
    {"apply_plain", (PyCFunction)(void (*)(void))apply_plain, METH_FASTCALL, NULL},
    {NULL},
};

static struct PyModuleDef venuemodule = {PyModuleDef_HEAD_INIT, "polysnipe.adapters.sim._venue", NULL, -1,
                                         venue_functions};

PyMODINIT_FUNC PyInit__venue(void) {
    Books = PsBook_Import();
    if (!Books) return NULL;
    s_resting = PyUnicode_InternFromString("resting");
    s_claims = PyUnicode_InternFromString("claims");
    s_book = PyUnicode_InternFromString("book");
    if (!s_resting || !s_claims || !s_book) return NULL;
    return PyModule_Create(&venuemodule);
}

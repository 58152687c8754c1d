/* The compiled book's C API, for other extensions (the signal kernels) that read DenseBooks on every
 * event without going through Python calls.
 *
 * polysnipe.core._book exports a capsule holding a PsBookApi; PsBook_Import() fetches it (importing the
 * module), so a kernel calls the book's own code through these pointers: one indirect call, no method
 * lookup, no int boxing. Every value is an int64 in micro-units (prices, sizes) or ticks; a value the
 * book holds that does not fit (only possible through direct API misuse: decoders range-check) raises
 * OverflowError. Functions return -1 with an exception set on error.
 */
#ifndef POLYSNIPE_BOOK_API_H
#define POLYSNIPE_BOOK_API_H

#include <Python.h>
#include <stdint.h>

#define PS_BOOK_CAPSULE "polysnipe.core._book._C_API"

typedef struct {
    /* DenseBook; a kernel checks Py_IS_TYPE(book, api->type) before using the rest on an object */
    PyTypeObject *type;
    /* 1 while the book is trusted (a snapshot came and no gap since), else 0 */
    int (*trusted)(PyObject *book);
    /* the tick size */
    int (*tick_size)(PyObject *book, int64_t *out);
    /* the touch of one side: 1 with *price set, 0 when the side is empty (BookState.top_bid is None) */
    int (*top)(PyObject *book, int is_bid, int64_t *price);
    /* the size at the touch, 0 when the side is empty (best_bid_size / best_ask_size) */
    int (*top_size)(PyObject *book, int is_bid, int64_t *size);
    /* size at `price` (0 when no level there) (size_at) */
    int (*size_at)(PyObject *book, int is_bid, int64_t price, int64_t *size);
    /* grid_depth(side, price, n_ticks): the size at `price` and at the n_ticks prices behind it */
    int (*grid_depth)(PyObject *book, int is_bid, int64_t price, int64_t n_ticks, int64_t *out);
    /* 1 when both sides have a level and the best bid >= the best ask, else 0 (is_crossed) */
    int (*is_crossed)(PyObject *book);
    /* polysnipe.core.events.Side.BUY and Side.SELL (borrowed, alive as long as the module) */
    PyObject *buy;
    PyObject *sell;
    /* apply_level(side, price, size, ts_ms) with the caller's objects: a new reference to the change in
     * size it returns (0 on an untrusted book), NULL on error */
    PyObject *(*apply_level)(PyObject *book, PyObject *side, PyObject *price, PyObject *size, PyObject *ts);
    /* last_ts_ms: 1 with *out set when it fits an int64, else 0 (the caller then asks the attribute) */
    int (*last_ts)(PyObject *book, int64_t *out);
    /* The best level of one side at or behind `from` (bids: price <= from, asks: price >= from), for
     * walking a side best-first as levels() lists it: 1 with *price and *size set, 0 when there is none,
     * 2 when the side holds off-grid levels (the caller walks levels() instead). */
    int (*level_from)(PyObject *book, int is_bid, int64_t from, int64_t *price, int64_t *size);
} PsBookApi;

/* The API of the loaded polysnipe.core._book, or NULL with an exception set. */
static inline PsBookApi *PsBook_Import(void) { return (PsBookApi *)PyCapsule_Import(PS_BOOK_CAPSULE, 0); }

/* The same questions of any Book (core.book's protocol): a DenseBook through the API, anything else
 * (BookState, a test's own book) through its Python attributes and methods, so a kernel gives the same
 * answers whichever book it is handed. */
static inline int ps_i64_of(PyObject *v, int64_t *out) {
    if (!v) return -1;
    long long x = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static inline int PsBook_Trusted(PsBookApi *api, PyObject *book) {
    if (Py_IS_TYPE(book, api->type)) return api->trusted(book);
    PyObject *v = PyObject_GetAttrString(book, "trusted");
    if (!v) return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

static inline int PsBook_TickSize(PsBookApi *api, PyObject *book, int64_t *out) {
    if (Py_IS_TYPE(book, api->type)) return api->tick_size(book, out);
    return ps_i64_of(PyObject_GetAttrString(book, "tick_size"), out);
}

static inline int PsBook_Top(PsBookApi *api, PyObject *book, int is_bid, int64_t *price) {
    if (Py_IS_TYPE(book, api->type)) return api->top(book, is_bid, price);
    PyObject *v = PyObject_GetAttrString(book, is_bid ? "top_bid" : "top_ask");
    if (!v) return -1;
    if (v == Py_None) {
        Py_DECREF(v);
        return 0;
    }
    return ps_i64_of(v, price) < 0 ? -1 : 1;
}

static inline int PsBook_TopSize(PsBookApi *api, PyObject *book, int is_bid, int64_t *size) {
    if (Py_IS_TYPE(book, api->type)) return api->top_size(book, is_bid, size);
    return ps_i64_of(PyObject_CallMethod(book, is_bid ? "best_bid_size" : "best_ask_size", NULL), size);
}

static inline int PsBook_SizeAt(PsBookApi *api, PyObject *book, int is_bid, int64_t price, int64_t *size) {
    if (Py_IS_TYPE(book, api->type)) return api->size_at(book, is_bid, price, size);
    return ps_i64_of(PyObject_CallMethod(book, "size_at", "OL", is_bid ? api->buy : api->sell, (long long)price), size);
}

static inline int PsBook_GridDepth(PsBookApi *api, PyObject *book, int is_bid, int64_t price, int64_t n_ticks,
                                   int64_t *out) {
    if (Py_IS_TYPE(book, api->type)) return api->grid_depth(book, is_bid, price, n_ticks, out);
    return ps_i64_of(PyObject_CallMethod(book, "grid_depth", "OLL", is_bid ? api->buy : api->sell,
                                         (long long)price, (long long)n_ticks),
                     out);
}

static inline int PsBook_IsCrossed(PsBookApi *api, PyObject *book) {
    if (Py_IS_TYPE(book, api->type)) return api->is_crossed(book);
    PyObject *v = PyObject_CallMethod(book, "is_crossed", NULL);
    if (!v) return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

static inline PyObject *PsBook_ApplyLevel(PsBookApi *api, PyObject *book, PyObject *side, PyObject *price,
                                          PyObject *size, PyObject *ts) {
    if (Py_IS_TYPE(book, api->type)) return api->apply_level(book, side, price, size, ts);
    return PyObject_CallMethod(book, "apply_level", "OOOO", side, price, size, ts);
}

/* An exact 128-bit int (book sums, products of micro-units) as a Python int. */
static inline PyObject *PsLong_FromI128(__int128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong((long long)v);
    PyObject *hi = PyLong_FromLongLong((long long)(v >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)(uint64_t)v);
    PyObject *sh = PyLong_FromLong(64);
    PyObject *r = NULL, *t = NULL;
    if (hi && lo && sh && (t = PyNumber_Lshift(hi, sh))) r = PyNumber_Add(t, lo);
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sh);
    Py_XDECREF(t);
    return r;
}

/* One change of a price change (a BookDelta: token_id, side, price, size, ...) and what its token maps
 * to in `by_token` (borrowed): 1 found, 0 no entry, -1 error (not a BookDelta). The per-delta loops in
 * C (core._book.apply_changes, adapters.sim._venue.apply_plain) read their changes through this. */
static inline int PsDelta_Lookup(PyObject *d, PyObject *by_token, PyObject **found) {
    if (!PyTuple_Check(d) || PyTuple_GET_SIZE(d) < 4) {
        PyErr_SetString(PyExc_TypeError, "a change must be a BookDelta");
        return -1;
    }
    *found = PyDict_GetItemWithError(by_token, PyTuple_GET_ITEM(d, 0));
    if (*found) return 1;
    return PyErr_Occurred() ? -1 : 0;
}

#endif

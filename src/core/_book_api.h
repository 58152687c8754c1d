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
} PsBookApi;

/* The API of the loaded polysnipe.core._book, or NULL with an exception set. */
static inline PsBookApi *PsBook_Import(void) { return (PsBookApi *)PyCapsule_Import(PS_BOOK_CAPSULE, 0); }

#endif

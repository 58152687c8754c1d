/* polysnipe.core._book: the compiled L2 book, DenseBook, a drop-in for polysnipe.core.book.BookState.
 *
 * Theory of operation. Every Polymarket tick (0.1 down to 0.0001, PROTOCOL.md 3.1) is a multiple of
 * 0.0001 = 100 micro-units, so a price in micro-units 0..1_000_000 that is a multiple of 100 has a slot
 * on one grid of 10_001 slots per side. A slot holds the level's size (int64 micro-shares, 0 = no level)
 * in chunks of 64 slots allocated on first use (a book touches a few chunks, not 80 KB per side). One bit
 * per slot says the level exists, and one summary bit per 64-bit word says the word is not empty, so the
 * next best level after the touch empties is two count-leading/trailing-zeros steps away, never a scan.
 * The best slot of each side is cached, and so is its Python int (made when the touch moves): `top_bid`
 * and the other attributes are plain member slots, which the interpreter reads as fast as __slots__.
 *
 * Any other int price (off the grid, negative, above 1_000_000, beyond int64) is not refused: it goes to
 * a per-side overflow, a dict price -> size plus a sorted list of its prices, exactly the Python book's
 * structure, so every answer stays identical to BookState on any int input. Valid venue data never
 * reaches it; queries take a generic (slower) path while a side's overflow is not empty.
 *
 * Sizes are int64 micro-shares: a positive size that does not fit raises OverflowError before the book
 * changes (the Python book would store it). A negative or zero size of any magnitude removes the level,
 * as in BookState. Sums (depth) accumulate in 128 bits, so they never wrap. Prices, sizes and tick sizes
 * must be ints (TypeError otherwise); timestamps are compared as the Python book compares them.
 *
 * Built by setup.py (gcc or clang: __int128 and the clz/ctz builtins); tests/unit/test_book_compiled.py
 * holds it to BookState on random streams, and was run under AddressSanitizer and UBSan as well.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_book_api.h"

#define STEP 100                  /* micro-units between grid slots: the 0.0001 tick */
#define NSLOTS 10001              /* prices 0, 100, ..., 1_000_000 */
#define NWORDS ((NSLOTS + 63) / 64)
#define NSUM ((NWORDS + 63) / 64)

typedef __int128 i128;

typedef struct {
    uint64_t bits[NWORDS];   /* slot has a level */
    uint64_t summary[NSUM];  /* bits[w] != 0 */
    int64_t *chunk[NWORDS];  /* sizes of slots 64w..64w+63, NULL until first used */
    int best;                /* best slot (highest bid / lowest ask), -1 when the grid side is empty */
    PyObject *ovf;           /* off-grid levels: dict price -> size, NULL when empty */
    PyObject *ovf_px;        /* their prices ascending (list), NULL when empty */
    int top_src;             /* where the touch is: 0 none, 1 grid, 2 overflow */
    PyObject *top;           /* the touch as a Python int, or None (always set) */
} Side_;

typedef struct {
    PyObject_HEAD
    Side_ bid;
    Side_ ask;
    PyObject *token_id;
    PyObject *tick_size;
    PyObject *hash;
    PyObject *last_ts;
    PyObject *snap_ts;
    PyObject *trusted_obj; /* True / False, for the member slot */
    int64_t last_ts_c;  /* last_ts as int64 when last_ts_fits */
    int last_ts_fits;
    int trusted;
} DenseBook;

static PyObject *BUY;          /* polysnipe.core.events.Side.BUY */
static PyObject *SELL;         /* ... and Side.SELL, for the C API */
static PyTypeObject *LevelType; /* polysnipe.core.events.Level (a NamedTuple) */
static PyObject *insort_fn, *bisect_left_fn;
static PyObject *s_bids, *s_asks, *s_tick_size, *s_ts_ms, *s_hash, *s_price, *s_size;

/* -- bitmap ------------------------------------------------------------------------------------ */
static inline int64_t slot_size(const Side_ *s, int i) {
    const int64_t *c = s->chunk[i >> 6];
    return c ? c[i & 63] : 0;
}

/* highest set slot <= i, or -1 */
static int find_le(const Side_ *s, int i) {
    if (i < 0) return -1;
    int w = i >> 6;
    uint64_t m = s->bits[w] & (((uint64_t)2 << (i & 63)) - 1); /* bits 0..i&63; 2<<63 wraps to 0 */
    if (m) return (w << 6) + 63 - __builtin_clzll(m);
    for (int ww = w - 1; ww >= 0;) {
        int sw = ww >> 6;
        uint64_t sm = s->summary[sw] & (((uint64_t)2 << (ww & 63)) - 1);
        if (sm) {
            int x = (sw << 6) + 63 - __builtin_clzll(sm);
            return (x << 6) + 63 - __builtin_clzll(s->bits[x]);
        }
        ww = (sw << 6) - 1;
    }
    return -1;
}

/* lowest set slot >= i, or -1 */
static int find_ge(const Side_ *s, int i) {
    if (i >= NSLOTS) return -1;
    if (i < 0) i = 0;
    int w = i >> 6;
    uint64_t m = s->bits[w] & (~(uint64_t)0 << (i & 63));
    if (m) return (w << 6) + __builtin_ctzll(m);
    for (int nw = w + 1; nw < NWORDS;) {
        int sw = nw >> 6;
        uint64_t sm = s->summary[sw] & (~(uint64_t)0 << (nw & 63));
        if (sm) {
            int ww = (sw << 6) + __builtin_ctzll(sm);
            return (ww << 6) + __builtin_ctzll(s->bits[ww]);
        }
        nw = (sw + 1) << 6;
    }
    return -1;
}

static int slot_set(Side_ *s, int i, int64_t size) {
    int w = i >> 6;
    if (!s->chunk[w]) {
        s->chunk[w] = PyMem_Calloc(64, sizeof(int64_t));
        if (!s->chunk[w]) {
            PyErr_NoMemory();
            return -1;
        }
    }
    s->chunk[w][i & 63] = size;
    s->bits[w] |= (uint64_t)1 << (i & 63);
    s->summary[w >> 6] |= (uint64_t)1 << (w & 63);
    return 0;
}

static void slot_clear(Side_ *s, int i) {
    int w = i >> 6;
    s->chunk[w][i & 63] = 0;
    s->bits[w] &= ~((uint64_t)1 << (i & 63));
    if (!s->bits[w]) s->summary[w >> 6] &= ~((uint64_t)1 << (w & 63));
}

static void side_clear(Side_ *s) {
    for (int w = 0; w < NWORDS; w++) {
        if (s->bits[w]) {
            memset(s->chunk[w], 0, 64 * sizeof(int64_t));
            s->bits[w] = 0;
        }
    }
    memset(s->summary, 0, sizeof s->summary);
    s->best = -1;
    Py_CLEAR(s->ovf);
    Py_CLEAR(s->ovf_px);
    s->top_src = 0;
    Py_INCREF(Py_None);
    Py_SETREF(s->top, Py_None);
}

static void side_free(Side_ *s) {
    side_clear(s);
    Py_CLEAR(s->top);
    for (int w = 0; w < NWORDS; w++) {
        PyMem_Free(s->chunk[w]);
        s->chunk[w] = NULL;
    }
}

/* -- ints -------------------------------------------------------------------------------------- */
/* The grid slot of an int price, or -1 when it belongs to the overflow; -2 with TypeError when not an int. */
static int slot_of(PyObject *price) {
    if (!PyLong_Check(price)) {
        PyErr_Format(PyExc_TypeError, "a book price must be an int, not %.100s", Py_TYPE(price)->tp_name);
        return -2;
    }
    int ovf;
    long long p = PyLong_AsLongLongAndOverflow(price, &ovf);
    if (ovf || p < 0 || p > (long long)(NSLOTS - 1) * STEP || p % STEP) return -1;
    return (int)(p / STEP);
}

/* An int size: 1 with *out set when it fits int64; 0 when it is negative beyond int64 (a removal);
 * -1 with an error when it is not an int or positive beyond int64. */
static int size_of(PyObject *size, int64_t *out) {
    if (!PyLong_Check(size)) {
        PyErr_Format(PyExc_TypeError, "a book size must be an int, not %.100s", Py_TYPE(size)->tp_name);
        return -1;
    }
    int ovf;
    long long v = PyLong_AsLongLongAndOverflow(size, &ovf);
    if (ovf > 0) {
        PyErr_SetString(PyExc_OverflowError, "a book size must fit int64 micro-shares");
        return -1;
    }
    if (ovf < 0) return 0;
    *out = v;
    return 1;
}

/* -- the touch --------------------------------------------------------------------------------- */
/* Make `top` say what top_src and best say. */
static int side_set_top(Side_ *s, int is_bid) {
    PyObject *t;
    if (s->top_src == 0) {
        t = Py_None;
        Py_INCREF(t);
    } else if (s->top_src == 1) {
        t = PyLong_FromLongLong((long long)s->best * STEP);
        if (!t) return -1;
    } else {
        t = PyList_GET_ITEM(s->ovf_px, is_bid ? PyList_GET_SIZE(s->ovf_px) - 1 : 0);
        Py_INCREF(t);
    }
    Py_SETREF(s->top, t);
    return 0;
}

/* The touch of a side after any change, comparing the grid's best with the overflow's (never equal:
 * a price is on the grid or in the overflow, not both). */
static int side_refresh_top(Side_ *s, int is_bid) {
    Py_ssize_t n = s->ovf_px ? PyList_GET_SIZE(s->ovf_px) : 0;
    if (n == 0) {
        s->top_src = s->best >= 0 ? 1 : 0;
        return side_set_top(s, is_bid);
    }
    if (s->best < 0) {
        s->top_src = 2;
        return side_set_top(s, is_bid);
    }
    PyObject *o = PyList_GET_ITEM(s->ovf_px, is_bid ? n - 1 : 0);
    PyObject *g = PyLong_FromLongLong((long long)s->best * STEP);
    if (!g) return -1;
    int ovf_better = PyObject_RichCompareBool(o, g, is_bid ? Py_GT : Py_LT);
    Py_DECREF(g);
    if (ovf_better < 0) return -1;
    s->top_src = ovf_better ? 2 : 1;
    return side_set_top(s, is_bid);
}

/* New reference to the touch price, or None. */
static PyObject *side_top(Side_ *s, int is_bid) {
    Py_INCREF(s->top);
    return s->top;
}

static PyObject *side_top_size(Side_ *s, int is_bid) {
    if (s->top_src == 0) return PyLong_FromLong(0);
    if (s->top_src == 1) return PyLong_FromLongLong(slot_size(s, s->best));
    PyObject *top = side_top(s, is_bid);
    if (!top) return NULL;
    PyObject *v = PyDict_GetItemWithError(s->ovf, top);
    Py_DECREF(top);
    if (!v) return PyErr_Occurred() ? NULL : PyLong_FromLong(0);
    Py_INCREF(v);
    return v;
}

/* -- levels as Python lists ----------------------------------------------------------------------- */
static PyObject *make_level(PyObject *price, PyObject *size) {
    /* Level is a NamedTuple: a tuple subclass without a dict, so tp_alloc makes a proper instance */
    PyObject *lv = LevelType->tp_alloc(LevelType, 2);
    if (!lv) return NULL;
    Py_INCREF(price);
    Py_INCREF(size);
    PyTuple_SET_ITEM(lv, 0, price);
    PyTuple_SET_ITEM(lv, 1, size);
    return lv;
}

/* All levels of a side ascending by price as a list of (price, size) pairs (Level), merging the grid
 * and the overflow. */
static PyObject *side_levels_asc(Side_ *s) {
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    Py_ssize_t n = s->ovf_px ? PyList_GET_SIZE(s->ovf_px) : 0, j = 0;
    for (int i = find_ge(s, 0);; i = find_ge(s, i + 1)) {
        PyObject *g = NULL;
        if (i >= 0) {
            g = PyLong_FromLongLong((long long)i * STEP);
            if (!g) goto fail;
        }
        /* overflow prices below this grid price (or all that remain when the grid is done) first */
        while (j < n) {
            PyObject *o = PyList_GET_ITEM(s->ovf_px, j);
            int lt = g ? PyObject_RichCompareBool(o, g, Py_LT) : 1;
            if (lt < 0) {
                Py_XDECREF(g);
                goto fail;
            }
            if (!lt) break;
            PyObject *sz = PyDict_GetItemWithError(s->ovf, o);
            PyObject *lv = sz ? make_level(o, sz) : NULL;
            if (!lv || PyList_Append(out, lv) < 0) {
                Py_XDECREF(lv);
                Py_XDECREF(g);
                goto fail;
            }
            Py_DECREF(lv);
            j++;
        }
        if (i < 0) break;
        PyObject *sz = PyLong_FromLongLong(slot_size(s, i));
        PyObject *lv = sz ? make_level(g, sz) : NULL;
        Py_XDECREF(sz);
        Py_DECREF(g);
        if (!lv || PyList_Append(out, lv) < 0) {
            Py_XDECREF(lv);
            goto fail;
        }
        Py_DECREF(lv);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* -- the type ----------------------------------------------------------------------------------- */
static int side_arg(PyObject *side) { return side == BUY; }

static PyObject *DenseBook_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"token_id", "tick_size", NULL};
    PyObject *token_id, *tick_size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO", kwlist, &token_id, &tick_size)) return NULL;
    DenseBook *self = (DenseBook *)type->tp_alloc(type, 0); /* zeroed: empty sides, NULL chunks */
    if (!self) return NULL;
    self->bid.best = self->ask.best = -1;
    Py_INCREF(Py_None);
    self->bid.top = Py_None;
    Py_INCREF(Py_None);
    self->ask.top = Py_None;
    Py_INCREF(Py_False);
    self->trusted_obj = Py_False;
    Py_INCREF(token_id);
    self->token_id = token_id;
    Py_INCREF(tick_size);
    self->tick_size = tick_size;
    self->hash = PyUnicode_FromString("");
    self->last_ts = PyLong_FromLong(0);
    self->snap_ts = PyLong_FromLong(0);
    self->last_ts_fits = 1;
    if (!self->hash || !self->last_ts || !self->snap_ts) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void DenseBook_dealloc(DenseBook *self) {
    side_free(&self->bid);
    side_free(&self->ask);
    Py_XDECREF(self->token_id);
    Py_XDECREF(self->tick_size);
    Py_XDECREF(self->hash);
    Py_XDECREF(self->last_ts);
    Py_XDECREF(self->snap_ts);
    Py_XDECREF(self->trusted_obj);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static void set_last_ts(DenseBook *self, PyObject *ts) {
    Py_INCREF(ts);
    Py_SETREF(self->last_ts, ts);
    int ovf = 1;
    long long v = PyLong_Check(ts) ? PyLong_AsLongLongAndOverflow(ts, &ovf) : 0;
    self->last_ts_fits = !ovf;
    self->last_ts_c = v;
}

/* A level's (price, size) from a Level or anything with .price / .size; new references. */
static int level_parts(PyObject *lv, PyObject **price, PyObject **size) {
    if (PyTuple_Check(lv) && PyTuple_GET_SIZE(lv) == 2 && Py_TYPE(lv) == LevelType) {
        *price = PyTuple_GET_ITEM(lv, 0);
        *size = PyTuple_GET_ITEM(lv, 1);
        Py_INCREF(*price);
        Py_INCREF(*size);
        return 0;
    }
    *price = PyObject_GetAttr(lv, s_price);
    if (!*price) return -1;
    *size = PyObject_GetAttr(lv, s_size);
    if (!*size) {
        Py_CLEAR(*price);
        return -1;
    }
    return 0;
}

/* Check every level of a snapshot side before the book changes: ints, positive sizes within int64. */
static int check_levels(PyObject *seq) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *price, *size;
        if (level_parts(PySequence_Fast_GET_ITEM(seq, k), &price, &size) < 0) return -1;
        int64_t sz;
        int rc = slot_of(price) == -2 ? -1 : size_of(size, &sz);
        Py_DECREF(price);
        Py_DECREF(size);
        if (rc < 0) return -1;
    }
    return 0;
}

/* Set one level of an overflow; *old (new ref) gets what stood there (0 if none). */
static int ovf_set(Side_ *s, int is_bid, PyObject *price, PyObject *size, int positive, PyObject **old) {
    PyObject *cur = s->ovf ? PyDict_GetItemWithError(s->ovf, price) : NULL;
    if (!cur && PyErr_Occurred()) return -1;
    if (cur) {
        Py_INCREF(cur);
        *old = cur;
    } else {
        *old = PyLong_FromLong(0);
        if (!*old) return -1;
    }
    if (positive) {
        if (!s->ovf) {
            s->ovf = PyDict_New();
            s->ovf_px = PyList_New(0);
            if (!s->ovf || !s->ovf_px) return -1;
        }
        if (PyDict_SetItem(s->ovf, price, size) < 0) return -1;
        if (!cur) {
            PyObject *r = PyObject_CallFunctionObjArgs(insort_fn, s->ovf_px, price, NULL);
            if (!r) return -1;
            Py_DECREF(r);
            return side_refresh_top(s, is_bid);
        }
        return 0;
    }
    if (!cur) return 0;
    if (PyDict_DelItem(s->ovf, price) < 0) return -1;
    PyObject *at = PyObject_CallFunctionObjArgs(bisect_left_fn, s->ovf_px, price, NULL);
    if (!at) return -1;
    Py_ssize_t i = PyLong_AsSsize_t(at);
    Py_DECREF(at);
    if (i == -1 && PyErr_Occurred()) return -1;
    if (PySequence_DelItem(s->ovf_px, i) < 0) return -1;
    if (PyList_GET_SIZE(s->ovf_px) == 0) {
        Py_CLEAR(s->ovf);
        Py_CLEAR(s->ovf_px);
    }
    return side_refresh_top(s, is_bid);
}

static int snapshot_side(Side_ *s, int is_bid, PyObject *seq) {
    side_clear(s);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *price, *size;
        if (level_parts(PySequence_Fast_GET_ITEM(seq, k), &price, &size) < 0) return -1;
        int64_t sz = 0;
        int rc = size_of(size, &sz), slot = slot_of(price);
        if (rc == 1 && sz > 0) {
            /* a price repeated in one snapshot: the last one wins, as in the dict comprehension */
            if (slot >= 0) {
                rc = slot_set(s, slot, sz);
            } else {
                PyObject *old = NULL;
                rc = ovf_set(s, is_bid, price, size, 1, &old);
                Py_XDECREF(old);
            }
        } else {
            rc = rc < 0 ? -1 : 0;
        }
        Py_DECREF(price);
        Py_DECREF(size);
        if (rc < 0) return -1;
    }
    s->best = is_bid ? find_le(s, NSLOTS - 1) : find_ge(s, 0);
    return side_refresh_top(s, is_bid);
}

static PyObject *DenseBook_apply_snapshot(DenseBook *self, PyObject *snap) {
    PyObject *bids = NULL, *asks = NULL, *fb = NULL, *fa = NULL, *tick = NULL, *ts = NULL, *hash = NULL;
    PyObject *result = NULL;
    if (!(bids = PyObject_GetAttr(snap, s_bids)) || !(asks = PyObject_GetAttr(snap, s_asks)) ||
        !(tick = PyObject_GetAttr(snap, s_tick_size)) || !(ts = PyObject_GetAttr(snap, s_ts_ms)) ||
        !(hash = PyObject_GetAttr(snap, s_hash)))
        goto done;
    if (!(fb = PySequence_Fast(bids, "snapshot bids must be a sequence")) ||
        !(fa = PySequence_Fast(asks, "snapshot asks must be a sequence")))
        goto done;
    if (check_levels(fb) < 0 || check_levels(fa) < 0) goto done;
    if (snapshot_side(&self->bid, 1, fb) < 0 || snapshot_side(&self->ask, 0, fa) < 0) goto done;
    if (tick != Py_None) {
        Py_INCREF(tick);
        Py_SETREF(self->tick_size, tick);
    }
    self->trusted = 1;
    Py_INCREF(Py_True);
    Py_SETREF(self->trusted_obj, Py_True);
    set_last_ts(self, ts);
    Py_INCREF(ts);
    Py_SETREF(self->snap_ts, ts);
    Py_INCREF(hash);
    Py_SETREF(self->hash, hash);
    result = Py_None;
    Py_INCREF(result);
done:
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    Py_XDECREF(fb);
    Py_XDECREF(fa);
    Py_XDECREF(tick);
    Py_XDECREF(ts);
    Py_XDECREF(hash);
    return result;
}

static PyObject *DenseBook_apply_level(DenseBook *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_level(side, price, size, ts_ms) takes 4 arguments");
        return NULL;
    }
    if (!self->trusted) return PyLong_FromLong(0);
    int is_bid = side_arg(args[0]);
    PyObject *price = args[1], *size = args[2], *ts = args[3];
    int slot = slot_of(price);
    if (slot == -2) return NULL;
    int64_t sz = 0;
    int fits = size_of(size, &sz);
    if (fits < 0) return NULL;
    /* ts_ms > last_ts_ms, in int64 when both fit */
    int ovf = 1;
    long long t = PyLong_CheckExact(ts) ? PyLong_AsLongLongAndOverflow(ts, &ovf) : 0;
    if (!ovf && self->last_ts_fits) {
        if (t > self->last_ts_c) {
            Py_INCREF(ts);
            Py_SETREF(self->last_ts, ts);
            self->last_ts_c = t;
        }
    } else {
        int gt = PyObject_RichCompareBool(ts, self->last_ts, Py_GT);
        if (gt < 0) return NULL;
        if (gt) set_last_ts(self, ts);
    }
    Side_ *s = is_bid ? &self->bid : &self->ask;
    int positive = fits == 1 && sz > 0;
    if (slot < 0) {
        PyObject *old = NULL;
        if (ovf_set(s, is_bid, price, size, positive, &old) < 0) {
            Py_XDECREF(old);
            return NULL;
        }
        PyObject *r = PyNumber_Subtract(size, old);
        Py_DECREF(old);
        return r;
    }
    int64_t old = slot_size(s, slot);
    if (positive) {
        if (old) {
            s->chunk[slot >> 6][slot & 63] = sz;
        } else {
            if (slot_set(s, slot, sz) < 0) return NULL;
            if (s->best < 0 || (is_bid ? slot > s->best : slot < s->best)) {
                s->best = slot;
                if (s->ovf_px) {
                    if (side_refresh_top(s, is_bid) < 0) return NULL;
                } else {
                    s->top_src = 1;
                    if (side_set_top(s, is_bid) < 0) return NULL;
                }
            }
        }
    } else if (old) {
        slot_clear(s, slot);
        if (slot == s->best) {
            s->best = is_bid ? find_le(s, slot - 1) : find_ge(s, slot + 1);
            if (s->ovf_px) {
                if (side_refresh_top(s, is_bid) < 0) return NULL;
            } else {
                s->top_src = s->best >= 0 ? 1 : 0;
                if (side_set_top(s, is_bid) < 0) return NULL;
            }
        }
    }
    if (fits == 0) {
        /* a size below int64's range removes the level; the change is exact Python arithmetic */
        PyObject *o = PyLong_FromLongLong(old);
        if (!o) return NULL;
        PyObject *r = PyNumber_Subtract(size, o);
        Py_DECREF(o);
        return r;
    }
    return PsLong_FromI128((i128)sz - (i128)old);
}

static PyObject *DenseBook_set_tick_size(DenseBook *self, PyObject *tick) {
    Py_INCREF(tick);
    Py_SETREF(self->tick_size, tick);
    Py_RETURN_NONE;
}

static PyObject *DenseBook_invalidate(DenseBook *self, PyObject *unused) {
    self->trusted = 0;
    Py_INCREF(Py_False);
    Py_SETREF(self->trusted_obj, Py_False);
    Py_RETURN_NONE;
}

static PyObject *DenseBook_best_bid(DenseBook *self, PyObject *unused) { return side_top(&self->bid, 1); }
static PyObject *DenseBook_best_ask(DenseBook *self, PyObject *unused) { return side_top(&self->ask, 0); }
static PyObject *DenseBook_best_bid_size(DenseBook *self, PyObject *unused) {
    return side_top_size(&self->bid, 1);
}
static PyObject *DenseBook_best_ask_size(DenseBook *self, PyObject *unused) {
    return side_top_size(&self->ask, 0);
}

static PyObject *side_size_at(Side_ *s, PyObject *price) {
    int slot = slot_of(price);
    if (slot == -2) return NULL;
    if (slot >= 0) return PyLong_FromLongLong(slot_size(s, slot));
    PyObject *v = s->ovf ? PyDict_GetItemWithError(s->ovf, price) : NULL;
    if (!v) return PyErr_Occurred() ? NULL : PyLong_FromLong(0);
    Py_INCREF(v);
    return v;
}

static PyObject *DenseBook_size_at(DenseBook *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "size_at(side, price) takes 2 arguments");
        return NULL;
    }
    return side_size_at(side_arg(args[0]) ? &self->bid : &self->ask, args[1]);
}

static int both_on_grid(DenseBook *self) { return self->bid.top_src == 1 && self->ask.top_src == 1; }

static PyObject *DenseBook_mid(DenseBook *self, PyObject *unused) {
    if (!self->bid.top_src || !self->ask.top_src) Py_RETURN_NONE;
    if (both_on_grid(self)) return PyLong_FromLongLong(((long long)self->bid.best + self->ask.best) * STEP / 2);
    PyObject *b = side_top(&self->bid, 1), *a = side_top(&self->ask, 0), *sum = NULL, *two = NULL, *r = NULL;
    if (b && a && (sum = PyNumber_Add(b, a)) && (two = PyLong_FromLong(2))) r = PyNumber_FloorDivide(sum, two);
    Py_XDECREF(b);
    Py_XDECREF(a);
    Py_XDECREF(sum);
    Py_XDECREF(two);
    return r;
}

static PyObject *DenseBook_spread(DenseBook *self, PyObject *unused) {
    if (!self->bid.top_src || !self->ask.top_src) Py_RETURN_NONE;
    if (both_on_grid(self)) return PyLong_FromLongLong(((long long)self->ask.best - self->bid.best) * STEP);
    PyObject *b = side_top(&self->bid, 1), *a = side_top(&self->ask, 0), *r = NULL;
    if (b && a) r = PyNumber_Subtract(a, b);
    Py_XDECREF(b);
    Py_XDECREF(a);
    return r;
}

static PyObject *DenseBook_is_crossed(DenseBook *self, PyObject *unused) {
    if (!self->bid.top_src || !self->ask.top_src) Py_RETURN_FALSE;
    if (both_on_grid(self)) return PyBool_FromLong(self->bid.best >= self->ask.best);
    PyObject *b = side_top(&self->bid, 1), *a = side_top(&self->ask, 0), *r = NULL;
    if (b && a) {
        int ge = PyObject_RichCompareBool(b, a, Py_GE);
        if (ge >= 0) r = PyBool_FromLong(ge);
    }
    Py_XDECREF(b);
    Py_XDECREF(a);
    return r;
}

/* an int argument as int64; 0 with no error when it does not fit (the caller takes the generic path) */
static int arg_i64(PyObject *o, long long *out) {
    if (!PyLong_Check(o)) return 0;
    int ovf;
    *out = PyLong_AsLongLongAndOverflow(o, &ovf);
    return !ovf;
}

/* Sum of a side's grid sizes over slots lo..hi (inclusive), walking set bits only. */
static i128 grid_sum(const Side_ *s, int lo, int hi) {
    i128 total = 0;
    for (int i = find_ge(s, lo); i >= 0 && i <= hi; i = find_ge(s, i + 1)) total += slot_size(s, i);
    return total;
}

/* depth by the Python book's definition on any input: levels p >= top - n*tick (bids) or
 * p < top + n*tick + 1 (asks), summed as Python ints. */
static PyObject *depth_generic(DenseBook *self, int is_bid, PyObject *n_ticks) {
    Side_ *s = is_bid ? &self->bid : &self->ask;
    PyObject *top = side_top(s, is_bid), *span = NULL, *bound = NULL, *levels = NULL, *total = NULL;
    PyObject *one = NULL;
    if (!top || !(span = PyNumber_Multiply(n_ticks, self->tick_size))) goto done;
    if (is_bid) {
        bound = PyNumber_Subtract(top, span);
    } else {
        PyObject *c = PyNumber_Add(top, span);
        if (c && (one = PyLong_FromLong(1))) bound = PyNumber_Add(c, one);
        Py_XDECREF(c);
    }
    if (!bound || !(levels = side_levels_asc(s)) || !(total = PyLong_FromLong(0))) goto done;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(levels); k++) {
        PyObject *lv = PyList_GET_ITEM(levels, k);
        int in = PyObject_RichCompareBool(PyTuple_GET_ITEM(lv, 0), bound, is_bid ? Py_GE : Py_LT);
        if (in < 0) {
            Py_CLEAR(total);
            goto done;
        }
        if (in) {
            PyObject *t = PyNumber_Add(total, PyTuple_GET_ITEM(lv, 1));
            Py_SETREF(total, t);
            if (!total) goto done;
        }
    }
done:
    Py_XDECREF(top);
    Py_XDECREF(span);
    Py_XDECREF(bound);
    Py_XDECREF(levels);
    Py_XDECREF(one);
    return total;
}

static PyObject *DenseBook_depth(DenseBook *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "depth(side, n_ticks) takes 2 arguments");
        return NULL;
    }
    int is_bid = side_arg(args[0]);
    Side_ *s = is_bid ? &self->bid : &self->ask;
    if (s->top_src == 0) return PyLong_FromLong(0);
    long long n, tick;
    if (s->ovf_px || !arg_i64(args[1], &n) || !arg_i64(self->tick_size, &tick))
        return depth_generic(self, is_bid, args[1]);
    i128 top = (i128)s->best * STEP, span = (i128)n * tick;
    if (is_bid) {
        i128 floor = top - span; /* slots at or above floor, up to the touch */
        if (floor > top) return PyLong_FromLong(0);
        int lo = floor <= 0 ? 0 : (int)((floor + STEP - 1) / STEP);
        return PsLong_FromI128(grid_sum(s, lo, s->best));
    }
    i128 ceiling = top + span; /* slots at or below ceiling, from the touch */
    if (ceiling < top) return PyLong_FromLong(0);
    int hi = ceiling >= (i128)(NSLOTS - 1) * STEP ? NSLOTS - 1 : (int)(ceiling / STEP);
    return PsLong_FromI128(grid_sum(s, s->best, hi));
}

/* grid_depth on a side with no overflow, in machine ints */
static i128 grid_depth_fast(const Side_ *s, int is_bid, long long p, long long n, long long tick) {
    i128 step = is_bid ? -(i128)tick : (i128)tick, px = p, total = 0;
    for (long long k = 0; k == 0 || k <= n; k++, px += step) {
        if (px >= 0 && px <= (i128)(NSLOTS - 1) * STEP) {
            if (px % STEP == 0) total += slot_size(s, (int)(px / STEP));
        } else if ((px < 0 && step <= 0) || (px > 0 && step >= 0)) {
            break; /* walked off the grid for good: no level out there */
        }
    }
    return total;
}

/* grid_depth: size at `price` plus at the n_ticks grid prices behind it, one tick apart away from
 * the spread (BookState.grid_depth). */
static PyObject *DenseBook_grid_depth(DenseBook *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "grid_depth(side, price, n_ticks) takes 3 arguments");
        return NULL;
    }
    int is_bid = side_arg(args[0]);
    Side_ *s = is_bid ? &self->bid : &self->ask;
    PyObject *price = args[1];
    long long p, n, tick;
    if (slot_of(price) == -2) return NULL;
    if (!s->ovf_px && arg_i64(price, &p) && arg_i64(args[2], &n) && arg_i64(self->tick_size, &tick))
        return PsLong_FromI128(grid_depth_fast(s, is_bid, p, n, tick));
    /* generic: the Python loop itself, with Python ints */
    PyObject *step = is_bid ? PyNumber_Negative(self->tick_size) : (Py_INCREF(self->tick_size), self->tick_size);
    PyObject *total = step ? side_size_at(s, price) : NULL, *px = NULL, *range = NULL, *it = NULL, *item;
    if (!total) goto fail;
    Py_INCREF(price);
    px = price;
    range = PyObject_CallFunctionObjArgs((PyObject *)&PyRange_Type, args[2], NULL);
    if (!range || !(it = PyObject_GetIter(range))) goto fail;
    while ((item = PyIter_Next(it))) {
        Py_DECREF(item);
        PyObject *np = PyNumber_Add(px, step);
        Py_SETREF(px, np);
        if (!px) goto fail;
        PyObject *v = side_size_at(s, px);
        if (!v) goto fail;
        PyObject *t = PyNumber_Add(total, v);
        Py_DECREF(v);
        Py_SETREF(total, t);
        if (!total) goto fail;
    }
    if (PyErr_Occurred()) goto fail;
    Py_XDECREF(step);
    Py_XDECREF(px);
    Py_XDECREF(range);
    Py_XDECREF(it);
    return total;
fail:
    Py_XDECREF(step);
    Py_XDECREF(total);
    Py_XDECREF(px);
    Py_XDECREF(range);
    Py_XDECREF(it);
    return NULL;
}

static PyObject *DenseBook_levels(DenseBook *self, PyObject *side) {
    int is_bid = side_arg(side);
    Side_ *s = is_bid ? &self->bid : &self->ask;
    if (!s->ovf_px) {
        /* the grid alone: walk set bits best-first */
        PyObject *out = PyList_New(0);
        if (!out) return NULL;
        for (int i = s->best; i >= 0; i = is_bid ? find_le(s, i - 1) : find_ge(s, i + 1)) {
            PyObject *p = PyLong_FromLongLong((long long)i * STEP);
            PyObject *z = PyLong_FromLongLong(slot_size(s, i));
            PyObject *lv = p && z ? make_level(p, z) : NULL;
            Py_XDECREF(p);
            Py_XDECREF(z);
            if (!lv || PyList_Append(out, lv) < 0) {
                Py_XDECREF(lv);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(lv);
        }
        return out;
    }
    PyObject *out = side_levels_asc(s);
    if (out && is_bid && PyList_Reverse(out) < 0) Py_CLEAR(out);
    return out;
}

static PyObject *DenseBook_level_prices(DenseBook *self, PyObject *side) {
    PyObject *levels = DenseBook_levels(self, side);
    if (!levels) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(levels);
    PyObject *out = PyList_New(n);
    if (out) {
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *p = PyTuple_GET_ITEM(PyList_GET_ITEM(levels, k), 0);
            Py_INCREF(p);
            PyList_SET_ITEM(out, k, p);
        }
    }
    Py_DECREF(levels);
    return out;
}

static PyObject *DenseBook_is_stale(DenseBook *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "is_stale(now_ms, max_age_ms) takes 2 arguments");
        return NULL;
    }
    long long now, age;
    if (self->last_ts_fits && arg_i64(args[0], &now) && arg_i64(args[1], &age))
        return PyBool_FromLong((i128)now - self->last_ts_c > (i128)age);
    PyObject *d = PyNumber_Subtract(args[0], self->last_ts);
    if (!d) return NULL;
    PyObject *r = PyObject_RichCompare(d, args[1], Py_GT);
    Py_DECREF(d);
    return r;
}

/* Member slots, not getters: CPython 3.11 specializes reads of object members (LOAD_ATTR_SLOT) and
 * not of getset descriptors, about 10 ns against 45 ns a read, and signals read the touch constantly. */
static PyMemberDef DenseBook_members[] = {
    {"top_bid", T_OBJECT_EX, offsetof(DenseBook, bid.top), READONLY, "best bid, None while no bid"},
    {"top_ask", T_OBJECT_EX, offsetof(DenseBook, ask.top), READONLY, "best ask, None while no ask"},
    {"trusted", T_OBJECT_EX, offsetof(DenseBook, trusted_obj), READONLY, "a snapshot came and no gap since"},
    {"token_id", T_OBJECT_EX, offsetof(DenseBook, token_id), READONLY, NULL},
    {"tick_size", T_OBJECT_EX, offsetof(DenseBook, tick_size), READONLY, NULL},
    {"hash", T_OBJECT_EX, offsetof(DenseBook, hash), READONLY, NULL},
    {"last_ts_ms", T_OBJECT_EX, offsetof(DenseBook, last_ts), READONLY, NULL},
    {"snapshot_ts_ms", T_OBJECT_EX, offsetof(DenseBook, snap_ts), READONLY, NULL},
    {NULL},
};

static PyMethodDef DenseBook_methods[] = {
    {"apply_snapshot", (PyCFunction)DenseBook_apply_snapshot, METH_O, NULL},
    {"apply_level", (PyCFunction)(void (*)(void))DenseBook_apply_level, METH_FASTCALL, NULL},
    {"set_tick_size", (PyCFunction)DenseBook_set_tick_size, METH_O, NULL},
    {"invalidate", (PyCFunction)DenseBook_invalidate, METH_NOARGS, NULL},
    {"best_bid", (PyCFunction)DenseBook_best_bid, METH_NOARGS, NULL},
    {"best_ask", (PyCFunction)DenseBook_best_ask, METH_NOARGS, NULL},
    {"best_bid_size", (PyCFunction)DenseBook_best_bid_size, METH_NOARGS, NULL},
    {"best_ask_size", (PyCFunction)DenseBook_best_ask_size, METH_NOARGS, NULL},
    {"size_at", (PyCFunction)(void (*)(void))DenseBook_size_at, METH_FASTCALL, NULL},
    {"mid", (PyCFunction)DenseBook_mid, METH_NOARGS, NULL},
    {"spread", (PyCFunction)DenseBook_spread, METH_NOARGS, NULL},
    {"is_crossed", (PyCFunction)DenseBook_is_crossed, METH_NOARGS, NULL},
    {"depth", (PyCFunction)(void (*)(void))DenseBook_depth, METH_FASTCALL, NULL},
    {"grid_depth", (PyCFunction)(void (*)(void))DenseBook_grid_depth, METH_FASTCALL, NULL},
    {"levels", (PyCFunction)DenseBook_levels, METH_O, NULL},
    {"level_prices", (PyCFunction)DenseBook_level_prices, METH_O, NULL},
    {"is_stale", (PyCFunction)(void (*)(void))DenseBook_is_stale, METH_FASTCALL, NULL},
    {NULL},
};

static PyTypeObject DenseBookType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core._book.DenseBook",
    .tp_doc = "Dense L2 book on the 0.0001 grid; the same interface and answers as core.book.BookState.",
    .tp_basicsize = sizeof(DenseBook),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = DenseBook_new,
    .tp_dealloc = (destructor)DenseBook_dealloc,
    .tp_methods = DenseBook_methods,
    .tp_members = DenseBook_members,
};


/* -- the C API (src/core/_book_api.h) ------------------------------------------------------------ */
/* A Python int result as int64: OverflowError when it does not fit (the API speaks int64 only). */
static int as_i64(PyObject *v, int64_t *out) {
    if (!v) return -1;
    long long x = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static int i128_out(i128 v, int64_t *out) {
    if (v > INT64_MAX || v < INT64_MIN) {
        PyErr_SetString(PyExc_OverflowError, "book value beyond int64");
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int api_trusted(PyObject *book) { return ((DenseBook *)book)->trusted; }

static int api_tick_size(PyObject *book, int64_t *out) {
    PyObject *t = ((DenseBook *)book)->tick_size;
    Py_INCREF(t);
    return as_i64(t, out);
}

static int api_top(PyObject *book, int is_bid, int64_t *price) {
    DenseBook *b = (DenseBook *)book;
    Side_ *s = is_bid ? &b->bid : &b->ask;
    if (s->top_src == 0) return 0;
    if (s->top_src == 1) {
        *price = (int64_t)s->best * STEP;
        return 1;
    }
    Py_INCREF(s->top);
    return as_i64(s->top, price) < 0 ? -1 : 1;
}

static int api_top_size(PyObject *book, int is_bid, int64_t *size) {
    DenseBook *b = (DenseBook *)book;
    Side_ *s = is_bid ? &b->bid : &b->ask;
    if (s->top_src == 0) {
        *size = 0;
        return 0;
    }
    if (s->top_src == 1) {
        *size = slot_size(s, s->best);
        return 0;
    }
    return as_i64(side_top_size(s, is_bid), size);
}

static int api_size_at(PyObject *book, int is_bid, int64_t price, int64_t *size) {
    DenseBook *b = (DenseBook *)book;
    Side_ *s = is_bid ? &b->bid : &b->ask;
    if (price >= 0 && price <= (int64_t)(NSLOTS - 1) * STEP && price % STEP == 0) {
        *size = slot_size(s, (int)(price / STEP)); /* a grid price is never in the overflow */
        return 0;
    }
    PyObject *p = PyLong_FromLongLong(price);
    if (!p) return -1;
    PyObject *v = side_size_at(s, p);
    Py_DECREF(p);
    return as_i64(v, size);
}

static int api_grid_depth(PyObject *book, int is_bid, int64_t price, int64_t n_ticks, int64_t *out) {
    DenseBook *b = (DenseBook *)book;
    Side_ *s = is_bid ? &b->bid : &b->ask;
    long long tick;
    if (!s->ovf_px && arg_i64(b->tick_size, &tick)) return i128_out(grid_depth_fast(s, is_bid, price, n_ticks, tick), out);
    PyObject *args[3] = {is_bid ? BUY : Py_None, PyLong_FromLongLong(price), PyLong_FromLongLong(n_ticks)};
    PyObject *v = args[1] && args[2] ? DenseBook_grid_depth(b, args, 3) : NULL;
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    return as_i64(v, out);
}

static int api_is_crossed(PyObject *book) {
    DenseBook *b = (DenseBook *)book;
    if (!b->bid.top_src || !b->ask.top_src) return 0;
    if (both_on_grid(b)) return b->bid.best >= b->ask.best;
    PyObject *v = DenseBook_is_crossed(b, NULL);
    if (!v) return -1;
    int r = v == Py_True;
    Py_DECREF(v);
    return r;
}

static PyObject *api_apply_level(PyObject *book, PyObject *side, PyObject *price, PyObject *size, PyObject *ts) {
    PyObject *args[4] = {side, price, size, ts};
    return DenseBook_apply_level((DenseBook *)book, args, 4);
}

static int api_last_ts(PyObject *book, int64_t *out) {
    DenseBook *b = (DenseBook *)book;
    if (!b->last_ts_fits) return 0;
    *out = b->last_ts_c;
    return 1;
}

static int api_level_from(PyObject *book, int is_bid, int64_t from, int64_t *price, int64_t *size) {
    DenseBook *b = (DenseBook *)book;
    Side_ *s = is_bid ? &b->bid : &b->ask;
    if (s->ovf_px) return 2;
    const int64_t top = (int64_t)(NSLOTS - 1) * STEP;
    int i;
    if (is_bid) {
        if (from < 0) return 0;
        i = find_le(s, (int)((from > top ? top : from) / STEP));
    } else {
        if (from > top) return 0;
        i = find_ge(s, from <= 0 ? 0 : (int)((from + STEP - 1) / STEP));
    }
    if (i < 0) return 0;
    *price = (int64_t)i * STEP;
    *size = slot_size(s, i);
    return 1;
}

static PsBookApi book_api = {
    &DenseBookType, api_trusted, api_tick_size, api_top, api_top_size, api_size_at, api_grid_depth, api_is_crossed,
    NULL, NULL, /* buy, sell: set at import */
    api_apply_level, api_last_ts, api_level_from,
};


/* (a, b, c) as ints: Py_BuildValue's format parsing cost more than the rest of a one-delta call */
static PyObject *counts3(Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) {
    PyObject *t = PyTuple_New(3);
    if (!t) return NULL;
    Py_ssize_t v[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        PyObject *x = PyLong_FromSsize_t(v[k]);
        if (!x) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, x);
    }
    return t;
}

/* apply_changes(books, changes, ts_ms, start) -> (stop, applied, dropped): core.book.apply_changes, the
 * engine's per-delta loop in one call. Each change from `start` on goes to books[change.token_id]: a
 * trusted book takes the level (apply_level), an untrusted one drops it. Stops at the first change whose
 * token has no book in `books`, returning its index so the caller can make the book (or skip the change)
 * and call again; `stop` is len(changes) when all were taken. Books of another class are asked through
 * their own methods, so the answers are the Python loop's whatever the books are. */
static PyObject *apply_changes(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "apply_changes(books: dict, changes, ts_ms, start) takes 4 arguments");
        return NULL;
    }
    PyObject *books = args[0], *ts = args[2];
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    PyObject *seq = PySequence_Fast(args[1], "changes must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i = start < 0 ? 0 : start, applied = 0, dropped = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (; i < n; i++) {
        PyObject *d = items[i], *book;
        int has = PsDelta_Lookup(d, books, &book);
        if (has < 0) goto fail;
        if (!has) break;
        PyObject *call[4] = {PyTuple_GET_ITEM(d, 1), PyTuple_GET_ITEM(d, 2), PyTuple_GET_ITEM(d, 3), ts};
        PyObject *r;
        if (Py_IS_TYPE(book, &DenseBookType)) {
            DenseBook *b = (DenseBook *)book;
            if (!b->trusted) {
                dropped++;
                continue;
            }
            r = DenseBook_apply_level(b, call, 4);
        } else {
            PyObject *trusted = PyObject_GetAttrString(book, "trusted");
            int t = trusted ? PyObject_IsTrue(trusted) : -1;
            Py_XDECREF(trusted);
            if (t < 0) goto fail;
            if (!t) {
                dropped++;
                continue;
            }
            r = PyObject_CallMethod(book, "apply_level", "OOOO", call[0], call[1], call[2], ts);
        }
        if (!r) goto fail;
        Py_DECREF(r);
        applied++;
    }
    Py_DECREF(seq);
    return counts3(i < n ? i : n, applied, dropped);
fail:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef book_functions[] = {
    {"apply_changes", (PyCFunction)(void (*)(void))apply_changes, METH_FASTCALL, NULL},
    {NULL},
};

static struct PyModuleDef bookmodule = {PyModuleDef_HEAD_INIT, "polysnipe.core._book", NULL, -1, book_functions};

PyMODINIT_FUNC PyInit__book(void) {
    PyObject *events = PyImport_ImportModule("polysnipe.core.events");
    PyObject *bisect = PyImport_ImportModule("bisect");
    if (!events || !bisect) goto fail;
    PyObject *side = PyObject_GetAttrString(events, "Side");
    if (!side) goto fail;
    BUY = PyObject_GetAttrString(side, "BUY");
    SELL = PyObject_GetAttrString(side, "SELL");
    Py_DECREF(side);
    LevelType = (PyTypeObject *)PyObject_GetAttrString(events, "Level");
    insort_fn = PyObject_GetAttrString(bisect, "insort");
    bisect_left_fn = PyObject_GetAttrString(bisect, "bisect_left");
    if (!BUY || !SELL || !LevelType || !insort_fn || !bisect_left_fn) goto fail;
    if (!PyType_Check(LevelType) || !PyType_IsSubtype(LevelType, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "polysnipe.core.events.Level must be a NamedTuple");
        goto fail;
    }
    s_bids = PyUnicode_InternFromString("bids");
    s_asks = PyUnicode_InternFromString("asks");
    s_tick_size = PyUnicode_InternFromString("tick_size");
    s_ts_ms = PyUnicode_InternFromString("ts_ms");
    s_hash = PyUnicode_InternFromString("hash");
    s_price = PyUnicode_InternFromString("price");
    s_size = PyUnicode_InternFromString("size");
    if (PyType_Ready(&DenseBookType) < 0) goto fail;
    Py_DECREF(events);
    Py_DECREF(bisect);
    PyObject *m = PyModule_Create(&bookmodule);
    if (!m) return NULL;
    Py_INCREF(&DenseBookType);
    if (PyModule_AddObject(m, "DenseBook", (PyObject *)&DenseBookType) < 0) {
        Py_DECREF(&DenseBookType);
        Py_DECREF(m);
        return NULL;
    }
    book_api.buy = BUY;
    book_api.sell = SELL;
    PyObject *capsule = PyCapsule_New(&book_api, PS_BOOK_CAPSULE, NULL);
    if (!capsule || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    return m;
fail:
    Py_XDECREF(events);
    Py_XDECREF(bisect);
    return NULL;
}

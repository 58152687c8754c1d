/* polysnipe.core.signals._vacuum: the Liquidity Vacuum module's per-event state and common path, compiled.
 *
 * Theory of operation. liquidity_vacuum.py is the reference, and its docstring explains the signal; this
 * file is the same state machine, step for step and in the same order, so the two read side by side:
 * VacuumKernel.on_event is LiquidityVacuum.on_event's reference path, with _TokenTrack and _SideState as
 * the C structs Track and SideSt, and on_price_change, on_book, side_step and reanchor as the loop,
 * _on_book, _side and _reanchor. Trades, snapshots and tick-size changes are booked here too, so the state
 * has one owner.
 *
 * Python sees only what fires. When a side shows a vacuum, the kernel calls the module's `_opportunity`
 * with the numbers _fire reads (the anchor, the episode, the traded size, the zone's depth now); that is
 * the very code the reference path runs for the cooldown, the buy book's checks, the fee, and the
 * Opportunity with its reason text, so those stay byte-identical by construction. When it returns an
 * Opportunity the kernel re-anchors both views of the market, as _fire does. The call is synchronous
 * because its outcome (a re-anchor or not) changes how the rest of the same event is read. Creating a
 * token's track asks ctx.markets in Python, as the reference does, once per token with a market.
 *
 * Books are read through src/core/_book_api.h only: a DenseBook through its C API, any other Book (the
 * Python BookState) through its Python attributes, so the kernel answers as the reference on either.
 *
 * Numbers. Book answers are int64 (the API's contract) and so are event times and the parameters (the
 * module keeps the reference path when a parameter does not fit). A delta's price is read exactly into
 * 128 bits, and saturated beyond, where no zone bound reaches, so comparing it with a bound is exact;
 * bounds, retreats and the traded sizes are 128-bit too, so nothing wraps where Python's ints would not
 * (the traded sums check their additions all the same). The one float comparison,
 * `unexplained >= drop_fraction * depth`, is made exactly as Python compares an int with a float.
 * Prices, sizes and times must be ints (TypeError otherwise), as the compiled book requires.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_book_api.h"

typedef __int128 i128;
typedef unsigned __int128 u128;
#define I128_MAX ((i128)(((u128)1 << 127) - 1))
#define I128_MIN (-I128_MAX - 1)

/* -- what polysnipe.core provides, fetched once at import --------------------------------------- */
static PsBookApi *Api;
static PyTypeObject *PriceChangeType, *LastTradeType, *BookSnapshotType, *TickSizeChangeType;
static int64_t One; /* core.units.ONE: a complement's price is One - price */
static PyObject *EmptyStr; /* the reference's "no view" token */
static PyObject *s_books, *s_book, *s_get, *s_markets, *s_get_by_token, *s_complement;

/* -- numbers ------------------------------------------------------------------------------------- */
/* A Python int into 128 bits: exact when it fits; otherwise saturated (saturate=1) or OverflowError. */
static int i128_of(PyObject *v, i128 *out, int saturate) {
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected an int, got %.200s", Py_TYPE(v)->tp_name);
        return -1;
    }
    int ovf;
    long long x = PyLong_AsLongLongAndOverflow(v, &ovf);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (!ovf) {
        *out = x;
        return 0;
    }
    unsigned char buf[16];
    if (_PyLong_AsByteArray((PyLongObject *)v, buf, sizeof buf, 1, 1) == 0) {
        u128 u = 0;
        for (int i = 15; i >= 0; i--) u = (u << 8) | buf[i];
        *out = (i128)u;
        return 0;
    }
    if (!saturate || !PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
    PyErr_Clear();
    *out = ovf > 0 ? I128_MAX : I128_MIN;
    return 0;
}

static int i64_of(PyObject *v, int64_t *out) {
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected an int, got %.200s", Py_TYPE(v)->tp_name);
        return -1;
    }
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static PyObject *long_of(i128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return PyLong_FromLongLong((long long)v);
    unsigned char buf[16];
    u128 u = (u128)v;
    for (int i = 0; i < 16; i++) buf[i] = (unsigned char)(u >> (8 * i));
    return _PyLong_FromByteArray(buf, sizeof buf, 1, 1);
}

/* Python's a // step: rounds toward minus infinity; step 0 raises as Python does */
static int floordiv(i128 a, i128 step, i128 *out) {
    if (!step) {
        PyErr_SetString(PyExc_ZeroDivisionError, "integer division or modulo by zero");
        return -1;
    }
    i128 q = a / step;
    if (a % step && ((a < 0) != (step < 0))) q--;
    *out = q;
    return 0;
}

/* `u >= f` as Python compares an int with a float: exactly. For an integer u that is u >= ceil(f). */
static int ge_float(i128 u, double f) {
    if (isnan(f)) return 0;
    if (f >= 0x1p126) return u >= I128_MAX; /* ceil(f) may not fit; no reachable u is that large */
    if (f <= -0x1p126) return 1;
    return u >= (i128)ceil(f);
}

/* token equality as Python's ==, decided without a call for the str tokens every event carries */
static inline int tok_eq(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(a);
        int kind = PyUnicode_KIND(a);
        return n == PyUnicode_GET_LENGTH(b) && kind == PyUnicode_KIND(b) &&
               memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * (size_t)kind) == 0;
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* -- state: _SideState and _TokenTrack --------------------------------------------------------- */
typedef struct {
    /* anchor: touch price (0 = none), depth in its zone, opposite touch (0 = none) */
    int64_t px, depth, opp;
    /* the previous view, which becomes the anchor when a slow retreat is followed by a fast one */
    int64_t last_px, last_depth, last_opp;
    /* episode: event time of the first retreat (0 = none) and updates that pulled further back */
    int64_t start_ts, pulls;
    /* size taken from this side by trades since the anchor was measured */
    i128 traded;
} SideSt;

static void anchor(SideSt *st, int64_t px, int64_t depth, int64_t opp) {
    st->px = st->last_px = px;
    st->depth = st->last_depth = depth;
    st->opp = st->last_opp = opp;
    st->start_ts = st->pulls = 0;
    st->traded = 0;
}

typedef struct {
    PyObject_HEAD
    PyObject *market;
    PyObject *complement;
    /* the book's tick when the anchors were last set (the zones are measured in it) */
    int64_t tick;
    SideSt bids, asks;
} Track;

static void track_clear(Track *t) { t->bids.px = t->asks.px = 0; }

static void Track_dealloc(Track *t) {
    Py_XDECREF(t->market);
    Py_XDECREF(t->complement);
    PyObject_Free(t);
}

/* Not exposed: the kernel's dict of tracks holds them, and nothing else ever sees one. */
static PyTypeObject TrackType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core.signals._vacuum._Track",
    .tp_basicsize = sizeof(Track),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Track_dealloc,
};

typedef struct {
    PyObject_HEAD
    PyObject *tracks; /* token -> Track */
    PyObject *fire;   /* the module's _opportunity */
    int64_t n_ticks, window_ms, min_depth, min_pulls;
    double drop;
    /* drop_fraction given as the int 1 (the validator's only int): Python then compares ints */
    int drop_is_int;
} Kernel;

/* -- the reference's helpers ---------------------------------------------------------------------- */
/* `tracks.get(token) or self._track(token, ctx)`: 1 with *out (the tracks dict keeps it: a track is
 * never removed), 0 when the token has no market, -1 on error. */
static int get_track(Kernel *k, PyObject *token, PyObject *ctx, Track **out) {
    PyObject *t = PyDict_GetItemWithError(k->tracks, token);
    if (t) {
        *out = (Track *)t;
        return 1;
    }
    if (PyErr_Occurred()) return -1;
    PyObject *markets = PyObject_GetAttr(ctx, s_markets);
    if (!markets) return -1;
    PyObject *market = PyObject_CallMethodOneArg(markets, s_get_by_token, token);
    Py_DECREF(markets);
    if (!market) return -1;
    if (market == Py_None) {
        Py_DECREF(market);
        return 0;
    }
    PyObject *complement = PyObject_CallMethodOneArg(market, s_complement, token);
    if (!complement) {
        Py_DECREF(market);
        return -1;
    }
    Track *tr = PyObject_New(Track, &TrackType);
    if (!tr) {
        Py_DECREF(market);
        Py_DECREF(complement);
        return -1;
    }
    tr->market = market;
    tr->complement = complement;
    tr->tick = 0;
    memset(&tr->bids, 0, sizeof tr->bids);
    memset(&tr->asks, 0, sizeof tr->asks);
    int r = PyDict_SetItem(k->tracks, token, (PyObject *)tr);
    Py_DECREF(tr);
    if (r < 0) return -1;
    *out = tr;
    return 1;
}

/* `book.top_bid or 0` / `book.top_ask or 0` */
static int touch_of(PyObject *book, int is_bid, int64_t *out) {
    int r = PsBook_Top(Api, book, is_bid, out);
    if (r < 0) return -1;
    if (!r) *out = 0;
    return 0;
}

/* 1 when `book` is a trusted book (not None), 0 when not, -1 on error */
static int is_trusted(PyObject *book) { return book == Py_None ? 0 : PsBook_Trusted(Api, book); }

/* _reanchor */
static int reanchor(Kernel *k, Track *tr, PyObject *book) {
    int trusted = is_trusted(book);
    if (trusted <= 0) {
        if (!trusted) track_clear(tr);
        return trusted;
    }
    int64_t bid, ask, tick, bid_depth = 0, ask_depth = 0;
    if (touch_of(book, 1, &bid) < 0 || touch_of(book, 0, &ask) < 0 || PsBook_TickSize(Api, book, &tick) < 0)
        return -1;
    if (bid && PsBook_GridDepth(Api, book, 1, bid, k->n_ticks, &bid_depth) < 0) return -1;
    if (ask && PsBook_GridDepth(Api, book, 0, ask, k->n_ticks, &ask_depth) < 0) return -1;
    tr->tick = tick;
    anchor(&tr->bids, bid, bid_depth, ask);
    anchor(&tr->asks, ask, ask_depth, bid);
    return 0;
}

/* _side: advance one side's anchor and episode; 1 when the side shows a vacuum now, 0 when not, -1 on
 * error. `step` is one tick away from the spread (negative for bids), so a retreat is a positive count. */
static int side_step(Kernel *k, SideSt *st, PyObject *book, int is_bid, int64_t touch, int64_t opp, i128 step,
                     int64_t ts, int dirty) {
    int64_t n = k->n_ticks;
    int64_t px = st->px;
    i128 retreat = 0;
    if (px && touch && st->start_ts && (i128)ts - st->start_ts > k->window_ms) {
        /* too slow to be a vacuum; what stood just before this update is the anchor now */
        px = st->px = st->last_px;
        st->depth = st->last_depth;
        st->opp = st->last_opp;
        st->start_ts = 0;
        st->traded = 0;
    }
    int holding = !px || !touch || opp != st->opp;
    if (!holding) {
        if (floordiv((i128)touch - px, step, &retreat) < 0) return -1;
        holding = retreat <= 0;
    }
    if (holding) {
        /* first look, holding or improving, or both sides moved (a requote): the new normal */
        int64_t depth = 0;
        if (!dirty && touch == px)
            depth = st->depth; /* no level of this side changed */
        else if (touch && PsBook_GridDepth(Api, book, is_bid, touch, n, &depth) < 0)
            return -1;
        st->px = st->last_px = touch;
        st->depth = st->last_depth = depth;
        st->opp = st->last_opp = opp;
        st->start_ts = st->pulls = 0;
        st->traded = 0;
        return 0;
    }
    int64_t now_depth;
    if (PsBook_GridDepth(Api, book, is_bid, px, n, &now_depth) < 0) return -1;
    i128 gone = (i128)st->depth - now_depth;
    if (gone < 0) {
        /* depth was added to the zone while its touch retreated: measure from the most that stood */
        st->depth = now_depth;
        gone = 0;
    } else if (gone <= st->traded) {
        /* takers took what left: the book as it is now is the new normal */
        int64_t depth;
        if (PsBook_GridDepth(Api, book, is_bid, touch, n, &depth) < 0) return -1;
        anchor(st, touch, depth, opp);
        return 0;
    }
    if (!st->start_ts) {
        st->start_ts = ts;
        st->pulls = 1;
    } else {
        i128 before;
        if (floordiv((i128)st->last_px - px, step, &before) < 0) return -1;
        if (retreat > before) st->pulls++;
    }
    st->last_px = touch;
    st->last_opp = opp;
    if (PsBook_GridDepth(Api, book, is_bid, touch, n, &st->last_depth) < 0) return -1;
    if (retreat <= n || st->pulls < k->min_pulls) return 0;
    i128 unexplained;
    if (__builtin_sub_overflow(gone, st->traded, &unexplained)) {
        PyErr_SetString(PyExc_OverflowError, "traded size beyond 128 bits");
        return -1;
    }
    if (unexplained < k->min_depth) return 0;
    return k->drop_is_int ? unexplained >= st->depth : ge_float(unexplained, k->drop * (double)st->depth);
}

/* _fire: hand the vacuum to the module's _opportunity; when it makes one, re-anchor both views. */
static int fire(Kernel *k, Track *tr, PyObject *token, PyObject *book, int is_bid, PyObject *ts_obj, PyObject *ctx,
                PyObject *now_ms, PyObject *out) {
    SideSt *st = is_bid ? &tr->bids : &tr->asks;
    int64_t now_depth;
    if (PsBook_GridDepth(Api, book, is_bid, st->px, k->n_ticks, &now_depth) < 0) return -1;
    PyObject *nums[7] = {
        PyLong_FromLongLong(st->px),    PyLong_FromLongLong(st->depth),    PyLong_FromLongLong(st->opp),
        PyLong_FromLongLong(st->pulls), PyLong_FromLongLong(st->start_ts), long_of(st->traded),
        PyLong_FromLongLong(now_depth),
    };
    PyObject *opp = NULL;
    if (nums[0] && nums[1] && nums[2] && nums[3] && nums[4] && nums[5] && nums[6]) {
        PyObject *args[15] = {
            tr->market, tr->complement, token,   book,    is_bid ? Api->buy : Api->sell,
            nums[0],    nums[1],        nums[2], nums[3], nums[4],
            nums[5],    nums[6],        ts_obj,  ctx,     now_ms,
        };
        opp = PyObject_Vectorcall(k->fire, args, 15, NULL);
    }
    for (int i = 0; i < 7; i++) Py_XDECREF(nums[i]);
    if (!opp) return -1;
    if (opp == Py_None) {
        Py_DECREF(opp);
        return 0;
    }
    /* the vacuum is spent: both views of the market start over from the book as it is now */
    int r = reanchor(k, tr, book);
    if (r == 0) {
        PyObject *mirror = PyDict_GetItemWithError(k->tracks, tr->complement);
        if (mirror) {
            PyObject *mirror_book = PyObject_CallMethodOneArg(ctx, s_book, tr->complement);
            r = mirror_book ? reanchor(k, (Track *)mirror, mirror_book) : -1;
            Py_XDECREF(mirror_book);
        } else if (PyErr_Occurred()) {
            r = -1;
        }
    }
    if (r == 0) r = PyList_Append(out, opp);
    Py_DECREF(opp);
    return r;
}

/* _on_book */
static int on_book(Kernel *k, Track *tr, PyObject *token, PyObject *book, int bid_dirty, int ask_dirty,
                   PyObject *ts_obj, int64_t ts, PyObject *ctx, PyObject *now_ms, PyObject *out) {
    int64_t bid, ask, tick;
    if (touch_of(book, 1, &bid) < 0 || touch_of(book, 0, &ask) < 0 || PsBook_TickSize(Api, book, &tick) < 0)
        return -1;
    tr->tick = tick;
    /* a side none of whose levels changed only needs a look when the opposite touch moved */
    if (bid_dirty || ask != tr->bids.opp) {
        int r = side_step(k, &tr->bids, book, 1, bid, ask, -(i128)tick, ts, bid_dirty);
        if (r < 0 || (r && fire(k, tr, token, book, 1, ts_obj, ctx, now_ms, out) < 0)) return -1;
    }
    if (ask_dirty || bid != tr->asks.opp) {
        int r = side_step(k, &tr->asks, book, 0, ask, bid, (i128)tick, ts, ask_dirty);
        if (r < 0 || (r && fire(k, tr, token, book, 0, ts_obj, ctx, now_ms, out) < 0)) return -1;
    }
    return 0;
}

/* `books.get(token)`, a new reference (None when absent) */
static PyObject *books_get(PyObject *books, PyObject *token) {
    if (PyDict_CheckExact(books)) {
        PyObject *b = PyDict_GetItemWithError(books, token);
        if (!b) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        Py_INCREF(b);
        return b;
    }
    return PyObject_CallMethodOneArg(books, s_get, token);
}

/* The view the loop reads the deltas on: a track, its book, its token and the mirror token. The
 * reference's "no view" is view_token == mirror == "", kept literally (a delta of token "" is then
 * skipped, as there). Strong references: the module's callback may run any Python. */
typedef struct {
    Track *track;
    PyObject *book, *token, *mirror;
} View;

static void view_drop(View *v) {
    Py_CLEAR(v->track);
    Py_CLEAR(v->book);
    Py_INCREF(EmptyStr);
    Py_INCREF(EmptyStr);
    Py_SETREF(v->token, EmptyStr);
    Py_SETREF(v->mirror, EmptyStr);
}

/* the price-change branch of LiquidityVacuum.on_event */
static int on_price_change(Kernel *k, PyObject *event, PyObject *ctx, PyObject *now_ms, PyObject *out) {
    PyObject *ts_obj = PyTuple_GET_ITEM(event, 0);
    int64_t ts;
    if (i64_of(ts_obj, &ts) < 0) return -1;
    PyObject *changes = PySequence_Fast(PyTuple_GET_ITEM(event, 2), "PriceChange.changes must be a sequence");
    if (!changes) return -1;
    PyObject *books = PyObject_GetAttr(ctx, s_books);
    if (!books) {
        Py_DECREF(changes);
        return -1;
    }
    PyObject *buy = Api->buy;
    View v = {NULL, NULL, EmptyStr, EmptyStr};
    Py_INCREF(EmptyStr);
    Py_INCREF(EmptyStr);
    int bid_dirty = 0, ask_dirty = 0, has_bid = 0, has_ask = 0;
    /* The view's zones, read once (they only move when the view is processed, after the loop), as the
     * prices at or beyond which a change lands in a zone; a side with no anchor takes every change. On
     * the mirror a bid at q is this token's ask at One - q, and an ask its bid. */
    i128 bid_from = 0, ask_to = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(changes);
    PyObject **items = PySequence_Fast_ITEMS(changes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ch = items[i];
        if (!PyTuple_Check(ch) || PyTuple_GET_SIZE(ch) < 3) {
            PyErr_SetString(PyExc_TypeError, "PriceChange.changes must hold BookDeltas");
            goto error;
        }
        PyObject *token = PyTuple_GET_ITEM(ch, 0);
        int is_bid = PyTuple_GET_ITEM(ch, 1) == buy;
        i128 price;
        int eq = tok_eq(token, v.token);
        if (eq < 0) goto error;
        if (eq) {
            /* a dirty side stays dirty: its price cannot matter any more */
            if (is_bid ? !bid_dirty : !ask_dirty) {
                if (i128_of(PyTuple_GET_ITEM(ch, 2), &price, 1) < 0) goto error;
                if (is_bid)
                    bid_dirty = !has_bid || price >= bid_from;
                else
                    ask_dirty = !has_ask || price <= ask_to;
            }
            continue;
        }
        eq = tok_eq(token, v.mirror);
        if (eq < 0) goto error;
        if (eq) {
            if (is_bid ? !ask_dirty : !bid_dirty) {
                if (i128_of(PyTuple_GET_ITEM(ch, 2), &price, 1) < 0) goto error;
                if (is_bid)
                    ask_dirty = !has_ask || price >= One - ask_to;
                else
                    bid_dirty = !has_bid || price <= One - bid_from;
            }
            continue;
        }
        if (v.track && (bid_dirty || ask_dirty) &&
            on_book(k, v.track, v.token, v.book, bid_dirty, ask_dirty, ts_obj, ts, ctx, now_ms, out) < 0)
            goto error;
        view_drop(&v);
        Track *tr;
        int r = get_track(k, token, ctx, &tr);
        if (r < 0) goto error;
        if (!r) continue;
        PyObject *book = books_get(books, token);
        if (!book) goto error;
        int trusted = is_trusted(book);
        if (trusted <= 0) {
            Py_DECREF(book);
            if (trusted < 0) goto error;
            track_clear(tr);
            continue;
        }
        Py_INCREF(tr);
        Py_INCREF(token);
        Py_INCREF(tr->complement);
        v.track = tr;
        v.book = book;
        Py_SETREF(v.token, token);
        Py_SETREF(v.mirror, tr->complement);
        i128 reach = (i128)k->n_ticks * tr->tick;
        has_bid = tr->bids.px != 0;
        has_ask = tr->asks.px != 0;
        bid_from = tr->bids.px - reach;
        ask_to = tr->asks.px + reach;
        if (i128_of(PyTuple_GET_ITEM(ch, 2), &price, 1) < 0) goto error;
        bid_dirty = is_bid && (!has_bid || price >= bid_from);
        ask_dirty = !is_bid && (!has_ask || price <= ask_to);
    }
    if (v.track && (bid_dirty || ask_dirty) &&
        on_book(k, v.track, v.token, v.book, bid_dirty, ask_dirty, ts_obj, ts, ctx, now_ms, out) < 0)
        goto error;
    view_drop(&v);
    Py_DECREF(v.token);
    Py_DECREF(v.mirror);
    Py_DECREF(books);
    Py_DECREF(changes);
    return 0;
error:
    view_drop(&v);
    Py_DECREF(v.token);
    Py_DECREF(v.mirror);
    Py_DECREF(books);
    Py_DECREF(changes);
    return -1;
}

/* _on_trade: a taker BUY eats this token's asks, which mirror the complement's bids; both views record
 * it (an over-explained drop can only suppress an opportunity, never invent one). */
static int add_traded(SideSt *st, i128 size) {
    if (__builtin_add_overflow(st->traded, size, &st->traded)) {
        PyErr_SetString(PyExc_OverflowError, "traded size beyond 128 bits");
        return -1;
    }
    return 0;
}

static int on_trade(Kernel *k, PyObject *event, PyObject *ctx) {
    Track *tr, *other;
    int r = get_track(k, PyTuple_GET_ITEM(event, 1), ctx, &tr);
    if (r <= 0) return r;
    i128 size;
    int is_buy = PyTuple_GET_ITEM(event, 5) == Api->buy;
    if (i128_of(PyTuple_GET_ITEM(event, 4), &size, 0) < 0 || add_traded(is_buy ? &tr->asks : &tr->bids, size) < 0)
        return -1;
    r = get_track(k, tr->complement, ctx, &other);
    if (r <= 0) return r;
    return add_traded(is_buy ? &other->bids : &other->asks, size);
}

static int on_snapshot(Kernel *k, PyObject *event, PyObject *ctx) {
    PyObject *token = PyTuple_GET_ITEM(event, 1);
    Track *tr;
    int r = get_track(k, token, ctx, &tr);
    if (r <= 0) return r;
    PyObject *book = PyObject_CallMethodOneArg(ctx, s_book, token);
    if (!book) return -1;
    r = reanchor(k, tr, book);
    Py_DECREF(book);
    return r;
}

/* -- the type ------------------------------------------------------------------------------------- */
static PyObject *Kernel_on_event(Kernel *k, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "on_event(event, ctx, now_ms)");
        return NULL;
    }
    PyObject *event = args[0], *ctx = args[1];
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    PyTypeObject *kind = Py_TYPE(event);
    int r = 0;
    if (kind == PriceChangeType) {
        r = on_price_change(k, event, ctx, args[2], out);
    } else if (kind == LastTradeType) {
        r = on_trade(k, event, ctx);
    } else if (kind == BookSnapshotType) {
        r = on_snapshot(k, event, ctx);
    } else if (kind == TickSizeChangeType) {
        /* "within n ticks" changed meaning: the anchored zones are not comparable any more */
        PyObject *t = PyDict_GetItemWithError(k->tracks, PyTuple_GET_ITEM(event, 1));
        if (t)
            track_clear((Track *)t);
        else if (PyErr_Occurred())
            r = -1;
    }
    if (r < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *side_state(const SideSt *st) {
    PyObject *traded = long_of(st->traded);
    if (!traded) return NULL;
    return Py_BuildValue("(LLLLLLLLN)", (long long)st->px, (long long)st->depth, (long long)st->opp,
                         (long long)st->last_px, (long long)st->last_depth, (long long)st->last_opp,
                         (long long)st->start_ts, (long long)st->pulls, traded);
}

/* A token's state as plain numbers, or None: what the differential test compares with the reference's
 * _TokenTrack after every event, so a divergence shows before it changes an opportunity. */
static PyObject *Kernel_state(Kernel *k, PyObject *token) {
    PyObject *t = PyDict_GetItemWithError(k->tracks, token);
    if (!t) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    Track *tr = (Track *)t;
    return Py_BuildValue("(OLNN)", tr->complement, (long long)tr->tick, side_state(&tr->bids), side_state(&tr->asks));
}

static int Kernel_init(Kernel *k, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n_ticks", "window_ms", "drop_fraction", "min_depth_micro", "min_pulls", "fire", NULL};
    PyObject *n_ticks, *window_ms, *drop, *min_depth, *min_pulls, *fire_fn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO:VacuumKernel", kwlist, &n_ticks, &window_ms, &drop,
                                     &min_depth, &min_pulls, &fire_fn))
        return -1;
    if (i64_of(n_ticks, &k->n_ticks) < 0 || i64_of(window_ms, &k->window_ms) < 0 ||
        i64_of(min_depth, &k->min_depth) < 0 || i64_of(min_pulls, &k->min_pulls) < 0)
        return -1;
    if (PyFloat_CheckExact(drop)) {
        k->drop = PyFloat_AS_DOUBLE(drop);
        k->drop_is_int = 0;
    } else if (PyLong_Check(drop) && PyLong_AsLong(drop) == 1) {
        k->drop = 1.0;
        k->drop_is_int = 1;
    } else {
        PyErr_Clear(); /* a huge int's OverflowError: not 1 either */
        PyErr_SetString(PyExc_TypeError, "drop_fraction must be a float or the int 1");
        return -1;
    }
    if (!PyCallable_Check(fire_fn)) {
        PyErr_SetString(PyExc_TypeError, "fire must be callable");
        return -1;
    }
    PyObject *tracks = PyDict_New();
    if (!tracks) return -1;
    Py_INCREF(fire_fn);
    Py_XSETREF(k->fire, fire_fn);
    Py_XSETREF(k->tracks, tracks);
    return 0;
}

static int Kernel_traverse(Kernel *k, visitproc visit, void *arg) {
    Py_VISIT(k->tracks);
    Py_VISIT(k->fire);
    return 0;
}

static int Kernel_clear(Kernel *k) {
    Py_CLEAR(k->tracks);
    Py_CLEAR(k->fire);
    return 0;
}

static void Kernel_dealloc(Kernel *k) {
    PyObject_GC_UnTrack(k);
    Kernel_clear(k);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static PyMethodDef Kernel_methods[] = {
    {"on_event", (PyCFunction)(void (*)(void))Kernel_on_event, METH_FASTCALL,
     "LiquidityVacuum.on_event on the kernel's state; vacuums go through `fire`."},
    {"state", (PyCFunction)Kernel_state, METH_O, "A token's state as numbers, or None (for tests)."},
    {NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core.signals._vacuum.VacuumKernel",
    .tp_doc = "Liquidity Vacuum's per-token state and its common path (liquidity_vacuum.py is the reference).",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_traverse = (traverseproc)Kernel_traverse,
    .tp_clear = (inquiry)Kernel_clear,
    .tp_methods = Kernel_methods,
};

/* -- module --------------------------------------------------------------------------------------- */
static PyTypeObject *type_from(PyObject *mod, const char *name) {
    PyObject *t = PyObject_GetAttrString(mod, name);
    if (t && !PyType_Check(t)) {
        PyErr_Format(PyExc_TypeError, "polysnipe.core.events.%s is not a type", name);
        Py_CLEAR(t);
    }
    return (PyTypeObject *)t;
}

static struct PyModuleDef vacuum_module = {
    PyModuleDef_HEAD_INIT, "polysnipe.core.signals._vacuum",
    "Liquidity Vacuum's compiled kernel (src/core/signals/_vacuum.c).", -1, NULL,
};

PyMODINIT_FUNC PyInit__vacuum(void) {
    Api = PsBook_Import();
    if (!Api) return NULL;
    PyObject *events = PyImport_ImportModule("polysnipe.core.events");
    if (!events) return NULL;
    PriceChangeType = type_from(events, "PriceChange");
    LastTradeType = type_from(events, "LastTrade");
    BookSnapshotType = type_from(events, "BookSnapshot");
    TickSizeChangeType = type_from(events, "TickSizeChange");
    Py_DECREF(events);
    if (!PriceChangeType || !LastTradeType || !BookSnapshotType || !TickSizeChangeType) return NULL;
    PyObject *units = PyImport_ImportModule("polysnipe.core.units");
    if (!units) return NULL;
    PyObject *one = PyObject_GetAttrString(units, "ONE");
    Py_DECREF(units);
    if (!one) return NULL;
    int bad = i64_of(one, &One);
    Py_DECREF(one);
    if (bad) return NULL;
    EmptyStr = PyUnicode_FromString("");
    s_books = PyUnicode_InternFromString("books");
    s_book = PyUnicode_InternFromString("book");
    s_get = PyUnicode_InternFromString("get");
    s_markets = PyUnicode_InternFromString("markets");
    s_get_by_token = PyUnicode_InternFromString("get_by_token");
    s_complement = PyUnicode_InternFromString("complement");
    if (!EmptyStr || !s_books || !s_book || !s_get || !s_markets || !s_get_by_token || !s_complement) return NULL;
    if (PyType_Ready(&TrackType) < 0 || PyType_Ready(&KernelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&vacuum_module);
    if (!m) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "VacuumKernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* polysnipe.core.signals._hunter: the per-event state of the Spread Hunter in C (issue 15).
 *
 * Theory of operation. spread_hunter.py is the reference and its module docstring the specification;
 * this kernel is the same module's common path, compiled. A Kernel owns the per-market and per-token
 * state (MarketState, Token, Basket objects: the cached touch and the windows it gives each token, the
 * fair-value estimator's decayed sums, the sweep prints, the running sums of neg-risk baskets) and runs
 * on_event for every PriceChange, BookSnapshot and LastTrade: the cached-touch filter, reading the view
 * in YES terms, the estimator (`_observe`), the judgement of cheap asks and passive posts, the basket
 * leg sums, the binary pair check and the trade prints, reading books only through core/_book_api.h (a
 * DenseBook through its C API, any other Book through its Python methods).
 *
 * Python keeps what is rare and what makes text: the kernel hands it candidates, calling the hunter's
 * own methods on these objects (their attributes have the reference's names), so every Opportunity,
 * reason and flag comes from the same Python code whichever path found it:
 *   _kernel_token(token_id, ctx)   a token seen for the first time (and every time for unknown ones)
 *   _cheap_ask(token, ...)         an ask below fair by more than the minimum edge: fee, sweep, emit
 *   _passive_bid(token, ...)       a spread wide enough after a sweep: the passive post's rules, emit
 *   _emit_basket(basket, ...)      every leg tradable and the asks alone leave room: the exact rule
 *   _flag_pair(market, ...)        a binary pair's asks below 1, newly: the data-quality flag
 * In the replay of a generated half hour those are about 2% of the events.
 *
 * Same answers: floats are C doubles as Python's are, every expression keeps the reference's order
 * (no FMA contraction: setup.py passes -ffp-contract=off), `x ** y` is libm pow and math.sqrt is sqrt.
 * Python's int / int is correctly rounded for any size, which a double division is only when both
 * operands are exact doubles (|x| <= 2**53): otherwise it goes through Python ints (rare). Ints that a
 * quote can produce are held in 128 bits, so no sum or product wraps. Event times and book values must
 * fit int64 (every boundary range-checks them; OverflowError otherwise), and SpreadHunter only builds a
 * kernel for parameters within the ranges the kernel computes exactly (spread_hunter._kernel_serves).
 * Where the reference would raise (a float division by zero, a ceil of NaN) the kernel raises the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>

#include "_book_api.h"

typedef __int128 i128;

#define ONE 1000000
#define UNSEEN (-1) /* the reference's _UNSEEN: no book reports it, so the first look is a change */
/* the windows' infinite bounds; every finite bound is an int64 or 1 - an int64, far inside these */
#define BOUND_INF ((i128)1 << 100)
#define EXACT_DOUBLE ((i128)1 << 53) /* ints up to this are exact doubles */

static PsBookApi *api;
static PyTypeObject *PriceChangeType, *BookSnapshotType, *LastTradeType;
static PyObject *math_ceil, *empty_tuple;
static PyObject *s_books, *s_get, *s_token_id, *s_side, *s_price, *s_ts_ms, *s_changes, *s_condition_id,
    *s_token_ids;

/* -- objects ------------------------------------------------------------------------------------ */
typedef struct HMarket HMarket;

typedef struct {
    PyObject_HEAD
    PyObject *event_id, *markets, *tokens;
    PyObject *fired; /* the asks the basket last fired at, () once the edge closed (reference: fired) */
    Py_ssize_t n, n_valid;
    int64_t total_ask;
    int64_t *asks; /* 0: leg not tradable now */
} Basket;

typedef struct {
    PyObject_HEAD
    HMarket *mkt;
    PyObject *token;
    char is_yes;
    long long fired_ask, sell_px, sell_ts, passive_until;
    /* the cached touch in this token's prices: a bid change at or above bid_from or an ask change at or
     * below ask_to may move it (reference: set_touch); +-BOUND_INF for an empty side */
    i128 bid_from, ask_to;
    PyObject *basket; /* Basket or None: this YES token's neg-risk leg */
    Py_ssize_t leg;
} Token;

struct HMarket {
    PyObject_HEAD
    PyObject *market, *cid;
    Token *yes, *no;
    PyObject *book; /* the book last read while trusted, NULL until then and after a reset */
    /* the cached top of book in YES terms; has_*: the side is not None */
    int has_bid, has_ask;
    i128 bid, ask;
    int64_t bsz, asz;
    long long n;
    double s, w, v, w2, sp, sw; /* decayed sums (reference: _MarketState) */
    int64_t last_ts;
    double last_micro;
};

typedef struct {
    PyObject_HEAD
    PyObject *tokens;    /* token id -> Token, shared with the hunter's rare paths */
    PyObject *mispriced; /* the hunter's set of condition ids showing YES ask + NO ask < 1 */
    PyObject *token_fn, *cheap_fn, *passive_fn, *emit_fn, *flag_fn; /* the hunter's bound methods */
    int ewma, require_sweep, wide_enabled;
    int64_t half_life_ms, min_observations, min_edge_ticks, sweep_window_ms, arb_min_edge;
    double trade_weight, noise_z, passive_spread_mult;
} Kernel;

static PyTypeObject BasketType, TokenType, MarketStateType, KernelType;

/* -- ints and floats as Python computes them ------------------------------------------------------ */
static inline i128 abs128(i128 v) { return v < 0 ? -v : v; }

/* a / b as Python's int / int: exact doubles divide as doubles, anything else through Python ints */
static int true_divide(i128 a, i128 b, double *out) {
    if (b != 0 && abs128(a) <= EXACT_DOUBLE && abs128(b) <= EXACT_DOUBLE) {
        *out = (double)a / (double)b;
        return 0;
    }
    PyObject *pa = PsLong_FromI128(a), *pb = pa ? PsLong_FromI128(b) : NULL;
    PyObject *q = pb ? PyNumber_TrueDivide(pa, pb) : NULL;
    Py_XDECREF(pa);
    Py_XDECREF(pb);
    if (!q) return -1;
    *out = PyFloat_AsDouble(q);
    Py_DECREF(q);
    return 0;
}

/* an int >= a float, exactly as Python compares them */
static inline int int_ge_double(i128 v, double x) {
    if (isnan(x) || x > 1e38) return 0;
    if (x < -1e38) return 1;
    return v >= (i128)ceil(x);
}

static inline int float_div(double a, double b, double *out) {
    if (b == 0.0) {
        PyErr_SetString(PyExc_ZeroDivisionError, "float division by zero");
        return -1;
    }
    *out = a / b;
    return 0;
}

/* int(x) for a float, truncating; what no price can reach (NaN, inf, beyond 2**62) raises as int() does
 * or, for a huge finite value, OverflowError */
static int float_to_int(double x, i128 *out) {
    if (fabs(x) < 4.6e18) {
        *out = (i128)(int64_t)x;
        return 0;
    }
    PyObject *f = PyFloat_FromDouble(x), *i = f ? PyNumber_Long(f) : NULL;
    Py_XDECREF(f);
    if (!i) return -1;
    Py_DECREF(i);
    PyErr_SetString(PyExc_OverflowError, "spread hunter: fair value out of range");
    return -1;
}

/* a % b == 0 for Python ints, b the book's tick: a tick of 0 raises as Python does */
static int divisible(i128 a, int64_t b) {
    if (b > 0) return a % b == 0;
    PyObject *pa = PsLong_FromI128(a), *pb = pa ? PyLong_FromLongLong(b) : NULL;
    PyObject *r = pb ? PyNumber_Remainder(pa, pb) : NULL;
    Py_XDECREF(pa);
    Py_XDECREF(pb);
    if (!r) return -1;
    int zero = PyObject_Not(r);
    Py_DECREF(r);
    return zero;
}

/* base.tradable_price: on the tick and strictly inside (0, 1) */
static int tradable(i128 price, int64_t tick) {
    if (!(0 < price && price < ONE)) return 0;
    return divisible(price, tick);
}

/* A Python int that must fit int64 (event times, trade prices: every boundary range-checks them). */
static int i64_arg(PyObject *v, int64_t *out) {
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

/* -- Basket ----------------------------------------------------------------------------------------- */
static int basket_set_leg(Basket *b, Py_ssize_t i, int64_t ask) {
    if (i < 0 || i >= b->n) {
        PyErr_SetString(PyExc_IndexError, "basket leg out of range");
        return -1;
    }
    int64_t old = b->asks[i];
    if (old) {
        b->n_valid--;
        b->total_ask -= old;
    }
    if (ask) {
        b->n_valid++;
        b->total_ask += ask;
    }
    b->asks[i] = ask;
    return 0;
}

static PyObject *Basket_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"event_id", "markets", NULL};
    PyObject *event_id, *markets;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!", kwlist, &event_id, &PyTuple_Type, &markets)) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(markets);
    PyObject *tokens = PyTuple_New(n);
    if (!tokens) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ids = PyObject_GetAttr(PyTuple_GET_ITEM(markets, i), s_token_ids);
        PyObject *yes = ids ? PySequence_GetItem(ids, 0) : NULL;
        Py_XDECREF(ids);
        if (!yes) {
            Py_DECREF(tokens);
            return NULL;
        }
        PyTuple_SET_ITEM(tokens, i, yes);
    }
    Basket *b = (Basket *)type->tp_alloc(type, 0);
    if (!b) {
        Py_DECREF(tokens);
        return NULL;
    }
    b->asks = PyMem_Calloc(n ? n : 1, sizeof(int64_t));
    if (!b->asks) {
        Py_DECREF(tokens);
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    Py_INCREF(event_id);
    b->event_id = event_id;
    Py_INCREF(markets);
    b->markets = markets;
    b->tokens = tokens;
    Py_INCREF(empty_tuple);
    b->fired = empty_tuple;
    b->n = n;
    return (PyObject *)b;
}

static int Basket_traverse(Basket *b, visitproc visit, void *arg) {
    Py_VISIT(b->event_id);
    Py_VISIT(b->markets);
    Py_VISIT(b->tokens);
    Py_VISIT(b->fired);
    return 0;
}

static int Basket_clear(Basket *b) {
    Py_CLEAR(b->event_id);
    Py_CLEAR(b->markets);
    Py_CLEAR(b->tokens);
    Py_CLEAR(b->fired);
    return 0;
}

static void Basket_dealloc(Basket *b) {
    PyObject_GC_UnTrack(b);
    Basket_clear(b);
    PyMem_Free(b->asks);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyObject *Basket_set_leg(Basket *b, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_leg(i, ask)");
        return NULL;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(args[0], PyExc_IndexError);
    int64_t ask;
    if ((i == -1 && PyErr_Occurred()) || i64_arg(args[1], &ask) < 0 || basket_set_leg(b, i, ask) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Basket_get_asks(Basket *b, void *closure) {
    PyObject *out = PyList_New(b->n);
    for (Py_ssize_t i = 0; out && i < b->n; i++) {
        PyObject *v = PyLong_FromLongLong(b->asks[i]);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

static PyObject *Basket_get_fired(Basket *b, void *closure) {
    Py_INCREF(b->fired);
    return b->fired;
}

static int Basket_set_fired(Basket *b, PyObject *v, void *closure) {
    if (!v || !PyTuple_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "fired must be a tuple");
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(b->fired, v);
    return 0;
}

static PyMemberDef Basket_members[] = {
    {"event_id", T_OBJECT, offsetof(Basket, event_id), READONLY, NULL},
    {"markets", T_OBJECT, offsetof(Basket, markets), READONLY, NULL},
    {"tokens", T_OBJECT, offsetof(Basket, tokens), READONLY, NULL},
    {"n_valid", T_PYSSIZET, offsetof(Basket, n_valid), READONLY, NULL},
    {"total_ask", T_LONGLONG, offsetof(Basket, total_ask), READONLY, NULL},
    {NULL},
};

static PyGetSetDef Basket_getset[] = {
    {"asks", (getter)Basket_get_asks, NULL, NULL, NULL},
    {"fired", (getter)Basket_get_fired, (setter)Basket_set_fired, NULL, NULL},
    {NULL},
};

static PyMethodDef Basket_methods[] = {
    {"set_leg", (PyCFunction)(void (*)(void))Basket_set_leg, METH_FASTCALL, NULL},
    {NULL},
};

static PyTypeObject BasketType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core.signals._hunter.Basket",
    .tp_basicsize = sizeof(Basket),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The YES legs of one complete neg-risk event with the running sum of their asks.",
    .tp_new = Basket_new,
    .tp_dealloc = (destructor)Basket_dealloc,
    .tp_traverse = (traverseproc)Basket_traverse,
    .tp_clear = (inquiry)Basket_clear,
    .tp_members = Basket_members,
    .tp_getset = Basket_getset,
    .tp_methods = Basket_methods,
};

/* -- Token ------------------------------------------------------------------------------------------ */
static int Token_traverse(Token *t, visitproc visit, void *arg) {
    Py_VISIT(t->mkt);
    Py_VISIT(t->token);
    Py_VISIT(t->basket);
    return 0;
}

static int Token_clear(Token *t) {
    Py_CLEAR(t->mkt);
    Py_CLEAR(t->token);
    Py_CLEAR(t->basket);
    return 0;
}

static void Token_dealloc(Token *t) {
    PyObject_GC_UnTrack(t);
    Token_clear(t);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *Token_get_basket(Token *t, void *closure) {
    Py_INCREF(t->basket);
    return t->basket;
}

/* only a Basket or None: the kernel reads it as one */
static int Token_set_basket(Token *t, PyObject *v, void *closure) {
    if (!v || (v != Py_None && !Py_IS_TYPE(v, &BasketType))) {
        PyErr_SetString(PyExc_TypeError, "basket must be a Basket or None");
        return -1;
    }
    Py_INCREF(v);
    Py_SETREF(t->basket, v);
    return 0;
}

static PyObject *Token_get_mkt(Token *t, void *closure) {
    PyObject *m = t->mkt ? (PyObject *)t->mkt : Py_None;
    Py_INCREF(m);
    return m;
}

static PyMemberDef Token_members[] = {
    {"token", T_OBJECT, offsetof(Token, token), READONLY, NULL},
    {"is_yes", T_BOOL, offsetof(Token, is_yes), READONLY, NULL},
    {"fired_ask", T_LONGLONG, offsetof(Token, fired_ask), 0, NULL},
    {"sell_px", T_LONGLONG, offsetof(Token, sell_px), 0, NULL},
    {"sell_ts", T_LONGLONG, offsetof(Token, sell_ts), 0, NULL},
    {"passive_until", T_LONGLONG, offsetof(Token, passive_until), 0, NULL},
    {"leg", T_PYSSIZET, offsetof(Token, leg), 0, NULL},
    {NULL},
};

static PyGetSetDef Token_getset[] = {
    {"mkt", (getter)Token_get_mkt, NULL, NULL, NULL},
    {"basket", (getter)Token_get_basket, (setter)Token_set_basket, NULL, NULL},
    {NULL},
};

static PyTypeObject TokenType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core.signals._hunter.Token",
    .tp_basicsize = sizeof(Token),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What is per token: its sweep, what it last asked for, and its neg-risk basket leg.",
    .tp_dealloc = (destructor)Token_dealloc,
    .tp_traverse = (traverseproc)Token_traverse,
    .tp_clear = (inquiry)Token_clear,
    .tp_members = Token_members,
    .tp_getset = Token_getset,
};

/* -- MarketState ------------------------------------------------------------------------------------ */
static void set_touch(HMarket *ms, int has_bid, i128 bid, int has_ask, i128 ask, int64_t bsz, int64_t asz) {
    ms->has_bid = has_bid;
    ms->bid = bid;
    ms->has_ask = has_ask;
    ms->ask = ask;
    ms->bsz = bsz;
    ms->asz = asz;
    Token *yes = ms->yes, *no = ms->no;
    yes->bid_from = has_bid ? bid : -BOUND_INF;
    yes->ask_to = has_ask ? ask : BOUND_INF;
    /* base.complement_bounds: (1 - ask_to, 1 - bid_from), an infinite bound mirrored to its opposite */
    no->bid_from = has_ask ? ONE - ask : -BOUND_INF;
    no->ask_to = has_bid ? ONE - bid : BOUND_INF;
}

static void forget(HMarket *ms) {
    Py_CLEAR(ms->book);
    set_touch(ms, 1, UNSEEN, 1, UNSEEN, UNSEEN, UNSEEN);
    ms->n = 0;
    ms->s = ms->w = ms->v = ms->w2 = ms->sp = ms->sw = 0.0;
    ms->last_micro = 0.0;
    ms->yes->fired_ask = ms->no->fired_ask = 0;
}

static Token *new_token(HMarket *ms, PyObject *token, int is_yes) {
    Token *t = PyObject_GC_New(Token, &TokenType);
    if (!t) return NULL;
    Py_INCREF(ms);
    t->mkt = ms;
    Py_INCREF(token);
    t->token = token;
    t->is_yes = (char)is_yes;
    t->fired_ask = t->sell_px = t->sell_ts = t->passive_until = 0;
    t->bid_from = -BOUND_INF;
    t->ask_to = BOUND_INF;
    Py_INCREF(Py_None);
    t->basket = Py_None;
    t->leg = 0;
    PyObject_GC_Track(t);
    return t;
}

static PyObject *MarketState_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"market", NULL};
    PyObject *market;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &market)) return NULL;
    PyObject *ids = PyObject_GetAttr(market, s_token_ids);
    PyObject *yes = ids ? PySequence_GetItem(ids, 0) : NULL;
    PyObject *no = yes ? PySequence_GetItem(ids, 1) : NULL;
    PyObject *cid = no ? PyObject_GetAttr(market, s_condition_id) : NULL;
    Py_XDECREF(ids);
    HMarket *ms = cid ? (HMarket *)type->tp_alloc(type, 0) : NULL;
    if (ms) {
        Py_INCREF(market);
        ms->market = market;
        ms->cid = cid;
        cid = NULL;
        ms->yes = new_token(ms, yes, 1);
        ms->no = ms->yes ? new_token(ms, no, 0) : NULL;
        if (!ms->no) Py_CLEAR(ms);
        else forget(ms);
    }
    Py_XDECREF(yes);
    Py_XDECREF(no);
    Py_XDECREF(cid);
    return (PyObject *)ms;
}

static int MarketState_traverse(HMarket *ms, visitproc visit, void *arg) {
    Py_VISIT(ms->market);
    Py_VISIT(ms->cid);
    Py_VISIT(ms->yes);
    Py_VISIT(ms->no);
    Py_VISIT(ms->book);
    return 0;
}

static int MarketState_clear(HMarket *ms) {
    Py_CLEAR(ms->market);
    Py_CLEAR(ms->cid);
    Py_CLEAR(ms->yes);
    Py_CLEAR(ms->no);
    Py_CLEAR(ms->book);
    return 0;
}

static void MarketState_dealloc(HMarket *ms) {
    PyObject_GC_UnTrack(ms);
    MarketState_clear(ms);
    Py_TYPE(ms)->tp_free((PyObject *)ms);
}

/* (bid, ask, bsz, asz) as the reference caches them: None for an empty side, -1 before the first look */
static PyObject *MarketState_get_touch(HMarket *ms, void *closure) {
    PyObject *bid = ms->has_bid ? PsLong_FromI128(ms->bid) : Py_NewRef(Py_None);
    PyObject *ask = ms->has_ask ? PsLong_FromI128(ms->ask) : Py_NewRef(Py_None);
    PyObject *r = bid && ask ? Py_BuildValue("(OOLL)", bid, ask, (long long)ms->bsz, (long long)ms->asz) : NULL;
    Py_XDECREF(bid);
    Py_XDECREF(ask);
    return r;
}

/* read-only views of the state, for the tests that hold the kernel to the reference */
static PyMemberDef MarketState_members[] = {
    {"market", T_OBJECT, offsetof(HMarket, market), READONLY, NULL},
    {"yes", T_OBJECT, offsetof(HMarket, yes), READONLY, NULL},
    {"no", T_OBJECT, offsetof(HMarket, no), READONLY, NULL},
    {"book", T_OBJECT, offsetof(HMarket, book), READONLY, NULL},
    {"n", T_LONGLONG, offsetof(HMarket, n), READONLY, NULL},
    {"s", T_DOUBLE, offsetof(HMarket, s), READONLY, NULL},
    {"w", T_DOUBLE, offsetof(HMarket, w), READONLY, NULL},
    {"v", T_DOUBLE, offsetof(HMarket, v), READONLY, NULL},
    {"w2", T_DOUBLE, offsetof(HMarket, w2), READONLY, NULL},
    {"sp", T_DOUBLE, offsetof(HMarket, sp), READONLY, NULL},
    {"sw", T_DOUBLE, offsetof(HMarket, sw), READONLY, NULL},
    {"last_ts", T_LONGLONG, offsetof(HMarket, last_ts), READONLY, NULL},
    {"last_micro", T_DOUBLE, offsetof(HMarket, last_micro), READONLY, NULL},
    {NULL},
};

static PyGetSetDef MarketState_getset[] = {
    {"touch", (getter)MarketState_get_touch, NULL, NULL, NULL},
    {NULL},
};

static PyTypeObject MarketStateType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core.signals._hunter.MarketState",
    .tp_basicsize = sizeof(HMarket),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The market's view in YES terms: top-of-book cache and the fair-value estimator.",
    .tp_new = MarketState_new,
    .tp_dealloc = (destructor)MarketState_dealloc,
    .tp_traverse = (traverseproc)MarketState_traverse,
    .tp_clear = (inquiry)MarketState_clear,
    .tp_members = MarketState_members,
    .tp_getset = MarketState_getset,
};

/* -- the estimator (reference: SpreadHunter._observe, _MarketState.std_error) --------------------- */
static int observe(Kernel *k, HMarket *ms, double value, int64_t ts, double weight, int has_spread, i128 spread) {
    if (k->ewma) {
        if (ms->n) {
            if (ts > ms->last_ts) {
                double x;
                if (true_divide((i128)ts - ms->last_ts, k->half_life_ms, &x) < 0) return -1;
                /* min(x, 64.0) returns x unless 64.0 is smaller; `base` is not a constant, so the
                 * compiler calls pow as Python does rather than rewriting it */
                volatile double base = 0.5;
                double decay = pow(base, 64.0 < x ? 64.0 : x);
                ms->s *= decay;
                ms->w *= decay;
                ms->v *= decay;
                ms->w2 *= decay * decay;
                ms->sp *= decay;
                ms->sw *= decay;
            }
            double mean;
            if (float_div(ms->s, ms->w, &mean) < 0) return -1;
            double r = value - mean;
            ms->v += weight * r * r;
        }
        ms->s += weight * value;
        ms->w += weight;
        ms->w2 += weight * weight;
        if (has_spread) {
            ms->sp += weight * (double)spread;
            ms->sw += weight;
        }
    } else {
        ms->last_micro = value;
    }
    ms->n += 1;
    if (ts > ms->last_ts) ms->last_ts = ts;
    return 0;
}

static int std_error(HMarket *ms, double *out) {
    if (ms->w <= 0.0) {
        *out = 0.0;
        return 0;
    }
    double x = ms->v / ms->w * ms->w2;
    if (x < 0.0) {
        PyErr_SetString(PyExc_ValueError, "math domain error");
        return -1;
    }
    *out = sqrt(x) / ms->w;
    return 0;
}

/* -- books ------------------------------------------------------------------------------------------ */
/* ctx.books, fetched once per event and only when a book is read */
static PyObject *books_of(PyObject *ctx, PyObject **books) {
    if (!*books) *books = PyObject_GetAttr(ctx, s_books);
    return *books;
}

/* books.get(token): a new reference, None when absent, NULL on error */
static PyObject *book_get(PyObject *books, PyObject *token) {
    if (PyDict_CheckExact(books)) {
        PyObject *b = PyDict_GetItemWithError(books, token);
        if (!b) {
            if (PyErr_Occurred()) return NULL;
            b = Py_None;
        }
        Py_INCREF(b);
        return b;
    }
    return PyObject_CallMethodOneArg(books, s_get, token);
}

/* 1 when `book` (a new reference, may be None) is a trusted book, 0 when not, -1 on error */
static int usable(PyObject *book) {
    if (book == Py_None) return 0;
    return PsBook_Trusted(api, book);
}

/* -- one market (reference: SpreadHunter._on_market and what it calls) ----------------------------- */
typedef struct {
    PyObject *ctx, *books, *now, *out, *ts_obj;
    int64_t ts;
} Call;

static PyObject *ts_of(Call *c) {
    if (!c->ts_obj) c->ts_obj = PyLong_FromLongLong(c->ts);
    return c->ts_obj;
}

static int leg_closed(HMarket *ms) {
    if (ms->yes->basket == Py_None) return 0;
    return basket_set_leg((Basket *)ms->yes->basket, ms->yes->leg, 0);
}

static int update_leg(Kernel *k, HMarket *ms, i128 ask, int64_t tick, Call *c) {
    Basket *b = (Basket *)ms->yes->basket;
    int ok = tradable(ask, tick);
    if (ok < 0 || basket_set_leg(b, ms->yes->leg, ok ? (int64_t)ask : 0) < 0) return -1;
    /* fees only lower what a basket locks: the exact rule (Python) runs when the asks alone leave room */
    if (b->n_valid == b->n && (i128)b->total_ask + k->arb_min_edge < ONE) {
        PyObject *ts = ts_of(c);
        if (!ts) return -1;
        PyObject *args[] = {(PyObject *)b, ts, c->ctx, c->now, c->out};
        PyObject *r = PyObject_Vectorcall(k->emit_fn, args, 5, NULL);
        if (!r) return -1;
        Py_DECREF(r);
    } else if (PyTuple_GET_SIZE(b->fired)) {
        Py_INCREF(empty_tuple); /* the edge closed: the same prices may fire again later */
        Py_SETREF(b->fired, empty_tuple);
    }
    return 0;
}

/* reference: _check_pair */
static int check_pair(Kernel *k, HMarket *ms, Call *c) {
    PyObject *yes_book = book_get(c->books, ms->yes->token);
    if (!yes_book) return -1;
    PyObject *no_book = book_get(c->books, ms->no->token);
    int r = -1, ok;
    int64_t yes_ask = 0, no_ask = 0;
    if (!no_book) goto done;
    if (yes_book == Py_None || no_book == Py_None) {
        r = 0;
        goto done;
    }
    if ((ok = PsBook_Trusted(api, yes_book)) <= 0 || (ok = PsBook_Trusted(api, no_book)) <= 0) {
        r = ok;
        goto done;
    }
    int has_yes = PsBook_Top(api, yes_book, 0, &yes_ask);
    int has_no = has_yes < 0 ? -1 : PsBook_Top(api, no_book, 0, &no_ask);
    if (has_no < 0) goto done;
    if (has_yes && has_no && (i128)yes_ask + no_ask < ONE) {
        int seen = PySet_Contains(k->mispriced, ms->cid);
        if (seen < 0) goto done;
        if (!seen) {
            PyObject *ts = ts_of(c), *ya = PyLong_FromLongLong(yes_ask), *na = PyLong_FromLongLong(no_ask);
            PyObject *res = NULL;
            if (ts && ya && na) {
                PyObject *args[] = {ms->market, ts, ya, na};
                res = PyObject_Vectorcall(k->flag_fn, args, 4, NULL);
            }
            Py_XDECREF(ya);
            Py_XDECREF(na);
            if (!res) goto done;
            Py_DECREF(res);
        }
    } else if (PySet_Discard(k->mispriced, ms->cid) < 0) {
        goto done;
    }
    r = 0;
done:
    Py_DECREF(yes_book);
    Py_XDECREF(no_book);
    return r;
}

/* Call the hunter's _cheap_ask or _passive_bid on a candidate: (st, a, b, fair, required, tick, ts,
 * now_ms, out); the result of _cheap_ask, or 0 for _passive_bid. */
static int candidate(PyObject *fn, Token *st, i128 a, i128 b, i128 fair, PyObject *required, int64_t tick,
                     Call *c) {
    PyObject *pa = PsLong_FromI128(a), *pb = PsLong_FromI128(b), *pf = PsLong_FromI128(fair);
    PyObject *pt = PyLong_FromLongLong(tick), *ts = ts_of(c), *res = NULL;
    if (pa && pb && pf && pt && ts) {
        PyObject *args[] = {(PyObject *)st, pa, pb, pf, required, pt, ts, c->now, c->out};
        res = PyObject_Vectorcall(fn, args, 9, NULL);
    }
    Py_XDECREF(pa);
    Py_XDECREF(pb);
    Py_XDECREF(pf);
    Py_XDECREF(pt);
    if (!res) return -1;
    int truth = PyObject_IsTrue(res);
    Py_DECREF(res);
    return truth;
}

/* required = max(min_edge, ceil(noise_z * std_error)) as a Python int (reference: _on_market) */
static PyObject *required_edge(Kernel *k, HMarket *ms, i128 min_edge) {
    double se;
    if (std_error(ms, &se) < 0) return NULL;
    double x = k->noise_z * se;
    if (isfinite(x) && fabs(x) < 4.6e18) {
        i128 c = (i128)ceil(x);
        return PsLong_FromI128(c > min_edge ? c : min_edge);
    }
    /* math.ceil's own answer: its exception for NaN and inf, a big int otherwise */
    PyObject *f = PyFloat_FromDouble(x), *c = f ? PyObject_CallOneArg(math_ceil, f) : NULL;
    Py_XDECREF(f);
    if (!c) return NULL;
    PyObject *m = PsLong_FromI128(min_edge);
    int gt = m ? PyObject_RichCompareBool(c, m, Py_GT) : -1;
    if (gt < 0) {
        Py_DECREF(c);
        Py_XDECREF(m);
        return NULL;
    }
    if (gt) {
        Py_DECREF(m);
        return c;
    }
    Py_DECREF(c);
    return m;
}

static int on_market(Kernel *k, HMarket *ms, Token *tst, Call *c) {
    if (!books_of(c->ctx, &c->books)) return -1;
    PyObject *book = book_get(c->books, tst->token);
    if (!book) return -1;
    int ok = usable(book);
    if (ok == 0) {
        /* the mirror may still be trusted; it shows the same market */
        tst = tst->is_yes ? ms->no : ms->yes;
        Py_DECREF(book);
        book = book_get(c->books, tst->token);
        if (!book) return -1;
        ok = usable(book);
        if (ok == 0) {
            Py_DECREF(book);
            if (leg_closed(ms) < 0) return -1;
            if (ms->n || ms->book) forget(ms);
            return 0;
        }
    }
    int r = -1;
    if (ok < 0) goto done;
    int has_bid, has_ask;
    i128 bid, ask;
    int64_t bsz, asz, v1 = 0, v2 = 0;
    int h1 = PsBook_Top(api, book, 1, &v1);
    int h2 = h1 < 0 ? -1 : PsBook_Top(api, book, 0, &v2);
    if (h2 < 0) goto done;
    if (tst->is_yes) {
        has_bid = h1, bid = v1, has_ask = h2, ask = v2;
        if (PsBook_TopSize(api, book, 1, &bsz) < 0 || PsBook_TopSize(api, book, 0, &asz) < 0) goto done;
    } else {
        has_bid = h2, bid = has_bid ? ONE - (i128)v2 : 0;
        has_ask = h1, ask = has_ask ? ONE - (i128)v1 : 0;
        if (PsBook_TopSize(api, book, 0, &bsz) < 0 || PsBook_TopSize(api, book, 1, &asz) < 0) goto done;
    }
    int old_has_bid = ms->has_bid, old_has_ask = ms->has_ask;
    i128 old_bid = ms->bid, old_ask = ms->ask;
    int same_ask = has_ask == old_has_ask && (!has_ask || ask == old_ask);
    int same_bid = has_bid == old_has_bid && (!has_bid || bid == old_bid);
    if (same_ask && same_bid && asz == ms->asz && bsz == ms->bsz) {
        r = 0;
        goto done;
    }
    Py_INCREF(book);
    Py_XSETREF(ms->book, book);
    set_touch(ms, has_bid, bid, has_ask, ask, bsz, asz);
    int64_t tick;
    if (PsBook_TickSize(api, book, &tick) < 0) goto done;
    if (!has_ask || (has_bid && bid >= ask)) {
        r = leg_closed(ms);
        goto done;
    }
    if (!same_ask || !same_bid) {
        if (ms->yes->basket != Py_None && update_leg(k, ms, ask, tick, c) < 0) goto done;
        if (check_pair(k, ms, c) < 0) goto done;
    }
    if (!has_bid) {
        r = 0;
        goto done;
    }

    i128 spread = ask - bid;
    double micro;
    if (bid <= ((i128)1 << 62) && bid >= -((i128)1 << 62) && ask <= ((i128)1 << 62) && ask >= -((i128)1 << 62)) {
        if (true_divide(bid * asz + ask * bsz, (i128)bsz + asz, &micro) < 0) goto done;
    } else {
        /* only from book values near the int64 edges: Python ints all the way */
        PyObject *pb = PsLong_FromI128(bid), *pa = PsLong_FromI128(ask);
        PyObject *pbs = PyLong_FromLongLong(bsz), *pas = PyLong_FromLongLong(asz);
        PyObject *t1 = NULL, *t2 = NULL, *num = NULL, *den = NULL, *q = NULL;
        if (pb && pa && pbs && pas && (t1 = PyNumber_Multiply(pb, pas)) && (t2 = PyNumber_Multiply(pa, pbs)) &&
            (num = PyNumber_Add(t1, t2)) && (den = PyNumber_Add(pbs, pas)))
            q = PyNumber_TrueDivide(num, den);
        Py_XDECREF(pb), Py_XDECREF(pa), Py_XDECREF(pbs), Py_XDECREF(pas);
        Py_XDECREF(t1), Py_XDECREF(t2), Py_XDECREF(num), Py_XDECREF(den);
        if (!q) goto done;
        micro = PyFloat_AsDouble(q);
        Py_DECREF(q);
    }
    if (ms->n < k->min_observations || (same_bid && same_ask)) {
        /* only sizes at the touch changed: the microprice moves the fair value, but no quote is new */
        r = observe(k, ms, micro, c->ts, 1.0, 1, spread);
        goto done;
    }
    /* everything is judged on the estimator as it stood before this quote (see the module doc) */
    double prior;
    if (k->ewma) {
        if (float_div(ms->s, ms->w, &prior) < 0) goto done;
    } else {
        prior = ms->last_micro;
    }
    i128 fair_yes, fair_no;
    if (float_to_int(prior, &fair_yes) < 0 || float_to_int(ONE - prior, &fair_no) < 0) goto done;
    i128 min_edge = (i128)k->min_edge_ticks * tick;
    i128 no_ask = ONE - bid;
    int cheap_yes = fair_yes - ask > min_edge;
    int cheap_no = fair_no - no_ask > min_edge;
    int wide = k->wide_enabled && ms->sw > 0.0 && int_ge_double(spread, k->passive_spread_mult * ms->sp / ms->sw);
    int post_yes = wide && !cheap_yes && ask >= fair_yes;
    int post_no = wide && !cheap_no && no_ask >= fair_no;
    PyObject *required = NULL;
    if (cheap_yes || cheap_no || post_yes || post_no) {
        required = k->ewma ? required_edge(k, ms, min_edge) : PsLong_FromI128(min_edge);
        if (!required) goto done;
    }
    if (observe(k, ms, micro, c->ts, 1.0, 1, spread) < 0) goto judged;
    Token *yes = ms->yes, *no = ms->no;
    int kept = cheap_yes ? candidate(k->cheap_fn, yes, ask, asz, fair_yes, required, tick, c) : 0;
    if (kept < 0) goto judged;
    if (!kept) {
        yes->fired_ask = 0;
        if (post_yes && candidate(k->passive_fn, yes, bid, ask, fair_yes, required, tick, c) < 0) goto judged;
    }
    kept = cheap_no ? candidate(k->cheap_fn, no, no_ask, bsz, fair_no, required, tick, c) : 0;
    if (kept < 0) goto judged;
    if (!kept) {
        no->fired_ask = 0;
        if (post_no && candidate(k->passive_fn, no, ONE - ask, no_ask, fair_no, required, tick, c) < 0) goto judged;
    }
    r = 0;
judged:
    Py_XDECREF(required);
done:
    Py_DECREF(book);
    return r;
}

/* -- events ----------------------------------------------------------------------------------------- */
/* tokens.get(token_id) or hunter._kernel_token(token_id, ctx): a new reference to a Token, None for a
 * token no market has, NULL on error */
static PyObject *token_for(Kernel *k, PyObject *token_id, PyObject *ctx) {
    PyObject *t = PyDict_GetItemWithError(k->tokens, token_id);
    if (t) {
        Py_INCREF(t);
    } else {
        if (PyErr_Occurred()) return NULL;
        PyObject *args[] = {token_id, ctx};
        t = PyObject_Vectorcall(k->token_fn, args, 2, NULL);
        if (!t) return NULL;
    }
    if (t != Py_None && !Py_IS_TYPE(t, &TokenType)) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_TypeError, "the kernel's tokens must be Token objects");
        return NULL;
    }
    return t;
}

/* price < bound (less = 1) or price > bound (less = 0), exactly as Python compares an int with the
 * reference's bound (an int, or an infinite float) */
static int beyond(PyObject *price, i128 bound, int less) {
    if (PyLong_CheckExact(price)) {
        int ovf;
        long long p = PyLong_AsLongLongAndOverflow(price, &ovf);
        if (!ovf) return less ? (i128)p < bound : (i128)p > bound;
        if (p == -1 && PyErr_Occurred()) return -1;
    }
    PyObject *b = bound >= BOUND_INF    ? PyFloat_FromDouble(INFINITY)
                  : bound <= -BOUND_INF ? PyFloat_FromDouble(-INFINITY)
                                        : PsLong_FromI128(bound);
    if (!b) return -1;
    int r = PyObject_RichCompareBool(price, b, less ? Py_LT : Py_GT);
    Py_DECREF(b);
    return r;
}

static PyObject *on_price_change(Kernel *k, PyObject *event, PyObject *ctx, PyObject *now) {
    if (PyTuple_GET_SIZE(event) < 3) {
        PyErr_SetString(PyExc_TypeError, "a PriceChange has ts_ms, market and changes");
        return NULL;
    }
    Call c = {ctx, NULL, now, NULL, NULL, 0};
    PyObject *seq = NULL;
    if (i64_arg(PyTuple_GET_ITEM(event, 0), &c.ts) < 0) return NULL;
    c.out = PyList_New(0);
    if (!c.out) return NULL;
    seq = PySequence_Fast(PyTuple_GET_ITEM(event, 2), "PriceChange.changes must be a sequence");
    if (!seq) goto fail;
    HMarket *done = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *buy = api->buy;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ch = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *token_id, *side, *price, *held = NULL;
        if (PyTuple_Check(ch) && PyTuple_GET_SIZE(ch) >= 3) {
            token_id = PyTuple_GET_ITEM(ch, 0);
            side = PyTuple_GET_ITEM(ch, 1);
            price = PyTuple_GET_ITEM(ch, 2);
        } else {
            /* a delta that is not a BookDelta tuple: read it by name as the reference does */
            held = PyTuple_New(3);
            if (!held) goto fail;
            PyTuple_SET_ITEM(held, 0, PyObject_GetAttr(ch, s_token_id));
            PyTuple_SET_ITEM(held, 1, PyObject_GetAttr(ch, s_side));
            PyTuple_SET_ITEM(held, 2, PyObject_GetAttr(ch, s_price));
            if (!PyTuple_GET_ITEM(held, 0) || !PyTuple_GET_ITEM(held, 1) || !PyTuple_GET_ITEM(held, 2)) {
                Py_DECREF(held);
                goto fail;
            }
            token_id = PyTuple_GET_ITEM(held, 0);
            side = PyTuple_GET_ITEM(held, 1);
            price = PyTuple_GET_ITEM(held, 2);
        }
        PyObject *t = token_for(k, token_id, ctx);
        if (!t) {
            Py_XDECREF(held);
            goto fail;
        }
        int err = 0;
        if (t != Py_None) {
            Token *tst = (Token *)t;
            HMarket *ms = tst->mkt;
            if (ms != done) {
                /* A level behind the touch we last saw leaves the top of book as it was: the common
                 * case, decided on the cached touch without reading the book. */
                int skip = 0;
                if (ms->book) {
                    int trusted = PsBook_Trusted(api, ms->book);
                    if (trusted < 0) err = 1;
                    else if (trusted) {
                        skip = side == buy ? beyond(price, tst->bid_from, 1) : beyond(price, tst->ask_to, 0);
                        if (skip < 0) err = 1;
                    }
                }
                if (!err && !skip) {
                    err = on_market(k, ms, tst, &c) < 0;
                    done = ms; /* the market was read after the whole batch: nothing left to see */
                }
            }
        }
        Py_DECREF(t);
        Py_XDECREF(held);
        if (err) goto fail;
    }
    Py_DECREF(seq);
    Py_XDECREF(c.books);
    Py_XDECREF(c.ts_obj);
    return c.out;
fail:
    Py_XDECREF(seq);
    Py_XDECREF(c.books);
    Py_XDECREF(c.ts_obj);
    Py_DECREF(c.out);
    return NULL;
}

static PyObject *on_snapshot(Kernel *k, PyObject *event, PyObject *ctx, PyObject *now) {
    if (PyTuple_GET_SIZE(event) < 2) {
        PyErr_SetString(PyExc_TypeError, "a BookSnapshot has ts_ms and token_id");
        return NULL;
    }
    Call c = {ctx, NULL, now, NULL, NULL, 0};
    c.out = PyList_New(0);
    if (!c.out) return NULL;
    PyObject *t = token_for(k, PyTuple_GET_ITEM(event, 1), ctx);
    int err = !t;
    if (t && t != Py_None)
        err = i64_arg(PyTuple_GET_ITEM(event, 0), &c.ts) < 0 || on_market(k, ((Token *)t)->mkt, (Token *)t, &c) < 0;
    Py_XDECREF(t);
    Py_XDECREF(c.books);
    Py_XDECREF(c.ts_obj);
    if (err) Py_CLEAR(c.out);
    return c.out;
}

/* reference: _on_trade */
static int on_trade(Kernel *k, PyObject *event, PyObject *ctx) {
    if (PyTuple_GET_SIZE(event) < 6) {
        PyErr_SetString(PyExc_TypeError, "a LastTrade has ts_ms, token_id, market, price, size and side");
        return -1;
    }
    PyObject *t = token_for(k, PyTuple_GET_ITEM(event, 1), ctx);
    if (!t) return -1;
    int r = -1;
    if (t == Py_None) {
        r = 0;
        goto done;
    }
    Token *tst = (Token *)t;
    HMarket *ms = tst->mkt;
    int64_t ts, price;
    if (i64_arg(PyTuple_GET_ITEM(event, 0), &ts) < 0 || i64_arg(PyTuple_GET_ITEM(event, 3), &price) < 0) goto done;
    if (k->ewma && k->trade_weight > 0.0 && ms->n) {
        i128 p = tst->is_yes ? (i128)price : ONE - (i128)price;
        if (observe(k, ms, (double)p, ts, k->trade_weight, 0, 0) < 0) goto done;
    }
    /* the seller's side of the print: a taker SELL sold this token at the price; a taker BUY sold the
     * complement at 1 - price (BUY YES at p is SELL NO at 1 - p) */
    Token *seller;
    i128 px;
    if (PyTuple_GET_ITEM(event, 5) == api->sell) {
        seller = tst, px = price;
    } else {
        seller = tst->is_yes ? ms->no : ms->yes, px = ONE - (i128)price;
    }
    /* a sweep prints one trade per level it takes, from the best bid down: keep its highest price */
    if ((i128)ts - seller->sell_ts > k->sweep_window_ms || px > seller->sell_px) seller->sell_px = (long long)px;
    seller->sell_ts = ts;
    r = 0;
done:
    Py_DECREF(t);
    return r;
}

static PyObject *Kernel_on_event(Kernel *k, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "on_event(event, ctx, now_ms)");
        return NULL;
    }
    PyObject *event = args[0];
    PyTypeObject *type = Py_TYPE(event);
    if (type == PriceChangeType) return on_price_change(k, event, args[1], args[2]);
    if (type == BookSnapshotType) return on_snapshot(k, event, args[1], args[2]);
    if (type == LastTradeType && on_trade(k, event, args[1]) < 0) return NULL;
    return PyList_New(0);
}

/* -- Kernel ----------------------------------------------------------------------------------------- */
static PyObject *Kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"hunter", "tokens", "mispriced", "ewma", "half_life_ms", "trade_weight",
                             "min_observations", "min_edge_ticks", "noise_z", "require_sweep",
                             "sweep_window_ms", "passive_enabled", "passive_spread_mult",
                             "arb_min_edge_micro", NULL};
    PyObject *hunter, *tokens, *mispriced;
    int ewma, require_sweep, passive_enabled;
    long long half_life, min_obs, min_edge_ticks, window, arb_min_edge;
    double trade_weight, noise_z, mult;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!$pLdLLdpLpdL", kwlist, &hunter, &PyDict_Type, &tokens,
                                     &PySet_Type, &mispriced, &ewma, &half_life, &trade_weight, &min_obs,
                                     &min_edge_ticks, &noise_z, &require_sweep, &window, &passive_enabled, &mult,
                                     &arb_min_edge))
        return NULL;
    if (half_life <= 0) {
        PyErr_SetString(PyExc_ValueError, "half_life_ms must be positive");
        return NULL;
    }
    Kernel *k = (Kernel *)type->tp_alloc(type, 0);
    if (!k) return NULL;
    Py_INCREF(tokens);
    k->tokens = tokens;
    Py_INCREF(mispriced);
    k->mispriced = mispriced;
    k->token_fn = PyObject_GetAttrString(hunter, "_kernel_token");
    k->cheap_fn = PyObject_GetAttrString(hunter, "_cheap_ask");
    k->passive_fn = PyObject_GetAttrString(hunter, "_passive_bid");
    k->emit_fn = PyObject_GetAttrString(hunter, "_emit_basket");
    k->flag_fn = PyObject_GetAttrString(hunter, "_flag_pair");
    if (!k->token_fn || !k->cheap_fn || !k->passive_fn || !k->emit_fn || !k->flag_fn) {
        Py_DECREF(k);
        return NULL;
    }
    k->ewma = ewma;
    k->require_sweep = require_sweep;
    /* the passive snipe: "ewma" and require_sweep only (reference: `wide`) */
    k->wide_enabled = ewma && passive_enabled && require_sweep;
    k->half_life_ms = half_life;
    k->min_observations = min_obs;
    k->min_edge_ticks = min_edge_ticks;
    k->sweep_window_ms = window;
    k->arb_min_edge = arb_min_edge;
    k->trade_weight = trade_weight;
    k->noise_z = noise_z;
    k->passive_spread_mult = mult;
    return (PyObject *)k;
}

static int Kernel_traverse(Kernel *k, visitproc visit, void *arg) {
    Py_VISIT(k->tokens);
    Py_VISIT(k->mispriced);
    Py_VISIT(k->token_fn);
    Py_VISIT(k->cheap_fn);
    Py_VISIT(k->passive_fn);
    Py_VISIT(k->emit_fn);
    Py_VISIT(k->flag_fn);
    return 0;
}

static int Kernel_clear(Kernel *k) {
    Py_CLEAR(k->tokens);
    Py_CLEAR(k->mispriced);
    Py_CLEAR(k->token_fn);
    Py_CLEAR(k->cheap_fn);
    Py_CLEAR(k->passive_fn);
    Py_CLEAR(k->emit_fn);
    Py_CLEAR(k->flag_fn);
    return 0;
}

static void Kernel_dealloc(Kernel *k) {
    PyObject_GC_UnTrack(k);
    Kernel_clear(k);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static PyMemberDef Kernel_members[] = {
    {"tokens", T_OBJECT, offsetof(Kernel, tokens), READONLY, NULL},
    {NULL},
};

static PyMethodDef Kernel_methods[] = {
    {"on_event", (PyCFunction)(void (*)(void))Kernel_on_event, METH_FASTCALL,
     "SpreadHunter.on_event for the events the kernel serves (PriceChange, BookSnapshot, LastTrade)."},
    {NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.core.signals._hunter.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The Spread Hunter's per-event state and common path (module doc).",
    .tp_new = Kernel_new,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_traverse = (traverseproc)Kernel_traverse,
    .tp_clear = (inquiry)Kernel_clear,
    .tp_members = Kernel_members,
    .tp_methods = Kernel_methods,
};

static struct PyModuleDef huntermodule = {PyModuleDef_HEAD_INIT, "polysnipe.core.signals._hunter", NULL, -1, NULL};

static PyObject *intern(const char *s) { return PyUnicode_InternFromString(s); }

PyMODINIT_FUNC PyInit__hunter(void) {
    api = PsBook_Import();
    if (!api) return NULL;
    PyObject *events = PyImport_ImportModule("polysnipe.core.events");
    PyObject *math = events ? PyImport_ImportModule("math") : NULL;
    if (!math) {
        Py_XDECREF(events);
        return NULL;
    }
    PriceChangeType = (PyTypeObject *)PyObject_GetAttrString(events, "PriceChange");
    BookSnapshotType = (PyTypeObject *)PyObject_GetAttrString(events, "BookSnapshot");
    LastTradeType = (PyTypeObject *)PyObject_GetAttrString(events, "LastTrade");
    math_ceil = PyObject_GetAttrString(math, "ceil");
    Py_DECREF(events);
    Py_DECREF(math);
    if (!PriceChangeType || !BookSnapshotType || !LastTradeType || !math_ceil) return NULL;
    PyTypeObject *tuples[] = {PriceChangeType, BookSnapshotType, LastTradeType};
    for (int i = 0; i < 3; i++) {
        if (!PyType_Check(tuples[i]) || !PyType_IsSubtype(tuples[i], &PyTuple_Type)) {
            PyErr_SetString(PyExc_TypeError, "polysnipe.core.events must define its events as NamedTuples");
            return NULL;
        }
    }
    empty_tuple = PyTuple_New(0);
    s_books = intern("books");
    s_get = intern("get");
    s_token_id = intern("token_id");
    s_side = intern("side");
    s_price = intern("price");
    s_ts_ms = intern("ts_ms");
    s_changes = intern("changes");
    s_condition_id = intern("condition_id");
    s_token_ids = intern("token_ids");
    if (!empty_tuple || !s_books || !s_get || !s_token_id || !s_side || !s_price || !s_ts_ms || !s_changes ||
        !s_condition_id || !s_token_ids)
        return NULL;
    PyTypeObject *types[] = {&BasketType, &TokenType, &MarketStateType, &KernelType};
    const char *names[] = {"Basket", "Token", "MarketState", "Kernel"};
    for (int i = 0; i < 4; i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    PyObject *m = PyModule_Create(&huntermodule);
    if (!m) return NULL;
    for (int i = 0; i < 4; i++) {
        Py_INCREF(types[i]);
        if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}

/* polysnipe.adapters.sim._venue: the simulated venue's per-event path, compiled where it is only upkeep.
 *
 * Theory of operation. The venue (venue.py) applies every replayed event to its own book of the token.
 * Nearly always an event fills nothing, and then a level change is only upkeep: a book update, less
 * what a claim there still hides (a claim: liquidity our fills took that the feed still shows), and the
 * queue moves of the orders resting at that level; a print only explains the claims it reaches and
 * advances the queue it does not get past (see "resting orders' queues"). These entry points do exactly
 * that much in C and hand everything else (every fill: venue reports) to the Python venue, which stays
 * the reference, and match() walks the book for the orders that arrive:
 *
 * - apply_plain(toks, changes, ts_ms, start) walks a price change's deltas in order and applies each
 *   one while it is plain (a known token, and a change that fills no resting order), reading the
 *   token's state (the venue's _Tok) as it stands at that delta; it returns the index of the first
 *   delta that needs the Python venue, so matching runs in Python on books, claims and queues exactly
 *   as the Python loop would have left them (venue._apply_plain, and MatchingEngine._apply_delta for
 *   a token with resting orders, are its reference).
 * - sink(venue, engine, toks, slow) is a market-event sink (MarketEventSink.on_market_event): for an
 *   event before anything falls due at the venue (SimVenue._next_due_ms) with no report pending, a
 *   price change's plain deltas are applied at once, a snapshot of a token without resting orders or
 *   claims (its complement's included) is handed to its book, and a print that fills nothing explains
 *   the claims it reaches and advances the queue at its price, as the Python venue would; whatever is
 *   left goes to `slow(event, start)` with the index of the first delta not applied (0 for any other
 *   event). So a replayed book update costs one C call and no Python frame (SimVenue.apply_event is the
 *   reference).
 * - draws(getrandbits, base, span) is models.FeedLatency.draws' per-event delay, the same draws from the
 *   same RNG calls without a Python frame.
 * - match(book, side, limit, qty, owner, idx, other, replayed_only) is MatchingEngine._plan's walk
 *   (venue._plan_levels, the reference): which replayed size and resting orders an arriving order, or
 *   replayed liquidity crossing a resting one, meets, level by level and in queue order ("matching").
 *   The Python venue turns the plan into fills, fees and reports.
 *
 * Claims are read and written as int64 within +-2**60 (micro-units are far below); a claim with any
 * other value is the Python venue's case, checked before anything changes.
 * State is read from the venue's __slots__ objects directly: a slot's offset comes from its member
 * descriptor (checked to be an object slot of the instance's exact type), so a read is one load, not
 * an attribute lookup through the type's MRO. An object of a type without those slots, or a slot
 * unset, is the Python venue's case. Books are read through core._book's C API (_book_api.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "_book_api.h"

static PsBookApi *Books;
/* core.units.ONE: a price and its complement's add up to it */
#define ONE 1000000LL
static PyObject *PriceChangeType, *LastTradeType, *BookSnapshotType, *s_apply_snapshot;

/* -- slots ------------------------------------------------------------------------------------------ */

/* 1 with *off set when `name` is an object slot of instances of `t`, 0 when it is not (no error). */
static int slot_offset(PyTypeObject *t, const char *name, Py_ssize_t *off) {
    PyObject *d = PyObject_GetAttrString((PyObject *)t, name);
    if (!d) {
        PyErr_Clear();
        return 0;
    }
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && PyType_IsSubtype(t, PyDescr_TYPE(d)) &&
             ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
    if (ok) *off = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    return ok;
}

/* a slot's value, borrowed; NULL when unset */
static inline PyObject *slot(PyObject *o, Py_ssize_t off) { return *(PyObject **)((char *)o + off); }

/* The _Tok type last seen and its slots' offsets (one type in practice: venue._Tok). */
static PyTypeObject *TokType;
static Py_ssize_t o_resting, o_claims, o_book, o_complement, o_bids, o_asks, o_queue;

/* 1 when `tok` is of a type whose slots are known (learning a new type's), 0 when not a slotted _Tok. */
static int tok_known(PyObject *tok) {
    PyTypeObject *t = Py_TYPE(tok);
    if (t == TokType) return 1;
    Py_ssize_t r, c, b, m, bi, as, q;
    if (!slot_offset(t, "resting", &r) || !slot_offset(t, "claims", &c) || !slot_offset(t, "book", &b)) return 0;
    /* -1: the type has no such slot; only the paths that read it then leave the event to Python */
    if (!slot_offset(t, "complement", &m)) m = -1;
    if (!slot_offset(t, "bids", &bi) || !slot_offset(t, "asks", &as) || !slot_offset(t, "queue", &q))
        bi = as = q = -1;
    Py_INCREF(t);
    Py_XSETREF(TokType, t);
    o_resting = r, o_claims = c, o_book = b, o_complement = m, o_bids = bi, o_asks = as, o_queue = q;
    return 1;
}

/* 1 when `tok` has no resting order (resting == 0), 0 when it has or is not a known _Tok, -1 error */
static int idle(PyObject *tok) {
    if (!tok_known(tok)) return 0;
    PyObject *resting = slot(tok, o_resting);
    if (!resting || !PyLong_CheckExact(resting)) return 0;
    int r = PyObject_IsTrue(resting);
    return r < 0 ? -1 : !r;
}

/* the claims dict of one side of `tok` (borrowed), NULL when claims are not the venue's shape */
static PyObject *claims_of(PyObject *tok, int sell) {
    PyObject *claims = slot(tok, o_claims);
    if (!claims || !PyTuple_CheckExact(claims) || PyTuple_GET_SIZE(claims) != 2) return NULL;
    PyObject *mine = PyTuple_GET_ITEM(claims, sell);
    return PyDict_CheckExact(mine) ? mine : NULL;
}

/* -- claims ----------------------------------------------------------------------------------------- */

/* venue._Claim's slots: the last type seen and its offsets, as for _Tok */
static PyTypeObject *ClaimType;
static Py_ssize_t o_shown, o_held, o_printed;

/* bounds inside which the claim arithmetic below cannot overflow; sizes are micro-units, far below */
#define SMALL (1LL << 60)

/* 1 with *out set when `v` is an int within +-SMALL, else 0 (the Python venue's case) */
static int small(PyObject *v, long long *out) {
    if (!v || !PyLong_CheckExact(v)) return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x <= -SMALL || x >= SMALL) return 0;
    *out = x;
    return 1;
}

typedef struct {
    long long shown, held, printed;
} ClaimV;

/* a _Claim's values: 1 read, 0 not a slotted _Claim of small ints */
static int claim_read(PyObject *c, ClaimV *v) {
    PyTypeObject *t = Py_TYPE(c);
    if (t != ClaimType) {
        Py_ssize_t s, h, p;
        if (!slot_offset(t, "shown", &s) || !slot_offset(t, "held", &h) || !slot_offset(t, "printed", &p)) return 0;
        Py_INCREF(t);
        Py_XSETREF(ClaimType, t);
        o_shown = s, o_held = h, o_printed = p;
    }
    return small(slot(c, o_shown), &v->shown) && small(slot(c, o_held), &v->held) &&
           small(slot(c, o_printed), &v->printed);
}

static int set_slot(PyObject *o, Py_ssize_t off, long long x) {
    PyObject *n = PyLong_FromLongLong(x);
    if (!n) return -1;
    PyObject **p = (PyObject **)((char *)o + off);
    Py_XSETREF(*p, n);
    return 0;
}

static int claim_write(PyObject *c, const ClaimV *v) {
    return set_slot(c, o_shown, v->shown) < 0 || set_slot(c, o_held, v->held) < 0 ||
                   set_slot(c, o_printed, v->printed) < 0
               ? -1
               : 0;
}

static inline long long min_ll(long long a, long long b) { return a < b ? a : b; }

/* _Claim.see: the feed's new total at the level */
static void claim_see(ClaimV *c, long long total) {
    long long fall = c->shown - total;
    if (fall > 0) {
        long long known = min_ll(fall, c->printed);
        c->printed -= known;
        c->held = c->held - (fall - known) > 0 ? c->held - (fall - known) : 0;
    }
    c->shown = total;
    long long over = c->held + c->printed - total;
    if (over > 0) {
        long long cut = min_ll(over, c->printed);
        c->printed -= cut;
        c->held -= over - cut;
    }
}

/* 1 when every claim in `claims` (price -> _Claim) is one claim_read takes, else 0 */
static int claims_readable(PyObject *claims) {
    Py_ssize_t pos = 0;
    PyObject *px, *c;
    long long p = 0;
    ClaimV v;
    while (PyDict_Next(claims, &pos, &px, &c))
        if (!small(px, &p) || !claim_read(c, &v)) return 0;
    return 1;
}

/* MatchingEngine._explain on one book's side: a print of `size` at `price` hit it (claims_readable) */
static int claims_explain(PyObject *claims, long long price, long long size, int sell) {
    Py_ssize_t pos = 0;
    PyObject *px, *c;
    long long p = 0;
    ClaimV v;
    while (PyDict_Next(claims, &pos, &px, &c)) {
        small(px, &p);
        claim_read(c, &v);
        long long known;
        if (p == price)
            known = min_ll(size, v.held);
        else if (sell ? p < price : p > price)
            known = v.held; /* through a better level: all of it */
        else
            continue;
        v.held -= known;
        v.printed += known;
        if (claim_write(c, &v) < 0) return -1;
    }
    return 0;
}

/* -- resting orders' queues ------------------------------------------------------------------------- */

/* A token with resting orders is still only upkeep at most deltas and prints: a level change moves the
 * queue positions of the orders resting at that price (QueueModel.on_depth_change) and a print at their
 * price that does not get past the size ahead of them only advances them (on_trade). Both are done here
 * for the venue's two queue models, whose arithmetic is known; anything that can fill an order (a level
 * rising to cross a resting order of the other side, a print reaching or trading through one) is a venue
 * report, and the whole event goes to the Python venue before anything has changed. So the C path checks
 * everything first and then writes, and its answers are MatchingEngine._apply_delta's and _apply_trade's. */

static PyObject *RiskAverseType, *PowerProbType, *s_power;
/* The queue model last seen and its code. The models are frozen (attrs), so the code is the object's
 * for its lifetime, and the reference held keeps its address from being reused by another: an engine's
 * every resting delta asks about the same model, and pays for the lookups once. */
static PyObject *QueueSeen;
static int QueueSeenCode;

static int queue_code_of(PyObject *q);

/* A queue model's code here: 0 RiskAverseQueueModel, 1 or 2 PowerProbQueueModel's power; -1 any other
 * (a subclass or another model may move queues its own way: the Python venue's case). */
static int queue_code(PyObject *q) {
    if (!q) return -1;
    if (q != QueueSeen) {
        QueueSeenCode = queue_code_of(q);
        Py_XSETREF(QueueSeen, Py_NewRef(q));
    }
    return QueueSeenCode;
}

static int queue_code_of(PyObject *q) {
    if (!PowerProbType) {
        /* looked up on first use: models imports this module (draws), so it is not complete at our init */
        PyObject *models = PyImport_ImportModule("polysnipe.adapters.sim.models");
        PyObject *ra = models ? PyObject_GetAttrString(models, "RiskAverseQueueModel") : NULL;
        PyObject *pp = ra ? PyObject_GetAttrString(models, "PowerProbQueueModel") : NULL;
        Py_XDECREF(models);
        if (!pp || !PyType_Check(ra) || !PyType_Check(pp)) {
            Py_XDECREF(ra);
            Py_XDECREF(pp);
            PyErr_Clear(); /* no known model: every queue stays the Python venue's */
            return -1;
        }
        RiskAverseType = ra, PowerProbType = pp;
    }
    if (Py_IS_TYPE(q, (PyTypeObject *)RiskAverseType)) return 0;
    if (!Py_IS_TYPE(q, (PyTypeObject *)PowerProbType)) return -1;
    PyObject *p = PyObject_GetAttr(q, s_power);
    if (!p) {
        PyErr_Clear(); /* the Python venue meets the same error, and reports it */
        return -1;
    }
    long long n = 0;
    int ok = small(p, &n);
    Py_DECREF(p);
    return ok && (n == 1 || n == 2) ? (int)n : -1;
}

/* Sizes within which the power-law split below is exact in 128 bits: drop * front**2 < 2**41 * 2**80
 * (2**40 micro-units is a million shares; a larger level is the Python venue's case). */
#define POWER2_LIMIT (1LL << 40)

/* venue._Order's slots and models.QueuePosition's, learned as for _Tok */
static PyTypeObject *OrderType, *PosType;
static Py_ssize_t o_pos, o_owner, o_leaves, o_seq, o_ahead, o_traded;

/* 1 when `order` is of a type whose slots are known (learning a new type's), 0 when not a slotted _Order */
static int order_known(PyObject *order) {
    PyTypeObject *t = Py_TYPE(order);
    if (t == OrderType) return 1;
    Py_ssize_t p, w, l, q;
    if (!slot_offset(t, "pos", &p) || !slot_offset(t, "owner", &w) || !slot_offset(t, "leaves", &l) ||
        !slot_offset(t, "seq", &q))
        return 0;
    Py_INCREF(t);
    Py_XSETREF(OrderType, t);
    o_pos = p, o_owner = w, o_leaves = l, o_seq = q;
    return 1;
}

typedef struct {
    PyObject *pos; /* borrowed */
    long long ahead, traded;
} PosV;

/* A resting order's queue position: 1 read with both values in [0, limit), 0 not the venue's shape. */
static int pos_read(PyObject *order, long long limit, PosV *v) {
    if (!order_known(order)) return 0;
    PyTypeObject *t;
    PyObject *pos = slot(order, o_pos);
    if (!pos) return 0;
    t = Py_TYPE(pos);
    if (t != PosType) {
        Py_ssize_t a, tr;
        if (!slot_offset(t, "ahead", &a) || !slot_offset(t, "traded", &tr)) return 0;
        Py_INCREF(t);
        Py_XSETREF(PosType, t);
        o_ahead = a, o_traded = tr;
    }
    v->pos = pos;
    return small(slot(pos, o_ahead), &v->ahead) && small(slot(pos, o_traded), &v->traded) && v->ahead >= 0 &&
           v->traded >= 0 && v->ahead < limit && v->traded < limit;
}

/* 1 when every order in `orders` (a list) has a position pos_read takes, else 0 */
static int queue_readable(PyObject *orders, long long limit) {
    if (!PyList_CheckExact(orders)) return 0;
    PosV v;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(orders); i++)
        if (!pos_read(PyList_GET_ITEM(orders, i), limit, &v)) return 0;
    return 1;
}

static int pos_write(const PosV *v) {
    return set_slot(v->pos, o_ahead, v->ahead) < 0 || set_slot(v->pos, o_traded, v->traded) < 0 ? -1 : 0;
}

/* What a level change moves: the orders resting there (a new reference; NULL: none), the model's code
 * and the level's displayed size before and after. */
typedef struct {
    PyObject *orders;
    int code;
    long long prev, now;
} Moves;

static __int128 power(long long x, int n) { return n == 1 ? (__int128)x : (__int128)x * x; }

/* QueueModel.on_depth_change of each order in m (queue_readable checked): RiskAverseQueueModel and
 * PowerProbQueueModel, in the same integers. */
static int queue_moves(const Moves *m) {
    PosV v;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(m->orders); i++) {
        if (!pos_read(PyList_GET_ITEM(m->orders, i), SMALL, &v)) return 0; /* checked before: cannot happen */
        long long front = v.ahead;
        if (m->code > 0) {
            long long drop = m->prev - m->now - v.traded;
            if (drop > 0 && front > 0) {
                long long back = m->prev - front > 0 ? m->prev - front : 0;
                __int128 wf = power(front, m->code);
                long long from_front = (long long)((__int128)drop * wf / (wf + power(back, m->code)));
                long long overflow = drop - from_front - back > 0 ? drop - from_front - back : 0;
                front = front - from_front - overflow > 0 ? front - from_front - overflow : 0;
            }
        }
        v.ahead = min_ll(front, m->now);
        v.traded = 0;
        if (pos_write(&v) < 0) return -1;
    }
    return 0;
}

/* The resting orders of `tok` at a level about to show `now`: 1 with *m filled when the change is only
 * queue upkeep (m->orders NULL when no queue moves), 0 when it may fill an order or is not the venue's
 * shape (the Python venue's case, nothing changed), -1 error. MatchingEngine._level_changed is the
 * reference: the orders at the level move, and a rise that makes the book cross a resting order of the
 * other side (_cross_resting) fills it. */
static int moves_ready(PyObject *tok, PyObject *book, int is_bid, PyObject *price, long long now, Moves *m) {
    m->orders = NULL;
    /* a DenseBook: no Python code runs between these checks and the writes */
    if (!Py_IS_TYPE(book, Books->type) || o_queue < 0) return 0;
    int trusted = Books->trusted(book);
    if (trusted < 0) return -1;
    if (!trusted) return 1; /* an untrusted book drops the level: apply_level's change is 0, nothing moves */
    long long px;
    int64_t prev, top;
    if (!small(price, &px) || now < 0) return 0;
    if (Books->size_at(book, is_bid, px, &prev) < 0) {
        PyErr_Clear(); /* a price the book refuses: the Python venue raises what the book says */
        return 0;
    }
    if (prev == now) return 1;
    PyObject *same = slot(tok, is_bid ? o_bids : o_asks), *opp = slot(tok, is_bid ? o_asks : o_bids);
    if (!same || !opp || !PyDict_CheckExact(same) || !PyDict_CheckExact(opp)) return 0;
    if (now > prev && PyDict_GET_SIZE(opp)) {
        /* the touch of this side once the level shows more; a resting order of the other side at or
         * through it would be filled */
        int has = Books->top(book, is_bid, &top);
        if (has < 0) return -1;
        long long best = !has ? px : is_bid ? (top > px ? top : px) : (top < px ? top : px);
        Py_ssize_t i = 0;
        PyObject *k, *orders;
        long long at = 0;
        while (PyDict_Next(opp, &i, &k, &orders))
            if (!small(k, &at) || (is_bid ? at <= best : at >= best)) return 0;
    }
    PyObject *orders = PyDict_GetItemWithError(same, price);
    if (!orders) return PyErr_Occurred() ? -1 : 1;
    int code = queue_code(slot(tok, o_queue));
    long long limit = code == 2 ? POWER2_LIMIT : SMALL;
    if (code < 0 || prev >= limit || now >= limit || !queue_readable(orders, limit)) return 0;
    m->orders = Py_NewRef(orders);
    m->code = code, m->prev = prev, m->now = now;
    return 1;
}

/* held of the claim at `price` in `claims` (claims_readable checked), 0 when none there */
static long long held_at(PyObject *claims, long long price) {
    Py_ssize_t pos = 0;
    PyObject *px, *c;
    long long p = 0;
    ClaimV v;
    while (PyDict_Next(claims, &pos, &px, &c))
        if (small(px, &p) && p == price && claim_read(c, &v)) return v.held;
    return 0;
}

/* The resting orders of `view` that a print of `size` at `price` (the taker's token's terms; `mirror`:
 * the view is the complement's) meets, when it fills none: 1 with *orders (a new reference, NULL when it
 * meets none) and *rest (the size that reaches their queue) set, 0 when it may fill one or is not the
 * venue's shape, -1 error. MatchingEngine._apply_trade is the reference: the size our claim at the price
 * absorbed does not reach the queue, a print through an order's price fills it, and one at its price
 * fills it once more than the size ahead of it trades. */
static int reach_ready(PyObject *view, int mirror, int is_buy, long long price, long long size, PyObject *claims,
                       PyObject **orders, long long *rest) {
    *orders = NULL;
    if (o_queue < 0) return 0;
    int rest_bid = mirror ? is_buy : !is_buy; /* the side of the view the taker hit */
    long long vpx = mirror ? ONE - price : price;
    PyObject *idx = slot(view, rest_bid ? o_bids : o_asks), *k, *level, *found = NULL;
    if (!idx || !PyDict_CheckExact(idx)) return 0;
    Py_ssize_t i = 0;
    long long at = 0;
    while (PyDict_Next(idx, &i, &k, &level)) {
        if (!small(k, &at) || (rest_bid ? at > vpx : at < vpx)) return 0;
        if (at == vpx) found = level;
    }
    if (!found) return 1;
    if (queue_code(slot(view, o_queue)) < 0 || !PyList_CheckExact(found)) return 0;
    long long held = held_at(claims, mirror ? ONE - price : price);
    *rest = size - min_ll(size, held);
    PosV v;
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(found); j++) /* each readable, and not reached */
        if (!pos_read(PyList_GET_ITEM(found, j), SMALL, &v) || *rest > v.ahead) return 0;
    *orders = Py_NewRef(found);
    return 1;
}

/* QueueModel.on_trade of each order (reach_ready checked that the trade stays within the size ahead) */
static int queue_advance(PyObject *orders, long long rest) {
    PosV v;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(orders); i++) {
        if (!pos_read(PyList_GET_ITEM(orders, i), SMALL, &v)) return 0; /* checked before: cannot happen */
        v.traded += rest;
        v.ahead -= rest;
        if (pos_write(&v) < 0) return -1;
    }
    return 0;
}

/* -- the plain cases -------------------------------------------------------------------------------- */

/* One delta: 1 applied (it was plain), 0 it needs the Python venue (nothing done), -1 error. */
static int plain_delta(PyObject *toks, PyObject *d, PyObject *ts) {
    PyObject *tok;
    int has = PsDelta_Lookup(d, toks, &tok);
    if (has <= 0) return has;
    PyObject *side = PyTuple_GET_ITEM(d, 1), *price = PyTuple_GET_ITEM(d, 2), *shows = PyTuple_GET_ITEM(d, 3);
    int is_bid = side == Books->buy;
    if ((!is_bid && side != Books->sell) || !tok_known(tok)) return 0; /* not a Side: the Python venue says */
    Py_INCREF(tok);
    Moves m = {NULL};
    long long resting, total = 0, hidden = 0;
    PyObject *mine = claims_of(tok, !is_bid), *book = slot(tok, o_book), *c = NULL;
    int numeric = small(shows, &total), r = 0;
    ClaimV v;
    if (!mine || !book || !small(slot(tok, o_resting), &resting)) goto done;
    if (PyDict_GET_SIZE(mine) && !(c = PyDict_GetItemWithError(mine, price)) && PyErr_Occurred()) {
        r = -1;
        goto done;
    }
    if (c) {
        /* a claim at this price: the feed's total less what it still hides (venue._update_level) */
        if (!claim_read(c, &v) || !numeric) goto done;
        claim_see(&v, total);
        hidden = v.held + v.printed;
    }
    if (resting && (!numeric || (r = moves_ready(tok, book, is_bid, price, total - hidden, &m)) <= 0)) goto done;
    if (c) {
        Py_INCREF(c);
        r = claim_write(c, &v);
        Py_DECREF(c);
        if (r < 0 || (!hidden && PyDict_DelItem(mine, price) < 0) || !(shows = PyLong_FromLongLong(total - hidden))) {
            r = -1;
            goto done;
        }
    } else {
        Py_INCREF(shows);
    }
    Py_INCREF(book);
    PyObject *x = PsBook_ApplyLevel(Books, book, side, price, shows, ts);
    Py_DECREF(book);
    Py_DECREF(shows);
    Py_XDECREF(x);
    r = !x ? -1 : m.orders && queue_moves(&m) < 0 ? -1 : 1;
done:
    Py_XDECREF(m.orders);
    Py_DECREF(tok);
    return r;
}

/* changes[start:] while plain: the index of the first delta not applied (n when all were), -1 error */
static Py_ssize_t plain_run(PyObject *toks, PyObject *changes, PyObject *ts, Py_ssize_t start) {
    Py_ssize_t n = PyTuple_GET_SIZE(changes), i = start < 0 ? 0 : start;
    for (; i < n; i++) {
        int r = plain_delta(toks, PyTuple_GET_ITEM(changes, i), ts);
        if (r < 0) return -1;
        if (!r) break;
    }
    return i < n ? i : n;
}

/* A print (LastTrade) that fills nothing: both tokens known; the print explains the claims it reaches
 * on the side of either book it hits, and advances the queue of the resting orders at its price in the
 * view it met when it gets past none of them (reach_ready). 1 when so (done), 0 when the Python venue
 * must see it (nothing changed), -1 error. MatchingEngine._apply_trade is the reference. */
static int plain_trade(PyObject *toks, PyObject *trade) {
    PyObject *token = PyTuple_GET_ITEM(trade, 1), *price = PyTuple_GET_ITEM(trade, 3);
    PyObject *side = PyTuple_GET_ITEM(trade, 5);
    int is_buy = side == Books->buy;
    if ((!is_buy && side != Books->sell) || !PyUnicode_CheckExact(token) || !PyLong_Check(price)) return 0;
    PyObject *tok = PyDict_GetItemWithError(toks, token);
    if (!tok) return PyErr_Occurred() ? -1 : 0;
    if (!tok_known(tok)) return 0;
    Py_INCREF(tok);
    PyObject *comp = NULL, *orders = NULL;
    PyObject *comp_id = o_complement < 0 ? NULL : slot(tok, o_complement);
    int r = 0;
    if (!comp_id || !PyUnicode_CheckExact(comp_id)) goto done;
    comp = PyDict_GetItemWithError(toks, comp_id);
    if (!comp) {
        r = PyErr_Occurred() ? -1 : 0; /* a complement the venue never made: _view would make it */
        goto done;
    }
    Py_INCREF(comp);
    /* the print hits the taker's opposite side of its own book and the same side of the complement's */
    PyObject *mine = claims_of(tok, is_buy), *theirs = NULL, *view = tok;
    long long px = 0, size = 0, resting, comp_resting, rest = 0;
    if (!Py_IS_TYPE(comp, Py_TYPE(tok)) || !mine || !(theirs = claims_of(comp, !is_buy)) ||
        !small(slot(tok, o_resting), &resting) || !small(slot(comp, o_resting), &comp_resting))
        goto done; /* one type: the offsets read are its */
    int claimed = PyDict_GET_SIZE(mine) || PyDict_GET_SIZE(theirs);
    if (!claimed && !resting && !comp_resting) {
        r = 1;
        goto done;
    }
    if (!small(price, &px) || !small(PyTuple_GET_ITEM(trade, 4), &size) || !claims_readable(mine) ||
        !claims_readable(theirs))
        goto done;
    if (resting || comp_resting) {
        /* the view the taker met (MatchingEngine._view): its own book when trusted, else the
         * complement's when that is (read mirrored), else its own */
        PyObject *books[2] = {slot(tok, o_book), slot(comp, o_book)};
        if (!books[0] || !books[1] || !Py_IS_TYPE(books[0], Books->type) || !Py_IS_TYPE(books[1], Books->type))
            goto done;
        int mirror = !Books->trusted(books[0]) && Books->trusted(books[1]);
        view = mirror ? comp : tok;
        if ((mirror ? comp_resting : resting) &&
            (r = reach_ready(view, mirror, is_buy, px, size, mirror ? theirs : mine, &orders, &rest)) <= 0)
            goto done;
    }
    int failed = claimed && (claims_explain(mine, px, size, is_buy) < 0 ||
                             claims_explain(theirs, ONE - px, size, !is_buy) < 0);
    r = failed || (orders && queue_advance(orders, rest) < 0) ? -1 : 1;
done:
    Py_XDECREF(orders);
    Py_XDECREF(comp);
    Py_DECREF(tok);
    return r;
}

/* A snapshot of a token with nothing resting and no claim, whose complement has no claim either (one it
 * could take over, were it trusted): MatchingEngine._apply_snapshot only hands it to the book, and its
 * _reclaim finds nothing to carry. Applied then: 1; 0 when the Python venue must; -1 error. */
static int plain_snapshot(PyObject *toks, PyObject *snap) {
    PyObject *token = PyTuple_GET_ITEM(snap, 1);
    if (!PyUnicode_CheckExact(token)) return 0;
    PyObject *tok = PyDict_GetItemWithError(toks, token);
    if (!tok) return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(tok);
    PyObject *comp = NULL;
    int r = idle(tok);
    if (r <= 0) goto done;
    PyObject *bids = claims_of(tok, 0), *asks = claims_of(tok, 1), *book = slot(tok, o_book);
    PyObject *comp_id = o_complement < 0 ? NULL : slot(tok, o_complement);
    r = 0;
    if (!bids || !asks || PyDict_GET_SIZE(bids) || PyDict_GET_SIZE(asks) || !book || !comp_id ||
        !PyUnicode_CheckExact(comp_id))
        goto done;
    comp = PyDict_GetItemWithError(toks, comp_id);
    if (comp) {
        Py_INCREF(comp);
        if (!Py_IS_TYPE(comp, Py_TYPE(tok))) goto done;
        bids = claims_of(comp, 0), asks = claims_of(comp, 1);
        if (!bids || !asks || PyDict_GET_SIZE(bids) || PyDict_GET_SIZE(asks)) goto done;
    } else if (PyErr_Occurred()) {
        r = -1;
        goto done;
    }
    Py_INCREF(book);
    PyObject *x = PyObject_CallMethodOneArg(book, s_apply_snapshot, snap);
    Py_DECREF(book);
    r = x ? 1 : -1;
    Py_XDECREF(x);
done:
    Py_XDECREF(comp);
    Py_DECREF(tok);
    return r;
}

/* apply_plain(toks, changes, ts_ms, start) -> int: see the module comment and venue._apply_plain. */
static PyObject *apply_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "apply_plain(toks: dict, changes, ts_ms, start) takes 4 arguments");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    /* a tuple of its own: nothing the books call back into can change what is walked */
    PyObject *changes = PyTuple_CheckExact(args[1]) ? Py_NewRef(args[1]) : PySequence_Tuple(args[1]);
    if (!changes) return NULL;
    Py_ssize_t i = plain_run(args[0], changes, args[2], start);
    Py_DECREF(changes);
    return i < 0 ? NULL : PyLong_FromSsize_t(i);
}

/* -- the sink --------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *venue, *engine, *toks, *slow;
    /* the venue's and the engine's types, held: their slot offsets are only valid for them */
    PyTypeObject *venue_type, *engine_type;
    Py_ssize_t o_due, o_reports;
} Sink;

/* 1 when an event at `ts` needs nothing to happen first: before the venue's next due time (an
 * arrival, expiry or delivery) and no report waiting to be flushed; 0 when the Python venue must
 * look; -1 error. */
static int ready(Sink *s, PyObject *ts) {
    if (!Py_IS_TYPE(s->venue, s->venue_type) || !Py_IS_TYPE(s->engine, s->engine_type)) return 0;
    PyObject *due = slot(s->venue, s->o_due), *reports = slot(s->engine, s->o_reports);
    if (!due || !reports || !PyLong_CheckExact(due) || !PyLong_CheckExact(ts) || !PyList_CheckExact(reports) ||
        PyList_GET_SIZE(reports))
        return 0;
    return PyObject_RichCompareBool(ts, due, Py_LT);
}

static PyObject *sink_on_event(Sink *s, PyObject *event) {
    PyObject *type = (PyObject *)Py_TYPE(event);
    Py_ssize_t start = 0;
    if (type == PriceChangeType && PyTuple_GET_SIZE(event) >= 3 && PyTuple_CheckExact(PyTuple_GET_ITEM(event, 2))) {
        PyObject *ts = PyTuple_GET_ITEM(event, 0), *changes = PyTuple_GET_ITEM(event, 2);
        int r = ready(s, ts);
        if (r < 0) return NULL;
        if (r) {
            Py_INCREF(event); /* keeps `changes` alive whatever the books call */
            start = plain_run(s->toks, changes, ts, 0);
            Py_ssize_t n = PyTuple_GET_SIZE(changes);
            Py_DECREF(event);
            if (start < 0) return NULL;
            if (start == n) Py_RETURN_NONE;
        }
    } else if (type == BookSnapshotType && PyTuple_GET_SIZE(event) >= 2) {
        int r = ready(s, PyTuple_GET_ITEM(event, 0));
        if (r > 0) r = plain_snapshot(s->toks, event);
        if (r < 0) return NULL;
        if (r) Py_RETURN_NONE;
    } else if (type == LastTradeType && PyTuple_GET_SIZE(event) >= 6) {
        int r = ready(s, PyTuple_GET_ITEM(event, 0));
        if (r > 0) r = plain_trade(s->toks, event);
        if (r < 0) return NULL;
        if (r) Py_RETURN_NONE;
    }
    PyObject *at = PyLong_FromSsize_t(start);
    if (!at) return NULL;
    PyObject *args[2] = {event, at};
    PyObject *r = PyObject_Vectorcall(s->slow, args, 2, NULL);
    Py_DECREF(at);
    return r;
}

static int sink_traverse(Sink *s, visitproc visit, void *arg) {
    Py_VISIT(s->venue);
    Py_VISIT(s->engine);
    Py_VISIT(s->toks);
    Py_VISIT(s->slow);
    Py_VISIT(s->venue_type);
    Py_VISIT(s->engine_type);
    return 0;
}

static int sink_clear(Sink *s) {
    Py_CLEAR(s->venue);
    Py_CLEAR(s->engine);
    Py_CLEAR(s->toks);
    Py_CLEAR(s->slow);
    Py_CLEAR(s->venue_type);
    Py_CLEAR(s->engine_type);
    return 0;
}

static void sink_dealloc(Sink *s) {
    PyObject_GC_UnTrack(s);
    sink_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef sink_methods[] = {
    {"on_market_event", (PyCFunction)sink_on_event, METH_O, NULL},
    {NULL},
};

static PyTypeObject SinkType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.adapters.sim._venue.Sink",
    .tp_basicsize = sizeof(Sink),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)sink_traverse,
    .tp_clear = (inquiry)sink_clear,
    .tp_dealloc = (destructor)sink_dealloc,
    .tp_methods = sink_methods,
};

/* sink(venue, engine, toks, slow) -> on_market_event: see the module comment. */
static PyObject *sink(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_CheckExact(args[2]) || !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "sink(venue, engine, toks: dict, slow: callable) takes 4 arguments");
        return NULL;
    }
    PyTypeObject *vt = Py_TYPE(args[0]), *et = Py_TYPE(args[1]);
    Py_ssize_t o_due, o_reports;
    if (!slot_offset(vt, "_next_due_ms", &o_due) || !slot_offset(et, "reports", &o_reports)) {
        PyErr_SetString(PyExc_TypeError, "sink: the venue needs a _next_due_ms slot, the engine a reports slot");
        return NULL;
    }
    Sink *s = PyObject_GC_New(Sink, &SinkType);
    if (!s) return NULL;
    s->venue = Py_NewRef(args[0]);
    s->engine = Py_NewRef(args[1]);
    s->toks = Py_NewRef(args[2]);
    s->slow = Py_NewRef(args[3]);
    s->venue_type = (PyTypeObject *)Py_NewRef(vt);
    s->engine_type = (PyTypeObject *)Py_NewRef(et);
    s->o_due = o_due;
    s->o_reports = o_reports;
    PyObject_GC_Track(s);
    PyObject *bound = PyObject_GetAttrString((PyObject *)s, "on_market_event");
    Py_DECREF(s);
    return bound;
}

/* -- matching --------------------------------------------------------------------------------------- */

/* What an arriving order (or replayed liquidity crossing a resting one) meets: venue._plan_levels, the
 * reference, walks one side of the view's book best-first down to the limit; within a level the queue is
 * the replayed size and the resting orders interleaved by each order's size ahead, the orders of both
 * views in time order (seq), those of the taker's own wallet passed over; a price where only resting
 * orders of another wallet rest is a level too. match() gives the same steps, or None where it does not
 * take the case (a book that is not a DenseBook or holds off-grid levels on that side, a value outside
 * the checked ranges, an object not of the venue's shape), and then the Python walk runs: the plan is
 * pure, so nothing has changed. */

typedef struct {
    long long seq;
    Py_ssize_t at; /* position in the concatenation: ties keep it, as a stable sort does */
    PyObject *order; /* borrowed */
} QEntry;

static int qentry_cmp(const void *a, const void *b) {
    const QEntry *x = a, *y = b;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* 1 when `owner` (an exact str) is not the order's owner, 0 when it is, -1 when the owner is not an
 * exact str (the Python walk's case) */
static int other_owner(PyObject *order, PyObject *owner) {
    PyObject *mine = slot(order, o_owner);
    if (!mine || !PyUnicode_CheckExact(mine)) return -1;
    return mine != owner && PyUnicode_Compare(mine, owner) != 0;
}

/* venue._has_other_owner over a level's orders: 1, 0, or -1 when one is not the venue's shape */
static int has_other_owner(PyObject *orders, PyObject *owner) {
    if (!PyList_CheckExact(orders)) return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(orders); i++) {
        PyObject *o = PyList_GET_ITEM(orders, i);
        if (!order_known(o)) return -1;
        int r = other_owner(o, owner);
        if (r) return r;
    }
    return 0;
}

static int cmp_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_asc(const void *a, const void *b) { return -cmp_desc(a, b); }

/* The prices of `levels` (price -> orders; `flip`: keyed by the complement's price) where the book shows
 * nothing and an order of another wallet rests, appended to *px (grown as needed): 1, 0 not the venue's
 * shape, -1 error. */
static int extra_prices(PyObject *book, int is_bid, PyObject *levels, int flip, PyObject *owner, long long **px,
                        Py_ssize_t *n, Py_ssize_t *cap) {
    Py_ssize_t i = 0;
    PyObject *k, *orders;
    long long at = 0;
    while (PyDict_Next(levels, &i, &k, &orders)) {
        if (!small(k, &at)) return 0;
        long long price = flip ? ONE - at : at;
        int64_t shown;
        if (Books->size_at(book, is_bid, price, &shown) < 0) {
            PyErr_Clear(); /* a price the book refuses: the Python walk raises what the book says */
            return 0;
        }
        if (shown) continue;
        int other = has_other_owner(orders, owner);
        if (other < 0) return 0;
        if (!other) continue;
        if (*n == *cap) {
            Py_ssize_t grown = *cap ? 2 * *cap : 8;
            long long *p = PyMem_Realloc(*px, (size_t)grown * sizeof(long long));
            if (!p) {
                PyErr_NoMemory();
                return -1;
            }
            *px = p, *cap = grown;
        }
        (*px)[(*n)++] = price;
    }
    return 1;
}

/* One step of a plan appended: (price, size, the resting order hit or None) */
static int plan_step(PyObject *plan, long long px, long long size, PyObject *order) {
    PyObject *t = PyTuple_New(3), *p = PyLong_FromLongLong(px), *z = PyLong_FromLongLong(size);
    if (!t || !p || !z) {
        Py_XDECREF(t);
        Py_XDECREF(p);
        Py_XDECREF(z);
        return -1;
    }
    PyTuple_SET_ITEM(t, 0, p);
    PyTuple_SET_ITEM(t, 1, z);
    PyTuple_SET_ITEM(t, 2, Py_NewRef(order ? order : Py_None));
    int r = PyList_Append(plan, t);
    Py_DECREF(t);
    return r;
}

/* The queue at one level: the view's orders there, and the complement view's mirrored onto it, in time
 * order when both have some, in *q (*n entries; the caller's buffer of *cap, grown as needed and freed by
 * the caller): 1, 0 not the venue's shape, -1 error. */
static int level_queue(PyObject *idx, PyObject *other, long long px, QEntry **q, Py_ssize_t *cap, Py_ssize_t *n) {
    PyObject *lists[2] = {NULL, NULL};
    long long keys[2] = {px, ONE - px};
    PyObject *dicts[2] = {idx, other};
    *n = 0;
    for (int k = 0; k < 2; k++) {
        if (!PyDict_GET_SIZE(dicts[k])) continue;
        PyObject *key = PyLong_FromLongLong(keys[k]);
        if (!key) return -1;
        PyObject *l = PyDict_GetItemWithError(dicts[k], key);
        Py_DECREF(key);
        if (!l && PyErr_Occurred()) return -1;
        if (l && !PyList_CheckExact(l)) return 0;
        if (l && PyList_GET_SIZE(l)) lists[k] = l, *n += PyList_GET_SIZE(l);
    }
    if (!*n) return 1;
    if (*n > *cap) {
        QEntry *grown = PyMem_Realloc(*q, (size_t)*n * sizeof(QEntry));
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        *q = grown, *cap = *n;
    }
    QEntry *e = *q;
    Py_ssize_t at = 0;
    for (int k = 0; k < 2; k++) {
        for (Py_ssize_t i = 0; lists[k] && i < PyList_GET_SIZE(lists[k]); i++, at++) {
            PyObject *o = PyList_GET_ITEM(lists[k], i);
            e[at].order = o, e[at].at = at;
            if (!order_known(o) || !small(slot(o, o_seq), &e[at].seq)) return 0;
        }
    }
    if (lists[0] && lists[1]) qsort(e, (size_t)*n, sizeof(QEntry), qentry_cmp);
    return 1;
}

/* The walk itself (see above): 1 with `plan` filled, 0 not the case taken here, -1 error. */
static int plan_walk(PyObject *book, int is_bid, long long limit, long long qty, PyObject *owner, PyObject *idx,
                     PyObject *other, int replayed_only, PyObject *plan) {
    long long *extra = NULL;
    Py_ssize_t n_extra = 0, cap = 0, next_extra = 0;
    QEntry *q = NULL; /* the queue at the level walked, one buffer for the whole walk */
    Py_ssize_t q_cap = 0;
    int r = 1;
    if (!replayed_only && (PyDict_GET_SIZE(idx) || PyDict_GET_SIZE(other))) {
        if ((r = extra_prices(book, is_bid, idx, 0, owner, &extra, &n_extra, &cap)) <= 0 ||
            (r = extra_prices(book, is_bid, other, 1, owner, &extra, &n_extra, &cap)) <= 0)
            goto done;
        if (n_extra > 1) /* qsort's pointer must not be NULL, even for no elements */
            qsort(extra, (size_t)n_extra, sizeof(long long), is_bid ? cmp_desc : cmp_asc);
    }
    long long remaining = qty;
    int64_t from = is_bid ? INT64_MAX : INT64_MIN, bp = 0, bs = 0;
    for (;;) {
        int has = Books->level_from(book, is_bid, from, &bp, &bs);
        if (has < 0 || has == 2) {
            r = has < 0 ? -1 : 0;
            goto done;
        }
        /* an extra price is where the book shows nothing, so never one of its levels; a price both
         * views list is one level */
        while (next_extra + 1 < n_extra && extra[next_extra + 1] == extra[next_extra]) next_extra++;
        int from_extra = next_extra < n_extra && (!has || (is_bid ? extra[next_extra] > bp : extra[next_extra] < bp));
        if (!has && !from_extra) break;
        long long px = from_extra ? extra[next_extra] : bp, avail = from_extra ? 0 : bs;
        if (is_bid ? px < limit : px > limit) break;
        if (from_extra)
            next_extra++;
        else
            from = is_bid ? bp - 1 : bp + 1;
        Py_ssize_t n = 0;
        if ((r = level_queue(idx, other, px, &q, &q_cap, &n)) <= 0) goto done;
        long long used = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *o = q[i].order;
            PosV v;
            if (!pos_read(o, SMALL, &v)) {
                r = 0;
                goto done;
            }
            long long seg = min_ll(remaining, min_ll(v.ahead - used, avail - used));
            if (seg > 0) {
                if (plan_step(plan, px, seg, NULL) < 0) goto fail;
                used += seg;
                remaining -= seg;
            }
            if (remaining && !replayed_only) {
                int ne = other_owner(o, owner);
                long long leaves = 0;
                if (ne < 0 || !small(slot(o, o_leaves), &leaves)) {
                    r = 0;
                    goto done;
                }
                if (ne) {
                    long long size = min_ll(remaining, leaves);
                    if (plan_step(plan, px, size, o) < 0) goto fail;
                    remaining -= size;
                }
            }
            if (!remaining) break;
        }
        long long seg = min_ll(remaining, avail - used);
        if (seg > 0) {
            if (plan_step(plan, px, seg, NULL) < 0) goto fail;
            remaining -= seg;
        }
        if (!remaining) break;
    }
    r = 1;
    goto done;
fail:
    r = -1;
done:
    PyMem_Free(q);
    PyMem_Free(extra);
    return r;
}

/* 1 when every key of `levels` is an int within the checked range */
static int int_keys(PyObject *levels) {
    Py_ssize_t i = 0;
    PyObject *k, *v;
    long long at = 0;
    while (PyDict_Next(levels, &i, &k, &v))
        if (!small(k, &at)) return 0;
    return 1;
}

/* match(book, side, limit, qty, owner, idx, other, replayed_only) -> list of (price, size, order|None),
 * or None: see the section comment; venue._plan_levels is the reference. */
static PyObject *match(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "match(book, side, limit, qty, owner, idx, other, replayed_only) takes 8 arguments");
        return NULL;
    }
    PyObject *book = args[0], *side = args[1], *owner = args[4], *idx = args[5], *other = args[6];
    int replayed_only = PyObject_IsTrue(args[7]);
    if (replayed_only < 0) return NULL;
    long long limit, qty;
    int is_bid = side == Books->buy;
    if (!Py_IS_TYPE(book, Books->type) || (!is_bid && side != Books->sell) || !small(args[2], &limit) ||
        !small(args[3], &qty) || qty <= 0 || !PyUnicode_CheckExact(owner) || !PyDict_CheckExact(idx) ||
        !PyDict_CheckExact(other))
        Py_RETURN_NONE;
    if (!int_keys(idx) || !int_keys(other)) Py_RETURN_NONE;
    PyObject *plan = PyList_New(0);
    if (!plan) return NULL;
    /* a DenseBook, int keys and the venue's own objects: no Python code runs during the walk (a lookup
     * compares only ints), so what it borrows stays alive */
    int r = plan_walk(book, is_bid, limit, qty, owner, idx, other, replayed_only, plan);
    if (r > 0) return plan;
    Py_DECREF(plan);
    if (r < 0) return NULL;
    Py_RETURN_NONE;
}

/* -- the feed's delays ------------------------------------------------------------------------------ */

/* models.FeedLatency.draws' closure, one call each: rejection sampling on the RNG's own getrandbits,
 * so the sequence is the Python one's draw for draw. */
typedef struct {
    PyObject_HEAD
    PyObject *getrandbits, *bits;
    long long base, span;
} Draws;

static PyObject *draws_next(Draws *d, PyObject *unused) {
    for (;;) {
        PyObject *r = PyObject_Vectorcall(d->getrandbits, &d->bits, 1, NULL);
        if (!r) return NULL;
        long long v = PyLong_AsLongLong(r);
        Py_DECREF(r);
        if (v == -1 && PyErr_Occurred()) return NULL;
        if (v >= 0 && v < d->span) return PyLong_FromLongLong(d->base + v);
    }
}

static int draws_traverse(Draws *d, visitproc visit, void *arg) {
    Py_VISIT(d->getrandbits);
    return 0;
}

static int draws_clear(Draws *d) {
    Py_CLEAR(d->getrandbits);
    Py_CLEAR(d->bits);
    return 0;
}

static void draws_dealloc(Draws *d) {
    PyObject_GC_UnTrack(d);
    draws_clear(d);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef draws_methods[] = {
    {"draw", (PyCFunction)draws_next, METH_NOARGS, NULL},
    {NULL},
};

static PyTypeObject DrawsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.adapters.sim._venue.Draws",
    .tp_basicsize = sizeof(Draws),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)draws_traverse,
    .tp_clear = (inquiry)draws_clear,
    .tp_dealloc = (destructor)draws_dealloc,
    .tp_methods = draws_methods,
};

/* draws(getrandbits, base, span) -> draw: base + a uniform 0..span-1, for 0 <= base and 2 <= span with
 * base + span < 2**62 (the caller keeps the Python closure for anything else). */
static PyObject *draws(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyCallable_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "draws(getrandbits, base, span) takes 3 arguments");
        return NULL;
    }
    long long base = PyLong_AsLongLong(args[1]), span = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (base < 0 || span < 2 || span > (1LL << 62) - base) {
        PyErr_SetString(PyExc_ValueError, "draws: needs 0 <= base, 2 <= span, base + span <= 2**62");
        return NULL;
    }
    int bits = 0;
    for (long long x = span; x; x >>= 1) bits++;
    Draws *d = PyObject_GC_New(Draws, &DrawsType);
    if (!d) return NULL;
    d->getrandbits = Py_NewRef(args[0]);
    d->bits = PyLong_FromLong(bits);
    d->base = base;
    d->span = span;
    PyObject_GC_Track(d);
    PyObject *bound = d->bits ? PyObject_GetAttrString((PyObject *)d, "draw") : NULL;
    Py_DECREF(d);
    return bound;
}

static PyMethodDef venue_functions[] = {
    {"draws", (PyCFunction)(void (*)(void))draws, METH_FASTCALL, NULL},
    {"apply_plain", (PyCFunction)(void (*)(void))apply_plain, METH_FASTCALL, NULL},
    {"sink", (PyCFunction)(void (*)(void))sink, METH_FASTCALL, NULL},
    {"match", (PyCFunction)(void (*)(void))match, METH_FASTCALL, NULL},
    {NULL},
};

static struct PyModuleDef venuemodule = {PyModuleDef_HEAD_INIT, "polysnipe.adapters.sim._venue", NULL, -1,
                                         venue_functions};

PyMODINIT_FUNC PyInit__venue(void) {
    Books = PsBook_Import();
    if (!Books) return NULL;
    if (PyType_Ready(&SinkType) < 0 || PyType_Ready(&DrawsType) < 0) return NULL;
    PyObject *events = PyImport_ImportModule("polysnipe.core.events");
    if (!events) return NULL;
    PriceChangeType = PyObject_GetAttrString(events, "PriceChange");
    LastTradeType = PyObject_GetAttrString(events, "LastTrade");
    BookSnapshotType = PyObject_GetAttrString(events, "BookSnapshot");
    Py_DECREF(events);
    s_power = PyUnicode_InternFromString("power");
    s_apply_snapshot = PyUnicode_InternFromString("apply_snapshot");
    if (!PriceChangeType || !LastTradeType || !BookSnapshotType || !s_apply_snapshot || !s_power) return NULL;
    return PyModule_Create(&venuemodule);
}

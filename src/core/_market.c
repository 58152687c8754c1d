/* The engine's per-event work for a price change, market_handlers.on_price_change's compiled part.
 *
 * Nearly every input of a replay is a price change, and most of them only move books and signal state:
 * the Python handler spent more on calling from one step to the next (apply the deltas, route to each
 * signal module, look for watched tokens, pick the lots held in them) than the compiled book and kernels
 * spent doing the work. price_change does those steps in one call and hands back only what needs Python:
 * opportunities to handle, lots whose exit rules are to be judged, a delta dropped or a book missing.
 * market_handlers.py stays the reference (tests/unit/test_market_dispatch.py holds both to the same
 * commands on random streams).
 *
 * step is pipeline.step's compiled twin (pipeline.py binds it and keeps python_step as the reference):
 * it takes price changes and last trades itself, without the Python frames of the step and handlers,
 * leaves out held lots whose exit rules cannot fire (quiet_lot, exits._judge's twin), and reads the
 * engine state's slots directly (slot_attr).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* Attribute reads of the engine state's slots, as PyObject_GetAttr answers them but without its type
 * lookup each time (about 160 instructions a read, fifteen reads a price change): each call site keeps
 * the slot offset it found for the last type it saw, and reads the slot directly while that type is
 * unchanged (its version tag, which CPython renews on every change to a type or its bases). Anything
 * but a plain object slot (a property, a type with its own getattr) goes through PyObject_GetAttr. */
typedef struct {
    PyTypeObject *type;
    unsigned int version;
    Py_ssize_t offset; /* 0: not a plain slot */
} SlotSite;

static PyObject *slot_attr(PyObject *o, PyObject *name, SlotSite *site) {
    PyTypeObject *t = Py_TYPE(o);
    if (t != site->type || t->tp_version_tag != site->version || !site->version) {
        site->type = t;
        site->version = 0;
        site->offset = 0;
        PyObject *d = t->tp_getattro == PyObject_GenericGetAttr ? _PyType_Lookup(t, name) : NULL;
        if (d && Py_IS_TYPE(d, &PyMemberDescr_Type) && (t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            if (m->type == T_OBJECT_EX) {
                site->offset = m->offset;
                site->version = t->tp_version_tag;
            }
        }
    }
    if (site->offset) {
        PyObject *v = *(PyObject **)((char *)o + site->offset);
        if (v) return Py_NewRef(v);
    }
    return PyObject_GetAttr(o, name); /* also raises the AttributeError of an unset slot */
}

/* PyObject_GetAttr(o, name) through a SlotSite of its own */
#define SLOT_ATTR(o, name)                \
    ({                                    \
        static SlotSite site_;            \
        slot_attr((o), (name), &site_);   \
    })

static PyObject *apply_changes_fn, *s_lots, *s_shares, *s_flags, *s_name, *zero;

/* a == b for a lot's token and a change's: str hashes are cached, so two tokens whose hashes differ
 * are told apart without comparing their 70-odd digits (nearly every lot is in another token) */
static int same_token(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (PyUnicode_CheckExact(a) && PyUnicode_CheckExact(b)) {
        Py_hash_t ha = PyObject_Hash(a), hb = PyObject_Hash(b);
        if (ha == -1 || hb == -1) return -1;
        if (ha != hb) return 0;
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

/* The step's leave to keep out the lots whose exit rules cannot fire (quiet_lot), at `now` in `state` */
typedef struct {
    PyObject *state;
    long long now;
} Judge;

static int quiet_lot(PyObject *state, PyObject *pair, long long now);

/* Append to `out` a (wallet, token, lot) key and its lot for every lot of `token` held (shares > 0)
 * in each wallet, in the order exits.on_book_change judges them: wallets, then lots, as their dicts
 * iterate; with `judge`, not those quiet_lot finds quiet. The items are held while Python code may run
 * (attribute reads, comparisons), so a dict changed meanwhile can misorder the answer but never free
 * what is in use. */
static int lots_of(PyObject *wname, PyObject *wallet, PyObject *token, PyObject *unruled, const Judge *judge,
                   PyObject *out) {
    PyObject *lots = SLOT_ATTR(wallet, s_lots);
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
        int same = same_token(PyTuple_GET_ITEM(key, 0), token);
        if (same > 0) {
            /* a lot no exit rule watches (ExitParams.rule_for: a basket leg) is not judged */
            PyObject *label = PyTuple_GET_ITEM(key, 1);
            Py_ssize_t tail = PyUnicode_Check(label) ? PyUnicode_Tailmatch(label, unruled, 0, PY_SSIZE_T_MAX, 1) : 0;
            same = tail < 0 ? -1 : !tail;
        }
        int held = 0;
        if (same > 0) {
            PyObject *shares = SLOT_ATTR(lot, s_shares);
            held = shares ? PyObject_RichCompareBool(shares, zero, Py_GT) : -1;
            Py_XDECREF(shares);
        }
        if (same < 0 || held < 0) {
            rc = -1;
        } else if (held) {
            PyObject *lkey = PyTuple_Pack(3, wname, token, PyTuple_GET_ITEM(key, 1));
            PyObject *pair = lkey ? PyTuple_Pack(2, lkey, lot) : NULL;
            Py_XDECREF(lkey);
            int quiet = pair && judge ? quiet_lot(judge->state, pair, judge->now) : 0;
            if (!pair || quiet < 0 || (!quiet && PyList_Append(out, pair) < 0)) rc = -1;
            Py_XDECREF(pair);
        }
        Py_DECREF(key);
        Py_DECREF(lot);
    }
    Py_DECREF(lots);
    return rc;
}

static int held_lots(PyObject *wallets, PyObject *token, PyObject *unruled, const Judge *judge, PyObject *out) {
    Py_ssize_t pos = 0;
    PyObject *wname, *wallet;
    while (PyDict_Next(wallets, &pos, &wname, &wallet)) {
        Py_INCREF(wname);
        Py_INCREF(wallet);
        int rc = lots_of(wname, wallet, token, unruled, judge, out);
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
static PyObject *price_change_impl(PyObject *const *args, const Judge *judge);

/* Every handler of `handlers` called with (event, ctx, now_ms) in order, what they found gathered as
 * market_handlers._react does: *opps stays NULL while nothing was found, else a new list. 0, or -1 on
 * an error (*opps then released). */
static int gather(PyObject *handlers, PyObject *const *hargs, PyObject **opps) {
    for (Py_ssize_t h = 0; h < PyTuple_GET_SIZE(handlers); h++) {
        PyObject *found = PyObject_Vectorcall(PyTuple_GET_ITEM(handlers, h), hargs, 3, NULL);
        int any = found ? PyObject_IsTrue(found) : -1;
        if (any > 0) {
            if (!*opps) {
                *opps = PySequence_List(found);
                if (!*opps) any = -1;
            } else if (PyList_SetSlice(*opps, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, found) < 0) {
                any = -1;
            }
        }
        Py_XDECREF(found);
        if (any < 0) {
            Py_CLEAR(*opps);
            return -1;
        }
    }
    return 0;
}

static PyObject *price_change(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12 || !PyDict_Check(args[0]) || !PyTuple_Check(args[3]) || !PyAnySet_Check(args[7]) ||
        !PyDict_Check(args[8]) || !PyUnicode_Check(args[9]) || !PyTuple_Check(args[10]) || !PyDict_Check(args[11])) {
        PyErr_SetString(PyExc_TypeError,
                        "price_change(books: dict, changes, ts_ms, handlers: tuple, event, ctx, now_ms, watched: "
                        "set, wallets: dict, unruled: str, flagged: tuple, dq_seen: dict) takes 12 arguments");
        return NULL;
    }
    return price_change_impl(args, NULL);
}

static PyObject *price_change_impl(PyObject *const *args, const Judge *judge) {
    PyObject *handlers = args[3], *event = args[4], *ctx = args[5], *now = args[6], *watched = args[7];
    PyObject *seq = PySequence_Fast(args[1], "changes must be a sequence");
    if (!seq) return NULL;
    PyObject *opps = NULL, *held = NULL, *touched = NULL, *result = NULL;
    PyObject *call[4] = {args[0], seq, args[2], zero};
    PyObject *r = PyObject_Vectorcall(apply_changes_fn, call, 4, NULL);
    if (!r) goto done;
    Py_ssize_t stop = -1, applied = -1, dropped = -1;
    if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 3) {
        stop = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 0));
        applied = stop < 0 ? -1 : PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
        dropped = applied < 0 ? -1 : PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 2));
    }
    if (dropped < 0) {
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
    if (gather(handlers, hargs, &opps) < 0) goto done;
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
                    held_lots(args[8], token, args[9], judge, held) < 0)
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


/* -- the step ------------------------------------------------------------------------------------------
 * step(state, event, now_ms) -> commands: pipeline.step's compiled twin (pipeline.py is the reference and
 * binds this at import with bind_step). It releases the due slices and exits as the reference does, then
 * takes a price change through price_change_impl itself, without the frames of pipeline.step and
 * market_handlers.on_price_change, when that handler is the one bound and would make the same call (its
 * module's _price_change is this module's and the books are compiled ones); anything else goes to its
 * handler in HANDLERS. What price_change leaves goes to market_handlers.price_change_left. */
static PyObject *b_handlers, *b_slices, *b_exits, *b_pc_type, *b_on_pc, *b_left, *b_route_for, *b_mh_globals,
    *b_book_globals, *b_dense, *b_unruled, *b_lt_type, *b_on_lt, *b_react_left, *b_registry, *b_pc_fn;
static Py_ssize_t b_lt_token; /* LastTrade's token_id field */
static PyObject *s_timers, *s_convert_timers, *s_exits_attr, *s_books, *s_changes, *s_ts_ms, *s_routes, *s_routes_of,
    *s_signals, *s_watched, *s_risk, *s_portfolio, *s_wallets, *s_dq_seen, *s_price_change_name, *s_make_book,
    *s_markets, *s_by_token, *s_last_trades;

/* 1 when heap-ordered `timers` (a list of tuples led by a due time) has one due by `now`. */
static int due(PyObject *timers, PyObject *now) {
    if (!PyList_Check(timers)) {
        PyErr_SetString(PyExc_TypeError, "timers must be a list");
        return -1;
    }
    if (!PyList_GET_SIZE(timers)) return 0;
    PyObject *head = PyList_GET_ITEM(timers, 0);
    if (!PyTuple_Check(head) || !PyTuple_GET_SIZE(head)) {
        PyErr_SetString(PyExc_TypeError, "a timer must be a tuple led by its due time");
        return -1;
    }
    return PyObject_RichCompareBool(PyTuple_GET_ITEM(head, 0), now, Py_LE);
}

/* The compiled path of market_handlers.on_price_change: 0 done, -1 error. */
/* market_handlers._route(state, kind): a new reference to (handlers, flagged), both tuples, or NULL */
static PyObject *route_of(PyObject *state, PyObject *kind) {
    PyObject *route = NULL;
    PyObject *routes_of = SLOT_ATTR(state, s_routes_of);
    PyObject *signals = routes_of ? SLOT_ATTR(state, s_signals) : NULL;
    if (!signals) {
        Py_XDECREF(routes_of);
        return NULL;
    }
    if (routes_of == signals) {
        PyObject *routes = SLOT_ATTR(state, s_routes);
        if (routes && PyDict_Check(routes)) route = Py_XNewRef(PyDict_GetItemWithError(routes, kind));
        Py_XDECREF(routes);
    }
    Py_DECREF(routes_of);
    Py_DECREF(signals);
    if (!route && !PyErr_Occurred()) {
        PyObject *rargs[2] = {state, kind};
        route = PyObject_Vectorcall(b_route_for, rargs, 2, NULL);
    }
    if (route && (!PyTuple_Check(route) || PyTuple_GET_SIZE(route) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(route, 0)) ||
                  !PyTuple_Check(PyTuple_GET_ITEM(route, 1)))) {
        PyErr_SetString(PyExc_TypeError, "a signal route must be (handlers, flagged), both tuples");
        Py_CLEAR(route);
    }
    return route;
}

/* The compiled path of market_handlers.on_last_trade for a registry of the bound type, whose
 * `in` is `token_id in registry._by_token` (market.py): 0 done, -1 error. */
static int last_trade_step(PyObject *state, PyObject *event, PyObject *now, PyObject *commands) {
    PyObject *markets = SLOT_ATTR(state, s_markets);
    if (!markets) return -1;
    PyObject *by_token = SLOT_ATTR(markets, s_by_token);
    Py_DECREF(markets);
    if (!by_token) return -1;
    PyObject *token = PyTuple_GET_ITEM(event, b_lt_token); /* an exact LastTrade: a NamedTuple */
    int known = PyDict_Check(by_token) ? PyDict_Contains(by_token, token) : -1;
    Py_DECREF(by_token);
    if (known < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a registry's markets by token must be a dict");
        return -1;
    }
    if (!known) { /* state.bump("events_unknown_token"), as the handler does */
        PyObject *r = PyObject_CallMethod(state, "bump", "s", "events_unknown_token");
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    PyObject *trades = SLOT_ATTR(state, s_last_trades);
    int rc = trades ? PyObject_SetItem(trades, token, event) : -1;
    Py_XDECREF(trades);
    if (rc < 0) return -1;
    PyObject *route = route_of(state, b_lt_type);
    if (!route) return -1;
    PyObject *opps = NULL;
    PyObject *hargs[3] = {event, state, now};
    rc = gather(PyTuple_GET_ITEM(route, 0), hargs, &opps);
    if (rc == 0 && !opps) {
        PyObject *dq_seen = SLOT_ATTR(state, s_dq_seen);
        int flags = dq_seen && PyDict_Check(dq_seen) ? flags_beyond(PyTuple_GET_ITEM(route, 1), dq_seen) : -1;
        if (dq_seen && !PyDict_Check(dq_seen)) PyErr_SetString(PyExc_TypeError, "dq_seen must be a dict");
        Py_XDECREF(dq_seen);
        rc = flags < 0 ? -1 : flags ? 1 : 0;
    }
    if (rc != 0 || opps) {
        if (rc >= 0) {
            PyObject *largs[5] = {state, now, commands, opps ? opps : Py_None, PyTuple_GET_ITEM(route, 1)};
            PyObject *r = PyObject_Vectorcall(b_react_left, largs, 5, NULL);
            rc = r ? 0 : -1;
            Py_XDECREF(r);
        }
    }
    Py_XDECREF(opps);
    Py_DECREF(route);
    return rc;
}

/* -- lots whose exit rules cannot fire -------------------------------------------------------------
 * exits._judge(state, key, lot, now_ms, commands, timer=False) for a lot a price change touched does
 * nothing at all (no order, no change to the exit state) on nearly every call: the token resolved, or a
 * retry not yet due, or no trusted bid, or no rule firing at that bid and time. quiet_lot answers 1 only
 * in those cases, reading what _judge reads; anything else (a conversion or an exit in flight, a rule
 * that fires, a value that does not fit an int64, a book, registry or mapping of another kind) is 0 and
 * the lot goes to _judge as before. exits.py's _judge is the reference; keep the two together. */
static PyObject *s_resolved, *s_converting, *s_exiting, *s_retry_at, *s_params, *s_rules, *s_default, *s_top_bid,
    *s_trusted, *s_take_profit, *s_stop_loss, *s_max_hold, *s_before_end, *s_fair_value, *s_cost, *s_opened,
    *s_end_ms;

/* a new reference's value as an int64: 1 set, 0 it is no int that fits (or no int), -1 error */
static int i64_of(PyObject *v, long long *out) {
    if (!v) return -1;
    int ovf = 0;
    long long x = PyLong_CheckExact(v) ? PyLong_AsLongLongAndOverflow(v, &ovf) : (ovf = 1, 0);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (ovf) return 0;
    *out = x;
    return 1;
}

#define I64(o, name, out)                                  \
    do {                                                   \
        int ok_ = i64_of(SLOT_ATTR((o), (name)), (out));   \
        if (ok_ <= 0) return ok_;                          \
    } while (0)


/* 1 when none of `rule`'s sell conditions holds for `lot` at `bid` and `now` (the why of _judge), 0 when
 * one does or a value does not fit, -1 on an error */
static int rule_quiet(PyObject *rule, PyObject *lot, PyObject *market, long long bid, long long now) {
    long long stop, hold, before, fair, cost, shares, opened, end;
    PyObject *tp = SLOT_ATTR(rule, s_take_profit);
    int take = tp ? PyObject_IsTrue(tp) : -1;
    Py_XDECREF(tp);
    if (take < 0) return -1;
    I64(rule, s_stop_loss, &stop);
    I64(rule, s_max_hold, &hold);
    I64(rule, s_before_end, &before);
    I64(lot, s_fair_value, &fair);
    I64(lot, s_cost, &cost);
    I64(lot, s_shares, &shares);
    I64(lot, s_opened, &opened);
    I64(market, s_end_ms, &end);
    if (shares <= 0) return 0;
    __int128 avg = (__int128)cost * 1000000 / shares; /* Lot.avg_price: cost * MICRO // shares */
    if ((__int128)cost * 1000000 % shares && ((cost < 0) != (shares < 0))) avg -= 1; /* floor division */
    if (take && fair && bid >= fair) return 0;
    if (stop && (__int128)bid <= avg - stop) return 0;
    if (hold && (__int128)now - opened >= hold) return 0;
    if (before && end && (__int128)end - now <= before) return 0;
    return 1;
}

static int quiet_lot(PyObject *state, PyObject *pair, long long now) {
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(pair, 0)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(pair, 0)) != 3)
        return 0;
    PyObject *key = PyTuple_GET_ITEM(pair, 0), *lot = PyTuple_GET_ITEM(pair, 1);
    PyObject *token = PyTuple_GET_ITEM(key, 1), *label = PyTuple_GET_ITEM(key, 2);
    int r = 0;
    PyObject *risk = SLOT_ATTR(state, s_risk);
    PyObject *portfolio = risk ? SLOT_ATTR(risk, s_portfolio) : NULL;
    Py_XDECREF(risk);
    PyObject *resolved = portfolio ? SLOT_ATTR(portfolio, s_resolved) : NULL;
    Py_XDECREF(portfolio);
    if (!resolved) return -1;
    int gone = PyDict_CheckExact(resolved) ? PyDict_Contains(resolved, token) : -2;
    Py_DECREF(resolved);
    if (gone != 0) return gone == 1 ? 1 : gone == -2 ? 0 : -1; /* a resolved token's lots are not judged */
    PyObject *exits = SLOT_ATTR(state, s_exits_attr);
    if (!exits) return -1;
    PyObject *converting = SLOT_ATTR(exits, s_converting);
    PyObject *exiting = converting ? SLOT_ATTR(exits, s_exiting) : NULL;
    PyObject *retry_at = exiting ? SLOT_ATTR(exits, s_retry_at) : NULL;
    PyObject *params = retry_at ? SLOT_ATTR(exits, s_params) : NULL;
    Py_DECREF(exits);
    PyObject *rules = params ? SLOT_ATTR(params, s_rules) : NULL;
    PyObject *fallback = rules ? SLOT_ATTR(params, s_default) : NULL;
    PyObject *rule = NULL, *book = NULL, *bidobj = NULL, *market = NULL;
    if (!fallback) {
        r = -1;
        goto out;
    }
    if (!PyDict_CheckExact(converting) || PyDict_GET_SIZE(converting) || !PyDict_CheckExact(exiting) ||
        !PyDict_CheckExact(retry_at) || !PyDict_CheckExact(rules))
        goto out; /* a conversion in flight, or mappings of another kind: _judge decides */
    int pending = PyDict_Contains(exiting, key);
    if (pending != 0) {
        r = pending < 0 ? -1 : 0;
        goto out;
    }
    PyObject *retry = PyDict_GetItemWithError(retry_at, key);
    if (retry) {
        long long due;
        int ok = i64_of(Py_NewRef(retry), &due);
        if (ok <= 0) {
            r = ok;
            goto out;
        }
        if (now < due) {
            r = 1;
            goto out;
        }
    } else if (PyErr_Occurred()) {
        r = -1;
        goto out;
    }
    PyObject *books = SLOT_ATTR(state, s_books);
    if (!books) {
        r = -1;
        goto out;
    }
    book = PyDict_CheckExact(books) ? Py_XNewRef(PyDict_GetItemWithError(books, token)) : NULL;
    int plain_books = PyDict_CheckExact(books);
    Py_DECREF(books);
    if (!book) {
        r = PyErr_Occurred() ? -1 : plain_books; /* no book: no bid */
        goto out;
    }
    if (Py_TYPE(book) != (PyTypeObject *)b_dense) goto out;
    PyObject *trusted = SLOT_ATTR(book, s_trusted);
    if (!trusted) {
        r = -1;
        goto out;
    }
    int t = PyObject_IsTrue(trusted);
    Py_DECREF(trusted);
    if (t <= 0) {
        r = t < 0 ? -1 : 1; /* an untrusted book shows no bid */
        goto out;
    }
    bidobj = SLOT_ATTR(book, s_top_bid);
    if (!bidobj) {
        r = -1;
        goto out;
    }
    if (bidobj == Py_None) {
        r = 1;
        goto out;
    }
    long long bid;
    r = i64_of(Py_NewRef(bidobj), &bid);
    if (r <= 0) goto out;
    PyObject *markets = SLOT_ATTR(state, s_markets);
    if (!markets) {
        r = -1;
        goto out;
    }
    PyObject *by_token = Py_TYPE(markets) == (PyTypeObject *)b_registry ? SLOT_ATTR(markets, s_by_token) : NULL;
    Py_DECREF(markets);
    if (!by_token || !PyDict_CheckExact(by_token)) {
        r = PyErr_Occurred() ? -1 : 0; /* a registry of another kind: _judge asks it */
        Py_XDECREF(by_token);
        goto out;
    }
    market = Py_XNewRef(PyDict_GetItemWithError(by_token, token));
    Py_DECREF(by_token);
    if (!market) {
        r = PyErr_Occurred() ? -1 : 1; /* no market: _judge places nothing */
        goto out;
    }
    rule = Py_XNewRef(PyDict_GetItemWithError(rules, label));
    if (!rule && PyErr_Occurred()) {
        r = -1;
        goto out;
    }
    if (!rule) rule = Py_NewRef(fallback);
    r = rule_quiet(rule, lot, market, bid, now);
out:
    Py_XDECREF(converting);
    Py_XDECREF(exiting);
    Py_XDECREF(retry_at);
    Py_XDECREF(params);
    Py_XDECREF(rules);
    Py_XDECREF(fallback);
    Py_XDECREF(rule);
    Py_XDECREF(book);
    Py_XDECREF(bidobj);
    Py_XDECREF(market);
    return r;
}

static int price_change_step(PyObject *state, PyObject *event, PyObject *now, PyObject *commands) {
    PyObject *a[12] = {NULL};
    PyObject *done = NULL;
    int rc = -1;
    PyObject *route = route_of(state, b_pc_type);
    if (!route) return -1;
    a[0] = SLOT_ATTR(state, s_books);
    a[1] = a[0] ? PyObject_GetAttr(event, s_changes) : NULL;
    a[2] = a[1] ? PyObject_GetAttr(event, s_ts_ms) : NULL;
    PyObject *exits = a[2] ? SLOT_ATTR(state, s_exits_attr) : NULL;
    a[7] = exits ? SLOT_ATTR(exits, s_watched) : NULL;
    Py_XDECREF(exits);
    PyObject *risk = a[7] ? SLOT_ATTR(state, s_risk) : NULL;
    PyObject *portfolio = risk ? SLOT_ATTR(risk, s_portfolio) : NULL;
    Py_XDECREF(risk);
    a[8] = portfolio ? SLOT_ATTR(portfolio, s_wallets) : NULL;
    Py_XDECREF(portfolio);
    a[11] = a[8] ? SLOT_ATTR(state, s_dq_seen) : NULL;
    if (!a[11]) goto done;
    a[3] = PyTuple_GET_ITEM(route, 0);
    a[4] = event;
    a[5] = state;
    a[6] = now;
    a[9] = b_unruled;
    a[10] = PyTuple_GET_ITEM(route, 1);
    if (!PyDict_Check(a[0]) || !PyTuple_Check(a[3]) || !PyAnySet_Check(a[7]) || !PyDict_Check(a[8]) ||
        !PyTuple_Check(a[10]) || !PyDict_Check(a[11])) {
        PyErr_SetString(PyExc_TypeError, "the engine state's books, route, watched tokens, wallets or dq_seen");
        goto done;
    }
    /* the lots whose exit rules cannot fire stay out, at an engine time that fits an int64 */
    int ovf = 0;
    Judge judge = {state, PyLong_CheckExact(now) ? PyLong_AsLongLongAndOverflow(now, &ovf) : (ovf = 1, 0)};
    if (judge.now == -1 && PyErr_Occurred()) goto done;
    done = price_change_impl(a, ovf ? NULL : &judge);
    if (!done) goto done;
    if (done != Py_None) {
        PyObject *largs[6] = {state, event, now, commands, done, a[10]};
        PyObject *r = PyObject_Vectorcall(b_left, largs, 6, NULL);
        if (!r) goto done;
        Py_DECREF(r);
    }
    rc = 0;
done:
    Py_XDECREF(done);
    Py_XDECREF(route);
    Py_XDECREF(a[0]);
    Py_XDECREF(a[1]);
    Py_XDECREF(a[2]);
    Py_XDECREF(a[7]);
    Py_XDECREF(a[8]);
    Py_XDECREF(a[11]);
    return rc;
}

static PyObject *step(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "step(state, event, now_ms) takes 3 arguments");
        return NULL;
    }
    if (!b_handlers) {
        PyErr_SetString(PyExc_RuntimeError, "core._market.step is not bound (pipeline.py binds it)");
        return NULL;
    }
    PyObject *state = args[0], *event = args[1], *now = args[2];
    PyObject *commands = PyList_New(0);
    if (!commands) return NULL;
    PyObject *cargs[3] = {state, now, commands};
    PyObject *timers = SLOT_ATTR(state, s_timers);
    int d = timers ? due(timers, now) : -1;
    Py_XDECREF(timers);
    if (d > 0) {
        PyObject *r = PyObject_Vectorcall(b_slices, cargs, 3, NULL);
        d = r ? 0 : -1;
        Py_XDECREF(r);
    }
    if (d < 0) goto fail;
    PyObject *exits = SLOT_ATTR(state, s_exits_attr);
    if (!exits) goto fail;
    PyObject *rules = SLOT_ATTR(exits, s_timers);
    d = rules ? due(rules, now) : -1;
    Py_XDECREF(rules);
    if (d == 0) {
        PyObject *converts = SLOT_ATTR(exits, s_convert_timers);
        d = converts ? due(converts, now) : -1;
        Py_XDECREF(converts);
    }
    Py_DECREF(exits);
    if (d > 0) {
        PyObject *r = PyObject_Vectorcall(b_exits, cargs, 3, NULL);
        d = r ? 0 : -1;
        Py_XDECREF(r);
    }
    if (d < 0) goto fail;
    PyObject *handler = PyDict_GetItemWithError(b_handlers, (PyObject *)Py_TYPE(event));
    if (!handler) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, (PyObject *)Py_TYPE(event));
        goto fail;
    }
    if ((handler == b_on_pc || handler == b_on_lt) &&
        PyDict_GetItemWithError(b_mh_globals, s_price_change_name) == b_pc_fn &&
        PyDict_GetItemWithError(b_book_globals, s_make_book) == b_dense) {
        if (handler == b_on_pc && Py_TYPE(event) == (PyTypeObject *)b_pc_type) {
            if (price_change_step(state, event, now, commands) < 0) goto fail;
            return commands;
        }
        if (handler == b_on_lt && Py_TYPE(event) == (PyTypeObject *)b_lt_type) {
            PyObject *markets = SLOT_ATTR(state, s_markets);
            int plain = markets && Py_TYPE(markets) == (PyTypeObject *)b_registry;
            Py_XDECREF(markets);
            if (!markets) goto fail;
            if (plain) {
                if (last_trade_step(state, event, now, commands) < 0) goto fail;
                return commands;
            }
        }
    }
    if (PyErr_Occurred()) goto fail;
    Py_INCREF(handler);
    PyObject *hargs[4] = {state, event, now, commands};
    PyObject *r = PyObject_Vectorcall(handler, hargs, 4, NULL);
    Py_DECREF(handler);
    if (!r) goto fail;
    Py_DECREF(r);
    return commands;
fail:
    Py_DECREF(commands);
    return NULL;
}

/* bind_step(handlers, release_due_slices, release_due_exits, PriceChange, on_price_change,
 *           price_change_left, route_for, market_handlers_globals, book_globals, DenseBook, unruled,
 *           LastTrade, on_last_trade, react_left, MarketRegistry) */
static PyObject *bind_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 15 || !PyDict_Check(args[0]) || !PyType_Check(args[3]) || !PyDict_Check(args[7]) ||
        !PyDict_Check(args[8]) || !PyUnicode_Check(args[10]) || !PyType_Check(args[11]) ||
        !PyType_IsSubtype((PyTypeObject *)args[11], &PyTuple_Type) || !PyType_Check(args[14])) {
        PyErr_SetString(PyExc_TypeError,
                        "bind_step(handlers: dict, release_due_slices, release_due_exits, PriceChange: type, "
                        "on_price_change, price_change_left, route_for, market_handlers globals: dict, book "
                        "globals: dict, DenseBook, unruled: str, LastTrade: NamedTuple, on_last_trade, "
                        "react_left, MarketRegistry: type) takes 15 arguments");
        return NULL;
    }
    PyObject *fields = PyObject_GetAttrString(args[11], "_fields");
    PyObject *token = PyUnicode_InternFromString("token_id");
    Py_ssize_t at = fields && token && PyTuple_Check(fields) ? PySequence_Index(fields, token) : -1;
    Py_XDECREF(fields);
    Py_XDECREF(token);
    if (at < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "LastTrade must be a NamedTuple with a token_id");
        return NULL;
    }
    PyObject *pc_fn = PyObject_GetAttrString(module, "price_change");
    if (!pc_fn) return NULL;
    PyObject **slots[] = {&b_handlers, &b_slices, &b_exits, &b_pc_type, &b_on_pc,       &b_left,      &b_route_for, &b_mh_globals,
                          &b_book_globals, &b_dense, &b_unruled, &b_lt_type, &b_on_lt, &b_react_left, &b_registry};
    for (Py_ssize_t i = 0; i < 15; i++) Py_XSETREF(*slots[i], Py_NewRef(args[i]));
    b_lt_token = at;
    Py_XSETREF(b_pc_fn, pc_fn);
    Py_RETURN_NONE;
}

static PyMethodDef market_functions[] = {
    {"price_change", (PyCFunction)(void (*)(void))price_change, METH_FASTCALL, NULL},
    {"step", (PyCFunction)(void (*)(void))step, METH_FASTCALL, NULL},
    {"bind_step", (PyCFunction)(void (*)(void))bind_step, METH_FASTCALL, NULL},
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
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {{&s_timers, "timers"},      {&s_convert_timers, "convert_timers"},
                 {&s_exits_attr, "exits"},   {&s_books, "books"},
                 {&s_changes, "changes"},    {&s_ts_ms, "ts_ms"},
                 {&s_routes, "routes"},      {&s_routes_of, "routes_of"},
                 {&s_signals, "signals"},    {&s_watched, "watched"},
                 {&s_risk, "risk"},          {&s_portfolio, "portfolio"},
                 {&s_wallets, "wallets"},    {&s_dq_seen, "dq_seen"},
                 {&s_price_change_name, "_price_change"}, {&s_make_book, "_make_book"},
                 {&s_markets, "markets"}, {&s_by_token, "_by_token"}, {&s_last_trades, "last_trades"},
                 {&s_resolved, "resolved"}, {&s_converting, "converting"}, {&s_exiting, "exiting"},
                 {&s_retry_at, "retry_at"}, {&s_params, "params"}, {&s_rules, "rules"}, {&s_default, "default"},
                 {&s_top_bid, "top_bid"}, {&s_trusted, "trusted"}, {&s_take_profit, "take_profit"},
                 {&s_stop_loss, "stop_loss_micro"}, {&s_max_hold, "max_hold_ms"},
                 {&s_before_end, "exit_before_end_ms"}, {&s_fair_value, "fair_value"}, {&s_cost, "cost"},
                 {&s_opened, "opened_ms"}, {&s_end_ms, "end_ms"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!(*names[i].slot = PyUnicode_InternFromString(names[i].name))) return NULL;
    return PyModule_Create(&marketmodule);
}

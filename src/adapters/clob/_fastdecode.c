/* A compiled fast path for the market channel's common frames: `price_change` messages in their current
 * form (`price_changes[]` entries), `last_trade_price` and `book` messages, alone or in a JSON array,
 * decoded straight into the same PriceChange / BookDelta, LastTrade and BookSnapshot / Level tuples
 * that parsing.py builds.
 *
 * Theory of operation: this is a STRICT SUBSET of parsing.parse_market_line. It takes only the plain
 * shape it fully understands and returns None for anything else, and the caller then runs the msgspec
 * path, which yields its own events or MalformedMessage exactly as without this module. So the fast
 * path never needs to explain a failure, and its output equals the Python path's on every input as long
 * as every frame it accepts is one the Python path maps to the same events. FeedKeeper, at the end,
 * is the live feed's BookKeeper.on_frame on the same frames: decoded and applied to its books in one
 * call, with the raw strings its book hash checks and trade prints need read from the frame itself.
 *
 * What it accepts (anything else is None):
 *   frame    := ws (message | "[" ws message (ws "," ws message)* ws "]") ws      (ws: JSON's 4 bytes)
 *   message  := an object whose keys, each once and in any order, are exactly those of one of:
 *     price_change:      event_type, market, timestamp, price_changes (an array of entries)
 *     last_trade_price:  event_type, asset_id, market, timestamp, price, size, side, and optionally
 *                        fee_rate_bps and transaction_hash (either may be null)
 *     book:              event_type, asset_id, market, timestamp, bids, asks (arrays of levels), and
 *                        optionally hash, tick_size and last_trade_price (any of them may be null)
 *   entry    := an object with asset_id, price, size, side and optionally hash, best_bid, best_ask,
 *               each at most once, in any order; best_bid / best_ask may be null
 *   level    := an object with exactly price and size, once each, in either order
 * Every value is a string of printable ASCII without escapes (or null where allowed). Values are
 * converted exactly as parsing.py does: decimals as core.units.parse_micro reads them (optional "-",
 * at most MAX_WHOLE_DIGITS whole digits, at most 6 decimals unless the rest are zeros), prices in
 * [0, ONE] (trade prices strictly inside), sizes in [0, MAX_AMOUNT_MICRO], best_bid / best_ask "" or
 * null -> None, side "BUY" / "SELL" -> Side members, timestamp 1..13 ASCII digits within
 * [MIN_TS_MS, MAX_TS_MS], fee_rate_bps absent, null or "" -> 0 else 1..4 ASCII digits (parsing's
 * _MAX_FEE_BPS is 9999), book hash absent or null -> "", tick_size absent, null or "" -> None else one
 * of core.market.VALID_TICKS; a value that would be malformed makes the frame None (the Python path
 * then names the fault).
 *
 * Safety on hostile bytes: the parser reads through one cursor that every step checks against the end
 * of the buffer, never recurses (the shape is flat), and allocates only Python objects it releases on
 * every exit path. The constants and types come from polysnipe.core at import, so they cannot drift.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "_book_api.h"

/* -- what polysnipe.core provides, fetched once at import ----------------------------------------- */
static PyTypeObject *BookDeltaType;
static PyTypeObject *PriceChangeType;
static PyTypeObject *LastTradeType;
static PyTypeObject *BookSnapshotType;
static PyTypeObject *LevelType;
/* core.market.VALID_TICKS */
#define MAX_TICKS 16
static long long Ticks[MAX_TICKS];
static Py_ssize_t NTicks;
static PyObject *SideBuy;
static PyObject *SideSell;
static PyObject *EmptyStr;
static long long MinTsMs, MaxTsMs, One, MaxAmount;
static Py_ssize_t MaxWholeDigits;

/* Prices repeat constantly and are usually multiples of 100 micro-units (the 0.0001 grid): their ints
 * are kept here, filled on first use, so most deltas allocate no int for the price. */
#define GRID 100
static PyObject **GridInts; /* One / GRID + 1 slots */

/* -- cursor ----------------------------------------------------------------------------------------- */
typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} Cur;

static inline void skip_ws(Cur *c) {
    /* the venue sends no whitespace: one compare settles the usual byte (every JSON space is <= ' ') */
    while (c->p < c->end && *c->p <= ' ' && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* Consume `ch` after optional whitespace; 0 when the next byte is something else. */
static inline int eat(Cur *c, unsigned char ch) {
    if (c->p < c->end && *c->p == ch) { /* the usual case, without whitespace: one compare */
        c->p++;
        return 1;
    }
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* The bytes of `w` that end or spoil a plain string (a quote, a backslash, a control byte below 0x20 or
 * a non-ASCII byte), flagged by their high bits; 0 when there is none. The classic SWAR tests:
 * `has_zero(w ^ c)` finds a byte equal to c, `(w - 0x20..) & ~w & 0x80..` a byte below 0x20; both are
 * exact as to whether one exists and where the first is. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline uint64_t word_special(uint64_t w) {
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w) | w) & HIGHS;
}

/* A JSON string of printable ASCII without escapes: its contents in [*s, *s + *n). 0 otherwise (an
 * escape, a control byte, a non-ASCII byte or no closing quote). Token ids and hashes are most of a
 * frame's bytes, so the plain run is skipped 8 bytes at a time. */
/* (inlined at every call: most of a frame's strings are short, and a call costs as much as their scan) */
static inline __attribute__((always_inline)) int read_str(Cur *c, const unsigned char **s, Py_ssize_t *n) {
    if (c->p >= c->end || *c->p != '"') { /* (the quote first: the venue sends no whitespace) */
        skip_ws(c);
        if (c->p >= c->end || *c->p != '"')
            return 0;
    }
    const unsigned char *q = c->p + 1;
    const unsigned char *start = q;
#ifdef __SSE2__
    /* 16 bytes a step: a signed compare below 0x20 flags the control and the non-ASCII bytes at once */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (c->end - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)q);
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                   _mm_cmplt_epi8(v, space));
        unsigned special = (unsigned)_mm_movemask_epi8(bad);
        if (special) {
            q += __builtin_ctz(special);
            if (*q != '"')
                return 0;
            *s = start;
            *n = q - start;
            c->p = q + 1;
            return 1;
        }
        q += 16;
    }
#endif
    while (c->end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        uint64_t special = word_special(w);
        if (special) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* A flag is false only above a true one (a borrow runs upwards), so the lowest flag is the
             * first byte that ends or spoils the string: the string is plain iff that byte is the quote. */
            q += __builtin_ctzll(special) >> 3;
            if (*q != '"')
                return 0;
            *s = start;
            *n = q - start;
            c->p = q + 1;
            return 1;
#else
            break;
#endif
        }
        q += 8;
    }
    while (q < c->end) {
        unsigned char ch = *q;
        if (ch == '"') {
            *s = start;
            *n = q - start;
            c->p = q + 1;
            return 1;
        }
        if (ch < 0x20 || ch == '\\' || ch >= 0x80)
            return 0;
        q++;
    }
    return 0;
}

/* `null`, consumed when it is next. */
static inline int read_null(Cur *c) {
    skip_ws(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return 1;
    }
    return 0;
}

static inline int is(const unsigned char *s, Py_ssize_t n, const char *lit, Py_ssize_t litn) {
    return n == litn && memcmp(s, lit, (size_t)litn) == 0;
}
#define IS(s, n, lit) is((s), (n), (lit), (Py_ssize_t)(sizeof(lit) - 1))

/* -- values ----------------------------------------------------------------------------------------- */
/* core.units.parse_micro on [s, s + n), then the range [0, high]; 0 when parse_micro would raise or the
 * value falls outside (the Python path then reports it). A leading "-" is kept only for zero ("-0"),
 * the one negative spelling inside the range. */
static int decimal_micro(const unsigned char *s, Py_ssize_t n, long long high, long long *out) {
    const unsigned char *p = s, *end = s + n;
    int negative = p < end && *p == '-';
    p += negative;
    /* the whole part is bounded by high (at most 10**18 here): a digit that takes it past high's whole
     * units settles the answer at once (it only grows from there), so it never overflows */
    const long long whole_max = high / 1000000;
    const unsigned char *whole = p;
    long long w = 0;
    unsigned d;
    while (p < end && (d = (unsigned)(*p - '0')) < 10) {
        w = w * 10 + d;
        if (w > whole_max)
            return 0;
        p++;
    }
    Py_ssize_t whole_n = p - whole;
    Py_ssize_t frac_n = 0;
    long long f = 0;
    if (p < end && *p == '.') {
        const unsigned char *frac = ++p;
        while (p < end && (d = (unsigned)(*p - '0')) < 10) {
            if (p - frac < 6)
                f = f * 10 + d;
            else if (d)
                return 0; /* a seventh decimal that is not zero */
            p++;
        }
        frac_n = p - frac;
    }
    if (p != end || (whole_n == 0 && frac_n == 0) || whole_n > MaxWholeDigits)
        return 0;
    static const long long scale[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
    long long v = w * 1000000 + f * scale[frac_n < 6 ? frac_n : 6];
    if (v > high || (negative && v != 0))
        return 0;
    *out = v;
    return 1;
}

/* decimal_micro(s, n, One) for a price string inside the frame that ends at `end`, remembered: a feed
 * spells a few hundred prices over and over, and every delta carries three. A string of at most 8
 * bytes is its own key (its bytes, zero-padded: a plain string holds no zero byte, so no two share
 * one), read in one load when 8 bytes of the frame follow it (the closing quote at least does); only
 * prices that convert are kept, so a miss simply converts again. Direct-mapped, a collision replaces
 * the slot. */
#define PRICE_SLOTS 1024
static struct {
    uint64_t key; /* 0: empty (no key is 0: a string here has 1 to 8 nonzero bytes) */
    long long value;
} PriceCache[PRICE_SLOTS];

static inline int price_micro(const unsigned char *s, Py_ssize_t n, const unsigned char *end, long long *out) {
    if (n < 1 || n > 8 || end - s < 8)
        return decimal_micro(s, n, One, out);
    uint64_t key;
    memcpy(&key, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n < 8)
        key &= (1ULL << (8 * n)) - 1; /* the string's own bytes, the first n in memory */
#else
    return decimal_micro(s, n, One, out);
#endif
    size_t slot = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 54); /* the top 10 bits: PRICE_SLOTS == 1 << 10 */
    if (PriceCache[slot].key == key) {
        *out = PriceCache[slot].value;
        return 1;
    }
    if (!decimal_micro(s, n, One, out))
        return 0;
    PriceCache[slot].key = key;
    PriceCache[slot].value = *out;
    return 1;
}

static PyObject *price_int(long long v) {
    if (v % GRID == 0) {
        PyObject **slot = &GridInts[v / GRID];
        if (*slot == NULL && (*slot = PyLong_FromLongLong(v)) == NULL)
            return NULL;
        Py_INCREF(*slot);
        return *slot;
    }
    return PyLong_FromLongLong(v);
}

/* A decoded micro-unit amount that may be absent (v < 0 marks absent): None or the int, new reference. */
static PyObject *optional_micro(long long v) {
    if (v < 0) {
        Py_INCREF(Py_None);
        return Py_None;
    }
    return price_int(v);
}

/* An ASCII str of [s, s + n): the caller checked every byte is below 0x80. */
static PyObject *ascii_str(const unsigned char *s, Py_ssize_t n) {
    PyObject *u = PyUnicode_New(n, 127);
    if (u != NULL)
        memcpy(PyUnicode_1BYTE_DATA(u), s, (size_t)n);
    return u;
}

/* Token and market ids repeat across frames (a feed carries a few hundred tokens), and every consumer
 * looks them up in dicts: one shared str per id spares the allocation here and the hash computation
 * at every lookup downstream (a str caches its hash). A direct-mapped table keyed by a mix of the id's
 * first and last 8 bytes and its length; a collision just replaces the slot. Ids shorter than 8 bytes
 * or longer than ID_MAX are not real ids (tokens have at most 78 digits, markets 66 characters) and get
 * a str of their own, so hostile ones cannot make the table hold megabytes. */
#define ID_SLOTS 1024
#define ID_MAX 128
static PyObject *IdCache[ID_SLOTS];

static PyObject *id_str(const unsigned char *s, Py_ssize_t n) {
    if (n < 8 || n > ID_MAX)
        return ascii_str(s, n);
    uint64_t head, tail;
    memcpy(&head, s, 8);
    memcpy(&tail, s + n - 8, 8);
    uint64_t h = (tail ^ (head * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)n) * 0xBF58476D1CE4E5B9ULL;
    PyObject **slot = &IdCache[h >> 54]; /* the top 10 bits: ID_SLOTS == 1 << 10 */
    PyObject *hit = *slot;
    if (hit != NULL && PyUnicode_GET_LENGTH(hit) == n && memcmp(PyUnicode_1BYTE_DATA(hit), s, (size_t)n) == 0) {
        Py_INCREF(hit);
        return hit;
    }
    PyObject *u = ascii_str(s, n);
    if (u == NULL)
        return NULL;
    Py_INCREF(u);
    Py_XSETREF(*slot, u);
    return u;
}

/* A tuple subclass instance with these items, references stolen: what tuple.__new__(cls, items) gives
 * the NamedTuples, without the Python-level constructor. Releases the items on failure. */
static PyObject *new_tuple(PyTypeObject *type, PyObject **items, Py_ssize_t n) {
    PyObject *t = type->tp_alloc(type, n);
    if (t == NULL) {
        for (Py_ssize_t i = 0; i < n; i++)
            Py_XDECREF(items[i]);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(t, i, items[i]);
    return t;
}

/* -- one price_changes[] entry ---------------------------------------------------------------------- */
enum { K_ASSET = 1, K_PRICE = 2, K_SIZE = 4, K_SIDE = 8, K_HASH = 16, K_BID = 32, K_ASK = 64 };
#define K_REQUIRED (K_ASSET | K_PRICE | K_SIZE | K_SIDE)

/* Is `lit` (a string literal) next in the buffer? Then it is consumed. A constant length lets the
 * compiler compare it in a load or two. */
#define AT(c, lit) \
    ((c)->end - (c)->p >= (Py_ssize_t)(sizeof(lit) - 1) && memcmp((c)->p, (lit), sizeof(lit) - 1) == 0 && \
     ((c)->p += sizeof(lit) - 1, 1))

/* entry_key's and message_key's shared steps: the next token can be a quoted key of two bytes or
 * more (whitespace skipped only when the quote is not next), and a matched key must be followed by ':' */
static inline int key_ahead(Cur *c) {
    if (c->p >= c->end || *c->p != '"')
        skip_ws(c);
    return c->end - c->p >= 2;
}

static inline unsigned key_done(Cur *c, unsigned key) { return key && eat(c, ':') ? key : 0; }

/* An entry's key and the ':' after it: its K_ bit, 0 when the next token is not one of those keys (a
 * string that is not one, an escaped spelling, no string at all: none of which read_entry takes). Every
 * key is matched with its quotes, so the string is exactly the key; the byte after the opening quote
 * picks the one candidate. This is the per-key cost of every delta, hence no general string read. */
static inline unsigned entry_key(Cur *c) {
    if (!key_ahead(c))
        return 0;
    unsigned key = 0;
    switch (c->p[1]) {
    case 'a':
        key = AT(c, "\"asset_id\"") ? K_ASSET : 0;
        break;
    case 'p':
        key = AT(c, "\"price\"") ? K_PRICE : 0;
        break;
    case 's':
        key = AT(c, "\"size\"") ? K_SIZE : AT(c, "\"side\"") ? K_SIDE : 0;
        break;
    case 'h':
        key = AT(c, "\"hash\"") ? K_HASH : 0;
        break;
    case 'b':
        key = AT(c, "\"best_bid\"") ? K_BID : AT(c, "\"best_ask\"") ? K_ASK : 0;
        break;
    }
    return key_done(c, key);
}

/* 1 and *out a new BookDelta; 0 when the entry is not the plain shape; -1 with an exception set. */
static int read_entry(Cur *c, PyObject **out) {
    const unsigned char *asset = NULL, *hash = NULL;
    Py_ssize_t asset_n = 0, hash_n = 0;
    long long price = 0, size = 0, bid = -1, ask = -1; /* -1: None */
    PyObject *side = NULL;
    unsigned seen = 0;
    if (!eat(c, '{'))
        return 0;
    for (;;) {
        unsigned key = entry_key(c);
        if (key == 0 || (seen & key))
            return 0;
        seen |= key;
        if ((key == K_BID || key == K_ASK) && read_null(c)) {
            /* null: None, as the absent field */
        } else {
            const unsigned char *v;
            Py_ssize_t vn;
            if (!read_str(c, &v, &vn))
                return 0;
            switch (key) {
            case K_ASSET:
                asset = v;
                asset_n = vn;
                break;
            case K_PRICE:
                if (!price_micro(v, vn, c->end, &price))
                    return 0;
                break;
            case K_SIZE:
                if (!decimal_micro(v, vn, MaxAmount, &size))
                    return 0;
                break;
            case K_SIDE:
                if (IS(v, vn, "BUY"))
                    side = SideBuy;
                else if (IS(v, vn, "SELL"))
                    side = SideSell;
                else
                    return 0;
                break;
            case K_HASH:
                hash = v;
                hash_n = vn;
                break;
            case K_BID: /* "" is how the venue spells an empty side: None */
                if (vn && !price_micro(v, vn, c->end, &bid))
                    return 0;
                break;
            default: /* K_ASK */
                if (vn && !price_micro(v, vn, c->end, &ask))
                    return 0;
                break;
            }
        }
        if (eat(c, ','))
            continue;
        if (eat(c, '}'))
            break;
        return 0;
    }
    if ((seen & K_REQUIRED) != K_REQUIRED)
        return 0;

    PyObject *items[7];
    PyObject *token = id_str(asset, asset_n);
    if (token == NULL)
        return -1;
    items[0] = token;
    Py_INCREF(side);
    items[1] = side;
    items[2] = price_int(price);
    items[3] = PyLong_FromLongLong(size);
    if (hash_n) {
        items[4] = ascii_str(hash, hash_n);
    } else {
        Py_INCREF(EmptyStr);
        items[4] = EmptyStr;
    }
    items[5] = optional_micro(bid);
    items[6] = optional_micro(ask);
    for (int i = 2; i < 7; i++) {
        if (items[i] == NULL) {
            for (int j = 0; j < 7; j++)
                Py_XDECREF(items[j]);
            return -1;
        }
    }
    if ((*out = new_tuple(BookDeltaType, items, 7)) == NULL)
        return -1;
    return 1;
}

/* -- one message ------------------------------------------------------------------------------------ */

/* A growable array of new references, on the stack while it is short. */
typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
    PyObject *inline_items[32];
} Refs;

static void refs_init(Refs *r) {
    r->items = r->inline_items;
    r->n = 0;
    r->cap = 32;
}

static void refs_clear(Refs *r) {
    for (Py_ssize_t i = 0; i < r->n; i++)
        Py_DECREF(r->items[i]);
    if (r->items != r->inline_items)
        PyMem_Free(r->items);
    refs_init(r);
}

static int refs_push(Refs *r, PyObject *o) {
    if (r->n == r->cap) {
        Py_ssize_t cap = r->cap * 2;
        PyObject **items = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
        if (items == NULL) {
            Py_DECREF(o);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(items, r->items, (size_t)r->n * sizeof(PyObject *));
        if (r->items != r->inline_items)
            PyMem_Free(r->items);
        r->items = items;
        r->cap = cap;
    }
    r->items[r->n++] = o;
    return 0;
}

/* One price level of a book: an object with exactly price and size, each once, in either order.
 * 1 and *out a new Level; 0 when it is not that shape; -1 with an exception set. */
static int read_level(Cur *c, PyObject **out) {
    const unsigned char *s;
    Py_ssize_t n;
    long long price = 0, size = 0;
    unsigned seen = 0;
    if (!eat(c, '{'))
        return 0;
    for (;;) {
        if (!read_str(c, &s, &n) || !eat(c, ':'))
            return 0;
        unsigned key = IS(s, n, "price") ? 1 : IS(s, n, "size") ? 2 : 0;
        if (key == 0 || (seen & key))
            return 0;
        seen |= key;
        const unsigned char *v;
        Py_ssize_t vn;
        if (!read_str(c, &v, &vn) ||
            !(key == 1 ? price_micro(v, vn, c->end, &price) : decimal_micro(v, vn, MaxAmount, &size)))
            return 0;
        if (eat(c, ','))
            continue;
        if (eat(c, '}'))
            break;
        return 0;
    }
    if (seen != 3)
        return 0;
    PyObject *items[2] = {price_int(price), PyLong_FromLongLong(size)};
    if (items[0] == NULL || items[1] == NULL) {
        Py_XDECREF(items[0]);
        Py_XDECREF(items[1]);
        return -1;
    }
    return (*out = new_tuple(LevelType, items, 2)) == NULL ? -1 : 1;
}

/* A JSON array of price_changes[] entries (read_entry) or of book levels (read_level) into `refs`:
 * 1, 0 when it is not that shape, -1 with an exception set. */
static int read_array(Cur *c, int (*read_item)(Cur *, PyObject **), Refs *refs) {
    if (!eat(c, '['))
        return 0;
    if (eat(c, ']'))
        return 1;
    for (;;) {
        PyObject *item;
        int r = read_item(c, &item);
        if (r <= 0)
            return r;
        if (refs_push(refs, item) < 0)
            return -1;
        if (eat(c, ','))
            continue;
        return eat(c, ']') ? 1 : 0;
    }
}

/* A tuple of the references in `refs`, which it takes over (refs is left empty). */
static PyObject *refs_tuple(Refs *r) {
    PyObject *t = PyTuple_New(r->n);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < r->n; i++)
        PyTuple_SET_ITEM(t, i, r->items[i]);
    r->n = 0;
    return t;
}

/* What FeedKeeper needs of a message besides its event, one per event decode_frame makes (when it is
 * asked to collect them): the message's own JSON text, which a case it leaves to Python is decoded
 * from again and a book hash check reads its strings from, and the raw values it keeps. All point into
 * the frame, which the caller holds for as long as it reads them. */
typedef struct {
    const unsigned char *start, *end; /* the message's JSON text */
    const unsigned char *text;        /* LastTrade: its price as sent; BookSnapshot: its last_trade_price */
    Py_ssize_t text_n;
    long long ts;                     /* the event's ts_ms, as decoded (no int to read it back from) */
    unsigned char has_text;           /* a BookSnapshot's last_trade_price is present and not null */
    unsigned char has_tick;           /* a BookSnapshot's tick_size is present and not null */
} Info;

/* A growable array of Info, on the stack while it is short. */
typedef struct {
    Info *items;
    Py_ssize_t n, cap;
    Info inline_items[16];
} Infos;

static void infos_init(Infos *r) {
    r->items = r->inline_items;
    r->n = 0;
    r->cap = 16;
}

static void infos_clear(Infos *r) {
    if (r->items != r->inline_items)
        PyMem_Free(r->items);
    infos_init(r);
}

static int infos_push(Infos *r, const Info *info) {
    if (r->n == r->cap) {
        Info *items = PyMem_Malloc((size_t)r->cap * 2 * sizeof(Info));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(items, r->items, (size_t)r->n * sizeof(Info));
        if (r->items != r->inline_items)
            PyMem_Free(r->items);
        r->items = items;
        r->cap *= 2;
    }
    r->items[r->n++] = *info;
    return 0;
}

/* The message types the fast path maps, as the bits of decode_frame's `kinds`. */
enum { T_PRICE_CHANGE = 1, T_LAST_TRADE = 2, T_BOOK = 4 };

/* The top-level keys, one bit each. Keys come in any order and `event_type` need not be first, so
 * every value is read (and checked as far as it can be alone) before the type decides which keys it
 * allows and needs, and how the values convert. */
enum {
    M_TYPE = 1 << 0, M_MARKET = 1 << 1, M_TS = 1 << 2, M_CHANGES = 1 << 3, M_ASSET = 1 << 4,
    M_PRICE = 1 << 5, M_SIZE = 1 << 6, M_SIDE = 1 << 7, M_FEE = 1 << 8, M_TX = 1 << 9,
    M_BIDS = 1 << 10, M_ASKS = 1 << 11, M_HASH = 1 << 12, M_TICK = 1 << 13, M_LTP = 1 << 14,
};
#define PC_NEEDS (M_TYPE | M_MARKET | M_TS | M_CHANGES)
#define PC_ALLOWS PC_NEEDS
/* _last_trade: fee_rate_bps and transaction_hash may be absent */
#define LT_NEEDS (M_TYPE | M_ASSET | M_MARKET | M_TS | M_PRICE | M_SIZE | M_SIDE)
#define LT_ALLOWS (LT_NEEDS | M_FEE | M_TX)
/* _snapshot: hash, tick_size and the summary's last_trade_price (not mapped) may be absent */
#define BOOK_NEEDS (M_TYPE | M_ASSET | M_MARKET | M_TS | M_BIDS | M_ASKS)
#define BOOK_ALLOWS (BOOK_NEEDS | M_HASH | M_TICK | M_LTP)
/* keys whose value may be null, which the Python path reads as absent */
#define M_NULLABLE (M_FEE | M_TX | M_HASH | M_TICK | M_LTP)

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    int null;
} Raw;

/* A message's key and the ':' after it: its M_ bit, 0 when the next token is not one of those keys (as
 * entry_key: matched with its quotes, picked by the byte after the opening quote). */
static inline unsigned message_key(Cur *c) {
    if (!key_ahead(c))
        return 0;
    unsigned key = 0;
    switch (c->p[1]) {
    case 'e':
        key = AT(c, "\"event_type\"") ? M_TYPE : 0;
        break;
    case 'm':
        key = AT(c, "\"market\"") ? M_MARKET : 0;
        break;
    case 't':
        key = AT(c, "\"timestamp\"")          ? M_TS
              : AT(c, "\"tick_size\"")        ? M_TICK
              : AT(c, "\"transaction_hash\"") ? M_TX
                                               : 0;
        break;
    case 'p':
        key = AT(c, "\"price_changes\"") ? M_CHANGES : AT(c, "\"price\"") ? M_PRICE : 0;
        break;
    case 'a':
        key = AT(c, "\"asset_id\"") ? M_ASSET : AT(c, "\"asks\"") ? M_ASKS : 0;
        break;
    case 's':
        key = AT(c, "\"size\"") ? M_SIZE : AT(c, "\"side\"") ? M_SIDE : 0;
        break;
    case 'f':
        key = AT(c, "\"fee_rate_bps\"") ? M_FEE : 0;
        break;
    case 'b':
        key = AT(c, "\"bids\"") ? M_BIDS : 0;
        break;
    case 'h':
        key = AT(c, "\"hash\"") ? M_HASH : 0;
        break;
    case 'l':
        key = AT(c, "\"last_trade_price\"") ? M_LTP : 0;
        break;
    }
    return key_done(c, key);
}

/* The index of a key's bit, for its slot in read_message's `raw`. */
static inline int key_index(unsigned key) { return __builtin_ctz(key); }

/* 1 and the message's event appended to `events` (nothing for a price_change without entries, as
 * the Python path does), and its Info to `infos` when that is not NULL; 0 when it is not the plain
 * shape of a type in `kinds`; -1 with an exception set. */
static int read_message(Cur *c, PyObject *events, unsigned kinds, Infos *infos) {
    Raw raw[15];
    long long ts = 0;
    unsigned seen = 0, type = 0, allows = ~0u;
    PyObject *side = NULL, *event = NULL;
    int rc = 0;
    Refs deltas, bids, asks;
    Info info = {0};
    refs_init(&deltas);
    refs_init(&bids);
    refs_init(&asks);
    skip_ws(c);
    info.start = c->p;
    if (!eat(c, '{'))
        return 0;
    for (;;) {
        unsigned key = message_key(c);
        if (key == 0 || (seen & key) || !(allows & key))
            goto done;
        seen |= key;
        if (key == M_CHANGES || key == M_BIDS || key == M_ASKS) {
            int r = key == M_CHANGES ? read_array(c, read_entry, &deltas)
                                     : read_array(c, read_level, key == M_BIDS ? &bids : &asks);
            if (r <= 0) {
                rc = r;
                goto done;
            }
        } else {
            Raw *v = &raw[key_index(key)];
            v->null = (key & M_NULLABLE) && read_null(c);
            if (!v->null && !read_str(c, &v->p, &v->n))
                goto done;
            if (key == M_TYPE) {
                if (IS(v->p, v->n, "price_change"))
                    type = T_PRICE_CHANGE, allows = PC_ALLOWS;
                else if (IS(v->p, v->n, "last_trade_price"))
                    type = T_LAST_TRADE, allows = LT_ALLOWS;
                else if (IS(v->p, v->n, "book"))
                    type = T_BOOK, allows = BOOK_ALLOWS;
                if (!(type & kinds) || (seen & ~allows))
                    goto done;
            } else if (key == M_TS) { /* epoch ms as ASCII digits, at most as many as MAX_TS_MS has */
                if (v->n < 1 || v->n > 13)
                    goto done;
                for (Py_ssize_t i = 0; i < v->n; i++) {
                    if (v->p[i] < '0' || v->p[i] > '9')
                        goto done;
                    ts = ts * 10 + (v->p[i] - '0');
                }
                if (ts < MinTsMs || ts > MaxTsMs)
                    goto done;
            } else if (key == M_SIDE) {
                if (IS(v->p, v->n, "BUY"))
                    side = SideBuy;
                else if (IS(v->p, v->n, "SELL"))
                    side = SideSell;
                else
                    goto done;
            }
        }
        if (eat(c, ','))
            continue;
        if (eat(c, '}'))
            break;
        goto done;
    }
    Raw *market = &raw[key_index(M_MARKET)], *asset = &raw[key_index(M_ASSET)];
    if (type == T_PRICE_CHANGE) {
        if (seen != PC_NEEDS)
            goto done;
        rc = 1;
        if (deltas.n == 0)
            goto done;
        PyObject *items[3] = {PyLong_FromLongLong(ts), id_str(market->p, market->n), refs_tuple(&deltas)};
        if (items[0] == NULL || items[1] == NULL || items[2] == NULL) {
            for (int j = 0; j < 3; j++)
                Py_XDECREF(items[j]);
            rc = -1;
            goto done;
        }
        event = new_tuple(PriceChangeType, items, 3);
    } else if (type == T_LAST_TRADE) {
        long long price, size, fee = 0;
        if ((seen & LT_NEEDS) != LT_NEEDS)
            goto done;
        Raw *p = &raw[key_index(M_PRICE)], *q = &raw[key_index(M_SIZE)], *f = &raw[key_index(M_FEE)];
        /* _trade_price: a level price strictly inside (0, 1); _size */
        if (!decimal_micro(p->p, p->n, One, &price) || price <= 0 || price >= One ||
            !decimal_micro(q->p, q->n, MaxAmount, &size))
            goto done;
        /* fee_rate_bps: absent, null or "" is 0; else 1..4 ASCII digits, all within [0, _MAX_FEE_BPS]
         * (9999); a JSON number is msgspec's */
        if ((seen & M_FEE) && !f->null) {
            if (f->n > 4)
                goto done;
            for (Py_ssize_t i = 0; i < f->n; i++) {
                if (f->p[i] < '0' || f->p[i] > '9')
                    goto done;
                fee = fee * 10 + (f->p[i] - '0');
            }
        }
        PyObject *items[7] = {PyLong_FromLongLong(ts), id_str(asset->p, asset->n), id_str(market->p, market->n),
                              price_int(price), PyLong_FromLongLong(size), side, PyLong_FromLongLong(fee)};
        Py_INCREF(side);
        for (int i = 0; i < 7; i++) {
            if (items[i] == NULL) {
                for (int j = 0; j < 7; j++)
                    Py_XDECREF(items[j]);
                rc = -1;
                goto done;
            }
        }
        event = new_tuple(LastTradeType, items, 7);
        info.text = p->p;
        info.text_n = p->n;
    } else if (type == T_BOOK) {
        long long tick = -1; /* -1: None */
        if ((seen & BOOK_NEEDS) != BOOK_NEEDS)
            goto done;
        Raw *h = &raw[key_index(M_HASH)], *t = &raw[key_index(M_TICK)];
        /* tick_size: absent, null or "" is None; else one of VALID_TICKS */
        if ((seen & M_TICK) && !t->null && t->n) {
            int valid = 0;
            if (!decimal_micro(t->p, t->n, One, &tick))
                goto done;
            for (Py_ssize_t i = 0; i < NTicks; i++)
                valid |= Ticks[i] == tick;
            if (!valid)
                goto done;
        }
        PyObject *items[7];
        items[0] = PyLong_FromLongLong(ts);
        items[1] = id_str(asset->p, asset->n);
        items[2] = id_str(market->p, market->n);
        items[3] = refs_tuple(&bids);
        items[4] = refs_tuple(&asks);
        if ((seen & M_HASH) && !h->null && h->n) {
            items[5] = ascii_str(h->p, h->n);
        } else {
            Py_INCREF(EmptyStr);
            items[5] = EmptyStr;
        }
        items[6] = optional_micro(tick);
        Raw *l = &raw[key_index(M_LTP)];
        info.has_tick = (seen & M_TICK) && !t->null;
        info.has_text = (seen & M_LTP) && !l->null;
        if (info.has_text) {
            info.text = l->p;
            info.text_n = l->n;
        }
        for (int i = 0; i < 7; i++) {
            if (items[i] == NULL) {
                for (int j = 0; j < 7; j++)
                    Py_XDECREF(items[j]);
                rc = -1;
                goto done;
            }
        }
        event = new_tuple(BookSnapshotType, items, 7);
    } else {
        goto done; /* no event_type */
    }
    info.end = c->p;
    info.ts = ts;
    rc = (event == NULL || PyList_Append(events, event) < 0 || (infos != NULL && infos_push(infos, &info) < 0)) ? -1
                                                                                                              : 1;
    Py_XDECREF(event);
done:
    refs_clear(&deltas);
    refs_clear(&bids);
    refs_clear(&asks);
    return rc;
}

/* -- the frame -------------------------------------------------------------------------------------- */
static PyObject *decode_frame(const unsigned char *data, Py_ssize_t len, unsigned kinds, Infos *infos) {
    Cur c = {data, data + len};
    PyObject *events = PyList_New(0);
    if (events == NULL)
        return NULL;
    int rc;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '[') {
        c.p++;
        if (eat(&c, ']')) {
            rc = 0; /* an empty frame: the Python path's business */
        } else {
            for (;;) {
                rc = read_message(&c, events, kinds, infos);
                if (rc <= 0)
                    break;
                if (eat(&c, ','))
                    continue;
                if (!eat(&c, ']'))
                    rc = 0;
                break;
            }
        }
    } else {
        rc = read_message(&c, events, kinds, infos);
    }
    if (rc > 0) {
        skip_ws(&c);
        if (c.p != c.end)
            rc = 0; /* trailing bytes */
    }
    if (rc > 0)
        return events;
    Py_DECREF(events);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* decode_frame on a bytes or str argument; None for every other type. */
static PyObject *decode_data(PyObject *data, unsigned kinds, Infos *infos) {
    if (PyBytes_CheckExact(data))
        return decode_frame((const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), kinds, infos);
    /* a text frame (the WebSocket client's str): ASCII ones are their own UTF-8; others are left to
     * msgspec rather than encoded here */
    if (PyUnicode_CheckExact(data)) {
        if (PyUnicode_READY(data) < 0)
            return NULL;
        if (PyUnicode_IS_ASCII(data))
            return decode_frame(PyUnicode_1BYTE_DATA(data), PyUnicode_GET_LENGTH(data), kinds, infos);
    }
    Py_RETURN_NONE;
}

static PyObject *decode_market(PyObject *module, PyObject *data) {
    return decode_data(data, T_PRICE_CHANGE | T_LAST_TRADE | T_BOOK, NULL);
}

/* -- the live feed's book keeper ------------------------------------------------------------------- */
/* FeedKeeper.on_frame is BookKeeper.on_frame when this module is built (market_data.py binds it, so no
 * Python frame runs per frame): one call decodes a frame of plain price changes, trade prints and books
 * (decode_market's subset) and runs the common case of the keeper's rule for each message, in order:
 *
 * - a price change (BookKeeper._price_change), per delta: the token's state is looked up, its book is
 *   a trusted DenseBook, the timestamp does not go backwards, and either the delta carries the pending
 *   hash or no sampled check is due; then the state's hash bookkeeping, the level applied through the
 *   book's C API, since_check counted and the PriceChange forwarded as decoded;
 * - a trade print (_last_trade): the state's last_recv_ms, its last trade price as sent (ltp) and the
 *   price (ltp_print), the print forwarded;
 * - a book (on_frame then _wire_book and _snapshot): a DenseBook with no deltas buffered; an older
 *   picture than a trusted book's is dropped; the hash is checked when it is checkable, over the
 *   message's own strings (book_summary_hash below: the text is built only then), and must match;
 *   then ltp, the snapshot applied, the state's hash bookkeeping reset and the snapshot forwarded.
 *
 * Every other case (an unknown token takes none of these steps, as in Python) is handed to the keeper:
 * a price change from the delta at hand on to its _price_change(event, recv_ms, out, start), a print
 * or a book whole, as its own JSON text, to its _decode_frame(text, recv_ms, out), which decodes it
 * with msgspec and runs the Python rule (a check due that does not match, a buffer to replay, a
 * BookState, a hash input this code does not spell, a state it cannot read); a frame outside the
 * subset goes whole to _decode_frame, before anything is applied. Each rule keeps one
 * implementation, the Python one, which the common case mirrors step for step and hands over before it
 * changes anything (tests/unit/test_feed_keeper.py holds the two to the same events, gaps, checks and
 * books).
 *
 * The per-token state is the keeper's _Token, a Python class with __slots__: its slots are read and
 * written in place at the offsets its member descriptors give (checked to be object slots at
 * construction), and a state of any other type takes the Python path; so is the keeper's `checks`. */
static PsBookApi *BookApi; /* NULL when polysnipe.core._book is not built: every book takes the Python path */
static PyObject *Sha1;     /* hashlib.sha1 */
static PyObject *ApplySnapshotName, *HexdigestName;

enum {
    S_BOOK, S_BUFFER, S_RECV, S_LTP, S_LTP_PRINT, S_MARKET, S_MIN_SIZE, S_NEG_RISK, S_HASH, S_TS, S_SINCE,
    N_SLOTS
};
static const char *const SlotNames[N_SLOTS] = {
    "book", "buffer", "last_recv_ms", "ltp", "ltp_print", "market", "min_order_size", "neg_risk",
    "pending_hash", "pending_ts", "since_check",
};

typedef struct {
    PyObject_HEAD
    PyObject *keeper;          /* the BookKeeper, whose `checks` this counts in */
    PyObject *tokens;          /* the keeper's dict token id -> _Token */
    PyTypeObject *token_type;  /* _Token */
    PyObject *on_price_change; /* keeper._price_change */
    PyObject *on_text;         /* keeper._decode_frame: the Python path on a frame, or on one message of one */
    long long every;           /* config.hash_check_every */
    Py_ssize_t off_checks;
    Py_ssize_t off[N_SLOTS];
} FeedKeeper;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))
#define STATE(k, state, name) SLOT(state, (k)->off[name])

static inline void set_slot(PyObject *obj, Py_ssize_t off, PyObject *value) {
    Py_INCREF(value);
    Py_XSETREF(SLOT(obj, off), value);
}

/* The offset of the object slot `name` of `type`; -1 with an exception set when it is not one. */
static Py_ssize_t slot_offset(PyTypeObject *type, const char *name) {
    PyObject *d = PyObject_GetAttrString((PyObject *)type, name);
    if (d == NULL)
        return -1;
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY) && m->offset > 0)
            off = m->offset;
    }
    Py_DECREF(d);
    if (off < 0)
        PyErr_Format(PyExc_TypeError, "FeedKeeper: %s is not a writable __slots__ attribute", name);
    return off;
}

static int str_equal(PyObject *a, PyObject *b) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * PyUnicode_KIND(a)) == 0;
}

/* The keeper's Python path on the message of `info`, as its own JSON text: 0, or -1 with an exception
 * set. */
static int hand_message(FeedKeeper *k, const Info *info, PyObject *recv_ms, PyObject *out) {
    PyObject *text = PyBytes_FromStringAndSize((const char *)info->start, info->end - info->start);
    if (text == NULL)
        return -1;
    PyObject *args[3] = {text, recv_ms, out};
    PyObject *r = PyObject_Vectorcall(k->on_text, args, 3, NULL);
    Py_DECREF(text);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* BookKeeper._price_change on one decoded PriceChange: 0, or -1 with an exception set. */
static int keep_price_change(FeedKeeper *k, PyObject *event, const Info *info, PyObject *recv_ms, PyObject *out) {
    PyObject *ts_obj = PyTuple_GET_ITEM(event, 0), *changes = PyTuple_GET_ITEM(event, 2);
    long long ts = info->ts;
    Py_ssize_t n = PyTuple_GET_SIZE(changes), i;
    for (i = 0; i < n; i++) {
        PyObject *d = PyTuple_GET_ITEM(changes, i); /* a BookDelta the decoder made */
        PyObject *state = PyDict_GetItemWithError(k->tokens, PyTuple_GET_ITEM(d, 0));
        if (state == NULL) {
            if (PyErr_Occurred())
                return -1;
            break; /* not subscribed here: the delta is not forwarded */
        }
        if (!Py_IS_TYPE(state, k->token_type))
            break;
        PyObject *book = STATE(k, state, S_BOOK), *pending = STATE(k, state, S_HASH);
        PyObject *since = STATE(k, state, S_SINCE), *hash = PyTuple_GET_ITEM(d, 4);
        int64_t last_ts;
        if (BookApi == NULL || book == NULL || !Py_IS_TYPE(book, BookApi->type) || !BookApi->trusted(book) ||
            BookApi->last_ts(book, &last_ts) != 1 || ts < last_ts)
            break; /* untrusted (buffered), a gap, or a book only Python reads */
        if (pending == NULL || !PyUnicode_CheckExact(pending) || since == NULL || !PyLong_CheckExact(since))
            break;
        int overflow;
        long long since_n = PyLong_AsLongLongAndOverflow(since, &overflow);
        if (overflow || since_n == LLONG_MAX)
            break;
        int same = hash == pending || str_equal(hash, pending);
        if (!same && k->every && since_n >= k->every && PyUnicode_GET_LENGTH(pending))
            break; /* a sampled hash check is due */
        set_slot(state, k->off[S_RECV], recv_ms);
        if (!same) {
            set_slot(state, k->off[S_HASH], hash);
            set_slot(state, k->off[S_TS], ts_obj);
        }
        PyObject *r = BookApi->apply_level(book, PyTuple_GET_ITEM(d, 1), PyTuple_GET_ITEM(d, 2),
                                           PyTuple_GET_ITEM(d, 3), ts_obj);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        PyObject *next = PyLong_FromLongLong(since_n + 1);
        if (next == NULL)
            return -1;
        Py_SETREF(SLOT(state, k->off[S_SINCE]), next);
    }
    if (i == n)
        return PyList_Append(out, event);
    PyObject *start = PyLong_FromSsize_t(i);
    if (start == NULL)
        return -1;
    PyObject *args[4] = {event, recv_ms, out, start};
    PyObject *r = PyObject_Vectorcall(k->on_price_change, args, 4, NULL);
    Py_DECREF(start);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* BookKeeper._last_trade on one decoded LastTrade: 0, or -1 with an exception set. */
static int keep_last_trade(FeedKeeper *k, PyObject *event, const Info *info, PyObject *recv_ms, PyObject *out) {
    PyObject *state = PyDict_GetItemWithError(k->tokens, PyTuple_GET_ITEM(event, 1));
    if (state == NULL)
        return PyErr_Occurred() ? -1 : 0; /* not subscribed here: no book to keep, nothing to forward */
    if (!Py_IS_TYPE(state, k->token_type))
        return hand_message(k, info, recv_ms, out);
    PyObject *text = ascii_str(info->text, info->text_n);
    if (text == NULL)
        return -1;
    set_slot(state, k->off[S_RECV], recv_ms);
    Py_XSETREF(STATE(k, state, S_LTP), text);
    set_slot(state, k->off[S_LTP_PRINT], PyTuple_GET_ITEM(event, 3));
    return PyList_Append(out, event);
}

/* -- book hashes ---------------------------------------------------------------------------------- */
/* A growable byte buffer, on the stack while it is short. */
typedef struct {
    char *p;
    Py_ssize_t n, cap;
    char inline_bytes[4096];
} Buf;

static void buf_init(Buf *b) {
    b->p = b->inline_bytes;
    b->n = 0;
    b->cap = (Py_ssize_t)sizeof(b->inline_bytes);
}

static void buf_free(Buf *b) {
    if (b->p != b->inline_bytes)
        PyMem_Free(b->p);
    buf_init(b);
}

static int buf_put(Buf *b, const void *s, Py_ssize_t n) {
    if (n > b->cap - b->n) {
        if (n > PY_SSIZE_T_MAX / 2 - b->n) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t cap = (b->n + n) * 2;
        char *p = PyMem_Malloc((size_t)cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(p, b->p, (size_t)b->n);
        if (b->p != b->inline_bytes)
            PyMem_Free(b->p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, (size_t)n);
    b->n += n;
    return 0;
}
#define PUT(b, lit) buf_put((b), (lit), (Py_ssize_t)(sizeof(lit) - 1))

/* `"s"`: parsing._json_text of a string, for the plain strings the decoder takes (printable ASCII
 * without a quote or a backslash, which json.dumps leaves as they are). */
static int put_quoted(Buf *b, const unsigned char *s, Py_ssize_t n) {
    return PUT(b, "\"") < 0 || buf_put(b, s, n) < 0 || PUT(b, "\"") < 0 ? -1 : 0;
}

/* The levels of a book message's bids or asks, as parsing._json_levels writes them, appended to `b`
 * (the cursor at the array): 1, 0 when they are not the decoder's plain shape, -1 on error. */
static int summary_levels(Cur *c, Buf *b) {
    if (!eat(c, '['))
        return 0;
    if (eat(c, ']'))
        return 1;
    for (int first = 1;; first = 0) {
        const unsigned char *s, *price = NULL, *size = NULL;
        Py_ssize_t n, price_n = 0, size_n = 0;
        if (!eat(c, '{'))
            return 0;
        for (;;) {
            const unsigned char *v;
            Py_ssize_t vn;
            if (!read_str(c, &s, &n) || !eat(c, ':') || !read_str(c, &v, &vn))
                return 0;
            if (IS(s, n, "price") && price == NULL) {
                price = v;
                price_n = vn;
            } else if (IS(s, n, "size") && size == NULL) {
                size = v;
                size_n = vn;
            } else {
                return 0;
            }
            if (eat(c, ','))
                continue;
            if (eat(c, '}'))
                break;
            return 0;
        }
        if (price == NULL || size == NULL)
            return 0;
        if ((!first && PUT(b, ",") < 0) || PUT(b, "{\"price\":") < 0 || put_quoted(b, price, price_n) < 0 ||
            PUT(b, ",\"size\":") < 0 || put_quoted(b, size, size_n) < 0 || PUT(b, "}") < 0)
            return -1;
        if (eat(c, ','))
            continue;
        return eat(c, ']') ? 1 : 0;
    }
}

/* Is `s` a str that parsing._json_text spells as its characters in quotes, as put_quoted does? */
static int plain_str(PyObject *s) {
    if (!PyUnicode_CheckExact(s) || !PyUnicode_IS_ASCII(s))
        return 0;
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(s); i < n; i++)
        if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\')
            return 0;
    return 1;
}

/* parsing.book_hash over a book message's own strings (BookKeeper._wire_book_matches), with the
 * state's min_order_size and neg_risk: 1 and *match set, 0 when this code does not build that text
 * (an input it does not spell: Python's then), -1 with an exception set. The summary is written here
 * and nowhere else, only for a check: the venue's key order, `hash` set to "", the levels in the
 * message's order. */
static int book_summary_matches(const Info *info, PyObject *min_size, PyObject *neg_risk, PyObject *claimed,
                                int *match) {
    if (!plain_str(min_size) || (neg_risk != Py_True && neg_risk != Py_False))
        return 0;
    typedef struct {
        const unsigned char *p;
        Py_ssize_t n;
        int null, seen;
    } Field;
    enum { F_MARKET, F_ASSET, F_TS, F_TICK, F_LTP, F_OTHER, N_FIELDS };
    Field f[N_FIELDS];
    memset(f, 0, sizeof(f));
    Buf bids, asks, text;
    buf_init(&bids);
    buf_init(&asks);
    buf_init(&text);
    int rc = 0;
    Cur c = {info->start, info->end};
    if (!eat(&c, '{'))
        goto done;
    for (;;) {
        const unsigned char *s;
        Py_ssize_t n;
        if (!read_str(&c, &s, &n) || !eat(&c, ':'))
            goto done;
        if (IS(s, n, "bids") || IS(s, n, "asks")) {
            int r = summary_levels(&c, IS(s, n, "bids") ? &bids : &asks);
            if (r <= 0) {
                rc = r;
                goto done;
            }
        } else {
            int which = IS(s, n, "market")             ? F_MARKET
                        : IS(s, n, "asset_id")         ? F_ASSET
                        : IS(s, n, "timestamp")        ? F_TS
                        : IS(s, n, "tick_size")        ? F_TICK
                        : IS(s, n, "last_trade_price") ? F_LTP
                                                       : F_OTHER; /* event_type, hash */
            Field *v = &f[which];
            v->seen = 1;
            v->null = read_null(&c);
            if (!v->null && !read_str(&c, &v->p, &v->n))
                goto done;
        }
        if (eat(&c, ','))
            continue;
        if (eat(&c, '}'))
            break;
        goto done;
    }
    for (int i = F_MARKET; i <= F_LTP; i++)
        if (!f[i].seen || f[i].null)
            goto done; /* the decoder took it, and the caller checked tick and ltp: not reached */
    if (PUT(&text, "{\"market\":") < 0 || put_quoted(&text, f[F_MARKET].p, f[F_MARKET].n) < 0 ||
        PUT(&text, ",\"asset_id\":") < 0 || put_quoted(&text, f[F_ASSET].p, f[F_ASSET].n) < 0 ||
        PUT(&text, ",\"timestamp\":") < 0 || put_quoted(&text, f[F_TS].p, f[F_TS].n) < 0 ||
        PUT(&text, ",\"hash\":\"\",\"bids\":[") < 0 || buf_put(&text, bids.p, bids.n) < 0 ||
        PUT(&text, "],\"asks\":[") < 0 || buf_put(&text, asks.p, asks.n) < 0 ||
        PUT(&text, "],\"min_order_size\":") < 0 ||
        put_quoted(&text, PyUnicode_1BYTE_DATA(min_size), PyUnicode_GET_LENGTH(min_size)) < 0 ||
        PUT(&text, ",\"tick_size\":") < 0 || put_quoted(&text, f[F_TICK].p, f[F_TICK].n) < 0 ||
        (neg_risk == Py_True ? PUT(&text, ",\"neg_risk\":true") : PUT(&text, ",\"neg_risk\":false")) < 0 ||
        PUT(&text, ",\"last_trade_price\":") < 0 || put_quoted(&text, f[F_LTP].p, f[F_LTP].n) < 0 ||
        PUT(&text, "}") < 0) {
        rc = -1;
        goto done;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(text.p, text.n), *h = NULL, *hex = NULL;
    if (bytes != NULL && (h = PyObject_CallOneArg(Sha1, bytes)) != NULL &&
        (hex = PyObject_CallMethodNoArgs(h, HexdigestName)) != NULL && PyUnicode_CheckExact(hex)) {
        *match = str_equal(hex, claimed);
        rc = 1;
    } else {
        rc = PyErr_Occurred() ? -1 : 0;
    }
    Py_XDECREF(bytes);
    Py_XDECREF(h);
    Py_XDECREF(hex);
done:
    buf_free(&bids);
    buf_free(&asks);
    buf_free(&text);
    return rc;
}

/* on_frame's book step, then BookKeeper._wire_book and _snapshot, on one decoded BookSnapshot: 0, or
 * -1 with an exception set. Nothing is changed before the last case that goes to Python is ruled out. */
static int keep_book(FeedKeeper *k, PyObject *snap, const Info *info, PyObject *recv_ms, PyObject *out) {
    PyObject *state = PyDict_GetItemWithError(k->tokens, PyTuple_GET_ITEM(snap, 1));
    if (state == NULL)
        return PyErr_Occurred() ? -1 : 0; /* not subscribed here: no book to keep, nothing to forward */
    if (!Py_IS_TYPE(state, k->token_type))
        return hand_message(k, info, recv_ms, out);
    PyObject *book = STATE(k, state, S_BOOK), *buffer = STATE(k, state, S_BUFFER);
    PyObject *min_size = STATE(k, state, S_MIN_SIZE), *neg_risk = STATE(k, state, S_NEG_RISK);
    PyObject *checks = SLOT(k->keeper, k->off_checks), *hash = PyTuple_GET_ITEM(snap, 5);
    if (BookApi == NULL || book == NULL || !Py_IS_TYPE(book, BookApi->type) || buffer == NULL ||
        min_size == NULL || neg_risk == NULL || checks == NULL || !PyLong_CheckExact(checks))
        return hand_message(k, info, recv_ms, out);
    if (buffer != Py_None) { /* a deque: deltas to replay on top are Python's */
        Py_ssize_t n = PyObject_Length(buffer);
        if (n < 0)
            PyErr_Clear();
        if (n != 0)
            return hand_message(k, info, recv_ms, out);
    }
    long long ts = info->ts;
    if (BookApi->trusted(book)) {
        int64_t last_ts;
        if (BookApi->last_ts(book, &last_ts) != 1)
            return hand_message(k, info, recv_ms, out);
        if (ts < last_ts) { /* an older picture than the one we hold: nothing to learn */
            set_slot(state, k->off[S_RECV], recv_ms);
            return 0;
        }
    }
    /* _wire_book_matches: checkable with a hash, the state's hash inputs and the message's tick and last
     * trade price; a mismatch is Python's to report */
    int checked = PyUnicode_GET_LENGTH(hash) && min_size != Py_None && neg_risk != Py_None && info->has_tick &&
                  info->has_text;
    if (checked) {
        int match = 0, r = book_summary_matches(info, min_size, neg_risk, hash, &match);
        if (r < 0)
            return -1;
        if (r == 0 || !match)
            return hand_message(k, info, recv_ms, out);
        PyObject *one = PyLong_FromLong(1), *more = one ? PyNumber_Add(checks, one) : NULL;
        Py_XDECREF(one);
        if (more == NULL)
            return -1;
        Py_SETREF(SLOT(k->keeper, k->off_checks), more);
    }
    set_slot(state, k->off[S_RECV], recv_ms);
    if (info->has_text) {
        PyObject *text = ascii_str(info->text, info->text_n);
        if (text == NULL)
            return -1;
        Py_XSETREF(STATE(k, state, S_LTP), text);
        set_slot(state, k->off[S_LTP_PRINT], Py_None);
    }
    PyObject *r = PyObject_CallMethodOneArg(book, ApplySnapshotName, snap);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL)
        return -1;
    set_slot(state, k->off[S_MARKET], PyTuple_GET_ITEM(snap, 2));
    set_slot(state, k->off[S_HASH], hash);
    set_slot(state, k->off[S_TS], PyTuple_GET_ITEM(snap, 0));
    Py_XSETREF(STATE(k, state, S_SINCE), zero);
    if (PyList_Append(out, snap) < 0)
        return -1;
    set_slot(state, k->off[S_BUFFER], Py_None);
    return 0;
}

/* BookKeeper.on_frame: the events to forward, a new list; NULL with an exception set (MalformedMessage
 * included, from the Python path). A frame outside decode_market's subset goes whole to on_text; so
 * does a frame that is not bytes or str (which decode_data leaves to msgspec). */
static PyObject *FeedKeeper_on_frame(FeedKeeper *k, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "on_frame(data, recv_ms, /) takes 2 arguments");
        return NULL;
    }
    PyObject *recv_ms = args[1], *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Infos infos;
    infos_init(&infos);
    PyObject *events = decode_data(args[0], T_PRICE_CHANGE | T_LAST_TRADE | T_BOOK, &infos);
    int rc = 0;
    if (events == NULL) {
        rc = -1;
    } else if (events == Py_None) {
        PyObject *call[3] = {args[0], recv_ms, out};
        PyObject *r = PyObject_Vectorcall(k->on_text, call, 3, NULL);
        rc = r == NULL ? -1 : 0;
        Py_XDECREF(r);
    } else {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events) && rc == 0; i++) {
            PyObject *event = PyList_GET_ITEM(events, i);
            if (Py_IS_TYPE(event, PriceChangeType))
                rc = keep_price_change(k, event, &infos.items[i], recv_ms, out);
            else if (Py_IS_TYPE(event, LastTradeType))
                rc = keep_last_trade(k, event, &infos.items[i], recv_ms, out);
            else
                rc = keep_book(k, event, &infos.items[i], recv_ms, out);
        }
    }
    infos_clear(&infos);
    Py_XDECREF(events);
    if (rc < 0)
        Py_CLEAR(out);
    return out;
}

static PyObject *FeedKeeper_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *names[] = {"keeper", "tokens", "token_type", "hash_check_every", "on_price_change", "on_text",
                            NULL};
    PyObject *keeper, *tokens, *token_type, *on_price_change, *on_text;
    long long every;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!LOO:FeedKeeper", names, &keeper, &PyDict_Type, &tokens,
                                     &PyType_Type, &token_type, &every, &on_price_change, &on_text))
        return NULL;
    if (every < 0 || !PyCallable_Check(on_price_change) || !PyCallable_Check(on_text)) {
        PyErr_SetString(PyExc_ValueError, "FeedKeeper: hash_check_every must be >= 0 and the handlers callable");
        return NULL;
    }
    Py_ssize_t off_checks = slot_offset(Py_TYPE(keeper), "checks"), offs[N_SLOTS];
    if (off_checks < 0)
        return NULL;
    for (int i = 0; i < N_SLOTS; i++)
        if ((offs[i] = slot_offset((PyTypeObject *)token_type, SlotNames[i])) < 0)
            return NULL;
    FeedKeeper *k = (FeedKeeper *)type->tp_alloc(type, 0);
    if (k == NULL)
        return NULL;
    Py_INCREF(keeper);
    Py_INCREF(tokens);
    Py_INCREF(token_type);
    Py_INCREF(on_price_change);
    Py_INCREF(on_text);
    k->keeper = keeper;
    k->tokens = tokens;
    k->token_type = (PyTypeObject *)token_type;
    k->on_price_change = on_price_change;
    k->on_text = on_text;
    k->every = every;
    k->off_checks = off_checks;
    memcpy(k->off, offs, sizeof(offs));
    return (PyObject *)k;
}

/* The keeper holds this object, which holds the keeper and its bound methods: a cycle for the GC. */
static int FeedKeeper_traverse(FeedKeeper *k, visitproc visit, void *arg) {
    Py_VISIT(k->keeper);
    Py_VISIT(k->tokens);
    Py_VISIT(k->token_type);
    Py_VISIT(k->on_price_change);
    Py_VISIT(k->on_text);
    return 0;
}

static int FeedKeeper_clear(FeedKeeper *k) {
    Py_CLEAR(k->keeper);
    Py_CLEAR(k->tokens);
    Py_CLEAR(k->token_type);
    Py_CLEAR(k->on_price_change);
    Py_CLEAR(k->on_text);
    return 0;
}

static void FeedKeeper_dealloc(FeedKeeper *k) {
    PyObject_GC_UnTrack(k);
    FeedKeeper_clear(k);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static PyMethodDef FeedKeeper_methods[] = {
    {"on_frame", (PyCFunction)(void (*)(void))FeedKeeper_on_frame, METH_FASTCALL,
     "on_frame(data, recv_ms, /) -> list[Event]\n\n"
     "BookKeeper.on_frame: the events to forward. Frames of plain price_change, last_trade_price and\n"
     "book messages are decoded and kept here, any other frame by on_text."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FeedKeeperType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "polysnipe.adapters.clob._fastdecode.FeedKeeper",
    .tp_basicsize = sizeof(FeedKeeper),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "FeedKeeper(keeper, tokens, token_type, hash_check_every, on_price_change, on_text): "
              "BookKeeper's compiled common case (see the source's comment).",
    .tp_new = FeedKeeper_new,
    .tp_traverse = (traverseproc)FeedKeeper_traverse,
    .tp_clear = (inquiry)FeedKeeper_clear,
    .tp_dealloc = (destructor)FeedKeeper_dealloc,
    .tp_methods = FeedKeeper_methods,
};

/* -- module ----------------------------------------------------------------------------------------- */
static PyMethodDef methods[] = {
    {"decode_market", decode_market, METH_O,
     "decode_market(data, /) -> list[PriceChange | LastTrade | BookSnapshot] | None\n\n"
     "The events of a frame of plain price_change, last_trade_price and book messages (bytes or\n"
     "an ASCII str), exactly as parsing.parse_market_line maps it; None for any other frame."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "polysnipe.adapters.clob._fastdecode",
    "Compiled decoding of plain market-channel price_change, last_trade_price and book frames (see parsing.py).", -1, methods,
};

static int get_ll(PyObject *mod, const char *name, long long *out) {
    PyObject *v = PyObject_GetAttrString(mod, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

PyMODINIT_FUNC PyInit__fastdecode(void) {
    PyObject *events = NULL, *units = NULL, *side = NULL, *market = NULL, *ticks = NULL;
    long long whole_digits;
    events = PyImport_ImportModule("polysnipe.core.events");
    units = events ? PyImport_ImportModule("polysnipe.core.units") : NULL;
    market = units ? PyImport_ImportModule("polysnipe.core.market") : NULL;
    if (market == NULL)
        goto fail;
    ticks = PyObject_GetAttrString(market, "VALID_TICKS");
    if (ticks == NULL || PySequence_Size(ticks) < 0)
        goto fail;
    if (PySequence_Size(ticks) > MAX_TICKS) {
        PyErr_SetString(PyExc_ImportError, "_fastdecode: more VALID_TICKS than it was written for");
        goto fail;
    }
    {
        PyObject *it = PyObject_GetIter(ticks), *tick;
        if (it == NULL)
            goto fail;
        while ((tick = PyIter_Next(it)) != NULL) {
            Ticks[NTicks++] = PyLong_AsLongLong(tick);
            Py_DECREF(tick);
            if (PyErr_Occurred())
                break;
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto fail;
    }
    if (get_ll(events, "MIN_TS_MS", &MinTsMs) < 0 || get_ll(events, "MAX_TS_MS", &MaxTsMs) < 0 ||
        get_ll(units, "ONE", &One) < 0 || get_ll(units, "MAX_AMOUNT_MICRO", &MaxAmount) < 0 ||
        get_ll(units, "MAX_WHOLE_DIGITS", &whole_digits) < 0)
        goto fail;
    MaxWholeDigits = (Py_ssize_t)whole_digits;
    /* the digit rules above assume these; a change in core must revisit them, not overflow here */
    if (MaxTsMs >= 10000000000000LL || MinTsMs < 0 || One <= 0 || One % GRID || MaxAmount < One ||
        MaxAmount > 1000000000000000000LL) {
        PyErr_SetString(PyExc_ImportError, "_fastdecode: core constants outside what it was written for");
        goto fail;
    }
    BookDeltaType = (PyTypeObject *)PyObject_GetAttrString(events, "BookDelta");
    PriceChangeType = (PyTypeObject *)PyObject_GetAttrString(events, "PriceChange");
    LastTradeType = (PyTypeObject *)PyObject_GetAttrString(events, "LastTrade");
    BookSnapshotType = (PyTypeObject *)PyObject_GetAttrString(events, "BookSnapshot");
    LevelType = (PyTypeObject *)PyObject_GetAttrString(events, "Level");
    side = PyObject_GetAttrString(events, "Side");
    if (BookDeltaType == NULL || PriceChangeType == NULL || LastTradeType == NULL || BookSnapshotType == NULL ||
        LevelType == NULL || side == NULL)
        goto fail;
    PyTypeObject *types[] = {BookDeltaType, PriceChangeType, LastTradeType, BookSnapshotType, LevelType};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (!PyType_Check(types[i]) || !PyType_IsSubtype(types[i], &PyTuple_Type)) {
            PyErr_SetString(PyExc_ImportError, "_fastdecode: the core events must be tuple types");
            goto fail;
        }
    }
    SideBuy = PyObject_GetAttrString(side, "BUY");
    SideSell = PyObject_GetAttrString(side, "SELL");
    EmptyStr = PyUnicode_New(0, 0);
    GridInts = PyMem_Calloc((size_t)(One / GRID + 1), sizeof(PyObject *));
    if (SideBuy == NULL || SideSell == NULL || EmptyStr == NULL)
        goto fail;
    if (GridInts == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_DECREF(side);
    Py_DECREF(ticks);
    Py_DECREF(market);
    Py_DECREF(units);
    Py_DECREF(events);
    /* the keeper's books: without polysnipe.core._book they are all Python's business */
    PyObject *book_module = PyImport_ImportModule("polysnipe.core._book"); /* the capsule is its attribute */
    BookApi = book_module != NULL ? PsBook_Import() : NULL;
    Py_XDECREF(book_module);
    if (BookApi == NULL)
        PyErr_Clear();
    PyObject *hashlib = PyImport_ImportModule("hashlib");
    Sha1 = hashlib != NULL ? PyObject_GetAttrString(hashlib, "sha1") : NULL;
    Py_XDECREF(hashlib);
    ApplySnapshotName = PyUnicode_InternFromString("apply_snapshot");
    HexdigestName = PyUnicode_InternFromString("hexdigest");
    if (Sha1 == NULL || ApplySnapshotName == NULL || HexdigestName == NULL || PyType_Ready(&FeedKeeperType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FeedKeeperType);
    if (PyModule_AddObject(m, "FeedKeeper", (PyObject *)&FeedKeeperType) < 0) {
        Py_DECREF(&FeedKeeperType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
fail:
    Py_XDECREF(side);
    Py_XDECREF(ticks);
    Py_XDECREF(market);
    Py_XDECREF(units);
    Py_XDECREF(events);
    return NULL;
}

/* The two keccak-256 hashes of a CLOB V2 order's EIP-712 digest in one call, beside signing.py.
 *
 * Theory of operation: OrderSigner.prepare builds the Order struct's encoding (its type hash and eight
 * 32-byte words, some of them pre-joined pairs), hashes it, and hashes "\x19\x01" || domain separator ||
 * that struct hash: the order hash the key signs. In Python that is six short cffi calls into
 * pycryptodome's keccak and a byte join per order, most of what an order costs besides the ECDSA
 * signature itself. `order_hashes` does both hashes here, from the same pieces, and answers
 * (struct hash, order hash), or None for an integer it does not take (negative, or 2**64 and above:
 * far beyond any amount, salt or millisecond timestamp an engine order has), which the caller then
 * hashes in Python exactly as without this module. signing.py's Python hashing stays the reference;
 * tests/unit/test_orderhash.py compares the two on random orders, and the official vectors pin both.
 *
 * Keccak-256 here is the original Keccak submission Ethereum uses: Keccak-f[1600], rate 136 bytes,
 * padding 0x01 ... 0x80 (not SHA3-256's 0x06). Its round constants and rho-pi tables are checked at
 * import against their definitions in the Keccak reference (the rc LFSR and the (x, y) -> (y, 2x + 3y)
 * walk): a mistyped entry refuses to load rather than hash wrongly.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RATE 136
#define ROUNDS 24

/* The tables of the Keccak reference, typed in so that the compiler unrolls the permutation with
 * constant rotations (a loop over tables derived at run time ran at a third of the speed);
 * `check_constants` derives each at import from its definition and refuses to load on a mismatch. */
static const uint64_t round_constants[ROUNDS] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};
/* rho-pi as one walk: lane `walk[t]` (x + 5y along (x, y) -> (y, 2x + 3y) from (1, 0)) takes the lane
 * before it rotated by `offset[t]` = (t + 1)(t + 2) / 2 mod 64 */
static const unsigned offset[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                    27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned walk[24] = {10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1};

static inline uint64_t rotl(uint64_t v, unsigned n) { return (v << n) | (v >> ((64 - n) & 63)); }

/* rc(t) of the Keccak reference: the output bit of the LFSR x^8 + x^6 + x^5 + x^4 + 1 after t steps */
static int rc_bit(unsigned t) {
    unsigned r = 1;
    for (unsigned i = 0; i < t % 255; i++) {
        r <<= 1;
        if (r & 0x100) r ^= 0x171;
    }
    return (int)(r & 1);
}

/* 0 when every table above is what its definition gives, -1 (ImportError set) otherwise */
static int check_constants(void) {
    for (unsigned round = 0; round < ROUNDS; round++) {
        uint64_t c = 0;
        for (unsigned j = 0; j < 7; j++)
            if (rc_bit(j + 7 * round)) c |= (uint64_t)1 << ((1u << j) - 1);
        if (c != round_constants[round]) goto mismatch;
    }
    unsigned x = 1, y = 0;
    for (unsigned t = 0; t < 24; t++) {
        if (offset[t] != ((t + 1) * (t + 2) / 2) % 64) goto mismatch;
        unsigned nx = y, ny = (2 * x + 3 * y) % 5;
        x = nx;
        y = ny;
        if (walk[t] != x + 5 * y) goto mismatch;
    }
    return 0;
mismatch:
    PyErr_SetString(PyExc_ImportError, "_orderhash: a keccak table differs from its definition");
    return -1;
}

static void keccak_f(uint64_t a[25]) {
    uint64_t c[5], t, u;
#pragma GCC unroll 24
    for (unsigned round = 0; round < ROUNDS; round++) {
#pragma GCC unroll 5
        for (unsigned x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma GCC unroll 5
        for (unsigned x = 0; x < 5; x++) {
            t = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
#pragma GCC unroll 5
            for (unsigned y = 0; y < 25; y += 5) a[y + x] ^= t;
        }
        t = a[1];
#pragma GCC unroll 24
        for (unsigned i = 0; i < 24; i++) {
            u = a[walk[i]];
            a[walk[i]] = rotl(t, offset[i]);
            t = u;
        }
#pragma GCC unroll 5
        for (unsigned y = 0; y < 25; y += 5) {
#pragma GCC unroll 5
            for (unsigned x = 0; x < 5; x++) c[x] = a[y + x];
#pragma GCC unroll 5
            for (unsigned x = 0; x < 5; x++) a[y + x] = c[x] ^ (~c[(x + 1) % 5] & c[(x + 2) % 5]);
        }
        a[0] ^= round_constants[round];
    }
}

/* keccak-256 of `len` bytes into `out` (32 bytes) */
static void keccak256(const unsigned char *data, size_t len, unsigned char out[32]) {
    uint64_t a[25] = {0};
    unsigned char block[RATE];
    while (len >= RATE) {
        for (unsigned i = 0; i < RATE / 8; i++) {
            uint64_t lane = 0;
            for (unsigned k = 0; k < 8; k++) lane |= (uint64_t)data[8 * i + k] << (8 * k);
            a[i] ^= lane;
        }
        keccak_f(a);
        data += RATE;
        len -= RATE;
    }
    memset(block, 0, RATE);
    memcpy(block, data, len);
    block[len] ^= 0x01;
    block[RATE - 1] ^= 0x80;
    for (unsigned i = 0; i < RATE / 8; i++) {
        uint64_t lane = 0;
        for (unsigned k = 0; k < 8; k++) lane |= (uint64_t)block[8 * i + k] << (8 * k);
        a[i] ^= lane;
    }
    keccak_f(a);
    for (unsigned i = 0; i < 4; i++)
        for (unsigned k = 0; k < 8; k++) out[8 * i + k] = (unsigned char)(a[i] >> (8 * k));
}

/* `value` as a 32-byte big-endian word at `out`: 1; 0 for a value this module does not take (not
 * exactly an int, negative, or 2**64 and above); -1 on error */
static int put_word(PyObject *value, unsigned char *out) {
    if (!PyLong_CheckExact(value)) return 0; /* a subclass or another type: the Python path judges it */
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (small == -1 && PyErr_Occurred()) return -1;
    uint64_t v;
    if (overflow == 0) {
        if (small < 0) return 0;
        v = (uint64_t)small;
    } else {
        if (overflow < 0) return 0;
        v = PyLong_AsUnsignedLongLong(value);
        if (v == (uint64_t)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
            PyErr_Clear();
            return 0; /* 2**64 and above: the Python path */
        }
    }
    memset(out, 0, 24);
    for (unsigned k = 0; k < 8; k++) out[24 + k] = (unsigned char)(v >> (8 * (7 - k)));
    return 1;
}

/* `obj` as exactly `n` bytes at `out`; -1 (TypeError / ValueError set) otherwise */
static int put_bytes(PyObject *obj, Py_ssize_t n, unsigned char *out, const char *what) {
    if (!PyBytes_CheckExact(obj)) {
        PyErr_Format(PyExc_TypeError, "order_hashes: %s must be bytes", what);
        return -1;
    }
    if (PyBytes_GET_SIZE(obj) != n) {
        PyErr_Format(PyExc_ValueError, "order_hashes: %s must be %zd bytes", what, n);
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(obj), (size_t)n);
    return 0;
}

/* the Order struct's encoding: type hash, salt, maker+signer, token, maker amount, taker amount,
 * side+signatureType, timestamp, metadata+builder (signing.py's field order) */
#define ENCODED (32 * 12)
#define PREFIXED (2 + 32) /* "\x19\x01" || the domain separator */

static PyObject *order_hashes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "order_hashes takes 10 arguments (%zd given)", nargs);
        return NULL;
    }
    unsigned char enc[ENCODED], pre[PREFIXED + 32], contents[32], order_hash[32];
    int took = 0;
    if (put_bytes(args[0], 32, enc, "type_hash") < 0) return NULL;
    if ((took = put_word(args[1], enc + 32)) <= 0) goto other;
    if (put_bytes(args[2], 64, enc + 64, "maker_signer") < 0) return NULL;
    if (put_bytes(args[3], 32, enc + 128, "token") < 0) return NULL;
    if ((took = put_word(args[4], enc + 160)) <= 0) goto other;
    if ((took = put_word(args[5], enc + 192)) <= 0) goto other;
    if (put_bytes(args[6], 64, enc + 224, "side_signature_type") < 0) return NULL;
    if ((took = put_word(args[7], enc + 288)) <= 0) goto other;
    if (put_bytes(args[8], 64, enc + 320, "metadata_builder") < 0) return NULL;
    if (put_bytes(args[9], PREFIXED, pre, "prefix") < 0) return NULL;
    keccak256(enc, ENCODED, contents);
    memcpy(pre + PREFIXED, contents, 32);
    keccak256(pre, PREFIXED + 32, order_hash);
    return Py_BuildValue("(y#y#)", (const char *)contents, (Py_ssize_t)32, (const char *)order_hash,
                         (Py_ssize_t)32);
other:
    if (took < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_keccak256(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char out[32];
    keccak256((const unsigned char *)view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyMethodDef methods[] = {
    {"order_hashes", (PyCFunction)(void (*)(void))order_hashes, METH_FASTCALL,
     "order_hashes(type_hash, salt, maker_signer, token, maker_amount, taker_amount, side_signature_type,"
     " timestamp_ms, metadata_builder, prefix) -> (struct hash, order hash), or None for a number that"
     " is not an int in 0..2**64-1"},
    {"keccak256", py_keccak256, METH_O, "keccak256(data) -> the 32-byte keccak-256 digest (Ethereum's)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "polysnipe.adapters.clob._orderhash",
    "A V2 order's EIP-712 struct hash and order hash in one call (see the C source's head).", -1, methods,
};

PyMODINIT_FUNC PyInit__orderhash(void) {
    if (check_constants() < 0) return NULL;
    return PyModule_Create(&module);
}

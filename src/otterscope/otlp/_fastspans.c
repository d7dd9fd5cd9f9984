/*
 * _fastspans: OTLP ExportTraceServiceRequest protobuf bytes -> SPANS Arrow buffers.
 *
 * The pure-Python path (otlp/rows.py: upb parse, then one Python loop per span) is the
 * specification; this module reproduces it without creating a Python object per span:
 *
 *  - a protobuf wire-format reader written for this file, with the decoder behaviour of upb
 *    (the protobuf runtime Python uses): a field whose wire type does not match its declared
 *    type is an unknown field and is skipped; unknown fields of every wire type are skipped,
 *    groups included; field number 0, wire types 6/7, stray end-group tags, over-long varints,
 *    tags or lengths and anything past the end are errors; proto3 string fields must be
 *    UTF-8; messages nest at most 100 deep; a singular message field that appears more than
 *    once is merged (kept here as the list of its occurrences, read in order, which is what
 *    parsing the concatenation means); the last occurrence of a scalar wins; an AnyValue
 *    oneof switches case on every new member and merges repeated array/kvlist members.
 *  - attribute limits applied as anyvalue.attributes_to_json does, the JSON text written
 *    here (same keys, order and value types as orjson writes for the Python path).
 *  - every column appended to a growable buffer (a bytearray), returned to fast.py, which
 *    wraps them with pyarrow.Array.from_buffers.
 *
 * Resource and InstrumentationScope values are few per request: this module only validates
 * those messages and returns their bytes (the concatenation of their occurrences) with the
 * number of spans stored under each scope (a scope's spans are contiguous rows); fast.py
 * computes their columns with rows.py's helpers.
 *
 * Errors raise ValueError (malformed protobuf / bad UTF-8: the body is rejected, as upb
 * rejects it) or OverflowError (a value that the Arrow schema cannot hold, where the Python
 * path fails building its table).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 100   /* upb's default nesting limit for messages and groups */
#define LINEAR_KEYS 16  /* attribute sets up to this size are searched linearly */

/* ------------------------------------------------------------------------------------ */
/* Basic types                                                                          */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Seg;

/* The occurrences of a singular message field (usually one). Overflow storage is owned by
 * the decoder context and freed when decoding ends. No self-pointers: safe to copy. */
typedef struct {
    uint32_t n, cap;
    Seg *heap;
    Seg inl[2];
} SegVec;

/* A growable list of segments owned by the context (repeated fields of one span). */
typedef struct {
    Seg *v;
    size_t n, cap;
} SegList;

/* Output buffer backed by a bytearray (handed to pyarrow without a copy). */
typedef struct {
    PyObject *ba;
    char *p;
    size_t len, cap;
} Buf;

enum { AV_NONE, AV_STR, AV_BOOL, AV_INT, AV_DBL, AV_ARR, AV_KVL, AV_BYTES, AV_STRIDX };

/* One resolved AnyValue: its final oneof case and payload. */
typedef struct {
    int kind;
    int too_long; /* anyvalue._too_long(value, max_len); valid after a validating resolve */
    Seg s;        /* string / bytes */
    uint64_t u;   /* int / bool / double bits */
    SegVec sub;   /* array_value / kvlist_value occurrences since the case was set */
} AV;

typedef struct {
    Seg key;
    uint32_t hash;
    AV av;
} Entry;

/* Insertion-ordered key -> value map (Python dict semantics for str keys). */
typedef struct {
    Entry *e;
    uint32_t n, cap;
    uint32_t *tab; /* open addressing, entry index + 1; NULL while linear */
    uint32_t tabsize;
} KeySet;

enum {
    V_TRACE_ID,
    V_SPAN_ID,
    V_PARENT,
    V_TRACE_STATE,
    V_NAME,
    V_STATUS_MSG,
    V_ATTRS,
    V_EVENTS,
    V_LINKS,
    NV
};
static const char *const VNAMES[NV] = {
    "trace_id",       "span_id",    "parent_span_id", "trace_state", "name",
    "status_message", "attributes", "events",         "links",
};

enum {
    F_FLAGS,
    F_KIND,
    F_START,
    F_END,
    F_DURATION,
    F_STATUS_CODE,
    F_DROPPED_ATTRS,
    F_DROPPED_EVENTS,
    F_DROPPED_LINKS,
    NF
};
static const char *const FNAMES[NF] = {
    "flags",
    "kind",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "duration_nano",
    "status_code",
    "dropped_attributes_count",
    "dropped_events_count",
    "dropped_links_count",
};

typedef struct {
    const uint8_t *base; /* start of the body, for error offsets */
    uint64_t cap;        /* attribute count limit (>= 0) */
    uint64_t max_len;    /* attribute value length limit (>= 0) */
    uint64_t dropped, truncated;

    void **owned;
    size_t nowned, capowned;

    SegList kvs, events, links, kvs2;
    SegVec status;
    KeySet ks;

    Buf voff[NV], vdata[NV];
    Buf fixed[NF];
    uint64_t nspans;

    PyObject *resources; /* list of (bytes, str) */
    PyObject *scopes;    /* list of (bytes, str, resource index, spans stored) */

    uint64_t rejected;
    int reject_reason;
    Seg reject_name;
} Ctx;

/* ------------------------------------------------------------------------------------ */
/* Errors and memory                                                                    */

static int fail(Ctx *c, const uint8_t *at, const char *what) {
    Py_ssize_t off = at && c->base ? (Py_ssize_t)(at - c->base) : -1;
    PyErr_Format(PyExc_ValueError, "%s (at byte %zd)", what, off);
    return -1;
}

static int fail_depth(Ctx *c, const uint8_t *at) {
    return fail(c, at, "messages nested more than 100 deep");
}

static void *ctx_alloc(Ctx *c, size_t size) {
    if (c->nowned == c->capowned) {
        size_t nc = c->capowned ? c->capowned * 2 : 16;
        void **no = (void **)realloc(c->owned, nc * sizeof(void *));
        if (!no) {
            PyErr_NoMemory();
            return NULL;
        }
        c->owned = no;
        c->capowned = nc;
    }
    void *p = malloc(size ? size : 1);
    if (!p) {
        PyErr_NoMemory();
        return NULL;
    }
    c->owned[c->nowned++] = p;
    return p;
}

static inline const Seg *sv_data(const SegVec *s) { return s->heap ? s->heap : s->inl; }

static inline void sv_clear(SegVec *s) {
    s->n = 0;
    s->cap = 0;
    s->heap = NULL;
}

static int sv_push(Ctx *c, SegVec *s, Seg g) {
    if (!s->heap) {
        if (s->n < 2) {
            s->inl[s->n++] = g;
            return 0;
        }
        Seg *h = (Seg *)ctx_alloc(c, 8 * sizeof(Seg));
        if (!h) return -1;
        memcpy(h, s->inl, s->n * sizeof(Seg));
        s->heap = h;
        s->cap = 8;
    } else if (s->n == s->cap) {
        if (s->cap > (UINT32_MAX / 2)) return (PyErr_NoMemory(), -1);
        Seg *h = (Seg *)ctx_alloc(c, (size_t)s->cap * 2 * sizeof(Seg));
        if (!h) return -1;
        memcpy(h, s->heap, s->n * sizeof(Seg));
        s->heap = h;
        s->cap *= 2;
    }
    s->heap[s->n++] = g;
    return 0;
}

static int sl_push(SegList *l, Seg g) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        Seg *nv = (Seg *)realloc(l->v, nc * sizeof(Seg));
        if (!nv) {
            PyErr_NoMemory();
            return -1;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = g;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Output buffers                                                                       */

static int buf_init(Buf *b, size_t cap) {
    b->ba = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)cap);
    if (!b->ba) return -1;
    b->p = PyByteArray_AS_STRING(b->ba);
    b->len = 0;
    b->cap = cap;
    return 0;
}

static int buf_grow(Buf *b, size_t need) {
    size_t nc = b->cap ? b->cap : 64;
    while (nc - b->len < need) {
        if (nc > (size_t)PY_SSIZE_T_MAX / 2) return (PyErr_NoMemory(), -1);
        nc *= 2;
    }
    if (PyByteArray_Resize(b->ba, (Py_ssize_t)nc) < 0) return -1;
    b->p = PyByteArray_AS_STRING(b->ba);
    b->cap = nc;
    return 0;
}

#define RESERVE(b, n) (((b)->cap - (b)->len >= (size_t)(n)) ? 0 : buf_grow((b), (size_t)(n)))

static inline int put(Buf *b, const void *src, size_t n) {
    if (RESERVE(b, n)) return -1;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static inline int putc1(Buf *b, char ch) {
    if (RESERVE(b, 1)) return -1;
    b->p[b->len++] = ch;
    return 0;
}

static int put_u64(Buf *b, uint64_t v) {
    if (RESERVE(b, 20)) return -1;
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10) n++;
    char *o = b->p + b->len + n;
    do {
        *--o = (char)('0' + (v % 10));
        v /= 10;
    } while (v);
    b->len += n;
    return 0;
}

static int put_i64(Buf *b, int64_t v) {
    if (v < 0) {
        if (putc1(b, '-')) return -1;
        return put_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(b, (uint64_t)v);
}

/* ------------------------------------------------------------------------------------ */
/* UTF-8                                                                                */

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        uint8_t ch = s[i];
        if (ch < 0x80) {
            i++;
        } else if (ch < 0xC2) {
            return 0;
        } else if (ch < 0xE0) {
            if (n - i < 2 || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (ch < 0xF0) {
            if (n - i < 3) return 0;
            uint8_t c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (ch == 0xE0 && c1 < 0xA0) return 0; /* overlong */
            if (ch == 0xED && c1 > 0x9F) return 0; /* surrogate */
            i += 3;
        } else if (ch < 0xF5) {
            if (n - i < 4) return 0;
            uint8_t c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (ch == 0xF0 && c1 < 0x90) return 0; /* overlong */
            if (ch == 0xF4 && c1 > 0x8F) return 0; /* > U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static inline int chk_utf8(Ctx *c, Seg s) {
    if (utf8_valid(s.p, (size_t)(s.end - s.p))) return 0;
    return fail(c, s.p, "string field is not valid UTF-8");
}

/* Byte length of the first `limit` code points of valid UTF-8 `s` (all of it if shorter). */
static size_t utf8_prefix(Seg s, uint64_t limit) {
    size_t n = (size_t)(s.end - s.p);
    if ((uint64_t)n <= limit) return n;
    uint64_t cps = 0;
    for (size_t i = 0; i < n; i++) {
        if ((s.p[i] & 0xC0) != 0x80) {
            if (cps == limit) return i;
            cps++;
        }
    }
    return n;
}

/* len(str) > limit, in code points. */
static int utf8_longer(Seg s, uint64_t limit) {
    size_t n = (size_t)(s.end - s.p);
    if ((uint64_t)n <= limit) return 0;
    return utf8_prefix(s, limit) < n;
}

/* ------------------------------------------------------------------------------------ */
/* JSON writing                                                                         */

/* 0: copy as is; otherwise the character after the backslash ('u' = \u00XX). */
static char JSON_ESC[256];

static void init_json_esc(void) {
    for (int i = 0; i < 0x20; i++) JSON_ESC[i] = 'u';
    JSON_ESC['\b'] = 'b';
    JSON_ESC['\t'] = 't';
    JSON_ESC['\n'] = 'n';
    JSON_ESC['\f'] = 'f';
    JSON_ESC['\r'] = 'r';
    JSON_ESC['"'] = '"';
    JSON_ESC['\\'] = '\\';
}

/* Does any byte of w need escaping (< 0x20, '"' or '\\')? */
static inline int word_needs_escape(uint64_t w) {
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t t = ((w - ones * 0x20) | (q - ones) | (bs - ones)) & ~w & highs;
    return t != 0;
}

/* Strings with escapes: byte by byte from `i` on (the first i bytes are already out). */
static int put_json_str_slow(Buf *b, const uint8_t *s, size_t n, size_t i) {
    static const char hex[] = "0123456789abcdef";
    char *o = b->p + b->len;
    size_t start = i;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!word_needs_escape(w)) {
                i += 8;
                continue;
            }
        }
        char e = JSON_ESC[s[i]];
        if (!e) {
            i++;
            continue;
        }
        size_t run = i - start;
        memcpy(o, s + start, run);
        o += run;
        b->len = (size_t)(o - b->p);
        /* room for this escape (6) plus the rest of the string and the closing quote */
        if (RESERVE(b, 6 + (n - i) + 1)) return -1;
        o = b->p + b->len;
        *o++ = '\\';
        if (e == 'u') {
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[s[i] >> 4];
            *o++ = hex[s[i] & 15];
        } else {
            *o++ = e;
        }
        i++;
        start = i;
    }
    memcpy(o, s + start, n - start);
    o += n - start;
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

static int put_json_str(Buf *b, const uint8_t *s, size_t n) {
    /* n + quotes, plus slack for whole-word stores */
    if (RESERVE(b, n + 2 + 8)) return -1;
    char *o0 = b->p + b->len + 1;
    b->p[b->len] = '"';
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_needs_escape(w)) goto slow;
        memcpy(o0 + i, &w, 8);
    }
    if (i < n) {
        if (n >= 8) {
            /* the last 8 bytes, overlapping what is already copied */
            uint64_t w;
            memcpy(&w, s + n - 8, 8);
            if (word_needs_escape(w)) goto slow;
            memcpy(o0 + n - 8, &w, 8);
        } else {
            for (; i < n; i++) {
                if (JSON_ESC[s[i]]) goto slow;
                o0[i] = (char)s[i];
            }
        }
    }
    o0[n] = '"';
    b->len += n + 2;
    return 0;
slow:
    b->len += 1 + i;
    return put_json_str_slow(b, s, n, i);
}

static inline int put_json_seg(Buf *b, Seg s) {
    return put_json_str(b, s.p, (size_t)(s.end - s.p));
}

/* Shortest round-trip digits of a finite double, as repr() writes them.
 *
 * Free-format digit generation (Steele & White; Burger & Dybvig 1996) on exact integers:
 * v = R/S, and the half-gaps to the neighbouring doubles are Mp/S (above) and Mm/S (below).
 * Digits are produced until the rest falls inside that rounding interval, so the result is
 * the shortest decimal that reads back as v, and of those the closest to v. It runs on
 * unsigned __int128 and is exact while every quantity stays below 2^127, which holds for
 * normal doubles with binary exponent e in [-118, 60] (about 1e-20 <= |v| < 1e34); other
 * doubles go through CPython's own dtoa. Returns the length written to out (>= 32 bytes). */
#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 u128;
#define HAVE_U128 1
static u128 POW10[39];

static void init_pow10(void) {
    POW10[0] = 1;
    for (int i = 1; i < 39; i++) POW10[i] = POW10[i - 1] * 10;
}

static int shortest_digits(double v, char *digits, int *decpt) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    int bexp = (int)((bits >> 52) & 0x7FF);
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    if (bexp == 0 || bexp == 0x7FF) return 0; /* zero, subnormal, inf, nan: not here */
    int e = bexp - 1075;
    if (e < -118 || e > 60) return 0;
    uint64_t m = frac | (UINT64_C(1) << 52);
    int boundary = frac == 0 && bexp > 1; /* the double below is closer */
    int even = (m & 1) == 0;              /* interval ends read back as v (ties to even) */
    u128 R, S, Mp, Mm;
    if (e >= 0) {
        R = (u128)m << (e + 2);
        Mp = (u128)2 << e;
        Mm = (u128)(boundary ? 1 : 2) << e;
        S = 4;
    } else {
        R = (u128)m << 2;
        Mp = 2;
        Mm = boundary ? 1 : 2;
        S = (u128)4 << (-e);
    }
    /* v is in [2^(e+52), 2^(e+53)), so ceil(log10 v) <= ceil((e + 53) log10 2), this
     * estimate (78913 / 2^18 is log10 2 rounded up; the shift floors, hence the + 1): the
     * fix-ups below then mostly scale R down rather than S up, which keeps S small. */
    int k = (int)(((int64_t)(e + 53) * 78913) >> 18) + 1;
    if (k >= 0) {
        if (k > 38) return 0;
        S *= POW10[k];
    } else {
        if (-k > 38) return 0;
        R *= POW10[-k];
        Mp *= POW10[-k];
        Mm *= POW10[-k];
    }
    /* make 10^(k-1) <= upper end < 10^k, honouring whether the end itself reads back */
    while (even ? R + Mp >= S : R + Mp > S) {
        S *= 10;
        k++;
    }
    while (even ? (R + Mp) * 10 < S : (R + Mp) * 10 <= S) {
        R *= 10;
        Mp *= 10;
        Mm *= 10;
        k--;
    }
    int n = 0;
    if (S < ((u128)1 << 60)) {
        /* R, Mm <= Mp < S and every product below 10 * S < 2^64: the same loop in 64-bit
         * words */
        uint64_t r = (uint64_t)R, s = (uint64_t)S, mp = (uint64_t)Mp, mm = (uint64_t)Mm;
        for (;;) {
            r *= 10;
            mp *= 10;
            mm *= 10;
            int d = (int)(r / s);
            r %= s;
            int low = even ? r <= mm : r < mm;
            int high = even ? r + mp >= s : r + mp > s;
            if (!low && !high) {
                digits[n++] = (char)('0' + d);
                if (n >= 20) return 0;
                continue;
            }
            if (low && high) {
                uint64_t twice = r * 2;
                if (twice > s || (twice == s && (d & 1))) d++;
            } else if (high) {
                d++;
            }
            if (d > 9) return 0;
            digits[n++] = (char)('0' + d);
            break;
        }
        *decpt = k;
        return n;
    }
    for (;;) {
        R *= 10;
        Mp *= 10;
        Mm *= 10;
        int d = 0;
        while (R >= S) {
            R -= S;
            d++;
        }
        int low = even ? R <= Mm : R < Mm;
        int high = even ? R + Mp >= S : R + Mp > S;
        if (!low && !high) {
            digits[n++] = (char)('0' + d);
            if (n >= 20) return 0; /* cannot happen for doubles; stay safe */
            continue;
        }
        if (low && high) {
            u128 twice = R * 2;
            if (twice > S || (twice == S && (d & 1))) d++;
        } else if (high) {
            d++;
        }
        if (d > 9) return 0; /* cannot happen (the previous digit would have ended it) */
        digits[n++] = (char)('0' + d);
        break;
    }
    *decpt = k;
    return n;
}
#else
#define HAVE_U128 0
static void init_pow10(void) {}
#endif

/* repr() layout of digits d1..dn * 10^(decpt - n): scientific below 1e-4 or from 1e16 on. */
static size_t layout_double(char *out, int neg, const char *dg, int n, int decpt) {
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt <= -4 || decpt > 16) {
        int x = decpt - 1;
        *o++ = dg[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, dg + 1, (size_t)(n - 1));
            o += n - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        if (x < 0) x = -x;
        if (x >= 100) *o++ = (char)('0' + x / 100);
        *o++ = (char)('0' + (x / 10) % 10);
        *o++ = (char)('0' + x % 10);
    } else if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        memcpy(o, dg, (size_t)n);
        o += n;
    } else if (decpt < n) {
        memcpy(o, dg, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        memcpy(o, dg + decpt, (size_t)(n - decpt));
        o += n - decpt;
    } else {
        memcpy(o, dg, (size_t)n);
        o += n;
        for (int i = n; i < decpt; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    }
    return (size_t)(o - out);
}

static int put_finite_double(Buf *b, double d) {
#if HAVE_U128
    char digits[24];
    int decpt = 0, n;
    if (d == 0) return signbit(d) ? PUTS(b, "-0.0") : PUTS(b, "0.0");
    n = shortest_digits(fabs(d), digits, &decpt);
    if (n > 0) {
        if (RESERVE(b, 48)) return -1;
        b->len += layout_double(b->p + b->len, d < 0, digits, n, decpt);
        return 0;
    }
#endif
    char *txt = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!txt) return -1;
    int r = put(b, txt, strlen(txt));
    PyMem_Free(txt);
    return r;
}

static int put_double(Buf *b, double d) {
    if (isnan(d)) return PUTS(b, "{\"\\u0000d\":\"NaN\"}");
    if (isinf(d))
        return d > 0 ? PUTS(b, "{\"\\u0000d\":\"Infinity\"}")
                     : PUTS(b, "{\"\\u0000d\":\"-Infinity\"}");
    return put_finite_double(b, d);
}

static int put_base64(Buf *b, const uint8_t *s, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t outlen = (n + 2) / 3 * 4;
    if (RESERVE(b, outlen)) return -1;
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

static int put_hex_json(Buf *b, Seg s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = (size_t)(s.end - s.p);
    if (RESERVE(b, 2 * n + 2)) return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = hex[s.p[i] >> 4];
        *o++ = hex[s.p[i] & 15];
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Wire format reader                                                                   */

typedef struct {
    uint32_t num;
    uint32_t wt;
    uint64_t v;
    Seg s;
} Fld;

static inline uint64_t le64(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) |
           ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* Varint of at most 10 bytes; bits beyond 64 are dropped (as upb does). */
static int rd_varint(Ctx *c, const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return fail(c, p, "truncated varint");
        uint8_t byte = *p++;
        v |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            *out = v;
            *pp = p;
            return 0;
        }
    }
    return fail(c, p, "varint longer than 10 bytes");
}

/* Tags and lengths: at most 5 bytes, with a maximum value. */
static int rd_varint32(Ctx *c, const uint8_t **pp, const uint8_t *end, uint64_t max,
                       uint32_t *out, const char *what) {
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) {
        if (p >= end) return fail(c, p, "truncated varint");
        uint8_t byte = *p++;
        v |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) {
            if (v > max) break;
            *out = (uint32_t)v;
            *pp = p;
            return 0;
        }
    }
    return fail(c, p, what);
}

static int skip_group(Ctx *c, const uint8_t **pp, const uint8_t *end, uint32_t num, int level);

/* Reads one field of a message at nesting `level` (unknown groups are skipped whole and
 * reported with wt 3, which no known field of these messages has). */
static int rd_field(Ctx *c, const uint8_t **pp, const uint8_t *end, int level, Fld *f) {
    uint32_t tag;
    const uint8_t *at = *pp;
    if (at < end && *at < 0x80) {
        tag = *at;
        *pp = at + 1;
    } else if (rd_varint32(c, pp, end, UINT32_MAX, &tag, "invalid field tag")) {
        return -1;
    }
    f->num = tag >> 3;
    f->wt = tag & 7;
    if (f->num == 0) return fail(c, at, "invalid field number 0");
    if (f->wt == 2) {
        const uint8_t *p = *pp;
        uint32_t n;
        if (p < end && *p < 0x80) {
            n = *p;
            p++;
            *pp = p;
        } else if (rd_varint32(c, pp, end, INT32_MAX, &n, "invalid length")) {
            return -1;
        }
        if ((size_t)(end - *pp) < n)
            return fail(c, *pp, "length-delimited field runs past its end");
        f->s.p = *pp;
        f->s.end = *pp + n;
        *pp += n;
        return 0;
    }
    switch (f->wt) {
    case 0:
        if (*pp < end && **pp < 0x80) {
            f->v = **pp;
            *pp += 1;
            return 0;
        }
        return rd_varint(c, pp, end, &f->v);
    case 1:
        if (end - *pp < 8) return fail(c, *pp, "truncated fixed64 field");
        f->v = le64(*pp);
        *pp += 8;
        return 0;
    case 3:
        return skip_group(c, pp, end, f->num, level + 1);
    case 5:
        if (end - *pp < 4) return fail(c, *pp, "truncated fixed32 field");
        f->v = le32(*pp);
        *pp += 4;
        return 0;
    case 4:
        return fail(c, at, "unexpected end-group tag");
    default:
        return fail(c, at, "invalid wire type");
    }
}

/* Skips an unknown group's body up to its end tag. Like upb, field number 0 is let pass
 * inside a group (only at message level is it an error); an end tag must match. */
static int skip_group(Ctx *c, const uint8_t **pp, const uint8_t *end, uint32_t num, int level) {
    if (level > MAX_DEPTH) return fail_depth(c, *pp);
    for (;;) {
        if (*pp >= end) return fail(c, *pp, "group without end tag");
        uint32_t tag, n;
        uint64_t v;
        const uint8_t *at = *pp;
        if (rd_varint32(c, pp, end, UINT32_MAX, &tag, "invalid field tag")) return -1;
        switch (tag & 7) {
        case 0:
            if (rd_varint(c, pp, end, &v)) return -1;
            break;
        case 1:
            if (end - *pp < 8) return fail(c, *pp, "truncated fixed64 field");
            *pp += 8;
            break;
        case 2:
            if (rd_varint32(c, pp, end, INT32_MAX, &n, "invalid length")) return -1;
            if ((size_t)(end - *pp) < n)
                return fail(c, *pp, "length-delimited field runs past its end");
            *pp += n;
            break;
        case 3:
            if (skip_group(c, pp, end, tag >> 3, level + 1)) return -1;
            break;
        case 4:
            if ((tag >> 3) == num) return 0;
            return fail(c, at, "mismatched end-group tag");
        case 5:
            if (end - *pp < 4) return fail(c, *pp, "truncated fixed32 field");
            *pp += 4;
            break;
        default:
            return fail(c, at, "invalid wire type");
        }
    }
}

/* Iterates the fields of a message given as its occurrences (merge = read in order). */
typedef struct {
    const Seg *segs;
    uint32_t nseg, i;
    const uint8_t *p, *end;
} It;

static inline void it_init(It *it, const Seg *segs, uint32_t n) {
    it->segs = segs;
    it->nseg = n;
    it->i = 0;
    if (n) {
        it->p = segs[0].p;
        it->end = segs[0].end;
    } else {
        it->p = it->end = NULL;
    }
}

/* 1: a field, 0: done, -1: error */
static inline int it_next(Ctx *c, It *it, int level, Fld *f) {
    while (it->p >= it->end) {
        if (it->i + 1 >= it->nseg) return 0;
        it->i++;
        it->p = it->segs[it->i].p;
        it->end = it->segs[it->i].end;
    }
    return rd_field(c, &it->p, it->end, level, f) ? -1 : 1;
}

/* ------------------------------------------------------------------------------------ */
/* AnyValue / KeyValue                                                                  */

static int resolve_av(Ctx *c, const Seg *segs, uint32_t n, int level, int validate, AV *av);

/* Validates an ArrayValue occurrence; *tl |= any element too long. */
static int vt_array(Ctx *c, Seg s, int level, int *tl) {
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    It it;
    Fld f;
    int r;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) {
            AV el;
            if (resolve_av(c, &f.s, 1, level + 1, 1, &el)) return -1;
            *tl |= el.too_long;
        }
    }
    return r;
}

/* Parses a KeyValue: the key (last wins) and the occurrences of its value. */
static int parse_kv(Ctx *c, Seg s, int level, int validate, Seg *key, SegVec *val) {
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    key->p = key->end = s.p;
    sv_clear(val);
    It it;
    Fld f;
    int r;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == 1) {
            if (validate && chk_utf8(c, f.s)) return -1;
            *key = f.s;
        } else if (f.num == 2) {
            if (sv_push(c, val, f.s)) return -1;
        }
    }
    return r;
}

static int vt_kvlist(Ctx *c, Seg s, int level, int *tl) {
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    It it;
    Fld f;
    int r;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) {
            Seg key;
            SegVec val;
            AV v;
            if (parse_kv(c, f.s, level + 1, 1, &key, &val)) return -1;
            if (resolve_av(c, sv_data(&val), val.n, level + 2, 1, &v)) return -1;
            *tl |= v.too_long;
        }
    }
    return r;
}

/* Resolves an AnyValue from its occurrences. With `validate`, also checks everything nested
 * (strings UTF-8, depth, wire format) and computes too_long. */
static int resolve_av(Ctx *c, const Seg *segs, uint32_t n, int level, int validate, AV *av) {
    av->kind = AV_NONE;
    av->too_long = 0;
    av->u = 0;
    av->s.p = av->s.end = NULL;
    sv_clear(&av->sub);
    if (n == 0) return 0;
    if (level > MAX_DEPTH) return fail_depth(c, segs[0].p);
    It it;
    Fld f;
    int r;
    it_init(&it, segs, n);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wt == 2) {
                if (validate && chk_utf8(c, f.s)) return -1;
                av->kind = AV_STR;
                av->s = f.s;
            }
            break;
        case 2:
            if (f.wt == 0) {
                av->kind = AV_BOOL;
                av->u = f.v != 0;
            }
            break;
        case 3:
            if (f.wt == 0) {
                av->kind = AV_INT;
                av->u = f.v;
            }
            break;
        case 4:
            if (f.wt == 1) {
                av->kind = AV_DBL;
                av->u = f.v;
            }
            break;
        case 5:
        case 6:
            if (f.wt == 2) {
                int k = f.num == 5 ? AV_ARR : AV_KVL;
                if (av->kind != k) {
                    av->kind = k;
                    av->sub.n = 0;
                    av->too_long = 0;
                }
                if (sv_push(c, &av->sub, f.s)) return -1;
                if (validate) {
                    int tl = 0;
                    if (k == AV_ARR ? vt_array(c, f.s, level + 1, &tl)
                                    : vt_kvlist(c, f.s, level + 1, &tl))
                        return -1;
                    av->too_long |= tl;
                }
            }
            break;
        case 7:
            if (f.wt == 2) {
                av->kind = AV_BYTES;
                av->s = f.s;
            }
            break;
        case 8:
            if (f.wt == 0) av->kind = AV_STRIDX;
            break;
        default:
            break;
        }
    }
    if (r < 0) return -1;
    if (validate) {
        if (av->kind == AV_STR)
            av->too_long = utf8_longer(av->s, c->max_len);
        else if (av->kind == AV_BYTES)
            av->too_long = (uint64_t)(av->s.end - av->s.p) > c->max_len;
        else if (av->kind != AV_ARR && av->kind != AV_KVL)
            av->too_long = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Key sets                                                                             */

/* Keys hash with a per-process random seed (like Python's str hash), so that a body cannot
 * be crafted to make every key of a large kvlist collide. */
static uint64_t HASH_SEED;

static inline uint64_t hash_mix(uint64_t x) {
#if HAVE_U128
    u128 m = (u128)x * UINT64_C(0x9E3779B97F4A7C15);
    return (uint64_t)m ^ (uint64_t)(m >> 64);
#else
    x ^= x >> 32;
    x *= UINT64_C(0xD6E8FEB86659FD93);
    x ^= x >> 32;
    x *= UINT64_C(0xD6E8FEB86659FD93);
    return x ^ (x >> 32);
#endif
}

static inline uint32_t key_hash(Seg k) {
    const uint8_t *p = k.p;
    size_t n = (size_t)(k.end - k.p);
    uint64_t h = hash_mix(HASH_SEED ^ (uint64_t)n);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = hash_mix(h ^ w ^ HASH_SEED);
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    h = hash_mix(h ^ w ^ HASH_SEED);
    return (uint32_t)(h ^ (h >> 32));
}

static inline int key_eq(Seg a, Seg b) {
    size_t n = (size_t)(a.end - a.p);
    return (size_t)(b.end - b.p) == n && (n == 0 || memcmp(a.p, b.p, n) == 0);
}

static void ks_reset(KeySet *ks) {
    ks->n = 0;
    free(ks->tab);
    ks->tab = NULL;
    ks->tabsize = 0;
}

static void ks_free(KeySet *ks) {
    free(ks->e);
    free(ks->tab);
    ks->e = NULL;
    ks->tab = NULL;
    ks->n = ks->cap = ks->tabsize = 0;
}

static int ks_rehash(KeySet *ks, uint32_t size) {
    uint32_t *tab = (uint32_t *)calloc(size, sizeof(uint32_t));
    if (!tab) return (PyErr_NoMemory(), -1);
    free(ks->tab);
    ks->tab = tab;
    ks->tabsize = size;
    for (uint32_t i = 0; i < ks->n; i++) {
        uint32_t slot = ks->e[i].hash & (size - 1);
        while (tab[slot]) slot = (slot + 1) & (size - 1);
        tab[slot] = i + 1;
    }
    return 0;
}

/* Python dict assignment out[key] = av, unless the key is new and the set already holds
 * `cap` keys: then 1 (dropped). 0 when stored, -1 on error. */
static int ks_put(KeySet *ks, Seg key, const AV *av, uint64_t cap) {
    uint32_t h = 0;
    if (!ks->tab) {
        for (uint32_t i = 0; i < ks->n; i++) {
            if (key_eq(ks->e[i].key, key)) {
                ks->e[i].av = *av;
                return 0;
            }
        }
    } else {
        h = key_hash(key);
        uint32_t mask = ks->tabsize - 1, slot = h & mask;
        while (ks->tab[slot]) {
            Entry *e = &ks->e[ks->tab[slot] - 1];
            if (e->hash == h && key_eq(e->key, key)) {
                e->av = *av;
                return 0;
            }
            slot = (slot + 1) & mask;
        }
    }
    if ((uint64_t)ks->n >= cap) return 1;
    if (ks->n == ks->cap) {
        if (ks->cap >= (UINT32_MAX / 4)) return (PyErr_NoMemory(), -1);
        uint32_t nc = ks->cap ? ks->cap * 2 : 16;
        Entry *ne = (Entry *)realloc(ks->e, nc * sizeof(Entry));
        if (!ne) return (PyErr_NoMemory(), -1);
        ks->e = ne;
        ks->cap = nc;
    }
    Entry *e = &ks->e[ks->n++];
    e->key = key;
    e->av = *av;
    e->hash = h;
    if (ks->tab) {
        if ((uint64_t)ks->n * 2 > ks->tabsize) return ks_rehash(ks, ks->tabsize * 2);
        uint32_t mask = ks->tabsize - 1, slot = h & mask;
        while (ks->tab[slot]) slot = (slot + 1) & mask;
        ks->tab[slot] = ks->n;
    } else if (ks->n > LINEAR_KEYS) {
        for (uint32_t i = 0; i < ks->n; i++) ks->e[i].hash = key_hash(ks->e[i].key);
        return ks_rehash(ks, 64);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* AnyValue -> storage JSON (anyvalue.to_json(value, max_len))                          */

static int emit_av(Ctx *c, Buf *b, const AV *av, int level);

static int emit_str(Buf *b, Seg s, uint64_t limit, int always) {
    if (always || limit) s.end = s.p + utf8_prefix(s, limit);
    return put_json_seg(b, s);
}

static int emit_entries(Ctx *c, Buf *b, const KeySet *ks, int level_av, int top) {
    if (putc1(b, '{')) return -1;
    for (uint32_t i = 0; i < ks->n; i++) {
        const Entry *e = &ks->e[i];
        if (i && putc1(b, ',')) return -1;
        if (put_json_seg(b, e->key) || putc1(b, ':')) return -1;
        if (top && e->av.kind == AV_STR) {
            /* attributes_to_json: s[:max_len] whenever len(s) > max_len */
            if (emit_str(b, e->av.s, c->max_len, 1)) return -1;
        } else if (emit_av(c, b, &e->av, level_av)) {
            return -1;
        }
    }
    return putc1(b, '}');
}

static int emit_kvlist(Ctx *c, Buf *b, const AV *av, int level) {
    KeySet ks;
    memset(&ks, 0, sizeof ks);
    const Seg *segs = sv_data(&av->sub);
    int rc = -1;
    for (uint32_t i = 0; i < av->sub.n; i++) {
        It it;
        Fld f;
        int r;
        it_init(&it, &segs[i], 1);
        while ((r = it_next(c, &it, level + 1, &f)) > 0) {
            if (f.num == 1 && f.wt == 2) {
                Seg key;
                SegVec val;
                AV v;
                if (parse_kv(c, f.s, level + 2, 0, &key, &val)) goto done;
                if (resolve_av(c, sv_data(&val), val.n, level + 3, 0, &v)) goto done;
                if (ks_put(&ks, key, &v, UINT64_MAX) < 0) goto done;
            }
        }
        if (r < 0) goto done;
    }
    rc = emit_entries(c, b, &ks, level + 3, 0);
done:
    ks_free(&ks);
    return rc;
}

static int emit_av(Ctx *c, Buf *b, const AV *av, int level) {
    switch (av->kind) {
    case AV_STR:
        return emit_str(b, av->s, c->max_len, 0);
    case AV_BOOL:
        return av->u ? PUTS(b, "true") : PUTS(b, "false");
    case AV_INT:
        return put_i64(b, (int64_t)av->u);
    case AV_DBL: {
        double d;
        memcpy(&d, &av->u, sizeof d);
        return put_double(b, d);
    }
    case AV_BYTES: {
        size_t n = (size_t)(av->s.end - av->s.p);
        if (c->max_len && (uint64_t)n > c->max_len) n = (size_t)c->max_len;
        if (PUTS(b, "{\"\\u0000b\":\"") || put_base64(b, av->s.p, n)) return -1;
        return PUTS(b, "\"}");
    }
    case AV_ARR: {
        const Seg *segs = sv_data(&av->sub);
        int first = 1;
        if (putc1(b, '[')) return -1;
        for (uint32_t i = 0; i < av->sub.n; i++) {
            It it;
            Fld f;
            int r;
            it_init(&it, &segs[i], 1);
            while ((r = it_next(c, &it, level + 1, &f)) > 0) {
                if (f.num == 1 && f.wt == 2) {
                    AV el;
                    if (!first && putc1(b, ',')) return -1;
                    first = 0;
                    if (resolve_av(c, &f.s, 1, level + 2, 0, &el)) return -1;
                    if (emit_av(c, b, &el, level + 2)) return -1;
                }
            }
            if (r < 0) return -1;
        }
        return putc1(b, ']');
    }
    case AV_KVL:
        return emit_kvlist(c, b, av, level);
    default:
        return PUTS(b, "null");
    }
}

/* Length prefix of at most 2 bytes (the fast path gives up on anything else). */
static inline int fast_len(const uint8_t **pp, const uint8_t *end, size_t *n) {
    const uint8_t *p = *pp;
    if (p >= end) return 0;
    if (p[0] < 0x80) {
        *n = p[0];
        *pp = p + 1;
        return 1;
    }
    if (end - p < 2 || p[1] >= 0x80 || p[1] == 0) return 0;
    *n = (size_t)(p[0] & 0x7F) | ((size_t)p[1] << 7);
    *pp = p + 2;
    return 1;
}

/* The usual KeyValue: exactly `key` then `value` holding one string / bool / int / double /
 * bytes member, short lengths, nothing else. Returns 1 with key and a validated AV (same
 * result as parse_kv + resolve_av), else 0: the general path decides (errors included). */
static inline int fast_kv(Ctx *c, Seg s, Seg *key, AV *av) {
    const uint8_t *p = s.p, *end = s.end;
    size_t n, vn;
    if (p >= end || *p++ != 0x0A || !fast_len(&p, end, &n) || (size_t)(end - p) < n) return 0;
    key->p = p;
    key->end = p + n;
    p += n;
    if (p >= end || *p++ != 0x12 || !fast_len(&p, end, &vn) || (size_t)(end - p) != vn ||
        vn == 0)
        return 0;
    /* p .. end is the AnyValue */
    uint8_t t = *p++;
    av->s.p = av->s.end = p;
    av->u = 0;
    av->too_long = 0;
    sv_clear(&av->sub);
    switch (t) {
    case 0x0A: /* string_value */
    case 0x3A: /* bytes_value */
        if (!fast_len(&p, end, &n) || (size_t)(end - p) != n) return 0;
        av->s.p = p;
        av->s.end = end;
        if (t == 0x0A) {
            if (!utf8_valid(p, n)) return 0; /* the general path reports it */
            av->kind = AV_STR;
            av->too_long = utf8_longer(av->s, c->max_len);
        } else {
            av->kind = AV_BYTES;
            av->too_long = (uint64_t)n > c->max_len;
        }
        break;
    case 0x10: /* bool_value */
    case 0x18: { /* int_value */
        uint64_t v = 0;
        int i = 0;
        for (;; i++) {
            if (p >= end || i == 10) return 0;
            uint8_t byte = *p++;
            v |= (uint64_t)(byte & 0x7F) << (7 * i);
            if (!(byte & 0x80)) break;
        }
        if (p != end) return 0;
        av->kind = t == 0x10 ? AV_BOOL : AV_INT;
        av->u = t == 0x10 ? (v != 0) : v;
        break;
    }
    case 0x21: /* double_value */
        if (end - p != 8) return 0;
        av->kind = AV_DBL;
        av->u = le64(p);
        break;
    default:
        return 0;
    }
    return utf8_valid(key->p, (size_t)(key->end - key->p)) ? 1 : 0;
}

/* anyvalue.attributes_to_json over KeyValue occurrences at nesting `level`. With emit == 0
 * only validates (a rejected span). *affected gets the limits' count. */
static int do_attrs(Ctx *c, Buf *b, const Seg *kvs, size_t n, int level, int emit,
                    uint64_t *affected) {
    KeySet *ks = &c->ks;
    uint64_t aff = 0;
    ks_reset(ks);
    for (size_t i = 0; i < n; i++) {
        Seg key;
        SegVec val;
        AV av;
        if (level + 1 > MAX_DEPTH || !fast_kv(c, kvs[i], &key, &av)) {
            if (parse_kv(c, kvs[i], level, 1, &key, &val)) return -1;
            if (resolve_av(c, sv_data(&val), val.n, level + 1, 1, &av)) return -1;
        }
        if (!emit) continue;
        int r = ks_put(ks, key, &av, c->cap);
        if (r < 0) return -1;
        if (r == 1) {
            aff++;
            c->dropped++;
        } else if (av.too_long) {
            aff++;
            c->truncated++;
        }
    }
    *affected = aff;
    if (!emit) return 0;
    if (ks->n == 0) return PUTS(b, "{}");
    return emit_entries(c, b, ks, level + 1, 1);
}

/* ------------------------------------------------------------------------------------ */
/* Events, links, status                                                                */

static int do_events(Ctx *c, Buf *b, int emit) {
    const int level = 4;
    if (emit && putc1(b, '[')) return -1;
    for (size_t i = 0; i < c->events.n; i++) {
        Seg s = c->events.v[i];
        if (level > MAX_DEPTH) return fail_depth(c, s.p);
        uint64_t t = 0, dropped = 0, aff = 0;
        Seg name = {s.p, s.p};
        It it;
        Fld f;
        int r;
        c->kvs2.n = 0;
        it_init(&it, &s, 1);
        while ((r = it_next(c, &it, level, &f)) > 0) {
            switch (f.num) {
            case 1:
                if (f.wt == 1) t = f.v;
                break;
            case 2:
                if (f.wt == 2) {
                    if (chk_utf8(c, f.s)) return -1;
                    name = f.s;
                }
                break;
            case 3:
                if (f.wt == 2 && sl_push(&c->kvs2, f.s)) return -1;
                break;
            case 4:
                if (f.wt == 0) dropped = (uint32_t)f.v;
                break;
            default:
                break;
            }
        }
        if (r < 0) return -1;
        if (!emit) {
            if (do_attrs(c, b, c->kvs2.v, c->kvs2.n, level + 1, 0, &aff)) return -1;
            continue;
        }
        if (i && putc1(b, ',')) return -1;
        if (PUTS(b, "{\"timeUnixNano\":") || put_u64(b, t) || PUTS(b, ",\"name\":") ||
            put_json_seg(b, name) || PUTS(b, ",\"attributes\":"))
            return -1;
        if (do_attrs(c, b, c->kvs2.v, c->kvs2.n, level + 1, 1, &aff)) return -1;
        if (PUTS(b, ",\"droppedAttributesCount\":") || put_u64(b, dropped + aff) ||
            putc1(b, '}'))
            return -1;
    }
    return emit ? putc1(b, ']') : 0;
}

static int do_links(Ctx *c, Buf *b, int emit) {
    const int level = 4;
    if (emit && putc1(b, '[')) return -1;
    for (size_t i = 0; i < c->links.n; i++) {
        Seg s = c->links.v[i];
        if (level > MAX_DEPTH) return fail_depth(c, s.p);
        uint64_t dropped = 0, aff = 0;
        uint32_t flags = 0;
        Seg tid = {s.p, s.p}, sid = {s.p, s.p}, ts = {s.p, s.p};
        It it;
        Fld f;
        int r;
        c->kvs2.n = 0;
        it_init(&it, &s, 1);
        while ((r = it_next(c, &it, level, &f)) > 0) {
            switch (f.num) {
            case 1:
                if (f.wt == 2) tid = f.s;
                break;
            case 2:
                if (f.wt == 2) sid = f.s;
                break;
            case 3:
                if (f.wt == 2) {
                    if (chk_utf8(c, f.s)) return -1;
                    ts = f.s;
                }
                break;
            case 4:
                if (f.wt == 2 && sl_push(&c->kvs2, f.s)) return -1;
                break;
            case 5:
                if (f.wt == 0) dropped = (uint32_t)f.v;
                break;
            case 6:
                if (f.wt == 5) flags = (uint32_t)f.v;
                break;
            default:
                break;
            }
        }
        if (r < 0) return -1;
        if (!emit) {
            if (do_attrs(c, b, c->kvs2.v, c->kvs2.n, level + 1, 0, &aff)) return -1;
            continue;
        }
        if (i && putc1(b, ',')) return -1;
        if (PUTS(b, "{\"traceId\":") || put_hex_json(b, tid) || PUTS(b, ",\"spanId\":") ||
            put_hex_json(b, sid) || PUTS(b, ",\"traceState\":") || put_json_seg(b, ts) ||
            PUTS(b, ",\"attributes\":"))
            return -1;
        if (do_attrs(c, b, c->kvs2.v, c->kvs2.n, level + 1, 1, &aff)) return -1;
        if (PUTS(b, ",\"droppedAttributesCount\":") || put_u64(b, dropped + aff) ||
            PUTS(b, ",\"flags\":") || put_u64(b, flags) || putc1(b, '}'))
            return -1;
    }
    return emit ? putc1(b, ']') : 0;
}

static int do_status(Ctx *c, int32_t *code, Seg *msg) {
    const int level = 4;
    static const uint8_t empty[1] = {0};
    *code = 0;
    msg->p = msg->end = empty;
    if (c->status.n == 0) return 0;
    if (level > MAX_DEPTH) return fail_depth(c, sv_data(&c->status)[0].p);
    It it;
    Fld f;
    int r;
    it_init(&it, sv_data(&c->status), c->status.n);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.num == 2 && f.wt == 2) {
            if (chk_utf8(c, f.s)) return -1;
            *msg = f.s;
        } else if (f.num == 3 && f.wt == 0) {
            *code = (int32_t)(uint32_t)f.v;
        }
    }
    return r;
}

/* ------------------------------------------------------------------------------------ */
/* Span                                                                                 */

/* Appends the native bytes of variable v (a fixed-width column value). */
#define PUT_FIXED(b, v)                                                                    \
    (RESERVE((b), sizeof(v))                                                               \
         ? -1                                                                              \
         : (memcpy((b)->p + (b)->len, &(v), sizeof(v)), (b)->len += sizeof(v), 0))

static int end_var(Ctx *c, int col) {
    size_t len = c->vdata[col].len;
    if (len > INT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "column %s holds more than 2 GiB in one request",
                     VNAMES[col]);
        return -1;
    }
    int32_t off = (int32_t)len;
    return PUT_FIXED(&c->voff[col], off);
}

static int put_var(Ctx *c, int col, Seg s) {
    if (put(&c->vdata[col], s.p, (size_t)(s.end - s.p))) return -1;
    return end_var(c, col);
}

static int is_zero(Seg s) {
    for (const uint8_t *p = s.p; p < s.end; p++)
        if (*p) return 0;
    return 1;
}

enum { R_NONE, R_TRACE_ID, R_SPAN_ID, R_PARENT, R_TIME };

static int do_span(Ctx *c, Seg s) {
    const int level = 3;
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    Seg tid = {s.p, s.p}, sid = tid, pid = tid, ts = tid, name = tid;
    uint32_t flags = 0, d_attrs = 0, d_events = 0, d_links = 0;
    int32_t kind = 0;
    uint64_t start = 0, end = 0;
    It it;
    Fld f;
    int r;
    c->kvs.n = 0;
    c->events.n = 0;
    c->links.n = 0;
    sv_clear(&c->status);
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wt == 2) tid = f.s;
            break;
        case 2:
            if (f.wt == 2) sid = f.s;
            break;
        case 3:
            if (f.wt == 2) {
                if (chk_utf8(c, f.s)) return -1;
                ts = f.s;
            }
            break;
        case 4:
            if (f.wt == 2) pid = f.s;
            break;
        case 5:
            if (f.wt == 2) {
                if (chk_utf8(c, f.s)) return -1;
                name = f.s;
            }
            break;
        case 6:
            if (f.wt == 0) kind = (int32_t)(uint32_t)f.v;
            break;
        case 7:
            if (f.wt == 1) start = f.v;
            break;
        case 8:
            if (f.wt == 1) end = f.v;
            break;
        case 9:
            if (f.wt == 2 && sl_push(&c->kvs, f.s)) return -1;
            break;
        case 10:
            if (f.wt == 0) d_attrs = (uint32_t)f.v;
            break;
        case 11:
            if (f.wt == 2 && sl_push(&c->events, f.s)) return -1;
            break;
        case 12:
            if (f.wt == 0) d_events = (uint32_t)f.v;
            break;
        case 13:
            if (f.wt == 2 && sl_push(&c->links, f.s)) return -1;
            break;
        case 14:
            if (f.wt == 0) d_links = (uint32_t)f.v;
            break;
        case 15:
            if (f.wt == 2 && sv_push(c, &c->status, f.s)) return -1;
            break;
        case 16:
            if (f.wt == 5) flags = (uint32_t)f.v;
            break;
        default:
            break;
        }
    }
    if (r < 0) return -1;

    int reason = R_NONE;
    if (tid.end - tid.p != 16 || is_zero(tid))
        reason = R_TRACE_ID;
    else if (sid.end - sid.p != 8 || is_zero(sid))
        reason = R_SPAN_ID;
    else if (pid.end != pid.p && pid.end - pid.p != 8)
        reason = R_PARENT;
    else if (start >= (UINT64_C(1) << 63) || end >= (UINT64_C(1) << 63))
        reason = R_TIME;

    int32_t scode;
    Seg smsg;
    if (do_status(c, &scode, &smsg)) return -1;

    if (reason != R_NONE) {
        uint64_t aff;
        if (!c->rejected++) {
            c->reject_reason = reason;
            c->reject_name = name;
        }
        if (do_attrs(c, NULL, c->kvs.v, c->kvs.n, level + 1, 0, &aff)) return -1;
        if (do_events(c, NULL, 0)) return -1;
        return do_links(c, NULL, 0);
    }

    uint64_t aff = 0;
    Buf *ab = &c->vdata[V_ATTRS];
    if (do_attrs(c, ab, c->kvs.v, c->kvs.n, level + 1, 1, &aff) || end_var(c, V_ATTRS))
        return -1;
    if ((uint64_t)d_attrs + aff > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError,
                        "span dropped_attributes_count exceeds the uint32 range");
        return -1;
    }
    if (c->events.n == 0) {
        if (PUTS(&c->vdata[V_EVENTS], "[]")) return -1;
    } else if (do_events(c, &c->vdata[V_EVENTS], 1)) {
        return -1;
    }
    if (end_var(c, V_EVENTS)) return -1;
    if (c->links.n == 0) {
        if (PUTS(&c->vdata[V_LINKS], "[]")) return -1;
    } else if (do_links(c, &c->vdata[V_LINKS], 1)) {
        return -1;
    }
    if (end_var(c, V_LINKS)) return -1;

    if (kind < -128 || kind > 127) {
        PyErr_Format(PyExc_OverflowError, "span kind %d is out of range", (int)kind);
        return -1;
    }
    if (scode < -128 || scode > 127) {
        PyErr_Format(PyExc_OverflowError, "span status code %d is out of range", (int)scode);
        return -1;
    }
    int8_t k8 = (int8_t)kind, s8 = (int8_t)scode;
    int64_t st = (int64_t)start, en = (int64_t)end, dur = end > start ? en - st : 0;
    uint32_t da = (uint32_t)(d_attrs + aff);
    if (put_var(c, V_TRACE_ID, tid) || put_var(c, V_SPAN_ID, sid) || put_var(c, V_PARENT, pid) ||
        put_var(c, V_TRACE_STATE, ts) || put_var(c, V_NAME, name) ||
        put_var(c, V_STATUS_MSG, smsg))
        return -1;
    if (PUT_FIXED(&c->fixed[F_FLAGS], flags) || PUT_FIXED(&c->fixed[F_KIND], k8) ||
        PUT_FIXED(&c->fixed[F_START], st) || PUT_FIXED(&c->fixed[F_END], en) ||
        PUT_FIXED(&c->fixed[F_DURATION], dur) || PUT_FIXED(&c->fixed[F_STATUS_CODE], s8) ||
        PUT_FIXED(&c->fixed[F_DROPPED_ATTRS], da) ||
        PUT_FIXED(&c->fixed[F_DROPPED_EVENTS], d_events) ||
        PUT_FIXED(&c->fixed[F_DROPPED_LINKS], d_links))
        return -1;
    c->nspans++;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Resource / scope (validated here, valued in fast.py)                                 */

static int vt_kv(Ctx *c, Seg s, int level) {
    Seg key;
    SegVec val;
    AV av;
    if (parse_kv(c, s, level, 1, &key, &val)) return -1;
    return resolve_av(c, sv_data(&val), val.n, level + 1, 1, &av);
}

static int vt_resource(Ctx *c, Seg s, int level) {
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    It it;
    Fld f;
    int r;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == 1) {
            if (vt_kv(c, f.s, level + 1)) return -1;
        } else if (f.num == 3) { /* EntityRef */
            if (level + 1 > MAX_DEPTH) return fail_depth(c, f.s.p);
            It it2;
            Fld g;
            int r2;
            it_init(&it2, &f.s, 1);
            while ((r2 = it_next(c, &it2, level + 1, &g)) > 0) {
                if (g.wt == 2 && g.num >= 1 && g.num <= 4 && chk_utf8(c, g.s)) return -1;
            }
            if (r2 < 0) return -1;
        }
    }
    return r;
}

static int vt_scope(Ctx *c, Seg s, int level) {
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    It it;
    Fld f;
    int r;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == 1 || f.num == 2) {
            if (chk_utf8(c, f.s)) return -1;
        } else if (f.num == 3) {
            if (vt_kv(c, f.s, level + 1)) return -1;
        }
    }
    return r;
}

/* (bytes of the concatenated occurrences, schema_url str [, resource index, spans]) */
static PyObject *record(const SegVec *occ, Seg url, Py_ssize_t ridx, uint64_t nspans) {
    size_t total = 0;
    const Seg *segs = sv_data(occ);
    for (uint32_t i = 0; i < occ->n; i++) total += (size_t)(segs[i].end - segs[i].p);
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!bytes) return NULL;
    char *o = PyBytes_AS_STRING(bytes);
    for (uint32_t i = 0; i < occ->n; i++) {
        size_t n = (size_t)(segs[i].end - segs[i].p);
        memcpy(o, segs[i].p, n);
        o += n;
    }
    PyObject *u = PyUnicode_DecodeUTF8((const char *)url.p, url.end - url.p, "strict");
    if (!u) {
        Py_DECREF(bytes);
        return NULL;
    }
    if (ridx < 0) return Py_BuildValue("(NN)", bytes, u);
    return Py_BuildValue("(NNnK)", bytes, u, ridx, (unsigned long long)nspans);
}

static int do_scope_spans(Ctx *c, Seg s, Py_ssize_t ridx) {
    const int level = 2;
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    uint64_t before = c->nspans;
    SegVec scope;
    Seg url = {s.p, s.p};
    It it;
    Fld f;
    int r;
    sv_clear(&scope);
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == 1) {
            if (sv_push(c, &scope, f.s)) return -1;
        } else if (f.num == 2) {
            if (do_span(c, f.s)) return -1;
        } else if (f.num == 3) {
            if (chk_utf8(c, f.s)) return -1;
            url = f.s;
        }
    }
    if (r < 0) return -1;
    const Seg *segs = sv_data(&scope);
    for (uint32_t i = 0; i < scope.n; i++)
        if (vt_scope(c, segs[i], level + 1)) return -1;
    PyObject *rec = record(&scope, url, ridx, c->nspans - before);
    if (!rec) return -1;
    int rc = PyList_Append(c->scopes, rec);
    Py_DECREF(rec);
    return rc;
}

static int do_resource_spans(Ctx *c, Seg s) {
    const int level = 1;
    Py_ssize_t ridx = PyList_GET_SIZE(c->resources);
    SegVec res;
    Seg url = {s.p, s.p};
    It it;
    Fld f;
    int r;
    sv_clear(&res);
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == 1) {
            if (sv_push(c, &res, f.s)) return -1;
        } else if (f.num == 2) {
            if (do_scope_spans(c, f.s, ridx)) return -1;
        } else if (f.num == 3) {
            if (chk_utf8(c, f.s)) return -1;
            url = f.s;
        }
    }
    if (r < 0) return -1;
    const Seg *segs = sv_data(&res);
    for (uint32_t i = 0; i < res.n; i++)
        if (vt_resource(c, segs[i], level + 1)) return -1;
    PyObject *rec = record(&res, url, -1, 0);
    if (!rec) return -1;
    int rc = PyList_Append(c->resources, rec);
    Py_DECREF(rec);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Entry point                                                                          */

static void ctx_free(Ctx *c) {
    for (size_t i = 0; i < c->nowned; i++) free(c->owned[i]);
    free(c->owned);
    free(c->kvs.v);
    free(c->events.v);
    free(c->links.v);
    free(c->kvs2.v);
    ks_free(&c->ks);
    for (int i = 0; i < NV; i++) {
        Py_CLEAR(c->voff[i].ba);
        Py_CLEAR(c->vdata[i].ba);
    }
    for (int i = 0; i < NF; i++) Py_CLEAR(c->fixed[i].ba);
    Py_CLEAR(c->resources);
    Py_CLEAR(c->scopes);
}

static int finish_buf(Buf *b) { return PyByteArray_Resize(b->ba, (Py_ssize_t)b->len); }

static const int FIXED_WIDTH[NF] = {4, 1, 8, 8, 8, 1, 4, 4, 4};

PyDoc_STRVAR(decode_doc,
             "decode(body, attribute_count, attribute_value_length) -> dict\n\n"
             "Decode an ExportTraceServiceRequest into SPANS column buffers.");

static PyObject *decode(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    long long cap, max_len;
    if (!PyArg_ParseTuple(args, "y*LL:decode", &view, &cap, &max_len)) return NULL;
    if (max_len < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "attribute_value_length must be >= 0");
        return NULL;
    }
    Ctx ctx;
    Ctx *c = &ctx;
    memset(c, 0, sizeof ctx);
    PyObject *out = NULL;
    const uint8_t *p = (const uint8_t *)view.buf, *end = p + view.len;
    c->base = p;
    c->cap = cap < 0 ? 0 : (uint64_t)cap;
    c->max_len = (uint64_t)max_len;

    /* rough size hints: about one span per 300 bytes of body */
    size_t hint = (size_t)view.len / 300 + 16;
    for (int i = 0; i < NV; i++) {
        size_t dcap = (i == V_ATTRS) ? (size_t)view.len / 2 + 256
                      : (i == V_TRACE_ID) ? hint * 16
                                           : hint * 8;
        if (buf_init(&c->voff[i], (hint + 1) * 4) || buf_init(&c->vdata[i], dcap)) goto error;
        int32_t zero = 0;
        if (put(&c->voff[i], &zero, 4)) goto error;
    }
    for (int i = 0; i < NF; i++)
        if (buf_init(&c->fixed[i], hint * (size_t)FIXED_WIDTH[i])) goto error;
    c->resources = PyList_New(0);
    c->scopes = PyList_New(0);
    if (!c->resources || !c->scopes) goto error;

    while (p < end) {
        Fld f;
        if (rd_field(c, &p, end, 0, &f)) goto error;
        if (f.num == 1 && f.wt == 2 && do_resource_spans(c, f.s)) goto error;
    }

    out = PyDict_New();
    if (!out) goto error;
    for (int i = 0; i < NV; i++) {
        if (finish_buf(&c->voff[i]) || finish_buf(&c->vdata[i])) goto error;
        PyObject *t = PyTuple_Pack(2, c->voff[i].ba, c->vdata[i].ba);
        if (!t) goto error;
        int rc = PyDict_SetItemString(out, VNAMES[i], t);
        Py_DECREF(t);
        if (rc) goto error;
    }
    for (int i = 0; i < NF; i++) {
        if (finish_buf(&c->fixed[i]) || PyDict_SetItemString(out, FNAMES[i], c->fixed[i].ba))
            goto error;
    }
    {
        PyObject *name = c->reject_name.p
                             ? PyUnicode_DecodeUTF8((const char *)c->reject_name.p,
                                                    c->reject_name.end - c->reject_name.p,
                                                    "strict")
                             : PyUnicode_FromString("");
        if (!name) goto error;
        PyObject *meta = Py_BuildValue("{sKsKsisNsKsKsOsO}", "n", (unsigned long long)c->nspans,
                                       "rejected", (unsigned long long)c->rejected,
                                       "reject_reason", c->reject_reason, "reject_name", name,
                                       "dropped", (unsigned long long)c->dropped, "truncated",
                                       (unsigned long long)c->truncated, "resources",
                                       c->resources, "scopes", c->scopes);
        if (!meta) goto error;
        int rc = PyDict_Update(out, meta);
        Py_DECREF(meta);
        if (rc) goto error;
    }
    ctx_free(c);
    PyBuffer_Release(&view);
    return out;

error:
    Py_XDECREF(out);
    ctx_free(c);
    PyBuffer_Release(&view);
    return NULL;
}

/* Testing hook: the text put_double writes for a finite double. */
static PyObject *format_double(PyObject *self, PyObject *arg) {
    (void)self;
    double d = PyFloat_AsDouble(arg);
    if (d == -1.0 && PyErr_Occurred()) return NULL;
    Buf b;
    if (buf_init(&b, 64)) return NULL;
    if (put_double(&b, d)) {
        Py_DECREF(b.ba);
        return NULL;
    }
    PyObject *r = PyUnicode_FromStringAndSize(b.p, (Py_ssize_t)b.len);
    Py_DECREF(b.ba);
    return r;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {"_format_double", format_double, METH_O, "The JSON text written for one double."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastspans", "OTLP trace requests straight to SPANS column buffers.",
    -1, methods, NULL, NULL, NULL, NULL,
};

static int init_hash_seed(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (!os) return -1;
    PyObject *rnd = PyObject_CallMethod(os, "urandom", "i", 8);
    Py_DECREF(os);
    if (!rnd) return -1;
    if (PyBytes_Check(rnd) && PyBytes_GET_SIZE(rnd) == 8)
        memcpy(&HASH_SEED, PyBytes_AS_STRING(rnd), 8);
    Py_DECREF(rnd);
    HASH_SEED |= 1;
    return 0;
}

PyMODINIT_FUNC PyInit__fastspans(void) {
    init_json_esc();
    init_pow10();
    if (init_hash_seed()) return NULL;
    return PyModule_Create(&module);
}

/*
 * _fastotlp: OTLP Export*ServiceRequest protobuf bytes -> Arrow column buffers.
 *
 * Shared declarations of the files that make up the one extension module:
 *
 *   _fastotlp_wire.c     protobuf wire-format reader (upb semantics), UTF-8, buffers, columns
 *   _fastotlp_json.c     JSON writer: strings, shortest round-trip doubles, base64, hex
 *   _fastotlp_attrs.c    AnyValue / KeyValue: resolution, attribute limits, storage JSON and
 *                        query-API JSON; Resource / InstrumentationScope validation
 *   _fastotlp_spans.c    ExportTraceServiceRequest   -> SPANS columns
 *   _fastotlp_logs.c     ExportLogsServiceRequest    -> LOGS columns
 *   _fastotlp_metrics.c  ExportMetricsServiceRequest -> METRIC_POINTS columns
 *   _fastotlp.c          the module: one decode function per signal, the common driver
 *
 * The pure-Python path (otlp/rows.py: upb parse, then one Python loop per item) is the
 * specification; this module reproduces it without creating a Python object per item:
 *
 *  - a protobuf wire-format reader with the decoder behaviour of upb (the protobuf runtime
 *    Python uses): a field whose wire type does not match its declared type is an unknown
 *    field and is skipped (a repeated scalar accepts its own wire type and the packed form);
 *    unknown fields of every wire type are skipped, groups included; field number 0, wire
 *    types 6/7, stray end-group tags, over-long varints, tags or lengths, packed data that
 *    does not divide into whole elements and anything past the end are errors; proto3
 *    string fields must be UTF-8; messages nest at most 100 deep; a singular message field
 *    that appears more than once is merged (kept as the list of its occurrences, read in
 *    order, which is what parsing the concatenation means); the last occurrence of a scalar
 *    wins; a oneof switches case on every new member and merges repeated message members.
 *  - attribute limits applied as anyvalue.attributes_to_json does, the JSON text written
 *    as orjson writes it for the Python path (same keys, order, value types and layout).
 *  - every column appended to growable buffers (bytearrays): values, int32 offsets for
 *    strings and lists, validity bitmaps for nullable columns; fast.py wraps them with
 *    pyarrow.Array.from_buffers.
 *
 * Resource and InstrumentationScope values are few per request: this module only validates
 * those messages and returns their bytes (the concatenation of their occurrences) with the
 * number of rows stored under each scope (a scope's rows are contiguous); fast.py computes
 * their columns with rows.py's helpers.
 *
 * Errors raise ValueError (malformed protobuf / bad UTF-8: the body is rejected, as upb
 * rejects it) or OverflowError (a value that the Arrow schema cannot hold, where the Python
 * path fails building its table).
 */
#ifndef OTTERSCOPE_FASTOTLP_H
#define OTTERSCOPE_FASTOTLP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 100  /* upb's default nesting limit for messages and groups */
#define LINEAR_KEYS 16 /* attribute sets up to this size are searched linearly */

/* Functions shared between the files of the module, not exported from it. */
#if defined(__GNUC__) && !defined(_WIN32)
#define FO_HIDDEN __attribute__((visibility("hidden")))
#else
#define FO_HIDDEN
#endif

#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 u128;
#define HAVE_U128 1
#else
#define HAVE_U128 0
#endif

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

/* A growable list of segments owned by the context (a repeated field of one item). */
typedef struct {
    Seg *v;
    size_t n, cap;
} SegList;

/* A growable list of 64-bit values owned by the context. */
typedef struct {
    uint64_t *v;
    size_t n, cap;
} U64List;

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

/* JSON forms of an AnyValue: storage (anyvalue.to_json) or query API (anyvalue.to_api). */
enum { JS_STORE, JS_API };

/* Output columns. VAR: string/binary (int32 offsets + bytes); FIXED: `width` bytes per row;
 * BOOL: one bit per row; LIST: int32 offsets + child values of `width` bytes. */
enum { COL_VAR, COL_FIXED, COL_BOOL, COL_LIST };

typedef struct {
    const char *name;
    uint8_t kind, width, nullable;
    uint16_t hint; /* expected data bytes per row (0: half the body size in all) */
} ColSpec;

typedef struct {
    Buf off, data, valid;
    uint64_t n, nulls;
} Col;

typedef struct Ctx Ctx;
typedef int (*ItemFn)(Ctx *c, Seg s);

struct Ctx {
    const uint8_t *base; /* start of the body, for error offsets */
    uint64_t cap;        /* attribute count limit (>= 0) */
    uint64_t max_len;    /* attribute value length limit (>= 0) */
    uint64_t dropped, truncated;

    void **owned;
    size_t nowned, capowned;

    /* scratch lists for the repeated fields of the item being decoded */
    SegList kvs, kvs2, events, links, meta, points, exemplars, quantiles;
    SegVec status;
    KeySet ks;
    U64List bucket_counts, explicit_bounds, positive, negative;
    Buf tmp;

    const ColSpec *specs;
    int ncols;
    Col *cols;
    uint64_t nrows;

    ItemFn item;         /* decodes one item (span, log record, metric) of a scope */
    PyObject *resources; /* list of (bytes, str) */
    PyObject *scopes;    /* list of (bytes, str, resource index, rows stored) */

    uint64_t rejected;
    int reject_reason;
    Seg reject_name;
};

/* ------------------------------------------------------------------------------------ */
/* Errors and memory (_fastotlp_wire.c)                                                 */

FO_HIDDEN int fail(Ctx *c, const uint8_t *at, const char *what);
FO_HIDDEN int fail_depth(Ctx *c, const uint8_t *at);
FO_HIDDEN int overflow(const char *what);
FO_HIDDEN void *ctx_alloc(Ctx *c, size_t size);
FO_HIDDEN int sv_grow_push(Ctx *c, SegVec *s, Seg g);
FO_HIDDEN int sl_grow(SegList *l);
FO_HIDDEN int u64_grow(U64List *l, size_t need);

static inline const Seg *sv_data(const SegVec *s) { return s->heap ? s->heap : s->inl; }

static inline void sv_clear(SegVec *s) {
    s->n = 0;
    s->cap = 0;
    s->heap = NULL;
}

static inline int sv_push(Ctx *c, SegVec *s, Seg g) {
    if (!s->heap && s->n < 2) {
        s->inl[s->n++] = g;
        return 0;
    }
    return sv_grow_push(c, s, g);
}

static inline int sl_push(SegList *l, Seg g) {
    if (l->n == l->cap && sl_grow(l)) return -1;
    l->v[l->n++] = g;
    return 0;
}

static inline int u64_push(U64List *l, uint64_t v) {
    if (l->n == l->cap && u64_grow(l, 1)) return -1;
    l->v[l->n++] = v;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Output buffers                                                                       */

FO_HIDDEN int buf_init(Buf *b, size_t cap);
FO_HIDDEN int buf_grow(Buf *b, size_t need);

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

/* ------------------------------------------------------------------------------------ */
/* Columns                                                                              */

FO_HIDDEN int col_end(Ctx *c, int i);
FO_HIDDEN int col_null_slow(Ctx *c, int i);

static inline int col_bit(Buf *b, uint64_t i, int bit) {
    if ((i & 7) == 0 && putc1(b, 0)) return -1;
    if (bit) b->p[b->len - 1] |= (char)(1u << (i & 7));
    return 0;
}

/* A null as the next row of a (nullable) column. */
static inline int col_null(Ctx *c, int i) {
    Col *col = &c->cols[i];
    size_t w = c->specs[i].width;
    if (c->specs[i].kind != COL_FIXED) return col_null_slow(c, i);
    if (RESERVE(&col->data, 8) || col_bit(&col->valid, col->n, 0)) return -1;
    memset(col->data.p + col->data.len, 0, 8);
    col->data.len += w;
    col->n++;
    col->nulls++;
    return 0;
}

/* A fixed-width value (of the column's width) for the next row. */
static inline int col_fixed(Ctx *c, int i, const void *v) {
    Col *col = &c->cols[i];
    if (c->specs[i].nullable && col_bit(&col->valid, col->n, 1)) return -1;
    col->n++;
    return put(&col->data, v, c->specs[i].width);
}

static inline int col_bool(Ctx *c, int i, int v) {
    Col *col = &c->cols[i];
    if (c->specs[i].nullable && col_bit(&col->valid, col->n, 1)) return -1;
    if (col_bit(&col->data, col->n, v)) return -1;
    col->n++;
    return 0;
}

/* The data buffer of a VAR or LIST column: write the next row's value, then col_end. */
static inline Buf *col_buf(Ctx *c, int i) { return &c->cols[i].data; }

static inline int col_bytes(Ctx *c, int i, Seg s) {
    if (put(&c->cols[i].data, s.p, (size_t)(s.end - s.p))) return -1;
    return col_end(c, i);
}

/* ------------------------------------------------------------------------------------ */
/* UTF-8 (_fastotlp_wire.c)                                                             */

FO_HIDDEN int utf8_valid(const uint8_t *s, size_t n);
FO_HIDDEN size_t utf8_prefix(Seg s, uint64_t limit);
FO_HIDDEN int utf8_longer(Seg s, uint64_t limit);

static inline int chk_utf8(Ctx *c, Seg s) {
    if (utf8_valid(s.p, (size_t)(s.end - s.p))) return 0;
    return fail(c, s.p, "string field is not valid UTF-8");
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

FO_HIDDEN int rd_varint(Ctx *c, const uint8_t **pp, const uint8_t *end, uint64_t *out);
FO_HIDDEN int rd_varint32(Ctx *c, const uint8_t **pp, const uint8_t *end, uint64_t max,
                          uint32_t *out, const char *what);
FO_HIDDEN int rd_field_slow(Ctx *c, const uint8_t **pp, const uint8_t *end, int level, Fld *f,
                            const uint8_t *at);

/* Reads one field of a message at nesting `level` (unknown groups are skipped whole and
 * reported with wt 3, which no known field of these messages has). */
static inline int rd_field(Ctx *c, const uint8_t **pp, const uint8_t *end, int level, Fld *f) {
    const uint8_t *at = *pp;
    if (end - at >= 2 && at[0] < 0x80 && at[0] >= 0x08) {
        uint32_t tag = at[0];
        f->num = tag >> 3;
        f->wt = tag & 7;
        if (f->wt == 2 && at[1] < 0x80) {
            size_t n = at[1];
            if ((size_t)(end - at - 2) < n)
                return fail(c, at + 2, "length-delimited field runs past its end");
            f->s.p = at + 2;
            f->s.end = at + 2 + n;
            *pp = at + 2 + n;
            return 0;
        }
        if (f->wt == 1 && end - at >= 9) {
            f->v = le64(at + 1);
            *pp = at + 9;
            return 0;
        }
        if (f->wt == 0 && at[1] < 0x80) {
            f->v = at[1];
            *pp = at + 2;
            return 0;
        }
    }
    return rd_field_slow(c, pp, end, level, f, at);
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
/* JSON writing (_fastotlp_json.c)                                                      */

FO_HIDDEN void init_json(void);
FO_HIDDEN int put_u64(Buf *b, uint64_t v);
FO_HIDDEN int put_i64(Buf *b, int64_t v);
FO_HIDDEN int put_json_str(Buf *b, const uint8_t *s, size_t n);
FO_HIDDEN int put_finite_double(Buf *b, double d);
FO_HIDDEN int put_double(Buf *b, double d);
FO_HIDDEN int put_base64(Buf *b, const uint8_t *s, size_t n);
FO_HIDDEN int put_hex_json(Buf *b, Seg s);

static inline int put_json_seg(Buf *b, Seg s) {
    return put_json_str(b, s.p, (size_t)(s.end - s.p));
}

static inline double u2d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ------------------------------------------------------------------------------------ */
/* AnyValue, attributes, resource and scope (_fastotlp_attrs.c)                         */

FO_HIDDEN int init_attrs(void);
FO_HIDDEN int resolve_av(Ctx *c, const Seg *segs, uint32_t n, int level, int validate, AV *av);
FO_HIDDEN int emit_av(Ctx *c, Buf *b, const AV *av, int level, int mode);
FO_HIDDEN int do_attrs(Ctx *c, Buf *b, const Seg *kvs, size_t n, int level, int emit,
                       uint64_t *affected);
FO_HIDDEN void ks_free(KeySet *ks);
FO_HIDDEN int do_resource(Ctx *c, Seg s);

/* ------------------------------------------------------------------------------------ */
/* Signals                                                                              */

typedef struct {
    const char *request; /* message name, for the docstring */
    const ColSpec *specs;
    int ncols;
    ItemFn item;
    size_t bytes_per_row; /* for the initial buffer sizes */
} Signal;

/* _fastotlp_index.c: the attribute index's (row, key, value text) pairs */
FO_HIDDEN PyObject *attribute_pairs(PyObject *self, PyObject *args);

FO_HIDDEN extern const Signal SPANS_SIGNAL;
FO_HIDDEN extern const Signal LOGS_SIGNAL;
FO_HIDDEN extern const Signal METRICS_SIGNAL;

#endif

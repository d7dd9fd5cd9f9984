/* _fastotlp: ExportMetricsServiceRequest -> METRIC_POINTS columns (rows.metrics_batch). */
#include "_fastotlp.h"

enum {
    C_NAME,
    C_DESCRIPTION,
    C_UNIT,
    C_METADATA,
    C_TYPE,
    C_TEMPORALITY,
    C_MONOTONIC,
    C_ATTRS,
    C_START,
    C_TIME,
    C_FLAGS,
    C_VALUE_DOUBLE,
    C_VALUE_INT,
    C_COUNT,
    C_SUM,
    C_MIN,
    C_MAX,
    C_BUCKET_COUNTS,
    C_EXPLICIT_BOUNDS,
    C_SCALE,
    C_ZERO_COUNT,
    C_ZERO_THRESHOLD,
    C_POSITIVE_OFFSET,
    C_POSITIVE_BUCKETS,
    C_NEGATIVE_OFFSET,
    C_NEGATIVE_BUCKETS,
    C_QUANTILES,
    C_EXEMPLARS,
    NCOLS
};

static const ColSpec COLS[NCOLS] = {
    {"metric_name", COL_VAR, 1, 0, 24},
    {"metric_description", COL_VAR, 1, 0, 16},
    {"metric_unit", COL_VAR, 1, 0, 4},
    {"metric_metadata", COL_VAR, 1, 0, 2},
    {"metric_type", COL_FIXED, 1, 0, 1},
    {"aggregation_temporality", COL_FIXED, 1, 0, 1},
    {"is_monotonic", COL_BOOL, 1, 1, 0},
    {"attributes", COL_VAR, 1, 0, 0},
    {"start_time_unix_nano", COL_FIXED, 8, 0, 8},
    {"time_unix_nano", COL_FIXED, 8, 0, 8},
    {"flags", COL_FIXED, 4, 0, 4},
    {"value_double", COL_FIXED, 8, 1, 8},
    {"value_int", COL_FIXED, 8, 1, 8},
    {"count", COL_FIXED, 8, 1, 8},
    {"sum", COL_FIXED, 8, 1, 8},
    {"min", COL_FIXED, 8, 1, 8},
    {"max", COL_FIXED, 8, 1, 8},
    {"bucket_counts", COL_LIST, 8, 1, 32},
    {"explicit_bounds", COL_LIST, 8, 1, 32},
    {"scale", COL_FIXED, 4, 1, 4},
    {"zero_count", COL_FIXED, 8, 1, 8},
    {"zero_threshold", COL_FIXED, 8, 1, 8},
    {"positive_offset", COL_FIXED, 4, 1, 4},
    {"positive_bucket_counts", COL_LIST, 8, 1, 8},
    {"negative_offset", COL_FIXED, 4, 1, 4},
    {"negative_bucket_counts", COL_LIST, 8, 1, 8},
    {"quantile_values", COL_VAR, 1, 1, 4},
    {"exemplars", COL_VAR, 1, 0, 2},
};

/* Metric kinds: the Metric.data oneof, numbered as schema.METRIC_TYPES. */
enum { K_NONE, K_GAUGE, K_SUM, K_HISTOGRAM, K_EXP_HISTOGRAM, K_SUMMARY };

/* Reject reasons, as fast.py numbers them. */
enum { R_NONE, R_NAME, R_NO_DATA, R_TIME };

/* What a data point field means, per kind and field number. */
enum {
    D_SKIP,
    D_ATTRS,
    D_START,
    D_TIME,
    D_FLAGS,
    D_EXEMPLARS,
    D_AS_DOUBLE,
    D_AS_INT,
    D_COUNT,
    D_SUM,
    D_MIN,
    D_MAX,
    D_BUCKETS,
    D_BOUNDS,
    D_SCALE,
    D_ZERO_COUNT,
    D_POSITIVE,
    D_NEGATIVE,
    D_ZERO_THRESHOLD,
    D_QUANTILES,
    ND
};

#define NUMBER_POINT                                                                       \
    {[2] = D_START, [3] = D_TIME, [4] = D_AS_DOUBLE, [5] = D_EXEMPLARS, [6] = D_AS_INT,    \
     [7] = D_ATTRS, [8] = D_FLAGS}

static const uint8_t FIELDS[6][15] = {
    [K_GAUGE] = NUMBER_POINT,
    [K_SUM] = NUMBER_POINT,
    [K_HISTOGRAM] = {[2] = D_START, [3] = D_TIME, [4] = D_COUNT, [5] = D_SUM, [6] = D_BUCKETS,
                     [7] = D_BOUNDS, [8] = D_EXEMPLARS, [9] = D_ATTRS, [10] = D_FLAGS,
                     [11] = D_MIN, [12] = D_MAX},
    [K_EXP_HISTOGRAM] = {[1] = D_ATTRS, [2] = D_START, [3] = D_TIME, [4] = D_COUNT,
                         [5] = D_SUM, [6] = D_SCALE, [7] = D_ZERO_COUNT, [8] = D_POSITIVE,
                         [9] = D_NEGATIVE, [10] = D_FLAGS, [11] = D_EXEMPLARS, [12] = D_MIN,
                         [13] = D_MAX, [14] = D_ZERO_THRESHOLD},
    [K_SUMMARY] = {[2] = D_START, [3] = D_TIME, [4] = D_COUNT, [5] = D_SUM,
                   [6] = D_QUANTILES, [7] = D_ATTRS, [8] = D_FLAGS},
};

/* The wire type each meaning takes (repeated scalars also take 2, packed). */
static const uint8_t WIRE[ND] = {
    [D_ATTRS] = 2,     [D_START] = 1,      [D_TIME] = 1,      [D_FLAGS] = 0,
    [D_EXEMPLARS] = 2, [D_AS_DOUBLE] = 1,  [D_AS_INT] = 1,    [D_COUNT] = 1,
    [D_SUM] = 1,       [D_MIN] = 1,        [D_MAX] = 1,       [D_BUCKETS] = 1,
    [D_BOUNDS] = 1,    [D_SCALE] = 0,      [D_ZERO_COUNT] = 1, [D_POSITIVE] = 2,
    [D_NEGATIVE] = 2,  [D_ZERO_THRESHOLD] = 1, [D_QUANTILES] = 2,
};

/* The Metric a data point belongs to. */
typedef struct {
    Seg name, description, unit, metadata;
    int kind, emit;
    int32_t temporality;
    int monotonic;
} Metric;

enum { V_NONE, V_DOUBLE, V_INT };

typedef struct {
    uint64_t start, time, count, zero_count, value, sum, min, max, zero_threshold;
    uint32_t flags;
    int32_t scale, pos_offset, neg_offset;
    int value_kind, has_sum, has_min, has_max;
    SegVec positive, negative;
} Point;

/* ------------------------------------------------------------------------------------ */
/* Repeated scalars, buckets, quantiles, exemplars                                      */

/* Packed fixed64 / double: whole 8-byte elements, appended as they are (little-endian). */
static int packed_fixed64(Ctx *c, Seg s, U64List *out) {
    size_t n = (size_t)(s.end - s.p);
    if (n % 8) return fail(c, s.p, "packed fixed-width field is not a whole number of elements");
    if (u64_grow(out, n / 8)) return -1;
    for (size_t i = 0; i < n; i += 8) out->v[out->n++] = le64(s.p + i);
    return 0;
}

static int packed_varint(Ctx *c, Seg s, U64List *out) {
    const uint8_t *p = s.p;
    while (p < s.end) {
        uint64_t v;
        if (rd_varint(c, &p, s.end, &v) || u64_push(out, v)) return -1;
    }
    return 0;
}

static inline int32_t zigzag32(uint64_t v) {
    uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

/* ExponentialHistogramDataPoint.Buckets from its occurrences: offset and bucket counts. */
static int do_buckets(Ctx *c, const SegVec *occ, int level, int32_t *offset, U64List *counts) {
    *offset = 0;
    counts->n = 0;
    if (!occ->n) return 0;
    if (level > MAX_DEPTH) return fail_depth(c, sv_data(occ)[0].p);
    It it;
    Fld f;
    int r;
    it_init(&it, sv_data(occ), occ->n);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.num == 1 && f.wt == 0) {
            *offset = zigzag32(f.v);
        } else if (f.num == 2) {
            if (f.wt == 0) {
                if (u64_push(counts, f.v)) return -1;
            } else if (f.wt == 2) {
                if (packed_varint(c, f.s, counts)) return -1;
            }
        }
    }
    return r;
}

static int put_json_number(Buf *b, uint64_t bits) {
    /* Non-finite doubles tagged, as everywhere else in stored JSON (see anyvalue.py). */
    return put_double(b, u2d(bits));
}

/* SummaryDataPoint.quantile_values -> [{"quantile": q, "value": v}, ...] */
static int do_quantiles(Ctx *c, Buf *b, int level, int emit) {
    if (emit && putc1(b, '[')) return -1;
    for (size_t i = 0; i < c->quantiles.n; i++) {
        Seg s = c->quantiles.v[i];
        if (level > MAX_DEPTH) return fail_depth(c, s.p);
        uint64_t q = 0, v = 0;
        It it;
        Fld f;
        int r;
        it_init(&it, &s, 1);
        while ((r = it_next(c, &it, level, &f)) > 0) {
            if (f.num == 1 && f.wt == 1)
                q = f.v;
            else if (f.num == 2 && f.wt == 1)
                v = f.v;
        }
        if (r < 0) return -1;
        if (!emit) continue;
        if ((i && putc1(b, ',')) || PUTS(b, "{\"quantile\":") || put_json_number(b, q) ||
            PUTS(b, ",\"value\":") || put_json_number(b, v) || putc1(b, '}'))
            return -1;
    }
    return emit ? putc1(b, ']') : 0;
}

/* Exemplars -> rows._exemplars JSON (filtered attributes under the limits). */
static int do_exemplars(Ctx *c, Buf *b, int level, int emit) {
    if (emit && putc1(b, '[')) return -1;
    for (size_t i = 0; i < c->exemplars.n; i++) {
        Seg s = c->exemplars.v[i];
        if (level > MAX_DEPTH) return fail_depth(c, s.p);
        uint64_t t = 0, value = 0, aff;
        int value_kind = V_NONE;
        Seg tid = {s.p, s.p}, sid = tid;
        It it;
        Fld f;
        int r;
        c->kvs2.n = 0;
        it_init(&it, &s, 1);
        while ((r = it_next(c, &it, level, &f)) > 0) {
            switch (f.num) {
            case 2:
                if (f.wt == 1) t = f.v;
                break;
            case 3:
            case 6:
                if (f.wt == 1) {
                    value_kind = f.num == 3 ? V_DOUBLE : V_INT;
                    value = f.v;
                }
                break;
            case 4:
                if (f.wt == 2) sid = f.s;
                break;
            case 5:
                if (f.wt == 2) tid = f.s;
                break;
            case 7:
                if (f.wt == 2 && sl_push(&c->kvs2, f.s)) return -1;
                break;
            default:
                break;
            }
        }
        if (r < 0) return -1;
        if (!emit) {
            if (do_attrs(c, NULL, c->kvs2.v, c->kvs2.n, level + 1, 0, &aff)) return -1;
            continue;
        }
        if ((i && putc1(b, ',')) || PUTS(b, "{\"filteredAttributes\":")) return -1;
        if (do_attrs(c, b, c->kvs2.v, c->kvs2.n, level + 1, 1, &aff)) return -1;
        if (PUTS(b, ",\"timeUnixNano\":") || put_u64(b, t) || PUTS(b, ",\"spanId\":") ||
            put_hex_json(b, sid) || PUTS(b, ",\"traceId\":") || put_hex_json(b, tid))
            return -1;
        if (value_kind == V_INT) {
            if (PUTS(b, ",\"asInt\":") || put_i64(b, (int64_t)value)) return -1;
        } else if (value_kind == V_DOUBLE) {
            if (PUTS(b, ",\"asDouble\":") || put_double(b, u2d(value))) return -1;
        }
        if (putc1(b, '}')) return -1;
    }
    return emit ? putc1(b, ']') : 0;
}

/* ------------------------------------------------------------------------------------ */
/* Data points                                                                          */

static int put_list(Ctx *c, int col, const U64List *values) {
    if (put(col_buf(c, col), values->v, values->n * 8)) return -1;
    return col_end(c, col);
}

static inline int put_opt(Ctx *c, int col, int has, const void *v) {
    return has ? col_fixed(c, col, v) : col_null(c, col);
}

static int nulls(Ctx *c, const int *cols, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (col_null(c, cols[i])) return -1;
    return 0;
}

/* The columns a point of this kind fills with its own values (the others are null). */
static int point_values(Ctx *c, const Metric *m, Point *pt) {
    static const int NUMBER_NULLS[] = {
        C_COUNT,           C_SUM,          C_MIN,          C_MAX,
        C_BUCKET_COUNTS,   C_EXPLICIT_BOUNDS, C_SCALE,     C_ZERO_COUNT,
        C_ZERO_THRESHOLD,  C_POSITIVE_OFFSET, C_POSITIVE_BUCKETS, C_NEGATIVE_OFFSET,
        C_NEGATIVE_BUCKETS, C_QUANTILES};
    static const int EXP_ONLY[] = {C_SCALE,           C_ZERO_COUNT,       C_ZERO_THRESHOLD,
                                   C_POSITIVE_OFFSET, C_POSITIVE_BUCKETS, C_NEGATIVE_OFFSET,
                                   C_NEGATIVE_BUCKETS};
    static const int VALUES[] = {C_VALUE_DOUBLE, C_VALUE_INT};
    switch (m->kind) {
    case K_GAUGE:
    case K_SUM:
        if (put_opt(c, C_VALUE_DOUBLE, pt->value_kind == V_DOUBLE, &pt->value) ||
            put_opt(c, C_VALUE_INT, pt->value_kind == V_INT, &pt->value))
            return -1;
        return nulls(c, NUMBER_NULLS, sizeof NUMBER_NULLS / sizeof NUMBER_NULLS[0]);
    case K_HISTOGRAM:
        if (nulls(c, VALUES, 2) || col_fixed(c, C_COUNT, &pt->count) ||
            put_opt(c, C_SUM, pt->has_sum, &pt->sum) ||
            put_opt(c, C_MIN, pt->has_min, &pt->min) ||
            put_opt(c, C_MAX, pt->has_max, &pt->max) ||
            put_list(c, C_BUCKET_COUNTS, &c->bucket_counts) ||
            put_list(c, C_EXPLICIT_BOUNDS, &c->explicit_bounds) ||
            nulls(c, EXP_ONLY, sizeof EXP_ONLY / sizeof EXP_ONLY[0]))
            return -1;
        return col_null(c, C_QUANTILES);
    case K_EXP_HISTOGRAM:
        return nulls(c, VALUES, 2) || col_fixed(c, C_COUNT, &pt->count) ||
                       put_opt(c, C_SUM, pt->has_sum, &pt->sum) ||
                       put_opt(c, C_MIN, pt->has_min, &pt->min) ||
                       put_opt(c, C_MAX, pt->has_max, &pt->max) ||
                       col_null(c, C_BUCKET_COUNTS) || col_null(c, C_EXPLICIT_BOUNDS) ||
                       col_fixed(c, C_SCALE, &pt->scale) ||
                       col_fixed(c, C_ZERO_COUNT, &pt->zero_count) ||
                       col_fixed(c, C_ZERO_THRESHOLD, &pt->zero_threshold) ||
                       col_fixed(c, C_POSITIVE_OFFSET, &pt->pos_offset) ||
                       put_list(c, C_POSITIVE_BUCKETS, &c->positive) ||
                       col_fixed(c, C_NEGATIVE_OFFSET, &pt->neg_offset) ||
                       put_list(c, C_NEGATIVE_BUCKETS, &c->negative) ||
                       col_null(c, C_QUANTILES)
                   ? -1
                   : 0;
    default: /* K_SUMMARY */
        if (nulls(c, VALUES, 2) || col_fixed(c, C_COUNT, &pt->count) ||
            col_fixed(c, C_SUM, &pt->sum) || col_null(c, C_MIN) || col_null(c, C_MAX) ||
            col_null(c, C_BUCKET_COUNTS) || col_null(c, C_EXPLICIT_BOUNDS) ||
            nulls(c, EXP_ONLY, sizeof EXP_ONLY / sizeof EXP_ONLY[0]))
            return -1;
        if (do_quantiles(c, col_buf(c, C_QUANTILES), 6, 1)) return -1;
        return col_end(c, C_QUANTILES);
    }
}

static int do_point(Ctx *c, const Metric *m, Seg s) {
    const int level = 5;
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    const uint8_t *fields = FIELDS[m->kind];
    Point pt;
    memset(&pt, 0, sizeof pt);
    It it;
    Fld f;
    int r;
    c->kvs.n = 0;
    c->exemplars.n = 0;
    c->quantiles.n = 0;
    c->bucket_counts.n = 0;
    c->explicit_bounds.n = 0;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        int what = f.num < 15 ? fields[f.num] : D_SKIP;
        if (what == D_SKIP) continue;
        if (f.wt != WIRE[what]) {
            /* a repeated scalar in packed form; any other mismatch is an unknown field */
            if (f.wt != 2) continue;
            if (what == D_BUCKETS) {
                if (packed_fixed64(c, f.s, &c->bucket_counts)) return -1;
            } else if (what == D_BOUNDS) {
                if (packed_fixed64(c, f.s, &c->explicit_bounds)) return -1;
            }
            continue;
        }
        switch (what) {
        case D_ATTRS:
            if (sl_push(&c->kvs, f.s)) return -1;
            break;
        case D_START:
            pt.start = f.v;
            break;
        case D_TIME:
            pt.time = f.v;
            break;
        case D_FLAGS:
            pt.flags = (uint32_t)f.v;
            break;
        case D_EXEMPLARS:
            if (sl_push(&c->exemplars, f.s)) return -1;
            break;
        case D_AS_DOUBLE:
        case D_AS_INT:
            pt.value_kind = what == D_AS_DOUBLE ? V_DOUBLE : V_INT;
            pt.value = f.v;
            break;
        case D_COUNT:
            pt.count = f.v;
            break;
        case D_SUM:
            pt.sum = f.v;
            pt.has_sum = 1;
            break;
        case D_MIN:
            pt.min = f.v;
            pt.has_min = 1;
            break;
        case D_MAX:
            pt.max = f.v;
            pt.has_max = 1;
            break;
        case D_BUCKETS:
            if (u64_push(&c->bucket_counts, f.v)) return -1;
            break;
        case D_BOUNDS:
            if (u64_push(&c->explicit_bounds, f.v)) return -1;
            break;
        case D_SCALE:
            pt.scale = zigzag32(f.v);
            break;
        case D_ZERO_COUNT:
            pt.zero_count = f.v;
            break;
        case D_POSITIVE:
            if (sv_push(c, &pt.positive, f.s)) return -1;
            break;
        case D_NEGATIVE:
            if (sv_push(c, &pt.negative, f.s)) return -1;
            break;
        case D_ZERO_THRESHOLD:
            pt.zero_threshold = f.v;
            break;
        case D_QUANTILES:
            if (sl_push(&c->quantiles, f.s)) return -1;
            break;
        default:
            break;
        }
    }
    if (r < 0) return -1;
    if (do_buckets(c, &pt.positive, level + 1, &pt.pos_offset, &c->positive) ||
        do_buckets(c, &pt.negative, level + 1, &pt.neg_offset, &c->negative))
        return -1;

    int keep = m->emit;
    if (keep && (pt.start >= (UINT64_C(1) << 63) || pt.time >= (UINT64_C(1) << 63))) {
        if (!c->rejected++) {
            c->reject_reason = R_TIME;
            c->reject_name = m->name;
        }
        keep = 0;
    }
    if (!keep) {
        uint64_t aff;
        return do_attrs(c, NULL, c->kvs.v, c->kvs.n, level + 1, 0, &aff) ||
                       do_exemplars(c, NULL, level + 1, 0) ||
                       do_quantiles(c, NULL, level + 1, 0)
                   ? -1
                   : 0;
    }

    uint64_t aff;
    if (do_attrs(c, col_buf(c, C_ATTRS), c->kvs.v, c->kvs.n, level + 1, 1, &aff) ||
        col_end(c, C_ATTRS))
        return -1;
    Buf *ex = col_buf(c, C_EXEMPLARS);
    if (c->exemplars.n == 0 ? PUTS(ex, "[]") : do_exemplars(c, ex, level + 1, 1)) return -1;
    if (col_end(c, C_EXEMPLARS)) return -1;
    if (m->temporality < -128 || m->temporality > 127) {
        PyErr_Format(PyExc_OverflowError, "metric aggregation_temporality %d is out of range",
                     (int)m->temporality);
        return -1;
    }
    int8_t type = (int8_t)m->kind, temporality = (int8_t)m->temporality;
    int64_t start = (int64_t)pt.start, time = (int64_t)pt.time;
    if (col_bytes(c, C_NAME, m->name) || col_bytes(c, C_DESCRIPTION, m->description) ||
        col_bytes(c, C_UNIT, m->unit) || col_bytes(c, C_METADATA, m->metadata) ||
        col_fixed(c, C_TYPE, &type) || col_fixed(c, C_TEMPORALITY, &temporality) ||
        (m->kind == K_SUM ? col_bool(c, C_MONOTONIC, m->monotonic)
                          : col_null(c, C_MONOTONIC)) ||
        col_fixed(c, C_START, &start) || col_fixed(c, C_TIME, &time) ||
        col_fixed(c, C_FLAGS, &pt.flags))
        return -1;
    if (point_values(c, m, &pt)) return -1;
    c->nrows++;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Metric                                                                               */

static int metric_kind(uint32_t num) {
    switch (num) {
    case 5:
        return K_GAUGE;
    case 7:
        return K_SUM;
    case 9:
        return K_HISTOGRAM;
    case 10:
        return K_EXP_HISTOGRAM;
    case 11:
        return K_SUMMARY;
    default:
        return K_NONE;
    }
}

/* Validates Gauge / Sum / ... occurrences that a later case of the Metric.data oneof
 * replaced: upb parsed them (and would have refused them) before they were dropped. */
static int vt_data(Ctx *c, int kind, const SegVec *data, int level) {
    Metric dropped;
    memset(&dropped, 0, sizeof dropped);
    dropped.kind = kind;
    if (level > MAX_DEPTH) return fail_depth(c, sv_data(data)[0].p);
    It it;
    Fld f;
    int r;
    it_init(&it, sv_data(data), data->n);
    while ((r = it_next(c, &it, level, &f)) > 0)
        if (f.num == 1 && f.wt == 2 && do_point(c, &dropped, f.s)) return -1;
    return r;
}

static int do_metric(Ctx *c, Seg s) {
    const int level = 3;
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    Metric m;
    memset(&m, 0, sizeof m);
    m.name.p = m.name.end = s.p;
    m.description = m.unit = m.name;
    SegVec data;
    It it;
    Fld f;
    int r;
    sv_clear(&data);
    c->meta.n = 0;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        if (f.wt != 2) continue;
        switch (f.num) {
        case 1:
        case 2:
        case 3:
            if (chk_utf8(c, f.s)) return -1;
            *(f.num == 1 ? &m.name : f.num == 2 ? &m.description : &m.unit) = f.s;
            break;
        case 12:
            if (sl_push(&c->meta, f.s)) return -1;
            break;
        default: {
            int k = metric_kind(f.num);
            if (k == K_NONE) break;
            if (k != m.kind) {
                /* another case of the oneof: what the previous one held is gone */
                if (data.n && vt_data(c, m.kind, &data, level + 1)) return -1;
                m.kind = k;
                data.n = 0;
            }
            if (sv_push(c, &data, f.s)) return -1;
        }
        }
    }
    if (r < 0) return -1;

    /* Gauge / Sum / Histogram / ExponentialHistogram / Summary */
    c->points.n = 0;
    if (data.n) {
        if (level + 1 > MAX_DEPTH) return fail_depth(c, sv_data(&data)[0].p);
        it_init(&it, sv_data(&data), data.n);
        while ((r = it_next(c, &it, level + 1, &f)) > 0) {
            if (f.num == 1 && f.wt == 2) {
                if (sl_push(&c->points, f.s)) return -1;
            } else if (f.num == 2 && f.wt == 0 && m.kind != K_GAUGE && m.kind != K_SUMMARY) {
                m.temporality = (int32_t)(uint32_t)f.v;
            } else if (f.num == 3 && f.wt == 0 && m.kind == K_SUM) {
                m.monotonic = f.v != 0;
            }
        }
        if (r < 0) return -1;
    }

    uint64_t aff;
    int reason = m.name.end == m.name.p ? R_NAME : m.kind == K_NONE ? R_NO_DATA : R_NONE;
    if (reason != R_NONE) {
        if (!c->rejected++) {
            c->reject_reason = reason;
            c->reject_name = m.name;
        }
        if (do_attrs(c, NULL, c->meta.v, c->meta.n, level + 1, 0, &aff)) return -1;
    } else {
        c->tmp.len = 0;
        if (do_attrs(c, &c->tmp, c->meta.v, c->meta.n, level + 1, 1, &aff)) return -1;
        m.metadata.p = (const uint8_t *)c->tmp.p;
        m.metadata.end = m.metadata.p + c->tmp.len;
        m.emit = 1;
    }
    for (size_t i = 0; i < c->points.n; i++)
        if (do_point(c, &m, c->points.v[i])) return -1;
    return 0;
}

const Signal METRICS_SIGNAL = {"ExportMetricsServiceRequest", COLS, NCOLS, do_metric, 120};

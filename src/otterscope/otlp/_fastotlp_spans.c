/* _fastotlp: ExportTraceServiceRequest -> SPANS columns (rows.spans_batch). */
#include "_fastotlp.h"

enum {
    C_TRACE_ID,
    C_SPAN_ID,
    C_PARENT,
    C_TRACE_STATE,
    C_FLAGS,
    C_NAME,
    C_KIND,
    C_START,
    C_END,
    C_DURATION,
    C_STATUS_CODE,
    C_STATUS_MSG,
    C_ATTRS,
    C_DROPPED_ATTRS,
    C_EVENTS,
    C_DROPPED_EVENTS,
    C_LINKS,
    C_DROPPED_LINKS,
    NCOLS
};

static const ColSpec COLS[NCOLS] = {
    {"trace_id", COL_VAR, 1, 0, 16},
    {"span_id", COL_VAR, 1, 0, 8},
    {"parent_span_id", COL_VAR, 1, 0, 8},
    {"trace_state", COL_VAR, 1, 0, 8},
    {"flags", COL_FIXED, 4, 0, 4},
    {"name", COL_VAR, 1, 0, 24},
    {"kind", COL_FIXED, 1, 0, 1},
    {"start_time_unix_nano", COL_FIXED, 8, 0, 8},
    {"end_time_unix_nano", COL_FIXED, 8, 0, 8},
    {"duration_nano", COL_FIXED, 8, 0, 8},
    {"status_code", COL_FIXED, 1, 0, 1},
    {"status_message", COL_VAR, 1, 0, 8},
    {"attributes", COL_VAR, 1, 0, 0},
    {"dropped_attributes_count", COL_FIXED, 4, 0, 4},
    {"events", COL_VAR, 1, 0, 16},
    {"dropped_events_count", COL_FIXED, 4, 0, 4},
    {"links", COL_VAR, 1, 0, 16},
    {"dropped_links_count", COL_FIXED, 4, 0, 4},
};

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

static int is_zero(Seg s) {
    for (const uint8_t *p = s.p; p < s.end; p++)
        if (*p) return 0;
    return 1;
}

/* Reject reasons, as fast.py numbers them. */
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
    if (do_attrs(c, col_buf(c, C_ATTRS), c->kvs.v, c->kvs.n, level + 1, 1, &aff) ||
        col_end(c, C_ATTRS))
        return -1;
    if ((uint64_t)d_attrs + aff > UINT32_MAX)
        return overflow("span dropped_attributes_count exceeds the uint32 range");
    if (c->events.n == 0) {
        if (PUTS(col_buf(c, C_EVENTS), "[]")) return -1;
    } else if (do_events(c, col_buf(c, C_EVENTS), 1)) {
        return -1;
    }
    if (col_end(c, C_EVENTS)) return -1;
    if (c->links.n == 0) {
        if (PUTS(col_buf(c, C_LINKS), "[]")) return -1;
    } else if (do_links(c, col_buf(c, C_LINKS), 1)) {
        return -1;
    }
    if (col_end(c, C_LINKS)) return -1;

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
    if (col_bytes(c, C_TRACE_ID, tid) || col_bytes(c, C_SPAN_ID, sid) ||
        col_bytes(c, C_PARENT, pid) || col_bytes(c, C_TRACE_STATE, ts) ||
        col_bytes(c, C_NAME, name) || col_bytes(c, C_STATUS_MSG, smsg))
        return -1;
    if (col_fixed(c, C_FLAGS, &flags) || col_fixed(c, C_KIND, &k8) ||
        col_fixed(c, C_START, &st) || col_fixed(c, C_END, &en) ||
        col_fixed(c, C_DURATION, &dur) || col_fixed(c, C_STATUS_CODE, &s8) ||
        col_fixed(c, C_DROPPED_ATTRS, &da) || col_fixed(c, C_DROPPED_EVENTS, &d_events) ||
        col_fixed(c, C_DROPPED_LINKS, &d_links))
        return -1;
    c->nrows++;
    return 0;
}

const Signal SPANS_SIGNAL = {"ExportTraceServiceRequest", COLS, NCOLS, do_span, 300};

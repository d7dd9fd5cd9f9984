/* _fastotlp: ExportLogsServiceRequest -> LOGS columns (rows.logs_batch). */
#include "_fastotlp.h"

enum {
    C_TIME,
    C_OBSERVED,
    C_TIMESTAMP,
    C_SEVERITY_NUMBER,
    C_SEVERITY_TEXT,
    C_BODY,
    C_BODY_TEXT,
    C_ATTRS,
    C_DROPPED_ATTRS,
    C_FLAGS,
    C_TRACE_ID,
    C_SPAN_ID,
    C_EVENT_NAME,
    NCOLS
};

static const ColSpec COLS[NCOLS] = {
    {"time_unix_nano", COL_FIXED, 8, 0, 8},
    {"observed_time_unix_nano", COL_FIXED, 8, 0, 8},
    {"timestamp_unix_nano", COL_FIXED, 8, 0, 8},
    {"severity_number", COL_FIXED, 1, 0, 1},
    {"severity_text", COL_VAR, 1, 0, 6},
    {"body", COL_VAR, 1, 1, 80},
    {"body_text", COL_VAR, 1, 0, 80},
    {"attributes", COL_VAR, 1, 0, 0},
    {"dropped_attributes_count", COL_FIXED, 4, 0, 4},
    {"flags", COL_FIXED, 4, 0, 4},
    {"trace_id", COL_VAR, 1, 0, 16},
    {"span_id", COL_VAR, 1, 0, 8},
    {"event_name", COL_VAR, 1, 0, 4},
};

/* Reject reasons, as fast.py numbers them. */
enum { R_NONE, R_TRACE_ID, R_SPAN_ID, R_TIME };

/* body_text (rows._body_text): a string body as it is, no body or an empty one as "", any
 * other body as the JSON of anyvalue.to_api(body). */
static int body_text(Ctx *c, const AV *body, int has_body, int level) {
    Buf *b = col_buf(c, C_BODY_TEXT);
    if (has_body) {
        if (body->kind == AV_STR) {
            Seg s = body->s;
            if (c->max_len) s.end = s.p + utf8_prefix(s, c->max_len);
            if (put(b, s.p, (size_t)(s.end - s.p))) return -1;
        } else if (body->kind != AV_NONE && body->kind != AV_STRIDX) {
            if (emit_av(c, b, body, level, JS_API)) return -1;
        }
    }
    return col_end(c, C_BODY_TEXT);
}

static int do_log(Ctx *c, Seg s) {
    const int level = 3;
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    Seg tid = {s.p, s.p}, sid = tid, sev_text = tid, event = tid;
    uint64_t t = 0, ot = 0;
    int32_t sev = 0;
    uint32_t d_attrs = 0, flags = 0;
    SegVec body;
    It it;
    Fld f;
    int r;
    sv_clear(&body);
    c->kvs.n = 0;
    it_init(&it, &s, 1);
    while ((r = it_next(c, &it, level, &f)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wt == 1) t = f.v;
            break;
        case 2:
            if (f.wt == 0) sev = (int32_t)(uint32_t)f.v;
            break;
        case 3:
            if (f.wt == 2) {
                if (chk_utf8(c, f.s)) return -1;
                sev_text = f.s;
            }
            break;
        case 5:
            if (f.wt == 2 && sv_push(c, &body, f.s)) return -1;
            break;
        case 6:
            if (f.wt == 2 && sl_push(&c->kvs, f.s)) return -1;
            break;
        case 7:
            if (f.wt == 0) d_attrs = (uint32_t)f.v;
            break;
        case 8:
            if (f.wt == 5) flags = (uint32_t)f.v;
            break;
        case 9:
            if (f.wt == 2) tid = f.s;
            break;
        case 10:
            if (f.wt == 2) sid = f.s;
            break;
        case 11:
            if (f.wt == 1) ot = f.v;
            break;
        case 12:
            if (f.wt == 2) {
                if (chk_utf8(c, f.s)) return -1;
                event = f.s;
            }
            break;
        default:
            break;
        }
    }
    if (r < 0) return -1;
    AV bav;
    if (resolve_av(c, sv_data(&body), body.n, level + 1, 1, &bav)) return -1;

    int reason = R_NONE;
    if (tid.end != tid.p && tid.end - tid.p != 16)
        reason = R_TRACE_ID;
    else if (sid.end != sid.p && sid.end - sid.p != 8)
        reason = R_SPAN_ID;
    else if (t >= (UINT64_C(1) << 63) || ot >= (UINT64_C(1) << 63))
        reason = R_TIME;
    if (reason != R_NONE) {
        uint64_t aff;
        if (!c->rejected++) c->reject_reason = reason;
        return do_attrs(c, NULL, c->kvs.v, c->kvs.n, level + 1, 0, &aff);
    }

    uint64_t aff = 0;
    if (do_attrs(c, col_buf(c, C_ATTRS), c->kvs.v, c->kvs.n, level + 1, 1, &aff) ||
        col_end(c, C_ATTRS))
        return -1;
    if ((uint64_t)d_attrs + aff > UINT32_MAX)
        return overflow("log record dropped_attributes_count exceeds the uint32 range");
    if (sev < -128 || sev > 127) {
        PyErr_Format(PyExc_OverflowError, "log severity_number %d is out of range", (int)sev);
        return -1;
    }
    if (body.n) {
        if (emit_av(c, col_buf(c, C_BODY), &bav, level + 1, JS_STORE) || col_end(c, C_BODY))
            return -1;
    } else if (col_null(c, C_BODY)) {
        return -1;
    }
    if (body_text(c, &bav, body.n > 0, level + 1)) return -1;
    int8_t sev8 = (int8_t)sev;
    int64_t ti = (int64_t)t, oti = (int64_t)ot, ts = t ? ti : oti;
    uint32_t da = (uint32_t)(d_attrs + aff);
    if (col_fixed(c, C_TIME, &ti) || col_fixed(c, C_OBSERVED, &oti) ||
        col_fixed(c, C_TIMESTAMP, &ts) || col_fixed(c, C_SEVERITY_NUMBER, &sev8) ||
        col_bytes(c, C_SEVERITY_TEXT, sev_text) || col_fixed(c, C_DROPPED_ATTRS, &da) ||
        col_fixed(c, C_FLAGS, &flags) || col_bytes(c, C_TRACE_ID, tid) ||
        col_bytes(c, C_SPAN_ID, sid) || col_bytes(c, C_EVENT_NAME, event))
        return -1;
    c->nrows++;
    return 0;
}

const Signal LOGS_SIGNAL = {"ExportLogsServiceRequest", COLS, NCOLS, do_log, 250};

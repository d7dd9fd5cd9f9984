/* _fastotlp: errors, memory, output buffers and columns, UTF-8, the wire-format reader. */
#include "_fastotlp.h"

/* ------------------------------------------------------------------------------------ */
/* Errors and memory                                                                    */

int fail(Ctx *c, const uint8_t *at, const char *what) {
    Py_ssize_t off = at && c->base ? (Py_ssize_t)(at - c->base) : -1;
    PyErr_Format(PyExc_ValueError, "%s (at byte %zd)", what, off);
    return -1;
}

int fail_depth(Ctx *c, const uint8_t *at) {
    return fail(c, at, "messages nested more than 100 deep");
}

int overflow(const char *what) {
    PyErr_SetString(PyExc_OverflowError, what);
    return -1;
}

void *ctx_alloc(Ctx *c, size_t size) {
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

int sv_grow_push(Ctx *c, SegVec *s, Seg g) {
    if (!s->heap) {
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

int sl_grow(SegList *l) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    Seg *nv = (Seg *)realloc(l->v, nc * sizeof(Seg));
    if (!nv) return (PyErr_NoMemory(), -1);
    l->v = nv;
    l->cap = nc;
    return 0;
}

int u64_grow(U64List *l, size_t need) {
    size_t nc = l->cap ? l->cap : 16;
    while (nc - l->n < need) {
        if (nc > ((size_t)PY_SSIZE_T_MAX / 16)) return (PyErr_NoMemory(), -1);
        nc *= 2;
    }
    uint64_t *nv = (uint64_t *)realloc(l->v, nc * sizeof(uint64_t));
    if (!nv) return (PyErr_NoMemory(), -1);
    l->v = nv;
    l->cap = nc;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Output buffers and columns                                                           */

int buf_init(Buf *b, size_t cap) {
    b->ba = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)cap);
    if (!b->ba) return -1;
    b->p = PyByteArray_AS_STRING(b->ba);
    b->len = 0;
    b->cap = cap;
    return 0;
}

int buf_grow(Buf *b, size_t need) {
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

/* Ends the next row of a VAR or LIST column: its end offset (and validity). */
int col_end(Ctx *c, int i) {
    Col *col = &c->cols[i];
    const ColSpec *spec = &c->specs[i];
    size_t end = spec->kind == COL_LIST ? col->data.len / spec->width : col->data.len;
    if (end > INT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "column %s holds more than 2 GiB in one request",
                     spec->name);
        return -1;
    }
    int32_t off = (int32_t)end;
    if (spec->nullable && col_bit(&col->valid, col->n, 1)) return -1;
    col->n++;
    return put(&col->off, &off, sizeof off);
}

/* col_null for VAR, LIST and BOOL columns. */
int col_null_slow(Ctx *c, int i) {
    Col *col = &c->cols[i];
    const ColSpec *spec = &c->specs[i];
    static const uint8_t zeros[8] = {0};
    int rc;
    switch (spec->kind) {
    case COL_VAR:
    case COL_LIST: {
        int32_t off;
        memcpy(&off, col->off.p + col->off.len - sizeof off, sizeof off);
        rc = put(&col->off, &off, sizeof off);
        break;
    }
    case COL_BOOL:
        rc = col_bit(&col->data, col->n, 0);
        break;
    default:
        rc = put(&col->data, zeros, spec->width);
        break;
    }
    if (rc || col_bit(&col->valid, col->n, 0)) return -1;
    col->n++;
    col->nulls++;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* UTF-8                                                                                */

int utf8_valid(const uint8_t *s, size_t n) {
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

/* Byte length of the first `limit` code points of valid UTF-8 `s` (all of it if shorter). */
size_t utf8_prefix(Seg s, uint64_t limit) {
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
int utf8_longer(Seg s, uint64_t limit) {
    size_t n = (size_t)(s.end - s.p);
    if ((uint64_t)n <= limit) return 0;
    return utf8_prefix(s, limit) < n;
}

/* ------------------------------------------------------------------------------------ */
/* Wire format reader                                                                   */

/* Varint of at most 10 bytes; bits beyond 64 are dropped (as upb does). */
int rd_varint(Ctx *c, const uint8_t **pp, const uint8_t *end, uint64_t *out) {
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
int rd_varint32(Ctx *c, const uint8_t **pp, const uint8_t *end, uint64_t max, uint32_t *out,
                const char *what) {
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

/* rd_field beyond its inline fast path; *pp == at. */
int rd_field_slow(Ctx *c, const uint8_t **pp, const uint8_t *end, int level, Fld *f,
                  const uint8_t *at) {
    uint32_t tag;
    if (rd_varint32(c, pp, end, UINT32_MAX, &tag, "invalid field tag")) return -1;
    f->num = tag >> 3;
    f->wt = tag & 7;
    if (f->num == 0) return fail(c, at, "invalid field number 0");
    switch (f->wt) {
    case 0:
        return rd_varint(c, pp, end, &f->v);
    case 1:
        if (end - *pp < 8) return fail(c, *pp, "truncated fixed64 field");
        f->v = le64(*pp);
        *pp += 8;
        return 0;
    case 2: {
        uint32_t n;
        if (rd_varint32(c, pp, end, INT32_MAX, &n, "invalid length")) return -1;
        if ((size_t)(end - *pp) < n)
            return fail(c, *pp, "length-delimited field runs past its end");
        f->s.p = *pp;
        f->s.end = *pp + n;
        *pp += n;
        return 0;
    }
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

/* _fastotlp: AnyValue / KeyValue resolution, attribute limits, attribute JSON (storage and
 * query-API forms), and the Resource / InstrumentationScope levels every signal shares. */
#include "_fastotlp.h"

/* ------------------------------------------------------------------------------------ */
/* AnyValue / KeyValue                                                                  */

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
int resolve_av(Ctx *c, const Seg *segs, uint32_t n, int level, int validate, AV *av) {
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

void ks_free(KeySet *ks) {
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
/* AnyValue -> JSON: storage (anyvalue.to_json(value, max_len)) or API (anyvalue.to_api)  */

static int emit_str(Buf *b, Seg s, uint64_t limit, int always) {
    if (always || limit) s.end = s.p + utf8_prefix(s, limit);
    return put_json_seg(b, s);
}

static int emit_entries(Ctx *c, Buf *b, const KeySet *ks, int level_av, int top, int mode) {
    if (putc1(b, '{')) return -1;
    for (uint32_t i = 0; i < ks->n; i++) {
        const Entry *e = &ks->e[i];
        if (i && putc1(b, ',')) return -1;
        if (put_json_seg(b, e->key) || putc1(b, ':')) return -1;
        if (top && e->av.kind == AV_STR) {
            /* attributes_to_json: s[:max_len] whenever len(s) > max_len */
            if (emit_str(b, e->av.s, c->max_len, 1)) return -1;
        } else if (emit_av(c, b, &e->av, level_av, mode)) {
            return -1;
        }
    }
    return putc1(b, '}');
}

/* The storage form of a one-key object whose key is a type tag ("\0b" or "\0d"): to_api
 * gives such a dict's value as it is, as if it were a tagged bytes or double value. */
static int is_tag_key(Seg k) {
    return k.end - k.p == 2 && k.p[0] == 0 && (k.p[1] == 'b' || k.p[1] == 'd');
}

static int emit_kvlist(Ctx *c, Buf *b, const AV *av, int level, int mode) {
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
    if (mode == JS_API && ks.n == 1 && is_tag_key(ks.e[0].key))
        rc = emit_av(c, b, &ks.e[0].av, level + 3, JS_STORE);
    else
        rc = emit_entries(c, b, &ks, level + 3, 0, mode);
done:
    ks_free(&ks);
    return rc;
}

/* to_api: integers beyond +-2^53 as decimal strings */
static int emit_api_int(Buf *b, int64_t v) {
    const int64_t lim = INT64_C(1) << 53;
    if (v >= -lim && v <= lim) return put_i64(b, v);
    if (putc1(b, '"') || put_i64(b, v)) return -1;
    return putc1(b, '"');
}

int emit_av(Ctx *c, Buf *b, const AV *av, int level, int mode) {
    switch (av->kind) {
    case AV_STR:
        return emit_str(b, av->s, c->max_len, 0);
    case AV_BOOL:
        return av->u ? PUTS(b, "true") : PUTS(b, "false");
    case AV_INT:
        return mode == JS_API ? emit_api_int(b, (int64_t)av->u) : put_i64(b, (int64_t)av->u);
    case AV_DBL: {
        double d = u2d(av->u);
        if (mode == JS_API && !isfinite(d)) {
            if (isnan(d)) return PUTS(b, "\"NaN\"");
            return d > 0 ? PUTS(b, "\"Infinity\"") : PUTS(b, "\"-Infinity\"");
        }
        return put_double(b, d);
    }
    case AV_BYTES: {
        size_t n = (size_t)(av->s.end - av->s.p);
        if (c->max_len && (uint64_t)n > c->max_len) n = (size_t)c->max_len;
        if (mode == JS_API) {
            if (putc1(b, '"') || put_base64(b, av->s.p, n)) return -1;
            return putc1(b, '"');
        }
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
                    if (emit_av(c, b, &el, level + 2, mode)) return -1;
                }
            }
            if (r < 0) return -1;
        }
        return putc1(b, ']');
    }
    case AV_KVL:
        return emit_kvlist(c, b, av, level, mode);
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
 * only validates (a rejected item). *affected gets the limits' count. */
int do_attrs(Ctx *c, Buf *b, const Seg *kvs, size_t n, int level, int emit,
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
    return emit_entries(c, b, ks, level + 1, 1, JS_STORE);
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

/* (bytes of the concatenated occurrences, schema_url str [, resource index, rows]) */
static PyObject *record(const SegVec *occ, Seg url, Py_ssize_t ridx, uint64_t nrows) {
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
    return Py_BuildValue("(NNnK)", bytes, u, ridx, (unsigned long long)nrows);
}

/* ScopeSpans / ScopeLogs / ScopeMetrics: scope = 1, items = 2, schema_url = 3. */
static int do_scope(Ctx *c, Seg s, Py_ssize_t ridx) {
    const int level = 2;
    if (level > MAX_DEPTH) return fail_depth(c, s.p);
    uint64_t before = c->nrows;
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
            if (c->item(c, f.s)) return -1;
        } else if (f.num == 3) {
            if (chk_utf8(c, f.s)) return -1;
            url = f.s;
        }
    }
    if (r < 0) return -1;
    const Seg *segs = sv_data(&scope);
    for (uint32_t i = 0; i < scope.n; i++)
        if (vt_scope(c, segs[i], level + 1)) return -1;
    PyObject *rec = record(&scope, url, ridx, c->nrows - before);
    if (!rec) return -1;
    int rc = PyList_Append(c->scopes, rec);
    Py_DECREF(rec);
    return rc;
}

/* ResourceSpans / ResourceLogs / ResourceMetrics: resource = 1, scopes = 2, schema_url = 3. */
int do_resource(Ctx *c, Seg s) {
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
            if (do_scope(c, f.s, ridx)) return -1;
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
/* Module set-up                                                                        */

int init_attrs(void) {
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

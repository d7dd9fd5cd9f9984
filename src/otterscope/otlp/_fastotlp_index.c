/* _fastotlp: (row, key, value text) of every top-level attribute in a column of stored
 * attribute JSON, in one pass, for the attribute index that sealing writes (attrindex.py).
 *
 * The value text is what DuckDB's json_extract_string gives for the key, which is the test
 * a search applies: a string unescaped, true/false as such, an integer literal as written;
 * a JSON null gives no pair; when a key repeats in one object, its first occurrence alone
 * counts (null included), as in json_extract_string. Doubles, arrays and objects give their
 * text as stored: a search never looks those up in the index (sql.attribute_needles names
 * no needle for a value that reads as a number or starts with '{' or '['). Anything else
 * (malformed JSON, a lone surrogate escape, a non-canonical integer such as -0 or 007, more
 * keys than asked for) makes the whole call return None, and the caller extracts the pairs
 * with DuckDB as before. */
#include "_fastotlp.h"

typedef struct {
    Buf rows, keys, voff, vdata;
    Buf names;      /* the distinct keys, unescaped, back to back */
    Buf name_off;   /* int64 start of each distinct key in `names`, plus the end */
    uint32_t *tab;  /* open addressing: key number + 1 */
    uint32_t tabsize, nkeys, max_keys;
    Buf tmp;        /* the key being read, unescaped */
    uint64_t seen[4 * 1024]; /* keys already met in the current object (max_keys <= 65536) */
} Pairs;

/* Append without growing: the reader runs without the GIL, so each chunk's worst case is
 * reserved beforehand (chunk_pairs); past it, give up rather than call into Python. */
static inline int putr(Buf *b, const void *src, size_t n) {
    if (b->cap - b->len < n) return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static uint32_t hash_bytes(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static int hex4(const uint8_t *p, const uint8_t *end, uint32_t *out) {
    if (end - p < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v |= (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') v |= (uint32_t)(ch - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* A JSON string starting after its opening quote, unescaped onto `out`; returns the byte
 * after the closing quote, or NULL when it is not one. */
static const uint8_t *read_str(const uint8_t *p, const uint8_t *end, Buf *out) {
    for (;;) {
        const uint8_t *start = p;
        while (p < end && *p != '"' && *p != '\\') {
            if (*p < 0x20) return NULL;
            p++;
        }
        if (putr(out, start, (size_t)(p - start))) return NULL;
        if (p >= end) return NULL;
        if (*p == '"') return p + 1;
        if (++p >= end) return NULL;
        char c;
        switch (*p++) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(p, end, &cp)) return NULL;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo)) return NULL;
                if (lo < 0xDC00 || lo > 0xDFFF) return NULL;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            uint8_t u[4];
            size_t n;
            if (cp < 0x80) u[0] = (uint8_t)cp, n = 1;
            else if (cp < 0x800) u[0] = (uint8_t)(0xC0 | (cp >> 6)), u[1] = (uint8_t)(0x80 | (cp & 0x3F)), n = 2;
            else if (cp < 0x10000)
                u[0] = (uint8_t)(0xE0 | (cp >> 12)), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)),
                u[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
            else
                u[0] = (uint8_t)(0xF0 | (cp >> 18)), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F)),
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (uint8_t)(0x80 | (cp & 0x3F)), n = 4;
            if (putr(out, u, n)) return NULL;
            continue;
        }
        default: return NULL;
        }
        if (putr(out, &c, 1)) return NULL;
    }
}

/* Skip one JSON value of any kind (strings honoured); NULL when it is not one. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end) {
    int depth = 0;
    do {
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        uint8_t ch = *p;
        if (ch == '"') {
            p++;
            while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
            if (p >= end) return NULL;
            p++;
        } else if (ch == '{' || ch == '[') {
            depth++, p++;
        } else if (ch == '}' || ch == ']') {
            if (--depth < 0) return NULL;
            p++;
        } else if (ch == ',' || ch == ':') {
            if (depth == 0) return NULL;
            p++;
        } else {
            const uint8_t *s = p;
            while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' ||
                               *p == '+' || *p == '.' || *p == 'E'))
                p++;
            if (p == s) return NULL;
        }
    } while (depth > 0);
    return p;
}

/* The number of key `k` (unescaped in `tmp`), adding it; -1 past max_keys or on error. */
static int64_t key_number(Pairs *x) {
    const uint8_t *k = (const uint8_t *)x->tmp.p;
    size_t n = x->tmp.len;
    uint32_t h = hash_bytes(k, n), mask = x->tabsize - 1;
    const int64_t *off = (const int64_t *)x->name_off.p;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = x->tab[i];
        if (slot == 0) {
            if (x->nkeys >= x->max_keys) return -1;
            int64_t end = (int64_t)(x->names.len + n);
            if (putr(&x->names, k, n) || putr(&x->name_off, &end, 8)) return -2;
            x->tab[i] = ++x->nkeys;
            return x->nkeys - 1;
        }
        const uint8_t *name = (const uint8_t *)x->names.p + off[slot - 1];
        if ((size_t)(off[slot] - off[slot - 1]) == n && memcmp(name, k, n) == 0) return slot - 1;
    }
}

/* One object's pairs (without the GIL); 0 done, 1 give up (None). */
static int object_pairs(Pairs *x, const uint8_t *p, const uint8_t *end, uint32_t row) {
    memset(x->seen, 0, ((x->max_keys + 63) / 64) * 8);
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return 1;
    p = skip_ws(p, end);
    if (p < end && *p == '}') return skip_ws(p + 1, end) == end ? 0 : 1;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p++ != '"') return 1;
        x->tmp.len = 0;
        if (!(p = read_str(p, end, &x->tmp))) return 1;
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':') return 1;
        p = skip_ws(p, end);
        if (p >= end) return 1;
        int64_t k = key_number(x);
        if (k < 0) return 1;
        int first = !(x->seen[k >> 6] & (1ull << (k & 63)));
        x->seen[k >> 6] |= 1ull << (k & 63);
        size_t vstart = x->vdata.len;
        int emit = 1;
        uint8_t ch = *p;
        if (ch == '"') {
            if (!(p = read_str(p + 1, end, first ? &x->vdata : &x->tmp))) return 1;
        } else if (ch == 'n') {
            if (end - p < 4 || memcmp(p, "null", 4)) return 1;
            p += 4, emit = 0;
        } else if (ch == 't' || ch == 'f') {
            const char *lit = ch == 't' ? "true" : "false";
            size_t n = ch == 't' ? 4 : 5;
            if ((size_t)(end - p) < n || memcmp(p, lit, n)) return 1;
            if (first && putr(&x->vdata, lit, n)) return 1;
            p += n;
        } else {
            if (ch != '-' && !(ch >= '0' && ch <= '9') && ch != '{' && ch != '[') return 1;
            const uint8_t *s = p;
            if (!(p = skip_value(p, end))) return 1;
            if (ch == '-' || (ch >= '0' && ch <= '9')) {
                const uint8_t *d = s + (ch == '-');
                int integer = 1;
                for (const uint8_t *q = d; q < p; q++) integer &= *q >= '0' && *q <= '9';
                /* "-0", "007": json_extract_string rewrites them; not worth following */
                if (integer && (p == d || (*d == '0' && (p - d > 1 || ch == '-')))) return 1;
            }
            if (first && putr(&x->vdata, s, (size_t)(p - s))) return 1;
        }
        if (first && emit) {
            int64_t vend = (int64_t)x->vdata.len;
            uint16_t k16 = (uint16_t)k;
            if (putr(&x->rows, &row, 4) || putr(&x->keys, &k16, 2) || putr(&x->voff, &vend, 8)) return 1;
        } else {
            x->vdata.len = vstart;
        }
        p = skip_ws(p, end);
        if (p >= end) return 1;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p++ != '}') return 1;
        return skip_ws(p, end) == end ? 0 : 1;
    }
}

static void pairs_free(Pairs *x) {
    Py_XDECREF(x->rows.ba);
    Py_XDECREF(x->keys.ba);
    Py_XDECREF(x->voff.ba);
    Py_XDECREF(x->vdata.ba);
    Py_XDECREF(x->names.ba);
    Py_XDECREF(x->name_off.ba);
    Py_XDECREF(x->tmp.ba);
    PyMem_Free(x->tab);
    PyMem_Free(x);
}

/* One string array chunk: (validity or None, int32 offsets, data, offset, length, first row). */
static int chunk_pairs(Pairs *x, PyObject *chunk) {
    PyObject *valid_o, *off_o, *data_o;
    Py_ssize_t offset, length, base;
    if (!PyArg_ParseTuple(chunk, "OOOnnn", &valid_o, &off_o, &data_o, &offset, &length, &base))
        return -1;
    Py_buffer vb = {0}, ob = {0}, db = {0};
    int rc = -1;
    if (valid_o != Py_None && PyObject_GetBuffer(valid_o, &vb, PyBUF_SIMPLE)) goto done;
    if (PyObject_GetBuffer(off_o, &ob, PyBUF_SIMPLE) || PyObject_GetBuffer(data_o, &db, PyBUF_SIMPLE))
        goto done;
    if (offset < 0 || length < 0 || (offset + length + 1) * 4 > ob.len ||
        (vb.buf && (offset + length + 7) / 8 > vb.len)) {
        PyErr_SetString(PyExc_ValueError, "attribute_pairs: buffers too short");
        goto done;
    }
    const int32_t *off = (const int32_t *)ob.buf;
    const uint8_t *data = (const uint8_t *)db.buf, *bits = (const uint8_t *)vb.buf;
    int32_t lo = off[offset], hi = off[offset + length];
    if (lo < 0 || hi < lo || hi > db.len) {
        PyErr_SetString(PyExc_ValueError, "attribute_pairs: bad offsets");
        goto done;
    }
    /* The most the chunk can add: a pair takes at least 4 bytes ("":0), unescaping never
     * lengthens a text, and no text is longer than the chunk. */
    size_t bytes = (size_t)(hi - lo), pairs = bytes / 4 + 1;
    if (RESERVE(&x->rows, 4 * pairs) || RESERVE(&x->keys, 2 * pairs) ||
        RESERVE(&x->voff, 8 * pairs) || RESERVE(&x->vdata, bytes) || RESERVE(&x->tmp, bytes) ||
        RESERVE(&x->names, bytes))
        goto done;
    rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < length && rc == 0; i++) {
        Py_ssize_t j = offset + i;
        if (bits && !(bits[j >> 3] & (1 << (j & 7)))) continue;
        int32_t a = off[j], b = off[j + 1];
        if (a < lo || b < a || b > hi) {
            rc = 1;
            break;
        }
        rc = object_pairs(x, data + a, data + b, (uint32_t)(base + i));
    }
    Py_END_ALLOW_THREADS
done:
    if (vb.buf) PyBuffer_Release(&vb);
    if (ob.buf) PyBuffer_Release(&ob);
    if (db.buf) PyBuffer_Release(&db);
    return rc;
}

PyObject *attribute_pairs(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *chunks;
    unsigned int max_keys;
    if (!PyArg_ParseTuple(args, "OI:attribute_pairs", &chunks, &max_keys)) return NULL;
    if (max_keys > 65536) max_keys = 65536;
    PyObject *seq = PySequence_Fast(chunks, "attribute_pairs: chunks must be a sequence");
    if (!seq) return NULL;
    Pairs *x = PyMem_Calloc(1, sizeof(Pairs));
    PyObject *result = NULL;
    if (!x) {
        PyErr_NoMemory();
        goto out;
    }
    x->max_keys = max_keys;
    x->tabsize = 1;
    while (x->tabsize < 2 * max_keys + 2) x->tabsize <<= 1;
    x->tab = PyMem_Calloc(x->tabsize, sizeof(uint32_t));
    int64_t zero = 0;
    if (!x->tab || buf_init(&x->rows, 1 << 16) || buf_init(&x->keys, 1 << 15) ||
        buf_init(&x->voff, 1 << 17) || buf_init(&x->vdata, 1 << 18) || buf_init(&x->names, 256) ||
        buf_init(&x->name_off, 8 * ((size_t)max_keys + 2)) || buf_init(&x->tmp, 256) || put(&x->voff, &zero, 8) ||
        put(&x->name_off, &zero, 8)) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto out;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && rc == 0; i++)
        rc = chunk_pairs(x, PySequence_Fast_GET_ITEM(seq, i));
    if (rc < 0) goto out;
    if (rc > 0) {
        result = Py_NewRef(Py_None);
        goto out;
    }
    PyObject *names = PyList_New(x->nkeys);
    if (!names) goto out;
    const int64_t *noff = (const int64_t *)x->name_off.p;
    for (uint32_t k = 0; k < x->nkeys; k++) {
        PyObject *s = PyUnicode_DecodeUTF8(x->names.p + noff[k], (Py_ssize_t)(noff[k + 1] - noff[k]), NULL);
        if (!s) {
            Py_DECREF(names);
            goto out;
        }
        PyList_SET_ITEM(names, k, s);
    }
    Buf *bufs[] = {&x->rows, &x->keys, &x->voff, &x->vdata};
    for (int i = 0; i < 4; i++)
        if (PyByteArray_Resize(bufs[i]->ba, (Py_ssize_t)bufs[i]->len)) {
            Py_DECREF(names);
            goto out;
        }
    result = Py_BuildValue("(NOOOO)", names, x->rows.ba, x->keys.ba, x->voff.ba, x->vdata.ba);
out:
    if (x) pairs_free(x);
    Py_DECREF(seq);
    return result;
}

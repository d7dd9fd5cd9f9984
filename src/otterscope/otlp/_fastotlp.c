/* _fastotlp: the module. One decode function per signal around a common driver; see
 * _fastotlp.h for what the module does and how its files divide the work. */
#include "_fastotlp.h"

static void ctx_free(Ctx *c) {
    for (size_t i = 0; i < c->nowned; i++) free(c->owned[i]);
    free(c->owned);
    SegList *lists[] = {&c->kvs,    &c->kvs2,   &c->events,    &c->links,
                        &c->meta,   &c->points, &c->exemplars, &c->quantiles};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) free(lists[i]->v);
    U64List *u64s[] = {&c->bucket_counts, &c->explicit_bounds, &c->positive, &c->negative};
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) free(u64s[i]->v);
    ks_free(&c->ks);
    Py_CLEAR(c->tmp.ba);
    if (c->cols) {
        for (int i = 0; i < c->ncols; i++) {
            Py_CLEAR(c->cols[i].off.ba);
            Py_CLEAR(c->cols[i].data.ba);
            Py_CLEAR(c->cols[i].valid.ba);
        }
        free(c->cols);
    }
    Py_CLEAR(c->resources);
    Py_CLEAR(c->scopes);
}

static int finish_buf(Buf *b) { return PyByteArray_Resize(b->ba, (Py_ssize_t)b->len); }

static int init_cols(Ctx *c, size_t body_len, size_t rows) {
    c->cols = (Col *)calloc((size_t)c->ncols, sizeof(Col));
    if (!c->cols) return (PyErr_NoMemory(), -1);
    for (int i = 0; i < c->ncols; i++) {
        const ColSpec *spec = &c->specs[i];
        Col *col = &c->cols[i];
        size_t bits = rows / 8 + 8;
        size_t data = spec->kind == COL_BOOL ? bits
                      : spec->hint          ? rows * spec->hint
                                            : body_len / 2 + 256;
        if (buf_init(&col->data, data)) return -1;
        if (spec->kind == COL_VAR || spec->kind == COL_LIST) {
            int32_t zero = 0;
            if (buf_init(&col->off, (rows + 1) * 4) || put(&col->off, &zero, 4)) return -1;
        }
        if (spec->nullable && buf_init(&col->valid, bits)) return -1;
    }
    return 0;
}

/* {name: (validity or None, offsets or None, data)} */
static PyObject *columns_dict(Ctx *c) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < c->ncols; i++) {
        Col *col = &c->cols[i];
        const ColSpec *spec = &c->specs[i];
        if (col->n != c->nrows) {
            PyErr_Format(PyExc_SystemError, "column %s has %llu rows, not %llu", spec->name,
                         (unsigned long long)col->n, (unsigned long long)c->nrows);
            goto error;
        }
        if (finish_buf(&col->data)) goto error;
        if (col->off.ba && finish_buf(&col->off)) goto error;
        if (col->valid.ba && finish_buf(&col->valid)) goto error;
        PyObject *valid = col->nulls ? col->valid.ba : Py_None;
        PyObject *off = col->off.ba ? col->off.ba : Py_None;
        PyObject *t = PyTuple_Pack(3, valid, off, col->data.ba);
        if (!t) goto error;
        int rc = PyDict_SetItemString(d, spec->name, t);
        Py_DECREF(t);
        if (rc) goto error;
    }
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

static PyObject *run(PyObject *args, const Signal *sig, const char *fmt) {
    Py_buffer view;
    long long cap, max_len;
    if (!PyArg_ParseTuple(args, fmt, &view, &cap, &max_len)) return NULL;
    if (max_len < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "attribute_value_length must be >= 0");
        return NULL;
    }
    Ctx ctx;
    Ctx *c = &ctx;
    memset(c, 0, sizeof ctx);
    PyObject *out = NULL, *cols = NULL;
    const uint8_t *p = (const uint8_t *)view.buf, *end = p + view.len;
    c->base = p;
    c->cap = cap < 0 ? 0 : (uint64_t)cap;
    c->max_len = (uint64_t)max_len;
    c->specs = sig->specs;
    c->ncols = sig->ncols;
    c->item = sig->item;

    if (init_cols(c, (size_t)view.len, (size_t)view.len / sig->bytes_per_row + 16)) goto error;
    if (buf_init(&c->tmp, 256)) goto error;
    c->resources = PyList_New(0);
    c->scopes = PyList_New(0);
    if (!c->resources || !c->scopes) goto error;

    while (p < end) {
        Fld f;
        if (rd_field(c, &p, end, 0, &f)) goto error;
        if (f.num == 1 && f.wt == 2 && do_resource(c, f.s)) goto error;
    }

    cols = columns_dict(c);
    if (!cols) goto error;
    {
        PyObject *name = c->reject_name.p
                             ? PyUnicode_DecodeUTF8((const char *)c->reject_name.p,
                                                    c->reject_name.end - c->reject_name.p,
                                                    "strict")
                             : PyUnicode_FromString("");
        if (!name) goto error;
        out = Py_BuildValue("{sKsKsisNsKsKsOsOsO}", "n", (unsigned long long)c->nrows,
                            "rejected", (unsigned long long)c->rejected, "reject_reason",
                            c->reject_reason, "reject_name", name, "dropped",
                            (unsigned long long)c->dropped, "truncated",
                            (unsigned long long)c->truncated, "resources", c->resources,
                            "scopes", c->scopes, "columns", cols);
        if (!out) goto error;
    }
    Py_DECREF(cols);
    ctx_free(c);
    PyBuffer_Release(&view);
    return out;

error:
    Py_XDECREF(cols);
    ctx_free(c);
    PyBuffer_Release(&view);
    return NULL;
}

PyDoc_STRVAR(decode_spans_doc,
             "decode_spans(body, attribute_count, attribute_value_length) -> dict\n\n"
             "Decode an ExportTraceServiceRequest into SPANS column buffers.");

static PyObject *decode_spans(PyObject *self, PyObject *args) {
    (void)self;
    return run(args, &SPANS_SIGNAL, "y*LL:decode_spans");
}

PyDoc_STRVAR(decode_logs_doc,
             "decode_logs(body, attribute_count, attribute_value_length) -> dict\n\n"
             "Decode an ExportLogsServiceRequest into LOGS column buffers.");

static PyObject *decode_logs(PyObject *self, PyObject *args) {
    (void)self;
    return run(args, &LOGS_SIGNAL, "y*LL:decode_logs");
}

PyDoc_STRVAR(decode_metrics_doc,
             "decode_metrics(body, attribute_count, attribute_value_length) -> dict\n\n"
             "Decode an ExportMetricsServiceRequest into METRIC_POINTS column buffers.");

static PyObject *decode_metrics(PyObject *self, PyObject *args) {
    (void)self;
    return run(args, &METRICS_SIGNAL, "y*LL:decode_metrics");
}

/* Testing hook: the text put_double writes for a double. */
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
    {"decode_spans", decode_spans, METH_VARARGS, decode_spans_doc},
    {"decode_logs", decode_logs, METH_VARARGS, decode_logs_doc},
    {"decode_metrics", decode_metrics, METH_VARARGS, decode_metrics_doc},
    {"attribute_pairs", attribute_pairs, METH_VARARGS,
     "attribute_pairs(chunks, max_keys) -> (keys, rows, key numbers, value offsets, values) "
     "or None: every top-level attribute of stored attribute JSON (attrindex.py)."},
    {"_format_double", format_double, METH_O, "The JSON text written for one double."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_fastotlp",
    "OTLP protobuf export requests straight to Arrow column buffers.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__fastotlp(void) {
    init_json();
    if (init_attrs()) return NULL;
    return PyModule_Create(&module);
}

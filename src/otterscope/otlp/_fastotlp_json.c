/* _fastotlp: JSON text as orjson writes it (strings, integers, doubles), base64, hex. */
#include "_fastotlp.h"

int put_u64(Buf *b, uint64_t v) {
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

int put_i64(Buf *b, int64_t v) {
    if (v < 0) {
        if (putc1(b, '-')) return -1;
        return put_u64(b, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(b, (uint64_t)v);
}


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

int put_json_str(Buf *b, const uint8_t *s, size_t n) {
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

/* Shortest round-trip digits of a finite double, as repr() writes them.
 *
 * Free-format digit generation (Steele & White; Burger & Dybvig 1996) on exact integers:
 * v = R/S, and the half-gaps to the neighbouring doubles are Mp/S (above) and Mm/S (below).
 * Digits are produced until the rest falls inside that rounding interval, so the result is
 * the shortest decimal that reads back as v, and of those the closest to v. It runs on
 * unsigned __int128 and is exact while every quantity stays below 2^127, which holds for
 * normal doubles with binary exponent e in [-118, 60] (about 1e-20 <= |v| < 1e34); other
 * doubles go through CPython's own dtoa. Returns the length written to out (>= 32 bytes). */
#if HAVE_U128
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
static void init_pow10(void) {}
#endif

/* orjson's layout of digits d1..dn * 10^(decpt - n): the digits repr() gives, positional
 * from 1e-5 up to 1e16, scientific outside with the shortest exponent ("1e-7", "1e+16"). */
static size_t layout_double(char *out, int neg, const char *dg, int n, int decpt) {
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt < -4 || decpt > 16) {
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
        if (x >= 10) *o++ = (char)('0' + (x / 10) % 10);
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

/* The digits and decimal point position of repr() text ("1.25e-310", "0.001", "5e-324"). */
static int parse_repr(const char *txt, char *dg, int *decpt) {
    int n = 0, before = 0, seen_dot = 0, lead = 1, skipped = 0;
    const char *q = txt;
    if (*q == '-') q++;
    for (; *q && *q != 'e'; q++) {
        if (*q == '.') {
            seen_dot = 1;
            continue;
        }
        if (*q < '0' || *q > '9' || n >= 20) return 0;
        if (!seen_dot) before++;
        if (lead && *q == '0') {
            skipped++;
            continue;
        }
        lead = 0;
        dg[n++] = *q;
    }
    int exp = *q == 'e' ? atoi(q + 1) : 0;
    while (n > 1 && dg[n - 1] == '0') n--;
    if (n == 0) return 0;
    *decpt = before - skipped + exp;
    return n;
}

int put_finite_double(Buf *b, double d) {
    char digits[24];
    int decpt = 0, n = 0;
    if (d == 0) return signbit(d) ? PUTS(b, "-0.0") : PUTS(b, "0.0");
#if HAVE_U128
    n = shortest_digits(fabs(d), digits, &decpt);
#endif
    if (n <= 0) {
        /* subnormal or far from 1: CPython's own dtoa gives the digits */
        char *txt = PyOS_double_to_string(d, 'r', 0, 0, NULL);
        if (!txt) return -1;
        n = parse_repr(txt, digits, &decpt);
        PyMem_Free(txt);
        if (n <= 0) {
            PyErr_SetString(PyExc_SystemError, "unexpected repr() of a double");
            return -1;
        }
    }
    if (RESERVE(b, 48)) return -1;
    b->len += layout_double(b->p + b->len, d < 0, digits, n, decpt);
    return 0;
}

int put_double(Buf *b, double d) {
    if (isnan(d)) return PUTS(b, "{\"\\u0000d\":\"NaN\"}");
    if (isinf(d))
        return d > 0 ? PUTS(b, "{\"\\u0000d\":\"Infinity\"}")
                     : PUTS(b, "{\"\\u0000d\":\"-Infinity\"}");
    return put_finite_double(b, d);
}

int put_base64(Buf *b, const uint8_t *s, size_t n) {
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

int put_hex_json(Buf *b, Seg s) {
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


void init_json(void) {
    init_json_esc();
    init_pow10();
}

/*
 * pq_norm.c — query text normalization for libpq tracing (pq.h): the
 * constants of a query become $n, as pg_stat_statements shows them, so that
 * "WHERE id = 7" and "WHERE id = 8" are one query and no value leaves the
 * process.  Our own lexer, not the server's: it knows strings (standard,
 * E'', B'', X'', U&''), dollar quoting, quoted identifiers, comments,
 * numbers and parameters, which is what decides where a constant is.
 *
 * Unlike pg_stat_statements (PostgreSQL 15), a list of constants after IN
 * collapses to "IN (...)": otherwise each list length is another query,
 * and the N+1 fix (batching the ids) would look like a new query per batch
 * size.  Called from hooks: no allocation, no libc.
 */
#include "pq.h"

typedef struct out {
    char *p;
    size_t n, cap;
    unsigned next; /* next $n */
    uint64_t hash;
} out_t;

static void put(out_t *o, char c)
{
    if (o->n + 1 < o->cap)
        o->p[o->n++] = c;
}

static void put_num(out_t *o, unsigned v)
{
    char b[12];
    int i = 0;
    do
        b[i++] = (char)('0' + v % 10);
    while ((v /= 10) && i < 11);
    while (i)
        put(o, b[--i]);
}

static void put_param(out_t *o)
{
    put(o, '$');
    put_num(o, o->next++);
}

static void hash_bytes(out_t *o, const char *s, size_t n)
{
    uint64_t h = o->hash ? o->hash : 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull; /* separator: (1,23) != (12,3) */
    o->hash = h ? h : 1;
}

static int is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

/* End of the string literal whose quote is at s[i] (backslash escapes when
 * esc, doubled quotes always). */
static size_t skip_string(const char *s, size_t n, size_t i, int esc)
{
    for (i++; i < n; i++) {
        if (esc && s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == '\'') {
            if (i + 1 < n && s[i + 1] == '\'')
                i++;
            else
                return i + 1;
        }
    }
    return n;
}

/* A dollar quote opening at s[i] ("$$" or "$tag$"): its end, or 0 when
 * s[i] starts no dollar quote (a parameter, or part of an identifier). */
static size_t skip_dollar(const char *s, size_t n, size_t i)
{
    size_t t = i + 1, tl;
    while (t < n && s[t] != '$' && is_ident(s[t]) && !is_digit(s[i + 1]))
        t++;
    if (t >= n || s[t] != '$')
        return 0;
    tl = t - i + 1; /* the tag with both dollars */
    for (size_t j = t + 1; j + tl <= n; j++) {
        size_t k = 0;
        while (k < tl && s[j + k] == s[i + k])
            k++;
        if (k == tl)
            return j + tl;
    }
    return n;
}

/* A number at s[i] (digits, '.', exponent, 0x): its end. */
static size_t skip_number(const char *s, size_t n, size_t i)
{
    if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        while (i < n && is_ident(s[i]))
            i++;
        return i;
    }
    while (i < n && (is_digit(s[i]) || s[i] == '.' || s[i] == '_'))
        i++;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < n && is_digit(s[j])) {
            while (j < n && is_digit(s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

/* A constant or parameter at s[i]: its end, or 0 when s[i] starts neither. */
static size_t skip_const(const char *s, size_t n, size_t i, int *param)
{
    size_t e;
    *param = 0;
    if (s[i] == '\'')
        return skip_string(s, n, i, 0);
    if (i + 1 < n && s[i + 1] == '\'' &&
        (s[i] == 'E' || s[i] == 'e' || s[i] == 'B' || s[i] == 'b' || s[i] == 'X' || s[i] == 'x'))
        return skip_string(s, n, i + 1, s[i] == 'E' || s[i] == 'e');
    if (i + 2 < n && (s[i] == 'U' || s[i] == 'u') && s[i + 1] == '&' && s[i + 2] == '\'')
        return skip_string(s, n, i + 2, 0);
    if (s[i] == '$' && i + 1 < n && is_digit(s[i + 1])) {
        *param = 1;
        for (e = i + 1; e < n && is_digit(s[e]);)
            e++;
        return e;
    }
    if (s[i] == '$' && (e = skip_dollar(s, n, i)))
        return e;
    if (is_digit(s[i]) || (s[i] == '.' && i + 1 < n && is_digit(s[i + 1])))
        return skip_number(s, n, i);
    return 0;
}

/* s[i] is '(' after IN: the index of the ')' closing a list of only
 * constants and parameters, else 0. */
static size_t in_list(const char *s, size_t n, size_t i)
{
    int param, items = 0;
    for (i++;;) {
        size_t e;
        while (i < n && is_space(s[i]))
            i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        if (i >= n || !(e = skip_const(s, n, i, &param)))
            return 0;
        items++;
        i = e;
        while (i < n && is_space(s[i]))
            i++;
        if (i < n && s[i] == ')')
            return items ? i : 0;
        if (i >= n || s[i] != ',')
            return 0;
        i++;
    }
}

/* The output ends with the keyword IN (any case) as a whole word. */
static int ends_with_in(const out_t *o)
{
    size_t n = o->n;
    while (n && o->p[n - 1] == ' ')
        n--;
    return n >= 2 && upper(o->p[n - 2]) == 'I' && upper(o->p[n - 1]) == 'N' &&
           (n == 2 || !is_ident(o->p[n - 3]));
}

size_t pa_pq_normalize(const char *s, size_t n, char *outbuf, size_t cap, char *op, size_t opcap,
                       uint64_t *hash)
{
    out_t o = {.p = outbuf, .cap = cap, .next = 1};
    size_t i = 0, k = 0;
    int space = 0, param;

    if (!cap)
        return 0;
    /* New numbers follow the text's own parameters (pg_stat_statements). */
    for (size_t j = 0; j + 1 < n; j++)
        if (s[j] == '$' && is_digit(s[j + 1]) && (j == 0 || !is_ident(s[j - 1]))) {
            unsigned v = 0;
            for (j++; j < n && is_digit(s[j]) && v < 100000000; j++)
                v = v * 10 + (unsigned)(s[j] - '0');
            if (v >= o.next)
                o.next = v + 1;
        }
    if (op && opcap) {
        size_t j = 0;
        while (j < n && (is_space(s[j]) || s[j] == '('))
            j++;
        while (j < n && is_ident(s[j]) && k + 1 < opcap)
            op[k++] = upper(s[j++]);
        op[k] = 0;
    }
    while (i < n && o.n + 1 < o.cap) {
        char c = s[i];
        size_t e;
        if (is_space(c) || (c == '-' && i + 1 < n && s[i + 1] == '-') ||
            (c == '/' && i + 1 < n && s[i + 1] == '*')) {
            if (c == '-') {
                while (i < n && s[i] != '\n')
                    i++;
            } else if (c == '/') {
                for (i += 2; i + 1 < n && !(s[i] == '*' && s[i + 1] == '/');)
                    i++;
                i += 2;
            } else {
                i++;
            }
            space = 1;
            continue;
        }
        if (space && o.n)
            put(&o, ' ');
        space = 0;
        if (c == '"') {
            /* A quoted identifier: digits in it are not numbers. */
            put(&o, c);
            for (i++; i < n; i++) {
                put(&o, s[i]);
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"')
                        put(&o, s[++i]);
                    else
                        break;
                }
            }
            i++;
            continue;
        }
        if (c == '(' && ends_with_in(&o) && (e = in_list(s, n, i))) {
            for (size_t j = i + 1; j < e; j++)
                if (!is_space(s[j]))
                    hash_bytes(&o, s + j, 1);
            put(&o, '(');
            put(&o, '.');
            put(&o, '.');
            put(&o, '.');
            put(&o, ')');
            i = e + 1;
            continue;
        }
        if ((i == 0 || !is_ident(s[i - 1])) && (e = skip_const(s, n, i, &param))) {
            if (param) {
                while (i < e)
                    put(&o, s[i++]);
            } else {
                hash_bytes(&o, s + i, e - i);
                put_param(&o);
                i = e;
            }
            continue;
        }
        if (is_ident(c)) {
            while (i < n && is_ident(s[i]))
                put(&o, s[i++]);
            continue;
        }
        put(&o, c);
        i++;
    }
    o.p[o.n] = 0;
    if (hash)
        *hash = o.hash;
    return o.n;
}

/*
 * pq_norm.c — query text normalization for libpq tracing (pq.h): the
 * constants of a query become $n, as pg_stat_statements shows them, so that
 * "WHERE id = 7" and "WHERE id = 8" are one query and no value leaves the
 * process.  Our own lexer, not the server's: it knows strings (standard,
 * E'', B'', X'', U&''), dollar quoting, quoted identifiers, comments,
 * numbers and parameters, which is what decides where a constant is,
 * and the few tokens around it that decide as the server does (checked
 * against PostgreSQL 15 by tests/e2e/pq_pgss.sh): TRUE, FALSE, NULL and
 * LIMIT ALL are constants, a sign after an operator or keyword is part of
 * its number, an integer alone in an ORDER BY / GROUP BY / DISTINCT ON list
 * is a column number and stays, the statement's final ';' goes.
 *
 * Unlike pg_stat_statements (PostgreSQL 15), a list of constants after IN
 * collapses to "IN (...)": otherwise each list length is another query,
 * and the N+1 fix (batching the ids) would look like a new query per batch
 * size.  Comments go and white space runs become one space (a comment may
 * hold values; layout is not the query), and utility statements (SET,
 * CREATE ...) lose their constants too, which the server keeps.  Called
 * from hooks: no allocation, no libc but mem* and strlen.
 *
 * Also here, being pure functions tested with the normalizer
 * (tests/unit/test_agent_pq_norm.c): the template a text leaves for pq.c's
 * per-connection cache, and the QueryEvent's encoding.
 */
#include "pq.h"
#include "rows.h"

/* Character classes, one table look-up each: the lexer runs on every
 * query the program sends. */
enum { C_ID = 1, C_DG = 2, C_SP = 4 };
static const unsigned char cls[256] = {
    ['a' ... 'z'] = C_ID, ['A' ... 'Z'] = C_ID, ['0' ... '9'] = C_ID | C_DG,
    ['_'] = C_ID,         ['$'] = C_ID,         [0x80 ... 0xff] = C_ID,
    [' '] = C_SP,         ['\t'] = C_SP,        ['\n'] = C_SP,
    ['\r'] = C_SP,        ['\f'] = C_SP,        ['\v'] = C_SP,
};

/* The previous tokens, for the decisions that depend on them: a '-' is a
 * sign (part of the constant) after an operator or keyword, not after an
 * operand; TRUE/FALSE/NULL are constants except in IS [NOT] ...; an
 * integer alone in an ORDER BY, GROUP BY or DISTINCT ON list is a column
 * number, not a constant (pg_stat_statements keeps it). */
enum {
    T_NONE,  /* start of the text */
    T_OP,    /* an operator or punctuation character */
    T_OPEN,  /* ( */
    T_CLOSE, /* ) */
    T_COMMA,
    T_OPND, /* an operand: identifier, constant, parameter, quoted name */
    T_KW,   /* a keyword after which a '-' is a sign */
    T_BY,
    T_ORDER, /* ORDER, GROUP */
    T_IS,
    T_NOT,
    T_DISTINCT,
    T_ON,
    T_LIMIT,
    T_GROUPING, /* ROLLUP, CUBE, SETS: their parens hold column numbers too */
};
/* Keyword flags: starts a query (after a '('), ends a BY list, a constant. */
enum { K_QUERY = 1, K_ENDBY = 2, K_CONST = 4 };

#define DEPTH 64 /* paren levels with flags of their own; deeper ones have none */

typedef struct out {
    char *p;
    size_t n, cap;
    unsigned next; /* next $n */
    uint64_t hash;
    int prev, prev2; /* the last two tokens (T_*) */
    unsigned depth;  /* parens open */
    uint64_t subq;   /* bit d: level d holds a query (0, "(SELECT ...", ...) */
    uint64_t bylist; /* bit d: level d is in an ORDER/GROUP BY or DISTINCT ON list */
    int full;        /* the text was cut at cap */
    pa_pq_tmpl_t *t; /* the template to fill, or NULL */
} out_t;

static void put(out_t *o, char c)
{
    if (o->n + 1 < o->cap)
        o->p[o->n++] = c;
    else
        o->full = 1;
}

/* n bytes at once: names and kept numbers are most of a text. */
static void put_n(out_t *o, const char *s, size_t n)
{
    if (o->n + n < o->cap) {
        __builtin_memcpy(o->p + o->n, s, n);
        o->n += n;
        return;
    }
    while (n--)
        put(o, *s++);
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

static void token(out_t *o, int t)
{
    o->prev2 = o->prev;
    o->prev = t;
}

static uint64_t level_bit(const out_t *o)
{
    return o->depth < DEPTH ? 1ull << o->depth : 0;
}

static int is_ident(char c)
{
    return cls[(unsigned char)c] & C_ID;
}

static int is_digit(char c)
{
    return cls[(unsigned char)c] & C_DG;
}

static int is_space(char c)
{
    return cls[(unsigned char)c] & C_SP;
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

/* The keywords the lexer cares about: the token each makes (T_OPND for
 * any other word) and its K_* flags.  By first letter, then length: most
 * words of a query are names, rejected in a few instructions. */
static int keyword(const char *s, size_t n, int *flags)
{
    static const struct {
        char w[10];
        unsigned char len, t, f;
    } kw[] = {
        {"ALL", 3, T_OPND, K_CONST},
        {"AND", 3, T_KW, 0},
        {"BETWEEN", 7, T_KW, 0},
        {"BY", 2, T_BY, 0},
        {"CASE", 4, T_KW, 0},
        {"CUBE", 4, T_GROUPING, 0},
        {"DEFAULT", 7, T_KW, 0},
        {"DISTINCT", 8, T_DISTINCT, 0},
        {"ELSE", 4, T_KW, 0},
        {"EXCEPT", 6, T_KW, K_ENDBY},
        {"FALSE", 5, T_OPND, K_CONST},
        {"FETCH", 5, T_KW, K_ENDBY},
        {"FOR", 3, T_OPND, K_ENDBY},
        {"FROM", 4, T_KW, K_ENDBY},
        {"GROUP", 5, T_ORDER, 0},
        {"HAVING", 6, T_KW, K_ENDBY},
        {"ILIKE", 5, T_KW, 0},
        {"INTERSECT", 9, T_KW, K_ENDBY},
        {"IS", 2, T_IS, 0},
        {"LIKE", 4, T_KW, 0},
        {"LIMIT", 5, T_LIMIT, K_ENDBY},
        {"NOT", 3, T_NOT, 0},
        {"NULL", 4, T_OPND, K_CONST},
        {"OFFSET", 6, T_KW, K_ENDBY},
        {"ON", 2, T_ON, 0},
        {"OR", 2, T_KW, 0},
        {"ORDER", 5, T_ORDER, 0},
        {"RETURN", 6, T_KW, 0},
        {"RETURNING", 9, T_KW, K_ENDBY},
        {"ROLLUP", 6, T_GROUPING, 0},
        {"SELECT", 6, T_KW, K_QUERY | K_ENDBY},
        {"SETS", 4, T_GROUPING, 0},
        {"TABLE", 5, T_KW, K_QUERY},
        {"THEN", 4, T_KW, 0},
        {"TRUE", 4, T_OPND, K_CONST},
        {"UNION", 5, T_KW, K_ENDBY},
        {"VALUES", 6, T_KW, K_QUERY},
        {"WHEN", 4, T_KW, 0},
        {"WHERE", 5, T_KW, K_ENDBY},
        {"WINDOW", 6, T_OPND, K_ENDBY},
        {"WITH", 4, T_KW, K_QUERY},
    };
    size_t lo, hi;
    *flags = 0;
    if (n < 2 || n > 9)
        return T_OPND;
    switch (upper(s[0])) {
    case 'A':
        lo = 0, hi = 2;
        break;
    case 'B':
        lo = 2, hi = 4;
        break;
    case 'C':
        lo = 4, hi = 6;
        break;
    case 'D':
        lo = 6, hi = 8;
        break;
    case 'E':
        lo = 8, hi = 10;
        break;
    case 'F':
        lo = 10, hi = 14;
        break;
    case 'G':
        lo = 14, hi = 15;
        break;
    case 'H':
        lo = 15, hi = 16;
        break;
    case 'I':
        lo = 16, hi = 19;
        break;
    case 'L':
        lo = 19, hi = 21;
        break;
    case 'N':
        lo = 21, hi = 23;
        break;
    case 'O':
        lo = 23, hi = 27;
        break;
    case 'R':
        lo = 27, hi = 30;
        break;
    case 'S':
        lo = 30, hi = 32;
        break;
    case 'T':
        lo = 32, hi = 35;
        break;
    case 'U':
        lo = 35, hi = 36;
        break;
    case 'V':
        lo = 36, hi = 37;
        break;
    case 'W':
        lo = 37, hi = 41;
        break;
    default:
        return T_OPND;
    }
    for (size_t k = lo; k < hi; k++) {
        size_t i = 1;
        if (kw[k].len != n)
            continue;
        while (i < n && upper(s[i]) == kw[k].w[i])
            i++;
        if (i == n) {
            *flags = kw[k].f;
            return kw[k].t;
        }
    }
    return T_OPND;
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

/* s[i] is '-' where a sign may stand (after an operator or a keyword):
 * the end of the negative number it starts, else 0.  The server folds the
 * sign into the constant, unless a cast follows ("-5::int" is -(5::int)). */
static size_t signed_number(const out_t *o, const char *s, size_t n, size_t i)
{
    size_t j = i + 1, e;
    if (o->prev != T_NONE && o->prev != T_OP && o->prev != T_OPEN && o->prev != T_COMMA &&
        o->prev != T_KW && o->prev != T_LIMIT && o->prev != T_BY && o->prev != T_IS && o->prev != T_NOT &&
        o->prev != T_ON)
        return 0;
    while (j < n && is_space(s[j]))
        j++;
    if (j >= n || !(is_digit(s[j]) || (s[j] == '.' && j + 1 < n && is_digit(s[j + 1]))))
        return 0;
    e = skip_number(s, n, j);
    for (j = e; j < n && is_space(s[j]);)
        j++;
    return j + 1 < n && s[j] == ':' && s[j + 1] == ':' ? 0 : e;
}

/* The number s[i..e) is a column number of an ORDER BY, GROUP BY or
 * DISTINCT ON list: digits only, an item of its own (after BY, '(' or ','
 * and before ',', ')', ';', the end or a word such as DESC). */
static int column_number(const out_t *o, const char *s, size_t n, size_t i, size_t e)
{
    if (!(o->bylist & level_bit(o)) ||
        (o->prev != T_BY && o->prev != T_COMMA && o->prev != T_OPEN))
        return 0;
    for (size_t j = i; j < e; j++)
        if (!is_digit(s[j]))
            return 0;
    while (e < n && is_space(s[e]))
        e++;
    return e >= n || s[e] == ',' || s[e] == ')' || s[e] == ';' ||
           (is_ident(s[e]) && s[e] != '$');
}

/* The word at s[i]: written (TRUE, FALSE, NULL as constants), and the
 * keywords that matter followed.  Returns its end. */
static size_t word(out_t *o, const char *s, size_t n, size_t i)
{
    size_t w = i;
    uint64_t bit = level_bit(o);
    int t, flags;
    while (i < n && is_ident(s[i]))
        i++;
    t = keyword(s + w, i - w, &flags);
    if ((flags & K_CONST) && o->prev != T_IS &&
        !(o->prev == T_NOT && (o->prev2 == T_IS || upper(s[w]) == 'N')) &&
        (upper(s[w]) != 'A' || o->prev == T_LIMIT)) {
        /* TRUE, FALSE, NULL: constants, but not in the tests "IS [NOT]
         * NULL/TRUE/FALSE" nor a column's "NOT NULL"; LIMIT ALL is a NULL */
        hash_bytes(o, s + w, i - w);
        put_param(o);
        if (o->t)
            o->t->exact = 1;
    } else {
        put_n(o, s + w, i - w);
    }
    if ((flags & K_QUERY) && o->prev == T_OPEN)
        o->subq |= bit;
    if (flags & K_ENDBY)
        o->bylist &= ~bit;
    if (t == T_BY && o->prev == T_ORDER && (o->subq & bit))
        o->bylist |= bit;
    token(o, t);
    return i;
}

/* A replaced constant s[i..e) goes into o's template: a plain integer
 * (digits, then neither a name character nor '.': nothing another integer
 * there could join, as "0x1" or "5e3" or "5.5") after the operation's word
 * (opend: where its reading stopped), else the template is exact. */
static void slot(out_t *o, const char *s, size_t n, size_t i, size_t e, size_t opend)
{
    pa_pq_tmpl_t *t = o->t;
    int plain = i >= opend && e > i && o->t->n < PA_PQ_SLOTS && e <= 0xffff &&
                (e >= n || (!is_ident(s[e]) && s[e] != '.'));
    for (size_t j = i; plain && j < e; j++)
        plain = is_digit(s[j]);
    if (!plain) {
        t->exact = 1;
        return;
    }
    t->start[t->n] = (uint16_t)i;
    t->end[t->n++] = (uint16_t)e;
}

size_t pa_pq_normalize(const char *s, size_t n, char *outbuf, size_t cap, char *op, size_t opcap,
                       uint64_t *hash)
{
    return pa_pq_normalize_tmpl(s, n, outbuf, cap, op, opcap, hash, NULL);
}

int pa_pq_tmpl_match(const char *r, size_t rn, const pa_pq_tmpl_t *t, const char *q, size_t qn,
                     uint64_t *hash)
{
    out_t o = {.hash = 0};
    size_t rp = 0, qp = 0;
    if (t->exact)
        return rn == qn && __builtin_memcmp(r, q, rn) == 0;
    for (unsigned k = 0; k < t->n; k++) {
        size_t seg = t->start[k] - rp, e;
        if (qn - qp < seg || __builtin_memcmp(q + qp, r + rp, seg) != 0)
            return 0;
        for (qp += seg, e = qp; e < qn && is_digit(q[e]);)
            e++;
        if (e == qp)
            return 0;
        hash_bytes(&o, q + qp, e - qp);
        qp = e;
        rp = t->end[k];
    }
    if (qn - qp != rn - rp || __builtin_memcmp(q + qp, r + rp, rn - rp) != 0)
        return 0;
    *hash = o.hash;
    return 1;
}

size_t pa_pq_normalize_tmpl(const char *s, size_t n, char *outbuf, size_t cap, char *op,
                            size_t opcap, uint64_t *hash, pa_pq_tmpl_t *t)
{
    out_t o = {.p = outbuf, .cap = cap, .next = 1, .subq = 1, .t = t};
    size_t i = 0, k = 0;
    int space = 0, param;

    if (!cap)
        return 0;
    /* New numbers follow the text's own parameters (pg_stat_statements).
     * memchr: most texts have no '$', and this runs on every query. */
    for (const char *d = n ? __builtin_memchr(s, '$', n) : NULL; d;
         d = d + 1 < s + n ? __builtin_memchr(d + 1, '$', (size_t)(s + n - d - 1)) : NULL) {
        size_t j = (size_t)(d - s);
        if (j + 1 < n && is_digit(s[j + 1]) && (j == 0 || !is_ident(s[j - 1]))) {
            unsigned v = 0;
            for (j++; j < n && is_digit(s[j]) && v < 100000000; j++)
                v = v * 10 + (unsigned)(s[j] - '0');
            if (v >= o.next)
                o.next = v + 1;
        }
    }
    if (t) {
        t->exact = 0;
        t->n = 0;
    }
    if (op && opcap) {
        size_t j = 0;
        while (j < n && (is_space(s[j]) || s[j] == '('))
            j++;
        while (j < n && is_ident(s[j]) && k + 1 < opcap)
            op[k++] = upper(s[j++]);
        op[k] = 0;
        k = j; /* from here on: where the operation's reading stopped */
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
            token(&o, T_OPND);
            continue;
        }
        if (c == '(' && ends_with_in(&o) && (e = in_list(s, n, i))) {
            for (size_t j = i + 1; j < e; j++)
                if (!is_space(s[j]))
                    hash_bytes(&o, s + j, 1);
            if (o.t)
                o.t->exact = 1;
            put(&o, '(');
            put(&o, '.');
            put(&o, '.');
            put(&o, '.');
            put(&o, ')');
            i = e + 1;
            token(&o, T_CLOSE);
            continue;
        }
        /* A word (most tokens): letters that open no E'', B'', X'', U&'' */
        if ((cls[(unsigned char)c] & (C_ID | C_DG)) == C_ID && c != '$' &&
            !(i + 1 < n && (s[i + 1] == '\'' || s[i + 1] == '&'))) {
            i = word(&o, s, n, i);
            continue;
        }
        if ((i == 0 || !is_ident(s[i - 1])) &&
            ((e = skip_const(s, n, i, &param)) || (c == '-' && (e = signed_number(&o, s, n, i))))) {
            if (param || (is_digit(c) && column_number(&o, s, n, i, e))) {
                put_n(&o, s + i, e - i);
                i = e;
            } else {
                if (o.t)
                    slot(&o, s, n, i, e, k);
                hash_bytes(&o, s + i, e - i);
                put_param(&o);
                i = e;
            }
            token(&o, T_OPND);
            continue;
        }
        if (is_ident(c)) {
            i = word(&o, s, n, i);
            continue;
        }
        put(&o, c);
        i++;
        if (c == '(') {
            /* DISTINCT ON (...), and a BY list's own parens: "ORDER BY
             * (1)", "GROUP BY ROLLUP (1, 2)" */
            int distinct_on = (o.prev == T_ON && o.prev2 == T_DISTINCT) ||
                              ((o.bylist & level_bit(&o)) &&
                               (o.prev == T_BY || o.prev == T_COMMA || o.prev == T_OPEN ||
                                o.prev == T_GROUPING));
            o.depth++;
            o.subq &= ~level_bit(&o);
            o.bylist &= ~level_bit(&o);
            if (distinct_on)
                o.bylist |= level_bit(&o);
            token(&o, T_OPEN);
        } else if (c == ')') {
            o.subq &= ~level_bit(&o);
            o.bylist &= ~level_bit(&o);
            if (o.depth)
                o.depth--;
            token(&o, T_CLOSE);
        } else {
            token(&o, c == ',' ? T_COMMA : T_OP);
        }
    }
    /* The server's text ends before the statement's ';'. */
    if (i >= n && !o.full)
        while (o.n && (o.p[o.n - 1] == ';' || o.p[o.n - 1] == ' '))
            o.n--;
    o.p[o.n] = 0;
    if (t && (o.full || i < n))
        t->exact = 1;
    if (hash)
        *hash = o.hash;
    return o.n;
}

/* ---- the QueryEvent's wire encoding ---------------------------------------
 * By hand: protobuf-c's get_packed_size + pack walk the message's
 * descriptor field by field, ~2 900 instructions per query, more than the
 * rest of the event's making.  The same bytes as protobuf-c (proto3:
 * fields in number order, zeros and empty strings left out), checked by
 * tests/unit/test_agent_pq_norm.c byte for byte. */

/* field number f, wire type 0 (varint) or 2 (length-delimited) */
#define TAG(f, wt) (((uint64_t)(f) << 3) | (wt))

static size_t num_size(unsigned f, uint64_t v)
{
    return v ? pa_varint_len(TAG(f, 0)) + pa_varint_len(v) : 0;
}

static size_t str_size(unsigned f, size_t len)
{
    return len ? pa_varint_len(TAG(f, 2)) + pa_varint_len(len) + len : 0;
}

static uint8_t *num(uint8_t *p, unsigned f, uint64_t v)
{
    return v ? pa_put_varint(pa_put_varint(p, TAG(f, 0)), v) : p;
}

static uint8_t *str(uint8_t *p, unsigned f, const char *s, size_t len)
{
    if (!len)
        return p;
    p = pa_put_varint(pa_put_varint(p, TAG(f, 2)), len);
    __builtin_memcpy(p, s, len);
    return p + len;
}

/* Field numbers of proto/perfagent.proto's QueryEvent. */
enum {
    F_TID = 1, F_DURATION = 3, F_TEXT = 4, F_ROWS = 5, F_ERROR = 6, F_STACK = 7, F_DB = 8,
    F_PEER = 9, F_OP = 10, F_SQLSTATE = 11, F_CONN = 12, F_USER = 13, F_KIND = 14, F_RAW = 15,
    F_START = 16, F_HASH = 17, F_PIPELINED = 18,
};

size_t pa_pq_event_size(pa_pq_event_t *e)
{
    for (int k = 0; k < PA_PQ_NSTR; k++)
        e->len[k] = e->str[k] ? __builtin_strlen(e->str[k]) : 0;
    return num_size(F_TID, e->tid) + num_size(F_DURATION, e->duration_ns) +
           str_size(F_TEXT, e->len[PA_PQ_S_TEXT]) + num_size(F_ROWS, e->rows) +
           str_size(F_ERROR, e->len[PA_PQ_S_ERROR]) + num_size(F_STACK, e->stack_id) +
           str_size(F_DB, e->len[PA_PQ_S_DB]) + str_size(F_PEER, e->len[PA_PQ_S_PEER]) +
           str_size(F_OP, e->len[PA_PQ_S_OP]) + str_size(F_SQLSTATE, e->len[PA_PQ_S_SQLSTATE]) +
           num_size(F_CONN, e->conn_id) + str_size(F_USER, e->len[PA_PQ_S_USER]) +
           num_size(F_KIND, e->kind) + str_size(F_RAW, e->len[PA_PQ_S_RAW]) +
           num_size(F_START, e->start_mono_ns) + num_size(F_HASH, e->params_hash) +
           num_size(F_PIPELINED, e->pipelined != 0);
}

size_t pa_pq_event_pack(const pa_pq_event_t *e, uint8_t *buf)
{
    uint8_t *p = buf;
#define S(f, k) (p = str(p, f, e->str[k], e->len[k]))
    p = num(p, F_TID, e->tid);
    p = num(p, F_DURATION, e->duration_ns);
    S(F_TEXT, PA_PQ_S_TEXT);
    p = num(p, F_ROWS, e->rows);
    S(F_ERROR, PA_PQ_S_ERROR);
    p = num(p, F_STACK, e->stack_id);
    S(F_DB, PA_PQ_S_DB);
    S(F_PEER, PA_PQ_S_PEER);
    S(F_OP, PA_PQ_S_OP);
    S(F_SQLSTATE, PA_PQ_S_SQLSTATE);
    p = num(p, F_CONN, e->conn_id);
    S(F_USER, PA_PQ_S_USER);
    p = num(p, F_KIND, e->kind);
    S(F_RAW, PA_PQ_S_RAW);
    p = num(p, F_START, e->start_mono_ns);
    p = num(p, F_HASH, e->params_hash);
    p = num(p, F_PIPELINED, e->pipelined != 0);
#undef S
    return (size_t)(p - buf);
}

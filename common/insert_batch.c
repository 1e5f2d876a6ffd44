#include "cara/insert_batch.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX 4

typedef struct {
    char *sql;       // the single-row text (key)
    size_t tuple_at; // offset of the row "(...)" in sql
    char *tuple;     // the row "(...)"
    char *tail;      // what follows the row ("" or " ON CONFLICT (...) ...")
    int n_key;       // parameters that are the ON CONFLICT key (0: no ON CONFLICT)
    int key[S_KEY_MAX];
    int n;            // parameters per row
    int *row_formats; // n, as the first row gave them
    int rows, cap;    // rows kept
    char **values;    // rows * n, owned (NULL = SQL NULL)
    int *lengths;     // rows * n
    int *formats;     // INSERT_BATCH_CHUNK_MAX * n: row_formats repeated (for statements)
} s_text_t;

struct insert_batch_t {
    s_text_t texts[INSERT_BATCH_MAX_TEXTS];
    int n_texts;
    uint64_t *keys; // hashes of the kept rows' ON CONFLICT keys (open addressing; 0 = empty)
    size_t n_keys, keys_cap;
};

insert_batch_t *insert_batch_new(void) {
    return calloc(1, sizeof(insert_batch_t));
}

static void s_text_free(s_text_t *t) {
    for (int i = 0; i < t->rows * t->n; i++)
        free(t->values[i]);
    free(t->values);
    free(t->lengths);
    free(t->formats);
    free(t->row_formats);
    free(t->tuple);
    free(t->tail);
    free(t->sql);
    memset(t, 0, sizeof *t);
}

void insert_batch_clear(insert_batch_t *self) {
    for (int i = 0; i < self->n_texts; i++)
        s_text_free(&self->texts[i]);
    self->n_texts = 0;
    if (self->n_keys)
        memset(self->keys, 0, self->keys_cap * sizeof *self->keys);
    self->n_keys = 0;
}

void insert_batch_destroy(insert_batch_t **self_p) {
    if (!self_p || !*self_p)
        return;
    insert_batch_clear(*self_p);
    free((*self_p)->keys);
    free(*self_p);
    *self_p = NULL;
}

// The shape of an acceptable statement: where its row starts and ends, and (with ON CONFLICT)
// which parameters are the conflict key.
typedef struct {
    const char *tuple, *tail;
    int n_key, key[S_KEY_MAX];
} s_shape_t;

// The next comma-separated name or item of a list that ends at ')' (at depth 0 of its own
// parentheses), trimmed: *start and *len. Returns the position after it (at ',' or ')').
static const char *s_item(const char *p, const char **start, size_t *len) {
    while (*p == ' ')
        p++;
    *start = p;
    int depth = 0;
    for (; *p && (depth > 0 || (*p != ',' && *p != ')')); p++)
        depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
    size_t n = (size_t)(p - *start);
    while (n > 0 && (*start)[n - 1] == ' ')
        n--;
    *len = n;
    return p;
}

// The parameter (0-based) that the row's item number pos is, if it is "$k" alone (or with a
// "::type" cast), else -1.
static int s_item_param(const char *tuple, int pos) {
    const char *p = tuple + 1, *start;
    size_t len;
    for (int i = 0; *p; i++) {
        p = s_item(p, &start, &len);
        if (i == pos) {
            char *after;
            long k = start[0] == '$' ? strtol(start + 1, &after, 10) : 0;
            if (k < 1 || (after != start + len && strncmp(after, "::", 2) != 0))
                return -1;
            for (const char *c = after; c < start + len; c++)
                if (!isalnum((unsigned char)*c) && *c != ':' && *c != '_')
                    return -1;
            return (int)k - 1;
        }
        if (*p != ',')
            break;
        p++;
    }
    return -1;
}

// Finds the parameters of the conflict target "(a, b)" at target: each must be a column of
// the statement's column list whose row item is a bare parameter. Returns 0 or -1.
static int s_conflict_key(const char *sql, const char *tuple, const char *target, s_shape_t *sh) {
    const char *cols = strchr(sql + 12, '(');
    if (!cols || cols > tuple || *target != '(')
        return -1;
    const char *p = target + 1, *name;
    size_t len;
    sh->n_key = 0;
    while (*p && *p != ')') {
        p = s_item(p, &name, &len);
        if (len == 0 || sh->n_key == S_KEY_MAX)
            return -1;
        // Its position in the column list.
        const char *q = cols + 1, *col;
        size_t col_len;
        int pos = -1;
        for (int i = 0; *q && pos < 0; i++) {
            q = s_item(q, &col, &col_len);
            if (col_len == len && strncmp(col, name, len) == 0)
                pos = i;
            if (*q != ',')
                break;
            q++;
        }
        int param = pos < 0 ? -1 : s_item_param(tuple, pos);
        if (param < 0)
            return -1;
        sh->key[sh->n_key++] = param;
        if (*p == ',')
            p++;
    }
    return *p == ')' && sh->n_key > 0 ? 0 : -1;
}

// Parses an acceptable statement: INSERT INTO t (...) VALUES (...), with nothing after the row
// but, possibly, " ON CONFLICT (key columns) DO ..." that has no parameter in it (it names the
// row's values as EXCLUDED.column, so one tail serves every row). Returns 0 or -1.
static int s_parse(const char *sql, int n, s_shape_t *sh) {
    memset(sh, 0, sizeof *sh);
    if (n < 1 || strncmp(sql, "INSERT INTO ", 12) != 0)
        return -1;
    const char *values = strstr(sql, " VALUES (");
    if (!values || strstr(values + 1, " VALUES ("))
        return -1;
    const char *tuple = values + 8, *p;
    int depth = 0;
    for (p = tuple; *p; p++) {
        if (*p == '\'' || *p == '"' || *p == ';')
            return -1;
        if (*p == '$') {
            char *after;
            long k = strtol(p + 1, &after, 10);
            if (after == p + 1 || k < 1 || k > n)
                return -1;
        }
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            break;
    }
    if (depth != 0 || !*p)
        return -1;
    sh->tuple = tuple;
    sh->tail = p + 1;
    const char *end = sh->tail + strlen(sh->tail);
    while (end > sh->tail && isspace((unsigned char)end[-1]))
        end--;
    if (end == sh->tail)
        return 0;
    if (strncmp(sh->tail, " ON CONFLICT (", 14) != 0 || strpbrk(sh->tail, "$;") ||
        strstr(sh->tail, "RETURNING"))
        return -1;
    return s_conflict_key(sql, tuple, sh->tail + 13, sh);
}

int insert_batch_accepts(const char *sql, int n) {
    s_shape_t shape;
    return sql && s_parse(sql, n, &shape) == 0;
}

// The kept text sql (with these formats), or NULL if it is not kept yet. *other is set if the
// text is kept with other formats (its rows are not gathered with these).
static s_text_t *s_known(insert_batch_t *self, const char *sql, int n, const int *formats,
                         int *other) {
    *other = 0;
    for (int i = 0; i < self->n_texts; i++) {
        s_text_t *t = &self->texts[i];
        if (strcmp(t->sql, sql) != 0)
            continue;
        for (int k = 0; k < n; k++)
            if ((formats ? formats[k] : 0) != t->row_formats[k]) {
                *other = 1;
                return NULL;
            }
        return t;
    }
    return NULL;
}

// Keeps a new text. Returns it, or NULL if it cannot be gathered, the texts are full or out of
// memory.
static s_text_t *s_keep(insert_batch_t *self, const char *sql, int n, const int *formats) {
    s_shape_t shape;
    if (self->n_texts == INSERT_BATCH_MAX_TEXTS || s_parse(sql, n, &shape) != 0)
        return NULL;
    s_text_t *t = &self->texts[self->n_texts];
    memset(t, 0, sizeof *t);
    t->sql = strdup(sql);
    t->row_formats = calloc((size_t)n, sizeof(int));
    t->tuple = strndup(shape.tuple, (size_t)(shape.tail - shape.tuple));
    t->tail = strdup(shape.tail);
    if (!t->sql || !t->row_formats || !t->tuple || !t->tail) {
        s_text_free(t);
        return NULL;
    }
    t->tuple_at = (size_t)(shape.tuple - sql);
    t->n = n;
    t->n_key = shape.n_key;
    memcpy(t->key, shape.key, sizeof t->key);
    for (int k = 0; k < n; k++)
        t->row_formats[k] = formats ? formats[k] : 0;
    self->n_texts++;
    return t;
}

// The hash of a row's ON CONFLICT key (0: the text has none, or a key value is NULL, which
// never conflicts).
static uint64_t s_key_hash(const s_text_t *t, const char *const *values, const int *lengths) {
    uint64_t h = 1469598103934665603ULL; // FNV-1a
    for (int i = 0; i < t->n_key; i++) {
        int k = t->key[i];
        if (!values[k])
            return 0;
        size_t len = t->row_formats[k] == 1 ? (size_t)lengths[k] : strlen(values[k]);
        for (size_t j = 0; j < len; j++)
            h = (h ^ (unsigned char)values[k][j]) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return t->n_key && h ? h : 0;
}

// Whether a kept row has key hash h (of its text; a false "yes" only sends the kept rows early).
static int s_keys_has(const insert_batch_t *self, uint64_t h) {
    for (size_t i = h & (self->keys_cap - 1); self->keys_cap && self->keys[i];
         i = (i + 1) & (self->keys_cap - 1))
        if (self->keys[i] == h)
            return 1;
    return 0;
}

// Remembers key hash h. Returns 0, or -1 if out of memory.
static int s_keys_add(insert_batch_t *self, uint64_t h) {
    if (2 * (self->n_keys + 1) > self->keys_cap) {
        size_t cap = self->keys_cap ? 2 * self->keys_cap : 1024;
        uint64_t *grown = calloc(cap, sizeof *grown);
        if (!grown)
            return -1;
        for (size_t i = 0; i < self->keys_cap; i++) {
            size_t j = self->keys[i] & (cap - 1);
            while (self->keys[i] && grown[j])
                j = (j + 1) & (cap - 1);
            if (self->keys[i])
                grown[j] = self->keys[i];
        }
        free(self->keys);
        self->keys = grown;
        self->keys_cap = cap;
    }
    size_t i = h & (self->keys_cap - 1);
    while (self->keys[i])
        i = (i + 1) & (self->keys_cap - 1);
    self->keys[i] = h;
    self->n_keys++;
    return 0;
}

int insert_batch_add(insert_batch_t *self, const char *sql, int n, const char *const *values,
                     const int *lengths, const int *formats) {
    // A kept text was accepted when it was first kept: only a new one is looked at.
    int other;
    s_text_t *t = s_known(self, sql, n, formats, &other);
    if (!t && !other)
        t = s_keep(self, sql, n, formats);
    if (!t || t->rows == INSERT_BATCH_MAX_ROWS)
        return 1;
    // A row whose ON CONFLICT key a kept row of its text has goes after that one is sent: one
    // statement must not touch a row twice ("ON CONFLICT DO UPDATE command cannot affect row a
    // second time"), and the writes of one text to one row keep their order.
    uint64_t key = s_key_hash(t, values, lengths);
    if (key) {
        key = (key ^ (uint64_t)(t - self->texts + 1)) * 1099511628211ULL;
        key += !key; // 0 is "no key": a mixed hash must never become it
    }
    if (key && (s_keys_has(self, key) || s_keys_add(self, key) != 0))
        return 1;
    if (t->rows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **v = realloc(t->values, (size_t)cap * (size_t)n * sizeof *v);
        if (!v)
            return -1;
        t->values = v;
        int *l = realloc(t->lengths, (size_t)cap * (size_t)n * sizeof *l);
        if (!l)
            return -1;
        t->lengths = l;
        t->cap = cap;
    }
    char **row = t->values + (size_t)t->rows * (size_t)n;
    int *len = t->lengths + (size_t)t->rows * (size_t)n;
    for (int k = 0; k < n; k++) {
        int binary = t->row_formats[k] == 1;
        size_t size = !values[k] ? 0 : binary ? (size_t)lengths[k] : strlen(values[k]) + 1;
        row[k] = values[k] ? malloc(size ? size : 1) : NULL;
        if (values[k] && !row[k]) {
            for (int j = 0; j < k; j++)
                free(row[j]);
            return -1;
        }
        if (row[k])
            memcpy(row[k], values[k], size);
        len[k] = binary && values[k] ? lengths[k] : 0;
    }
    t->rows++;
    return 0;
}

// Rows of one text go in chunks, largest first (at most INSERT_BATCH_CHUNK_MAX): up to 8 rows
// as one chunk of exactly that many, and past 8 a multiple of 8. Each chunk size is one
// statement text that the server prepares once, so a text has at most 11 sizes, and a small
// batch (the usual one: as many rows as requests that came in together) is one statement per
// text, not one per power of two in its size.
static int s_chunk_size(int left) {
    if (left <= 8)
        return left;
    return left >= INSERT_BATCH_CHUNK_MAX ? INSERT_BATCH_CHUNK_MAX : left / 8 * 8;
}

static int s_chunks(int rows) {
    int chunks = 0;
    for (; rows > 0; chunks++)
        rows -= s_chunk_size(rows);
    return chunks;
}

int insert_batch_count(const insert_batch_t *self) {
    int count = 0;
    for (int i = 0; i < self->n_texts; i++)
        count += s_chunks(self->texts[i].rows);
    return count;
}

// Finds chunk i: its text, first row and number of rows. Returns 0 or -1.
static int s_chunk(insert_batch_t *self, int i, s_text_t **text, int *first, int *rows) {
    for (int j = 0; j < self->n_texts && i >= 0; j++) {
        s_text_t *t = &self->texts[j];
        int left = t->rows, at = 0;
        while (left > 0) {
            int size = s_chunk_size(left);
            if (i-- == 0) {
                *text = t;
                *first = at;
                *rows = size;
                return 0;
            }
            at += size;
            left -= size;
        }
    }
    return -1;
}

int insert_batch_rows(insert_batch_t *self, int i) {
    s_text_t *t;
    int first, rows;
    return s_chunk(self, i, &t, &first, &rows) == 0 ? rows : 0;
}

// Writes v (> 0) in decimal at out. Returns the number of digits.
static size_t s_decimal(char *out, long v) {
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

// Appends the row text tuple (NUL-terminated) to out with $k renumbered to $(base + k).
static size_t s_renumber(char *out, const char *tuple, int base) {
    size_t o = 0;
    for (const char *p = tuple; *p;) {
        if (*p == '$') {
            char *after;
            long k = strtol(p + 1, &after, 10);
            out[o++] = '$';
            o += s_decimal(out + o, (long)base + k);
            p = after;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return o;
}

int insert_batch_statement(insert_batch_t *self, int i, char **sql, int *n_params,
                           const char *const **values, const int **lengths, const int **formats) {
    *sql = NULL;
    s_text_t *t;
    int first, rows;
    if (s_chunk(self, i, &t, &first, &rows) != 0)
        return -1;
    const char *tuple = t->tuple;
    size_t tuple_len = strlen(tuple), tail_len = strlen(t->tail);
    // Each "$k" grows by at most 5 digits when renumbered (at most 60000 parameters).
    size_t row_max = tuple_len + (size_t)t->n * 6 + 2;
    char *text = malloc(t->tuple_at + (size_t)rows * row_max + tail_len + 1);
    if (!text)
        return -1;
    if (!t->formats) {
        t->formats = malloc((size_t)INSERT_BATCH_CHUNK_MAX * (size_t)t->n * sizeof *t->formats);
        if (!t->formats) {
            free(text);
            return -1;
        }
        for (int r = 0; r < INSERT_BATCH_CHUNK_MAX; r++)
            memcpy(t->formats + (size_t)r * (size_t)t->n, t->row_formats,
                   (size_t)t->n * sizeof *t->formats);
    }
    memcpy(text, t->sql, t->tuple_at);
    size_t o = t->tuple_at;
    for (int r = 0; r < rows; r++) {
        if (r) {
            text[o++] = ',';
            text[o++] = ' ';
        }
        o += s_renumber(text + o, tuple, r * t->n);
    }
    memcpy(text + o, t->tail, tail_len + 1); // the ON CONFLICT clause, if any, once

    *sql = text;
    *n_params = rows * t->n;
    *values = (const char *const *)t->values + (size_t)first * (size_t)t->n;
    *lengths = t->lengths + (size_t)first * (size_t)t->n;
    *formats = t->formats;
    return 0;
}

#include "cara/insert_batch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *sql;        // the single-row text (key)
    size_t tuple_at;  // offset of the row "(...)" in sql
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
    free(t->sql);
    memset(t, 0, sizeof *t);
}

void insert_batch_clear(insert_batch_t *self) {
    for (int i = 0; i < self->n_texts; i++)
        s_text_free(&self->texts[i]);
    self->n_texts = 0;
}

void insert_batch_destroy(insert_batch_t **self_p) {
    if (!self_p || !*self_p)
        return;
    insert_batch_clear(*self_p);
    free(*self_p);
    *self_p = NULL;
}

// Where the row "(...)" of an acceptable statement starts, or NULL.
static const char *s_tuple(const char *sql, int n) {
    if (n < 1 || strncmp(sql, "INSERT INTO ", 12) != 0)
        return NULL;
    const char *values = strstr(sql, " VALUES (");
    if (!values || strstr(values + 1, " VALUES ("))
        return NULL;
    const char *tuple = values + 8;
    size_t end = strlen(sql);
    while (end > 0 && isspace((unsigned char)sql[end - 1]))
        end--;
    int depth = 0;
    for (const char *p = tuple; p < sql + end; p++) {
        if (*p == '\'' || *p == '"' || *p == ';')
            return NULL;
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0 && p != sql + end - 1)
            return NULL; // something follows the row
        if (*p == '$') {
            char *after;
            long k = strtol(p + 1, &after, 10);
            if (after == p + 1 || k < 1 || k > n)
                return NULL;
        }
    }
    return depth == 0 && sql[end - 1] == ')' ? tuple : NULL;
}

int insert_batch_accepts(const char *sql, int n) {
    return sql && s_tuple(sql, n) != NULL;
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

// Keeps a new text (accepted by insert_batch_accepts). Returns it, or NULL if full or out of
// memory.
static s_text_t *s_keep(insert_batch_t *self, const char *sql, int n, const int *formats) {
    if (self->n_texts == INSERT_BATCH_MAX_TEXTS)
        return NULL;
    s_text_t *t = &self->texts[self->n_texts];
    memset(t, 0, sizeof *t);
    t->sql = strdup(sql);
    t->row_formats = calloc((size_t)n, sizeof(int));
    if (!t->sql || !t->row_formats) {
        s_text_free(t);
        return NULL;
    }
    t->tuple_at = (size_t)(s_tuple(sql, n) - sql);
    t->n = n;
    for (int k = 0; k < n; k++)
        t->row_formats[k] = formats ? formats[k] : 0;
    self->n_texts++;
    return t;
}

int insert_batch_add(insert_batch_t *self, const char *sql, int n, const char *const *values,
                     const int *lengths, const int *formats) {
    // A kept text was accepted when it was first kept: only a new one is looked at.
    int other;
    s_text_t *t = s_known(self, sql, n, formats, &other);
    if (!t && !other && insert_batch_accepts(sql, n))
        t = s_keep(self, sql, n, formats);
    if (!t || t->rows == INSERT_BATCH_MAX_ROWS)
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
    const char *tuple = t->sql + t->tuple_at;
    size_t tuple_len = strlen(tuple);
    // Each "$k" grows by at most 5 digits when renumbered (at most 60000 parameters).
    size_t row_max = tuple_len + (size_t)t->n * 6 + 2;
    char *text = malloc(t->tuple_at + (size_t)rows * row_max + 1);
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
    text[o] = '\0';
    *sql = text;
    *n_params = rows * t->n;
    *values = (const char *const *)t->values + (size_t)first * (size_t)t->n;
    *lengths = t->lengths + (size_t)first * (size_t)t->n;
    *formats = t->formats;
    return 0;
}

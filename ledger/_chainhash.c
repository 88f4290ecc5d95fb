/*
 * ledger._chainhash: the hot loop of ledger verification in C (see ledger/native.py for why).
 *
 * snapshot(path, readonly, busy_ms, queries, entries_sql, workers) opens the SQLite ledger with
 * the system libsqlite3 (the very library Python's _sqlite3 links: one copy of SQLite in the
 * process, so POSIX locks stay coherent), runs every query of ``queries`` and the entries scan
 * inside ONE read transaction, and returns
 *
 *     ([rows of each query], scan)
 *
 * where ``scan`` is None when some entry holds storage the fast path cannot mirror exactly (a
 * value of another storage class than the schema's, NULL, text that is not valid UTF-8), and
 * otherwise (n, seq, flags, leaves, slow, head): int64 seqs, one flag byte per row (bit 0: the
 * prev_hash differs from the previous row's hash; bit 1: the content does not match its hash;
 * bit 2: "slow", recompute in Python), 32-byte Merkle leaves, the slow rows as
 * (position, (seq, time, actor, role, action, subject, payload, prev_hash, hash)), and the last
 * row's hash.
 *
 * A row is "fast" when its canonical body is the plain concatenation of its parts: hash and
 * prev_hash are 64 hex digits each, and action/actor/role/subject hold no byte that JSON escapes
 * (below 0x20, '"', '\\'). Every other row is "slow" and Python's reference code recomputes it.
 *
 * Memory safety: the database is attacker-writable. Every value's storage class is checked
 * before it is read, lengths come from sqlite3_column_bytes (embedded NULs are data), every
 * buffer grows with overflow checks, and nothing is ever read past a length SQLite reported.
 *
 * merkle_levels(leaves, workers) returns the perfect Merkle levels 1.. as bytes (RFC 9162 node
 * hashes of consecutive pairs), level by level, large levels split across worker threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#define FLAG_LINK 1
#define FLAG_BAD 2
#define FLAG_SLOW 4
#define NCOLS 9
#define BATCH_ROWS 4096
#define SLOTS 4
#define MAX_WORKERS 8

static PyObject *ChainhashError; /* an SQLite error: the caller hands the ledger to the reference */

/* ---------------------------------------------------------------- growable buffer */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) return -1;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    unsigned char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(buf_t *b, const void *src, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* ---------------------------------------------------------------- text checks */

/* Strict UTF-8 as Python decodes it: no overlongs, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (!(word & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return 0;
        if (need > n - i - 1) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

/* Does Python's json.encoder.encode_basestring leave these bytes as they are? */
static int json_plain(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\') return 0;
    return 1;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 64 hex digits, either case (bytes.fromhex reads them the same) -> 32 bytes. */
static int unhex64(const unsigned char *s, size_t n, unsigned char *out) {
    if (n != 64) return 0;
    for (int i = 0; i < 32; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        if (h < 0 || l < 0) return 0;
        out[i] = (unsigned char)(h << 4 | l);
    }
    return 1;
}

/* ---------------------------------------------------------------- hashing */

typedef struct {
    EVP_MD_CTX *ctx;
    EVP_MD *md;
} hasher_t;

static int hasher_open(hasher_t *h) {
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    return h->md && h->ctx ? 0 : -1;
}

static void hasher_close(hasher_t *h) {
    if (h->ctx) EVP_MD_CTX_free(h->ctx);
    if (h->md) EVP_MD_free(h->md);
    h->ctx = NULL;
    h->md = NULL;
}

static int sha256_2(hasher_t *h, const void *a, size_t an, const void *b, size_t bn, unsigned char *out) {
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1) return -1;
    if (EVP_DigestUpdate(h->ctx, a, an) != 1) return -1;
    if (EVP_DigestUpdate(h->ctx, b, bn) != 1) return -1;
    if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != 32) return -1;
    return 0;
}

/* ---------------------------------------------------------------- batches
 *
 * The reading thread only copies: per row it writes the canonical body's bytes as if the row
 * were fast, followed by the stored hash, into a batch's `data`, with each column's length. The
 * worker threads then check everything on those copies (UTF-8, JSON escapes, hex), hash the
 * fast rows and copy the slow ones out; the reading thread merges a hashed batch's results when
 * it takes the slot back.
 */

static const char *const PARTS[] = {
    "{\"action\":\"", "\",\"actor\":\"", "\",\"payload\":", ",\"prev_hash\":\"",
    "\",\"role\":\"", "\",\"seq\":", ",\"subject\":\"", "\",\"time\":\"", "\"}",
};
/* Columns in body order (0 stands for seq's decimal text); the stored hash (8) follows the body. */
static const int BODY_ORDER[8] = {4, 2, 6, 7, 3, 0, 5, 1};
static size_t PART_LEN[9];

typedef struct {
    size_t first; /* global position of the batch's first row */
    size_t rows;
    size_t off[BATCH_ROWS];           /* start of row k's body in data */
    uint32_t len[BATCH_ROWS][NCOLS];  /* byte length of each column (0: seq's text) */
    int64_t seq[BATCH_ROWS];
    buf_t data;
    /* results, written by the worker */
    unsigned char flag[BATCH_ROWS];   /* FLAG_BAD, FLAG_SLOW */
    unsigned char leaf[BATCH_ROWS][32];
    buf_t slow; /* per slow row: position (size_t), seq (int64), columns 1..8 as (size_t length, bytes) */
    size_t nslow;
    int unrepresentable, failed;
    int state; /* 0 free (results merged), 1 filled, 2 hashing, 3 hashed */
} batch_t;

/* Pointers to each column's bytes inside row k's copy; returns the body's length. */
static size_t row_layout(const batch_t *b, size_t k, const unsigned char *col[NCOLS]) {
    const unsigned char *p = b->data.data + b->off[k];
    size_t at = 0;
    for (int i = 0; i < 8; i++) {
        at += PART_LEN[i];
        col[BODY_ORDER[i]] = p + at;
        at += b->len[k][BODY_ORDER[i]];
    }
    at += PART_LEN[8];
    col[8] = p + at;
    return at;
}

static int put_slow(buf_t *out, size_t pos, int64_t seq, const unsigned char *col[NCOLS], const uint32_t len[NCOLS]) {
    if (buf_put(out, &pos, sizeof pos) || buf_put(out, &seq, sizeof seq)) return -1;
    for (int c = 1; c < NCOLS; c++) {
        size_t n = len[c];
        if (buf_put(out, &n, sizeof n) || buf_put(out, col[c], n)) return -1;
    }
    return 0;
}

/* Check and hash every row of a batch (a worker thread, or the reading thread without workers). */
static void process_batch(hasher_t *h, batch_t *b) {
    static const unsigned char zero = 0;
    for (size_t k = 0; k < b->rows; k++) {
        const unsigned char *col[NCOLS];
        const uint32_t *len = b->len[k];
        size_t body_len = row_layout(b, k, col);
        unsigned char prev[32], digest[32];
        int hex = unhex64(col[8], len[8], digest) && unhex64(col[7], len[7], prev);
        for (int c = 1; c < NCOLS; c++) {
            if (hex && c >= 7) break; /* 64 hex digits are ASCII */
            if (!valid_utf8(col[c], len[c])) { b->unrepresentable = 1; return; }
        }
        int fast = hex && json_plain(col[2], len[2]) && json_plain(col[3], len[3]) && json_plain(col[4], len[4]) &&
                   json_plain(col[5], len[5]);
        if (!fast) {
            b->flag[k] = FLAG_SLOW;
            memset(b->leaf[k], 0, 32);
            if (put_slow(&b->slow, b->first + k, b->seq[k], col, len)) { b->failed = 1; return; }
            b->nslow++;
            continue;
        }
        unsigned char computed[32];
        if (sha256_2(h, prev, 32, b->data.data + b->off[k], body_len, computed) ||
            sha256_2(h, &zero, 1, digest, 32, b->leaf[k])) {
            b->failed = 1;
            return;
        }
        b->flag[k] = memcmp(computed, digest, 32) ? FLAG_BAD : 0;
    }
}

/* Decimal text of a 64-bit integer, as Python's str(int). */
static size_t int_text(int64_t v, char out[24]) {
    char tmp[24];
    size_t n = 0, i = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) out[i++] = '-';
    while (n) out[i++] = tmp[--n];
    return i;
}

/* Copy one row into the batch: body parts, then the stored hash. */
static int add_row(batch_t *b, int64_t seq, const unsigned char *txt[NCOLS], const size_t len[NCOLS]) {
    char seqtext[24];
    size_t k = b->rows, total = PART_LEN[8];
    txt[0] = (const unsigned char *)seqtext;
    size_t lens[NCOLS];
    memcpy(lens, len, sizeof lens);
    lens[0] = int_text(seq, seqtext);
    for (int c = 0; c < NCOLS; c++) {
        if (lens[c] > UINT32_MAX) return -1;
        total += lens[c] + (c < 8 ? PART_LEN[c] : 0);
    }
    if (buf_reserve(&b->data, total)) return -1;
    unsigned char *p = b->data.data + b->data.len;
    b->off[k] = b->data.len;
    for (int i = 0; i < 8; i++) {
        int c = BODY_ORDER[i];
        memcpy(p, PARTS[i], PART_LEN[i]);
        p += PART_LEN[i];
        if (lens[c]) memcpy(p, txt[c], lens[c]);
        p += lens[c];
    }
    memcpy(p, PARTS[8], PART_LEN[8]);
    p += PART_LEN[8];
    if (lens[8]) memcpy(p, txt[8], lens[8]);
    b->data.len += total;
    for (int c = 0; c < NCOLS; c++) b->len[k][c] = (uint32_t)lens[c];
    b->seq[k] = seq;
    b->rows = k + 1;
    return 0;
}

typedef struct {
    batch_t *slots[SLOTS];
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int done;
} queue_t;

static void *worker_main(void *arg) {
    queue_t *q = arg;
    hasher_t h = {0};
    int ok = hasher_open(&h) == 0;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        batch_t *job = NULL;
        for (int i = 0; i < SLOTS; i++)
            if (q->slots[i]->state == 1) { job = q->slots[i]; break; }
        if (!job) {
            if (q->done) break;
            pthread_cond_wait(&q->changed, &q->lock);
            continue;
        }
        job->state = 2;
        pthread_mutex_unlock(&q->lock);
        if (ok) process_batch(&h, job);
        else job->failed = 1;
        pthread_mutex_lock(&q->lock);
        job->state = 3;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    hasher_close(&h);
    return NULL;
}

/* ---------------------------------------------------------------- the scan */

typedef struct {
    buf_t seq, flags, leaves; /* int64 per row, byte per row, 32 bytes per row */
    buf_t slow;               /* the batches' slow rows, in row order */
    size_t nslow;
    buf_t prev_hash_text;     /* the previous row's hash, for the link check */
    size_t n;
    int unrepresentable;
    int sqlite_rc;
    int failed; /* out of memory or a hashing failure */
} scan_t;

/* Merge a processed batch's results into the scan's arrays (only the reading thread writes these). */
static void merge_batch(scan_t *s, batch_t *b) {
    for (size_t k = 0; k < b->rows; k++) {
        s->flags.data[b->first + k] |= b->flag[k];
        memcpy(s->leaves.data + 32 * (b->first + k), b->leaf[k], 32);
    }
    if (b->nslow && buf_put(&s->slow, b->slow.data, b->slow.len)) s->failed = 1;
    s->nslow += b->nslow;
    if (b->failed) s->failed = 1;
    if (b->unrepresentable) s->unrepresentable = 1;
}

/* Empty a batch for reuse; buffers that a huge row blew up are given back. */
static void reset_batch(batch_t *b, size_t first) {
    b->first = first;
    b->rows = b->nslow = 0;
    b->failed = b->unrepresentable = 0;
    b->data.len = b->slow.len = 0;
    if (b->data.cap > (64u << 20)) { free(b->data.data); b->data = (buf_t){0}; }
    if (b->slow.cap > (64u << 20)) { free(b->slow.data); b->slow = (buf_t){0}; }
}

/* Read one row's values; 0 when it is representable, 1 when not.
 *
 * Each value is taken once with sqlite3_column_value (one API call instead of three: the calls
 * are a third of the reading; only this thread uses the connection), its storage class checked
 * before anything converts it. In a UTF-8 database the text's own bytes are read as a blob (no
 * copy, no conversion); in a UTF-16 one SQLite converts to UTF-8 exactly as for Python's
 * sqlite3 (sqlite3_value_text). UTF-8 validity is checked by the workers, on the copies.
 */
static int read_row(sqlite3_stmt *st, int utf8, int64_t *seq, const unsigned char *txt[NCOLS], size_t len[NCOLS]) {
    sqlite3_value *v = sqlite3_column_value(st, 0);
    if (sqlite3_value_type(v) != SQLITE_INTEGER) return 1;
    *seq = sqlite3_value_int64(v);
    for (int c = 1; c < NCOLS; c++) {
        v = sqlite3_column_value(st, c);
        if (sqlite3_value_type(v) != SQLITE_TEXT) return 1; /* checked before any conversion */
        txt[c] = utf8 ? sqlite3_value_blob(v) : sqlite3_value_text(v);
        int n = sqlite3_value_bytes(v);
        if (n < 0 || (n > 0 && !txt[c])) return 1;
        if (!txt[c]) txt[c] = (const unsigned char *)"";
        len[c] = (size_t)n;
    }
    return 0;
}

typedef struct {
    queue_t q;
    batch_t *slots[SLOTS];
    pthread_t threads[MAX_WORKERS];
    int nthreads;
    hasher_t inline_hasher;
} pool_t;

/* Hand the filled batch to the workers (or process it here) and get an empty slot back. */
static batch_t *cycle_batch(pool_t *p, scan_t *s, batch_t *cur) {
    if (p->nthreads == 0) {
        if (cur) {
            process_batch(&p->inline_hasher, cur);
            merge_batch(s, cur);
        }
        batch_t *b = p->slots[0];
        reset_batch(b, s->n);
        return b;
    }
    pthread_mutex_lock(&p->q.lock);
    if (cur) {
        cur->state = 1;
        pthread_cond_broadcast(&p->q.changed);
    }
    batch_t *free_slot = NULL;
    while (!free_slot) {
        for (int i = 0; i < SLOTS && !free_slot; i++) {
            batch_t *b = p->slots[i];
            if (b->state == 3) {
                merge_batch(s, b);
                b->state = 0;
            }
            if (b->state == 0) free_slot = b;
        }
        if (!free_slot) pthread_cond_wait(&p->q.changed, &p->q.lock);
    }
    pthread_mutex_unlock(&p->q.lock);
    reset_batch(free_slot, s->n);
    return free_slot;
}

/* Wait for every batch in flight, merge the results in order, and stop the workers. */
static void drain(pool_t *p, scan_t *s) {
    if (p->nthreads == 0) return;
    pthread_mutex_lock(&p->q.lock);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < SLOTS; i++) {
            batch_t *b = p->slots[i];
            if (b->state == 1 || b->state == 2) busy = 1;
        }
        if (!busy) break;
        pthread_cond_wait(&p->q.changed, &p->q.lock);
    }
    /* slow rows must stay in row order: merge the hashed batches by their first row */
    for (;;) {
        batch_t *next = NULL;
        for (int i = 0; i < SLOTS; i++) {
            batch_t *b = p->slots[i];
            if (b->state == 3 && (!next || b->first < next->first)) next = b;
        }
        if (!next) break;
        merge_batch(s, next);
        next->state = 0;
    }
    p->q.done = 1;
    pthread_cond_broadcast(&p->q.changed);
    pthread_mutex_unlock(&p->q.lock);
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

static int pool_open(pool_t *p, int workers) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < SLOTS; i++) {
        p->slots[i] = calloc(1, sizeof(batch_t));
        if (!p->slots[i]) return -1;
        p->q.slots[i] = p->slots[i];
    }
    if (hasher_open(&p->inline_hasher)) return -1;
    if (pthread_mutex_init(&p->q.lock, NULL) || pthread_cond_init(&p->q.changed, NULL)) return -1;
    for (int i = 0; i < workers && i < MAX_WORKERS; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->q)) break;
        p->nthreads++;
    }
    return 0;
}

static void pool_close(pool_t *p) {
    for (int i = 0; i < SLOTS; i++)
        if (p->slots[i]) {
            free(p->slots[i]->data.data);
            free(p->slots[i]->slow.data);
            free(p->slots[i]);
        }
    hasher_close(&p->inline_hasher);
    pthread_mutex_destroy(&p->q.lock);
    pthread_cond_destroy(&p->q.changed);
}

static const unsigned char GENESIS_HEX[64] = "0000000000000000000000000000000000000000000000000000000000000000";

/* The row loop; runs without the GIL. */
static void scan_rows(sqlite3_stmt *st, int utf8, scan_t *s, pool_t *p) {
    batch_t *cur = cycle_batch(p, s, NULL);
    if (buf_put(&s->prev_hash_text, GENESIS_HEX, 64)) { s->failed = 1; return; }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = 0;
        const unsigned char *txt[NCOLS] = {0};
        size_t len[NCOLS] = {0};
        if (read_row(st, utf8, &seq, txt, len)) { s->unrepresentable = 1; break; }
        if (buf_reserve(&s->seq, 8) || buf_reserve(&s->flags, 1) || buf_reserve(&s->leaves, 32)) {
            s->failed = 1;
            break;
        }
        int link = len[7] != s->prev_hash_text.len || memcmp(txt[7], s->prev_hash_text.data, len[7]) != 0;
        memcpy(s->seq.data + s->seq.len, &seq, 8);
        s->seq.len += 8;
        s->flags.data[s->flags.len++] = link ? FLAG_LINK : 0;
        s->leaves.len += 32; /* written when the row's batch is merged */
        s->prev_hash_text.len = 0;
        if (buf_put(&s->prev_hash_text, txt[8], len[8]) || add_row(cur, seq, txt, len)) { s->failed = 1; break; }
        s->n++;
        if (cur->rows == BATCH_ROWS || cur->data.len >= (4u << 20)) {
            cur = cycle_batch(p, s, cur);
            if (s->unrepresentable || s->failed) break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) s->sqlite_rc = rc;
    if (cur->rows && !s->failed && !s->unrepresentable && !s->sqlite_rc) {
        if (p->nthreads == 0) cycle_batch(p, s, cur);
        else {
            pthread_mutex_lock(&p->q.lock);
            cur->state = 1;
            pthread_cond_broadcast(&p->q.changed);
            pthread_mutex_unlock(&p->q.lock);
        }
    }
    drain(p, s);
}

/* ---------------------------------------------------------------- Python glue */

static PyObject *sqlite_error(sqlite3 *db, const char *what) {
    PyErr_Format(ChainhashError, "%s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
    return NULL;
}

static PyObject *value_of(sqlite3_stmt *st, int c) {
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_column_int64(st, c));
    case SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_column_double(st, c));
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(st, c);
        int n = sqlite3_column_bytes(st, c);
        return PyUnicode_DecodeUTF8(t ? t : "", t ? n : 0, "strict");
    }
    case SQLITE_BLOB: {
        const void *v = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        return PyBytes_FromStringAndSize(v ? v : "", v ? n : 0);
    }
    default:
        Py_RETURN_NONE;
    }
}

static PyObject *query_rows(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return sqlite_error(db, "prepare");
    PyObject *rows = PyList_New(0);
    int ncol = sqlite3_column_count(st), rc = SQLITE_DONE;
    while (rows && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        PyObject *row = PyTuple_New(ncol);
        if (!row) { Py_CLEAR(rows); break; }
        for (int c = 0; c < ncol; c++) {
            PyObject *v = value_of(st, c);
            if (!v) { Py_CLEAR(row); break; }
            PyTuple_SET_ITEM(row, c, v);
        }
        if (!row || PyList_Append(rows, row)) { Py_XDECREF(row); Py_CLEAR(rows); break; }
        Py_DECREF(row);
    }
    if (rows && rc != SQLITE_DONE) { Py_CLEAR(rows); sqlite_error(db, "query"); }
    sqlite3_finalize(st);
    return rows;
}

static PyObject *slow_rows(scan_t *s) {
    PyObject *out = PyList_New(0);
    const unsigned char *p = s->slow.data, *end = s->slow.data + s->slow.len;
    for (size_t r = 0; out && r < s->nslow; r++) {
        size_t pos;
        int64_t seq;
        memcpy(&pos, p, sizeof pos); p += sizeof pos;
        memcpy(&seq, p, sizeof seq); p += sizeof seq;
        PyObject *row = PyTuple_New(NCOLS);
        PyObject *item = row ? PyLong_FromLongLong(seq) : NULL;
        if (!item) { Py_XDECREF(row); Py_CLEAR(out); break; }
        PyTuple_SET_ITEM(row, 0, item);
        for (int c = 1; c < NCOLS; c++) {
            size_t n;
            memcpy(&n, p, sizeof n); p += sizeof n;
            if (n > (size_t)(end - p) || n > PY_SSIZE_T_MAX) { PyErr_SetString(PyExc_RuntimeError, "slow rows"); Py_CLEAR(row); break; }
            item = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
            p += n;
            if (!item) { Py_CLEAR(row); break; }
            PyTuple_SET_ITEM(row, c, item);
        }
        PyObject *pair = row ? Py_BuildValue("(nN)", (Py_ssize_t)pos, row) : NULL;
        if (!pair || PyList_Append(out, pair)) { Py_XDECREF(pair); Py_CLEAR(out); break; }
        Py_DECREF(pair);
    }
    return out;
}

static PyObject *scan_result(scan_t *s) {
    PyObject *slow = slow_rows(s);
    if (!slow) return NULL;
    PyObject *head;
    if (s->n) head = PyUnicode_DecodeUTF8((const char *)s->prev_hash_text.data, (Py_ssize_t)s->prev_hash_text.len, "strict");
    else { head = Py_None; Py_INCREF(head); }
    if (!head) { Py_DECREF(slow); return NULL; }
    /* "y#" turns a NULL pointer into None: an empty ledger has allocated nothing */
    const char *seq = s->seq.data ? (const char *)s->seq.data : "";
    const char *flags = s->flags.data ? (const char *)s->flags.data : "";
    const char *leaves = s->leaves.data ? (const char *)s->leaves.data : "";
    return Py_BuildValue("(ny#y#y#NN)", (Py_ssize_t)s->n, seq, (Py_ssize_t)s->seq.len, flags,
                         (Py_ssize_t)s->flags.len, leaves, (Py_ssize_t)s->leaves.len, slow, head);
}

static PyObject *run_scan(sqlite3 *db, const char *sql, int workers, int utf8) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return sqlite_error(db, "prepare");
    if (sqlite3_column_count(st) != NCOLS) { sqlite3_finalize(st); PyErr_SetString(ChainhashError, "9 columns expected"); return NULL; }
    scan_t s;
    memset(&s, 0, sizeof s);
    pool_t pool;
    PyObject *result = NULL;
    if (pool_open(&pool, workers)) {
        PyErr_NoMemory();
    } else {
        Py_BEGIN_ALLOW_THREADS
        scan_rows(st, utf8, &s, &pool);
        Py_END_ALLOW_THREADS
        if (s.sqlite_rc) sqlite_error(db, "scan");
        else if (s.unrepresentable) { result = Py_None; Py_INCREF(result); }
        else if (s.failed) PyErr_NoMemory();
        else result = scan_result(&s);
    }
    drain(&pool, &s);
    pool_close(&pool);
    sqlite3_finalize(st);
    free(s.seq.data); free(s.flags.data); free(s.leaves.data); free(s.slow.data); free(s.prev_hash_text.data);
    return result;
}

static int exec(sqlite3 *db, const char *sql) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Is the database's text encoding UTF-8 (so that a TEXT value's own bytes are its UTF-8)? */
static int database_utf8(sqlite3 *db, int *utf8) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA encoding", -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        *utf8 = name && strcmp((const char *)name, "UTF-8") == 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static PyObject *py_snapshot(PyObject *self, PyObject *args) {
    const char *path, *entries_sql;
    int readonly, busy_ms, workers;
    PyObject *queries;
    if (!PyArg_ParseTuple(args, "spiOsi", &path, &readonly, &busy_ms, &queries, &entries_sql, &workers)) return NULL;
    PyObject *seq = PySequence_Fast(queries, "queries must be a sequence of SQL strings");
    if (!seq) return NULL;
    sqlite3 *db = NULL;
    PyObject *results = NULL, *scan = NULL, *out = NULL;
    /* NOMUTEX: only one thread at a time ever uses this connection (the scan's reading thread). */
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) { sqlite_error(db, "open"); goto done; }
    sqlite3_busy_timeout(db, busy_ms);
    if (exec(db, "PRAGMA query_only = 1") || exec(db, "BEGIN")) { sqlite_error(db, "begin"); goto done; }
    results = PyList_New(0);
    for (Py_ssize_t i = 0; results && i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *sql = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        PyObject *rows = sql ? query_rows(db, sql) : NULL;
        if (!rows || PyList_Append(results, rows)) { Py_XDECREF(rows); Py_CLEAR(results); }
        else Py_DECREF(rows);
    }
    int utf8 = 0;
    if (results && database_utf8(db, &utf8)) { sqlite_error(db, "encoding"); Py_CLEAR(results); }
    if (results) scan = run_scan(db, entries_sql, workers < 0 ? 0 : workers, utf8);
    if (scan) out = Py_BuildValue("(ON)", results, scan);
done:
    Py_XDECREF(results);
    if (db) { exec(db, "ROLLBACK"); sqlite3_close(db); }
    Py_DECREF(seq);
    return out;
}

/* ---------------------------------------------------------------- Merkle levels */

typedef struct {
    const unsigned char *in;
    unsigned char *out;
    size_t from, to;
    int failed;
} level_job_t;

static void *level_part(void *arg) {
    level_job_t *j = arg;
    hasher_t h = {0};
    static const unsigned char one = 1;
    if (hasher_open(&h)) { j->failed = 1; hasher_close(&h); return NULL; }
    for (size_t i = j->from; i < j->to; i++)
        if (sha256_2(&h, &one, 1, j->in + 64 * i, 64, j->out + 32 * i)) { j->failed = 1; break; }
    hasher_close(&h);
    return NULL;
}

static int hash_level(const unsigned char *in, unsigned char *out, size_t m, int workers) {
    level_job_t jobs[MAX_WORKERS];
    pthread_t threads[MAX_WORKERS];
    int parts = (m >= 8192 && workers > 1) ? (workers > MAX_WORKERS ? MAX_WORKERS : workers) : 1;
    int started = 0, failed = 0;
    for (int t = 0; t < parts; t++) {
        jobs[t] = (level_job_t){in, out, m * t / parts, m * (t + 1) / parts, 0};
        if (t > 0 && pthread_create(&threads[t], NULL, level_part, &jobs[t]) == 0) started |= 1 << t;
        else if (t > 0) level_part(&jobs[t]);
    }
    level_part(&jobs[0]);
    for (int t = 1; t < parts; t++)
        if (started & (1 << t)) pthread_join(threads[t], NULL);
    for (int t = 0; t < parts; t++) failed |= jobs[t].failed;
    return failed ? -1 : 0;
}

static PyObject *py_merkle_levels(PyObject *self, PyObject *args) {
    Py_buffer leaves;
    int workers;
    if (!PyArg_ParseTuple(args, "y*i", &leaves, &workers)) return NULL;
    PyObject *levels = NULL;
    if (leaves.len % 32) { PyErr_SetString(PyExc_ValueError, "leaves must be 32 bytes each"); goto done; }
    levels = PyList_New(0);
    const unsigned char *current = leaves.buf;
    size_t n = (size_t)leaves.len / 32;
    while (levels && n >= 2) {
        size_t m = n / 2;
        PyObject *next = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * m));
        if (!next) { Py_CLEAR(levels); break; }
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(next);
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = hash_level(current, out, m, workers);
        Py_END_ALLOW_THREADS
        if (rc || PyList_Append(levels, next)) {
            if (rc) PyErr_SetString(PyExc_RuntimeError, "SHA-256 failed");
            Py_DECREF(next);
            Py_CLEAR(levels);
            break;
        }
        Py_DECREF(next); /* the list keeps it alive, so `current` stays valid */
        current = out;
        n = m;
    }
done:
    PyBuffer_Release(&leaves);
    return levels;
}

/* Does the shared object at `path` (Python's _sqlite3 module, already loaded) resolve SQLite to
 * the very copy this module runs? dlsym searches that object, then its dependencies: a _sqlite3
 * that carried its own SQLite would give another address (or none). */
static PyObject *py_same_sqlite_as(PyObject *self, PyObject *args) {
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    void *handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!handle) Py_RETURN_FALSE;
    void *theirs = dlsym(handle, "sqlite3_libversion");
    dlclose(handle);
    return PyBool_FromLong(theirs != NULL && theirs == (void *)sqlite3_libversion);
}

static PyMethodDef methods[] = {
    {"same_sqlite_as", py_same_sqlite_as, METH_VARARGS, "Does that loaded module use this module's SQLite?"},
    {"snapshot", py_snapshot, METH_VARARGS, "Read the ledger tables and scan the entries in one transaction."},
    {"merkle_levels", py_merkle_levels, METH_VARARGS, "Perfect Merkle levels 1.. over 32-byte leaves."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_chainhash", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__chainhash(void) {
    for (int i = 0; i < 9; i++) PART_LEN[i] = strlen(PARTS[i]);
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    ChainhashError = PyErr_NewException("ledger._chainhash.Error", NULL, NULL);
    if (!ChainhashError || PyModule_AddObject(m, "Error", ChainhashError)) { Py_XDECREF(ChainhashError); Py_DECREF(m); return NULL; }
    Py_INCREF(ChainhashError);
    PyModule_AddStringConstant(m, "sqlite_version", sqlite3_libversion());
    return m;
}

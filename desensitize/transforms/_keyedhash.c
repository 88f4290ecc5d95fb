/*
 * desensitize.transforms._keyedhash: keyed pseudonyms (HMAC-SHA256, RFC 2104, first 128 bits as
 * lower-case hex) of every string of an Arrow large_string column, in one C loop.
 *
 * Why C: issue 21's structured target (>= 300,000 rows/s) spent ~1.1 CPU-seconds per million
 * resident IDs in DuckDB's software SHA-256 (four compressions per value, hex encoded and decoded
 * in between) and Python's hashlib pays a microsecond of interpreter per value. Here the inner
 * and outer pad states are computed once, each value costs two SHA-256 compressions in OpenSSL's
 * libcrypto (the CPU's SHA extensions), and the GIL is released for the loop.
 *
 * Optional (setup.py): without it desensitize.transforms.pseudonyms uses its DuckDB and hashlib
 * paths, which tests/test_keyedhash.py checks give the same bytes.
 *
 * keyed_hex32(ipad, opad, prefix, offsets, data) -> bytes
 *   ipad, opad: the 64-byte RFC 2104 key pads; prefix: bytes hashed before every value;
 *   offsets: n + 1 little-endian int64 (an Arrow large_string's offsets, already sliced);
 *   data: the value bytes. Returns 32 * n hex characters, value i at [32 i, 32 i + 32).
 *   Raises ValueError for offsets that go backwards or outside data.
 *
 * siphash24(key, offsets, data) -> bytes
 *   SipHash-2-4 (Aumasson and Bernstein's reference) of every value with the 16-byte key: 8 bytes per
 *   value, native byte order, value i at [8 i, 8 i + 8). pandas' hash_array(..., hash_key=key,
 *   categorize=False) of the same strings is this followed by its splitmix64 finalizer, which the caller
 *   applies (desensitize.fingerprint_hashes.siphash): the guard's fingerprints hashed ~1M short strings
 *   per 0.2-0.3 CPU-s through pandas (a Python str per value, encoded again); here a loop over the bytes.
 *   Raises ValueError for a key that is not 16 bytes, or offsets as keyed_hex32 does.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_API_COMPAT 0x10100000L
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#define HEX_CHARS 32

static const char HEX[] = "0123456789abcdef";

static int check_offsets(const int64_t *offsets, Py_ssize_t n, Py_ssize_t data_len) {
    if (offsets[0] < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (offsets[i + 1] < offsets[i]) return -1;
    }
    return offsets[n] <= (int64_t)data_len ? 0 : -1;
}

static void hash_all(const SHA256_CTX *inner0, const SHA256_CTX *outer0, const unsigned char *prefix,
                     size_t prefix_len, const int64_t *offsets, const unsigned char *data, Py_ssize_t n,
                     char *out) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256_CTX ctx;
    for (Py_ssize_t i = 0; i < n; i++) {
        ctx = *inner0;
        SHA256_Update(&ctx, prefix, prefix_len);
        SHA256_Update(&ctx, data + offsets[i], (size_t)(offsets[i + 1] - offsets[i]));
        SHA256_Final(digest, &ctx);
        ctx = *outer0;
        SHA256_Update(&ctx, digest, SHA256_DIGEST_LENGTH);
        SHA256_Final(digest, &ctx);
        char *o = out + (size_t)i * HEX_CHARS;
        for (int j = 0; j < HEX_CHARS / 2; j++) {
            o[2 * j] = HEX[digest[j] >> 4];
            o[2 * j + 1] = HEX[digest[j] & 15];
        }
    }
}

/* The number of strings an Arrow offsets buffer (n + 1 int64 values) describes over data_len bytes, or -1 with
   ValueError set when it is not one: the one check every function over Arrow strings makes before reading. */
static Py_ssize_t string_count(const Py_buffer *offsets, Py_ssize_t data_len) {
    if (offsets->len < (Py_ssize_t)sizeof(int64_t) || offsets->len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold n + 1 int64 values");
        return -1;
    }
    Py_ssize_t n = offsets->len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (check_offsets((const int64_t *)offsets->buf, n, data_len) != 0) {
        PyErr_SetString(PyExc_ValueError, "offsets go backwards or outside the data");
        return -1;
    }
    return n;
}

static PyObject *keyed_hex32(PyObject *self, PyObject *args) {
    Py_buffer ipad, opad, prefix, offsets, data;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*", &ipad, &opad, &prefix, &offsets, &data)) return NULL;
    PyObject *result = NULL;
    if (ipad.len != 64 || opad.len != 64) {
        PyErr_SetString(PyExc_ValueError, "the key pads must be 64 bytes");
        goto done;
    }
    Py_ssize_t n = string_count(&offsets, data.len);
    if (n < 0) goto done;
    const int64_t *offs = (const int64_t *)offsets.buf;
    if (n > PY_SSIZE_T_MAX / HEX_CHARS) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, n * HEX_CHARS);
    if (result == NULL) goto done;
    SHA256_CTX inner0, outer0;
    SHA256_Init(&inner0);
    SHA256_Update(&inner0, ipad.buf, 64);
    SHA256_Init(&outer0);
    SHA256_Update(&outer0, opad.buf, 64);
    char *out = PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    hash_all(&inner0, &outer0, prefix.buf, (size_t)prefix.len, offs, data.buf, n, out);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&ipad);
    PyBuffer_Release(&opad);
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                            \
    do {                                                                                                     \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                            \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                               \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                               \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                            \
    } while (0)

static uint64_t read_le64(const unsigned char *p) {
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

static uint64_t siphash24_one(const unsigned char *in, size_t len, uint64_t k0, uint64_t k1) {
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const unsigned char *end = in + (len - len % 8);
    for (; in != end; in += 8) {
        uint64_t m = read_le64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = ((uint64_t)len) << 56;
    for (size_t i = 0; i < len % 8; i++) b |= ((uint64_t)in[i]) << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static PyObject *siphash24(PyObject *self, PyObject *args) {
    Py_buffer key, offsets, data;
    if (!PyArg_ParseTuple(args, "y*y*y*", &key, &offsets, &data)) return NULL;
    PyObject *result = NULL;
    if (key.len != 16) {
        PyErr_SetString(PyExc_ValueError, "the key must be 16 bytes");
        goto done;
    }
    Py_ssize_t n = string_count(&offsets, data.len);
    if (n < 0) goto done;
    const int64_t *offs = (const int64_t *)offsets.buf;
    if (n > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(uint64_t)) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint64_t));
    if (result == NULL) goto done;
    uint64_t k0 = read_le64(key.buf), k1 = read_le64((const unsigned char *)key.buf + 8);
    const unsigned char *bytes = data.buf;
    uint64_t *out = (uint64_t *)PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = siphash24_one(bytes + offs[i], (size_t)(offs[i + 1] - offs[i]), k0, k1);
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"keyed_hex32", keyed_hex32, METH_VARARGS,
     "keyed_hex32(ipad, opad, prefix, offsets, data) -> 32 hex characters of HMAC-SHA256 per value"},
    {"siphash24", siphash24, METH_VARARGS, "siphash24(key, offsets, data) -> 8 bytes of SipHash-2-4 per value"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_keyedhash", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__keyedhash(void) { return PyModule_Create(&module); }

/*
 * deaios._keccak: batched Keccak-256 (the Ethereum variant, padding 0x01) for merkle trees.
 *
 * Python pays about a microsecond per hash call, which caps per-chunk hashing of a file near
 * 50 MB/s. These functions hash many equal-size messages per call with the GIL released:
 *   keccak256(data) -> 32 bytes
 *   hash_leaves(data, leaf_size) -> concatenated keccak256 of each leaf_size slice of data
 *   hash_pairs(level) -> concatenated keccak256(left || right) of each 64-byte pair of level
 * The permutation is a plain implementation of Keccak-f[1600] (FIPS 202, section 3).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RATE 136 /* bytes absorbed per permutation for a 256-bit output */

static const uint64_t ROUND_CONSTANTS[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offset of lane (x, y), indexed x + 5y (FIPS 202, table 2). */
static const unsigned ROT[25] = {0,  1,  62, 28, 27, 36, 44, 6,  55, 20, 3,  10, 43,
                                 25, 39, 41, 45, 15, 21, 8,  18, 2,  61, 56, 14};

static inline uint64_t rotl64(uint64_t v, unsigned n) { return n ? (v << n) | (v >> (64 - n)) : v; }

/* One straightforward round structure; the constant-bound loops are fully unrolled by the compiler so
 * the 25 lanes stay in registers. */
static void keccak_f1600(uint64_t state[25]) {
    uint64_t a[25], b[25], c[5], d[5];
    memcpy(a, state, sizeof a); /* a local copy lets the compiler keep lanes in registers */
#pragma GCC unroll 2
    for (int round = 0; round < 24; round++) {
#pragma GCC unroll 5
        for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma GCC unroll 5
        for (int x = 0; x < 5; x++) d[x] = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
        /* theta, rho and pi: lane (x, y) moves to (y, 2x + 3y). */
#pragma GCC unroll 25
        for (int i = 0; i < 25; i++) {
            int x = i % 5, y = i / 5;
            b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(a[i] ^ d[x], ROT[i]);
        }
        /* chi */
#pragma GCC unroll 25
        for (int i = 0; i < 25; i++) {
            int x = i % 5, y5 = i - x;
            a[i] = b[i] ^ (~b[y5 + (x + 1) % 5] & b[y5 + (x + 2) % 5]);
        }
        a[0] ^= ROUND_CONSTANTS[round]; /* iota */
    }
    memcpy(state, a, sizeof a);
}

static inline uint64_t load64_le(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* x86-64 and aarch64 are little-endian, as Keccak lanes are */
    return v;
}

static void keccak256_raw(const uint8_t *in, size_t len, uint8_t out[32]) {
    uint64_t s[25] = {0};
    while (len >= RATE) {
        for (int i = 0; i < RATE / 8; i++) s[i] ^= load64_le(in + 8 * i);
        keccak_f1600(s);
        in += RATE;
        len -= RATE;
    }
    uint8_t block[RATE] = {0};
    memcpy(block, in, len);
    block[len] ^= 0x01;
    block[RATE - 1] ^= 0x80;
    for (int i = 0; i < RATE / 8; i++) s[i] ^= load64_le(block + 8 * i);
    keccak_f1600(s);
    memcpy(out, s, 32);
}

static PyObject *py_keccak256(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    uint8_t out[32];
    Py_BEGIN_ALLOW_THREADS
    keccak256_raw((const uint8_t *)data.buf, (size_t)data.len, out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

/* Hash `count` consecutive messages of `size` bytes each into a new bytes object of count*32. */
static PyObject *hash_runs(Py_buffer *data, Py_ssize_t size) {
    Py_ssize_t count = data->len / size;
    PyObject *result = PyBytes_FromStringAndSize(NULL, count * 32);
    if (result == NULL) return NULL;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *in = (const uint8_t *)data->buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) keccak256_raw(in + i * size, (size_t)size, out + i * 32);
    Py_END_ALLOW_THREADS
    return result;
}

static PyObject *py_hash_leaves(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t leaf_size;
    if (!PyArg_ParseTuple(args, "y*n", &data, &leaf_size)) return NULL;
    if (leaf_size <= 0 || data.len % leaf_size != 0) {
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "data length %zd is not a positive multiple of leaf size %zd",
                     data.len, leaf_size);
        return NULL;
    }
    PyObject *result = hash_runs(&data, leaf_size);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *py_hash_pairs(PyObject *self, PyObject *args) {
    Py_buffer level;
    if (!PyArg_ParseTuple(args, "y*", &level)) return NULL;
    if (level.len % 64 != 0) {
        PyBuffer_Release(&level);
        PyErr_Format(PyExc_ValueError, "level length %zd is not a multiple of 64 (pairs of hashes)",
                     level.len);
        return NULL;
    }
    PyObject *result = hash_runs(&level, 64);
    PyBuffer_Release(&level);
    return result;
}

static PyMethodDef METHODS[] = {
    {"keccak256", py_keccak256, METH_VARARGS, "keccak256(data) -> 32-byte digest"},
    {"hash_leaves", py_hash_leaves, METH_VARARGS,
     "hash_leaves(data, leaf_size) -> keccak256 of each leaf_size slice, concatenated"},
    {"hash_pairs", py_hash_pairs, METH_VARARGS,
     "hash_pairs(level) -> keccak256(left || right) of each 64-byte pair, concatenated"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_keccak",
                                    "Batched Keccak-256 for merkle trees.", -1, METHODS};

PyMODINIT_FUNC PyInit__keccak(void) { return PyModule_Create(&MODULE); }

/*
 * deaios._keccak: batched Keccak-256 (the Ethereum variant, padding 0x01) for merkle trees.
 *
 * Python pays about a microsecond per hash call, which caps per-chunk hashing of a file near
 * 50 MB/s. These functions hash many equal-size messages per call with the GIL released:
 *   keccak256(data) -> 32 bytes
 *   hash_leaves(data, leaf_size) -> concatenated keccak256 of each leaf_size slice of data
 *   hash_pairs(level) -> concatenated keccak256(left || right) of each 64-byte pair of level
 * The permutation (keccak_f1600.h) is written once and instantiated twice: for one state, and, on
 * x86-64 CPUs with AVX2 (checked at import), for four states at once, which the batch functions use.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define RATE 136 /* bytes absorbed per permutation for a 256-bit output */

static const uint64_t KECCAK_ROUND_CONSTANTS[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offset of lane (x, y), indexed x + 5y (FIPS 202, table 2). */
static const unsigned KECCAK_ROT[25] = {0,  1,  62, 28, 27, 36, 44, 6,  55, 20, 3,  10, 43,
                                        25, 39, 41, 45, 15, 21, 8,  18, 2,  61, 56, 14};

#define KECCAK_LANE uint64_t
#define KECCAK_FN keccak_f1600
#include "keccak_f1600.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X4 1
/* Four independent states in one AVX2 register per lane. */
typedef uint64_t lane_x4 __attribute__((vector_size(32)));
#pragma GCC push_options
#pragma GCC target("avx2")
#define KECCAK_LANE lane_x4
#define KECCAK_FN keccak_f1600_x4
#include "keccak_f1600.h"
#pragma GCC pop_options
#endif

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

#ifdef HAVE_X4
static int cpu_has_avx2 = 0; /* set once at import */

#pragma GCC push_options
#pragma GCC target("avx2")
/* keccak256 of four messages of `len` bytes each, the k-th at in + k * len, digests to out + k * 32. */
static void keccak256_x4(const uint8_t *in, size_t len, uint8_t *out) {
    lane_x4 s[25];
    memset(s, 0, sizeof s);
    size_t off = 0;
    for (; len - off >= RATE; off += RATE) {
        for (int i = 0; i < RATE / 8; i++) {
            const uint8_t *p = in + off + 8 * i;
            lane_x4 v = {load64_le(p), load64_le(p + len), load64_le(p + 2 * len), load64_le(p + 3 * len)};
            s[i] ^= v;
        }
        keccak_f1600_x4(s);
    }
    uint8_t block[4][RATE];
    size_t rem = len - off;
    for (int k = 0; k < 4; k++) {
        memset(block[k], 0, RATE);
        memcpy(block[k], in + k * len + off, rem);
        block[k][rem] ^= 0x01;
        block[k][RATE - 1] ^= 0x80;
    }
    for (int i = 0; i < RATE / 8; i++) {
        lane_x4 v = {load64_le(block[0] + 8 * i), load64_le(block[1] + 8 * i), load64_le(block[2] + 8 * i),
                     load64_le(block[3] + 8 * i)};
        s[i] ^= v;
    }
    keccak_f1600_x4(s);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 4; i++) {
            uint64_t w = s[i][k];
            memcpy(out + 32 * k + 8 * i, &w, 8);
        }
}
#pragma GCC pop_options
#endif

/* keccak256 of `count` consecutive messages of `size` bytes each, digests concatenated into out. */
static void hash_consecutive(const uint8_t *in, Py_ssize_t count, Py_ssize_t size, uint8_t *out) {
    Py_ssize_t i = 0;
#ifdef HAVE_X4
    if (cpu_has_avx2)
        for (; i + 4 <= count; i += 4) keccak256_x4(in + i * size, (size_t)size, out + i * 32);
#endif
    for (; i < count; i++) keccak256_raw(in + i * size, (size_t)size, out + i * 32);
}

/* Hash `count` consecutive messages of `size` bytes each into a new bytes object of count*32. */
static PyObject *hash_runs(Py_buffer *data, Py_ssize_t size) {
    Py_ssize_t count = data->len / size;
    PyObject *result = PyBytes_FromStringAndSize(NULL, count * 32);
    if (result == NULL) return NULL;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *in = (const uint8_t *)data->buf;
    Py_BEGIN_ALLOW_THREADS
    hash_consecutive(in, count, size, out);
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

PyMODINIT_FUNC PyInit__keccak(void) {
#ifdef HAVE_X4
    __builtin_cpu_init();
    cpu_has_avx2 = __builtin_cpu_supports("avx2");
#endif
    PyObject *module = PyModule_Create(&MODULE);
    if (module == NULL) return NULL;
#ifdef HAVE_X4
    if (PyModule_AddStringConstant(module, "BACKEND", cpu_has_avx2 ? "avx2-x4" : "scalar") < 0) return NULL;
#else
    if (PyModule_AddStringConstant(module, "BACKEND", "scalar") < 0) return NULL;
#endif
    return module;
}

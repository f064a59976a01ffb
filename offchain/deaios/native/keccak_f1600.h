/*
 * keccak_f1600.h: the Keccak-f[1600] permutation (FIPS 202, section 3.3), written once over an
 * abstract lane type so that keccak.c can instantiate it for plain 64-bit lanes and for SIMD vectors
 * of lanes (several independent states permuted at once). Before including, define:
 *   KECCAK_LANE  the lane type (uint64_t, or a GCC vector of uint64_t)
 *   KECCAK_FN    the name of the function to define
 * The constant-bound loops are unrolled by the compiler so the 25 lanes stay in registers.
 */

static void KECCAK_FN(KECCAK_LANE state[25]) {
    KECCAK_LANE a[25], b[25], c[5], d[5];
    memcpy(a, state, sizeof a); /* a local copy lets the compiler keep lanes in registers */
#pragma GCC unroll 2
    for (int round = 0; round < 24; round++) {
#pragma GCC unroll 5
        for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
#pragma GCC unroll 5
        for (int x = 0; x < 5; x++) {
            KECCAK_LANE r = c[(x + 1) % 5];
            d[x] = c[(x + 4) % 5] ^ ((r << 1) | (r >> 63));
        }
        /* theta, rho and pi: lane (x, y) moves to (y, 2x + 3y), rotated by KECCAK_ROT[x + 5y]. */
#pragma GCC unroll 25
        for (int i = 0; i < 25; i++) {
            int x = i % 5, y = i / 5;
            KECCAK_LANE v = a[i] ^ d[x];
            unsigned n = KECCAK_ROT[i];
            b[y + 5 * ((2 * x + 3 * y) % 5)] = n ? (v << n) | (v >> (64 - n)) : v;
        }
        /* chi */
#pragma GCC unroll 25
        for (int i = 0; i < 25; i++) {
            int x = i % 5, y5 = i - x;
            a[i] = b[i] ^ (~b[y5 + (x + 1) % 5] & b[y5 + (x + 2) % 5]);
        }
        a[0] ^= KECCAK_ROUND_CONSTANTS[round]; /* iota */
    }
    memcpy(state, a, sizeof a);
}

#undef KECCAK_FN
#undef KECCAK_LANE

/* Pseudo-random numbers for the load generator: xoshiro256** seeded by
 * splitmix64, so a run is reproducible from --seed. Not for cryptography.
 * Ownership: a mr_rng_t is a plain value; each thread uses its own. */
#ifndef MR_LOAD_RNG_H
#define MR_LOAD_RNG_H

#include <stdint.h>

typedef struct mr_rng {
  uint64_t s[4];
} mr_rng_t;

static inline uint64_t mr_rng_splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline void mr_rng_seed(mr_rng_t *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = mr_rng_splitmix(&seed);
}

static inline uint64_t mr_rng_rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static inline uint64_t mr_rng_next(mr_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t out = mr_rng_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = mr_rng_rotl(s[3], 45);
  return out;
}

/* Uniform in [0, 1), 53 bits. */
static inline double mr_rng_double(mr_rng_t *r) {
  return (double)(mr_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) for n > 0 (Lemire's multiply-shift; the bias is below
 * n / 2^64, far under anything a benchmark can see). */
static inline uint64_t mr_rng_below(mr_rng_t *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)mr_rng_next(r) * n) >> 64);
}

#endif

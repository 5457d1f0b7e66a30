/* Zipf sampling by rejection-inversion (see zipf.h). The helpers keep
 * precision near s = 1, where the closed forms divide by (1 - s). */
#include "client/load/zipf.h"

#include <math.h>

/* log1p(x) / x, accurate near 0. */
static double helper1(double x) {
  if (fabs(x) > 1e-8) return log1p(x) / x;
  return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x) / x, accurate near 0. */
static double helper2(double x) {
  if (fabs(x) > 1e-8) return expm1(x) / x;
  return 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

/* The density's shape h(x) = x^-s, its integral H and H's inverse. */
static double h(double s, double x) { return exp(-s * log(x)); }

static double big_h(double s, double x) {
  double lx = log(x);
  return helper2((1.0 - s) * lx) * lx;
}

static double big_h_inv(double s, double x) {
  double t = x * (1.0 - s);
  if (t < -1.0) t = -1.0;  /* rounding guard: the true value is >= -1 */
  return exp(helper1(t) * x);
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

int mr_zipf_init(mr_zipf_t *z, uint64_t n, double s, mr_err_t *err) {
  if (n < 1)
    return mr_err_set(err, MR_EINVAL, "zipf: a table of 0 rows has no ids");
  if (!(s >= 0.0 && s <= 100.0))
    return mr_err_set(err, MR_EINVAL,
                      "zipf: exponent %g out of range: expected 0..100", s);
  z->n = n;
  z->s = s;
  z->h_x1 = big_h(s, 1.5) - 1.0;
  z->h_n = big_h(s, (double)n + 0.5);
  z->thresh = 2.0 - big_h_inv(s, big_h(s, 2.5) - h(s, 2.0));
  /* A large odd prime is coprime with almost every n; 1 if not. */
  uint64_t m = 2654435761ULL % n;
  z->scatter = (m > 1 && gcd(m, n) == 1) ? m : 1;
  return 0;
}

uint64_t mr_zipf_rank(const mr_zipf_t *z, mr_rng_t *r) {
  if (z->n == 1) return 1;
  for (;;) {
    double u = z->h_n + mr_rng_double(r) * (z->h_x1 - z->h_n);
    double x = big_h_inv(z->s, u);
    double kd = floor(x + 0.5);
    uint64_t k;
    if (kd < 1.0)
      k = 1;
    else if (kd >= (double)z->n)
      k = z->n;
    else
      k = (uint64_t)kd;
    if ((double)k - x <= z->thresh ||
        u >= big_h(z->s, (double)k + 0.5) - h(z->s, (double)k))
      return k;
  }
}

uint64_t mr_zipf_id(const mr_zipf_t *z, mr_rng_t *r) {
  uint64_t k = mr_zipf_rank(z, r) - 1;
  return (uint64_t)(((unsigned __int128)k * z->scatter) % z->n);
}

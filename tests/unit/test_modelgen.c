/* The model generator: preset shapes and sizes, deterministic bytes that do
 * not depend on chunking, written models that load back identically, and
 * logits that spread. */
#include <math.h>
#include <stdint.h>

#include "fpga/model.h"
#include "fpga/modelgen.h"
#include "fpga/safetensors.h"
#include "tests/unit/testutil.h"

static uint64_t table_bytes(const mr_gen_spec_t *s) {
  uint64_t n = 0;
  for (size_t k = 0; k < s->num_tables; k++) n += s->rows[k] * s->dims[k] * 4;
  return n;
}

static size_t total_width(const mr_gen_spec_t *s) {
  size_t w = 0;
  for (size_t k = 0; k < s->num_tables; k++) w += s->dims[k];
  return w;
}

Test(modelgen, criteo_preset_shape) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&s, "criteo", 0, &err), 0, "%s", err.msg);
  const uint64_t rows[26] = {1460,  583,    10131227, 2202608, 305,     24,
                             12517, 633,    3,        93145,   5683,    8351593,
                             3194,  27,     14992,    5461306, 10,      5652,
                             2173,  4,      7046547,  18,      15,      286181,
                             105,   142572};
  cr_assert_eq(s.num_tables, 26);
  for (size_t k = 0; k < 26; k++) {
    cr_assert_eq(s.rows[k], rows[k], "table %zu", k);
    cr_assert_eq(s.dims[k], 16);
  }
  cr_assert_eq(s.interaction, MR_INTERACT_DOT);
  const size_t bot[] = {13, 512, 256, 64, 16}, top[] = {512, 256, 1};
  cr_assert_eq(s.num_bot_widths, 5);
  cr_assert_eq(memcmp(s.bot_widths, bot, sizeof bot), 0);
  cr_assert_eq(s.num_top_widths, 3);
  cr_assert_eq(memcmp(s.top_widths, top, sizeof top), 0);
  cr_assert_eq(mr_gen_top_in(&s), 367);
  cr_assert_eq(s.dtype, MR_F32);
  uint64_t mlp = (512 * 14 + 256 * 513 + 64 * 257 + 16 * 65) +
                 (512 * 368 + 256 * 513 + 1 * 257);
  cr_assert_eq(mr_gen_param_bytes(&s), table_bytes(&s) + mlp * 4);
}

Test(modelgen, alibaba_47_is_about_1_4_gb) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&s, "alibaba-47", 0, &err), 0, "%s", err.msg);
  cr_assert_eq(s.num_tables, 47);
  cr_assert_eq(total_width(&s), 352);
  cr_assert_eq(s.interaction, MR_INTERACT_CAT);
  cr_assert_eq(s.num_bot_widths, 0);
  cr_assert_eq(mr_gen_top_in(&s), 352);
  /* Rows x width by group: 4x100x4 + 2x500x4 + 10x1000x4 + 3000x8 +
   * 15x10k x8 + 20k x8 + 30k x8 + 10x100k x8 + 500k x16 + 1M x16 + 10M x32. */
  uint64_t emb = 1600 + 4000 + 40000 + 24000 + 1200000 + 160000 + 240000 +
                 8000000 + 8000000 + 16000000 + 320000000ull;
  uint64_t mlp = 1024 * 353 + 512 * 1025 + 256 * 513 + 257;
  cr_assert_eq(table_bytes(&s), emb * 4);
  cr_assert_eq(mr_gen_param_bytes(&s), (emb + mlp) * 4);
  cr_assert(mr_gen_param_bytes(&s) > 1400000000ull &&
            mr_gen_param_bytes(&s) < 1420000000ull);
  const size_t top[] = {1024, 512, 256, 1};
  cr_assert_eq(memcmp(s.top_widths, top, sizeof top), 0);
}

Test(modelgen, alibaba_98_is_about_15_gb) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&s, "alibaba-98", 0, &err), 0, "%s", err.msg);
  cr_assert_eq(s.num_tables, 98);
  cr_assert_eq(total_width(&s), 876);
  cr_assert_eq(mr_gen_top_in(&s), 876);
  cr_assert_eq(s.rows[97], 100000000);
  cr_assert_eq(s.dims[97], 32);
  uint64_t b = mr_gen_param_bytes(&s);
  cr_assert(b > 14500000000ull && b < 15500000000ull, "%llu",
            (unsigned long long)b);
}

Test(modelgen, max_rows_caps_every_table) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&s, "alibaba-98", 1000, &err), 0);
  for (size_t k = 0; k < s.num_tables; k++) cr_assert_leq(s.rows[k], 1000);
  cr_assert_eq(s.rows[0], 100);
  cr_assert_eq(s.rows[97], 1000);
}

Test(modelgen, unknown_preset_lists_the_known_ones) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_preset(&s, "imagenet", 0, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "unknown preset 'imagenet'"), "%s", err.msg);
  cr_assert(strstr(err.msg, "alibaba-98"), "%s", err.msg);
  size_t n = 0;
  while (mr_gen_preset_names[n]) n++;
  cr_assert_eq(n, 3);
}

Test(modelgen, refuses_an_invalid_spec) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  mr_gen_preset(&s, "criteo", 10, &err);
  s.dims[3] = 8; /* dot needs every width to be the bottom output's */
  mr_gen_layout_t *lay = malloc(sizeof *lay);
  cr_assert_eq(mr_gen_layout(&s, lay, &err), MR_EINVAL);
  cr_assert(strstr(err.msg, "emb_l.3.weight has width 8"), "%s", err.msg);
  s.dims[3] = 16;
  s.top_widths[2] = 2;
  cr_assert_eq(mr_gen_layout(&s, lay, &err), MR_EINVAL);
  free(lay);
}

/* Bytes of one tensor, all at once or chunk bytes at a time. */
static unsigned char *tensor_bytes(const mr_gen_layout_t *l, size_t t,
                                   size_t chunk, size_t *len) {
  const mr_st_desc_t *d = &l->descs[t];
  size_t n = mr_dtype_size(d->dtype);
  for (size_t k = 0; k < d->ndim; k++) n *= (size_t)d->shape[k];
  unsigned char *b = malloc(n ? n : 1);
  for (size_t off = 0; off < n; off += chunk) {
    size_t c = n - off < chunk ? n - off : chunk;
    cr_assert_eq(mr_gen_fill(l, t, off, b + off, c), 0);
  }
  *len = n;
  return b;
}

Test(modelgen, chunk_size_does_not_change_bytes) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  mr_gen_layout_t *lay = malloc(sizeof *lay);
  const mr_dtype_t types[] = {MR_F32, MR_F16, MR_BF16};
  for (size_t ti = 0; ti < 3; ti++) {
    mr_gen_preset(&s, "alibaba-47", 300, &err);
    s.seed = 42;
    s.dtype = types[ti];
    cr_assert_eq(mr_gen_layout(&s, lay, &err), 0, "%s", err.msg);
    const size_t tensors[] = {0, 46, 47, lay->num_tensors - 2};
    for (size_t i = 0; i < 4; i++) {
      size_t len, len2;
      unsigned char *whole = tensor_bytes(lay, tensors[i], SIZE_MAX, &len);
      const size_t chunks[] = {1, 3, 7, 4096, 5000};
      for (size_t c = 0; c < 5; c++) {
        unsigned char *b = tensor_bytes(lay, tensors[i], chunks[c], &len2);
        cr_assert_eq(len, len2);
        cr_assert_eq(memcmp(whole, b, len), 0, "tensor %zu chunk %zu dtype %s",
                     tensors[i], chunks[c], mr_dtype_name(types[ti]));
        free(b);
      }
      free(whole);
    }
    size_t n = 0;
    cr_assert_eq(mr_gen_fill(lay, 0, 1600, &n, 1), MR_EINVAL, "past the end");
  }
  free(lay);
}

Test(modelgen, capped_table_is_a_prefix_of_the_uncapped_one) {
  mr_gen_spec_t a, b;
  mr_err_t err = {0};
  mr_gen_preset(&a, "criteo", 100, &err);
  mr_gen_preset(&b, "criteo", 1000, &err);
  mr_gen_layout_t *la = malloc(sizeof *la), *lb = malloc(sizeof *lb);
  cr_assert_eq(mr_gen_layout(&a, la, &err), 0);
  cr_assert_eq(mr_gen_layout(&b, lb, &err), 0);
  size_t na, nb;
  unsigned char *ta = tensor_bytes(la, 2, 4096, &na), *tb = tensor_bytes(lb, 2, 4096, &nb);
  cr_assert_eq(na, 100 * 16 * 4);
  cr_assert_eq(nb, 1000 * 16 * 4);
  cr_assert_eq(memcmp(ta, tb, na), 0);
  free(ta);
  free(tb);
  free(la);
  free(lb);
}

static int same_file(const char *p, const char *q) {
  size_t a = 0, b = 0;
  unsigned char *x = mr_test_read_file(p, &a), *y = mr_test_read_file(q, &b);
  int same = x && y && a == b && memcmp(x, y, a) == 0;
  free(x);
  free(y);
  return same;
}

typedef struct prog {
  uint64_t done, total;
  size_t calls;
} prog_t;

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
  prog_t *p = ctx;
  cr_assert_geq(done, p->done);
  p->done = done;
  p->total = total;
  p->calls++;
}

Test(modelgen, same_seed_same_bytes) {
  char dir[64], p1[128], p2[128], p3[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
  snprintf(p2, sizeof p2, "%s/b.safetensors", dir);
  snprintf(p3, sizeof p3, "%s/c.safetensors", dir);
  mr_gen_spec_t s;
  mr_err_t err = {0};
  mr_gen_preset(&s, "criteo", 50000, &err); /* ~8 MB: several chunks */
  s.seed = 7;
  prog_t pr = {0};
  cr_assert_eq(mr_gen_write(&s, p1, on_progress, &pr, &err), 0, "%s", err.msg);
  cr_assert_eq(pr.done, pr.total);
  cr_assert_gt(pr.calls, 1);
  cr_assert_eq(mr_gen_write(&s, p2, NULL, NULL, &err), 0, "%s", err.msg);
  s.seed = 8;
  cr_assert_eq(mr_gen_write(&s, p3, NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert(same_file(p1, p2));
  cr_assert(!same_file(p1, p3));
  unlink(p1);
  unlink(p2);
  unlink(p3);
  rmdir(dir);
}

/* Writes spec, loads it, and checks every tensor against mr_gen_fill. */
static void round_trip(const mr_gen_spec_t *s, mr_model_t *m) {
  char dir[64], path[128];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  mr_err_t err = {0};
  cr_assert_eq(mr_gen_write(s, path, NULL, NULL, &err), 0, "%s", err.msg);
  cr_assert_eq(mr_model_open(m, path, &err), 0, "%s", err.msg);
  unlink(path);
  rmdir(dir);
  mr_gen_layout_t *lay = malloc(sizeof *lay);
  cr_assert_eq(mr_gen_layout(s, lay, &err), 0);
  cr_assert_eq(m->num_tables, s->num_tables);
  cr_assert_eq(m->interaction, s->interaction);
  cr_assert_eq(mr_model_param_bytes(m), mr_gen_param_bytes(s));
  size_t nb = s->num_bot_widths ? s->num_bot_widths - 1 : 0;
  for (size_t t = 0; t < lay->num_tensors; t++) {
    size_t len;
    unsigned char *b = tensor_bytes(lay, t, 1 << 20, &len);
    size_t n = len / mr_dtype_size(s->dtype);
    float *want = malloc(n * sizeof *want + 1);
    mr_dtype_to_f32(s->dtype, b, want, n);
    const float *got;
    if (t < s->num_tables) {
      got = m->tables[t].data;
    } else {
      size_t l = (t - s->num_tables) / 2, bias = (t - s->num_tables) % 2;
      const mr_layer_t *ly = l < nb ? &m->bot[l] : &m->top[l - nb];
      got = bias ? ly->bias : ly->weight;
    }
    cr_assert_eq(memcmp(got, want, n * sizeof *want), 0, "tensor %s",
                 lay->names[t]);
    free(want);
    free(b);
  }
  free(lay);
}

Test(modelgen, written_model_loads_with_identical_tensors) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  mr_gen_preset(&s, "alibaba-47", 1000, &err);
  s.seed = 3;
  mr_model_t m;
  round_trip(&s, &m);
  cr_assert_eq(m.num_top, 4);
  cr_assert_eq(m.top[0].in, 352);
  cr_assert_eq(m.tables[46].rows, 1000);
  cr_assert_eq(m.tables[0].rows, 100);
  mr_model_close(&m);
}

Test(modelgen, f16_and_bf16_models_load) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  const mr_dtype_t types[] = {MR_F16, MR_BF16};
  for (size_t i = 0; i < 2; i++) {
    mr_gen_preset(&s, "criteo", 200, &err);
    s.dtype = types[i];
    mr_model_t m;
    round_trip(&s, &m);
    cr_assert_gt(m.num_owned_, 0, "converted into owned buffers");
    cr_assert_eq(m.num_dense, 13);
    mr_model_close(&m);
  }
}

/* ---- the logits spread ---- */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void layer(const mr_layer_t *l, const double *x, double *y, int relu) {
  for (size_t o = 0; o < l->out; o++) {
    double acc = l->bias[o];
    for (size_t i = 0; i < l->in; i++) acc += (double)l->weight[o * l->in + i] * x[i];
    y[o] = relu && acc < 0 ? 0 : acc;
  }
}

/* A plain reference forward pass (DESIGN.md's interactions). */
static double logit(const mr_model_t *m, uint64_t *rng) {
  double a[2048], b[2048], v[300][32], z[4096];
  size_t nv = 0, w = 0, dx = 0;
  if (m->num_bot) {
    for (size_t i = 0; i < m->num_dense; i++)
      a[i] = (double)(rng_next(rng) >> 11) * 0x1.0p-53 * 5.0; /* log(1+x)-like */
    for (size_t l = 0; l < m->num_bot; l++) {
      layer(&m->bot[l], a, b, 1);
      memcpy(a, b, m->bot[l].out * sizeof *a);
    }
    dx = m->bot[m->num_bot - 1].out;
    memcpy(v[nv++], a, dx * sizeof *a);
    memcpy(z, a, dx * sizeof *a);
    w = dx;
  }
  for (size_t k = 0; k < m->num_tables; k++) {
    const mr_table_t *t = &m->tables[k];
    size_t r = (size_t)(rng_next(rng) % t->rows);
    for (size_t q = 0; q < t->dim; q++) v[nv][q] = t->data[r * t->dim + q];
    if (m->interaction == MR_INTERACT_CAT)
      for (size_t q = 0; q < t->dim; q++) z[w++] = v[nv][q];
    nv++;
  }
  if (m->interaction == MR_INTERACT_DOT)
    for (size_t i = 1; i < nv; i++)
      for (size_t j = 0; j < i; j++) {
        double d = 0;
        for (size_t q = 0; q < m->tables[0].dim; q++) d += v[i][q] * v[j][q];
        z[w++] = d;
      }
  cr_assert_eq(w, m->top[0].in);
  for (size_t l = 0; l < m->num_top; l++) {
    layer(&m->top[l], z, b, l + 1 < m->num_top);
    memcpy(z, b, m->top[l].out * sizeof *z);
  }
  return z[0];
}

static void check_spread(const char *preset, uint64_t seed) {
  mr_gen_spec_t s;
  mr_err_t err = {0};
  mr_gen_preset(&s, preset, 2000, &err);
  s.seed = seed;
  mr_model_t m;
  round_trip(&s, &m);
  uint64_t rng = 12345;
  double sum = 0, sq = 0;
  const int n = 400;
  for (int i = 0; i < n; i++) {
    double y = logit(&m, &rng);
    sum += y;
    sq += y * y;
  }
  double mean = sum / n, sd = sqrt(sq / n - mean * mean);
  cr_assert(sd > 1.0 && sd < 3.0, "%s seed %llu: logit std %.3f", preset,
            (unsigned long long)seed, sd);
  cr_assert(fabs(mean) < 1.0, "%s seed %llu: logit mean %.3f", preset,
            (unsigned long long)seed, mean);
  mr_model_close(&m);
}

Test(modelgen, logits_spread_on_random_ids) {
  check_spread("criteo", 1);
  check_spread("criteo", 2);
  check_spread("alibaba-47", 1);
  check_spread("alibaba-47", 5);
}

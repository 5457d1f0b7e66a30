/* Random models in the shape of known workloads. Values come from a
 * counter-based generator (splitmix64 of a per-tensor key and the element
 * index), so any chunk of any tensor is computed on its own. */
#include "fpga/modelgen.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mr_gen_preset_names[] = {"criteo", "alibaba-47",
                                           "alibaba-98", NULL};

/* ---- presets ---- */

typedef struct group {
  size_t count;
  uint64_t rows;
  size_t dim;
} group_t;

static const uint64_t criteo_rows[26] = {
    1460,   583,   10131227, 2202608, 305,     24,  12517, 633,    3,
    93145,  5683,  8351593,  3194,    27,      14992, 5461306, 10,  5652,
    2173,   4,     7046547,  18,      15,      286181, 105,     142572};

/* MicroRec's production models (Jiang et al., MLSys 2021, table 2). */
static const group_t alibaba47[] = {
    {4, 100, 4},       {2, 500, 4},      {10, 1000, 4},   {1, 3000, 8},
    {15, 10000, 8},    {1, 20000, 8},    {1, 30000, 8},   {10, 100000, 8},
    {1, 500000, 16},   {1, 1000000, 16}, {1, 10000000, 32}};
static const group_t alibaba98[] = {
    {12, 100, 4},      {6, 500, 4},       {9, 1000, 4},     {14, 5000, 8},
    {2, 15000, 8},     {30, 50000, 8},    {2, 100000, 8},   {2, 150000, 8},
    {16, 500000, 16},  {2, 1000000, 16},  {1, 5000000, 16}, {1, 10000000, 32},
    {1, 100000000, 32}};

static void add_groups(mr_gen_spec_t *s, const group_t *g, size_t n) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < g[i].count; j++) {
      s->rows[s->num_tables] = g[i].rows;
      s->dims[s->num_tables++] = g[i].dim;
    }
}

static void set_widths(size_t *dst, size_t *n, const size_t *src, size_t k) {
  memcpy(dst, src, k * sizeof *src);
  *n = k;
}

int mr_gen_preset(mr_gen_spec_t *spec, const char *preset, uint64_t max_rows,
                  mr_err_t *err) {
  static const size_t criteo_bot[] = {13, 512, 256, 64, 16};
  static const size_t criteo_top[] = {512, 256, 1};
  static const size_t alibaba_top[] = {1024, 512, 256, 1};
  memset(spec, 0, sizeof *spec);
  if (preset && !strcmp(preset, "criteo")) {
    spec->interaction = MR_INTERACT_DOT;
    for (size_t k = 0; k < 26; k++) {
      spec->rows[k] = criteo_rows[k];
      spec->dims[k] = 16;
    }
    spec->num_tables = 26;
    set_widths(spec->bot_widths, &spec->num_bot_widths, criteo_bot, 5);
    set_widths(spec->top_widths, &spec->num_top_widths, criteo_top, 3);
  } else if (preset && !strcmp(preset, "alibaba-47")) {
    spec->interaction = MR_INTERACT_CAT;
    add_groups(spec, alibaba47, sizeof alibaba47 / sizeof alibaba47[0]);
    set_widths(spec->top_widths, &spec->num_top_widths, alibaba_top, 4);
  } else if (preset && !strcmp(preset, "alibaba-98")) {
    spec->interaction = MR_INTERACT_CAT;
    add_groups(spec, alibaba98, sizeof alibaba98 / sizeof alibaba98[0]);
    set_widths(spec->top_widths, &spec->num_top_widths, alibaba_top, 4);
  } else {
    return mr_err_set(err, MR_EINVAL,
                      "unknown preset '%s' (expected criteo, alibaba-47 or "
                      "alibaba-98)",
                      preset ? preset : "");
  }
  if (max_rows)
    for (size_t k = 0; k < spec->num_tables; k++)
      if (spec->rows[k] > max_rows) spec->rows[k] = max_rows;
  return 0;
}

/* ---- shapes ---- */

size_t mr_gen_top_in(const mr_gen_spec_t *s) {
  size_t dx = s->num_bot_widths ? s->bot_widths[s->num_bot_widths - 1] : 0;
  if (s->interaction == MR_INTERACT_DOT) {
    size_t n = s->num_tables + (s->num_bot_widths ? 1 : 0);
    return dx + (n ? n * (n - 1) / 2 : 0);
  }
  for (size_t k = 0; k < s->num_tables && k < MR_GEN_MAX_TABLES; k++)
    dx += s->dims[k];
  return dx;
}

uint64_t mr_gen_param_bytes(const mr_gen_spec_t *s) {
  uint64_t n = 0;
  for (size_t k = 0; k < s->num_tables && k < MR_GEN_MAX_TABLES; k++)
    n += s->rows[k] * s->dims[k];
  for (size_t i = 0; i + 1 < s->num_bot_widths; i++)
    n += (uint64_t)s->bot_widths[i + 1] * (s->bot_widths[i] + 1);
  size_t in = mr_gen_top_in(s);
  for (size_t i = 0; i < s->num_top_widths && i < MR_GEN_MAX_LAYERS; i++) {
    n += (uint64_t)s->top_widths[i] * (in + 1);
    in = s->top_widths[i];
  }
  return n * sizeof(float);
}

/* The spec must make a model mr_model_open accepts: check it with the same
 * rules, on a shape-only model whose data pointers are never read. */
static int check_spec(const mr_gen_spec_t *s, mr_err_t *err) {
  static const float nodata;
  if (s->num_tables < 1 || s->num_tables > MR_GEN_MAX_TABLES ||
      s->num_bot_widths == 1 || s->num_bot_widths > MR_GEN_MAX_LAYERS + 1 ||
      s->num_top_widths < 1 || s->num_top_widths > MR_GEN_MAX_LAYERS ||
      !mr_dtype_size(s->dtype))
    return mr_err_set(err, MR_EINVAL,
                      "spec: %zu tables, %zu bottom widths, %zu top widths "
                      "(expected 1..%d tables, 0 or 2..%d bottom widths, "
                      "1..%d top widths) and a known dtype",
                      s->num_tables, s->num_bot_widths, s->num_top_widths,
                      MR_GEN_MAX_TABLES, MR_GEN_MAX_LAYERS + 1,
                      MR_GEN_MAX_LAYERS);
  mr_table_t tables[MR_GEN_MAX_TABLES];
  mr_layer_t bot[MR_GEN_MAX_LAYERS], top[MR_GEN_MAX_LAYERS];
  mr_model_t m = {.interaction = s->interaction,
                  .num_tables = s->num_tables,
                  .tables = tables,
                  .num_bot = s->num_bot_widths ? s->num_bot_widths - 1 : 0,
                  .bot = bot,
                  .num_top = s->num_top_widths,
                  .top = top};
  for (size_t k = 0; k < s->num_tables; k++) {
    if (s->rows[k] > SIZE_MAX / (s->dims[k] ? s->dims[k] : 1) / 4)
      return mr_err_set(err, MR_EINVAL, "spec: table %zu too large", k);
    tables[k] = (mr_table_t){(size_t)s->rows[k], s->dims[k], &nodata};
  }
  for (size_t i = 0; i < m.num_bot; i++)
    bot[i] = (mr_layer_t){s->bot_widths[i], s->bot_widths[i + 1], &nodata,
                          &nodata};
  m.num_dense = m.num_bot ? bot[0].in : 0;
  size_t in = mr_model_top_in(&m);
  for (size_t i = 0; i < m.num_top; i++) {
    top[i] = (mr_layer_t){in, s->top_widths[i], &nodata, &nodata};
    in = s->top_widths[i];
  }
  int rc = mr_model_validate(&m, err);
  if (rc) {
    mr_err_prefix(err, "spec");
    return MR_EINVAL;
  }
  return 0;
}

/* ---- values ---- */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#define MR_GOLDEN 0x9e3779b97f4a7c15ull

/* A tensor's stream depends on its name, not its position, so a model with
 * fewer layers or capped tables keeps the same values where shapes agree. */
static uint64_t tensor_key(uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return mix64(seed ^ mix64(h));
}

/* Element e: the (e+1)-th output of a splitmix64 sequence started at key,
 * as a 24-bit uniform in [-1, 1), exact in f32. */
static float uniform(uint64_t key, uint64_t e) {
  uint64_t h = mix64(key + (e + 1) * MR_GOLDEN);
  return (float)(int64_t)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

/* He-uniform keeps activations at one scale through the ReLUs; the last
 * layer is then calibrated (calibrate below). */
#define MR_GEN_BIAS_SCALE 0.05f

static void values(const mr_gen_layout_t *l, size_t t, uint64_t e, size_t n,
                   float *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = l->shift[t] + uniform(l->key[t], e + i) * l->scale[t];
}

static void add_tensor(mr_gen_layout_t *l, const mr_gen_spec_t *s,
                       size_t nd, uint64_t d0, uint64_t d1, float scale,
                       const char *fmt, size_t idx, const char *suffix) {
  size_t i = l->num_tensors++;
  snprintf(l->names[i], sizeof l->names[i], fmt, idx, suffix);
  l->descs[i] = (mr_st_desc_t){.name = l->names[i], .dtype = s->dtype,
                               .ndim = nd, .shape = {d0, d1}};
  l->key[i] = tensor_key(s->seed, l->names[i]);
  l->scale[i] = scale;
  l->shift[i] = 0.0f;
}

static void add_mlp(mr_gen_layout_t *l, const mr_gen_spec_t *s,
                    const char *fmt, size_t in, const size_t *outs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    add_tensor(l, s, 2, outs[i], in, sqrtf(6.0f / (float)in), fmt, 2 * i,
               "weight");
    add_tensor(l, s, 1, outs[i], 0, MR_GEN_BIAS_SCALE, fmt, 2 * i, "bias");
    in = outs[i];
  }
}

/* y = W x + b, W [out][in], then ReLU when relu. */
static void dense(const float *w, const float *b, size_t in, size_t out,
                  const float *x, float *y, int relu) {
  for (size_t o = 0; o < out; o++) {
    float acc = b[o];
    for (size_t i = 0; i < in; i++) acc += w[o * in + i] * x[i];
    y[o] = relu && acc < 0 ? 0 : acc;
  }
}

typedef struct calib {
  float *w[2 * MR_GEN_MAX_LAYERS], *b[2 * MR_GEN_MAX_LAYERS];
  float *a, *z, *emb; /* activations, top input, one sample's rows */
} calib_t;

/* One sample's logit before the last layer's bias; the last layer's weight
 * is used as generated so far. */
static float forward(const mr_gen_layout_t *l, const mr_gen_spec_t *s,
                     calib_t *c, uint64_t sample) {
  size_t nb = s->num_bot_widths ? s->num_bot_widths - 1 : 0;
  size_t nt = s->num_top_widths, dx = 0, off = 0, w = 0;
  uint64_t key = tensor_key(s->seed, "calibration");
  if (nb) {
    float *x = c->a, *y = c->z;
    for (size_t i = 0; i < s->bot_widths[0]; i++)
      x[i] = 2.0f * (uniform(key, sample * 65536 + i) + 1.0f);
    for (size_t i = 0; i < nb; i++) {
      dense(c->w[i], c->b[i], s->bot_widths[i], s->bot_widths[i + 1], x, y, 1);
      float *tmp = x;
      x = y;
      y = tmp;
    }
    dx = s->bot_widths[nb];
    memmove(c->emb, x, dx * sizeof(float)); /* vector 0 of the interaction */
    off = dx;
  }
  for (size_t k = 0; k < s->num_tables; k++) {
    uint64_t r = mix64(key + sample * 4096 + k + 1) % s->rows[k];
    values(l, k, r * s->dims[k], s->dims[k], c->emb + off);
    off += s->dims[k];
  }
  if (s->interaction == MR_INTERACT_CAT) {
    memcpy(c->z, c->emb, off * sizeof(float));
    w = off;
  } else {
    size_t d = s->dims[0], n = s->num_tables + (nb ? 1 : 0);
    memcpy(c->z, c->emb, dx * sizeof(float));
    w = dx;
    for (size_t i = 1; i < n; i++)
      for (size_t j = 0; j < i; j++) {
        float acc = 0;
        for (size_t q = 0; q < d; q++) acc += c->emb[i * d + q] * c->emb[j * d + q];
        c->z[w++] = acc;
      }
  }
  float *x = c->z, *y = c->a;
  for (size_t i = 0; i < nt; i++) {
    size_t out = s->top_widths[i];
    dense(c->w[nb + i], c->b[nb + i], w, out, x, y, i + 1 < nt);
    float *tmp = x;
    x = y;
    y = tmp;
    w = out;
  }
  return x[0];
}

/* Sets the last layer's scale and bias so the logits of random samples have
 * mean 0 and standard deviation MR_GEN_LOGIT_STD: He init alone leaves a
 * spread and an offset that vary by an order of magnitude between shapes. */
static int calibrate(mr_gen_layout_t *l, const mr_gen_spec_t *s,
                     mr_err_t *err) {
  size_t nb = s->num_bot_widths ? s->num_bot_widths - 1 : 0;
  size_t nl = nb + s->num_top_widths, wmax = mr_gen_top_in(s), vec = 0;
  size_t first = s->num_tables, lw = first + 2 * (nl - 1);
  for (size_t k = 0; k < s->num_tables; k++) vec += s->dims[k];
  vec += nb ? s->bot_widths[nb] : 0;
  calib_t c = {0};
  int rc = 0;
  l->scale[lw + 1] = 0.0f; /* the last bias is the offset found below */
  for (size_t i = 0; i < nl; i++) {
    const mr_st_desc_t *d = &l->descs[first + 2 * i];
    size_t n = (size_t)(d->shape[0] * d->shape[1]);
    if (d->shape[0] > wmax) wmax = d->shape[0];
    if (d->shape[1] > wmax) wmax = d->shape[1];
    c.w[i] = malloc(n * sizeof(float));
    c.b[i] = malloc(d->shape[0] * sizeof(float));
    if (!c.w[i] || !c.b[i]) goto nomem;
    values(l, first + 2 * i, 0, n, c.w[i]);
    values(l, first + 2 * i + 1, 0, (size_t)d->shape[0], c.b[i]);
  }
  c.a = malloc(wmax * sizeof(float));
  c.z = malloc(wmax * sizeof(float));
  c.emb = malloc((vec > wmax ? vec : wmax) * sizeof(float));
  if (!c.a || !c.z || !c.emb) goto nomem;
  double sum = 0, sq = 0;
  for (uint64_t i = 0; i < MR_GEN_CALIB_SAMPLES; i++) {
    double y = forward(l, s, &c, i);
    sum += y;
    sq += y * y;
  }
  double mean = sum / MR_GEN_CALIB_SAMPLES;
  double var = sq / MR_GEN_CALIB_SAMPLES - mean * mean;
  double f = var > 1e-12 ? MR_GEN_LOGIT_STD / sqrt(var) : 1.0;
  l->scale[lw] = (float)(l->scale[lw] * f);
  l->shift[lw + 1] = (float)(-mean * f);
  goto done;
nomem:
  rc = mr_err_set(err, MR_ENOMEM, "out of memory calibrating the model");
done:
  for (size_t i = 0; i < nl; i++) {
    free(c.w[i]);
    free(c.b[i]);
  }
  free(c.a);
  free(c.z);
  free(c.emb);
  return rc;
}

int mr_gen_layout(const mr_gen_spec_t *s, mr_gen_layout_t *l, mr_err_t *err) {
  int rc = check_spec(s, err);
  if (rc) return rc;
  l->num_tensors = 0;
  for (size_t k = 0; k < s->num_tables; k++)
    add_tensor(l, s, 2, s->rows[k], s->dims[k], 1.0f, "emb_l.%zu.%s", k,
               "weight");
  if (s->num_bot_widths)
    add_mlp(l, s, "bot_l.%zu.%s", s->bot_widths[0], s->bot_widths + 1,
            s->num_bot_widths - 1);
  add_mlp(l, s, "top_l.%zu.%s", mr_gen_top_in(s), s->top_widths,
          s->num_top_widths);
  return calibrate(l, s, err);
}

int mr_gen_fill(const mr_gen_layout_t *l, size_t tensor, uint64_t offset,
                void *buf, size_t nbytes) {
  if (tensor >= l->num_tensors) return MR_EINVAL;
  const mr_st_desc_t *d = &l->descs[tensor];
  size_t esz = mr_dtype_size(d->dtype);
  uint64_t total = esz;
  for (size_t k = 0; k < d->ndim; k++) total *= d->shape[k];
  if (offset > total || nbytes > total - offset) return MR_EINVAL;
  enum { BLOCK = 1024 };
  float vals[BLOCK];
  unsigned char bytes[BLOCK * 4];
  unsigned char *out = buf;
  uint64_t e = offset / esz;
  size_t skip = (size_t)(offset % esz); /* a chunk may start mid-element */
  while (nbytes > 0) {
    size_t n = (skip + nbytes + esz - 1) / esz;
    if (n > BLOCK) n = BLOCK;
    values(l, tensor, e, n, vals);
    mr_f32_to_dtype(d->dtype, vals, bytes, n);
    size_t take = n * esz - skip;
    if (take > nbytes) take = nbytes;
    memcpy(out, bytes + skip, take);
    out += take;
    nbytes -= take;
    e += n;
    skip = 0;
  }
  return 0;
}

/* ---- writing ---- */

typedef struct gen_ctx {
  const mr_gen_layout_t *lay;
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *ctx;
} gen_ctx_t;

static int gen_fill(void *ctx, size_t tensor, uint64_t offset, void *buf,
                    size_t nbytes) {
  return mr_gen_fill(((gen_ctx_t *)ctx)->lay, tensor, offset, buf, nbytes);
}

static void gen_progress(void *ctx, uint64_t done, uint64_t total) {
  gen_ctx_t *g = ctx;
  if (g->progress) g->progress(g->ctx, done, total);
}

int mr_gen_write(const mr_gen_spec_t *spec, const char *path,
                 void (*progress)(void *ctx, uint64_t done, uint64_t total),
                 void *ctx, mr_err_t *err) {
  mr_gen_layout_t *lay = malloc(sizeof *lay);
  if (!lay) return mr_err_set(err, MR_ENOMEM, "out of memory");
  int rc = mr_gen_layout(spec, lay, err);
  if (!rc) {
    char seed[64];
    snprintf(seed, sizeof seed, "microrec model gen, seed %" PRIu64,
             spec->seed);
    const char *meta[] = {"interaction", mr_interaction_name(spec->interaction),
                          "source", seed};
    gen_ctx_t g = {lay, progress, ctx};
    rc = mr_st_write(path, lay->descs, lay->num_tensors, meta, 2, gen_fill,
                     gen_progress, &g, err);
  }
  free(lay);
  return rc;
}

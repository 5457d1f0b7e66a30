/* Kernel geometry from a plan, and the bank and init images from a model
 * (fpga/kernel_image.h). */
#include "fpga/kernel_image.h"

#include "fpga/planner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mr_kgeom_bank_kind(const char *name, uint32_t *kind, uint32_t *index) {
  unsigned idx = 0;
  char close = 0;
  *index = 0;
  if (sscanf(name, "HBM[%u%c", &idx, &close) == 2 && close == ']') {
    *kind = MR_KMEM_HBM;
    *index = idx;
  } else if (sscanf(name, "DDR[%u%c", &idx, &close) == 2 && close == ']') {
    *kind = MR_KMEM_DDR;
    *index = idx;
  } else if (!strncmp(name, "URAM", 4) || !strncmp(name, "BRAM", 4) ||
             !strncmp(name, "PLRAM", 5) || !strncmp(name, "on-chip", 7)) {
    *kind = MR_KMEM_ONCHIP;
  } else {
    *kind = MR_KMEM_HOST;
  }
}

uint64_t mr_kgeom_hash(const mr_kgeom_t *g) {
  mr_kgeom_t *copy = malloc(sizeof *copy);
  if (!copy) return 0;
  memcpy(copy, g, sizeof *copy);
  copy->hash = 0;
  const unsigned char *p = (const unsigned char *)copy;
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < sizeof *copy; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  free(copy);
  return h;
}

/* Lookup order: by kernel bank, then the plan's round, then plan order. */
typedef struct order {
  uint32_t kbank;
  int round;
  size_t idx;
} order_t;

static int order_cmp(const void *a, const void *b) {
  const order_t *x = a, *y = b;
  if (x->kbank != y->kbank) return x->kbank < y->kbank ? -1 : 1;
  if (x->round != y->round) return x->round < y->round ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static uint32_t pow2_floor(uint64_t v) {
  uint32_t p = 1;
  while ((uint64_t)p * 2 <= v && p < (1u << 20)) p *= 2;
  return p;
}

/* PE lanes: the MLP is a pipeline, so its throughput is that of its
 * slowest PE (multiply-adds / lanes). Greedily double the lanes of the
 * slowest layer while the budget allows. Powers of two (the on-chip weight
 * arrays are partitioned cyclically by that factor), at most the layer's
 * output width. */
static void assign_lanes(mr_kgeom_t *g) {
  mr_klayer_t *ls[2 * MR_K_MAX_LAYERS];
  uint32_t n = 0, used = 0;
  for (uint32_t i = 0; i < g->num_bot; i++) ls[n++] = &g->bot[i];
  for (uint32_t i = 0; i < g->num_top; i++) ls[n++] = &g->top[i];
  for (uint32_t i = 0; i < n; i++) {
    ls[i]->lanes = 1;
    used++;
  }
  for (;;) {
    mr_klayer_t *slow = NULL;
    uint64_t worst = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint64_t cyc = (uint64_t)ls[i]->in * ls[i]->out / ls[i]->lanes;
      if (cyc > worst) {
        worst = cyc;
        slow = ls[i];
      }
    }
    if (!slow || 2 * slow->lanes > pow2_floor(slow->out) ||
        used + slow->lanes > MR_KGEOM_LANE_BUDGET)
      break;
    used += slow->lanes;
    slow->lanes *= 2;
  }
}

static int build_layers(mr_kgeom_t *g, const mr_model_t *m, mr_err_t *err) {
  if (m->num_bot > MR_K_MAX_LAYERS || m->num_top > MR_K_MAX_LAYERS)
    return mr_err_set(err, MR_ENOTSUP,
                      "kernel: %zu bottom and %zu top layers, the kernel "
                      "holds at most %d per MLP",
                      m->num_bot, m->num_top, MR_K_MAX_LAYERS);
  uint64_t off = 0;
  g->num_bot = (uint32_t)m->num_bot;
  g->num_top = (uint32_t)m->num_top;
  for (int pass = 0; pass < 2; pass++) {
    const mr_layer_t *src = pass ? m->top : m->bot;
    mr_klayer_t *dst = pass ? g->top : g->bot;
    size_t n = pass ? m->num_top : m->num_bot;
    for (size_t i = 0; i < n; i++) {
      dst[i].in = (uint32_t)src[i].in;
      dst[i].out = (uint32_t)src[i].out;
      dst[i].relu = pass == 0 || i + 1 < n;
      dst[i].w_off = off;
      off += (uint64_t)src[i].in * src[i].out;
      dst[i].b_off = off;
      off += src[i].out;
      if (src[i].in > g->max_width) g->max_width = (uint32_t)src[i].in;
      if (src[i].out > g->max_width) g->max_width = (uint32_t)src[i].out;
    }
  }
  g->init_words = off;
  assign_lanes(g);
  return 0;
}

static int build_lookups(mr_kgeom_t *g, const mr_model_t *m,
                         const mr_plan_t *p, const uint32_t *emb_off,
                         mr_err_t *err) {
  for (size_t t = 0; t < p->num_tables; t++) {
    int b = p->tables[t].bank;
    if (b < 0 || (size_t)b >= p->num_banks)
      return mr_err_set(err, MR_EINVAL,
                        "kernel: plan table %zu is on bank %d, the plan has "
                        "banks [0, %zu)",
                        t, b, p->num_banks);
  }
  /* Tables in plan-bank order, then round. */
  order_t *ord = malloc(p->num_tables * sizeof *ord);
  if (!ord) return mr_err_set(err, MR_ENOMEM, "kernel: out of memory");
  for (size_t t = 0; t < p->num_tables; t++) {
    ord[t].kbank = (uint32_t)p->tables[t].bank;
    ord[t].round = p->tables[t].rounds;
    ord[t].idx = t;
  }
  qsort(ord, p->num_tables, sizeof *ord, order_cmp);
  /* Kernel banks: one per off-chip plan bank in use (its own port, bank0 =
   * the lowest plan bank), and one per on-chip table: each gets its own
   * URAM blocks and lookup unit, so on-chip lookups all go in parallel (as
   * the planner assumes: they are not rounds). */
  int prev = -1;
  for (size_t l = 0; l < p->num_tables; l++) {
    uint32_t pb = ord[l].kbank, kind, index;
    mr_kgeom_bank_kind(p->banks[pb].name, &kind, &index);
    if ((int)pb != prev || kind == MR_KMEM_ONCHIP) {
      if (g->num_banks >= MR_K_MAX_BANKS) {
        free(ord);
        return mr_err_set(err, MR_ENOTSUP,
                          "kernel: more than %d memory banks and on-chip "
                          "tables",
                          MR_K_MAX_BANKS);
      }
      uint32_t k = g->num_banks++;
      g->bank_plan[k] = pb;
      g->bank_mem[k] = kind;
      g->bank_index[k] = index;
      g->bank_onchip[k] = kind == MR_KMEM_ONCHIP;
      prev = (int)pb;
    }
    ord[l].kbank = g->num_banks - 1;
  }
  g->num_lookups = (uint32_t)p->num_tables;
  for (uint32_t l = 0; l < g->num_lookups; l++) {
    const mr_plan_table_t *pt = &p->tables[ord[l].idx];
    mr_klookup_t *L = &g->lookups[l];
    uint32_t k = ord[l].kbank;
    if (g->bank_count[k] == 0) g->bank_first[k] = l;
    L->bank = k;
    L->round = g->bank_count[k]++;
    L->cols = (uint32_t)(pt->col_end - pt->col_begin);
    L->num_factors = (uint32_t)pt->num_factors;
    L->rows = pt->rows;
    L->base = g->bank_words[k];
    uint64_t words;
    if (__builtin_mul_overflow(pt->rows, (uint64_t)L->cols, &words) ||
        __builtin_add_overflow(g->bank_words[k], words, &g->bank_words[k])) {
      size_t idx = ord[l].idx;
      free(ord);
      return mr_err_set(err, MR_EINVAL,
                        "kernel: plan table %zu (%llu rows x %u columns) "
                        "overflows its bank's size",
                        idx, (unsigned long long)pt->rows, L->cols);
    }
    uint64_t mult = 1;
    for (size_t f = pt->num_factors; f-- > 0;) {
      L->factor[f] = (uint32_t)pt->factors[f];
      L->mult[f] = mult;
      mult *= m->tables[pt->factors[f]].rows;
    }
    /* Column runs: [col_begin, col_end) against each factor's columns. */
    size_t pos = 0;
    for (size_t f = 0; f < pt->num_factors; f++) {
      size_t dim = m->tables[pt->factors[f]].dim;
      size_t lo = pt->col_begin > pos ? pt->col_begin : pos;
      size_t hi = pt->col_end < pos + dim ? pt->col_end : pos + dim;
      if (lo < hi) {
        uint32_t s = L->num_segs++;
        L->seg_src[s] = (uint32_t)(lo - pt->col_begin);
        L->seg_len[s] = (uint32_t)(hi - lo);
        L->seg_dst[s] = emb_off[pt->factors[f]] + (uint32_t)(lo - pos);
      }
      pos += dim;
    }
  }
  free(ord);
  for (uint32_t k = 0; k < g->num_banks; k++)
    if (g->bank_count[k] > g->max_rounds) g->max_rounds = g->bank_count[k];
  return 0;
}

int mr_kgeom_build(mr_kgeom_t *g, const mr_model_t *m, const mr_plan_t *p,
                   mr_err_t *err) {
  if (!g || !m || !p)
    return mr_err_set(err, MR_EINVAL, "kernel geometry: NULL %s",
                      !g ? "geometry" : !m ? "model" : "plan");
  memset(g, 0, sizeof *g);
  g->version = MR_KGEOM_VERSION;
  if (m->num_tables == 0 || m->num_tables > MR_K_MAX_LOGICAL)
    return mr_err_set(err, MR_ENOTSUP,
                      "kernel: %zu embedding tables, the kernel takes 1 to "
                      "%d",
                      m->num_tables, MR_K_MAX_LOGICAL);
  if (p->num_logical != m->num_tables)
    return mr_err_set(err, MR_EINVAL,
                      "kernel: plan made for %zu tables, the model has %zu",
                      p->num_logical, m->num_tables);
  if (p->num_tables == 0 || p->num_tables > MR_K_MAX_LOOKUPS)
    return mr_err_set(err, MR_ENOTSUP,
                      "kernel: the plan has %zu physical tables, the kernel "
                      "takes 1 to %d",
                      p->num_tables, MR_K_MAX_LOOKUPS);
  uint32_t emb_off[MR_K_MAX_LOGICAL];
  uint64_t width = 0;
  for (size_t k = 0; k < m->num_tables; k++) {
    if (m->tables[k].rows > UINT32_MAX)
      return mr_err_set(err, MR_ENOTSUP,
                        "kernel: table %zu has %zu rows; the kernel takes "
                        "32-bit ids (at most %u rows)",
                        k, m->tables[k].rows, UINT32_MAX);
    emb_off[k] = (uint32_t)width;
    width += m->tables[k].dim;
  }
  if (width > UINT32_MAX / 2)
    return mr_err_set(err, MR_ENOTSUP, "kernel: embeddings too wide");
  g->interaction = m->interaction == MR_INTERACT_CAT ? 1u : 0u;
  g->num_logical = (uint32_t)m->num_tables;
  g->num_dense = (uint32_t)m->num_dense;
  g->emb_width = (uint32_t)width;
  g->emb_dim = g->interaction ? 0 : (uint32_t)m->tables[0].dim;
  g->bot_width = m->num_bot ? (uint32_t)m->bot[m->num_bot - 1].out : 0;
  g->top_in = (uint32_t)mr_model_top_in(m);
  g->max_width = g->emb_width;
  if (g->top_in > g->max_width) g->max_width = g->top_in;
  if (g->num_dense > g->max_width) g->max_width = g->num_dense;
  int rc = build_layers(g, m, err);
  if (rc == 0) rc = build_lookups(g, m, p, emb_off, err);
  if (rc < 0) return rc;
  /* On-chip banks live in the init image after the weights. */
  for (uint32_t k = 0; k < g->num_banks; k++)
    if (g->bank_onchip[k]) {
      g->bank_init_off[k] = g->init_words;
      g->init_words += g->bank_words[k];
    }
  g->hash = mr_kgeom_hash(g);
  return 0;
}

void mr_kshape_from_spec(mr_kshape_t *s, const mr_gen_spec_t *spec) {
  memset(s, 0, sizeof *s);
  s->m.interaction = spec->interaction;
  s->m.num_tables = spec->num_tables;
  s->m.tables = s->tables;
  for (size_t k = 0; k < spec->num_tables && k < MR_GEN_MAX_TABLES; k++) {
    s->tables[k].rows = spec->rows[k];
    s->tables[k].dim = spec->dims[k];
  }
  s->m.bot = s->bot;
  s->m.top = s->top;
  if (spec->num_bot_widths > 1) {
    s->m.num_dense = spec->bot_widths[0];
    s->m.num_bot = spec->num_bot_widths - 1;
    for (size_t i = 0; i < s->m.num_bot; i++) {
      s->bot[i].in = spec->bot_widths[i];
      s->bot[i].out = spec->bot_widths[i + 1];
    }
  }
  size_t in = mr_model_top_in(&s->m);
  s->m.num_top = spec->num_top_widths;
  for (size_t i = 0; i < spec->num_top_widths; i++) {
    s->top[i].in = in;
    s->top[i].out = spec->top_widths[i];
    in = spec->top_widths[i];
  }
}

int mr_kshape_from_model(mr_kshape_t *s, const mr_model_t *m, mr_err_t *err) {
  memset(s, 0, sizeof *s);
  if (m->num_tables > MR_GEN_MAX_TABLES || m->num_bot > MR_GEN_MAX_LAYERS ||
      m->num_top > MR_GEN_MAX_LAYERS)
    return mr_err_set(err, MR_ENOTSUP,
                      "kernel: %zu tables, %zu + %zu layers; at most %d "
                      "tables and %d layers per MLP",
                      m->num_tables, m->num_bot, m->num_top,
                      MR_GEN_MAX_TABLES, MR_GEN_MAX_LAYERS);
  s->m.interaction = m->interaction;
  s->m.num_dense = m->num_dense;
  s->m.num_tables = m->num_tables;
  s->m.num_bot = m->num_bot;
  s->m.num_top = m->num_top;
  s->m.tables = s->tables;
  s->m.bot = s->bot;
  s->m.top = s->top;
  for (size_t k = 0; k < m->num_tables; k++) {
    s->tables[k].rows = m->tables[k].rows;
    s->tables[k].dim = m->tables[k].dim;
  }
  for (size_t i = 0; i < m->num_bot; i++) {
    s->bot[i].in = m->bot[i].in;
    s->bot[i].out = m->bot[i].out;
  }
  for (size_t i = 0; i < m->num_top; i++) {
    s->top[i].in = m->top[i].in;
    s->top[i].out = m->top[i].out;
  }
  return 0;
}

/* ---- images ---- */

/* Writes physical row r of lookup L (its held columns) to dst. */
static void fill_row(const mr_klookup_t *L, const mr_model_t *m, uint64_t r,
                     const uint32_t *emb_off, float *dst) {
  for (uint32_t s = 0; s < L->num_segs; s++) {
    /* The segment's factor: the one whose columns contain seg_dst. */
    for (uint32_t f = 0; f < L->num_factors; f++) {
      uint32_t t = L->factor[f];
      uint32_t lo = emb_off[t], hi = lo + (uint32_t)m->tables[t].dim;
      if (L->seg_dst[s] < lo || L->seg_dst[s] >= hi) continue;
      uint64_t id = (r / L->mult[f]) % m->tables[t].rows;
      const float *src = m->tables[t].data + id * m->tables[t].dim +
                         (L->seg_dst[s] - lo);
      memcpy(dst + L->seg_src[s], src, L->seg_len[s] * sizeof(float));
      break;
    }
  }
}

static void fill_init(const mr_kgeom_t *g, const mr_model_t *m, float *init) {
  for (int pass = 0; pass < 2; pass++) {
    const mr_layer_t *src = pass ? m->top : m->bot;
    const mr_klayer_t *kl = pass ? g->top : g->bot;
    uint32_t n = pass ? g->num_top : g->num_bot;
    for (uint32_t i = 0; i < n; i++) {
      float *wt = init + kl[i].w_off;
      for (uint32_t o = 0; o < kl[i].out; o++)
        for (uint32_t j = 0; j < kl[i].in; j++)
          wt[(uint64_t)j * kl[i].out + o] =
              src[i].weight[(uint64_t)o * kl[i].in + j];
      memcpy(init + kl[i].b_off, src[i].bias, kl[i].out * sizeof(float));
    }
  }
}

int mr_kimage_build(mr_kimage_t *img, const mr_model_t *m, const mr_plan_t *p,
                    mr_err_t *err) {
  if (!img) return mr_err_set(err, MR_EINVAL, "kernel image: NULL image");
  memset(img, 0, sizeof *img);
  img->geom = malloc(sizeof *img->geom);
  if (!img->geom) return mr_err_set(err, MR_ENOMEM, "kernel: out of memory");
  int rc = mr_kgeom_build(img->geom, m, p, err);
  if (rc < 0) {
    mr_kimage_free(img);
    return rc;
  }
  const mr_kgeom_t *g = img->geom;
  uint32_t emb_off[MR_K_MAX_LOGICAL];
  for (size_t k = 0, w = 0; k < m->num_tables; w += m->tables[k++].dim)
    emb_off[k] = (uint32_t)w;
  img->banks = calloc(g->num_banks, sizeof *img->banks);
  img->init = malloc((g->init_words ? g->init_words : 1) * sizeof(float));
  if (!img->banks || !img->init) goto oom;
  img->bytes = g->init_words * sizeof(float);
  for (uint32_t k = 0; k < g->num_banks; k++) {
    if (g->bank_onchip[k]) {
      img->banks[k] = img->init + g->bank_init_off[k];
      continue;
    }
    img->banks[k] = malloc((g->bank_words[k] ? g->bank_words[k] : 1) *
                           sizeof(float));
    if (!img->banks[k]) goto oom;
    img->bytes += g->bank_words[k] * sizeof(float);
  }
  fill_init(g, m, img->init);
  for (uint32_t l = 0; l < g->num_lookups; l++) {
    const mr_klookup_t *L = &g->lookups[l];
    float *dst = img->banks[L->bank] + L->base;
    if (L->num_factors == 1 && L->cols == m->tables[L->factor[0]].dim) {
      memcpy(dst, m->tables[L->factor[0]].data,
             L->rows * L->cols * sizeof(float));
      continue;
    }
    for (uint64_t r = 0; r < L->rows; r++)
      fill_row(L, m, r, emb_off, dst + r * L->cols);
  }
  return 0;
oom:
  mr_kimage_free(img);
  return mr_err_set(err, MR_ENOMEM,
                    "kernel: out of memory for the bank images");
}

void mr_kimage_free(mr_kimage_t *img) {
  if (!img) return;
  if (img->banks && img->geom)
    for (uint32_t k = 0; k < img->geom->num_banks; k++)
      if (!img->geom->bank_onchip[k]) free(img->banks[k]);
  free(img->banks);
  free(img->init);
  free(img->geom);
  memset(img, 0, sizeof *img);
}

/* ---- engine info ---- */

int mr_kinfo_fill(mr_kinfo_t *ki, const mr_model_t *m, const char *backend,
                  size_t max_batch, uint64_t resident_bytes, mr_err_t *err) {
  size_t nt = m->num_tables, nb = m->num_bot, ntop = m->num_top;
  memset(ki, 0, sizeof *ki);
  ki->rows = calloc(nt + 1, sizeof *ki->rows);
  ki->dims = calloc(nt + 1, sizeof *ki->dims);
  ki->bot_in = calloc(nb + 1, sizeof *ki->bot_in);
  ki->bot_out = calloc(nb + 1, sizeof *ki->bot_out);
  ki->top_in = calloc(ntop + 1, sizeof *ki->top_in);
  ki->top_out = calloc(ntop + 1, sizeof *ki->top_out);
  if (!ki->rows || !ki->dims || !ki->bot_in || !ki->bot_out || !ki->top_in ||
      !ki->top_out) {
    mr_kinfo_free(ki);
    return mr_err_set(err, MR_ENOMEM, "%s engine: out of memory", backend);
  }
  for (size_t t = 0; t < nt; t++) {
    ki->rows[t] = m->tables[t].rows;
    ki->dims[t] = m->tables[t].dim;
  }
  for (size_t i = 0; i < nb; i++) {
    ki->bot_in[i] = m->bot[i].in;
    ki->bot_out[i] = m->bot[i].out;
  }
  for (size_t i = 0; i < ntop; i++) {
    ki->top_in[i] = m->top[i].in;
    ki->top_out[i] = m->top[i].out;
  }
  ki->info = (mr_engine_info_t){
      .backend = backend,
      .simd = "fp32 dataflow",
      .interaction = m->interaction,
      .num_dense = m->num_dense,
      .num_tables = nt,
      .table_rows = ki->rows,
      .table_dims = ki->dims,
      .num_bot = nb,
      .num_top = ntop,
      .bot_in = ki->bot_in,
      .bot_out = ki->bot_out,
      .top_in = ki->top_in,
      .top_out = ki->top_out,
      .param_bytes = mr_model_param_bytes(m),
      .resident_bytes = resident_bytes,
      .max_batch = max_batch,
  };
  return 0;
}

void mr_kinfo_free(mr_kinfo_t *ki) {
  if (!ki) return;
  free(ki->rows);
  free(ki->dims);
  free(ki->bot_in);
  free(ki->bot_out);
  free(ki->top_in);
  free(ki->top_out);
  memset(ki, 0, sizeof *ki);
}

/* ---- plan ---- */

int mr_kplan_pick(mr_plan_t *own, const mr_plan_t **plan, const mr_model_t *m,
                  const mr_engine_opts_t *o, const char *backend,
                  mr_err_t *err) {
  memset(own, 0, sizeof *own);
  *plan = NULL;
  if (o && o->plan) {
    int rc = mr_plan_check(o->plan, m, err);
    if (rc < 0) {
      mr_err_prefix(err, "%s engine: the given plan does not fit the model",
                    backend);
      return rc;
    }
    *plan = o->plan;
    return 0;
  }
  /* The card's plan: the same bank images the U280 would get. Without
   * products the planner still spreads the tables over the banks. */
  mr_plan_opts_t po;
  mr_plan_opts_default(&po);
  po.no_products = o && o->no_products;
  int rc = mr_plan_for_model(own, m, "u280", &po, err);
  if (rc < 0) {
    mr_err_prefix(err, "%s engine: planning for the U280", backend);
    return rc;
  }
  *plan = own;
  return 0;
}

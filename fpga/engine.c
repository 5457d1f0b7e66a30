/* The generic engine layer (fpga/engine.h): the backend registry, input
 * validation shared by every backend, and chunking runs to max_batch. */
#include "fpga/engine.h"

#include <string.h>

/* The registry: one table of functions per backend. */
extern const mr_backend_t mr_cpu_backend, mr_fpga_sim_backend, mr_fpga_backend;

static const mr_backend_t *const registry[] = {
    &mr_cpu_backend, &mr_fpga_sim_backend, &mr_fpga_backend};

const char *const mr_backend_names[] = {"cpu", "fpga-sim", "fpga", NULL};

#define REGISTRY_LEN (sizeof registry / sizeof registry[0])
#define DEFAULT_MAX_BATCH 256

const mr_backend_t *mr_backend_find(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < REGISTRY_LEN; i++)
    if (strcmp(registry[i]->name, name) == 0) return registry[i];
  return NULL;
}

static int check_layers(const char *which, const mr_layer_t *l, size_t n,
                        size_t first_in, mr_err_t *err) {
  for (size_t i = 0; i < n; i++) {
    size_t want = i ? l[i - 1].out : first_in;
    if (l[i].in != want || l[i].out == 0 || !l[i].weight || !l[i].bias)
      return mr_err_set(err, MR_EINVAL,
                        "model: %s_l.%zu is %zu x %zu%s, expected %zu inputs, "
                        "at least 1 output, weight and bias",
                        which, 2 * i, l[i].out, l[i].in,
                        l[i].weight && l[i].bias ? "" : " without data", want);
  }
  return 0;
}

/* What every backend relies on to stay in bounds (mr_model_validate checks
 * the same for loaded models; hand-built ones come here directly). */
static int check_model(const mr_model_t *m, mr_err_t *err) {
  if (m->interaction != MR_INTERACT_DOT && m->interaction != MR_INTERACT_CAT)
    return mr_err_set(err, MR_EINVAL, "model: interaction %d, expected dot or cat",
                      (int)m->interaction);
  if (m->num_tables == 0 || !m->tables)
    return mr_err_set(err, MR_EINVAL, "model: no embedding tables, expected at least 1");
  for (size_t t = 0; t < m->num_tables; t++) {
    const mr_table_t *tb = &m->tables[t];
    if (tb->rows == 0 || tb->dim == 0 || !tb->data)
      return mr_err_set(err, MR_EINVAL,
                        "model: emb_l.%zu is %zu x %zu%s, expected a non-empty "
                        "table with data",
                        t, tb->rows, tb->dim, tb->data ? "" : " without data");
    if (m->interaction == MR_INTERACT_DOT && tb->dim != m->tables[0].dim)
      return mr_err_set(err, MR_EINVAL,
                        "model: dot interaction needs equal widths, emb_l.%zu "
                        "has %zu, emb_l.0 has %zu",
                        t, tb->dim, m->tables[0].dim);
  }
  if ((m->num_bot == 0) != (m->num_dense == 0) || (m->num_bot && !m->bot))
    return mr_err_set(err, MR_EINVAL,
                      "model: %zu dense inputs with %zu bottom layers, expected "
                      "both or neither",
                      m->num_dense, m->num_bot);
  int rc = check_layers("bot", m->bot, m->num_bot, m->num_dense, err);
  if (rc < 0) return rc;
  if (m->num_bot && m->interaction == MR_INTERACT_DOT &&
      m->bot[m->num_bot - 1].out != m->tables[0].dim)
    return mr_err_set(err, MR_EINVAL,
                      "model: dot interaction needs the bottom MLP's output "
                      "(%zu) as wide as the tables (%zu)",
                      m->bot[m->num_bot - 1].out, m->tables[0].dim);
  if (m->num_top == 0 || !m->top)
    return mr_err_set(err, MR_EINVAL, "model: no top MLP, expected at least 1 layer");
  size_t t = m->num_tables, xw = m->num_bot ? m->bot[m->num_bot - 1].out : 0;
  size_t top_in = xw;
  if (m->interaction == MR_INTERACT_DOT) {
    size_t n = t + (xw ? 1 : 0);
    top_in += n * (n - 1) / 2;
  } else {
    for (size_t k = 0; k < t; k++) top_in += m->tables[k].dim;
  }
  rc = check_layers("top", m->top, m->num_top, top_in, err);
  if (rc < 0) return rc;
  if (m->top[m->num_top - 1].out != 1)
    return mr_err_set(err, MR_EINVAL, "model: the top MLP ends in %zu outputs, expected 1",
                      m->top[m->num_top - 1].out);
  return 0;
}

int mr_engine_open(mr_engine_t **out, const mr_model_t *m,
                   const mr_engine_opts_t *o, mr_err_t *err) {
  if (!out || !m)
    return mr_err_set(err, MR_EINVAL, "engine open: NULL %s",
                      out ? "model" : "output pointer");
  *out = NULL;
  int rc = check_model(m, err);
  if (rc < 0) return rc;
  mr_engine_opts_t opts = {0};
  if (o) opts = *o;
  if (!opts.backend) opts.backend = "cpu";
  if (opts.max_batch == 0) opts.max_batch = DEFAULT_MAX_BATCH;
  const mr_backend_t *b = mr_backend_find(opts.backend);
  if (!b) {
    char names[128] = "";
    for (size_t i = 0; mr_backend_names[i]; i++) {
      if (i) strncat(names, ", ", sizeof names - strlen(names) - 1);
      strncat(names, mr_backend_names[i], sizeof names - strlen(names) - 1);
    }
    return mr_err_set(err, MR_ENOTSUP,
                      "engine backend '%s' is not built in (available: %s)",
                      opts.backend, names);
  }
  if (b->abi != MR_BACKEND_ABI)
    return mr_err_set(err, MR_ENOTSUP,
                      "engine backend '%s' has ABI %d, expected %d", b->name,
                      b->abi, MR_BACKEND_ABI);
  mr_engine_t *e = NULL;
  rc = b->open(&e, m, &opts, err);
  if (rc < 0) return rc;
  e->backend = b;
  *out = e;
  return 0;
}

void mr_engine_close(mr_engine_t *e) {
  if (e) e->backend->close(e);
}

const mr_engine_info_t *mr_engine_info(const mr_engine_t *e) {
  return e ? e->backend->info(e) : NULL;
}

int mr_scratch_new(mr_engine_t *e, mr_scratch_t **out, mr_err_t *err) {
  if (!e || !out)
    return mr_err_set(err, MR_EINVAL, "scratch new: NULL %s",
                      e ? "output pointer" : "engine");
  *out = NULL;
  return e->backend->scratch_new(e, out, err);
}

void mr_scratch_free(mr_engine_t *e, mr_scratch_t *s) {
  if (e && s) e->backend->scratch_free(e, s);
}

/* True when the float's exponent is all ones (NaN or +-Inf). */
static inline int nonfinite(float v) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  return (u & 0x7f800000u) == 0x7f800000u;
}

int mr_engine_check(const mr_engine_t *e, size_t n, const float *dense,
                    const int64_t *ids, mr_err_t *err) {
  if (!e) return mr_err_set(err, MR_EINVAL, "engine check: NULL engine");
  const mr_engine_info_t *in = e->backend->info(e);
  size_t nd = in->num_dense, nt = in->num_tables;
  if (n == 0) return 0;
  if (nd > 0 && !dense)
    return mr_err_set(err, MR_EINVAL,
                      "no dense input, expected %zu values per sample", nd);
  if (nt > 0 && !ids)
    return mr_err_set(err, MR_EINVAL, "no ids, expected %zu per sample", nt);

  /* A branch-free pass first (vectorizes); the slow search only on error. */
  int bad = 0;
  for (size_t i = 0; i < n * nd; i++) bad |= nonfinite(dense[i]);
  if (bad)
    for (size_t i = 0; i < n * nd; i++)
      if (nonfinite(dense[i]))
        return mr_err_set(err, MR_EINVAL,
                          "sample %zu, dense feature %zu: %g is not a finite "
                          "number (NaN and Inf are rejected)",
                          i / nd, i % nd, (double)dense[i]);
  bad = 0;
  for (size_t s = 0; s < n; s++)
    for (size_t t = 0; t < nt; t++)
      bad |= (uint64_t)ids[s * nt + t] >= in->table_rows[t];
  if (bad)
    for (size_t s = 0; s < n; s++)
      for (size_t t = 0; t < nt; t++) {
        int64_t id = ids[s * nt + t];
        if ((uint64_t)id >= in->table_rows[t])
          return mr_err_set(err, MR_ERANGE,
                            "sample %zu, table %zu: id %lld out of range "
                            "[0, %llu)",
                            s, t, (long long)id,
                            (unsigned long long)in->table_rows[t]);
      }
  return 0;
}

int mr_engine_run(mr_engine_t *e, mr_scratch_t *s, size_t n,
                  const float *dense, const int64_t *ids, float *logits,
                  mr_err_t *err) {
  if (!e || !s)
    return mr_err_set(err, MR_EINVAL, "engine run: NULL %s",
                      e ? "scratch" : "engine");
  if (n == 0) return 0;
  if (!logits) return mr_err_set(err, MR_EINVAL, "engine run: NULL logits");
  int rc = mr_engine_check(e, n, dense, ids, err);
  if (rc < 0) return rc;
  const mr_engine_info_t *in = e->backend->info(e);
  size_t nd = in->num_dense, nt = in->num_tables, mb = in->max_batch;
  for (size_t off = 0; off < n; off += mb) {
    size_t m = n - off < mb ? n - off : mb;
    rc = e->backend->run(e, s, m, nd ? dense + off * nd : NULL,
                         nt ? ids + off * nt : NULL, logits + off, err);
    if (rc < 0) return rc;
  }
  return 0;
}

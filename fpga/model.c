/* Loading a DLRM model: map the file, parse the container, find the DLRM
 * names, convert what is not aligned F32, and check that the shapes make one
 * network. */
#include "fpga/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fpga/safetensors.h"

const char *mr_interaction_name(mr_interaction_t i) {
  switch (i) {
  case MR_INTERACT_DOT: return "dot";
  case MR_INTERACT_CAT: return "cat";
  }
  return "?";
}

/* ---- names ---- */

/* Matches "<prefix><index>.<suffix>" with a canonical decimal index (no
 * leading zeros). Returns the suffix or NULL; an absurdly long index becomes
 * UINT64_MAX, which is always reported as a gap. */
static const char *match_name(const char *name, const char *prefix,
                              uint64_t *idx) {
  size_t pl = strlen(prefix);
  if (strncmp(name, prefix, pl) != 0) return NULL;
  const char *p = name + pl;
  if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
    return NULL;
  uint64_t v = 0;
  size_t digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++)
    v = digits < 18 ? v * 10 + (uint64_t)(*p - '0') : UINT64_MAX;
  if (*p != '.') return NULL;
  *idx = v;
  return p + 1;
}

/* Where each DLRM tensor was found; arrays are indexed by table or layer
 * and sized by the number of tensors, which bounds any gap-free index. */
typedef struct slots {
  size_t n;
  const mr_st_tensor_t **emb;
  const mr_st_tensor_t **w[2], **b[2]; /* [0] bottom, [1] top */
  const mr_st_tensor_t *stray[3];      /* an index too large to be gap-free */
} slots_t;

static const char *const mlp_prefix[2] = {"bot_l.", "top_l."};

static int classify(slots_t *s, const mr_st_tensor_t *t, mr_err_t *err) {
  uint64_t k;
  const char *suf = match_name(t->name, "emb_l.", &k);
  if (suf) {
    if (strcmp(suf, "weight") != 0) return 0;
    if (k < s->n) s->emb[k] = t;
    else if (!s->stray[2]) s->stray[2] = t;
    return 0;
  }
  for (int j = 0; j < 2; j++) {
    if (!(suf = match_name(t->name, mlp_prefix[j], &k))) continue;
    int is_w = !strcmp(suf, "weight");
    if (!is_w && strcmp(suf, "bias") != 0) return 0;
    if (k % 2)
      return mr_err_set(err, MR_EFORMAT,
                        "tensor %s: odd layer index (expected Linear layers "
                        "at %s0, %s2, %s4.., with ReLUs between)",
                        t->name, mlp_prefix[j], mlp_prefix[j], mlp_prefix[j]);
    if (k / 2 < s->n) (is_w ? s->w[j] : s->b[j])[k / 2] = t;
    else if (!s->stray[j]) s->stray[j] = t;
    return 0;
  }
  return 0;
}

/* Counts tables and layers; a gap is an error naming the missing tensor. */
static int count_parts(const slots_t *s, size_t *num_tables, size_t nl[2],
                       mr_err_t *err) {
  size_t t = 0;
  while (t < s->n && s->emb[t]) t++;
  if (t == 0)
    return mr_err_set(err, MR_EFORMAT,
                      "missing tensor emb_l.0.weight (expected embedding "
                      "tables emb_l.0.weight, emb_l.1.weight, ..)");
  for (size_t k = t + 1; k < s->n; k++)
    if (s->emb[k])
      return mr_err_set(err, MR_EFORMAT,
                        "missing tensor emb_l.%zu.weight (found %s; tables "
                        "must be numbered without gaps)",
                        t, s->emb[k]->name);
  if (s->stray[2])
    return mr_err_set(err, MR_EFORMAT,
                      "missing tensor emb_l.%zu.weight (found %s; tables must "
                      "be numbered without gaps)",
                      t, s->stray[2]->name);
  *num_tables = t;
  for (int j = 0; j < 2; j++) {
    const char *p = mlp_prefix[j];
    size_t l = 0;
    while (l < s->n && s->w[j][l]) l++;
    for (size_t i = 0; i < l; i++)
      if (!s->b[j][i])
        return mr_err_set(err, MR_EFORMAT,
                          "missing layer %s%zu.bias (%s%zu.weight has no "
                          "bias)",
                          p, 2 * i, p, 2 * i);
    const mr_st_tensor_t *after = s->stray[j];
    for (size_t i = l; i < s->n && !after; i++)
      after = s->w[j][i] ? s->w[j][i] : s->b[j][i];
    if (after)
      return mr_err_set(err, MR_EFORMAT,
                        "missing layer %s%zu.weight (found %s; layers must be "
                        "numbered 0, 2, 4.. without gaps)",
                        p, 2 * l, after->name);
    nl[j] = l;
  }
  return 0;
}

/* ---- tensors to floats ---- */

static int check_dims(const mr_st_tensor_t *t, size_t nd, const char *what,
                      mr_err_t *err) {
  if (t->ndim == nd) return 0;
  return mr_err_set(err, MR_EFORMAT,
                    "tensor %s: %zu dims (expected %zu: %s)", t->name, t->ndim,
                    nd, what);
}

/* Aligned F32 is used in place; anything else is converted into a buffer
 * the model owns. */
static int floats(mr_model_t *m, const mr_st_tensor_t *t, const float **out,
                  mr_err_t *err) {
  if (t->dtype == MR_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
    *out = t->data;
    return 0;
  }
  size_t count = (size_t)(t->nbytes / mr_dtype_size(t->dtype));
  float *buf = malloc(count ? count * sizeof(float) : 1);
  if (!buf)
    return mr_err_set(err, MR_ENOMEM,
                      "tensor %s: out of memory converting %s to F32 (%zu "
                      "floats)",
                      t->name, mr_dtype_name(t->dtype), count);
  mr_dtype_to_f32(t->dtype, t->data, buf, count);
  m->owned_[m->num_owned_++] = buf;
  *out = buf;
  return 0;
}

static int build_layers(mr_model_t *m, const slots_t *s, int j,
                        mr_layer_t *layers, size_t nl, mr_err_t *err) {
  int rc;
  for (size_t i = 0; i < nl; i++) {
    const mr_st_tensor_t *w = s->w[j][i], *b = s->b[j][i];
    if ((rc = check_dims(w, 2, "[out, in]", err)) ||
        (rc = check_dims(b, 1, "[out]", err)))
      return rc;
    layers[i].out = (size_t)w->shape[0];
    layers[i].in = (size_t)w->shape[1];
    if (b->shape[0] != w->shape[0])
      return mr_err_set(err, MR_EFORMAT,
                        "tensor %s: shape [%zu] (expected [%zu], the out "
                        "width of %s)",
                        b->name, (size_t)b->shape[0], layers[i].out, w->name);
    if ((rc = floats(m, w, &layers[i].weight, err)) ||
        (rc = floats(m, b, &layers[i].bias, err)))
      return rc;
  }
  return 0;
}

static int build(mr_model_t *m, const mr_st_file_t *st, const slots_t *s,
                 mr_err_t *err) {
  const char *inter = mr_st_meta(st, "interaction");
  if (!inter || !strcmp(inter, "dot")) m->interaction = MR_INTERACT_DOT;
  else if (!strcmp(inter, "cat")) m->interaction = MR_INTERACT_CAT;
  else
    return mr_err_set(err, MR_EFORMAT,
                      "__metadata__.interaction is \"%s\" (expected \"dot\" "
                      "or \"cat\")",
                      inter);
  size_t nl[2];
  int rc;
  if ((rc = count_parts(s, &m->num_tables, nl, err))) return rc;
  m->num_bot = nl[0];
  m->num_top = nl[1];
  m->tables = calloc(m->num_tables, sizeof *m->tables);
  m->bot = calloc(nl[0] ? nl[0] : 1, sizeof *m->bot);
  m->top = calloc(nl[1] ? nl[1] : 1, sizeof *m->top);
  m->owned_ = calloc(m->num_tables + 2 * (nl[0] + nl[1]), sizeof *m->owned_);
  if (!m->tables || !m->bot || !m->top || !m->owned_)
    return mr_err_set(err, MR_ENOMEM, "out of memory for the model");
  for (size_t k = 0; k < m->num_tables; k++) {
    const mr_st_tensor_t *t = s->emb[k];
    if ((rc = check_dims(t, 2, "[rows, dim]", err))) return rc;
    m->tables[k].rows = (size_t)t->shape[0];
    m->tables[k].dim = (size_t)t->shape[1];
    if ((rc = floats(m, t, &m->tables[k].data, err))) return rc;
  }
  if ((rc = build_layers(m, s, 0, m->bot, nl[0], err)) ||
      (rc = build_layers(m, s, 1, m->top, nl[1], err)))
    return rc;
  m->num_dense = nl[0] ? m->bot[0].in : 0;
  return mr_model_validate(m, err);
}

static int open_parsed(mr_model_t *m, const mr_st_file_t *st, mr_err_t *err) {
  slots_t s = {.n = st->num_tensors};
  size_t n = s.n ? s.n : 1;
  const mr_st_tensor_t **all = calloc(5 * n, sizeof *all);
  if (!all) return mr_err_set(err, MR_ENOMEM, "out of memory for the model");
  s.emb = all;
  s.w[0] = all + n;
  s.b[0] = all + 2 * n;
  s.w[1] = all + 3 * n;
  s.b[1] = all + 4 * n;
  int rc = 0;
  for (size_t i = 0; i < st->num_tensors && !rc; i++)
    rc = classify(&s, &st->tensors[i], err);
  if (!rc) rc = build(m, st, &s, err);
  free(all);
  return rc;
}

int mr_model_open_buffer(mr_model_t *m, const void *buf, size_t len,
                         mr_err_t *err) {
  memset(m, 0, sizeof *m);
  mr_st_file_t st;
  int rc = mr_st_parse(&st, buf, len, err);
  if (rc) return rc;
  rc = open_parsed(m, &st, err);
  mr_st_free(&st);
  if (rc) mr_model_close(m);
  return rc;
}

int mr_model_open(mr_model_t *m, const char *path, mr_err_t *err) {
  memset(m, 0, sizeof *m);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mr_err_set(err, -errno, "%s: %s", path, strerror(errno));
  struct stat sb;
  int rc = 0;
  if (fstat(fd, &sb) != 0) {
    rc = mr_err_set(err, -errno, "%s: %s", path, strerror(errno));
  } else if (S_ISDIR(sb.st_mode)) {
    rc = mr_err_set(err, -EISDIR, "%s: is a directory (expected a "
                    ".safetensors file)", path);
  } else if (!S_ISREG(sb.st_mode)) {
    rc = mr_err_set(err, MR_EINVAL, "%s: not a regular file", path);
  } else if (sb.st_size < 8) {
    /* Too short to map usefully; let the parser word the error. */
    char head[8];
    ssize_t got = pread(fd, head, sizeof head, 0);
    rc = mr_model_open_buffer(m, head, got > 0 ? (size_t)got : 0, err);
    if (rc) mr_err_prefix(err, "%s", path);
  } else if ((uint64_t)sb.st_size > SIZE_MAX) {
    rc = mr_err_set(err, MR_EINVAL, "%s: too large to map", path);
  } else {
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      rc = mr_err_set(err, -errno, "%s: mmap: %s", path, strerror(errno));
    } else if ((rc = mr_model_open_buffer(m, map, len, err))) {
      munmap(map, len);
      mr_err_prefix(err, "%s", path);
    } else {
      m->map_ = map;
      m->map_len_ = len;
    }
  }
  close(fd);
  return rc;
}

void mr_model_close(mr_model_t *m) {
  if (!m) return;
  for (size_t i = 0; i < m->num_owned_; i++) free(m->owned_[i]);
  free(m->owned_);
  free(m->tables);
  free(m->bot);
  free(m->top);
  if (m->map_) munmap(m->map_, m->map_len_);
  memset(m, 0, sizeof *m);
}

/* ---- structure ---- */

size_t mr_model_top_in(const mr_model_t *m) {
  size_t dx = m->num_bot ? m->bot[m->num_bot - 1].out : 0;
  if (m->interaction == MR_INTERACT_DOT) {
    size_t n = m->num_tables + (m->num_bot ? 1 : 0);
    return dx + (n ? n * (n - 1) / 2 : 0);
  }
  size_t w = dx;
  for (size_t k = 0; k < m->num_tables; k++) w += m->tables[k].dim;
  return w;
}

uint64_t mr_model_param_bytes(const mr_model_t *m) {
  uint64_t n = 0;
  for (size_t k = 0; k < m->num_tables; k++)
    n += (uint64_t)m->tables[k].rows * m->tables[k].dim;
  for (size_t i = 0; i < m->num_bot; i++)
    n += (uint64_t)m->bot[i].out * (m->bot[i].in + 1);
  for (size_t i = 0; i < m->num_top; i++)
    n += (uint64_t)m->top[i].out * (m->top[i].in + 1);
  return n * sizeof(float);
}

static int check_mlp(const mr_layer_t *l, size_t n, const char *p,
                     mr_err_t *err) {
  for (size_t i = 0; i < n; i++) {
    if (!l[i].in || !l[i].out)
      return mr_err_set(err, MR_EFORMAT,
                        "%s%zu.weight is [%zu, %zu] (expected non-zero "
                        "widths)",
                        p, 2 * i, l[i].out, l[i].in);
    if (!l[i].weight || !l[i].bias)
      return mr_err_set(err, MR_EINVAL, "%s%zu has no data", p, 2 * i);
    if (i > 0 && l[i].in != l[i - 1].out)
      return mr_err_set(err, MR_EFORMAT,
                        "%s%zu.weight has input width %zu but %s%zu.weight "
                        "outputs %zu (layers must chain)",
                        p, 2 * i, l[i].in, p, 2 * i - 2, l[i - 1].out);
  }
  return 0;
}

static int check_tables(const mr_model_t *m, mr_err_t *err) {
  if (!m->num_tables || !m->tables)
    return mr_err_set(err, MR_EFORMAT,
                      "no embedding tables (expected emb_l.0.weight)");
  for (size_t k = 0; k < m->num_tables; k++) {
    const mr_table_t *t = &m->tables[k];
    if (!t->rows || !t->dim)
      return mr_err_set(err, MR_EFORMAT,
                        "emb_l.%zu.weight is [%zu, %zu] (expected at least "
                        "one row of width >= 1)",
                        k, t->rows, t->dim);
    if (!t->data)
      return mr_err_set(err, MR_EINVAL, "emb_l.%zu.weight has no data", k);
  }
  if (m->interaction != MR_INTERACT_DOT) return 0;
  /* dot multiplies vectors pairwise: they must share one width. */
  size_t want = m->num_bot ? m->bot[m->num_bot - 1].out : m->tables[0].dim;
  for (size_t k = 0; k < m->num_tables; k++) {
    if (m->tables[k].dim == want) continue;
    if (m->num_bot)
      return mr_err_set(err, MR_EFORMAT,
                        "dot interaction: emb_l.%zu.weight has width %zu but "
                        "the bottom MLP outputs %zu (expected equal widths)",
                        k, m->tables[k].dim, want);
    return mr_err_set(err, MR_EFORMAT,
                      "dot interaction: emb_l.%zu.weight has width %zu but "
                      "emb_l.0.weight has %zu (expected one width for all "
                      "tables)",
                      k, m->tables[k].dim, want);
  }
  return 0;
}

int mr_model_validate(const mr_model_t *m, mr_err_t *err) {
  int rc;
  if (m->interaction != MR_INTERACT_DOT && m->interaction != MR_INTERACT_CAT)
    return mr_err_set(err, MR_EINVAL, "unknown interaction %d",
                      (int)m->interaction);
  if ((rc = check_mlp(m->bot, m->num_bot, "bot_l.", err)) ||
      (rc = check_mlp(m->top, m->num_top, "top_l.", err)) ||
      (rc = check_tables(m, err)))
    return rc;
  size_t dense = m->num_bot ? m->bot[0].in : 0;
  if (m->num_dense != dense)
    return mr_err_set(err, MR_EINVAL,
                      "num_dense is %zu but the bottom MLP takes %zu inputs",
                      m->num_dense, dense);
  if (!m->num_top)
    return mr_err_set(err, MR_EFORMAT,
                      "missing layer top_l.0.weight (expected a top MLP "
                      "ending in width 1)");
  size_t last = m->num_top - 1;
  if (m->top[last].out != 1)
    return mr_err_set(err, MR_EFORMAT,
                      "top_l.%zu.weight outputs %zu (expected 1: the last "
                      "layer gives the logit)",
                      2 * last, m->top[last].out);
  size_t want = mr_model_top_in(m);
  if (m->top[0].in != want)
    return mr_err_set(err, MR_EFORMAT,
                      "top_l.0.weight has input width %zu but the %s "
                      "interaction of %zu tables %s produces %zu",
                      m->top[0].in, mr_interaction_name(m->interaction),
                      m->num_tables,
                      m->num_bot ? "and the bottom MLP" : "(no bottom MLP)",
                      want);
  return 0;
}

/* The safetensors container: an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
 * {str: str}}, then the raw little-endian tensor bytes. This module parses
 * and writes the container; it knows nothing of DLRM names. No global
 * state: every function may be called from any thread on its own data. */
#ifndef MR_SAFETENSORS_H
#define MR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "fpga/err.h"

typedef enum mr_dtype { MR_F32 = 0, MR_F16 = 1, MR_BF16 = 2 } mr_dtype_t;

#define MR_ST_MAX_DIMS 8

typedef struct mr_st_tensor {
  char *name;
  mr_dtype_t dtype;
  size_t ndim;
  uint64_t shape[MR_ST_MAX_DIMS];
  const void *data; /* inside the buffer given to mr_st_parse */
  uint64_t nbytes;
} mr_st_tensor_t;

typedef struct mr_st_file {
  size_t num_tensors;
  mr_st_tensor_t *tensors;
  size_t num_meta;
  char **meta_keys;
  char **meta_values;
} mr_st_file_t;

/* Parses the container in buf[0..len) (the file must be little-endian, as
 * the format says; so must the host). buf must outlive f: tensors point into
 * it, and f owns only the names and metadata strings (mr_st_free). On failure
 * returns MR_EFORMAT (or MR_ENOMEM), leaves f empty and err names the tensor.
 * Checks: header length within the
 * file, header is a JSON object, every tensor has a known dtype, a shape,
 * offsets inside the data area, nbytes = prod(shape) * dtype size, and no two
 * tensors overlap. Tensors whose dtype is not F32/F16/BF16 are an error that
 * names the tensor and dtype. */
int mr_st_parse(mr_st_file_t *f, const void *buf, size_t len, mr_err_t *err);
void mr_st_free(mr_st_file_t *f);

const mr_st_tensor_t *mr_st_find(const mr_st_file_t *f, const char *name);
const char *mr_st_meta(const mr_st_file_t *f, const char *key);
size_t mr_dtype_size(mr_dtype_t t);
const char *mr_dtype_name(mr_dtype_t t);

/* Converts n elements of src (dtype t, little-endian, any alignment) to
 * float. F16 subnormals, infinities and NaNs are exact. */
void mr_dtype_to_f32(mr_dtype_t t, const void *src, float *dst, size_t n);

/* Converts n floats to dtype t (little-endian, any alignment), rounding to
 * nearest even; F16 overflows to infinity, NaN stays NaN. */
void mr_f32_to_dtype(mr_dtype_t t, const float *src, void *dst, size_t n);

/* "f32"/"F32", "f16", "bf16" (any case) -> *out; 0 or MR_EINVAL. */
int mr_dtype_parse(const char *s, mr_dtype_t *out);

/* Writing. The caller describes every tensor, then the writer streams their
 * bytes by asking fill() for consecutive chunks, so a 15 GB model never sits
 * in memory. */
typedef struct mr_st_desc {
  const char *name;
  mr_dtype_t dtype;
  size_t ndim;
  uint64_t shape[MR_ST_MAX_DIMS];
} mr_st_desc_t;

/* fill(ctx, tensor_index, byte_offset, buf, nbytes) writes the next nbytes of
 * tensor tensor_index, starting at byte_offset, into buf; returns 0 or a
 * negative code. progress (may be NULL) is called with bytes done / total. */
typedef int (*mr_st_fill_fn)(void *ctx, size_t tensor, uint64_t offset,
                             void *buf, size_t nbytes);
typedef void (*mr_st_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* meta_kv holds num_meta (key, value) pairs flat: {k0, v0, k1, v1, ..};
 * they become "__metadata__". Offsets are assigned in the order of descs,
 * contiguously; the header is
 * compact JSON ("__metadata__" first) padded with spaces to a multiple of 8
 * bytes, so the data area starts 8-byte aligned. fill() is asked for chunks
 * of at most MR_ST_CHUNK bytes. Writes path.tmp then renames it over path;
 * on failure path.tmp is removed and path is untouched. */
#define MR_ST_CHUNK (4u << 20)
int mr_st_write(const char *path, const mr_st_desc_t *descs, size_t n,
                const char *const *meta_kv, size_t num_meta,
                mr_st_fill_fn fill, mr_st_progress_fn progress, void *ctx,
                mr_err_t *err);

#endif

/* Reads what the fpga backend checks in an xclbin before loading it
 * (fpga/xrt/xclbin_file.h). Every offset and count is bounds-checked: the
 * file comes from the user. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xrt/xclbin.h>

#include "fpga/xrt/xclbin_file.h"

/* The section of `kind` as [p, p + size), bounds-checked; NULL if absent. */
static const char *section(const char *buf, size_t len,
                           const struct axlf *top, uint32_t kind,
                           size_t *size) {
  for (uint32_t i = 0; i < top->m_header.m_numSections; i++) {
    const struct axlf_section_header *s = &top->m_sections[i];
    if (s->m_sectionKind != kind) continue;
    if (s->m_sectionOffset > len || s->m_sectionSize > len - s->m_sectionOffset)
      return NULL;
    *size = s->m_sectionSize;
    return buf + s->m_sectionOffset;
  }
  return NULL;
}

int mr_xclbin_parse(const void *data, size_t len, const char *kernel,
                    mr_xclbin_info_t *info, mr_err_t *err) {
  const char *buf = data;
  memset(info, 0, sizeof *info);
  info->cu = -1;
  if (len < sizeof(struct axlf) || memcmp(buf, "xclbin2", 8) != 0)
    return mr_err_set(err, MR_EFORMAT,
                      "not an xclbin (expected the magic \"xclbin2\" and at "
                      "least %zu bytes, got %zu bytes)",
                      sizeof(struct axlf), len);
  const struct axlf *top = data;
  uint32_t ns = top->m_header.m_numSections;
  size_t need = offsetof(struct axlf, m_sections) +
                (size_t)ns * sizeof(struct axlf_section_header);
  if (ns == 0 || ns > XCLBIN_MAX_NUM_SECTION || need > len)
    return mr_err_set(err, MR_EFORMAT,
                      "xclbin: %u sections do not fit in %zu bytes", ns, len);
  memcpy(info->uuid, top->m_header.uuid, 16);
  memcpy(info->platform, top->m_header.m_platformVBNV, 64);
  info->platform[64] = '\0';

  size_t size = 0;
  const char *p = section(buf, len, top, MEM_TOPOLOGY, &size);
  if (!p)
    return mr_err_set(err, MR_EFORMAT,
                      "xclbin has no memory topology (MEM_TOPOLOGY section): "
                      "was it built for a platform with memory?");
  const size_t mem0 = offsetof(struct mem_topology, m_mem_data);
  int32_t count;
  memcpy(&count, p, sizeof count);
  if (size < mem0 || count < 0 ||
      (size_t)count > (size - mem0) / sizeof(struct mem_data))
    return mr_err_set(err, MR_EFORMAT,
                      "xclbin: memory topology of %d entries does not fit in "
                      "%zu bytes",
                      count, size);
  if (((uintptr_t)(p + mem0) % 8) != 0)
    return mr_err_set(err, MR_EFORMAT, "xclbin: misaligned memory topology");
  info->num_mems = count;
  info->mems = p + mem0;

  p = section(buf, len, top, IP_LAYOUT, &size);
  const size_t ip0 = offsetof(struct ip_layout, m_ip_data);
  if (p && size >= ip0) {
    memcpy(&count, p, sizeof count);
    if (count < 0 || (size_t)count > (size - ip0) / sizeof(struct ip_data))
      return mr_err_set(err, MR_EFORMAT,
                        "xclbin: IP layout of %d entries does not fit", count);
    size_t klen = strlen(kernel);
    for (int i = 0; i < count && info->cu < 0; i++) {
      struct ip_data ip;
      memcpy(&ip, p + ip0 + (size_t)i * sizeof ip, sizeof ip);
      char name[65];
      memcpy(name, ip.m_name, 64);
      name[64] = '\0';
      if (ip.m_type == IP_KERNEL && !strncmp(name, kernel, klen) &&
          name[klen] == ':') {
        info->cu = i;
        snprintf(info->cu_name, sizeof info->cu_name, "%s", name);
      }
    }
  }

  p = section(buf, len, top, EMBEDDED_METADATA, &size);
  if (p) {
    char want[128];
    snprintf(want, sizeof want, "<kernel name=\"%s\"", kernel);
    size_t wl = strlen(want);
    for (size_t i = 0; i + wl <= size && !info->has_kernel_xml; i++)
      info->has_kernel_xml = memcmp(p + i, want, wl) == 0;
  }

  p = section(buf, len, top, CONNECTIVITY, &size);
  if (p && info->cu >= 0 && size >= sizeof(int32_t)) {
    memcpy(&count, p, sizeof count);
    if (count < 0 ||
        (size_t)count > (size - sizeof(int32_t)) / sizeof(struct connection))
      return mr_err_set(err, MR_EFORMAT,
                        "xclbin: connectivity of %d entries does not fit",
                        count);
    for (int i = 0; i < count; i++) {
      struct connection c;
      memcpy(&c, p + sizeof(int32_t) + (size_t)i * sizeof c, sizeof c);
      if (c.m_ip_layout_index != info->cu) continue;
      if (c.mem_data_index < 0 || c.mem_data_index >= info->num_mems)
        return mr_err_set(err, MR_EFORMAT,
                          "xclbin: argument %d connected to memory %d, the "
                          "topology has %d",
                          c.arg_index, c.mem_data_index, info->num_mems);
      if (info->num_conns < MR_XCLBIN_MAX_ARGS)
        info->conns[info->num_conns++] =
            (mr_xclbin_conn_t){c.arg_index, c.mem_data_index};
    }
  }
  return 0;
}

const char *mr_xclbin_mem_tag(const mr_xclbin_info_t *info, int i,
                              int *used) {
  if (i < 0 || i >= info->num_mems) return NULL;
  const struct mem_data *md = (const struct mem_data *)info->mems + i;
  if (used) *used = md->m_used;
  /* m_tag is 16 bytes, NUL-terminated when well formed. */
  return memchr(md->m_tag, 0, sizeof md->m_tag) ? (const char *)md->m_tag
                                                : "(bad tag)";
}

int mr_xclbin_arg_mem(const mr_xclbin_info_t *info, int arg) {
  for (int i = 0; i < info->num_conns; i++)
    if (info->conns[i].arg == arg) return info->conns[i].mem;
  return -1;
}

/* Writes bitstream-less xclbins for the MicroRec kernel
 * (fpga/xrt/xclbin_file.h): the sections XRT reads to open a kernel and
 * place buffers (MEM_TOPOLOGY, IP_LAYOUT, CONNECTIVITY, EMBEDDED_METADATA),
 * laid out as xrt/xclbin.h's struct axlf says. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xrt/xclbin.h>

#include "fpga/kernel_emit.h"
#include "fpga/xrt/xclbin_file.h"

#define NUM_HBM 32
#define NUM_DDR 2
#define NUM_MEMS (NUM_HBM + NUM_DDR)
#define CU_BASE 0x1800000ull

typedef struct arg {
  char name[16];
  int pointer;
  int mem;            /* memory index, -1 for scalars and unconnected */
  char port[24];
  unsigned offset;    /* control register offset, as HLS lays them out */
  const char *type;
} arg_t;

/* A growable byte buffer for one section. */
typedef struct buf {
  char *p;
  size_t len, cap;
  int oom;
} buf_t;

static void put(buf_t *b, const void *src, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void putf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void putf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *line = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (!line) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(line, (size_t)n + 1, fmt, ap);
  va_end(ap);
  put(b, line, (size_t)n);
  free(line);
}

static int mem_index(const char *tag) {
  unsigned i;
  char c;
  if (sscanf(tag, "HBM[%u%c", &i, &c) == 2 && c == ']' && i < NUM_HBM)
    return (int)i;
  if (sscanf(tag, "DDR[%u%c", &i, &c) == 2 && c == ']' && i < NUM_DDR)
    return NUM_HBM + (int)i;
  return -1;
}

/* The kernel's arguments, in microrec_kernel.cpp's order. */
static int kernel_args(const mr_kgeom_t *g, const mr_xclbin_opts_t *o,
                       arg_t *args, mr_err_t *err) {
  char io[32];
  mr_kemit_io_bank(g, io, sizeof io);
  static const char *const names[] = {"ids", "dense", "out", "init", "n",
                                      "mode"};
  static const char *const types[] = {"unsigned int*", "float*", "float*",
                                      "float*", "unsigned int",
                                      "unsigned int"};
  int n = 0;
  unsigned off = 0x10;
  for (int i = 0; i < 6; i++, n++) {
    arg_t *a = &args[n];
    snprintf(a->name, sizeof a->name, "%s", names[i]);
    a->pointer = i < 4;
    a->type = types[i];
    a->offset = off;
    off += a->pointer ? 12 : 8;
    a->mem = a->pointer ? mem_index(io) : -1;
    snprintf(a->port, sizeof a->port, "%s",
             a->pointer ? "M_AXI_GMEM_IO" : "S_AXI_CONTROL");
  }
  for (uint32_t k = 0; k < g->num_banks; k++) {
    if (g->bank_mem[k] != MR_KMEM_HBM && g->bank_mem[k] != MR_KMEM_DDR)
      continue;
    if (n >= MR_XCLBIN_MAX_ARGS)
      return mr_err_set(err, MR_ENOTSUP, "xclbin: more than %d arguments",
                        MR_XCLBIN_MAX_ARGS);
    arg_t *a = &args[n++];
    char tag[32];
    mr_kemit_bank_name(g, k, tag, sizeof tag);
    if (o && o->move_bank == (int)k && o->move_to)
      snprintf(tag, sizeof tag, "%s", o->move_to);
    snprintf(a->name, sizeof a->name, "bank%u", k);
    snprintf(a->port, sizeof a->port, "M_AXI_GMEM%u", k);
    a->pointer = 1;
    a->type = "float*";
    a->offset = off;
    off += 12;
    a->mem = mem_index(tag);
    if (a->mem < 0)
      return mr_err_set(err, MR_EINVAL,
                        "xclbin: bank %u is on %s, not a U280 memory", k, tag);
  }
  return n;
}

static void xml(buf_t *b, const char *kernel, const arg_t *args, int n) {
  putf(b,
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
       "<project name=\"microrec\">\n"
       "  <platform vendor=\"xilinx\" boardid=\"u280\" "
       "name=\"gen3x16_xdma_1\" featureRomTime=\"0\">\n"
       "    <version major=\"202211\" minor=\"1\"/>\n"
       "    <device name=\"fpga0\" "
       "fpgaDevice=\"virtexuplus:xcu280:fsvh2892:-2L:e\" addrWidth=\"0\">\n"
       "      <core name=\"OCL_REGION_0\" target=\"hw\" type=\"clc_region\" "
       "clockFreq=\"0MHz\" numComputeUnits=\"1\">\n"
       "        <kernelClocks>\n"
       "          <clock port=\"KERNEL_CLK\" frequency=\"%u.000000MHz\"/>\n"
       "        </kernelClocks>\n"
       "        <kernel name=\"%s\" language=\"c\" "
       "vlnv=\"xilinx.com:hls:%s:1.0\" preferredWorkGroupSizeMultiple=\"0\" "
       "workGroupSize=\"1\" interrupt=\"true\" "
       "hwControlProtocol=\"ap_ctrl_hs\">\n"
       "          <port name=\"S_AXI_CONTROL\" mode=\"slave\" range=\"0x1000\" "
       "dataWidth=\"32\" portType=\"addressable\" base=\"0x0\"/>\n",
       MR_KEMIT_CLOCK_MHZ, kernel, kernel);
  for (int i = 0; i < n; i++)
    if (args[i].pointer && (i == 0 || strcmp(args[i].port, args[i - 1].port)))
      putf(b,
           "          <port name=\"%s\" mode=\"master\" "
           "range=\"0xFFFFFFFFFFFFFFFF\" dataWidth=\"512\" "
           "portType=\"addressable\" base=\"0x0\"/>\n",
           args[i].port);
  for (int i = 0; i < n; i++)
    putf(b,
         "          <arg name=\"%s\" addressQualifier=\"%d\" id=\"%d\" "
         "port=\"%s\" size=\"0x%x\" offset=\"0x%x\" hostOffset=\"0x0\" "
         "hostSize=\"0x%x\" type=\"%s\"/>\n",
         args[i].name, args[i].pointer, i, args[i].port,
         args[i].pointer ? 8u : 4u, args[i].offset,
         args[i].pointer ? 8u : 4u, args[i].type);
  putf(b,
       "          <instance name=\"" MR_KEMIT_CU "\">\n"
       "            <addrRemap base=\"0x%llx\" range=\"0x10000\" "
       "port=\"S_AXI_CONTROL\"/>\n"
       "          </instance>\n"
       "        </kernel>\n"
       "      </core>\n"
       "    </device>\n"
       "  </platform>\n"
       "</project>\n",
       CU_BASE);
  char nul = 0;
  put(b, &nul, 1);
}

static void mem_topology(buf_t *b, const arg_t *args, int n,
                         const mr_xclbin_opts_t *o) {
  int32_t count = NUM_MEMS;
  char head[offsetof(struct mem_topology, m_mem_data)];
  memset(head, 0, sizeof head);
  memcpy(head, &count, sizeof count);
  put(b, head, sizeof head);
  for (int i = 0; i < NUM_MEMS; i++) {
    struct mem_data md;
    memset(&md, 0, sizeof md);
    char tag[32];
    if (i < NUM_HBM) {
      snprintf(tag, sizeof tag, "HBM[%d]", i);
      md.m_type = MEM_DRAM; /* U280 xclbins list HBM pseudo-channels so */
      md.m_size = 256 * 1024;                 /* KB */
      md.m_base_address = (uint64_t)i << 28;  /* 256 MB apart */
    } else {
      snprintf(tag, sizeof tag, "DDR[%d]", i - NUM_HBM);
      md.m_type = MEM_DDR4;
      md.m_size = 16ull * 1024 * 1024;        /* 16 GB in KB */
      md.m_base_address = 0x4000000000ull + ((uint64_t)(i - NUM_HBM) << 36);
    }
    if (o && o->drop_mem && !strcmp(o->drop_mem, tag))
      snprintf(tag, sizeof tag, "unused%d", i);
    else
      for (int a = 0; a < n; a++) md.m_used |= args[a].mem == i;
    size_t tl = strlen(tag);
    if (tl > sizeof md.m_tag - 1) tl = sizeof md.m_tag - 1;
    memcpy(md.m_tag, tag, tl); /* NUL from the memset */
    put(b, &md, sizeof md);
  }
}

static void connectivity(buf_t *b, const arg_t *args, int n,
                         const mr_xclbin_opts_t *o) {
  int32_t count = 0;
  for (int i = 0; i < n; i++) count += args[i].mem >= 0;
  put(b, &count, sizeof count);
  for (int i = 0; i < n; i++) {
    if (args[i].mem < 0) continue;
    char tag[32];
    if (args[i].mem < NUM_HBM)
      snprintf(tag, sizeof tag, "HBM[%d]", args[i].mem);
    else
      snprintf(tag, sizeof tag, "DDR[%d]", args[i].mem - NUM_HBM);
    struct connection c = {.arg_index = i,
                           .m_ip_layout_index = 0,
                           .mem_data_index = args[i].mem};
    if (o && o->drop_mem && !strcmp(o->drop_mem, tag)) continue;
    put(b, &c, sizeof c);
  }
  /* The count must match what was written. */
  int32_t written = (int32_t)((b->len - sizeof count) / sizeof(struct connection));
  if (!b->oom) memcpy(b->p, &written, sizeof written);
}

static void ip_layout(buf_t *b, const char *kernel) {
  int32_t count = 1;
  char head[offsetof(struct ip_layout, m_ip_data)];
  memset(head, 0, sizeof head);
  memcpy(head, &count, sizeof count);
  put(b, head, sizeof head);
  struct ip_data ip;
  memset(&ip, 0, sizeof ip);
  ip.m_type = IP_KERNEL;
  /* Interrupt enabled, interrupt id 0, ap_ctrl_hs. */
  ip.properties = IP_INT_ENABLE_MASK | (AP_CTRL_HS << IP_CONTROL_SHIFT);
  ip.m_base_address = CU_BASE;
  snprintf((char *)ip.m_name, sizeof ip.m_name, "%s:" MR_KEMIT_CU, kernel);
  put(b, &ip, sizeof ip);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

int mr_xclbin_write_for_kernel(const char *path, const mr_kgeom_t *g,
                               const mr_xclbin_opts_t *o, mr_err_t *err) {
  const char *kernel = o && o->kernel ? o->kernel : MR_KEMIT_KERNEL;
  arg_t args[MR_XCLBIN_MAX_ARGS];
  memset(args, 0, sizeof args);
  int n = kernel_args(g, o, args, err);
  if (n < 0) return n;

  enum { NSEC = 4 };
  buf_t sec[NSEC] = {{0}};
  static const uint32_t kinds[NSEC] = {MEM_TOPOLOGY, IP_LAYOUT, CONNECTIVITY,
                                       EMBEDDED_METADATA};
  static const char *const names[NSEC] = {"mem_topology", "ip_layout",
                                          "connectivity", "metadata"};
  mem_topology(&sec[0], args, n, o);
  ip_layout(&sec[1], kernel);
  connectivity(&sec[2], args, n, o);
  xml(&sec[3], kernel, args, n);

  /* Header, NSEC section headers (one inside struct axlf), then the
   * sections, each 8-byte aligned. */
  size_t head = sizeof(struct axlf) + (NSEC - 1) * sizeof(struct axlf_section_header);
  size_t total = (head + 7) & ~(size_t)7, offs[NSEC];
  int oom = 0;
  for (int i = 0; i < NSEC; i++) {
    oom |= sec[i].oom;
    offs[i] = total;
    total = (total + sec[i].len + 7) & ~(size_t)7;
  }
  char *file = oom ? NULL : calloc(1, total);
  int rc = 0;
  if (!file) {
    rc = mr_err_set(err, MR_ENOMEM, "xclbin: out of memory");
    goto done;
  }
  struct axlf *top = (struct axlf *)file;
  memcpy(top->m_magic, "xclbin2", 8);
  top->m_signature_length = -1;
  memset(top->reserved, 0xff, sizeof top->reserved);
  memset(top->m_keyBlock, 0xff, sizeof top->m_keyBlock);
  top->m_uniqueId = g->hash;
  top->m_header.m_length = total;
  top->m_header.m_timeStamp = (uint64_t)time(NULL);
  top->m_header.m_versionMajor = 2;
  top->m_header.m_versionMinor = 13;
  top->m_header.m_mode = XCLBIN_FLAT;
  snprintf((char *)top->m_header.m_platformVBNV,
           sizeof top->m_header.m_platformVBNV,
           "xilinx_u280_gen3x16_xdma_1_202211_1");
  /* A uuid that changes with the plan and with every variation. */
  uint64_t h1 = fnv(14695981039346656037ull, &g->hash, sizeof g->hash);
  uint64_t h2 = h1;
  for (int i = 0; i < NSEC; i++) h2 = fnv(h2, sec[i].p, sec[i].len);
  memcpy(top->m_header.uuid, &h1, 8);
  memcpy((char *)top->m_header.uuid + 8, &h2, 8);
  top->m_header.m_numSections = NSEC;
  for (int i = 0; i < NSEC; i++) {
    struct axlf_section_header *sh = &top->m_sections[i];
    sh->m_sectionKind = kinds[i];
    snprintf(sh->m_sectionName, sizeof sh->m_sectionName, "%s", names[i]);
    sh->m_sectionOffset = offs[i];
    sh->m_sectionSize = sec[i].len;
    memcpy(file + offs[i], sec[i].p, sec[i].len);
  }
  FILE *f = fopen(path, "wb");
  if (!f) {
    rc = mr_err_set(err, -errno, "cannot write %s: %s", path, strerror(errno));
    goto done;
  }
  size_t w = fwrite(file, 1, total, f);
  if (fclose(f) != 0 || w != total)
    rc = mr_err_set(err, MR_EIO, "cannot write %s", path);
done:
  free(file);
  for (int i = 0; i < NSEC; i++) free(sec[i].p);
  return rc;
}

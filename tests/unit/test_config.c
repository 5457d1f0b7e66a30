/* server/config: defaults, INI file, flags win, errors. */
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "server/log.h"
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

#define ARGV(...) \
  (char *[]){"microrecd", __VA_ARGS__, NULL}, \
  (int)(sizeof((char *[]){"microrecd", __VA_ARGS__}) / sizeof(char *))

static int parse(mr_config_t *c, mr_err_t *err, char **argv, int argc) {
  return mr_config_parse(c, argc, argv, err);
}

static void write_ini(char *path, size_t len, const char *text) {
  char dir[256];
  mr_test_tmpdir(dir, sizeof dir);
  snprintf(path, len, "%s/microrecd.ini", dir);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

Test(config, defaults) {
  mr_config_t c;
  mr_err_t err = {0};
  char *argv[] = {"microrecd", NULL};
  cr_assert_eq(mr_config_parse(&c, 1, argv, &err), 0, "%s", err.msg);
  cr_expect_str_eq(c.listen.host, "127.0.0.1");
  cr_expect_eq(c.listen.port, MR_CONFIG_DEFAULT_PORT);
  cr_expect_str_eq(c.engine, "cpu");
  cr_expect_eq(c.engine_threads, 1);
  cr_expect_eq(c.max_batch, 256);
  cr_expect_eq(c.max_delay_us, 50);
  cr_expect_eq(c.admin_enabled, 0);
  cr_expect_eq(c.log_level, MR_LOG_INFO);
  cr_expect_eq(c.model[0], 0);
  cr_expect_eq(c.no_products, 0);
}

Test(config, flags_set_every_kind) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_assert_eq(parse(&c, &err,
                     ARGV("--model", "m.safetensors", "--listen",
                          "0.0.0.0:0", "--engine-threads", "3",
                          "--max-frame-bytes", "2M", "--admin", ":0",
                          "--log-level", "debug", "--no-products",
                          "--idle-timeout-ms", "0")),
               0, "%s", err.msg);
  cr_expect_str_eq(c.model, "m.safetensors");
  cr_expect_str_eq(c.listen.host, "0.0.0.0");
  cr_expect_eq(c.listen.port, 0);
  cr_expect_eq(c.engine_threads, 3);
  cr_expect_eq(c.max_frame_bytes, 2u << 20);
  cr_expect_eq(c.admin_enabled, 1);
  cr_expect_str_eq(c.admin.host, "127.0.0.1");
  cr_expect_eq(c.admin.port, 0);
  cr_expect_eq(c.log_level, MR_LOG_DEBUG);
  cr_expect_eq(c.no_products, 1);
  cr_expect_eq(c.idle_timeout_ms, 0);
}

Test(config, ini_file_is_read) {
  char path[512];
  write_ini(path, sizeof path,
            "; comment\nmodel = /models/a.safetensors\nmax_batch = 64\n"
            "[microrecd]\nmax-delay-us = 200\nno_products = yes\n"
            "admin = 127.0.0.1:9999\n");
  mr_config_t c;
  mr_err_t err = {0};
  cr_assert_eq(parse(&c, &err, ARGV("--config", path)), 0, "%s", err.msg);
  cr_expect_str_eq(c.model, "/models/a.safetensors");
  cr_expect_eq(c.max_batch, 64);
  cr_expect_eq(c.max_delay_us, 200);
  cr_expect_eq(c.no_products, 1);
  cr_expect_eq(c.admin_enabled, 1);
  cr_expect_eq(c.admin.port, 9999);
  cr_expect_str_eq(c.config_path, path);
}

Test(config, flags_win_over_ini_in_any_order) {
  char path[512];
  write_ini(path, sizeof path, "max_batch = 64\nlisten = 127.0.0.1:1111\n");
  mr_config_t c;
  mr_err_t err = {0};
  /* the flag comes before --config on the line and still wins */
  cr_assert_eq(parse(&c, &err,
                     ARGV("--max-batch", "8", "--config", path)),
               0, "%s", err.msg);
  cr_expect_eq(c.max_batch, 8);
  cr_expect_eq(c.listen.port, 1111);
}

Test(config, unknown_ini_key_is_an_error_with_line) {
  char path[512];
  write_ini(path, sizeof path, "max_batch = 64\nmax_bach = 3\n");
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--config", path)), MR_EINVAL);
  cr_expect(strstr(err.msg, "max_bach") && strstr(err.msg, "line 2"), "%s",
            err.msg);
  cr_expect(strstr(err.msg, "max_batch") != NULL, "lists valid keys: %s",
            err.msg);
}

Test(config, unknown_ini_section_is_an_error) {
  char path[512];
  write_ini(path, sizeof path, "[server]\nmax_batch = 64\n");
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--config", path)), MR_EINVAL);
  cr_expect(strstr(err.msg, "[server]") != NULL, "%s", err.msg);
}

Test(config, config_key_inside_ini_is_rejected) {
  char path[512];
  write_ini(path, sizeof path, "config = other.ini\n");
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--config", path)), MR_EINVAL);
}

Test(config, missing_ini_file_is_an_error) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_lt(parse(&c, &err, ARGV("--config", "/nonexistent/x.ini")), 0);
  cr_expect(strstr(err.msg, "/nonexistent/x.ini") != NULL, "%s", err.msg);
}

Test(config, unknown_flag_is_an_error) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--max-batches", "3")), MR_EINVAL);
  cr_expect(strstr(err.msg, "--max-batches") != NULL, "%s", err.msg);
}

Test(config, missing_value_and_stray_argument_are_errors) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--model")), MR_EINVAL);
  cr_expect_eq(parse(&c, &err, ARGV("model.safetensors")), MR_EINVAL);
  cr_expect(strstr(err.msg, "model.safetensors") != NULL, "%s", err.msg);
}

Test(config, bad_values_say_what_was_expected) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--max-batch", "0")), MR_EINVAL);
  cr_expect(strstr(err.msg, "expected 1 to") != NULL, "%s", err.msg);
  cr_expect_eq(parse(&c, &err, ARGV("--max-batch", "12x")), MR_EINVAL);
  cr_expect_eq(parse(&c, &err, ARGV("--max-batch", "-1")), MR_EINVAL);
  cr_expect_eq(parse(&c, &err, ARGV("--listen", "127.0.0.1:70000")), MR_EINVAL);
  cr_expect_eq(parse(&c, &err, ARGV("--log-level", "loud")), MR_EINVAL);
  cr_expect_eq(parse(&c, &err, ARGV("--listen", "::1:80")), MR_EINVAL);
}

Test(config, help_is_reported) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_expect_eq(parse(&c, &err, ARGV("--help")), MR_CONFIG_HELP);
}

Test(config, usage_documents_every_flag_with_default) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  mr_config_usage(f);
  fclose(f);
  static const char *const flags[] = {
      "--model", "--listen", "--config", "--engine ", "--engine-threads",
      "--max-batch", "--max-delay-us", "--ring-capacity", "--max-frame-bytes",
      "--max-connections", "--idle-timeout-ms", "--admin", "--log-level",
      "--no-products", "--help"};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
    cr_expect(strstr(text, flags[i]) != NULL, "usage lacks %s", flags[i]);
  cr_expect(strstr(text, "(default: 127.0.0.1:7470)") != NULL);
  free(text);
}

Test(config, addresses_parse_and_format) {
  mr_addr_t a;
  char buf[300];
  cr_assert_eq(mr_addr_parse(&a, "[::1]:80", NULL), 0);
  cr_expect_str_eq(a.host, "::1");
  cr_expect_str_eq(mr_addr_format(&a, buf, sizeof buf), "[::1]:80");
  cr_assert_eq(mr_addr_parse(&a, "7000", NULL), 0);
  cr_expect_str_eq(mr_addr_format(&a, buf, sizeof buf), "127.0.0.1:7000");
  cr_assert_eq(mr_addr_parse(&a, "localhost:5", NULL), 0);
  cr_expect_str_eq(a.host, "localhost");
}

Test(config, xclbin_from_flag_and_ini) {
  mr_config_t c;
  mr_err_t err = {0};
  cr_assert_eq(parse(&c, &err, ARGV("--engine", "fpga", "--xclbin", "k.xclbin")),
               0, "%s", err.msg);
  cr_expect_str_eq(c.engine, "fpga");
  cr_expect_str_eq(c.xclbin, "k.xclbin");
  char ini[512];
  write_ini(ini, sizeof ini, "xclbin = /var/lib/microrec/k.xclbin\n");
  cr_assert_eq(parse(&c, &err, ARGV("--config", ini)), 0, "%s", err.msg);
  cr_expect_str_eq(c.xclbin, "/var/lib/microrec/k.xclbin");
  cr_assert_eq(parse(&c, &err, ARGV("--config", ini, "--xclbin", "flag.xclbin")),
               0, "%s", err.msg);
  cr_expect_str_eq(c.xclbin, "flag.xclbin");
  mr_config_defaults(&c);
  cr_expect_str_eq(c.xclbin, "", "no xclbin by default");
}

/* server/frame: length-prefix framing. */
#include <stdint.h>
#include <string.h>

#include "server/frame.h"
#include <criterion/criterion.h>
#ifndef cr_fatal /* testutil.h uses it; only criterion/new/assert.h has it */
#define cr_fatal(...) cr_assert_fail(__VA_ARGS__)
#endif
#include "tests/unit/testutil.h"

static size_t put(uint8_t *buf, const char *msg) {
  size_t n = strlen(msg);
  mr_frame_put_header(buf, (uint32_t)n);
  memcpy(buf + MR_FRAME_HEADER, msg, n);
  return MR_FRAME_HEADER + n;
}

Test(frame, parses_one_whole_frame) {
  uint8_t buf[64];
  size_t n = put(buf, "hello");
  mr_frame_t f;
  cr_assert_eq(mr_frame_parse(buf, n, 1024, &f, NULL), (int64_t)n);
  cr_expect_eq(f.len, 5);
  cr_expect_eq(memcmp(f.payload, "hello", 5), 0);
  cr_expect_eq(f.payload, buf + 4);
}

Test(frame, header_is_big_endian) {
  uint8_t h[4];
  mr_frame_put_header(h, 0x01020304u);
  cr_expect_eq(h[0], 1);
  cr_expect_eq(h[1], 2);
  cr_expect_eq(h[2], 3);
  cr_expect_eq(h[3], 4);
}

Test(frame, partial_header_needs_more) {
  uint8_t buf[64];
  put(buf, "abc");
  mr_frame_t f;
  for (size_t len = 0; len < 4; len++) {
    cr_expect_eq(mr_frame_parse(buf, len, 1024, &f, NULL), MR_EAGAIN);
    cr_expect_eq(f.need, 0);
  }
}

Test(frame, partial_payload_needs_more_and_says_how_much) {
  uint8_t buf[64];
  size_t n = put(buf, "abcdef");
  mr_frame_t f;
  for (size_t len = 4; len < n; len++) {
    cr_expect_eq(mr_frame_parse(buf, len, 1024, &f, NULL), MR_EAGAIN);
    cr_expect_eq(f.need, n);
  }
}

Test(frame, takes_only_the_first_of_two) {
  uint8_t buf[64];
  size_t a = put(buf, "one");
  size_t b = put(buf + a, "second");
  mr_frame_t f;
  cr_assert_eq(mr_frame_parse(buf, a + b, 1024, &f, NULL), (int64_t)a);
  cr_expect_eq(f.len, 3);
  cr_assert_eq(mr_frame_parse(buf + a, b, 1024, &f, NULL), (int64_t)b);
  cr_expect_eq(memcmp(f.payload, "second", 6), 0);
}

Test(frame, rejects_zero_length) {
  uint8_t buf[8] = {0, 0, 0, 0, 'x'};
  mr_frame_t f;
  mr_err_t err = {0};
  cr_expect_eq(mr_frame_parse(buf, 5, 1024, &f, &err), MR_EPROTO);
  cr_expect(strstr(err.msg, "length is 0") != NULL, "%s", err.msg);
}

Test(frame, rejects_length_above_max_before_payload_arrives) {
  uint8_t buf[4];
  mr_frame_put_header(buf, 1025);
  mr_frame_t f;
  mr_err_t err = {0};
  cr_expect_eq(mr_frame_parse(buf, 4, 1024, &f, &err), MR_EPROTO);
  cr_expect(strstr(err.msg, "1025") && strstr(err.msg, "1024"), "%s",
            err.msg);
}

Test(frame, accepts_length_exactly_max) {
  static uint8_t buf[4 + 1024];
  mr_frame_put_header(buf, 1024);
  mr_frame_t f;
  cr_expect_eq(mr_frame_parse(buf, sizeof buf, 1024, &f, NULL), 1028);
  cr_expect_eq(f.len, 1024);
}

Test(frame, huge_length_does_not_overflow) {
  uint8_t buf[4] = {0xff, 0xff, 0xff, 0xff};
  mr_frame_t f;
  cr_expect_eq(mr_frame_parse(buf, 4, SIZE_MAX, &f, NULL), MR_EAGAIN);
  cr_expect_eq(f.need, 4 + (size_t)0xffffffffu);
}

// Text from sites and logs, made safe for a terminal: control characters and
// bytes that are not UTF-8 become visible escapes; printable text is unchanged.
#include <doctest/doctest.h>

#include "common/printable_text.hpp"

using flare::common::LineBreaks;
using flare::common::printable;

TEST_CASE("printable text, UTF-8 included, passes unchanged") {
  CHECK(printable("site-1 train e1 [####....] 50%") == "site-1 train e1 [####....] 50%");
  CHECK(printable("Genève, 東京, 🙂\ttab") == "Genève, 東京, 🙂\ttab");
}

TEST_CASE("escape sequences, carriage returns and other controls are shown, not obeyed") {
  CHECK(printable("\x1b[2J\x1b[31mred\r") == "\\x1b[2J\\x1b[31mred\\x0d");
  CHECK(printable("bell\a del\x7f nul", LineBreaks::Keep) == "bell\\x07 del\\x7f nul");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
}

TEST_CASE("newlines are escaped unless the text may span lines") {
  CHECK(printable("one\ntwo") == "one\\x0atwo");
  CHECK(printable("one\ntwo\n", LineBreaks::Keep) == "one\ntwo\n");
}

TEST_CASE("C1 controls and bytes that are not UTF-8 are escaped") {
  CHECK(printable("\xc2\x9b" "31m") == "\\u009b31m");  // CSI as a UTF-8 character
  CHECK(printable("\x9b" "31m") == "\\x9b31m");        // CSI as a raw 8-bit byte
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");        // an overlong '/'
  CHECK(printable("cut \xe6\x9d") == "cut \\xe6\\x9d");  // a character cut short
}

#include "common/printable_text.hpp"

#include <cstdio>

namespace flare::common {

namespace {

void append_escape(std::string& out, const char* format, unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
}

// The length of the valid UTF-8 sequence at the start of `text` and its code
// point, or 0 when it is not one (overlong forms and surrogates included).
size_t utf8_sequence(std::string_view text, char32_t& code_point) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  char32_t min = 0;
  if (lead >= 0xC2 && lead <= 0xDF) length = 2, code_point = lead & 0x1F, min = 0x80;
  else if (lead >= 0xE0 && lead <= 0xEF) length = 3, code_point = lead & 0x0F, min = 0x800;
  else if (lead >= 0xF0 && lead <= 0xF4) length = 4, code_point = lead & 0x07, min = 0x10000;
  else return 0;
  if (text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3F);
  }
  if (code_point < min || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF))
    return 0;
  return length;
}

}  // namespace

std::string printable(std::string_view text, LineBreaks line_breaks) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text.front());
    if (c < 0x80) {
      const bool kept = (c >= 0x20 && c != 0x7F) || c == '\t' ||
                        (c == '\n' && line_breaks == LineBreaks::Keep);
      if (kept) out += static_cast<char>(c);
      else append_escape(out, "\\x%02x", c);
      text.remove_prefix(1);
      continue;
    }
    char32_t code_point = 0;
    const size_t length = utf8_sequence(text, code_point);
    if (length == 0) {  // not UTF-8: a terminal in another encoding may read it as control
      append_escape(out, "\\x%02x", c);
      text.remove_prefix(1);
    } else {
      if (code_point <= 0x9F) append_escape(out, "\\u%04x", code_point);  // C1 controls
      else out.append(text.substr(0, length));
      text.remove_prefix(length);
    }
  }
  return out;
}

}  // namespace flare::common

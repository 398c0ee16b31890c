// Text that came from elsewhere (a site's request, a log file), made safe to
// print: a terminal acts on control characters, so an escape sequence or a
// carriage return in a site's text could rewrite or hide what the operator sees.
#pragma once

#include <string>
#include <string_view>

namespace flare::common {

enum class LineBreaks { Escape, Keep };

// `text` with every control character (C0, DEL and C1, including ESC and CR)
// and every byte that is not valid UTF-8 written as a visible escape ("\x1b",
// "\u009b"); tabs are kept, and newlines too with LineBreaks::Keep. Printable
// UTF-8 passes unchanged.
std::string printable(std::string_view text, LineBreaks line_breaks = LineBreaks::Escape);

}  // namespace flare::common

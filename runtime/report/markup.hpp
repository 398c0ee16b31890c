// Text and numbers as the report's HTML and SVG write them. Internal to report/.
#pragma once

#include <string>
#include <string_view>

namespace flare::report {

// `text` safe inside an element or a quoted attribute (& < > " ' escaped).
std::string escape_html(std::string_view text);

// The shortest text that reads back as exactly `value` (for data attributes
// that tools compare with metrics.jsonl).
std::string exact_number(double value);

// `value` for a reader: 4 significant digits, whole numbers from 1000 to 1e9.
std::string readable_number(double value);

// `value` with `decimals` digits after the point.
std::string fixed_number(double value, int decimals);

}  // namespace flare::report

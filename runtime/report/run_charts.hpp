// Which charts a run gets, from its record: the global model's accuracy and
// loss per round, each site's, each site's images/s per round, and each
// per-step training figure (train_loss first). Internal to report/.
#pragma once

#include <vector>

#include "report/run_record.hpp"
#include "report/svg_chart.hpp"

namespace flare::report {

// In page order; a chart with no point to draw is left out.
std::vector<LineChart> charts_of(const RunRecord& record);

}  // namespace flare::report

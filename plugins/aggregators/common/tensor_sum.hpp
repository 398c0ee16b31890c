// One tensor of a weighted mean's round: its running weighted sum (float32 /
// float64) or, for an integer tensor, the latest completed update's value. The
// sum is finished in place into the round's result, so a round holds 1x the
// model (plain float32 sums) or 2x (compensated: the carry array besides).
#pragma once

#include <flare/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace flare::agg {

enum class Summation { Float32, Compensated };

struct TensorSum {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  size_t count = 0;          // elements
  size_t element_bytes = 0;
  bool averaged = false;     // float32 / float64; otherwise an integer tensor
  std::vector<std::byte> value;
  std::vector<float> carry;  // compensated float32 only
  // Elements [0, written) hold a sum this round; later ones are written, not
  // added to, by the next fold (no zeroing pass). Every update covers a
  // tensor from element 0 up, so what was written is always a prefix.
  size_t written = 0;

  bool is_float32() const { return dtype.code == kDLFloat && dtype.bits == 32; }

  // Sizes the buffers for the round, reusing the last round's memory.
  void reset(Summation mode);
  // Adds weight * x to elements [a, b), x pointing at element a's value, on
  // the calling thread. Reads `written`, never moves it: the caller does,
  // after every thread is done (mark_written).
  void fold(const void* x, size_t a, size_t b, double weight, Summation mode);
  // The same, a block at a time, each checked finite while it is in the L1
  // cache just before it is folded: one pass over x instead of a check pass
  // and a fold pass. Stops before the first block holding NaN or infinity
  // and returns how many elements from a were folded (b - a: all finite).
  size_t fold_finite(const void* x, size_t a, size_t b, double weight, Summation mode);
  // Adds weight * (x - base) to elements [a, b) (plain sums only): a clipped
  // difference from the global model, x and base pointing at element a.
  void fold_difference(const void* x, const void* base, size_t a, size_t b, double weight);
  void mark_written(size_t end) {
    if (end > written) written = end;
  }
  // Elements [a, b) of the sum become the average: sum * scale.
  void finish(size_t a, size_t b, double scale, Summation mode);
};

}  // namespace flare::agg

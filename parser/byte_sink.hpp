// Where a stage of the unpack chain writes its output: the next stage (an
// inflater, the XML parser). Chunks are written in order and may have any
// size; a write error ends the chain.
#pragma once

#include <string_view>

#include "parser/error.hpp"

namespace dmarcd::parser {

class ByteSink {
 public:
  virtual ~ByteSink() = default;

  virtual Result<void> Write(std::string_view chunk) = 0;

  // True when the sink wants no more bytes (the report is a duplicate, or
  // it failed): the writer should stop inflating.
  virtual bool Stopped() const = 0;
};

// Size of the slices inflated output is cut into, so a cap or a parse error
// stops a large payload early and memory stays flat.
inline constexpr size_t kChunkBytes = size_t{64} << 10;

}  // namespace dmarcd::parser

#pragma once
// Ingest counters: every answer the listener gives, by flow and result (accepted, duplicate, ignored, or the
// error code of a refusal). Looked up through a per-thread cache, so the hot path takes no lock.

#include <string_view>

namespace evr::listener {

// `flow` is empty when the request reached no flow (unknown path, malformed HTTP).
void count_answer(std::string_view flow, std::string_view result);

}  // namespace evr::listener

#pragma once
// Whether two versions of a part of the configuration say the same thing, ignoring where in the files it
// was written (a comment added above a flow moves its lines but changes nothing). Used by reload to tell
// what changed.

#include "evrouter/config/config.h"

namespace evr::config {

bool same_settings(const Connection& a, const Connection& b);
bool same_settings(const Destination& a, const Destination& b);
bool same_settings(const Flow& a, const Flow& b);

}  // namespace evr::config

// Internal to projections/: the binary form of one Clock, shared by the application and KPI codecs
// (grammar in application_codec.h).
#pragma once

#include "byte_codec.h"
#include "projections/application.h"

namespace gridledger::projections {

void PutClock(codec::Writer& w, const Clock& clock);
Clock GetClock(codec::Reader& r);

}  // namespace gridledger::projections

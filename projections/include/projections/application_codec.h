// Stored form of ApplicationState in the projection store: MessagePack of a positional array
// (field order below is the format; append fields only, and bump kApplicationCodecVersion on any
// other change). Deterministic: equal states give equal bytes, so two rebuilds can be compared
// byte for byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "projections/application.h"

namespace gridledger::projections {

inline constexpr int kApplicationCodecVersion = 1;

std::string EncodeApplication(const ApplicationState& state);
// nullopt when the bytes are not a state of this codec version.
std::optional<ApplicationState> DecodeApplication(std::string_view bytes);

}  // namespace gridledger::projections

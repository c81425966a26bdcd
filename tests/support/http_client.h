// The tests' HTTP client is ledgerctl's (client/http_client.h).
#pragma once

#include "client/http_client.h"

namespace gridledger::testing {

using client::HttpClient;
using client::HttpResponse;

}  // namespace gridledger::testing

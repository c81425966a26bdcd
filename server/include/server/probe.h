// ServerProbe: what ledgerd's Service reports for metrics. The Service calls it; an implementation
// (monitoring/) turns the calls into counters. The server knows no metrics library.
//
// Calls come from the front doors' I/O threads and the ledger's completer thread. An implementation
// must be thread-safe, cheap and non-blocking, must not throw and must not call back into the
// Service. Every method has a no-op default.
#pragma once

#include <cstdint>
#include <string_view>

#include "server/service.h"

namespace gridledger::server {

class ServerProbe {
 public:
  virtual ~ServerProbe() = default;

  // A small number standing for an event type, handed back in OnAppendAnswered, so that the
  // Service need not keep the type's text while the append is in flight. The probe bounds the set
  // (every unknown type may share one token).
  virtual uint32_t TypeToken(std::string_view /*type*/) { return 0; }
  // Service::AppendAsync answered an append of an event whose type gave `type_token`: stored (or a
  // retry of a stored event), or refused (the ServiceError says why, with the rule when a rule
  // refused it).
  virtual void OnAppendAnswered(uint32_t /*type_token*/, const AppendAnswer& /*answer*/) {}
  // A request other than an append was refused before doing anything: an unknown token
  // (kUnauthenticated) or an access check (kForbidden). `rule` is "" when no rule applies.
  virtual void OnRefused(ErrorKind /*kind*/, std::string_view /*rule*/) {}
};

}  // namespace gridledger::server

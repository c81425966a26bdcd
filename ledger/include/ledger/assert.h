// LEDGER_ASSERT: an always-on check of an invariant ("bug here"), never of caller input (that gets
// a Status). On failure it prints the condition and location and aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

#define LEDGER_ASSERT(condition)                                                             \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

// jemalloc's options for GridLedger's programs, compiled into each one that links jemalloc
// (gridledger_use_jemalloc in the root CMakeLists.txt). jemalloc reads this symbol when it starts;
// MALLOC_CONF in the environment still overrides it.
//
// tcache_max: every thread keeps freed blocks of up to 8 MiB for reuse. Read and subscription
// frames (up to 4 MiB, server::Limits::frame_bytes_max) are allocated and freed once per frame;
// without this each one went back to the arena and came back as fresh pages to fault in, and the
// catch-up subscription fell from ~1.2M to ~0.85-0.93M events/s (BENCHMARKS.md).
// tcache_nslots_large: at most 4 such blocks per size class and thread, so the caches stay small.
// background_thread, dirty_decay_ms: a jemalloc thread returns freed pages to the system about a
// second after they are freed. Without it pages were only purged while the program allocated, so
// an idle ledgerd kept what a burst had used: after 300 readers that never read their answers had
// left, RSS stayed at 88 MiB for as long as the server stayed idle; now 39 MiB within 5 s (60 MiB
// before the burst). The background thread alone, with the default 10 s decay, raised a rebuild's
// peak RSS (1M events: 209-213 -> 229 MiB); with the 1 s decay it is 195 MiB (10M: 235 -> 229
// MiB) at the same speed, and durable appends (64 appenders) ran as fast (BENCHMARKS.md).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf =
    "tcache_max:8388608,tcache_nslots_large:4,background_thread:true,dirty_decay_ms:1000";
}

// jemalloc's options for GridLedger's programs, compiled into each one that links jemalloc
// (gridledger_use_jemalloc in the root CMakeLists.txt). jemalloc reads this symbol when it starts;
// MALLOC_CONF in the environment still overrides it.
//
// tcache_max: every thread keeps freed blocks of up to 8 MiB for reuse. Read and subscription
// frames (up to 4 MiB, server::Limits::frame_bytes_max) are allocated and freed once per frame;
// without this each one went back to the arena and came back as fresh pages to fault in, and the
// catch-up subscription fell from ~1.2M to ~0.85-0.93M events/s (BENCHMARKS.md).
// tcache_nslots_large: at most 4 such blocks per size class and thread, so the caches stay small.
// background_thread: a jemalloc thread returns freed pages to the system as they decay (10 s).
// Without it pages are only purged while the program allocates, so an idle ledgerd kept what a
// burst had used: after 300 readers that never read their answers had left, RSS stayed at 88 MiB
// for as long as the server stayed idle; with it, 39 MiB within 20 s (60 MiB before the burst).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "tcache_max:8388608,tcache_nslots_large:4,background_thread:true";
}

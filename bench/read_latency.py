#!/usr/bin/env python3
"""How reads of personal data affect everyone else on ledgerd's I/O threads.

Each GET /v1/apps/{id} appends a durable SensitiveDataAccessed record before it is answered. This
starts one ledgerd on a fresh data directory holding examples/sample-application.jsonl, runs 8
clients reading that application as fast as they can (keep-alive), and one client timing GET
/healthz every 5 ms, for SECONDS; then prints the reads per second and the /healthz latency.
Compare two builds by running it once with each, interleaved (a machine's noise moves both).

  bench/read_latency.py BUILD_DIR [SECONDS]     # BUILD_DIR holds server/ledgerd and cli/ledgerctl
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READERS = 8


def main():
    build = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    ledgerd, ledgerctl = build + "/server/ledgerd", build + "/cli/ledgerctl"
    work = tempfile.mkdtemp(prefix="gridledger-read-latency-")
    data, tokens, ready = work + "/data", work + "/tokens.jsonl", work + "/ready.json"
    try:
        subprocess.run([ledgerctl, "--data", data, "append",
                        ROOT + "/examples/sample-application.jsonl"],
                       check=True, stdout=subprocess.DEVNULL)
        added = subprocess.run([ledgerctl, "token", "add", "--tokens", tokens, "--id", "A0001",
                                "--role", "auditor", "--org", "KM"],
                               check=True, capture_output=True, text=True)
        token = added.stdout.strip().split()[-1].strip('"')
        server = subprocess.Popen([ledgerd, "--data", data, "--http", "127.0.0.1:0", "--tcp", "",
                                   "--tokens", tokens, "--ready-file", ready,
                                   "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if time.time() > deadline or server.poll() is not None:
                sys.exit("ledgerd did not start")
            time.sleep(0.05)
        port = int(json.load(open(ready))["http"].rsplit(":", 1)[1])
        stop = time.time() + seconds
        reads, latencies, lock = [0], [], threading.Lock()

        def reader():
            connection = http.client.HTTPConnection("127.0.0.1", port)
            count = 0
            while time.time() < stop:
                connection.request("GET", "/v1/apps/XS-2026-000123",
                                   headers={"Authorization": "Bearer " + token})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    sys.exit("read answered %d" % response.status)
                count += 1
            with lock:
                reads[0] += count

        def probe():
            connection = http.client.HTTPConnection("127.0.0.1", port)
            while time.time() < stop:
                started = time.perf_counter()
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.005)

        threads = [threading.Thread(target=reader) for _ in range(READERS)]
        threads.append(threading.Thread(target=probe))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        server.send_signal(signal.SIGTERM)
        server.wait()
        latencies.sort()

        def quantile(q):
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

        print("%s: app reads %.0f/s; /healthz n=%d p50 %.2f ms p99 %.2f ms max %.2f ms" %
              (build, reads[0] / seconds, len(latencies), quantile(0.5), quantile(0.99),
               latencies[-1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

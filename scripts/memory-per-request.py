#!/usr/bin/env python3
"""Resident memory of a running `falhints serve` under large bodies and unknown ids (issue figures 4 and 5).

usage: memory-per-request.py PID HTTP_PORT
Sends 40 requests with a 9 MB padding field (each awaited to completion), then 20,000 status lookups of random
4,000-character ids and 20,000 of random well-formed (32 hex digit) unknown ids, printing the node's resident
memory (VmRSS) after each phase and 30 s after the bodies.
"""
import http.client, json, os, sys, time, uuid

pid, port = int(sys.argv[1]), int(sys.argv[2])

def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

def call(method, path, body=None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()

def run(pad):
    body = json.dumps({"model": "tiny/a", "prompt": "memory", "pad": pad}).encode()
    status, answer = call("POST", "/falhints/any-model", body)
    rid = json.loads(answer)["request_id"]
    while json.loads(call("GET", f"/falhints/any-model/requests/{rid}/status")[1])["status"] != "COMPLETED":
        time.sleep(0.05)
    return status

for _ in range(3):
    run("")
print(f"baseline: {rss_mb():.0f} MB")
pad = "x" * (9 << 20)
t = time.time()
codes = [run(pad) for _ in range(40)]
print(f"after 40 x 9 MB bodies (answers {sorted(set(codes))}, {time.time() - t:.1f} s): {rss_mb():.0f} MB")
time.sleep(30)
print(f"30 s later: {rss_mb():.0f} MB")
t = time.time()
codes = [call("GET", f"/falhints/any-model/requests/{os.urandom(2000).hex()}/status")[0] for _ in range(20000)]
print(f"after 20,000 lookups of 4,000-character ids (answers {sorted(set(codes))}, {time.time() - t:.1f} s): {rss_mb():.0f} MB")
t = time.time()
codes = [call("GET", f"/falhints/any-model/requests/{uuid.uuid4().hex}/status")[0] for _ in range(20000)]
print(f"after 20,000 lookups of unknown 32-hex ids (answers {sorted(set(codes))}, {time.time() - t:.1f} s): {rss_mb():.0f} MB")

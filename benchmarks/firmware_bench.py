"""Supervisor firmware budgets: MicroPython heap, bundle size, link round trip over a real pty.

    .venv/bin/python benchmarks/firmware_bench.py [--frames 1000] [--rounds 200] [--json]

1. Heap: the real core runs under MicroPython 1.27 (WebAssembly port, via tests/support) and
   processes host frames (heartbeat, status, hello, relay, beacon, event acks);
   ``gc.mem_alloc()`` after ``gc.collect()`` is read after boot, after N and after 2N frames.
   Budget: at most 32 KB after boot + 1,000 frames, no growth from frame 1,000 to 2,000.
2. Heap during a file transfer: the board takes the largest bundle file as
   ``kiosk-provision flash-firmware`` sends it (file_info, file_open, binary 256-byte file_data
   chunks, file_commit, file_info; and again as a host before 1.4.0 sends it, with base64
   file_write chunks), 64 bytes per loop pass, with its files on the MicroPython
   filesystem. Reported: the peak, an upper bound (heap at rest before a command plus every byte
   allocated while the board handles it, garbage included: this port cannot collect inside a
   call); the heap at rest between commands. The same file to ``sets/<version>/`` (a staged
   update), and a whole staged update as ``stage_over_link`` sends it (every file, the set list
   ``set.txt``, one ``file_check`` per file, the pointer ``fwset.json`` whose commit switches; and
   as a host before 1.5.1 sends it, without file_check, so the switch hashes the whole set).
   Budget: the same 32 KB.
3. Bundle: ``firmware.build`` output (mpy-cross .mpy + main.py). Budget: at most 64 KB.
4. Round trip: the supervisor driver sends a request to ``python -m hardware_sim supervisor``
   (the real firmware core) over a pseudo-terminal and waits for the reply. The wire time is
   what request + reply take on an 8N1 line at 115200 baud. Budget: round trip <= 1.2 x wire time.
5. Flash over the link: ``device_drivers.supervisor_flash.flash_over_link`` copies the whole bundle to a fresh
   simulator (file_info, file_open, file_data chunks, file_commit, verify, reset, hello), then runs again
   (nothing to copy). Reported: seconds and the bytes on the wire for the first run, compared
   with the wire time at 115200 baud. Budget: a full flash within 1.5 x the wire time of its bytes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_drivers.supervisor import SET_SWITCH, SupervisorDriver  # noqa: E402
from firmware import build  # noqa: E402
from firmware import link as L  # noqa: E402
from tests.support.micropython import NODE_PATH  # noqa: E402
from tests.support.processes import start_sim  # noqa: E402

BAUD = 115200
DATA_REPLY = len(L.encode_frame(0, 1, L.FILE_DATA | L.REPLY, bytes(4)))  # bytes on the wire

# The WebAssembly port can only collect garbage between top-level runPython calls (it cannot
# scan the wasm C stack mid-call), so the heap script runs in phases and each phase starts with
# gc.collect(). On the RP2040, gc.collect() works anywhere; the phases change nothing there.
RUNNER_JS = r"""
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
const [phasesFile, root, heap, data] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const pkg = require.resolve("@micropython/micropython-webassembly-pyscript/micropython.mjs",
  { paths: [process.env.MICROPYTHON_NODE_PATH] });
const { loadMicroPython } = await import(pkg);
const mp = await loadMicroPython({ heapsize: parseInt(heap, 10), linebuffer: false,
  stdout: (d) => process.stdout.write(d), stderr: (d) => process.stderr.write(d) });
function copyTree(src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) {}
  for (const name of fs.readdirSync(src)) {
    if (name === "__pycache__" || name.startsWith(".")) continue;
    const s = path.join(src, name);
    if (fs.statSync(s).isDirectory()) copyTree(s, dst + "/" + name);
    else if ((name.endsWith(".py") || name.endsWith(".mpy"))) mp.FS.writeFile(dst + "/" + name, fs.readFileSync(s));
  }
}
copyTree(root, "/firmware");
// Data the harness reads from the filesystem (Emscripten's, outside the MicroPython heap).
if (data) for (const name of fs.readdirSync(data)) mp.FS.writeFile("/" + name, fs.readFileSync(path.join(data, name)));
mp.runPython("import sys\nsys.path.insert(0, '/')\n");
for (const code of JSON.parse(fs.readFileSync(phasesFile, "utf8"))) mp.runPython(code);
"""

HEAP_PHASES = [
    "import gc\ngc.collect()\nprint('MARK base', gc.mem_alloc())\n",
    """
from firmware import link as L
from firmware.core.supervisor import Supervisor
from firmware.hal.host import HostHal, SimPin

now = [0]
hal = HostHal(lambda: now[0])
for name in hal.relays:
    hal.relays[name] = SimPin(1)  # no relay log: the log is the simulator's, not the board's
sup = Supervisor(hal, 0)
for t in range(0, 200, 5):
    sup.tick(t)
""",
    "gc.collect()\nprint('MARK boot', gc.mem_alloc())\n",
    """
# Host frames, built once so the harness does not allocate per frame.
# Five kinds, so the 1,000th and the 2,000th frame are the same kind (the board caches its last
# reply for duplicate suppression, and a status reply is ten times a heartbeat reply).
KINDS = [(L.HEARTBEAT, b""), (L.STATUS, b""), (L.HELLO, b""),
         (L.BEACON, b'{"pattern":"ready"}'), (L.RELAY, b'{"relay":"scanner","off_s":2}')]
FRAMES = [L.encode_frame(i + 1, 0, KINDS[i % len(KINDS)][0], KINDS[i % len(KINDS)][1]) for i in range(255)]
ACKS = [L.encode_frame(0, s, L.ACK) for s in range(256)]
dec = L.FrameDecoder()
state = {"n": 0, "t": 200, "processed": 0}

def step(t):
    # One 5 ms loop pass; the board's own events are acknowledged as the host would. Returns how
    # many frames the board processed.
    acked = 0
    out = sup.tick(t)
    if out:
        for f in dec.feed(out):
            if f.mtype == L.EVENT:
                sup.receive(ACKS[f.seq], t)
                acked += 1
    return acked

def run(count):
    n, t, processed = state["n"], state["t"], state["processed"]
    for _ in range(count):
        sup.receive(FRAMES[n % 255], t)
        processed += 1
        for _step in range(4):
            t += 5
            processed += step(t)
        if n % 50 == 10:
            hal.door.value(1)  # door events: the board sends frames of its own too
        if n % 50 == 30:
            hal.door.value(0)
        n += 1
    state["n"], state["t"], state["processed"] = n, t, processed

def quiesce():
    # Let relay pulses end and events be acknowledged, so both marks see an idle board.
    t = state["t"]
    for _ in range(600):
        t += 5
        step(t)
    state["t"] = t

# Marks go into a preallocated list through one unchanging call: a new string literal per mark
# would intern a new qstr, and the measurement would show its own growth.
MARKS = [0] * 16
MI = [0]

def mark():
    gc.collect()
    MARKS[MI[0]] = gc.mem_alloc()
    MI[0] += 1
""",
    "mark()\n",  # MARKS[0]: after the harness
    "run(%(frames)d)\nquiesce()\n",
    "mark()\n",  # MARKS[1]: after N frames
] + [
    # Ten more marks from frame N to 2N: a leak shows as a trend, in-flight state as a band.
    phase
    for _ in range(10)
    for phase in ("run(%(tenth)d)\nquiesce()\n", "mark()\n")
] + [
    "print('MARK harness', MARKS[0])\nprint('MARK n', MARKS[1])\n"
    "for i in range(10):\n    print('MARK m' + str(i), MARKS[2 + i])\n"
    "print('MARK processed', state['processed'])\nprint('MARK errors', dec.error_count() + sup.link.decoder.error_count())\n"
    "print('MARK faults', sup.faults)\nprint('MARK gave_up', sup.link.gave_up)\n",
]

# Heap during a file transfer: the board (with hal.files on the MicroPython filesystem, as on
# the RP2040, so the file being written is not in the heap) receives the frames that
# SupervisorDriver.put_file sends for the largest bundle file, 64 bytes per loop pass like
# main.py. The frames come from /frames.bin (built on CPython by the host's own encoder) and are
# read into one fixed buffer in a phase of their own. Each command's phase starts with the heap
# collected (START: the board at rest plus the harness); nothing is collected inside it, so its
# END counts every byte the board allocated for that command, garbage included: an upper bound
# of the peak, which the board's GC can only lower.
TRANSFER_SETUP = [
    """
import gc
import sys
import ubinascii
import uos

# This port freezes pure-Python binascii and os wrappers over its C modules; the RP2040 has
# only the C ones. Without this, base64 in pure Python would be measured (200 KB per chunk).
sys.modules["binascii"] = ubinascii
sys.modules["os"] = uos
os = uos
from firmware import link as L
from firmware.core.supervisor import Supervisor
from firmware.hal.fs import DirFs
from firmware.hal.host import HostHal, SimPin

os.mkdir("/flash")
hal = HostHal(lambda: 0, files=DirFs("/flash"))
for name in hal.relays:
    hal.relays[name] = SimPin(1)
sup = Supervisor(hal, 0)
dec0 = L.FrameDecoder()
for t in range(0, 200, 5):
    # The boot event is acknowledged as the host does at once: unacknowledged, its retries
    # would be counted in whichever commands they happen to fall into.
    for f in dec0.feed(sup.tick(t)):
        if f.mtype == L.EVENT:
            sup.receive(L.encode_frame(0, f.seq, L.ACK), t)
del dec0, f
gc.collect()
""",
    "print('MARK boot', gc.mem_alloc())\n",
]
TRANSFER_HARNESS = """
INDEX = INDEX_JSON
N = len(INDEX)
FRAME = bytearray(L.MAX_ENCODED + 2)
MV = memoryview(FRAME)
OUTS = [None] * 16
START = [0] * N
END = [0] * N
DRY = [0]
ST = [-1, 200, 0, 0]  # command index (-1: harness mark only), time, frame length, bad replies
dec = L.FrameDecoder()

def prep():
    off, n, mtype, want = INDEX[ST[0]]
    with open("/frames.bin", "rb") as f:
        f.seek(off)
        f.readinto(MV[:n])
    ST[2] = n
    gc.collect()  # this port collects when the next phase starts, if asked to

def measure():
    k = ST[0]
    m0 = gc.mem_alloc()
    if k < 0:
        DRY[0] = m0
        ST[0] = 0
        return
    t = ST[1]
    n = ST[2]
    i = 0
    o = 0
    passes = 0
    while i < n or passes < 4:
        if i < n:
            j = i + 64
            if j > n:
                j = n
            sup.receive(MV[i:j], t)
            i = j
        else:
            passes += 1
        out = sup.tick(t)
        if out:
            OUTS[o] = out
            o += 1
        t += 5
    ST[1] = t
    START[k] = m0
    END[k] = gc.mem_alloc()

def check():
    k = ST[0]
    off, n, mtype, want = INDEX[k]
    got = None
    for i in range(len(OUTS)):
        out = OUTS[i]
        OUTS[i] = None
        if out is None:
            continue
        for f in dec.feed(out):
            if f.mtype == mtype | L.REPLY and f.ack == k % 255 + 1:
                p = f.payload
                if mtype == L.FILE_DATA and len(p) == 4:
                    got = {"size": (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]}
                else:
                    got = f.body()
            elif f.mtype == L.EVENT:
                sup.receive(L.encode_frame(0, f.seq, L.ACK), ST[1])
    if (got != {"err": "unknown_type"}) if want == -2 else (
            got is None or "err" in got or (want >= 0 and got.get("size") != want)):
        ST[3] += 1
        print("BAD", k, got)
    ST[0] = k + 1

gc.collect()
"""
TRANSFER_REPORT = ("print('MARK dry', DRY[0])\nprint('MARK bad', ST[3])\n"
                   "for k in range(N):\n    print('MARK s' + str(k), START[k])\n    print('MARK e' + str(k), END[k])\n")


def run_phases(phases: list[str], data: dict[str, bytes] | None = None) -> dict[str, int]:
    """Run ``phases`` under MicroPython on the bundle as flashed (.mpy), plus hal/host compiled the
    same way; ``data`` files go to the MicroPython filesystem's root. Returns the MARK lines."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        build.build(str(root))
        build.compile_one(str(REPO / "firmware/hal/host.py"), str(root / "firmware/hal/host.mpy"), "firmware/hal/host.py")
        runner = Path(tmp) / "phases.mjs"
        runner.write_text(RUNNER_JS)
        phases_file = Path(tmp) / "phases.json"
        phases_file.write_text(json.dumps(phases))
        argv = ["node", str(runner), str(phases_file), str(root / "firmware"), str(256 * 1024)]
        if data:
            folder = Path(tmp) / "data"
            folder.mkdir()
            for name, content in data.items():
                (folder / name).write_bytes(content)
            argv.append(str(folder))
        env = dict(os.environ, MICROPYTHON_NODE_PATH=str(NODE_PATH))
        res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"MicroPython heap run failed: {res.stderr}")
    marks = {}
    for line in res.stdout.splitlines():
        if line.startswith("MARK "):
            _, key, value = line.split()
            marks[key] = int(value)
    return marks


def heap_budget(frames: int) -> dict:
    """The board's heap after boot and while it processes ``frames`` host frames (HEAP_PHASES)."""
    args = {"frames": frames, "tenth": frames // 10}
    marks = run_phases([p % args if "%(" in p else p for p in HEAP_PHASES])
    harness = marks["harness"] - marks["boot"]
    series = [marks["n"]] + [marks[f"m{i}"] for i in range(10)]
    return {
        "interpreter_baseline": marks["base"],
        "after_boot": marks["boot"],
        "harness": harness,
        "after_n_frames": marks["n"] - harness,
        "after_2n_frames": marks["m9"] - harness,
        "growth_n_to_2n": marks["m9"] - marks["n"],
        "band_n_to_2n": max(series) - min(series),
        "frames_processed_total": marks["processed"],
        "link_errors": marks["errors"],
        "core_faults": marks["faults"],
        "events_given_up": marks["gave_up"],
        "budget": 32 * 1024,
    }


def transfer_frames(name: str, data: bytes, legacy: bool = False) -> tuple[bytes, list[list[int]], list[str]]:
    """The frames flash-firmware sends to copy one file (file_info, file_open, binary file_data
    chunks, file_commit, file_info; ``legacy``: base64 file_write chunks instead of open/data, as
    a host before 1.4.0 sends), built like SupervisorDriver.put_file; with their [offset, length,
    type, size expected in the reply (-1: none)] in the concatenation, and each command's name."""
    frames = _Frames()
    frames.add(L.FILE_INFO, {"path": name}, -1, "file_info")
    frames.put_file(name, data, legacy)
    frames.add(L.FILE_INFO, {"path": name}, len(data), "file_info")
    if len(frames.index) > 254:
        raise ValueError(f"{name} needs {len(frames.index)} frames; the benchmark numbers them 1..254")
    return bytes(frames.wire), frames.index, frames.kinds


def staged_update_frames(files: dict[str, bytes], version: str, checks: bool = True,
                         switch_cmd: bool = True) -> tuple[bytes, list[list[int]], list[str]]:
    """The frames device_drivers.supervisor_flash.stage_over_link sends to a board that has none
    of the set yet: per file (in the manifest's order) file_info, then file_open, file_data
    chunks, file_commit to ``sets/<version>/``; then the set list ``set.txt``, one file_check
    per entry (firmware 1.5.1; ``checks=False``: a host before it sends none, and the switch
    hashes the whole set) and the switch: ``set_switch`` (firmware 1.5.2; ``switch_cmd=False``:
    as a host of 1.5.1 sends it) or the pointer ``fwset.json``, whose commit switches. As
    transfer_frames; the sequence numbers wrap at 255 as the host's do."""
    import json as _json

    set_dir = f"sets/{version}"
    frames = _Frames()
    for path in sorted(files):
        remote = f"{set_dir}/{path}"
        frames.add(L.FILE_INFO, {"path": remote}, -1, "file_info")
        frames.put_file(remote, files[path], False)
    listing = "".join(f"{hashlib.sha256(files[p]).hexdigest()} {len(files[p])} {p}\n" for p in sorted(files))
    frames.put_file(f"{set_dir}/set.txt", listing.encode(), False)
    if checks:
        for _path in files:
            frames.add(L.FILE_CHECK, {"set": set_dir}, -1, "file_check")
    if checks and switch_cmd:  # firmware 1.5.2: the switch is a command of its own
        frames.add(SET_SWITCH, {"set": set_dir}, -1, "set_switch")
    else:
        frames.put_file("fwset.json", _json.dumps({"active": set_dir}).encode(), False, "file_commit fwset.json")
    return bytes(frames.wire), frames.index, frames.kinds


class _Frames:
    """Host frames in the order sent, as SupervisorDriver builds them (seq 1 carries SYN)."""

    def __init__(self) -> None:
        self.wire = bytearray()
        self.index: list[list[int]] = []
        self.kinds: list[str] = []

    def add(self, mtype: int, body: dict | bytes, want: int, kind: str) -> None:
        seq = len(self.index) % 255 + 1
        f = L.encode_frame(seq, 0, mtype, L.encode_body(body), L.FLAG_SYN if not self.index else 0)
        self.index.append([len(self.wire), len(f), mtype, want])
        self.kinds.append(kind)
        self.wire.extend(f)

    def put_file(self, name: str, data: bytes, legacy: bool, commit_kind: str = "file_commit") -> None:
        """SupervisorDriver.put_file: file_open and binary file_data chunks (``legacy``: base64
        file_write chunks), then file_commit."""
        if not legacy:
            self.add(L.FILE_OPEN, {"path": name}, -1, "file_open")
        for off in range(0, len(data), L.FILE_CHUNK):
            chunk = data[off:off + L.FILE_CHUNK]
            if legacy:
                self.add(L.FILE_WRITE, {"path": name, "off": off, "data": base64.b64encode(chunk).decode()},
                         off + len(chunk), "file_write")
            else:
                self.add(L.FILE_DATA, off.to_bytes(4, "big") + chunk, off + len(chunk), "file_data")
        self.add(L.FILE_COMMIT, {"path": name, "sha256": hashlib.sha256(data).hexdigest()}, len(data), commit_kind)


def transfer_heap(prefix: str = "", legacy: bool = False) -> dict:
    """Peak heap (upper bound) while the board takes the largest bundle file over the link
    (to ``prefix`` + its name: ``sets/<version>/`` for a staged update; ``legacy``: as a host
    before 1.4.0 sends it)."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build.build(tmp)
        name = max(sorted(manifest["files"]), key=lambda n: manifest["files"][n]["size"])
        data = (Path(tmp) / name).read_bytes()
    out = _transfer_peaks(*transfer_frames(prefix + name, data, legacy))
    return {"file": name, "size": len(data), **out}


def staged_update_heap(checks: bool = True, switch_cmd: bool = True) -> dict:
    """Peak heap (upper bound, as transfer_heap) through a whole staged update of the bundle as
    stage_over_link sends it: every file to ``sets/<version>/``, the set list, one file_check
    per file, and the pointer whose commit switches (``checks=False``: as a host before 1.5.1
    sends it, no file_check, so the switch hashes every file of the set; ``switch_cmd=False``:
    as a host of 1.5.1 sends it, the pointer committed as a file after the checks)."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build.build(tmp)
        files = {name: (Path(tmp) / name).read_bytes() for name in manifest["files"]}
    out = _transfer_peaks(*staged_update_frames(files, manifest["version"], checks, switch_cmd))
    return {"files": len(files), "size": sum(len(d) for d in files.values()), **out}


def old_host_refused() -> dict:
    """Heap (as transfer_heap) while the board refuses what a host before 1.4.0 sends first, a
    base64 file_write chunk of the largest bundle file: since firmware 1.5.2 it answers
    unknown_type (an old host's chunk did not fit the budget: docs/benchmarks.md)."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build.build(tmp)
        name = max(sorted(manifest["files"]), key=lambda n: manifest["files"][n]["size"])
        data = (Path(tmp) / name).read_bytes()
    frames = _Frames()
    frames.add(L.FILE_INFO, {"path": name}, -1, "file_info")
    frames.add(L.FILE_WRITE, {"path": name, "off": 0, "data": base64.b64encode(data[:L.FILE_CHUNK]).decode()},
               -2, "file_write (refused)")
    out = _transfer_peaks(bytes(frames.wire), frames.index, frames.kinds)
    return {"file": name, "size": len(data), **out}


def _transfer_peaks(frames: bytes, index: list[list[int]], kinds: list[str]) -> dict:
    phases = TRANSFER_SETUP + [TRANSFER_HARNESS.replace("INDEX_JSON", json.dumps(index)), "measure()\n"]
    phases += ["prep()\n", "measure()\n", "check()\n"] * len(index) + [TRANSFER_REPORT]
    marks = run_phases(phases, {"frames.bin": frames})
    if marks["bad"]:
        raise RuntimeError(f"{marks['bad']} commands of the transfer were refused or lost (see BAD lines)")
    harness = marks["dry"] - marks["boot"]
    rest = [marks[f"s{k}"] - harness for k in range(len(index))]
    peak = [marks[f"e{k}"] - harness for k in range(len(index))]
    worst = max(range(len(index)), key=lambda k: peak[k])
    per_kind: dict[str, dict[str, int]] = {}
    for k, kind in enumerate(kinds):
        entry = per_kind.setdefault(kind, {"peak": 0, "allocated": 0})
        entry["peak"] = max(entry["peak"], peak[k])
        entry["allocated"] = max(entry["allocated"], peak[k] - rest[k])
    budget = 32 * 1024
    return {
        "frames": len(index),
        "after_boot": marks["boot"],
        "harness": harness,
        "at_rest_max": max(rest),
        "peak": peak[worst],
        "peak_command": kinds[worst],
        "per_command": per_kind,
        "budget": budget,
        "over_budget_by": max(0, peak[worst] - budget),
    }


def bundle_budget() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build.build(tmp)
    return {"total_size": manifest["total_size"], "files": len(manifest["files"]), "budget": 64 * 1024}


def wire_time(request: bytes, reply: bytes) -> float:
    return (len(request) + len(reply)) * 10 / BAUD


def round_trip(rounds: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_sim("supervisor", Path(tmp) / "sup.tty")
        try:
            with SupervisorDriver(str(Path(tmp) / "sup.tty"), baudrate=BAUD) as drv:
                drv.hello()
                for name, call, mtype in (("heartbeat", drv.heartbeat, L.HEARTBEAT),
                                          ("status", lambda: drv.status(), L.STATUS)):
                    samples = []
                    reply_body = None
                    for _ in range(rounds):
                        t0 = time.perf_counter()
                        reply_body = call()
                        samples.append(time.perf_counter() - t0)
                        time.sleep(0.002)
                    body = reply_body if isinstance(reply_body, dict) else _status_body(drv)
                    wire = wire_time(L.encode_frame(1, 0, mtype), L.encode_frame(0, 1, mtype | L.REPLY, L.encode_body(body)))
                    samples.sort()
                    med = statistics.median(samples)
                    p95 = samples[int(len(samples) * 0.95) - 1]
                    out[name] = {"wire_ms": round(wire * 1000, 3), "median_ms": round(med * 1000, 3),
                                 "p95_ms": round(p95 * 1000, 3), "median_ratio": round(med / wire, 2),
                                 "p95_ratio": round(p95 / wire, 2), "rounds": rounds}
        finally:
            proc.stop()
    return out


def flash_link() -> dict:
    from device_drivers import supervisor_flash as flash

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        manifest = build.build(str(bundle))
        link = Path(tmp) / "sup.tty"
        proc = start_sim("supervisor", link, out=Path(tmp) / "board")
        try:
            hello = flash.supervisor_hello(str(link))
            with SupervisorDriver(str(link), baudrate=BAUD) as drv:
                port = drv._port
                sent = [0]
                write = port.write

                def counting_write(data: bytes) -> int | None:
                    sent[0] += len(data)
                    return write(data)

                port.write = counting_write  # type: ignore[method-assign]
                t0 = time.perf_counter()
                first = flash.flash_over_link(str(link), bundle, driver=drv)
                t1 = time.perf_counter()
            hello()
            t2 = time.perf_counter()
            again = flash.flash_over_link(str(link), bundle)
            t3 = time.perf_counter()
        finally:
            proc.stop()
    # Requests dominate the wire; replies are small: a file_data reply is 15 bytes, the others
    # are counted at 40 bytes each.
    chunks = sum(-(-e["size"] // L.FILE_CHUNK) for e in manifest["files"].values())
    frames = 4 * len(manifest["files"]) + 1  # info before, open, commit, info after; reset
    wire = (sent[0] + DATA_REPLY * chunks + 40 * frames) * 10 / BAUD
    return {"bytes": manifest["total_size"], "files": len(first.copied), "seconds": round(t1 - t0, 2),
            "host_bytes_sent": sent[0], "wire_s": round(wire, 2), "ratio": round((t1 - t0) / wire, 2),
            "hello_s": round(t2 - t1, 2), "second_run_s": round(t3 - t2, 2), "second_run_copied": len(again.copied)}


def _status_body(drv: SupervisorDriver) -> dict:
    return drv._request(L.STATUS, None, "status", None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)
    figures = {"heap": heap_budget(args.frames), "transfer_heap": transfer_heap(),
               "transfer_heap_staged": transfer_heap(prefix=f"sets/{build.VERSION}/"),
               "staged_update_heap": staged_update_heap(),
               "staged_update_heap_host_151": staged_update_heap(switch_cmd=False),
               "staged_update_heap_old_host": staged_update_heap(checks=False),
               "old_host_refused": old_host_refused(), "bundle": bundle_budget(),
               "round_trip": round_trip(args.rounds), "flash_link": flash_link()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    h, b = figures["heap"], figures["bundle"]
    print(f"heap (MicroPython 1.27 wasm): after boot {h['after_boot']} B; after boot + {args.frames} frames "
          f"{h['after_n_frames']} B (budget {h['budget']} B; harness {h['harness']} B not counted); "
          f"growth {args.frames}->{2 * args.frames}: {h['growth_n_to_2n']} B (band of 11 marks: {h['band_n_to_2n']} B)")
    t = figures["transfer_heap"]
    verdict = (f"OVER the budget by {t['over_budget_by']} B" if t["over_budget_by"] else "within the budget")
    print(f"heap during a file transfer ({t['file']}, {t['size']} B, {t['frames']} frames): peak at most "
          f"{t['peak']} B in a {t['peak_command']} (budget {t['budget']} B: {verdict}); at rest between "
          f"commands at most {t['at_rest_max']} B; after boot {t['after_boot']} B (HAL files on the filesystem); "
          "per command kind (peak / most allocated): "
          + ", ".join(f"{k} {v['peak']} / {v['allocated']} B" for k, v in t["per_command"].items()))
    t = figures["transfer_heap_staged"]
    print(f"  the same file to sets/{build.VERSION}/: peak at most {t['peak']} B in a {t['peak_command']}; "
          f"at rest at most {t['at_rest_max']} B; "
          + ", ".join(f"{k} {v['peak']} / {v['allocated']} B" for k, v in t["per_command"].items()))
    u = figures["staged_update_heap"]
    print(f"  a whole staged update ({u['files']} files, {u['size']} B, {u['frames']} commands: the files, set.txt, a "
          f"file_check per file, set_switch): peak at most {u['peak']} B in a {u['peak_command']}; "
          + ", ".join(f"{k} {v['peak']} / {v['allocated']} B" for k, v in u["per_command"].items()))
    u = figures["staged_update_heap_host_151"]
    print(f"  the same staged update from a 1.5.1 host (file_check, then the pointer committed as a file): peak at "
          f"most {u['peak']} B in a {u['peak_command']}")
    u = figures["staged_update_heap_old_host"]
    print(f"  the same staged update from a host before 1.5.1 (no file_check: the switch hashes the set): peak at "
          f"most {u['peak']} B in a {u['peak_command']}")
    o = figures["old_host_refused"]
    print(f"  a host before 1.4.0 (base64 file_write, refused since 1.5.2 with unknown_type): peak at most "
          f"{o['peak']} B; " + ", ".join(f"{k} {v['peak']} / {v['allocated']} B" for k, v in o["per_command"].items()))
    print(f"bundle: {b['total_size']} B in {b['files']} files (budget {b['budget']} B)")
    for name, r in figures["round_trip"].items():
        print(f"round trip {name}: wire {r['wire_ms']} ms, median {r['median_ms']} ms ({r['median_ratio']} x), "
              f"p95 {r['p95_ms']} ms ({r['p95_ratio']} x)")
    f = figures["flash_link"]
    print(f"flash over the link: {f['files']} files, {f['bytes']} B in {f['seconds']} s ({f['host_bytes_sent']} B "
          f"sent by the host; wire time about {f['wire_s']} s, {f['ratio']} x); second run {f['second_run_s']} s, "
          f"{f['second_run_copied']} files copied")
    return 0


if __name__ == "__main__":
    sys.exit(main())

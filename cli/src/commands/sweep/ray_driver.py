"""The Ray executor of `wormnet sweep` (written into SWEEP/ray/ and run by it; not a module).

Each trial is a Ray task that runs the `wormnet` binary with its arguments on whatever node Ray
picks, its output going to the trial's log. Token authentication comes from the environment, as
Ray reads it (RAY_AUTH_MODE=token with RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, which
`scripts/ray_head start` prints). Paths are absolute: nodes must share the file
system that holds the sweep directory and the binary (as on a Slurm/NFS cluster).

Protocol on stdout, one JSON object per line, read by `wormnet sweep`:
  {"started": ID}                      the trial's log appeared (it is running on a node)
  {"ended": ID, "rc": N}               the process exited with N (null: killed)
  {"ended": ID, "interrupted": true}   cancelled by SIGTERM / Ctrl-C of the sweep
  {"error": MESSAGE}                   the driver could not start (then exit code 3)
"""

import json
import os
import signal
import sys
import time


def say(obj):
    print(json.dumps(obj), flush=True)


def wait_unlocked(run_dir, timeout=120.0):
    """Waits until no process holds the run directory's lock (the trial saved and exited)."""
    import fcntl

    lock = os.path.join(run_dir, ".lock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(lock, "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.2)


def main():
    plan_path, address = sys.argv[1], sys.argv[2]
    host, _, port = address.rpartition(":")
    if host.strip("[]") in ("127.0.0.1", "localhost", "::1"):
        # A head on loopback (scripts/ray_head's) is reached on loopback: otherwise Ray swaps
        # 127.0.0.1 for this machine's outward address, where such a head does not listen.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        say({"error": f"ray is not installed for {sys.executable}: run scripts/setup --ray "
                      "(or set WORMNET_PYTHON to a python that has ray)"})
        return 3
    with open(plan_path) as f:
        plan = json.load(f)
    # ray.init waits for a missing head for minutes: check a HOST:PORT answers first.
    if host and port.isdigit() and "://" not in address:
        import socket

        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as e:
            say({"error": f"cannot connect to the Ray cluster at {address}: {e} (is a head "
                          "running there? scripts/ray_head start starts one)"})
            return 3
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except Exception as e:  # noqa: BLE001 - any failure to connect is reported as one line
        hint = ""
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            # A head with token authentication (scripts/ray_head's) refuses clients without it.
            hint = (" (a cluster with token authentication needs RAY_AUTH_MODE=token and its "
                    "token in RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH; scripts/ray_head start "
                    "prints them)")
        say({"error": f"cannot connect to the Ray cluster at {address}: "
                      f"{str(e).splitlines()[0]}{hint}"})
        return 3

    @ray.remote
    def run_trial(binary, args, log, cwd):
        import ctypes
        import subprocess

        def die_with_parent():
            # PR_SET_PDEATHSIG = 1: if the Ray worker dies, the trial gets SIGTERM and saves.
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)

        with open(log, "wb") as out:
            proc = subprocess.Popen([binary, *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=cwd,
                                    preexec_fn=die_with_parent)
            try:
                # Poll rather than block in wait(): Ray delivers a cancellation as an exception
                # between Python bytecodes, which a blocking wait would never reach.
                while proc.poll() is None:
                    time.sleep(0.2)
                return proc.returncode
            except BaseException:
                proc.send_signal(signal.SIGTERM)  # the trial finishes its update and saves
                proc.wait()
                raise

    pending = {}
    for job in plan["jobs"]:
        ref = run_trial.options(num_cpus=plan["cpus_per_trial"]).remote(
            plan["binary"], job["args"], job["log"], plan["cwd"])
        pending[ref] = job
    started = set()
    stop = {"now": False}

    def on_signal(_sig, _frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while pending and not stop["now"]:
        for job in pending.values():
            if job["id"] not in started and os.path.exists(job["log"]):
                started.add(job["id"])
                say({"started": job["id"]})
        done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
        for ref in done:
            job = pending.pop(ref)
            try:
                say({"ended": job["id"], "rc": ray.get(ref)})
            except ray.exceptions.RayError as e:
                say({"ended": job["id"], "rc": None, "why": str(e).splitlines()[0]})
    if pending:
        # Stopped: cancel the tasks; each sends its trial SIGTERM, and the trial finishes its
        # update, saves its latest checkpoint and exits, releasing its run directory's lock.
        for ref in pending:
            ray.cancel(ref)
        ray.wait(list(pending), num_returns=len(pending), timeout=120)
        for job in pending.values():
            wait_unlocked(job["run_dir"])
            say({"ended": job["id"], "interrupted": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())

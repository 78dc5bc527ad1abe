"""Mounted into a trainer pod as ``sitecustomize.py`` (test_pod_overrides_in_real_pods.py): Python imports it
at the start of every process whose PYTHONPATH names its folder, so the trainer's own process records what
it sees (selected env, its /dev/shm, its ServiceAccount) on a claim the test reads after the run. Stdlib only:
it runs inside the trainer image before anything else is imported.
"""

import base64
import json
import os

EVIDENCE_DIR = "/evidence"
ENV_NAMES = ("HF_TOKEN", "NCCL_DEBUG", "TORCH_NCCL_ASYNC_ERROR_HANDLING", "OBJECT_STORE_KEY")
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _token_subject() -> str:
    with open(TOKEN) as token:
        payload = token.read().split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def _shm_mount() -> list[str]:
    """Type and options of the mount visible at /dev/shm: the last one there (the runtime may mount its own
    first)."""
    with open("/proc/self/mounts") as mounts:
        return [fields[2:4] for fields in map(str.split, mounts) if fields[1] == "/dev/shm"][-1]


def _record() -> dict[str, object]:
    with open("/proc/self/cmdline", "rb") as cmdline:
        argv = [arg.decode() for arg in cmdline.read().split(b"\0") if arg]
    shm = os.statvfs("/dev/shm")
    return {
        "argv": argv,
        "env": {name: os.environ.get(name) for name in ENV_NAMES},
        "shm_mount": _shm_mount(),
        "shm_bytes": shm.f_blocks * shm.f_frsize,
        "token_subject": _token_subject(),
    }


with open(os.path.join(EVIDENCE_DIR, f"{os.getpid()}.json"), "w") as out:
    json.dump(_record(), out)

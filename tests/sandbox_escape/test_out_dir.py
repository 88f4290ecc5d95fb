"""Attacks through /out: links, device files, fifos, sockets and hidden files never reach the host's
reading of a job's outputs (the export guard's file manifest rule, DESIGN.md "Export guard")."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from tests.sandbox_escape import attack, sandbox_required

pytestmark = pytest.mark.attack
__all__ = ["sandbox_required"]


def test_links_devices_fifos_and_hidden_files_are_removed_and_reported(tmp_path: Path) -> None:
    data = tmp_path / "granted.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(data)
    result, _ = attack(
        """
        import json, os, socket, stat
        tried = {}
        def attempt(name, fn):
            try:
                fn()
                tried[name] = "made"
            except OSError as exc:
                tried[name] = type(exc).__name__
        open("/out/result.csv", "w").write("a,b\\n1,2\\n")
        open("/out/x.txt", "w").write("x")
        attempt("link_shadow", lambda: os.symlink("/etc/shadow", "/out/shadow"))
        attempt("link_root", lambda: os.symlink("/", "/out/root"))
        attempt("link_relative", lambda: os.symlink("../../../../etc/passwd", "/out/passwd"))
        attempt("fifo", lambda: os.mkfifo("/out/pipe"))
        attempt("chardev", lambda: os.mknod("/out/mem", stat.S_IFCHR | 0o666, os.makedev(1, 1)))
        attempt("hardlink", lambda: os.link("/out/x.txt", "/out/x-again.txt"))
        attempt("hardlink_data", lambda: os.link("/data/granted.parquet", "/out/stolen.parquet"))
        attempt("hidden", lambda: open("/out/.hidden", "w").write("h"))
        attempt("hidden_dir", lambda: os.makedirs("/out/.git/objects"))
        attempt("setuid", lambda: (open("/out/tool", "w").write("#!/bin/sh"), os.chmod("/out/tool", 0o4755)))
        sock = socket.socket(socket.AF_UNIX)
        attempt("socket", lambda: sock.bind("/out/sock"))
        print(json.dumps(tried))
        """,
        tmp_path / "out",
        data={"granted": data},
    )
    assert result.status == "ok", result.stderr
    tried = json.loads(result.stdout)
    assert tried["chardev"] == "PermissionError"  # no CAP_MKNOD
    assert tried["hardlink_data"] == "OSError"  # EXDEV: /data and /out are different mounts
    removed = {entry["name"]: entry["why"] for entry in result.removed}
    assert removed == {
        ".git": "hidden directory",
        ".hidden": "hidden file",
        "passwd": "symbolic link",
        "pipe": "fifo",
        "root": "symbolic link",
        "shadow": "symbolic link",
        "sock": "socket",
        "x-again.txt": "hard link",
        "x.txt": "hard link",
    }
    assert [entry["name"] for entry in result.outputs] == ["result.csv", "tool"]
    out = tmp_path / "out"
    left = sorted(os.listdir(out))
    assert left == ["result.csv", "tool"]
    for name in left:
        info = os.lstat(out / name)
        assert stat.S_ISREG(info.st_mode)
        assert info.st_mode & 0o7777 == 0o600  # set-id and exec bits stripped
        assert info.st_uid == os.geteuid()  # handed back: no later uid-65534 process can alter it

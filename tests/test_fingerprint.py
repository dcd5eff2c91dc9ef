"""The device fingerprint read from a fake root: x86 servers and aarch64 boards whose
/proc/cpuinfo names no CPU model."""

from __future__ import annotations

from pathlib import Path

from hwnas_profilers.fingerprint import cpu_model, differences, fingerprint, hypervisor, physical_cores


def _root(tmp_path: Path, name: str, cpuinfo: str, board: bytes | None = None) -> str:
    root = tmp_path / name
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text(cpuinfo)
    if board is not None:
        (root / "proc" / "device-tree").mkdir()
        (root / "proc" / "device-tree" / "model").write_bytes(board)
    return str(root)


def _arm(parts: list[str]) -> str:
    return "\n".join(f"processor\t: {i}\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\n"
                     f"CPU architecture: 8\nCPU part\t: {p}\nCPU revision\t: 0\n"
                     for i, p in enumerate(parts))


X86 = "".join(f"processor\t: {i}\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Gold 6248\n"
              f"physical id\t: 0\ncore id\t\t: {i // 2}\nflags\t\t: fpu sse hypervisor\n\n"
              for i in range(4))


def test_x86_reads_the_model_name_and_core_ids(tmp_path):
    root = _root(tmp_path, "x86", X86)
    assert cpu_model(root) == "Intel(R) Xeon(R) Gold 6248"
    assert physical_cores(root) == 2 and hypervisor(root)


def test_aarch64_boards_are_told_apart_by_board_and_cores(tmp_path):
    pi = _root(tmp_path, "pi", _arm(["0xd08"] * 4)
               + "\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
               b"Raspberry Pi 4 Model B Rev 1.4\x00")
    rk = _root(tmp_path, "rk", _arm(["0xd05"] * 4 + ["0xd0b"] * 4),
               b"Radxa ROCK 5B\x00")
    assert cpu_model(pi) == "Raspberry Pi 4 Model B Rev 1.4 (4x Cortex-A72)"
    assert cpu_model(rk) == "Radxa ROCK 5B (4x Cortex-A55 + 4x Cortex-A76)"
    assert physical_cores(rk) == 8 and not hypervisor(rk)
    a, b = fingerprint(False, pi), fingerprint(False, rk)
    assert a["name"] == a["cpu"] != b["cpu"]
    assert any(d.startswith("cpu ") for d in differences(a, b))


def test_board_model_from_cpuinfo_and_unknown_parts(tmp_path):
    root = _root(tmp_path, "pi32", _arm(["0xd03", "0xd03"]).replace("0x41", "0x51")
                 + "\nModel\t\t: Raspberry Pi 3 Model B Plus Rev 1.3\n")
    assert cpu_model(root) == "Raspberry Pi 3 Model B Plus Rev 1.3 (2x part 0x51/0xd03)"
    assert cpu_model(_root(tmp_path, "empty", "")) == "unknown"

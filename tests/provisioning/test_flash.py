"""Flashing: the running firmware is asked for service mode before mpremote copies files."""

from device_drivers import supervisor_flash as flash


def test_service_mode_is_asked_of_running_firmware(sim, tmp_path):
    _, link = sim("supervisor")
    said = flash.supervisor_service_mode(str(link), seconds=120)()
    assert "service mode for 120 s" in said


def test_service_mode_without_answer_assumes_the_repl(tmp_path):
    said = flash.supervisor_service_mode(str(tmp_path / "no-board"))()
    assert "assuming the board is at its REPL" in said

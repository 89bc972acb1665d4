"""`make ask` and `make test-blind` keep Rasa's structured debug log, with each message's text, off the screen."""

from __future__ import annotations

import pytest
import structlog


def test_the_structured_log_prints_no_message_text(capfd: pytest.CaptureFixture[str]) -> None:
    from scripts.ask import quiet_structlog

    structlog.reset_defaults()
    try:
        structlog.get_logger().debug("processor.message.parse", parse_data_text="zqbeforemarker")
        assert "zqbeforemarker" in "".join(capfd.readouterr())  # unconfigured, structlog prints it
        quiet_structlog()
        structlog.get_logger().debug("processor.message.parse", parse_data_text="zqaftermarker")
        structlog.get_logger().info("processor.message.parse", parse_data_text="zqaftermarker")
        assert "zqaftermarker" not in "".join(capfd.readouterr())
    finally:
        structlog.reset_defaults()

"""The tests' logging hygiene (``tests/conftest.py``): a handler left on a closed capture stream is dropped, so later
tests do not print ``--- Logging error ---`` tracebacks into the output they check."""

import io
import logging

from tests.conftest import drop_handlers_on_closed_streams


def test_a_handler_on_a_closed_stream_is_dropped_and_logging_stays_quiet(capfd):
    stream = io.StringIO()
    logger = logging.getLogger("tests.closed_stream")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    stream.close()  # as capsys closes its capture when a test ends
    try:
        assert drop_handlers_on_closed_streams() >= 1 and handler not in logger.handlers
        logger.warning("logged after the stream closed")
        assert "Logging error" not in capfd.readouterr().err
    finally:
        logger.propagate = True

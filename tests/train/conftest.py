import logging

import pytest


@pytest.fixture
def run_log(caplog):
    """caplog for the `jaxtrade` logger, which a training run stops from propagating to the root."""
    logger = logging.getLogger("jaxtrade")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)

"""Python client of microrecd, the microrec recommendation-inference server.

    from microrec import Client
    with Client("127.0.0.1", 7470) as c:
        scores = c.predict(dense, sparse)   # numpy arrays or lists

See client.py for the API and criteo.py for Criteo TSV preprocessing.
"""

from .client import (Client, MicrorecConnectionError, MicrorecError,
                     MicrorecTimeout, STATUS_NAMES)
from .criteo import load_criteo

__all__ = ["Client", "MicrorecError", "MicrorecTimeout",
           "MicrorecConnectionError", "STATUS_NAMES", "load_criteo"]

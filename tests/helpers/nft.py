"""nft listings as the tests read them."""

import re

_COUNTER = re.compile(r' counter(?: packets [0-9]+ bytes [0-9]+)?')


def uncounted(listing):
    """``nft list`` text without each set element's counter (``856 counter packets 2 bytes 120 comment "rule=x"``
    reads ``856 comment "rule=x"``): what a test says about the blocks, not about the traffic they dropped."""
    return _COUNTER.sub('', listing)

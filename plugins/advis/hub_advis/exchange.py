"""How XAusländer travels over XTA to and from ADVIS: the service and business scenario (both
directions and the simulator use them; an operator overrides them per connector)."""

from __future__ import annotations

from typing import Final

# The DVDV service of XAusländer 1.21.1 for OZG online services to an Ausländerbehörde
# (xauslaender1211OZGPORTALABH); ADVIS reads its mailbox under it.
SERVICE: Final = "http://www.osci.de/xauslaender1211/xauslaender1211OZGPORTALABH.wsdl"
BUSINESS_SCENARIO: Final = "XAUSLAENDER_DATA"

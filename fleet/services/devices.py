"""Where device_api/views.py and api/admin.py still find enrolment and reconnect requests.

The module that held them was split by what each part does: device_state.py
(the kernel every writer shares), enrolment.py and reconnects.py. Those two
modules are the lead's to change; once they import from the new modules,
delete this one.
"""

from fleet.services.device_state import get_device
from fleet.services.enrolment import check_enrollment_key, register_device
from fleet.services.reconnects import request_reconnect

__all__ = ["check_enrollment_key", "get_device", "register_device", "request_reconnect"]
